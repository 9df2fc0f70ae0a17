"""The campaign: loaded from its TOML file, read as the process's cached snapshot, and its public
document (`GET /api/v1/campaign`)."""
from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Callable

import sqlalchemy as sa
from flask import current_app
from flask_babel import gettext as _

from filmfund.audit import record_audit
from filmfund.auth.models import User
from filmfund.db import utcnow
from filmfund.errors import ValidationError
from filmfund.extensions import db
from filmfund.i18n import current_language
from filmfund.rewards import ledger, snapshot, stock, texts, totals
from filmfund.rewards.campaign_file import read_campaign_file
from filmfund.rewards.entitlements import refresh_entitlements, reward_dict
from filmfund.rewards.models import (
    BudgetLine,
    Campaign,
    CampaignPagePart,
    Donation,
    Pledge,
    PledgeState,
    Reward,
    Tier,
)


def load_campaign(path: str | Path | None = None) -> Campaign:
    """Create or update the campaign from its TOML file. Idempotent: matched by slug, tiers by
    min_amount, rewards by key; a reward that left the file is detached from its tier, never deleted
    (entitlements and media point at it)."""
    spec = read_campaign_file(path or current_app.config["CAMPAIGN_FILE"])
    campaign = db.session.scalar(sa.select(Campaign).where(Campaign.slug == spec.slug))
    if campaign is None:
        campaign = Campaign(slug=spec.slug)
        db.session.add(campaign)
    # A part a producer saved in the browser (/admin/campaign, /admin/page) is the browser's: the
    # file fills in only the others (browser_parts).
    owned = browser_parts(campaign.id) if campaign.id is not None else set()
    if campaign.id is not None and gifts_recorded(campaign.id):
        if campaign.currency != spec.currency:
            raise ValidationError(_("currency: cannot change once donations are recorded"), code="invalid_campaign")
        if "settings" not in owned and campaign.share_bps != spec.share_bps:
            raise ValidationError(SHARE_FIXED(), code="share_fixed")
        # The days and months of the statements filed with the partner are counted in the zone: in
        # another, a gift of 1:30 on 1 November in Beijing would move back into October.
        if campaign.time_zone != spec.time_zone:
            raise ValidationError(_("time_zone: cannot change once donations are recorded"), code="invalid_campaign")
    if campaign.id is not None and campaign.currency != spec.currency and amounts_elsewhere(campaign.id):
        # Each expense keeps the currency it was spent in; the public page adds them up in the campaign's.
        raise ValidationError(_("currency: cannot change once expenses are recorded"), code="invalid_campaign")
    if campaign.id is not None and campaign.currency != spec.currency:
        waiting = checkouts_open(campaign.id, other_than=spec.currency)
        if waiting:
            raise ValidationError(_("currency: cannot change while checkouts opened in %(currency)s may still be "
                                    "paid (%(n)s now): their money would come in %(currency)s. Try again once they "
                                    "are paid or have expired (a checkout lasts a day at most).",
                                    currency=campaign.currency.upper(), n=waiting), code="checkouts_open")
    attrs = [a for a in ("title", "tagline", "description", "currency", "goal", "partner_name", "share_bps",
                          "time_zone")
             if not ("settings" in owned and a in BROWSER_SETTINGS)]
    changed = {attr: [getattr(campaign, attr), getattr(spec, attr)] for attr in attrs
               if attr != "description" and campaign.id is not None and getattr(campaign, attr) != getattr(spec, attr)}
    for attr in attrs:
        setattr(campaign, attr, getattr(spec, attr))
    translations = _file_translations(campaign.translations or {}, spec.translations, owned)
    if campaign.translations != translations:
        campaign.translations = translations
    db.session.flush()
    if changed:  # a change of an existing campaign's settings (goal, partner share, ...) is a staff action
        record_audit("settings.change", f"campaign {campaign.slug}", changed)
    totals.ensure_campaign_rows(campaign.id)
    if "tiers" not in owned:
        _load_tiers(campaign, spec)
    _seed_page(campaign, spec, owned)
    db.session.expire(campaign, ["tiers"])
    campaign.updated_at = utcnow()  # every process's cached snapshot is rebuilt (snapshot.py)
    # Tiers may have moved: stored entitlements must match them again.
    ledger.lock_money(campaign.id)
    for user in db.session.scalars(sa.select(User).where(User.id.in_(
            sa.select(Donation.user_id).where(Donation.campaign_id == campaign.id)))):
        refresh_entitlements(user, campaign)
    db.session.flush()
    snapshot.forget()  # the new updated_at, once committed, makes every process rebuild its own
    db.session.expire_all()  # tiers and their rewards are read again as the file left them
    db.session.refresh(campaign)
    return campaign


def gifts_recorded(campaign_id: int) -> bool:
    """Whether a gift (test or live money) is recorded for the campaign. From the first one on,
    its currency and the partner's share are fixed: every ledger entry, each gift's allocation to
    the partner and every statement rest on them (contract: the allocations add up to exactly
    share_due at every moment, which a new rate over the same net would break)."""
    return bool(db.session.scalar(sa.select(sa.exists().where(Donation.campaign_id == campaign_id))))


#: Whether another component keeps amounts of the campaign in its currency (books: its expenses),
#: asked with the campaign's id; installed by that component when it loads, keyed by its name:
#: rewards never imports the components above it (`stock.SENT_ELSEWHERE` is the same idea).
AMOUNTS_ELSEWHERE: dict[str, Callable[[int], bool]] = {}


def amounts_elsewhere(campaign_id: int) -> bool:
    """Whether an amount in the campaign's currency is recorded outside its gifts: then the
    currency is fixed, as it is by the first gift."""
    return any(answer(campaign_id) for answer in AMOUNTS_ELSEWHERE.values())


# A Checkout Session lives 24 hours at most (Stripe's `expires_at`); an hour to spare for its last events.
CHECKOUT_LIFETIME = timedelta(hours=25)


def checkouts_open(campaign_id: int, other_than: str | None = None) -> int:
    """How many of the campaign's pledges may still be paid (in a currency other than `other_than`):
    one whose Checkout may still be open (pending, touched within a Checkout's lifetime; a pledge
    kept without a session gets one when its donor tries again), or whose payment is under way (a
    bank debit: processing). Each would be paid in its own currency, whatever the campaign's is then."""
    may_pay = sa.or_(Pledge.state == PledgeState.PROCESSING,
                     sa.and_(Pledge.state == PledgeState.PENDING, Pledge.updated_at > utcnow() - CHECKOUT_LIFETIME))
    stmt = sa.select(sa.func.count(Pledge.id)).where(Pledge.campaign_id == campaign_id, may_pay)
    if other_than is not None:
        stmt = stmt.where(Pledge.currency != other_than)
    return int(db.session.scalar(stmt) or 0)


def SHARE_FIXED() -> str:  # noqa: N802 (a message, read in the request's language)
    return _("Partner's share: it cannot change once gifts are recorded. Each gift's part for the "
             "partner is booked at the share agreed; the books and the partner's statements rest on it.")


# What the browser's `settings` part holds (the title and partner's name in every language too).
BROWSER_SETTINGS = ("title", "goal", "partner_name", "share_bps")


def browser_parts(campaign_id: int) -> set[str]:
    """The parts of the campaign a producer saved in the browser and not handed back: the page's
    (story, crew, risks, faq, stretch_goals) and the settings' (settings, tiers). The one home of
    the rule "the campaign file fills a part in until a producer edits it": a load of the file
    leaves these alone."""
    return set(db.session.scalars(sa.select(CampaignPagePart.part).where(
        CampaignPagePart.campaign_id == campaign_id, CampaignPagePart.edited_at.is_not(None))))


def _file_translations(current: dict, from_file: dict, owned: set[str]) -> dict:
    """The file's texts per language, except those of the parts the browser owns (kept as they are)."""
    def browser_owns(key: str) -> bool:
        return (("settings" in owned and key in ("title", "partner_name"))
                or ("tiers" in owned and key.startswith(("tier:", "reward:"))))

    out: dict[str, dict] = {}
    for lang in set(current) | set(from_file):
        texts = {k: v for k, v in (from_file.get(lang) or {}).items() if not browser_owns(k)}
        texts.update({k: v for k, v in (current.get(lang) or {}).items() if browser_owns(k)})
        if texts:
            out[lang] = texts
    return out


def _load_tiers(campaign: Campaign, spec) -> None:
    """Tiers and rewards from the file: tiers matched by min_amount, rewards by key."""
    tiers = {t.min_amount: t for t in campaign.tiers}
    rewards = {r.key: r for r in db.session.scalars(sa.select(Reward).where(Reward.campaign_id == campaign.id))}
    kept_tiers, limited = set(), []
    for tspec in spec.tiers:
        tier = tiers.get(tspec.min_amount)
        if tier is None:
            tier = Tier(campaign=campaign, min_amount=tspec.min_amount, name=tspec.name)
            db.session.add(tier)
        tier.name = tspec.name
        kept_tiers.add(tspec.min_amount)
        db.session.flush()
        for position, rspec in enumerate(tspec.rewards):
            reward = rewards.pop(rspec.key, None) or Reward(campaign_id=campaign.id, key=rspec.key)
            reward.kind, reward.title, reward.tier_id, reward.position = rspec.kind, rspec.title, tier.id, position
            reward.replaces = rspec.replaces
            db.session.add(reward)
            if rspec.limit is not None:
                limited.append((reward, rspec.limit))
    db.session.flush()
    for reward, limit in limited:  # the file sets a limit it names; the console may change it later
        stock.set_reward_limit(reward.id, limit)
    for reward in rewards.values():
        reward.tier_id = None
    for min_amount, tier in tiers.items():
        if min_amount not in kept_tiers:
            campaign.tiers.remove(tier)
    db.session.flush()


def _seed_page(campaign: Campaign, spec, owned: set[str]) -> None:
    """The page's parts and budget lines from the file. A part a producer edited in the browser
    is theirs: the file no longer touches it (it seeds, it does not overrule). Budget lines are
    money planning, kept in the file like the goal: matched by key, a line that left the file is
    hidden, never deleted (expenses point at it), and a change of an existing line is audited."""
    parts = {p.part: p for p in db.session.scalars(
        sa.select(CampaignPagePart).where(CampaignPagePart.campaign_id == campaign.id))}
    seeded = dict(spec.page, artwork=spec.artwork, screening=spec.screening or {})
    for part, content in seeded.items():
        row = parts.get(part)
        if row is None:
            db.session.add(CampaignPagePart(campaign_id=campaign.id, part=part, content=content))
        elif part not in owned and row.content != content:
            row.content = content
    if "budget" not in owned:
        _load_budget(campaign, spec)


def _load_budget(campaign: Campaign, spec) -> None:
    lines = {b.key: b for b in db.session.scalars(sa.select(BudgetLine).where(BudgetLine.campaign_id == campaign.id))}
    changed = {}
    for position, bspec in enumerate(spec.budget):
        line = lines.pop(bspec.key, None)
        if line is None:
            line = BudgetLine(campaign_id=campaign.id, key=bspec.key, title=bspec.title, planned=bspec.planned)
            db.session.add(line)
        elif (line.title, line.planned, line.active) != (bspec.title, bspec.planned, True):
            changed[bspec.key] = [line.planned, bspec.planned]
        line.title, line.planned, line.position, line.active = bspec.title, bspec.planned, position, True
    for line in lines.values():
        if line.active:
            changed[line.key] = [line.planned, None]
        line.active = False
    if changed:
        record_audit("settings.change", f"campaign {campaign.slug} budget", changed)


_slug_cache: dict[tuple[str, float], str] = {}


def configured_slug() -> str:
    """The slug of the configured campaign file (parsed again only when the file changes)."""
    name = str(current_app.config["CAMPAIGN_FILE"])
    try:
        key = (name, os.stat(name).st_mtime)  # (not pathlib's: a Path made and written out per request)
    except OSError:
        return read_campaign_file(Path(name)).slug  # raises the clear "no such campaign file" error
    slug = _slug_cache.get(key)
    if slug is None:
        slug = _slug_cache[key] = read_campaign_file(Path(name)).slug
    return slug


def current_campaign() -> snapshot.CampaignSnapshot:
    """The campaign named by CAMPAIGN_FILE (loaded from the file the first time it is needed), as
    the process's cached snapshot: one indexed read per call, no ORM objects (see snapshot.py)."""
    slug = configured_slug()
    snap = snapshot.cached(slug)
    if snap is None:
        try:
            load_campaign()
            # Loading on first need is a use case of its own, committed before the caller's work
            # goes on (every later request reads it from the snapshot).
            db.session.commit()
        except sa.exc.IntegrityError:  # another request loaded it at the same moment
            db.session.rollback()
        snap = snapshot.cached(slug)
    return snap


def current_title() -> str:
    """The current campaign's title in the reader's language: what a donor's sign-in mail names
    (auth.links.name_sign_in_mail_by, installed at init_app)."""
    return texts.campaign_title(current_campaign())


def loaded_campaign() -> snapshot.CampaignSnapshot | None:
    """The current campaign's snapshot if it is loaded, else None: for what every page shows
    (the top bar), which must never load the campaign as a side effect."""
    return snapshot.cached(configured_slug())


def campaign_of(pledge: Pledge):
    """A pledge's campaign: the cached snapshot when it is the current one (it always is, but
    for a pledge made under another campaign file)."""
    current = current_campaign()
    return current if current.id == pledge.campaign_id else db.session.get(Campaign, pledge.campaign_id)



def campaign_document() -> dict:
    """The public GET /api/v1/campaign document of the current campaign: the snapshot check and
    its totals row come in one read (one round trip), as campaign_summary(current_campaign())."""
    livemode = ledger.money_mode()
    found = snapshot.cached_with_figures(configured_slug(), livemode)
    if found is None:  # not loaded yet: current_campaign loads it
        return campaign_summary(current_campaign())
    return _summary(*found, livemode)


def campaign_summary(campaign: Campaign) -> dict:
    """The public GET /api/v1/campaign document."""
    livemode = ledger.money_mode()
    # one row: no sum over the ledger
    return _summary(campaign, totals.campaign_figures(campaign.id, livemode), livemode)


def _summary(campaign: Campaign, figures: tuple[int, int], livemode: bool) -> dict:
    raised, donors = figures
    tr = campaign.translations  # the texts in the reader's language (Accept-Language, ?lang=)
    lang = current_language()  # asked once, not for each of the thirty texts (the hot path)
    return {
        "slug": campaign.slug, "title": texts.localized(tr, "title", campaign.title, lang),
        "tagline": texts.localized(tr, "tagline", campaign.tagline, lang),
        "description": texts.localized(tr, "description", campaign.description, lang),
        "currency": campaign.currency, "goal": campaign.goal,
        "raised": raised, "donors": donors,
        "partner": {"name": texts.localized(tr, "partner_name", campaign.partner_name, lang),
                    "share_bps": campaign.share_bps},
        "tiers": [{"min_amount": t.min_amount, "name": texts.tier_name(tr, t, lang),
                   "rewards": [reward_dict(r, tr, lang) for r in t.rewards]}
                  for t in campaign.tiers],
        "test_money": not livemode,  # the figures count test payments only
    }
