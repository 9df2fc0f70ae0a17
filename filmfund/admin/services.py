"""Read models and use cases of the producers' and the partner's pages.

Money and entitlement rules live in filmfund.rewards; this module only gathers what the
dashboards show (production updates are filmfund.comms's). The partner's views never receive donor data.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from email import policy
from email.parser import BytesHeaderParser
from itertools import accumulate

import sqlalchemy as sa
from flask import current_app

from filmfund import csvsafe
from filmfund.auth.models import User
from filmfund.extensions import db
from filmfund.rewards import holdings, ledger, privacy
from filmfund.rewards.models import (
    Campaign,
    Donation,
    DonorProfile,
    Entitlement,
    EntitlementStatus,
    Payout,
    Reward,
    RewardKind,
    Tier,
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
             "flags": [f for f in (d.flags or "").split(",") if f], "note": d.note}
            for d, email, p in rows]


FULFILMENT_ROWS = 50  # per reward on the dashboard; the reward's own queue lists everyone
COUNT_CAP = 10_000  # the dashboard counts up to this many per reward and state ("10,000+")


@dataclass
class FulfilmentGroup:
    reward: Reward
    tier_name: str
    rows: list[dict]  # the first FULFILMENT_ROWS: still to deliver first, oldest first
    outstanding: int  # counted in SQL, up to COUNT_CAP + 1
    delivered: int

    @staticmethod
    def _text(n: int) -> str:
        return f"{COUNT_CAP:,}+" if n > COUNT_CAP else f"{n:,}"

    @property
    def outstanding_text(self) -> str:
        return self._text(self.outstanding)

    @property
    def delivered_text(self) -> str:
        return self._text(self.delivered)

    @property
    def total_text(self) -> str:
        return self._text(self.outstanding + self.delivered)


def fulfilment_list(campaign: Campaign, limit: int = FULFILMENT_ROWS) -> list[FulfilmentGroup]:
    """Per hand-delivered reward, how many are owed and delivered (counted in SQL up to COUNT_CAP, so
    the page stays flat however many donors; revoked ones left out), and the first `limit` holders
    (an index on reward, status, granted_at serves both)."""
    rewards = db.session.execute(
        sa.select(Reward, Tier.name).join(Tier, Tier.id == Reward.tier_id)
        .where(Reward.campaign_id == campaign.id, Reward.kind.in_(HAND_DELIVERED))
        .order_by(Tier.min_amount, Reward.position)).all()
    ids = [r.id for r, _ in rewards] or [-1]
    counts = {(rid, status.value): _capped_count(rid, status) for rid in ids
              for status in (EntitlementStatus.GRANTED, EntitlementStatus.FULFILLED)}
    by_reward: dict[int, list] = {}
    for reward, _ in rewards:
        by_reward[reward.id] = db.session.execute(
            sa.select(Entitlement, User.email).join(User, User.id == Entitlement.user_id)
            .where(Entitlement.reward_id == reward.id, Entitlement.status != EntitlementStatus.REVOKED)
            .order_by(Entitlement.status, Entitlement.granted_at).limit(limit)).all()
    names = privacy.public_names_of(ent.user_id for rows in by_reward.values() for ent, _ in rows)
    return [FulfilmentGroup(
        reward, tier_name,
        [{"id": ent.id, "email": email, "status": ent.status.value, "granted_at": ent.granted_at,
          "fulfilled_at": ent.fulfilled_at, "credit_name": names.get(ent.user_id)}
         for ent, email in by_reward[reward.id]],
        counts.get((reward.id, EntitlementStatus.GRANTED.value), 0),
        counts.get((reward.id, EntitlementStatus.FULFILLED.value), 0)) for reward, tier_name in rewards]


def _capped_count(reward_id: int, status: EntitlementStatus) -> int:
    first = (sa.select(sa.literal(1)).where(Entitlement.reward_id == reward_id, Entitlement.status == status)
             .limit(COUNT_CAP + 1).subquery())
    return int(db.session.scalar(sa.select(sa.func.count()).select_from(first)))


def payouts(campaign: Campaign) -> list[Payout]:
    return list(db.session.scalars(sa.select(Payout).where(Payout.campaign_id == campaign.id)
                                   .order_by(Payout.paid_on.desc(), Payout.id.desc())))


def outbox(limit: int = 20) -> list[dict]:
    """The latest mails written to the outbox folder (SMTP not configured): headers only."""
    from filmfund.mail import outbox_messages

    parser = BytesHeaderParser(policy=policy.default)
    items = []
    for path in outbox_messages()[:limit]:
        with path.open("rb") as fh:
            headers = parser.parse(fh)
        items.append({"name": path.name, "to": str(headers["To"] or ""), "subject": str(headers["Subject"] or ""),
                      "date": str(headers["Date"] or "")})
    return items


def smtp_configured() -> bool:
    return bool(current_app.config.get("SMTP_URL"))


def statement_csv(statement: dict, paid: list[Payout], shares: list[tuple[date, int]]) -> str:
    """The partner's statement as CSV: totals, payouts and the share per day (the share due added on
    each day, the money placed on the day it came in). No donor data. `as_of`: where the
    partner's held-back figures stop."""
    cur = statement["currency"]
    rows = []
    if statement.get("as_of"):
        rows.append(["as_of", statement["as_of"], "", cur, ""])
    if statement.get("test_money"):  # the figures below count test payments only
        rows.append(["test_money", "", "", cur, "TEST MONEY: test payments only, no real money"])
    rows += [[key, "", statement[key], cur, ""] for key in ("gross", "refunded", "net", "share_due", "paid_out",
                                                              "balance")]
    rows += [["share_booked", day.isoformat(), amount, cur, ""] for day, amount in shares]
    rows += [["payout", p.paid_on.isoformat(), p.amount, p.currency, p.reference] for p in paid]
    return csvsafe.render(["item", "date", "amount_cents", "currency", "reference"], rows)
