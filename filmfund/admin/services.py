"""Read models and use cases of the producers' and the partner's pages.

Money and entitlement rules live in filmfund.rewards; this module only gathers what the
dashboards show (production updates are filmfund.comms's). The partner's views never receive donor data.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from email import policy
from email.parser import BytesHeaderParser
from itertools import accumulate

import sqlalchemy as sa
from flask import current_app
from flask_babel import gettext as _

from filmfund import csvsafe
from filmfund.auth.models import User
from filmfund.books import printing
from filmfund.errors import ValidationError
from filmfund.extensions import db
from filmfund.fulfil import statement as fulfil_statement
from filmfund.i18n import zone_name
from filmfund.mail import outbox_messages
from filmfund.rewards import holdings, ledger, privacy, statements
from filmfund.rewards.campaign import current_campaign
from filmfund.rewards.models import (
    Campaign,
    Donation,
    DonorProfile,
    Payout,
    Reward,
    RewardKind,
)

# Rewards a producer delivers by hand (the rest are delivered by the site: downloads, mailings, credits).
HAND_DELIVERED = (RewardKind.PHYSICAL, RewardKind.SERVICE, RewardKind.CUSTOM, RewardKind.CREDIT)


def cumulative(points: list[tuple[date, int]]) -> list[tuple[date, int]]:
    """Running totals of per-day amounts (for the charts)."""
    return list(zip([d for d, _ in points], accumulate(v for _, v in points)))


def partner_share_by_day(campaign: Campaign) -> list[tuple[date, int]]:
    """The partner's share booked per UTC day (allocations and reversals), from the daily totals:
    no donor in it."""
    return ledger.share_by_day(campaign.id)


def donors_by_tier(campaign: Campaign) -> list[dict]:
    """How many donors sit in each tier by their lifetime net total (for planning fulfilment):
    one aggregate over the donors' totals rows."""
    counts = holdings.donors_per_tier(campaign.id, [t.min_amount for t in campaign.tiers])
    rows = [{"name": t.name, "min_amount": t.min_amount, "donors": counts.get(t.min_amount, 0)}
            for t in campaign.tiers]
    if counts.get(0):
        rows.insert(0, {"name": "Below the first tier", "min_amount": 0, "donors": counts[0]})
    return rows


def recent_donations(campaign: Campaign, limit: int = 25) -> list[dict]:
    """For producers only: the latest donations (of the installation's money mode) with the donor's
    email (to deliver rewards); read from the index on (campaign, mode, received_at, id). Credit
    name and anonymity are the donor's own (filmfund.rewards.privacy), not what one gift asked."""
    rows = db.session.execute(
        sa.select(Donation, User.email, DonorProfile).join(User, User.id == Donation.user_id)
        .outerjoin(DonorProfile, DonorProfile.user_id == Donation.user_id)
        .where(Donation.campaign_id == campaign.id, Donation.livemode == ledger.money_mode())
        .order_by(Donation.received_at.desc(), Donation.id.desc()).limit(limit)).all()
    return [{"id": d.id, "email": email, "amount": d.amount, "net": d.net, "refunded": d.counted_refunded,
             "currency": d.currency, "source": d.source.value, "received_at": d.received_at,
             "credit_name": privacy.public_name(p), "anonymous": privacy.is_anonymous(p),
             "rewards_opt_out": bool(p and p.rewards_opt_out),
             "disputed": d.dispute_status.value if d.dispute_status else None,
             "flags": d.flag_list, "note": d.note}
            for d, email, p in rows]


FULFILMENT_ROWS = 10  # a page of one reward's holders on the dashboard; the reward's own queue lists everyone
SELF_MARKED = (RewardKind.SERVICE, RewardKind.CUSTOM)  # delivered when a producer says so (here)


@dataclass
class FulfilmentGroup:
    """One hand-delivered reward on the dashboard: its counts, asked of the rewards page's one rule
    (fulfil.statement: owed / in progress / done / late), and one page of its holders."""
    reward: Reward
    tier_name: str
    counts: dict[str, int]
    rows: list[dict]
    page: int  # the page's number: a label the links carry (the pages are keyset: fulfil.statement.queue_page)
    next: str | None  # the cursors of the pages after and before (None at an end)
    previous: str | None
    first: bool
    open: bool

    @property
    def total(self) -> int:
        return self.counts["owed"] + self.counts["in_progress"] + self.counts["done"]

    @property
    def self_marked(self) -> bool:
        return self.reward.kind in SELF_MARKED


def fulfilment_list(campaign: Campaign, open_key: str | None = None, *, after: str | None = None,
                    before: str | None = None, page: int = 1, size: int = FULFILMENT_ROWS) -> list[FulfilmentGroup]:
    """Per hand-delivered reward, what is owed (the same count the rewards page shows: one home,
    fulfil.statement) and one page of `size` holders, oldest first: the reward `open_key` at the
    page its cursor names (`after`, or `before` for a page back; `page` its number, as a label),
    the others at their first page. Collapsed on the page except the one being paged."""
    groups = []
    for q in fulfil_statement.queues(campaign, kinds=HAND_DELIVERED):  # the site's own deliveries not counted
        place = {"after": after, "before": before} if q.reward.key == open_key else {}
        try:
            listed = fulfil_statement.queue_page(campaign, q.reward.key, None, size=size, **place)
        except ValidationError:  # a cursor this list never gave: its first page
            listed = fulfil_statement.queue_page(campaign, q.reward.key, None, size=size)
        names = privacy.public_names_of(row["entitlement"].user_id for row in listed["rows"])
        rows = [{"id": row["entitlement"].id, "email": row["email"], "state": row["state"], "late": row["late"],
                 "status": row["entitlement"].status.value, "granted_at": row["entitlement"].granted_at,
                 "fulfilled_at": row["entitlement"].fulfilled_at,
                 "credit_name": names.get(row["entitlement"].user_id)} for row in listed["rows"]]
        number = 1 if listed["first"] else max(2, page)
        groups.append(FulfilmentGroup(q.reward, q.tier_name, q.counts, rows, number, listed["next"],
                                      listed["previous"], listed["first"], q.reward.key == open_key))
    return groups


def payouts(campaign: Campaign) -> list[Payout]:
    return list(db.session.scalars(sa.select(Payout).where(Payout.campaign_id == campaign.id)
                                   .order_by(Payout.paid_on.desc(), Payout.id.desc())))


def outbox(limit: int = 20) -> list[dict]:
    """The latest mails written to the outbox folder (SMTP not configured): headers only."""
    parser = BytesHeaderParser(policy=policy.default)
    items = []
    for path in outbox_messages()[:limit]:
        with path.open("rb") as fh:
            headers = parser.parse(fh)
        date = headers["Date"]  # a DateHeader (policy.default): its moment, said in the reader's zone
        items.append({"name": path.name, "to": str(headers["To"] or ""), "subject": str(headers["Subject"] or ""),
                      "date": getattr(date, "datetime", None)})
    return items


def smtp_configured() -> bool:
    return bool(current_app.config.get("SMTP_URL"))


def statement_csv(statement: dict, paid: list[Payout], shares: list[tuple[date, int]]) -> str:
    """The partner's statement as CSV: totals, payouts and the share per day (the share due added on
    each day: for the partner, the day the ledger booked the money, statements.timeline). No donor
    data. Laid out as the month's CSV (books/printing.py): `item` the field's name, `label` the
    reader's words, from the same home. `as_of`: where the partner's held-back figures stop, in
    the campaign's zone (the day its statements count in), named in the reader's words. `paid`
    are the payouts the figures count, so a reversed one is not among them."""
    cur = statement["currency"]
    names = printing.labels()
    rows = []
    if statement.get("as_of"):
        campaign = current_campaign()
        local = datetime.fromisoformat(statement["as_of"]).astimezone(statements.zone(campaign))
        rows.append(["as_of", _("Figures as at this time (%(zone)s)", zone=zone_name(campaign.time_zone)),
                     local.strftime("%Y-%m-%d %H:%M"), "", cur, ""])
    if statement.get("test_money"):  # the figures below count test payments only
        rows.append(["test_money", _("Test money: no real payment is counted here"), "", "", cur, ""])
    rows += [[key, names[key], "", statement[key], cur, ""]
             for key in ("gross", "refunded", "net", "share_due", "paid_out", "balance")]
    rows += [["share_booked", names["share_booked"], day.isoformat(), amount, cur, ""] for day, amount in shares]
    rows += [["payout", names["payout"], p.paid_on.isoformat(), p.amount, p.currency, p.reference] for p in paid]
    return csvsafe.render(["item", "label", "date", "amount_cents", "currency", "reference"], rows)
