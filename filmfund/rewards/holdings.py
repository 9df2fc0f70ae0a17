"""What a donor holds: their lifetime net total, their tier, the rewards they hold and the services
those rewards open (questions to the interview subjects, a tier's updates, the experiences).

One home for these rules: every page, list, mail, queue and API asks here rather than writing its
own query. Each rule has its SQL form (an expression to put in a statement, so a list of ten
thousand donors is one query) beside its Python form (one donor, one answer); the tests check that
both forms agree.

- A donor's total is their lifetime net (gross - refunded, a lost dispute counting as refunded) in
  the installation's money mode, read from their running total (filmfund.rewards.totals).
- Their tier is the highest tier whose min_amount is at most that total (the contract's rule).
- A donor holds a reward while its entitlement is not revoked, in the campaign asked about.
  Ending a reward (a refund or a lost dispute below its tier, the rewards opt-out) revokes its
  entitlement whatever its delivery state, so a reward marked delivered stops opening its
  services too (entitlements.refresh_entitlements); fulfilled_at keeps the record of delivery.
- A service is held exactly when its reward is: `holds(...)` is the one test.
"""
from __future__ import annotations

from typing import Collection, Sequence

import sqlalchemy as sa

from filmfund.extensions import db
from filmfund.rewards import ledger, privacy, rules
from filmfund.rewards.models import Entitlement, EntitlementStatus, Reward, Tier
from filmfund.rewards.totals import DonorTotal

T = rules.T

# ---------------------------------------------------------------- held or not

#: SQL: the entitlement counts (granted or fulfilled, not revoked).
HELD = Entitlement.status != EntitlementStatus.REVOKED


def is_held(entitlement: Entitlement) -> bool:
    """Python form of HELD."""
    return entitlement.status != EntitlementStatus.REVOKED


# ---------------------------------------------------------------- the lifetime total

def net_total(user_id: int, campaign_id: int, livemode: bool | None = None) -> int:
    """The donor's lifetime net in the installation's money mode (one primary-key read)."""
    mode = ledger.money_mode() if livemode is None else livemode
    return int(db.session.scalar(sa.select(DonorTotal.net).where(
        DonorTotal.campaign_id == campaign_id, DonorTotal.user_id == user_id,
        DonorTotal.livemode == mode)) or 0)


def donors_sql(campaign_id: int, livemode: bool | None = None):
    """SQL: the ids of the campaign's donors (net above zero in the money mode): the `donors`
    audience of updates, the credits' "has money here" test."""
    mode = ledger.money_mode() if livemode is None else livemode
    return sa.select(DonorTotal.user_id).where(DonorTotal.campaign_id == campaign_id,
                                               DonorTotal.livemode == mode, DonorTotal.net > 0)


def refunded_donors_sql(campaign_id: int, livemode: bool | None = None):
    """SQL: (user_id, net) of the campaign's donors some of whose money went back (refunded or
    disputed: their net is below what they gave), in the money mode. Few of all the donors: what a
    check of "still holds what was sent" starts from (fulfilment.refunded_after_shipping)."""
    mode = ledger.money_mode() if livemode is None else livemode
    return sa.select(DonorTotal.user_id, DonorTotal.net).where(
        DonorTotal.campaign_id == campaign_id, DonorTotal.livemode == mode, DonorTotal.net < DonorTotal.gross)


def is_refunded_donor(user_id: int, campaign_id: int, livemode: bool | None = None) -> bool:
    """Python form of refunded_donors_sql: some of this donor's money went back (refunded or
    disputed), in the money mode (one primary-key read)."""
    mode = ledger.money_mode() if livemode is None else livemode
    return bool(db.session.scalar(sa.select(DonorTotal.net < DonorTotal.gross).where(
        DonorTotal.campaign_id == campaign_id, DonorTotal.user_id == user_id, DonorTotal.livemode == mode)))


def is_donor(user_id: int, campaign_id: int, livemode: bool | None = None) -> bool:
    return net_total(user_id, campaign_id, livemode) > 0


# ---------------------------------------------------------------- the tier

def tier_of(tiers: Sequence[T], total: int) -> T | None:
    """The highest tier whose min_amount is at most `total`, or None (below the first)."""
    return rules.tier_for(tiers, total)


def tiers_reached(tiers: Sequence[T], total: int) -> list[T]:
    """Tiers are cumulative: the donor's tier and every tier below it, lowest first."""
    return rules.tiers_reached(tiers, total)


def rewards_due(tiers, total: int, opted_out: bool, unavailable: Collection[int] = ()) -> set[int]:
    """The reward ids a total entitles to (none for a donor who opted out of rewards): every reward
    of the tiers it reaches, less those another of them takes the place of (`replaces`: a donor who
    reaches the signed DVD is sent it, not a second, unsigned one), unless that one is `unavailable`
    (a limited reward sold out for this donor: the plain DVD is due again then)."""
    if opted_out:
        return set()
    reached = [r for t in tiers_reached(tiers, total) for r in t.rewards]
    replaced = {r.replaces for r in reached if r.replaces and r.id not in unavailable}
    return {r.id for r in reached if r.key not in replaced}


def replacements(tiers) -> dict[str, str]:
    """{key of a reward: key of the reward of a lower tier it takes the place of} (`replaces`), for
    the pages that list the tiers: the rule rewards_due applies, said where a donor chooses."""
    return {r.key: r.replaces for t in tiers for r in t.rewards if r.replaces}


def tier_min_sql(total, tier_minimums: Sequence[int]):
    """SQL form of tier_of: the min_amount of the tier `total` (an expression) reaches, 0 below
    the first."""
    bounds = sorted(tier_minimums, reverse=True)
    if not bounds:
        return sa.literal(0)
    return sa.case(*[(total >= m, m) for m in bounds], else_=0)


def donors_per_tier(campaign_id: int, tier_minimums: Sequence[int], livemode: bool | None = None) -> dict[int, int]:
    """How many donors (net > 0) sit at each tier (key: its min_amount; 0 below the first tier),
    counted in SQL over the donors' totals rows."""
    mode = ledger.money_mode() if livemode is None else livemode
    bucket = tier_min_sql(DonorTotal.net, tier_minimums)
    rows = db.session.execute(
        sa.select(bucket.label("tier"), sa.func.count())
        .where(DonorTotal.campaign_id == campaign_id, DonorTotal.livemode == mode, DonorTotal.net > 0)
        .group_by("tier")).all()
    return {int(t): int(c) for t, c in rows}


# ---------------------------------------------------------------- rewards and their services

def holds_sql(user_id, reward_key: str, campaign_id: int):
    """SQL: the donor holds this reward of this campaign now; `user_id` a value or a column."""
    return (sa.select(Entitlement.id).join(Reward, Reward.id == Entitlement.reward_id)
            .where(Entitlement.user_id == user_id, Reward.key == reward_key, Reward.campaign_id == campaign_id,
                   HELD).exists())


def holds(user_id: int | None, reward_key: str, campaign_id: int) -> bool:
    """Does this donor hold this reward (and so its service) of this campaign now?"""
    if user_id is None:
        return False
    return bool(db.session.scalar(sa.select(holds_sql(user_id, reward_key, campaign_id))))


def held_since_sql(user_id, reward_key: str, campaign_id: int):
    """SQL: since when the donor holds this reward now (the latest grant among its held
    entitlements: granted_at is set again when a revoked reward is granted again), NULL when not
    held; each argument a value or a column (correlate it at the caller)."""
    return (sa.select(sa.func.max(Entitlement.granted_at)).join(Reward, Reward.id == Entitlement.reward_id)
            .where(Entitlement.user_id == user_id, Reward.key == reward_key, Reward.campaign_id == campaign_id,
                   HELD).scalar_subquery())


def held_entitlement(user_id: int, reward_key: str, campaign_id: int, *, lock: bool = False) -> Entitlement | None:
    """The entitlement through which the donor holds the reward (locked for update if asked: a
    service that counts its uses, such as the questions, serialises them on it)."""
    q = (sa.select(Entitlement).join(Reward, Reward.id == Entitlement.reward_id)
         .where(Entitlement.user_id == user_id, Reward.key == reward_key, Reward.campaign_id == campaign_id, HELD))
    if lock:
        q = q.with_for_update(of=Entitlement)
    return db.session.scalar(q)


def holders_sql(reward_key: str, campaign_id: int):
    """SQL: the ids of the donors who hold this reward now (a reward's updates, its experience)."""
    return (sa.select(Entitlement.user_id).join(Reward, Reward.id == Entitlement.reward_id)
            .where(Reward.key == reward_key, Reward.campaign_id == campaign_id, HELD))


def held_keys_sql(user_id, campaign_id: int):
    """SQL: the keys of the rewards this donor holds now."""
    return (sa.select(Reward.key).join(Entitlement, Entitlement.reward_id == Reward.id)
            .where(Entitlement.user_id == user_id, Reward.campaign_id == campaign_id, HELD))


def held_keys(user_id: int | None, campaign_id: int) -> set[str]:
    """The keys of the rewards this donor holds now (the library, the updates they may read)."""
    if user_id is None:
        return set()
    return set(db.session.scalars(held_keys_sql(user_id, campaign_id)))


# ---------------------------------------------------------------- why a reward is not held

#: Why a donor does not hold a reward (`why_not_held`): she chose no rewards, though her total
#: reaches it (her settings give them back); or anything else (her total is below its tier, it is
#: on no tier, none was left).
DECLINED = "declined"
NOT_REACHED = "not_reached"


def why_not_held(user_id: int | None, reward_key: str, campaign_id: int) -> str | None:
    """None while the donor holds the reward; else why not, for the page that offers its service
    to say so truly: DECLINED when she would hold it but for her opt-out of rewards (her settings,
    privacy.profile_of; her total reaches it by rewards_due's own rule), NOT_REACHED otherwise."""
    if holds(user_id, reward_key, campaign_id):
        return None
    profile = privacy.profile_of(user_id) if user_id is not None else None
    if profile is None or not profile.rewards_opt_out:
        return NOT_REACHED
    tiers = list(db.session.scalars(sa.select(Tier).where(Tier.campaign_id == campaign_id)))
    due = rewards_due(tiers, net_total(user_id, campaign_id), opted_out=False)
    reaches = any(r.key == reward_key and r.id in due for t in tiers for r in t.rewards)
    return DECLINED if reaches else NOT_REACHED
