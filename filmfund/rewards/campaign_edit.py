"""The campaign's settings and tiers as producers edit them in the browser (/admin/campaign).

Two parts, kept as the page's parts are (one CampaignPagePart row each, see filmfund.site.page):
- `settings`: the title and the partner's name (both languages), the goal, the partner's share.
- `tiers`: each tier's minimum and name (both languages); its rewards stay with it.
The campaign file starts a film and fills a part in until a producer saves it here; from then on
`filmfund campaign load` leaves that part alone (campaign.browser_parts is the one home of that
rule), until the producer hands the part back to the file.

Tiers and what donors hold. Holdings are computed from the tiers (filmfund.rewards.holdings), so
after a change every donor's entitlements are refreshed from the new tiers, in the same
transaction: lowering a minimum grants the tier's rewards to the donors who now reach it; raising
one (or removing a tier) revokes them from donors who no longer reach it. A reward already
delivered (fulfilled) is never taken back silently: such a change is refused, naming how many
delivered rewards it would revoke, unless the producer ticks "take them back" (the entitlement
is then revoked, its fulfilled_at kept as the record, and it comes back as delivered if the donor
reaches the tier again). A tier's rewards move with it (they belong to the tier row, not to the
amount); a removed tier's rewards are detached, never deleted.

Services do not commit; the view commits once (or rolls back on a refusal).
"""
from __future__ import annotations

import re

import sqlalchemy as sa
from flask_babel import gettext as _

from filmfund.audit import record_audit
from filmfund.auth.models import User
from filmfund.db import utcnow
from filmfund.errors import DomainError, ValidationError
from filmfund.extensions import db
from filmfund.money import cents_to_input, parse_dollars
from filmfund.rewards import holdings, ledger, rules, snapshot, stock
from filmfund.rewards.campaign import SHARE_FIXED, gifts_recorded, load_campaign
from filmfund.rewards.campaign_file import KEY_RE, MAX_AMOUNT, TEXT_LANGUAGES
from filmfund.rewards.entitlements import refresh_entitlements
from filmfund.rewards.models import BudgetLine, Campaign, CampaignPagePart, Donation, Entitlement, Reward, RewardKind, Tier
from filmfund.typed import one_line

SETTINGS_PARTS = ("settings", "tiers", "budget")
MAX_TIERS = 30
MAX_REWARDS = 100
MAX_BUDGET_LINES = 100
_PERCENT_RE = re.compile(r"^\d{1,3}(\.\d{1,2})?$")


class DeliveredRewardsError(ValidationError):
    code = "delivered_rewards"


class FieldRefused(ValidationError):
    """A refusal about one field of the editor's forms, `field` its name in the form (`tier-0-min`).
    The page marks that field invalid, described by its form's message, and focuses it (the view
    hands `field` to editor_view_from_form)."""

    def __init__(self, message: str, field: str, *, code: str):
        super().__init__(message, code=code)
        self.field = field


def _texts(campaign: Campaign, key: str, kept: str) -> dict[str, str]:
    """{language: text} of one campaign text: the language's own, else (English) the kept column."""
    out = {}
    for lang in TEXT_LANGUAGES:
        own = ((campaign.translations or {}).get(lang) or {}).get(key)
        if own:
            out[lang] = own
    if not out and kept:
        out["en"] = kept
    return out


def editor_view(campaign_id: int) -> dict:
    """What the editor's forms show: each part's values and whether the browser owns it."""
    campaign = db.session.get(Campaign, campaign_id)
    rows = {p.part: p for p in db.session.scalars(sa.select(CampaignPagePart).where(
        CampaignPagePart.campaign_id == campaign_id, CampaignPagePart.part.in_(SETTINGS_PARTS)))}
    tiers = db.session.scalars(sa.select(Tier).where(Tier.campaign_id == campaign_id).order_by(Tier.min_amount)).all()
    rewards = db.session.scalars(sa.select(Reward).where(Reward.campaign_id == campaign_id)
                                 .order_by(Reward.tier_id.is_(None), Reward.tier_id, Reward.position)).all()
    return {
        "settings": {"title": _texts(campaign, "title", campaign.title),
                     "partner_name": _texts(campaign, "partner_name", campaign.partner_name),
                     "goal": cents_to_input(campaign.goal),
                     "share": _bps_to_percent(campaign.share_bps)},
        "share_fixed": gifts_recorded(campaign_id),
        "tiers": [{"id": t.id, "min": cents_to_input(t.min_amount),
                   "name": _texts(campaign, f"tier:{t.min_amount}", t.name),
                   "rewards": [_texts(campaign, f"reward:{r.key}", r.title) for r in t.rewards]} for t in tiers],
        "rewards": [{"id": r.id, "key": r.key, "kind": r.kind.value, "tier_id": r.tier_id,
                     "limit": "" if r.quantity_limit is None else str(r.quantity_limit), "claimed": r.claimed,
                     "replaces": r.replaces or "", "title": _texts(campaign, f"reward:{r.key}", r.title)}
                    for r in rewards],
        "kinds": [k.value for k in RewardKind],
        # what a reward may take the place of ("Takes the place of"): any physical one, checked on save
        "replaceable": [{"key": r.key, "title": _texts(campaign, f"reward:{r.key}", r.title)}
                        for r in sorted(rewards, key=lambda r: r.id) if r.kind == RewardKind.PHYSICAL],
        "budget": [{"id": b.id, "key": b.key, "title": dict(b.title or {}), "planned": cents_to_input(b.planned),
                    "active": b.active}
                   for b in db.session.scalars(sa.select(BudgetLine).where(BudgetLine.campaign_id == campaign_id)
                                               .order_by(BudgetLine.active.desc(), BudgetLine.position, BudgetLine.id))],
        "edited_at": {part: rows[part].edited_at if part in rows else None for part in SETTINGS_PARTS},
        "refused": None,  # the field a refusal names, as the page shows it (editor_view_from_form)
    }


def editor_view_from_form(view: dict, part: str, form, refused: str | None = None) -> dict:
    """The editor as the producer left it after a refusal: their typing, nothing lost; `refused`:
    the field the refusal names (FieldRefused), renumbered as the rows are shown again (blank
    rows dropped), or None."""
    view = dict(view)
    view["refused"] = refused if part == "settings" else None
    if part == "settings":
        view["settings"] = {"title": {lang: form.get(f"title-{lang}", "") for lang in TEXT_LANGUAGES},
                            "partner_name": {lang: form.get(f"partner_name-{lang}", "") for lang in TEXT_LANGUAGES},
                            "goal": form.get("goal", ""), "share": form.get("share", "")}
    elif part == "tiers":
        rewards = {t["id"]: t["rewards"] for t in view["tiers"]}
        rows, i = [], 0
        while f"tier-{i}-present" in form and i <= MAX_TIERS:
            raw_id = form.get(f"tier-{i}-id", "")
            tier_id = int(raw_id) if raw_id.isdigit() else None
            row = {"id": tier_id, "min": form.get(f"tier-{i}-min", ""), "rewards": rewards.get(tier_id, []),
                   "name": {lang: form.get(f"tier-{i}-name-{lang}", "") for lang in TEXT_LANGUAGES},
                   "remove": form.get(f"tier-{i}-remove") == "1"}
            i += 1
            if tier_id is not None or row["min"] or any(row["name"].values()):
                view["refused"] = _renumbered(refused, "tier", i - 1, len(rows)) or view["refused"]
                rows.append(row)
        view["tiers"] = rows
    elif part == "rewards":
        keys = {r["id"]: r["key"] for r in view["rewards"]}  # an existing row's key is not in its form
        rows, i = [], 0
        while f"reward-{i}-present" in form and i <= MAX_REWARDS:
            raw_id, tier = form.get(f"reward-{i}-id", ""), form.get(f"reward-{i}-tier", "")
            reward_id = int(raw_id) if raw_id.isdigit() else None
            row = {"id": reward_id, "key": keys.get(reward_id) or form.get(f"reward-{i}-key", ""),
                   "limit": form.get(f"reward-{i}-limit", ""), "replaces": form.get(f"reward-{i}-replaces", ""),
                   "kind": form.get(f"reward-{i}-kind", ""), "tier_id": int(tier) if tier.isdigit() else None,
                   "title": {lang: form.get(f"reward-{i}-title-{lang}", "") for lang in TEXT_LANGUAGES}}
            i += 1
            if row["id"] is not None or row["key"] or any(row["title"].values()):
                view["refused"] = _renumbered(refused, "reward", i - 1, len(rows)) or view["refused"]
                rows.append(row)
        view["rewards"] = rows
    elif part == "budget":
        rows, i = [], 0
        while f"budget-{i}-present" in form and i <= MAX_BUDGET_LINES:
            raw_id = form.get(f"budget-{i}-id", "")
            row = {"id": int(raw_id) if raw_id.isdigit() else None, "key": form.get(f"budget-{i}-key", ""),
                   "planned": form.get(f"budget-{i}-planned", ""), "active": form.get(f"budget-{i}-hide") != "1",
                   "title": {lang: form.get(f"budget-{i}-title-{lang}", "") for lang in TEXT_LANGUAGES}}
            i += 1
            if row["id"] is not None or row["key"] or row["planned"] or any(row["title"].values()):
                view["refused"] = _renumbered(refused, "budget", i - 1, len(rows)) or view["refused"]
                rows.append(row)
        view["budget"] = rows
    return view


def _renumbered(field: str | None, name: str, i: int, n: int) -> str | None:
    """`field` of the form's row i (`{name}-{i}-...`) as the page shows that row again, as row n."""
    head = f"{name}-{i}-"
    return f"{name}-{n}-{field[len(head):]}" if field and field.startswith(head) else None


def _bps_to_percent(bps: int) -> str:
    whole, part = divmod(bps, 100)
    return f"{whole}" if part == 0 else f"{whole}.{part:02d}".rstrip("0")


def _percent_to_bps(text: str) -> int:
    value = (text or "").strip().rstrip("%").strip()
    if not _PERCENT_RE.match(value):
        raise FieldRefused(_("Partner share: enter a percentage from 0 to 100, like 15 or 12.5."), "share",
                           code="invalid_share")
    whole, _dot, frac = value.partition(".")
    bps = int(whole) * 100 + int((frac + "00")[:2])
    if bps > 10000:
        raise FieldRefused(_("Partner share: at most 100%."), "share", code="invalid_share")
    return bps


def _one_line_texts(form, field: str) -> dict[str, str]:
    """{language: text} of a one-line field of the editor (`{field}-{lang}`), each read by the one
    rule of one-line texts (typed.one_line): a line break pasted from a word processor (U+2028,
    Word's U+000B: a browser's one-line input keeps them) is a space, an invisible or bidi
    character nothing. These texts go into pages, receipts' subjects and the credits."""
    return {lang: one_line(form.get(f"{field}-{lang}", "")) for lang in TEXT_LANGUAGES}


def _lang_texts(form, name: str, label: str, max_len: int) -> dict[str, str]:
    texts = {lang: t for lang, t in _one_line_texts(form, name).items() if t}
    if not texts:
        raise FieldRefused(_("%(field)s: write it in English or Chinese (or both).", field=label),
                           f"{name}-{TEXT_LANGUAGES[0]}", code="invalid_text")
    for lang, t in texts.items():
        if len(t) > max_len:
            raise FieldRefused(_("%(field)s: at most %(n)s characters.", field=label, n=max_len), f"{name}-{lang}",
                               code="invalid_text")
    return texts


def _money(text: str, label: str, low: int, high: int, field: str) -> int:
    try:
        cents = parse_dollars(text)
    except DomainError as err:
        raise FieldRefused(_("%(field)s: %(message)s", field=label, message=err.message), field,
                           code="invalid_amount") from None
    if not low <= cents <= high:
        raise FieldRefused(_("%(field)s: between %(low)s and %(high)s dollars.", field=label,
                             low=cents_to_input(low), high=cents_to_input(high)), field, code="invalid_amount")
    return cents


def _set_texts(campaign: Campaign, key: str, texts: dict[str, str], drop: str | None = None) -> None:
    """Store a text per language in the campaign's translations (a new dict: the JSON column sees it)."""
    translations = {lang: dict(v) for lang, v in (campaign.translations or {}).items()}
    for lang in TEXT_LANGUAGES:
        own = translations.setdefault(lang, {})
        if drop:
            own.pop(drop, None)
        if lang in texts:
            own[key] = texts[lang]
        else:
            own.pop(key, None)
    campaign.translations = {lang: v for lang, v in translations.items() if v}


def _mark_edited(campaign: Campaign, part: str, content, user: User | None) -> None:
    row = db.session.get(CampaignPagePart, (campaign.id, part))
    if row is None:
        row = CampaignPagePart(campaign_id=campaign.id, part=part, content=content)
        db.session.add(row)
    row.content, row.edited_at, row.edited_by = content, utcnow(), getattr(user, "id", None)
    campaign.updated_at = utcnow()  # every process rebuilds its snapshot (snapshot.py)


def save_settings(campaign_id: int, form, user: User | None) -> bool:
    """Title, partner's name, goal and share from the editor's form, validated, audited. False when
    nothing changed. The caller commits."""
    campaign = db.session.get(Campaign, campaign_id)
    title = _lang_texts(form, "title", _("Title"), 200)
    partner = _lang_texts(form, "partner_name", _("Partner's name"), 200)
    goal = _money(form.get("goal", ""), _("Goal"), 1, 10**12, "goal")
    share_bps = _percent_to_bps(form.get("share", ""))
    before = editor_view(campaign_id)["settings"]
    after = {"title": title, "partner_name": partner, "goal": cents_to_input(goal), "share": _bps_to_percent(share_bps)}
    if before == after:
        return False
    ledger.lock_money(campaign.id)  # the goal and share change between two bookings, never during one
    if share_bps != campaign.share_bps and gifts_recorded(campaign.id):  # read under the lock
        raise ValidationError(SHARE_FIXED(), code="share_fixed")
    campaign.title = next(iter(title.values()))
    campaign.partner_name = next(iter(partner.values()))
    _set_texts(campaign, "title", title)
    _set_texts(campaign, "partner_name", partner)
    campaign.goal, campaign.share_bps = goal, share_bps
    content = {"title": title, "partner_name": partner, "goal": goal, "share_bps": share_bps}
    _mark_edited(campaign, "settings", content, user)
    record_audit("settings.change", f"campaign {campaign.slug}",
                 {k: [before[k], after[k]] for k in after if before[k] != after[k]}, actor=user)
    return True


def parse_tiers(form) -> list[dict]:
    """The tiers form (`tier-{i}-id`, `-min`, `-name-{lang}`, `-remove`) as [{id, min_amount, name}],
    validated: at least one tier, minimums strictly ascending as listed, each named."""
    rows, i = [], 0
    while f"tier-{i}-present" in form and i < MAX_TIERS + 1:
        prefix = f"tier-{i}"
        i += 1
        raw_id = form.get(f"{prefix}-id", "").strip()
        name = _one_line_texts(form, f"{prefix}-name")
        amount = form.get(f"{prefix}-min", "").strip()
        if form.get(f"{prefix}-remove") == "1" or (not raw_id and not amount and not any(name.values())):
            continue
        label = _("Tier %(n)s", n=len(rows) + 1)
        min_amount = _money(amount, _("Tier %(n)s, minimum", n=len(rows) + 1), 1, MAX_AMOUNT, f"{prefix}-min")
        name = {lang: t for lang, t in name.items() if t}
        if not name:
            raise FieldRefused(_("%(field)s: give it a name in English or Chinese.", field=label),
                               f"{prefix}-name-{TEXT_LANGUAGES[0]}", code="invalid_text")
        for lang, t in name.items():
            if len(t) > 200:
                raise FieldRefused(_("%(field)s: a name of at most %(n)s characters.", field=label, n=200),
                                   f"{prefix}-name-{lang}", code="invalid_text")
        if rows and min_amount <= rows[-1]["min_amount"]:
            raise FieldRefused(
                _("%(field)s: its minimum (%(amount)s) must be above the tier before it (%(before)s): tiers go "
                  "strictly up.", field=label, amount=cents_to_input(min_amount),
                  before=cents_to_input(rows[-1]["min_amount"])), f"{prefix}-min", code="tiers_not_ascending")
        rows.append({"id": int(raw_id) if raw_id.isdigit() else None, "min_amount": min_amount, "name": name})
    if not rows:
        raise ValidationError(_("Keep at least one tier."), code="no_tiers")
    if len(rows) > MAX_TIERS:
        raise ValidationError(_("At most %(n)s tiers.", n=MAX_TIERS), code="too_many_tiers")
    return rows


def save_tiers(campaign_id: int, rows: list[dict], user: User | None, take_back_delivered: bool = False) -> dict | None:
    """Apply the tiers as listed (changed in place by id, new ones added, missing ones removed),
    then refresh every donor's entitlements from them. Refused (DeliveredRewardsError) when that
    would revoke a delivered reward, unless `take_back_delivered`; the caller then rolls back.
    Returns what changed for donors ({"granted": n, "revoked": n, "revoked_delivered": n}), or None
    when the tiers are unchanged. Audited. The caller commits."""
    campaign = db.session.get(Campaign, campaign_id)
    tiers = {t.id: t for t in db.session.scalars(sa.select(Tier).where(Tier.campaign_id == campaign_id))}
    before = [{"id": t.id, "min_amount": t.min_amount, "name": _texts(campaign, f"tier:{t.min_amount}", t.name)}
              for t in sorted(tiers.values(), key=lambda t: t.min_amount)]
    for row in rows:
        if row["id"] is not None and row["id"] not in tiers:
            raise ValidationError(_("A tier of this form is gone: reload the page and try again."), code="stale_form")
    if [{**r} for r in rows] == before:
        return None
    ledger.lock_money(campaign.id)  # no booking reads the tiers halfway through the change

    held_before = _held(campaign_id)

    kept_ids = {r["id"] for r in rows if r["id"] is not None}
    names = {}
    for tier in tiers.values():  # texts are keyed by minimum: take them out, put them back below
        names[tier.id] = _texts(campaign, f"tier:{tier.min_amount}", tier.name)
        _set_texts(campaign, f"tier:{tier.min_amount}", {})
    for tier_id, tier in tiers.items():
        if tier_id not in kept_ids:
            db.session.execute(sa.update(Reward).where(Reward.tier_id == tier_id).values(tier_id=None))
            db.session.delete(tier)
    db.session.flush()
    # Two steps, so that swapping minimums never meets the unique (campaign, min_amount) halfway.
    for n, row in enumerate(r for r in rows if r["id"] is not None):
        tiers[row["id"]].min_amount = 2_000_000_000 - n
    db.session.flush()
    for row in rows:
        tier = tiers[row["id"]] if row["id"] is not None else Tier(campaign_id=campaign.id)
        tier.min_amount, tier.name = row["min_amount"], next(iter(row["name"].values()))
        db.session.add(tier)
        _set_texts(campaign, f"tier:{row['min_amount']}", row["name"])
    db.session.flush()
    outcome = _donors_follow(campaign, held_before, take_back_delivered)
    after = [{"min_amount": r["min_amount"], "name": r["name"]} for r in rows]
    _mark_edited(campaign, "tiers", after, user)
    record_audit("tiers.change", f"campaign {campaign.slug}",
                 {"before": before, "after": after, "donors": outcome}, actor=user)
    return outcome


def _held(campaign_id: int) -> set[int]:
    """Ids of the entitlements donors hold now (holdings.HELD), of this campaign's rewards."""
    return set(db.session.scalars(sa.select(Entitlement.id).join(Reward, Reward.id == Entitlement.reward_id)
                                  .where(Reward.campaign_id == campaign_id, holdings.HELD)))


def _donors_follow(campaign: Campaign, held_before: set[int], take_back_delivered: bool) -> dict:
    """Refresh every donor's entitlements from the tiers as they now stand; refuse (the caller rolls
    back) when that takes back a delivered reward without the producer's explicit choice."""
    db.session.expire(campaign, ["tiers"])
    snapshot.forget()
    for donor in db.session.scalars(sa.select(User).where(User.id.in_(
            sa.select(Donation.user_id).where(Donation.campaign_id == campaign.id)))):
        refresh_entitlements(donor, campaign)
    db.session.flush()
    ents = db.session.scalars(sa.select(Entitlement).join(Reward, Reward.id == Entitlement.reward_id)
                              .where(Reward.campaign_id == campaign.id)).all()
    revoked = [e for e in ents if e.id in held_before and not holdings.is_held(e)]
    delivered = [e for e in revoked if e.fulfilled_at is not None]
    granted = [e for e in ents if e.id not in held_before and holdings.is_held(e)]
    if delivered and not take_back_delivered:
        raise DeliveredRewardsError(
            _("This change would take back %(n)s reward(s) already delivered to donors who no longer reach their "
              "tier. Nothing was changed. Tick “Take back delivered rewards” to do it anyway.", n=len(delivered)))
    return {"granted": len(granted), "revoked": len(revoked), "revoked_delivered": len(delivered)}


def _keyed_rows(form, name: str, label_of, most: int, title_max: int, key_example: str,
                filled_by: tuple[str, ...] = ()):
    """The rows of a list form (`{name}-{i}-present`, `-id` of a saved row, `-key` of a new one,
    `-title-{lang}`) with what every such list checks: a new row's key (its form, used once), a
    title in one language at least, of at most `title_max` characters. Yields (prefix, label,
    raw_id, key, titles), the label `label_of(n)` ("Reward 2"); a blank row (none of these, nor any
    field of `filled_by`) is skipped."""
    i, keys, n = 0, set(), 0
    while f"{name}-{i}-present" in form and i <= most:
        prefix = f"{name}-{i}"
        i += 1
        raw_id = form.get(f"{prefix}-id", "").strip()
        key = form.get(f"{prefix}-key", "").strip()
        title = _one_line_texts(form, f"{prefix}-title")
        if not raw_id and not key and not any(title.values()) \
                and not any(form.get(f"{prefix}-{f}", "").strip() for f in filled_by):
            continue  # the blank row
        n += 1
        label = label_of(n)
        if not raw_id:
            if not KEY_RE.match(key):
                raise FieldRefused(_("%(field)s: a key of lowercase letters, digits and dashes, like %(example)s.",
                                     field=label, example=key_example), f"{prefix}-key", code="invalid_key")
            if key in keys:
                raise FieldRefused(_("%(field)s: the key %(key)s is used twice.", field=label, key=key),
                                   f"{prefix}-key", code="invalid_key")
            keys.add(key)
        title = {lang: t for lang, t in title.items() if t}
        if not title:
            raise FieldRefused(_("%(field)s: give it a title in English or Chinese.", field=label),
                               f"{prefix}-title-{TEXT_LANGUAGES[0]}", code="invalid_text")
        for lang, t in title.items():
            if len(t) > title_max:
                raise FieldRefused(_("%(field)s: a title of at most %(n)s characters.", field=label, n=title_max),
                                   f"{prefix}-title-{lang}", code="invalid_text")
        yield prefix, label, raw_id, key, title


def parse_rewards(form, tier_ids: set[int]) -> list[dict]:
    """The rewards form (`reward-{i}-id`, `-key` for a new one, `-title-{lang}`, `-kind`, `-tier`) as
    [{id, key, title, kind, tier_id}], validated. A reward is never deleted (entitlements and media
    point at it): "no tier" takes it off the tiers."""
    kinds = {k.value for k in RewardKind}
    rows = []
    for prefix, label, raw_id, key, title in _keyed_rows(form, "reward", lambda n: _("Reward %(n)s", n=n),
                                                         MAX_REWARDS, 300, "signed-poster"):
        kind = form.get(f"{prefix}-kind", "")
        if kind not in kinds:
            raise FieldRefused(_("%(field)s: choose its kind (%(kinds)s).", field=label, kinds=", ".join(sorted(kinds))),
                               f"{prefix}-kind", code="invalid_kind")
        tier = form.get(f"{prefix}-tier", "").strip()
        if tier and (not tier.isdigit() or int(tier) not in tier_ids):
            raise FieldRefused(_("%(field)s: that tier is gone: reload the page and try again.", field=label),
                               f"{prefix}-tier", code="stale_form")
        limit = form.get(f"{prefix}-limit", "").strip()
        if limit and not (limit.isdigit() and int(limit) <= stock.LIMIT_MAX):
            raise FieldRefused(_("%(field)s: a limit is a whole number from 0 to %(max)s, or blank for no limit.",
                                 field=label, max=stock.LIMIT_MAX), f"{prefix}-limit", code="invalid_limit")
        # `replaces`: the key of the reward this one takes the place of ("" none); a form without the
        # field (an older page) leaves it as it is. Checked once every row is in place (save_rewards).
        replaces = form.get(f"{prefix}-replaces")
        rows.append({"id": int(raw_id) if raw_id.isdigit() else None, "key": key, "title": title,
                     "kind": kind, "tier_id": int(tier) if tier else None, "limit": int(limit) if limit else None,
                     "replaces": KEEP if replaces is None else (replaces.strip() or None)})
    return rows


KEEP = object()  # a reward row's `replaces` the form did not send


def _replacement_refused(campaign_id: int, rows: list[dict], changed: set[str]) -> None:
    """Refuse the rewards as saved (flushed) where one takes the place of another against
    rules.replacement_refusal, naming the row's "Takes the place of" field: first those whose
    choice this save `changed` (two rewards taking the place of one: the new choice is refused)."""
    rewards = sorted(db.session.scalars(sa.select(Reward).where(Reward.campaign_id == campaign_id)),
                     key=lambda r: (r.key not in changed, r.id))
    by_key = {r.key: r for r in rewards}
    tier_min = dict(db.session.execute(sa.select(Tier.id, Tier.min_amount).where(Tier.campaign_id == campaign_id)).all())
    key_of = {r.id: r.key for r in rewards}
    row_of = {row["key"] if row["id"] is None else key_of.get(row["id"]): i for i, row in enumerate(rows)}
    for reward in rewards:
        if not reward.replaces or reward.key not in row_of:
            continue
        i, replaced = row_of[reward.key], by_key.get(reward.replaces)
        label = _("Reward %(n)s", n=i + 1)
        if replaced is None or replaced.id == reward.id:
            raise FieldRefused(_("%(field)s: choose the reward it takes the place of from the list.", field=label),
                               f"reward-{i}-replaces", code="invalid_replaces")
        if reward.tier_id is None or replaced.tier_id is None:
            continue  # either taken off the tiers: it brings nothing, nor takes anything's place (rewards_due)
        refusal = rules.replacement_refusal(
            tier_min.get(reward.tier_id), tier_min.get(replaced.tier_id),
            reward.kind == RewardKind.PHYSICAL and replaced.kind == RewardKind.PHYSICAL,
            any(r.replaces == replaced.key and r.id != reward.id for r in rewards))
        if refusal is not None:
            raise FieldRefused({
                "not_lower": _("%(field)s: it can only take the place of a reward of a lower tier (%(other)s is not).",
                               field=label, other=replaced.key),
                "not_physical": _("%(field)s: only a physical reward takes the place of another physical one.",
                                  field=label),
                "replaced_already": _("%(field)s: another reward already takes the place of %(other)s.",
                                      field=label, other=replaced.key),
            }[refusal], f"reward-{i}-replaces", code="invalid_replaces")


def save_rewards(campaign_id: int, rows: list[dict], user: User | None, take_back_delivered: bool = False) -> dict | None:
    """Rewards' titles, kinds and tiers as listed (new ones added by key); donors' entitlements then
    follow, refused as save_tiers is when a delivered reward would be taken back. Saving the rewards
    makes the tiers part the browser's (rewards live in the tiers of the campaign file). Audited.
    None when nothing changed. The caller commits."""
    campaign = db.session.get(Campaign, campaign_id)
    rewards = {r.id: r for r in db.session.scalars(sa.select(Reward).where(Reward.campaign_id == campaign_id))}
    taken = {r.key for r in rewards.values()}
    for row in rows:
        if row["id"] is not None and row["id"] not in rewards:
            raise ValidationError(_("A reward of this form is gone: reload the page and try again."), code="stale_form")
        if row["id"] is None and row["key"] in taken:
            raise ValidationError(_("The key %(key)s is already a reward's.", key=row["key"]), code="invalid_key")

    def state(r: Reward) -> dict:
        return {"key": r.key, "title": _texts(campaign, f"reward:{r.key}", r.title), "kind": r.kind.value,
                "tier_id": r.tier_id, "limit": r.quantity_limit, "replaces": r.replaces}

    def replaces(row: dict) -> str | None:
        return (rewards[row["id"]].replaces if row["id"] is not None else None) if row["replaces"] is KEEP \
            else row["replaces"]

    before = {r.key: state(r) for r in rewards.values()}
    rewards_by_key = {r.key: r for r in rewards.values()}
    changes = [row for row in rows if row["id"] is None or {**state(rewards[row["id"]]), "key": None}
               != {"key": None, "title": row["title"], "kind": row["kind"], "tier_id": row["tier_id"],
                   "limit": row["limit"], "replaces": replaces(row)}]
    if not changes:
        return None
    ledger.lock_money(campaign.id)
    held_before = _held(campaign_id)
    for position, row in enumerate(rows):
        reward = rewards.get(row["id"]) or Reward(campaign_id=campaign.id, key=row["key"])
        db.session.add(reward)
        reward.title, reward.kind, reward.tier_id = next(iter(row["title"].values())), RewardKind(row["kind"]), row["tier_id"]
        reward.position, reward.replaces = position, replaces(row)
        _set_texts(campaign, f"reward:{reward.key}", row["title"])
    db.session.flush()
    _replacement_refused(campaign_id, rows, {key for key, was in before.items()
                                             if rewards_by_key[key].replaces != was["replaces"]}
                         | {row["key"] for row in rows if row["id"] is None})
    for row in rows:  # the limit through its one home (audited there as reward.limit)
        reward_id = row["id"] or db.session.scalar(sa.select(Reward.id).where(
            Reward.campaign_id == campaign_id, Reward.key == row["key"]))
        stock.set_reward_limit(reward_id, row["limit"], actor=user)
    outcome = _donors_follow(campaign, held_before, take_back_delivered)
    after = {r.key: state(r) for r in db.session.scalars(sa.select(Reward).where(Reward.campaign_id == campaign_id))}
    _mark_edited(campaign, "tiers", [{"min_amount": t.min_amount, "name": _texts(campaign, f"tier:{t.min_amount}", t.name)}
                                     for t in db.session.scalars(sa.select(Tier).where(Tier.campaign_id == campaign_id)
                                                                 .order_by(Tier.min_amount))], user)
    record_audit("rewards.change", f"campaign {campaign.slug}",
                 {"before": {k: v for k, v in before.items() if after.get(k) != v},
                  "after": {k: v for k, v in after.items() if before.get(k) != v}, "donors": outcome}, actor=user)
    return outcome


def parse_budget(form) -> list[dict]:
    """The budget form (`budget-{i}-id`, `-key` for a new line, `-title-{lang}`, `-planned`, `-hide`)
    as [{id, key, title, planned, active}], validated. A line is never deleted (expenses point at
    it): hiding it takes it off the page."""
    rows = []
    for prefix, label, raw_id, key, title in _keyed_rows(form, "budget", lambda n: _("Budget line %(n)s", n=n),
                                                         MAX_BUDGET_LINES, 200, "travel", filled_by=("planned",)):
        planned = form.get(f"{prefix}-planned", "").strip()
        rows.append({"id": int(raw_id) if raw_id.isdigit() else None, "key": key, "title": title,
                     "planned": _money(planned, _("%(line)s, planned", line=label), 0, 10**12, f"{prefix}-planned"),
                     "active": form.get(f"{prefix}-hide") != "1"})
    return rows


def save_budget(campaign_id: int, rows: list[dict], user: User | None) -> bool:
    """Budget lines as listed: retitled, replanned, hidden or shown, new ones added by key. Audited
    (`settings.change ... budget`, as a file load's change is). False when nothing changed. The
    caller commits."""
    campaign = db.session.get(Campaign, campaign_id)
    lines = {b.id: b for b in db.session.scalars(sa.select(BudgetLine).where(BudgetLine.campaign_id == campaign_id))}
    taken = {b.key for b in lines.values()}
    for row in rows:
        if row["id"] is not None and row["id"] not in lines:
            raise ValidationError(_("A budget line of this form is gone: reload the page and try again."),
                                  code="stale_form")
        if row["id"] is None and row["key"] in taken:
            raise ValidationError(_("The key %(key)s is already a budget line's.", key=row["key"]), code="invalid_key")
    changed = {}
    for position, row in enumerate(rows):
        line = lines.get(row["id"])
        if line is None:
            line = BudgetLine(campaign_id=campaign.id, key=row["key"], title=row["title"], planned=row["planned"],
                              active=row["active"], position=position)
            db.session.add(line)
            changed[row["key"]] = {"before": None, "after": {"title": row["title"], "planned": row["planned"]}}
            continue
        state = {"title": dict(line.title or {}), "planned": line.planned, "active": line.active}
        new = {"title": row["title"], "planned": row["planned"], "active": row["active"]}
        if state != new:
            changed[line.key] = {"before": state, "after": new}
        line.title, line.planned, line.active, line.position = row["title"], row["planned"], row["active"], position
    if not changed:
        return False
    db.session.flush()
    _mark_edited(campaign, "budget", [{"key": r["key"] or lines[r["id"]].key, "planned": r["planned"],
                                       "active": r["active"]} for r in rows], user)
    record_audit("settings.change", f"campaign {campaign.slug} budget", changed, actor=user)
    return True


def hand_back(campaign_id: int, part: str, user: User | None, take_back_delivered: bool = False) -> bool:
    """Hand a part back to the campaign file: the file's values apply again now, and on later loads.
    False when the part already follows the file. The caller commits."""
    if part not in SETTINGS_PARTS:
        raise ValidationError(_("Unknown part of the campaign."), code="invalid_part")
    row = db.session.get(CampaignPagePart, (campaign_id, part))
    if row is None or row.edited_at is None:
        return False
    campaign = db.session.get(Campaign, campaign_id)
    record_audit("settings.reset", f"campaign {campaign.slug} {part}", {"before": row.content}, actor=user)
    delivered_before = _delivered_held(campaign_id)
    db.session.delete(row)
    db.session.flush()
    load_campaign()
    taken = delivered_before - _delivered_held(campaign_id)
    if taken and not take_back_delivered:
        raise DeliveredRewardsError(
            _("The campaign file's tiers would take back %(n)s reward(s) already delivered. Nothing was changed. "
              "Tick “Take back delivered rewards” to do it anyway.", n=len(taken)))
    return True


def _delivered_held(campaign_id: int) -> set[int]:
    return set(db.session.scalars(sa.select(Entitlement.id).join(Reward, Reward.id == Entitlement.reward_id).where(
        Reward.campaign_id == campaign_id, Entitlement.fulfilled_at.is_not(None), holdings.HELD)))
