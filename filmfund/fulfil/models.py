"""Tables of fulfilment: one item per physical entitlement, each reward's schedule (available,
due), credit proofs, the credits freeze and reminder mail. The donor's shipping address is
filmfund.rewards.models.ShippingAddress, beside their profile (rewards/privacy.py reads it)."""
from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from filmfund.db import str_enum, utcnow
from filmfund.extensions import db


class ItemState(enum.StrEnum):
    OWED = "owed"
    IN_PRODUCTION = "in_production"
    SHIPPED = "shipped"
    RECEIVED = "received"
    RETURNED = "returned"


# owed -> in production -> shipped (tracking note) -> received (the donor confirms), or returned.
ITEM_MOVES: dict[ItemState, set[ItemState]] = {
    ItemState.OWED: {ItemState.IN_PRODUCTION},
    ItemState.IN_PRODUCTION: {ItemState.OWED, ItemState.SHIPPED},
    ItemState.SHIPPED: {ItemState.RECEIVED, ItemState.RETURNED},
    ItemState.RETURNED: {ItemState.IN_PRODUCTION},  # sent again (to a corrected address)
    ItemState.RECEIVED: set(),
}
SHIPPED_STATES = (ItemState.SHIPPED, ItemState.RECEIVED, ItemState.RETURNED)


class ProofState(enum.StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    CHANGES = "changes_requested"


class RewardSchedule(db.Model):
    """Per reward: when the producers marked it available (a physical reward is owed until then)
    and when it is due (past it, what is not done is late)."""

    __tablename__ = "reward_schedules"

    reward_id: Mapped[int] = mapped_column(sa.ForeignKey("rewards.id", ondelete="CASCADE"), primary_key=True)
    available_at: Mapped[datetime | None]
    due_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class FulfilmentItem(db.Model):
    """One physical reward owed to one donor (one per entitlement)."""

    __tablename__ = "fulfilment_items"
    __table_args__ = (sa.Index("ix_fulfilment_items_reward_state", "reward_id", "state"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    entitlement_id: Mapped[int] = mapped_column(sa.ForeignKey("entitlements.id", ondelete="CASCADE"), unique=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    reward_id: Mapped[int] = mapped_column(sa.ForeignKey("rewards.id", ondelete="CASCADE"))
    state: Mapped[ItemState] = mapped_column(str_enum(ItemState, 16), default=ItemState.OWED)
    tracking: Mapped[str] = mapped_column(sa.String(300), default="")
    ship_to: Mapped[str] = mapped_column(sa.Text, default="")  # the address it went to, as shipped
    signer: Mapped[str] = mapped_column(sa.String(120), default="")
    dedication: Mapped[str] = mapped_column(sa.String(300), default="")
    letter: Mapped[str] = mapped_column(sa.Text, default="")
    shipped_at: Mapped[datetime | None]
    received_at: Mapped[datetime | None]
    returned_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class CreditProof(db.Model):
    """A donor's approval of their line in the end credits (for the Executive Producer credit,
    the exact wording the donor confirmed)."""

    __tablename__ = "credit_proofs"

    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    state: Mapped[ProofState] = mapped_column(str_enum(ProofState, 20), default=ProofState.PENDING)
    section: Mapped[str] = mapped_column(sa.String(32))
    line: Mapped[str] = mapped_column(sa.String(200))          # the line as approved
    credit_name: Mapped[str] = mapped_column(sa.String(120))   # the profile's name it was approved for
    note: Mapped[str] = mapped_column(sa.String(500), default="")
    approved_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class CreditsState(db.Model):
    """Per campaign: the deadline by which donors approve their proof, and the list as frozen at
    picture lock (the export gives the frozen list from then on; later changes are flagged)."""

    __tablename__ = "credits_state"

    campaign_id: Mapped[int] = mapped_column(sa.ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True)
    proof_deadline: Mapped[datetime | None]
    frozen_at: Mapped[datetime | None]
    frozen_by: Mapped[str | None] = mapped_column(sa.String(254))
    # JSON [[section, name, user_id], ...]: 8.7 MB at a million donations, read only where the whole
    # list is wanted (loaded when first used), not with the deadline every donor's page asks for.
    frozen_lines: Mapped[str | None] = mapped_column(sa.Text, deferred=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ReminderMail(db.Model):
    """Each address survey and credit-proof mail sent (the first and the reminders), or tried and
    refused for good (`refused`: mail.refusal_kind's code; None when it went out). Either is a try."""

    __tablename__ = "fulfil_reminders"
    __table_args__ = (sa.Index("ix_fulfil_reminders_user_kind", "user_id", "kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(sa.String(32))  # address_survey, credit_proof
    sent_at: Mapped[datetime] = mapped_column(default=utcnow)
    refused: Mapped[str | None] = mapped_column(sa.String(16))  # mail.REFUSAL_KINDS; None: sent
