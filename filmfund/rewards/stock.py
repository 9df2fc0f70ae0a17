"""Rewards of limited quantity ("only 20 signed DVDs"): how many are left, and who holds one.

A reward's `quantity_limit` (None: unlimited) is set by the campaign file (`limit = 20` on a reward)
or by `set_reward_limit` (the console's one way to change it). Its `claimed` counter is the number
of items spoken for: the donors who hold the reward (an active entitlement), the unpaid pledges
that hold a claim on one, and the items posted to donors whose reward ended afterwards (refunded
after shipping: the parcel is theirs, and the item no longer exists to promise). `left = limit -
claimed`.

Exact under concurrency: an item is taken by ONE statement, `UPDATE rewards SET claimed = claimed
+ 1 WHERE id = ? AND claimed < quantity_limit`; a row lock (PostgreSQL) or the single writer
(SQLite) serialises two takers, and the second sees the first's count. Nothing reads then writes.

The rules (see the README's decision):
- A pledge whose own amount reaches a limited reward claims one item at pledge time; if none is
  left the pledge is refused (409 `reward_sold_out`), naming the reward, so the donor can give
  less, or give without rewards; nothing is charged. Judged on the pledge alone, never on what its
  email's owner gave or holds (pledges._claim_limited_rewards says why).
- The claim is held while the Checkout is open: its session expires after CLAIM_MINUTES (Stripe's
  `expires_at`), and `checkout.session.expired` (or the sweep, for a lost event or a local test
  checkout) gives the item back. An abandoned checkout never keeps stock.
- The paid pledge's claim becomes the donor's entitlement (no second take). A gift that reaches a
  limited reward with no claim (an offline gift, a second gift crossing a tier, a payment after
  its claim expired) takes one if any is left, and otherwise the reward is not granted.
- A refund, lost dispute or opt-out that ends the reward gives the item back if it was never
  posted (or came back as returned); a posted one is gone, and comes back to stock only if the
  parcel is returned. A donor who reaches the reward again gets that same item back, without
  taking another.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Callable

import sqlalchemy as sa
from flask_babel import gettext as _

from huey import crontab

from filmfund import jobs
from filmfund.audit import record_audit
from filmfund.db import utcnow
from filmfund.errors import ConflictError, NotFoundError, ValidationError
from filmfund.extensions import db
from filmfund.rewards import holdings, texts
from filmfund.rewards.models import (
    Campaign,
    ClaimState,
    Entitlement,
    Pledge,
    PledgeState,
    Reward,
    RewardClaim,
)

CLAIM_MINUTES = 30  # Stripe's shortest Checkout expiry: the claim lives as long as the session
SWEEP_GRACE = timedelta(minutes=5)  # the expired event's usual delay, before the sweep steps in
LIMIT_MAX = 1_000_000


class SoldOut(ConflictError):
    code = "reward_sold_out"


def take(reward_id: int) -> bool:
    """One item of the reward, if one is left (always, for an unlimited reward)."""
    done = db.session.execute(
        sa.update(Reward).where(Reward.id == reward_id, sa.or_(Reward.quantity_limit.is_(None),
                                                               Reward.claimed < Reward.quantity_limit))
        .values(claimed=Reward.claimed + 1).execution_options(synchronize_session=False))
    return done.rowcount == 1


def give_back(reward_id: int, *only_if: sa.ColumnElement[bool]) -> None:
    """One item back to stock (never below none claimed); `only_if`: further conditions on the reward."""
    db.session.execute(sa.update(Reward).where(Reward.id == reward_id, Reward.claimed > 0, *only_if)
                       .values(claimed=Reward.claimed - 1).execution_options(synchronize_session=False))


# ---------------------------------------------------------------- items that left the producers' hands

#: Whether an entitlement's item is out with its donor (posted, and not come back as returned): the
#: items are fulfil's, so fulfil installs the answer (an SQL condition on an entitlement id, a
#: value or a column) when it loads, keyed by its name; rewards never imports fulfil, and
#: `donors.CONFIRMED_ELSEWHERE` is the same idea. With no answer (rewards alone) nothing was posted.
SENT_ELSEWHERE: dict[str, Callable[[object], sa.ColumnElement[bool]]] = {}


def sent_sql(entitlement_id) -> sa.ColumnElement[bool]:
    """SQL: this entitlement's item is out with its donor; `entitlement_id` a value or a column."""
    return sa.or_(sa.false(), *(answer(entitlement_id) for answer in SENT_ELSEWHERE.values()))


def sent(entitlement_id: int) -> bool:
    """Python form of sent_sql: one donor's item, as refresh_entitlements asks."""
    return bool(db.session.scalar(sa.select(sent_sql(entitlement_id))))


def sent_item_returned(reward_id: int) -> None:
    """A parcel posted to a donor whose reward had ended came back: the item is stock again (a
    limited reward's only; fulfil calls this when it marks the item returned)."""
    give_back(reward_id, Reward.quantity_limit.is_not(None))


def limited_ids(campaign) -> set[int]:
    """The ids of the campaign's rewards with a limit (its snapshot says so)."""
    return {r.id for t in campaign.tiers for r in t.rewards if getattr(r, "quantity_limit", None) is not None}


def stock(campaign_id: int) -> dict[str, dict]:
    """{reward key: {"limit", "left"}} of the limited rewards (the pledge form: one query)."""
    rows = db.session.execute(sa.select(Reward.key, Reward.quantity_limit, Reward.claimed).where(
        Reward.campaign_id == campaign_id, Reward.quantity_limit.is_not(None))).all()
    return {key: {"limit": limit, "left": max(0, limit - claimed)} for key, limit, claimed in rows}


def set_reward_limit(reward_id: int, limit: int | None, *, actor=None) -> Reward:
    """The one way to set a reward's limit (campaign file, console). None: unlimited. A limit below
    what is already claimed takes nothing back from anyone: the reward is sold out until enough
    items are given back. Bumps the campaign, so every process sees the change."""
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or not 0 <= limit <= LIMIT_MAX):
        raise ValidationError(_("limit: a whole number from 0 to %(n)s, or none.", n=LIMIT_MAX), code="invalid_limit")
    reward = db.session.get(Reward, reward_id)
    if reward is None:
        raise NotFoundError(_("No such reward."))
    if reward.quantity_limit != limit:
        record_audit("reward.limit", f"reward {reward.key}", {"from": reward.quantity_limit, "to": limit},
                     actor=actor)
        # One statement: the limit, and the count of what is spoken for (only limited rewards keep it).
        db.session.execute(sa.update(Reward).where(Reward.id == reward.id).values(
            quantity_limit=limit, claimed=spoken_for_sql(reward.id))
            .execution_options(synchronize_session=False))
        db.session.execute(sa.update(Campaign).where(Campaign.id == reward.campaign_id).values(updated_at=utcnow()))
        db.session.refresh(reward)
    return reward


def holders_sql(reward_id):
    """SQL: how many donors hold the reward; `reward_id` a value or a column (the ledger check's)."""
    return (sa.select(sa.func.count()).select_from(Entitlement)
            .where(Entitlement.reward_id == reward_id, holdings.HELD).scalar_subquery())


def held_claims_sql(reward_id):
    """SQL: how many of the reward's items unpaid pledges hold."""
    return (sa.select(sa.func.count()).select_from(RewardClaim)
            .where(RewardClaim.reward_id == reward_id, RewardClaim.state == ClaimState.HELD).scalar_subquery())


def sent_after_end_sql(reward_id):
    """SQL: how many of the reward's items are out with donors whose reward ended after it was posted."""
    return (sa.select(sa.func.count()).select_from(Entitlement)
            .where(Entitlement.reward_id == reward_id, sa.not_(holdings.HELD), sent_sql(Entitlement.id))
            .scalar_subquery())


def spoken_for_sql(reward_id):
    """SQL: what a limited reward's `claimed` must be (the module's rule; the ledger check proves it)."""
    return holders_sql(reward_id) + held_claims_sql(reward_id) + sent_after_end_sql(reward_id)


def claim_for_pledge(pledge: Pledge, campaign, reward_ids: set[int], now: datetime | None = None) -> None:
    """Hold one item of each limited reward in `reward_ids` for this unpaid pledge, or refuse it
    (SoldOut, naming the first reward that is gone). The caller's rollback undoes the takes."""
    now = now or utcnow()
    titles = {r.id: r for t in campaign.tiers for r in t.rewards}
    for reward_id in sorted(reward_ids & limited_ids(campaign)):
        if not take(reward_id):
            title = texts.reward_title(campaign.translations, titles[reward_id])
            raise SoldOut(_("Sold out: “%(reward)s” has no items left, so a gift of this amount cannot be "
                            "accepted with its rewards. Give less than its tier, or choose “No rewards”.",
                            reward=title))
        db.session.add(RewardClaim(reward_id=reward_id, pledge_id=pledge.id, state=ClaimState.HELD,
                                   expires_at=now + timedelta(minutes=CLAIM_MINUTES)))


def session_expiry(pledge_id: str) -> int | None:
    """The Checkout Session's `expires_at` (unix seconds) for a pledge holding items: a minute past
    its claims' expiry (Stripe takes 30 minutes at least), so the session ends before the sweep
    gives the items back. None: Stripe's default (24 hours) for a pledge that holds nothing."""
    first = db.session.scalar(sa.select(sa.func.min(RewardClaim.expires_at)).where(
        RewardClaim.pledge_id == pledge_id, RewardClaim.state == ClaimState.HELD))
    if first is None:
        return None
    return int(max(first, utcnow() + timedelta(minutes=CLAIM_MINUTES)).timestamp()) + 60


def held_claims(pledge_id: str) -> list[RewardClaim]:
    return list(db.session.scalars(sa.select(RewardClaim).where(
        RewardClaim.pledge_id == pledge_id, RewardClaim.state == ClaimState.HELD).with_for_update()))


def use_claim(pledge_id: str | None, reward_id: int) -> bool:
    """The paid pledge's held claim on this reward becomes the donor's item (no second take)."""
    if pledge_id is None:
        return False
    done = db.session.execute(sa.update(RewardClaim).where(
        RewardClaim.pledge_id == pledge_id, RewardClaim.reward_id == reward_id,
        RewardClaim.state == ClaimState.HELD).values(state=ClaimState.USED, decided_at=utcnow())
        .execution_options(synchronize_session=False))
    return done.rowcount == 1


def release_pledge(pledge_id: str) -> int:
    """Give back every item the pledge still holds (its checkout expired or failed, or it was paid
    and did not need them): returns how many."""
    n = 0
    for claim in held_claims(pledge_id):
        claim.state, claim.decided_at = ClaimState.RELEASED, utcnow()
        give_back(claim.reward_id)
        n += 1
    db.session.flush()
    return n


def sweep_expired(now: datetime | None = None) -> int:
    """Release the claims of checkouts that outlived their session (a lost `expired` event, or a
    local test checkout nobody finished). A pledge whose payment is processing keeps its claim."""
    now = now or utcnow()
    pledge_ids = list(db.session.scalars(sa.select(RewardClaim.pledge_id).join(Pledge, Pledge.id == RewardClaim.pledge_id)
                                         .where(RewardClaim.state == ClaimState.HELD,
                                                RewardClaim.expires_at < now - SWEEP_GRACE,
                                                Pledge.state.in_([PledgeState.PENDING, PledgeState.EXPIRED,
                                                                  PledgeState.FAILED])).distinct()))
    return sum(release_pledge(pid) for pid in pledge_ids)


@jobs.huey.periodic_task(crontab(minute="*/5"), name="filmfund.rewards.sweep_reward_claims")
def sweep_reward_claims() -> int:
    """Every five minutes: give back the items of checkouts nobody finished."""
    return jobs.in_worker_app(_sweep_and_commit)


def _sweep_and_commit() -> int:
    released = sweep_expired()
    db.session.commit()
    return released
