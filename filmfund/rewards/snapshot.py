"""The campaign as every request reads it: an immutable snapshot, cached per process.

Building the campaign with its tiers and rewards as ORM objects (27 of them for the film) on
every request was half of a pledge's CPU. The snapshot is built once and reused while the
campaign row's `updated_at` stays the same; `filmfund campaign load` (in any process) bumps it,
so each process rebuilds its snapshot on its next request. Checking costs one indexed read of
one row. The snapshot has the attributes callers read from a Campaign (id, slug, title, currency,
share_bps, tiers with their rewards, ...); it is never attached to a session.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa

from filmfund.extensions import db, one_statement
from filmfund.rewards.models import BudgetLine, Campaign, CampaignPagePart, Reward, RewardKind, Tier
from filmfund.rewards.totals import CampaignTotal


@dataclass(frozen=True)
class RewardSnapshot:
    id: int
    campaign_id: int
    tier_id: int | None
    key: str
    kind: RewardKind
    title: str
    position: int
    quantity_limit: int | None = None  # the stock left is read live (rewards/stock.py), never cached
    replaces: str | None = None  # the key of the reward of a lower tier it takes the place of


@dataclass(frozen=True)
class TierSnapshot:
    id: int
    campaign_id: int
    min_amount: int
    name: str
    rewards: tuple[RewardSnapshot, ...]


@dataclass(frozen=True)
class BudgetLineSnapshot:
    id: int
    key: str
    title: dict
    planned: int


@dataclass(frozen=True)
class CampaignSnapshot:
    id: int
    slug: str
    title: str
    tagline: str
    description: str
    currency: str
    goal: int
    partner_name: str
    share_bps: int
    translations: dict  # every language's texts (rewards/texts.py); not to be changed in place
    created_at: datetime
    updated_at: datetime
    tiers: tuple[TierSnapshot, ...]
    # The public page's parts ({part: plain data}, see CampaignPagePart) and the active budget
    # lines, in order: read with the campaign, rebuilt when a producer's edit bumps updated_at.
    page: dict = field(default_factory=dict, compare=False)
    budget: tuple[BudgetLineSnapshot, ...] = ()
    time_zone: str = "UTC"  # where the campaign's days and months are counted (rewards/statements.py)


_cache: dict[tuple[str, str], CampaignSnapshot] = {}
_lock = threading.Lock()


# Built once, pure Core (no ORM statement compilation per request): the check every request makes.
_CHECK = sa.select(Campaign.__table__.c.id, Campaign.__table__.c.updated_at).where(
    Campaign.__table__.c.slug == sa.bindparam("slug"))


# The same check with the totals row of one money mode joined (absent before any money: zeros).
_TOTALS = CampaignTotal.__table__
_CHECK_FIGURES = sa.select(Campaign.__table__.c.id, Campaign.__table__.c.updated_at, _TOTALS.c.net,
                           _TOTALS.c.donors).select_from(Campaign.__table__.outerjoin(
                               _TOTALS, sa.and_(_TOTALS.c.campaign_id == Campaign.__table__.c.id,
                                                _TOTALS.c.livemode == sa.bindparam("livemode")))).where(
    Campaign.__table__.c.slug == sa.bindparam("slug"))


def _key(slug: str) -> tuple[str, str]:
    return (str(db.engine.url), slug)


def cached(slug: str) -> CampaignSnapshot | None:
    """The snapshot of this campaign, rebuilt if the campaign changed since; None if there is no
    such campaign."""
    row = db.session.connection().execute(_CHECK, {"slug": slug}).first()
    if row is None:
        return None
    snap = _cache.get(_key(slug))
    if snap is not None and snap.id == row.id and snap.updated_at == row.updated_at:
        return snap
    snap = build(row.id)
    with _lock:
        _cache[_key(slug)] = snap
    return snap


def peek(slug: str) -> CampaignSnapshot | None:
    """This process's snapshot of the campaign as last checked, without checking it again (None
    before the first check). For a write that re-checks what it relies on in its own statement."""
    return _cache.get(_key(slug))


def cached_with_figures(slug: str, livemode: bool) -> tuple[CampaignSnapshot, tuple[int, int]] | None:
    """The snapshot (as `cached`) and the campaign's (net, donors) in that money mode, checked and
    read in ONE statement (the public campaign document's read); None if there is no such campaign."""
    with one_statement() as conn:  # a read alone: no BEGIN and ROLLBACK around it on PostgreSQL
        row = conn.execute(_CHECK_FIGURES, {"slug": slug, "livemode": livemode}).first()
    if row is None:
        return None
    snap = _cache.get(_key(slug))
    if snap is None or snap.id != row.id or snap.updated_at != row.updated_at:
        snap = cached(slug)
        if snap is None or snap.id != row.id:  # replaced meanwhile: the caller reads afresh
            return None
    return snap, (int(row.net or 0), int(row.donors or 0))


def build(campaign_id: int) -> CampaignSnapshot:
    c = db.session.execute(sa.select(Campaign.__table__).where(Campaign.id == campaign_id)).mappings().one()
    tiers = db.session.execute(sa.select(Tier.id, Tier.min_amount, Tier.name).where(Tier.campaign_id == campaign_id)
                               .order_by(Tier.min_amount)).all()
    rewards = db.session.execute(
        sa.select(Reward.id, Reward.campaign_id, Reward.tier_id, Reward.key, Reward.kind, Reward.title,
                  Reward.position, Reward.quantity_limit, Reward.replaces).where(Reward.campaign_id == campaign_id, Reward.tier_id.is_not(None))
        .order_by(Reward.position, Reward.id)).all()
    by_tier: dict[int, list[RewardSnapshot]] = {}
    for r in rewards:
        by_tier.setdefault(r.tier_id, []).append(RewardSnapshot(r.id, r.campaign_id, r.tier_id, r.key,
                                                                RewardKind(r.kind), r.title, r.position,
                                                                r.quantity_limit, r.replaces))
    page = dict(db.session.execute(sa.select(CampaignPagePart.part, CampaignPagePart.content)
                                   .where(CampaignPagePart.campaign_id == campaign_id)).all())
    budget = db.session.execute(sa.select(BudgetLine.id, BudgetLine.key, BudgetLine.title, BudgetLine.planned)
                                .where(BudgetLine.campaign_id == campaign_id, BudgetLine.active)
                                .order_by(BudgetLine.position, BudgetLine.id)).all()
    return CampaignSnapshot(
        id=c["id"], slug=c["slug"], title=c["title"], tagline=c["tagline"], description=c["description"],
        currency=c["currency"], goal=c["goal"], partner_name=c["partner_name"], share_bps=c["share_bps"],
        translations=c["translations"] or {}, created_at=c["created_at"], updated_at=c["updated_at"],
        tiers=tuple(TierSnapshot(t.id, campaign_id, t.min_amount, t.name, tuple(by_tier.get(t.id, ())))
                    for t in tiers),
        page=page, budget=tuple(BudgetLineSnapshot(b.id, b.key, b.title, b.planned) for b in budget),
        time_zone=c["time_zone"] or "UTC")


def forget() -> None:
    """Drop every cached snapshot (this process); other processes see the bumped updated_at."""
    with _lock:
        _cache.clear()
