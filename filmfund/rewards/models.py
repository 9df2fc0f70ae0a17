"""Campaign, tiers and rewards; pledges and donations; the append-only ledger; entitlements;
the Stripe webhook inbox and payouts to the partner.

Money is integer minor units (cents). The running totals (filmfund.rewards.totals) are kept in the
same transaction as the LedgerEntry rows they sum, and `filmfund ledger check` proves them from
the entries. `livemode` marks test money and live money apart on donations and entries.
"""
from __future__ import annotations

import enum
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from filmfund.db import code_point_string, derived_default, keep_derived, new_id, str_enum, utcnow
from filmfund.errors import IllegalTransition
from filmfund.extensions import db
from filmfund.rewards import rules
from filmfund.typed import SEARCH_KEY_MAX, search_key


class RewardKind(enum.StrEnum):
    CREDIT = "credit"
    DIGITAL = "digital"
    UPDATES = "updates"
    PHYSICAL = "physical"
    SERVICE = "service"
    CUSTOM = "custom"


class PledgeState(enum.StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    PAID = "paid"
    FAILED = "failed"
    EXPIRED = "expired"


# The moves Stripe's Checkout can make. An async outcome may overtake the "completed" event,
# so pending may go straight to paid or failed.
PLEDGE_MOVES: dict[PledgeState, set[PledgeState]] = {
    PledgeState.PENDING: {PledgeState.PROCESSING, PledgeState.PAID, PledgeState.FAILED, PledgeState.EXPIRED},
    PledgeState.PROCESSING: {PledgeState.PAID, PledgeState.FAILED},
    PledgeState.PAID: set(),
    PledgeState.FAILED: set(),
    PledgeState.EXPIRED: set(),
}


class SubscriptionState(enum.StrEnum):
    """A monthly gift as Stripe bills it (contract: `active`, `past_due`, `canceled`). Stripe's own
    statuses map onto these (subscriptions.state_of); canceled is final."""
    ACTIVE = "active"
    PAST_DUE = "past_due"      # a renewal failed: Stripe retries on its own schedule, we do not
    CANCELED = "canceled"


class DonationSource(enum.StrEnum):
    STRIPE = "stripe"
    OFFLINE = "offline"


class DisputeStatus(enum.StrEnum):
    OPEN = "open"
    WON = "won"
    LOST = "lost"


class EventKind(enum.StrEnum):
    DONATION = "donation"
    OFFLINE_DONATION = "offline_donation"
    REFUND = "refund"
    DISPUTE_LOST = "dispute_lost"
    DISPUTE_WON = "dispute_won"
    REFUND_FAILED = "refund_failed"    # a refund Stripe had reported failed (or was canceled): the money is back
    PAYOUT = "payout"
    PAYOUT_REVERSAL = "payout_reversal"  # a payout recorded by mistake, taken back by a new group


class EntryKind(enum.StrEnum):
    GIFT = "gift"                                       # + money given
    REFUND = "refund"                                   # - money given back (refund or lost dispute)
    RESTORE = "restore"                                 # + a lost dispute overturned, a refund that failed
    PARTNER_SHARE = "partner_share"                     # + owed to the partner
    PARTNER_SHARE_REVERSAL = "partner_share_reversal"   # - no longer owed
    PAYOUT = "payout"                                   # + paid to the partner
    PAYOUT_REVERSAL = "payout_reversal"                 # - a payout recorded by mistake, taken back


class EntitlementStatus(enum.StrEnum):
    GRANTED = "granted"
    FULFILLED = "fulfilled"
    REVOKED = "revoked"


#: A held entitlement as its partial index says it (ix_entitlements_held_reward_granted): a query
#: the index should serve writes the same words, a literal (a bound parameter proves nothing).
ENTITLEMENT_HELD_SQL = "status != 'revoked'"


class WebhookStatus(enum.StrEnum):
    RECEIVED = "received"  # verified and stored, waiting for a worker to book it
    PROCESSED = "processed"
    IGNORED = "ignored"
    UNMATCHED = "unmatched"
    FAILED = "failed"


class Campaign(db.Model):
    __tablename__ = "campaigns"
    __table_args__ = (
        sa.CheckConstraint("goal > 0", name="goal_positive"),
        sa.CheckConstraint("share_bps >= 0 AND share_bps <= 10000", name="share_bps_range"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(sa.String(80), unique=True)
    title: Mapped[str] = mapped_column(sa.String(200))
    tagline: Mapped[str] = mapped_column(sa.String(300), default="")
    description: Mapped[str] = mapped_column(sa.Text, default="")
    currency: Mapped[str] = mapped_column(sa.String(3))
    goal: Mapped[int]
    partner_name: Mapped[str] = mapped_column(sa.String(200))
    share_bps: Mapped[int]
    # The campaign's texts in every language the file gives, tiers' and rewards' too:
    # {"zh-Hans": {"title": ..., "tier:100": ..., "reward:dvd": ...}} (see rewards/texts.py). The
    # columns above hold each text in the first language that has it, so none is ever blank.
    translations: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    # Where the campaign's days and months are counted (statements, the partner's hold-back).
    time_zone: Mapped[str] = mapped_column(sa.String(64), default="UTC", server_default="UTC")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    tiers: Mapped[list[Tier]] = relationship(back_populates="campaign", order_by="Tier.min_amount",
                                             cascade="all, delete-orphan", lazy="selectin")


class CampaignPagePart(db.Model):
    """One part of the public campaign page (story, crew, risks, faq, stretch_goals) as plain data,
    texts as {language: text}. The campaign file seeds a part until a producer edits it in the
    browser (`edited_at` set): from then on the browser's version is the page's, and loading the
    file again leaves it alone."""

    __tablename__ = "campaign_page_parts"

    campaign_id: Mapped[int] = mapped_column(sa.ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True)
    part: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    content: Mapped[dict | list] = mapped_column(sa.JSON)
    edited_at: Mapped[datetime | None]
    edited_by: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class BudgetLine(db.Model):
    """Where the money goes: a line of the campaign file's [[budget]] (the editing computer,
    travel, hotels), matched by key on every load. Expenses are booked against these lines."""

    __tablename__ = "budget_lines"
    __table_args__ = (sa.UniqueConstraint("campaign_id", "key", name="uq_budget_lines_campaign_key"),
                      sa.CheckConstraint("planned >= 0", name="planned_not_negative"))

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(sa.ForeignKey("campaigns.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(sa.String(64))
    title: Mapped[dict] = mapped_column(sa.JSON)  # {language: text}
    planned: Mapped[int] = mapped_column(sa.BigInteger)
    position: Mapped[int] = mapped_column(default=0)
    # A line that left the file is kept (expenses may point at it), hidden from the page.
    active: Mapped[bool] = mapped_column(default=True)


class ShareVisit(db.Model):
    """Visits of the campaign page that came by a share link (?ref=), counted per source and UTC
    day: an aggregate counter, no row per visit and nothing about the visitor."""

    __tablename__ = "share_visits"

    campaign_id: Mapped[int] = mapped_column(sa.ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True)
    source: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    day: Mapped[date] = mapped_column(primary_key=True)
    visits: Mapped[int] = mapped_column(sa.BigInteger, default=0)


class Tier(db.Model):
    __tablename__ = "tiers"
    __table_args__ = (
        sa.UniqueConstraint("campaign_id", "min_amount", name="uq_tiers_campaign_min_amount"),
        sa.CheckConstraint("min_amount > 0", name="min_amount_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(sa.ForeignKey("campaigns.id", ondelete="CASCADE"), index=True)
    min_amount: Mapped[int]
    name: Mapped[str] = mapped_column(sa.String(200))

    campaign: Mapped[Campaign] = relationship(back_populates="tiers")
    rewards: Mapped[list[Reward]] = relationship(back_populates="tier", order_by="Reward.position",
                                                 lazy="selectin")


class Reward(db.Model):
    """One reward item. Its key is stable across re-loads of the campaign file (media and
    entitlements refer to it), so a reward is never deleted, only moved or retitled."""

    __tablename__ = "rewards"
    __table_args__ = (sa.UniqueConstraint("campaign_id", "key", name="uq_rewards_campaign_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(sa.ForeignKey("campaigns.id", ondelete="CASCADE"), index=True)
    tier_id: Mapped[int | None] = mapped_column(sa.ForeignKey("tiers.id", ondelete="SET NULL"), index=True)
    key: Mapped[str] = mapped_column(sa.String(64))
    kind: Mapped[RewardKind] = mapped_column(str_enum(RewardKind, 16))
    title: Mapped[str] = mapped_column(sa.String(300))
    position: Mapped[int] = mapped_column(default=0)
    # "Only 20 signed DVDs": None is unlimited. `claimed` counts the items spoken for (holders and
    # unpaid pledges' claims), kept by rewards/stock.py in the statement that takes or gives one.
    quantity_limit: Mapped[int | None]
    claimed: Mapped[int] = mapped_column(default=0, server_default="0")
    # The key of the reward of a lower tier this one takes the place of (campaign file's `replaces`:
    # "the DVD signed" is the DVD, signed); a donor who reaches both holds this one alone
    # (rewards/holdings.py, rewards_due).
    replaces: Mapped[str | None] = mapped_column(sa.String(64))

    tier: Mapped[Tier | None] = relationship(back_populates="rewards")


class ClaimState(enum.StrEnum):
    HELD = "held"          # an unpaid pledge holds the item while its checkout is open
    USED = "used"          # the pledge was paid: the item is the donor's (their entitlement)
    RELEASED = "released"  # given back: the checkout expired or failed, or the donor held it already


class RewardClaim(db.Model):
    """One item of a limited reward held by an unpaid pledge (rewards/stock.py)."""

    __tablename__ = "reward_claims"
    __table_args__ = (sa.UniqueConstraint("pledge_id", "reward_id", name="uq_reward_claims_pledge_reward"),
                      sa.Index("ix_reward_claims_state_expires", "state", "expires_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    reward_id: Mapped[int] = mapped_column(sa.ForeignKey("rewards.id", ondelete="CASCADE"))
    pledge_id: Mapped[str] = mapped_column(sa.ForeignKey("pledges.id", ondelete="CASCADE"))
    state: Mapped[ClaimState] = mapped_column(str_enum(ClaimState, 16), default=ClaimState.HELD)
    expires_at: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_at: Mapped[datetime | None]


class Pledge(db.Model):
    """A donor's intent to pay; its random public id is the Checkout client_reference_id."""

    __tablename__ = "pledges"
    __table_args__ = (sa.CheckConstraint("amount > 0", name="amount_positive"),)

    id: Mapped[str] = mapped_column(sa.String(32), primary_key=True, default=new_id)
    campaign_id: Mapped[int] = mapped_column(sa.ForeignKey("campaigns.id"), index=True)
    amount: Mapped[int]
    currency: Mapped[str] = mapped_column(sa.String(3))
    email: Mapped[str] = mapped_column(sa.String(254))
    credit_name: Mapped[str | None] = mapped_column(sa.String(120))
    anonymous: Mapped[bool] = mapped_column(default=False)
    rewards_opt_out: Mapped[bool] = mapped_column(default=False)
    state: Mapped[PledgeState] = mapped_column(str_enum(PledgeState, 16), default=PledgeState.PENDING)
    checkout_session_id: Mapped[str | None] = mapped_column(sa.String(255), unique=True)
    checkout_url: Mapped[str | None] = mapped_column(sa.String(2000))
    payment_intent_id: Mapped[str | None] = mapped_column(sa.String(255), index=True)
    idempotency_key: Mapped[str | None] = mapped_column(sa.String(128), unique=True)
    # Where the donor found the page (the share link's ?ref=, carried by the form): a place, never a person.
    ref: Mapped[str | None] = mapped_column(sa.String(32), index=True)
    # The language the pledge was made in (BCP 47): Checkout opens in it, a new donor's profile takes it.
    language: Mapped[str | None] = mapped_column(sa.String(16))
    # None: a one-time gift; "month": a monthly gift (Checkout in subscription mode, card only).
    interval: Mapped[str | None] = mapped_column(sa.String(8))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    campaign: Mapped[Campaign] = relationship()

    def can_move(self, to: PledgeState) -> bool:
        return to in PLEDGE_MOVES[self.state]

    def move(self, to: PledgeState) -> None:
        if not self.can_move(to):
            raise IllegalTransition(f"A {self.state} pledge cannot become {to}.")
        self.state = to


class Subscription(db.Model):
    """A monthly gift: the donor's own amount every month (a Stripe subscription made by the
    Checkout Session of its pledge). Each paid invoice is a Donation (`Donation.subscription_id`,
    `Donation.invoice_id`); this row only says whether more will come. Its random public id is
    what the donor's API and account page name."""

    __tablename__ = "subscriptions"
    __table_args__ = (sa.CheckConstraint("amount > 0", name="amount_positive"),)

    id: Mapped[str] = mapped_column(sa.String(32), primary_key=True, default=new_id)
    campaign_id: Mapped[int] = mapped_column(sa.ForeignKey("campaigns.id"), index=True)
    pledge_id: Mapped[str] = mapped_column(sa.ForeignKey("pledges.id"), unique=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    stripe_subscription_id: Mapped[str] = mapped_column(sa.String(255), unique=True)
    stripe_customer_id: Mapped[str | None] = mapped_column(sa.String(255))
    amount: Mapped[int]
    currency: Mapped[str] = mapped_column(sa.String(3))
    interval: Mapped[str] = mapped_column(sa.String(8), default="month")
    state: Mapped[SubscriptionState] = mapped_column(str_enum(SubscriptionState, 16), default=SubscriptionState.ACTIVE)
    # The Stripe event time (unix seconds) of the last state it took: an older event never undoes a newer one.
    state_at: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    livemode: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    next_payment_at: Mapped[datetime | None]
    canceled_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    pledge: Mapped[Pledge] = relationship()
    user = relationship("User")


class Donation(db.Model):
    """Money actually received, from Stripe or recorded by a producer (offline). A monthly gift's
    paid invoice is one donation each (`subscription_id`, `invoice_id`); the first carries the pledge."""

    __tablename__ = "donations"
    __table_args__ = (
        sa.CheckConstraint("amount > 0", name="amount_positive"),
        sa.CheckConstraint("amount_refunded >= 0 AND amount_refunded <= amount", name="refund_within_amount"),
        # The dashboard's latest donations, newest first, read from this index only.
        sa.Index("ix_donations_campaign_livemode_received", "campaign_id", "livemode", "received_at", "id"),
        # The producers' donations list (rewards/donations.py), newest first by keyset: filtered by
        # source, and the few refunded or disputed ones (a partial index: the list's state filter
        # repeats its predicate, so PostgreSQL can prove it).
        sa.Index("ix_donations_campaign_livemode_source_received", "campaign_id", "livemode", "source",
                 "received_at", "id"),
        sa.Index("ix_donations_campaign_livemode_touched_received", "campaign_id", "livemode", "received_at", "id",
                 postgresql_where=sa.text("amount_refunded > 0 OR dispute_status IS NOT NULL"),
                 sqlite_where=sa.text("amount_refunded > 0 OR dispute_status IS NOT NULL")),
        # A donor's gifts, newest first (the donor's page, the list searched by email or name).
        sa.Index("ix_donations_user_received", "user_id", "received_at", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(sa.ForeignKey("campaigns.id"), index=True)
    pledge_id: Mapped[str | None] = mapped_column(sa.ForeignKey("pledges.id"), unique=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)
    source: Mapped[DonationSource] = mapped_column(str_enum(DonationSource, 16))
    amount: Mapped[int]
    currency: Mapped[str] = mapped_column(sa.String(3))
    # Test-mode money (a test key, the local checkout, `demo seed`) or live money: never mixed.
    livemode: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    # What Stripe's reports say is refunded (its cumulative amount_refunded, less the refunds it has
    # since said failed: rules.reported_refund over this donation's RefundReport rows). A refund
    # booked in the ledger alone (offline, test checkout) is a report too.
    amount_refunded: Mapped[int] = mapped_column(default=0)
    # The refunded amount the donor was last told of (refund_notices.py): below amount_refunded,
    # a notice is owed.
    refund_noticed: Mapped[int] = mapped_column(default=0, server_default="0")
    # When the notice that told it was mailed (its claim, refund_notices.py), given back with it if
    # the mail failed. NULL while nothing is told, when the gift's receipt told it (a refund replayed
    # in its payment's booking: no mail of its own), and for the notices told before it was kept.
    refund_noticed_at: Mapped[datetime | None]
    dispute_status: Mapped[DisputeStatus | None] = mapped_column(str_enum(DisputeStatus, 16))
    # The dispute's `amount` (what Stripe withdraws if it is lost), at most the donation's amount.
    # NULL on disputes booked before it was kept: a loss then counts the whole donation.
    dispute_amount: Mapped[int | None]
    payment_intent_id: Mapped[str | None] = mapped_column(sa.String(255), unique=True)
    # Learnt from charge events: a dispute may name only the charge (payment_intent null).
    charge_id: Mapped[str | None] = mapped_column(sa.String(255), unique=True)
    checkout_session_id: Mapped[str | None] = mapped_column(sa.String(255))
    # A monthly gift's month: its subscription, and the Stripe invoice that paid it (counted once by it).
    subscription_id: Mapped[str | None] = mapped_column(sa.ForeignKey("subscriptions.id"), index=True)
    invoice_id: Mapped[str | None] = mapped_column(sa.String(255), unique=True)
    credit_name: Mapped[str | None] = mapped_column(sa.String(120))
    anonymous: Mapped[bool] = mapped_column(default=False)
    rewards_opt_out: Mapped[bool] = mapped_column(default=False)
    # Why a producer should look at it (e.g. "amount_mismatch"): the money is recorded as paid.
    flags: Mapped[str] = mapped_column(sa.String(200), default="")
    note: Mapped[str] = mapped_column(sa.String(500), default="")
    recorded_by: Mapped[str | None] = mapped_column(sa.String(254))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    # A receipt is claimed (by the booking transaction or a retry) before it is mailed and marked
    # sent after the mail server took it; a claim left by a crashed process goes stale and the
    # sweep sends it again: at least once, never silently lost.
    receipt_claimed_at: Mapped[datetime | None]
    receipt_sent_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    user = relationship("User")
    pledge: Mapped[Pledge | None] = relationship()

    @property
    def recurring(self) -> bool:
        """One month of a monthly gift."""
        return self.subscription_id is not None

    @property
    def counted_refunded(self) -> int:
        """What the money rules treat as refunded (rules.counted_refund): the refunds, plus what a
        lost dispute took, never beyond the donation. SQL form: `counted_refunded_sql`."""
        return rules.counted_refund(self.amount, self.amount_refunded, self.dispute_status == DisputeStatus.LOST,
                                    self.dispute_amount)

    @classmethod
    def counted_refunded_sql(cls):
        """SQL form of `counted_refunded` (the ledger check, the donations list's states)."""
        lost = cls.dispute_status == DisputeStatus.LOST.value
        with_dispute = cls.amount_refunded + sa.func.coalesce(cls.dispute_amount, cls.amount)
        return sa.case((sa.and_(lost, with_dispute >= cls.amount), cls.amount), (lost, with_dispute),
                       else_=cls.amount_refunded)

    @property
    def net(self) -> int:
        return self.amount - self.counted_refunded

    @property
    def flag_list(self) -> list[str]:
        """The gift's flags, as raised (`flags` keeps them comma-separated): what the producers'
        pages list and what receipts.py adds and lifts."""
        return [f for f in (self.flags or "").split(",") if f]


class Payout(db.Model):
    __tablename__ = "payouts"
    __table_args__ = (sa.CheckConstraint("amount > 0", name="amount_positive"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(sa.ForeignKey("campaigns.id"), index=True)
    amount: Mapped[int]
    currency: Mapped[str] = mapped_column(sa.String(3))
    paid_on: Mapped[date] = mapped_column(sa.Date)
    reference: Mapped[str] = mapped_column(sa.String(200))
    recorded_by: Mapped[str] = mapped_column(sa.String(254))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The partner's "received": when, and by whom (a partner account); the producers see it.
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    # A payout recorded by mistake is taken back by a `payout_reversal` group in the ledger (the
    # money), never by editing its entry; these say when, by whom (an email, as `recorded_by`) and
    # why, for the pages that show it as reversed. The ledger check holds them to the entry.
    reversed_at: Mapped[datetime | None]
    reversed_by: Mapped[str | None] = mapped_column(sa.String(254))
    reversal_reason: Mapped[str | None] = mapped_column(sa.String(500))


_SIGN_RULE = (
    "(entry_kind IN ('gift', 'restore', 'partner_share', 'payout') AND amount > 0) OR "
    "(entry_kind IN ('refund', 'partner_share_reversal', 'payout_reversal') AND amount < 0)"
)
PAYOUT_KINDS_SQL = "entry_kind IN ('payout', 'payout_reversal')"


class LedgerEntry(db.Model):
    """Append-only: a correction is a new entry, never an edit. `group_id` ties the entries of
    one business event (a donation and the partner's share of it, say)."""

    __tablename__ = "ledger_entries"
    __table_args__ = (
        sa.CheckConstraint(_SIGN_RULE, name="sign_by_kind"),
        sa.CheckConstraint(f"({PAYOUT_KINDS_SQL}) = (payout_id IS NOT NULL)", name="payout_link"),
        sa.CheckConstraint(f"{PAYOUT_KINDS_SQL} OR entry_kind LIKE 'partner_share%' OR donation_id IS NOT NULL",
                           name="money_has_donation"),
        # A payout is taken back at most once: the database says so too, whatever a caller forgets.
        sa.Index("uq_ledger_entries_payout_reversal", "payout_id", unique=True,
                 postgresql_where=sa.text("entry_kind = 'payout_reversal'"),
                 sqlite_where=sa.text("entry_kind = 'payout_reversal'")),
        # A payout's entry (the partner's pages join each payout to it), and the entries of a time
        # span (statements' months and hold-back, `months`' first entry); the latter also serves
        # every lookup by campaign alone, so the campaign has no index of its own to keep up at
        # each booking.
        sa.Index("ix_ledger_entries_payout_id", "payout_id"),
        sa.Index("ix_ledger_entries_campaign_created", "campaign_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(sa.ForeignKey("campaigns.id"))
    group_id: Mapped[str] = mapped_column(sa.String(32), index=True)
    event_kind: Mapped[EventKind] = mapped_column(str_enum(EventKind, 20))
    entry_kind: Mapped[EntryKind] = mapped_column(str_enum(EntryKind, 24))
    amount: Mapped[int] = mapped_column(sa.BigInteger)
    currency: Mapped[str] = mapped_column(sa.String(3))
    donation_id: Mapped[int | None] = mapped_column(sa.ForeignKey("donations.id"), index=True)
    payout_id: Mapped[int | None] = mapped_column(sa.ForeignKey("payouts.id"))
    stripe_event_id: Mapped[str | None] = mapped_column(sa.String(255))
    livemode: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Entitlement(db.Model):
    __tablename__ = "entitlements"
    __table_args__ = (
        sa.UniqueConstraint("user_id", "reward_id", name="uq_entitlements_user_reward"),
        # The dashboard's first page of each reward's holders.
        sa.Index("ix_entitlements_reward_status_granted", "reward_id", "status", "granted_at"),
        # A reward's holders in the order they came (fulfil/statement.py's queue_page, a page of
        # 10 without sorting them all), and their count per reward (index only).
        sa.Index("ix_entitlements_held_reward_granted", "reward_id", "granted_at", "id",
                 postgresql_where=sa.text(ENTITLEMENT_HELD_SQL), sqlite_where=sa.text(ENTITLEMENT_HELD_SQL)),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    reward_id: Mapped[int] = mapped_column(sa.ForeignKey("rewards.id"), index=True)
    status: Mapped[EntitlementStatus] = mapped_column(str_enum(EntitlementStatus, 16))
    granted_at: Mapped[datetime] = mapped_column(default=utcnow)
    fulfilled_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    reward: Mapped[Reward] = relationship(lazy="joined")
    user = relationship("User")

    @property
    def reward_key(self) -> str:
        return self.reward.key

    @property
    def active(self) -> bool:
        return self.status != EntitlementStatus.REVOKED


class MailOptOut(db.Model):
    """A donor's "no more of this mail" for one topic (see filmfund.rewards.mail_prefs): `news`,
    the key of an updates reward, or `reminders`. Receipts and sign-in mail have no opt-out."""

    __tablename__ = "mail_opt_outs"
    __table_args__ = (sa.UniqueConstraint("user_id", "topic", name="uq_mail_opt_outs_user_topic"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    topic: Mapped[str] = mapped_column(sa.String(64))
    via: Mapped[str] = mapped_column(sa.String(16), default="account")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class WebhookEvent(db.Model):
    """Every verified Stripe event, stored once by its id (answered at once, booked by a worker):
    the inbox producers can inspect."""

    __tablename__ = "webhook_events"
    __table_args__ = (sa.Index("ix_webhook_events_status_received", "status", "received_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[str] = mapped_column(sa.String(255), unique=True)
    type: Mapped[str] = mapped_column(sa.String(100))
    livemode: Mapped[bool]
    payload: Mapped[str] = mapped_column(sa.Text)
    # The payment this event is about, so an early refund can be applied once the payment arrives.
    payment_intent_id: Mapped[str | None] = mapped_column(sa.String(255), index=True)
    charge_id: Mapped[str | None] = mapped_column(sa.String(255), index=True)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    processed_at: Mapped[datetime | None]
    status: Mapped[WebhookStatus] = mapped_column(str_enum(WebhookStatus, 16))
    error: Mapped[str | None] = mapped_column(sa.String(1000))


class DonorProfile(db.Model):
    """A donor's own settings: made from their first gift's choices, then changed only by the donor
    (signed in, or through a confirmation link mailed to them). A later pledge or donation never
    changes it; Pledge and Donation keep what was asked at the time, as a record."""

    __tablename__ = "donor_profiles"

    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    credit_name: Mapped[str | None] = mapped_column(sa.String(120))
    # The name as the producers' donor search finds it (typed.search_key: accents and case folded;
    # the name itself is shown as written), kept with every write of the name: at an insert (ORM or
    # Core) by its default, at an assignment by keep_derived. None when there is no name (erased).
    credit_name_key: Mapped[str | None] = mapped_column(code_point_string(SEARCH_KEY_MAX),
                                                        default=derived_default("credit_name", search_key))
    anonymous: Mapped[bool] = mapped_column(default=False)
    rewards_opt_out: Mapped[bool] = mapped_column(default=False)
    # The language the donor reads (BCP 47, `en`, `zh-Hans`): their mails go in it. From their first
    # pledge, then whatever they choose with the site's language switch while signed in.
    language: Mapped[str | None] = mapped_column(sa.String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    erased_at: Mapped[datetime | None]

    user = relationship("User")


# The producers' search by name (rewards/donations.py): a prefix range on the folded name.
sa.Index("ix_donor_profiles_credit_name_key", DonorProfile.credit_name_key)
keep_derived(DonorProfile.credit_name, "credit_name_key", search_key)


class RefundState(enum.StrEnum):
    PENDING = "pending"        # asked of Stripe (or to be asked again: its answer never came), not yet confirmed
    SUCCEEDED = "succeeded"    # booked in the ledger
    FAILED = "failed"          # Stripe refused it (nothing was refunded), or it failed later (its money came back)


# A pending request is confirmed or refused; a refund Stripe made can still fail (a closed card):
# its money comes back. A failed one is final (asking again is a new request).
REFUND_MOVES: dict[RefundState, set[RefundState]] = {
    RefundState.PENDING: {RefundState.SUCCEEDED, RefundState.FAILED},
    RefundState.SUCCEEDED: {RefundState.FAILED},
    RefundState.FAILED: set(),
}


class RefundRequest(db.Model):
    """A producer's refund of a donation, whole or partial (rewards/refunds.py). Its id is the
    idempotency key of the call to Stripe (`refund:<id>`), so a retry never refunds twice; a
    pending one counts against what remains until Stripe's event books it."""

    __tablename__ = "refund_requests"
    __table_args__ = (sa.CheckConstraint("amount > 0", name="amount_positive"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    donation_id: Mapped[int] = mapped_column(sa.ForeignKey("donations.id"), index=True)
    amount: Mapped[int]
    reason: Mapped[str] = mapped_column(sa.String(500), default="")
    state: Mapped[RefundState] = mapped_column(str_enum(RefundState, 16), default=RefundState.PENDING)
    # The form's one-time token or the API's Idempotency-Key: a double click finds the first request.
    client_key: Mapped[str | None] = mapped_column(sa.String(128), unique=True)
    stripe_refund_id: Mapped[str | None] = mapped_column(sa.String(255))
    error: Mapped[str | None] = mapped_column(sa.String(500))
    requested_by: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_at: Mapped[datetime | None]

    def can_move(self, to: RefundState) -> bool:
        return to in REFUND_MOVES[self.state]

    def move(self, to: RefundState) -> None:
        if not self.can_move(to):
            raise IllegalTransition(f"A {self.state} refund request cannot become {to}.")
        self.state, self.decided_at = to, utcnow()


class ReportKind(enum.StrEnum):
    REFUNDED = "refunded"          # the charge's cumulative amount_refunded (or a refund the ledger booked itself)
    REFUND_FAILED = "refund_failed"  # one refund Stripe says failed or was canceled: its money went back


class RefundReport(db.Model):
    """What Stripe reported of a donation's refunds, one row per report, never changed: the
    donation's `amount_refunded` is `rules.reported_refund` over them (payments.settle_refunds). A
    charge's cumulative total is only a total; a refund that failed after it was counted names its
    own id and amount, and is taken out of the totals that held it, whatever the order they came in."""

    __tablename__ = "refund_reports"
    __table_args__ = (sa.CheckConstraint("amount >= 0", name="amount_not_negative"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    donation_id: Mapped[int] = mapped_column(sa.ForeignKey("donations.id"), index=True)
    kind: Mapped[ReportKind] = mapped_column(str_enum(ReportKind, 16))
    amount: Mapped[int] = mapped_column(sa.BigInteger)
    # When it was so (unix seconds): the Stripe event's `created`; for a failure, when it was said to fail.
    reported_at: Mapped[int] = mapped_column(sa.BigInteger)
    refund_id: Mapped[str | None] = mapped_column(sa.String(255))
    refund_created: Mapped[int | None] = mapped_column(sa.BigInteger)  # the failed refund's own `created`
    stripe_event_id: Mapped[str | None] = mapped_column(sa.String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    @staticmethod
    def reported_refund(reports) -> int:
        """rules.reported_refund over one donation's reports (rows or objects with these columns)."""
        totals = [(r.reported_at, r.amount) for r in reports if r.kind == ReportKind.REFUNDED]
        failures = [rules.RefundFailure(r.refund_id or f"report-{r.id}", r.amount, r.reported_at, r.refund_created)
                    for r in reports if r.kind == ReportKind.REFUND_FAILED]
        return rules.reported_refund(totals, failures)


class ShippingAddress(db.Model):
    """Where a donor's physical rewards go: one per donor, editable until their items ship
    (a shipped item keeps its own copy of the address it went to). Kept here, beside the donor's
    profile: what is known of a donor is rewards/privacy.py's to read; fulfil posts the parcels."""

    __tablename__ = "shipping_addresses"

    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(120))
    line1: Mapped[str] = mapped_column(sa.String(200))
    line2: Mapped[str] = mapped_column(sa.String(200), default="")
    city: Mapped[str] = mapped_column(sa.String(120))
    state: Mapped[str] = mapped_column(sa.String(120), default="")
    postal_code: Mapped[str] = mapped_column(sa.String(32), default="")
    country: Mapped[str] = mapped_column(sa.String(2))
    source: Mapped[str] = mapped_column(sa.String(16))  # checkout, survey, account
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    def lines(self) -> list[str]:
        place = " ".join(p for p in (self.postal_code, self.city) if p)
        return [x for x in (self.name, self.line1, self.line2, place, self.state, self.country) if x]


class SettingsRequestState(enum.StrEnum):
    PENDING = "pending"
    CONFIRMED = "confirmed"
    SUPERSEDED = "superseded"   # the donor changed their settings another way meanwhile


class DonorSettingsRequest(db.Model):
    """A later gift asked for other settings than the donor's (say "no rewards", another credit
    name): nothing changes until the donor confirms it through the link mailed to them."""

    __tablename__ = "donor_settings_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    donation_id: Mapped[int | None] = mapped_column(sa.ForeignKey("donations.id", ondelete="SET NULL"), index=True)
    # The asked-for changes, as JSON: {"rewards_opt_out": true, "credit_name": "..."}.
    changes: Mapped[str] = mapped_column(sa.Text)
    state: Mapped[SettingsRequestState] = mapped_column(str_enum(SettingsRequestState, 16),
                                                        default=SettingsRequestState.PENDING)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_at: Mapped[datetime | None]
