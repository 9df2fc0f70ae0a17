"""Tables of filmfund.comms: production updates and their per-recipient deliveries."""
from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from filmfund.db import str_enum, utcnow
from filmfund.extensions import db


class UpdateState(enum.StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"


class DeliveryStatus(enum.StrEnum):
    QUEUED = "queued"              # waiting for a worker (or for its next try)
    SENDING = "sending"            # claimed by one worker: nobody else sends it
    SENT = "sent"                  # the mail server took it
    FAILED = "failed"              # every try failed, or a worker died while sending (never re-sent)
    UNSUBSCRIBED = "unsubscribed"  # in the audience, but opted out of this topic
    CANCELLED = "cancelled"        # left the audience (a refund) before it went out


class Update(db.Model):
    """A production update, written in Markdown. Its audience is `everyone`, `donors`, or the
    key of a reward (its holders). Drafts are the producers' alone; publishing is final."""

    __tablename__ = "updates"

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(sa.ForeignKey("campaigns.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(sa.String(200))
    body: Mapped[str] = mapped_column(sa.Text)
    audience: Mapped[str] = mapped_column(sa.String(64))
    state: Mapped[UpdateState] = mapped_column(str_enum(UpdateState, 16), default=UpdateState.DRAFT, index=True)
    created_by: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    published_at: Mapped[datetime | None] = mapped_column(index=True)
    published_by: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))


class UpdateDelivery(db.Model):
    """One recipient of one published update: the row is made once (unique) when the update is
    published, and claimed atomically (queued -> sending) before its mail goes out, so no donor
    ever gets the same update twice."""

    __tablename__ = "update_deliveries"
    __table_args__ = (sa.UniqueConstraint("update_id", "user_id", name="uq_update_deliveries_update_user"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    update_id: Mapped[int] = mapped_column(sa.ForeignKey("updates.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    status: Mapped[DeliveryStatus] = mapped_column(str_enum(DeliveryStatus, 16), default=DeliveryStatus.QUEUED,
                                                   index=True)
    attempts: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    claimed_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(sa.String(500))

    user = relationship("User")
