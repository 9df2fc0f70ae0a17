"""Read and validate a campaign TOML file (stdlib tomllib) into plain data.

Every error names the field, e.g. "tiers[3].rewards[0].kind: must be one of ...", so the
producer editing the file knows exactly what to fix.

A text (the title, a tier's name, a reward's title...) is a plain string, or one per language:
`title = { en = "Living with Dead Hearts", "zh-Hans" = "与死去的心同活" }`. A language left out
reads the other one: the spec's plain field holds the text in the first language that has it
(English first), and `translations` every language's own.
"""
from __future__ import annotations

import logging
import re
import tomllib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from filmfund.errors import ValidationError
from filmfund.rewards import rules
from filmfund.rewards.models import RewardKind

log = logging.getLogger(__name__)
KEY_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,79}$")
# The largest single amount the system accepts: Stripe's largest charge, eight digits in the
# currency's smallest unit (99,999,999: $999,999.99 in USD; one cent more is Stripe's
# `amount_too_large`). A gift above it would pass the form and be refused at Checkout.
MAX_AMOUNT = 99_999_999


class CampaignFileError(ValidationError):
    code = "invalid_campaign"


@dataclass
class RewardSpec:
    key: str
    kind: RewardKind
    title: str
    limit: int | None = None  # `limit = 20`: only so many (rewards/stock.py); absent: left as it is
    # `replaces = "dvd"`: the key of a physical reward of a lower tier that this one takes the place
    # of ("the DVD signed" is the DVD, signed: a donor who reaches both is sent one parcel).
    replaces: str | None = None


@dataclass
class TierSpec:
    min_amount: int
    name: str
    rewards: list[RewardSpec] = field(default_factory=list)


# A text the page shows may be written in each of these languages (the campaign file's keys).
TEXT_LANGUAGES = ("en", "zh-Hans")
# The parts of the campaign page that producers edit in the browser; the file seeds them.
PAGE_PARTS = ("story", "crew", "risks", "faq", "stretch_goals")


@dataclass
class BudgetLineSpec:
    key: str
    title: dict[str, str]
    planned: int


@dataclass
class CampaignSpec:
    slug: str
    title: str
    tagline: str
    description: str
    currency: str
    goal: int
    partner_name: str
    share_bps: int
    tiers: list[TierSpec]
    # The page's parts as plain data ({part: value}, texts as {language: text}); see parse_page.
    page: dict = field(default_factory=dict)
    budget: list[BudgetLineSpec] = field(default_factory=list)
    # Artwork files beside the campaign file: {"poster": "artwork/x.svg", "share": ..., "icon": ...}.
    artwork: dict[str, str] = field(default_factory=dict)
    # {"zh-Hans": {"title": ..., "tier:100": ..., "reward:dvd": ...}}: see rewards/texts.py
    translations: dict[str, dict[str, str]] = field(default_factory=dict)
    # The zone the campaign's days and months are counted in (the partner's monthly statements,
    # the hold-back of its live figures): an IANA name.
    time_zone: str = "UTC"
    # [screening]: {"opens", "closes" (UTC ISO), "opens_zone", "closes_zone" (as written), "reward"}
    # or None; see filmfund/media/screening.py
    screening: dict | None = None


def _str(data: dict, key: str, where: str, *, max_len: int, required: bool = True) -> str:
    value = data.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or not value.strip():
        raise CampaignFileError(f"{where}{key}: must be a non-empty string")
    if len(value) > max_len:
        raise CampaignFileError(f"{where}{key}: must be at most {max_len} characters")
    return value.strip()


def parse_text(data: dict, key: str, where: str, *, max_len: int, required: bool = True,
               into: dict[str, dict[str, str]] | None = None, as_key: str | None = None) -> str:
    """A core text (title, tagline, a tier's name...) that may be given per language: returns the
    text in the first language that has it (the one every other language falls back to) and adds
    each language's own to `into` under `as_key` (default: the field's name)."""
    value = data.get(key)
    if not isinstance(value, dict):
        return _str(data, key, where, max_len=max_len, required=required)
    texts = text(value, f"{where}{key}", max_len=max_len, required=required)
    if into is not None:
        for lang, own in texts.items():
            into.setdefault(lang, {})[as_key or key] = own
    return next(iter(texts.values()), "")


def _int(data: dict, key: str, where: str, *, low: int, high: int) -> int:
    value = data.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise CampaignFileError(f"{where}{key}: must be an integer (cents)")
    if not low <= value <= high:
        raise CampaignFileError(f"{where}{key}: must be between {low} and {high}")
    return value


def text(value, where: str, *, max_len: int, required: bool = True) -> dict[str, str]:
    """A text in one or both languages: a plain string (English) or a table {en = ..., zh-Hans = ...}.
    Returned as {language: text} with only the languages given (the reader falls back to the other)."""
    if isinstance(value, str):
        value = {"en": value}
    if value is None and not required:
        return {}
    if not isinstance(value, dict) or not value:
        raise CampaignFileError(f"{where}: must be a string or a table with en and/or zh-Hans")
    unknown = set(value) - set(TEXT_LANGUAGES)
    if unknown:
        raise CampaignFileError(f"{where}: unknown language {sorted(unknown)[0]!r} (use en or zh-Hans)")
    out = {}
    for lang in TEXT_LANGUAGES:
        item = value.get(lang)
        if item is None:
            continue
        if not isinstance(item, str):
            raise CampaignFileError(f"{where}.{lang}: must be a string")
        if len(item) > max_len:
            raise CampaignFileError(f"{where}.{lang}: must be at most {max_len} characters")
        if item.strip():
            out[lang] = item.strip()
    if required and not out:
        raise CampaignFileError(f"{where}: must not be empty")
    return out


# Each list part of the page: its fields, each (name, is a text in both languages, max length, required).
PAGE_FIELDS: dict[str, tuple[tuple[str, bool, int, bool], ...]] = {
    "story": (("heading", True, 200, True), ("body", True, 10000, True)),
    "crew": (("name", False, 120, True), ("role", True, 200, True), ("bio", True, 2000, False)),
    "faq": (("question", True, 300, True), ("answer", True, 4000, True)),
    "stretch_goals": (("amount", False, 0, True), ("title", True, 200, True), ("description", True, 2000, False)),
}
MAX_PAGE_ITEMS = 30


def parse_page_part(part: str, value, where: str = "") -> list | dict:
    """One part of the campaign page, validated (from the file, or from the producers' form as the
    same plain data). `risks` is one text; the others are lists of items (see PAGE_FIELDS)."""
    where = where or part
    if part == "risks":
        return text(value, where, max_len=10000, required=False)
    fields = PAGE_FIELDS[part]
    if value is None:
        return []
    if not isinstance(value, list):
        raise CampaignFileError(f"{where}: must be a list of [[{part}]] tables")
    if len(value) > MAX_PAGE_ITEMS:
        raise CampaignFileError(f"{where}: at most {MAX_PAGE_ITEMS} items")
    items = []
    for i, raw in enumerate(value):
        iwhere = f"{where}[{i}]"
        if not isinstance(raw, dict):
            raise CampaignFileError(f"{iwhere}: must be a table")
        item: dict = {}
        for name, localized, max_len, required in fields:
            if name == "amount":
                item[name] = _int(raw, name, f"{iwhere}.", low=1, high=10**12)
            elif localized:
                item[name] = text(raw.get(name), f"{iwhere}.{name}", max_len=max_len, required=required)
            else:
                item[name] = _str(raw, name, f"{iwhere}.", max_len=max_len, required=required)
        items.append(item)
    if part == "stretch_goals":
        amounts = [it["amount"] for it in items]
        if amounts != sorted(set(amounts)):
            raise CampaignFileError(f"{where}: amounts must be in ascending order, each once")
    return items


def _key(item: dict, where: str, seen: set[str]) -> str:
    """A stable key (rewards, budget lines): well-formed and used once; added to `seen`."""
    key = _str(item, "key", where, max_len=64)
    if not KEY_RE.match(key):
        raise CampaignFileError(f"{where}key: use lowercase letters, digits and dashes")
    if key in seen:
        raise CampaignFileError(f"{where}key: {key!r} is used twice")
    seen.add(key)
    return key


def _replaces(item: dict, where: str, kind: RewardKind, tier: TierSpec, lower: list[TierSpec]) -> str | None:
    """A reward's `replaces`, by rules.replacement_refusal: the key of a physical reward of a lower
    tier, which no other reward (of the lower tiers, or of `tier`, its own) replaces."""
    if "replaces" not in item:
        return None
    key = _str(item, "replaces", where, max_len=64)
    below = {r.key: (t.min_amount, r) for t in lower for r in t.rewards}  # not yet read: higher tiers
    replaced_tier_min, replaced = below.get(key, (None, None))
    refusal = rules.replacement_refusal(
        tier.min_amount, replaced_tier_min,
        kind == RewardKind.PHYSICAL and replaced is not None and replaced.kind == RewardKind.PHYSICAL,
        any(r.replaces == key for r in [*tier.rewards, *(r for t in lower for r in t.rewards)]))
    if refusal is not None:
        raise CampaignFileError(where + {
            "not_lower": f"replaces: {key!r} is not a reward of a lower tier",
            "not_physical": "replaces: only a physical reward takes the place of another physical one",
            "replaced_already": f"replaces: {key!r} is replaced by another reward already"}[refusal])
    return key


def _budget(data: dict) -> list[BudgetLineSpec]:
    raw = data.get("budget", [])
    if not isinstance(raw, list):
        raise CampaignFileError("budget: must be a list of [[budget]] tables")
    lines, keys = [], set()
    for i, item in enumerate(raw):
        where = f"budget[{i}]."
        if not isinstance(item, dict):
            raise CampaignFileError(f"budget[{i}]: must be a table with key, title, planned")
        key = _key(item, where, keys)
        lines.append(BudgetLineSpec(key, text(item.get("title"), f"{where}title", max_len=200),
                                    _int(item, "planned", where, low=0, high=10**12)))
    return lines


ARTWORK_ROLES = ("poster", "share", "icon")
_ARTWORK_RE = re.compile(r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*\.(svg|png|jpg|jpeg|webp)$")


def _artwork(data: dict) -> dict[str, str]:
    raw = data.get("artwork", {})
    if not isinstance(raw, dict):
        raise CampaignFileError("artwork: must be a table such as { poster = \"artwork/film.svg\" }")
    out = {}
    for role, path in raw.items():
        if role not in ARTWORK_ROLES:
            raise CampaignFileError(f"artwork.{role}: unknown (use {', '.join(ARTWORK_ROLES)})")
        if not isinstance(path, str) or not _ARTWORK_RE.match(path):
            raise CampaignFileError(f"artwork.{role}: a file beside the campaign file, such as artwork/film.svg")
        out[role] = path
    return out


def parse_campaign(data: dict) -> CampaignSpec:
    currency = _str(data, "currency", "", max_len=3).lower()
    if not re.fullmatch(r"[a-z]{3}", currency):
        raise CampaignFileError("currency: must be a three-letter ISO code such as usd")
    partner = data.get("partner")
    if not isinstance(partner, dict):
        raise CampaignFileError("partner: must be a table with name and share_bps")
    slug = _str(data, "slug", "", max_len=80)
    if not SLUG_RE.match(slug):
        raise CampaignFileError("slug: use lowercase letters, digits and dashes")
    raw_tiers = data.get("tiers")
    if not isinstance(raw_tiers, list) or not raw_tiers:
        raise CampaignFileError("tiers: must be a non-empty list of [[tiers]]")
    tiers: list[TierSpec] = []
    keys: set[str] = set()
    texts: dict[str, dict[str, str]] = {}
    kinds = ", ".join(k.value for k in RewardKind)
    for i, raw in enumerate(raw_tiers):
        where = f"tiers[{i}]."
        if not isinstance(raw, dict):
            raise CampaignFileError(f"tiers[{i}]: must be a table")
        min_amount = _int(raw, "min_amount", where, low=1, high=MAX_AMOUNT)
        tier = TierSpec(min_amount, parse_text(raw, "name", where, max_len=200, into=texts,
                                               as_key=f"tier:{min_amount}"))
        if tiers and tier.min_amount <= tiers[-1].min_amount:
            raise CampaignFileError(f"{where}min_amount: tiers must be in ascending order of min_amount")
        rewards = raw.get("rewards")
        if not isinstance(rewards, list) or not rewards:
            raise CampaignFileError(f"{where}rewards: must be a non-empty list")
        for j, item in enumerate(rewards):
            rwhere = f"{where}rewards[{j}]."
            if not isinstance(item, dict):
                raise CampaignFileError(f"{where}rewards[{j}]: must be a table with key, kind, title")
            key = _key(item, rwhere, keys)
            kind = item.get("kind")
            if kind not in {k.value for k in RewardKind}:
                raise CampaignFileError(f"{rwhere}kind: must be one of {kinds}")
            limit = _int(item, "limit", rwhere, low=0, high=1_000_000) if "limit" in item else None
            tier.rewards.append(RewardSpec(key, RewardKind(kind), parse_text(item, "title", rwhere, max_len=300,
                                                                             into=texts, as_key=f"reward:{key}"),
                                           limit, _replaces(item, rwhere, RewardKind(kind), tier, tiers)))
        tiers.append(tier)
    return CampaignSpec(
        slug=slug,
        title=parse_text(data, "title", "", max_len=200, into=texts),
        tagline=parse_text(data, "tagline", "", max_len=300, required=False, into=texts),
        description=parse_text(data, "description", "", max_len=20000, required=False, into=texts),
        currency=currency,
        goal=_int(data, "goal", "", low=1, high=10**12),
        partner_name=parse_text(partner, "name", "partner.", max_len=200, into=texts, as_key="partner_name"),
        share_bps=_int(partner, "share_bps", "partner.", low=0, high=10000),
        tiers=tiers,
        page={part: parse_page_part(part, data.get(part)) for part in PAGE_PARTS},
        budget=_budget(data),
        artwork=_artwork(data),
        translations=texts,
        time_zone=_zone(data),
        screening=_screening(data, keys),
    )


def _zone(data: dict) -> str:
    value = data.get("time_zone", "UTC")
    if not isinstance(value, str) or not value or len(value) > 64:
        raise CampaignFileError("time_zone: an IANA zone name such as Asia/Shanghai")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise CampaignFileError(f"time_zone: {value!r} is not a known zone (such as Asia/Shanghai)") from None
    return value


def parse_window(raw) -> dict | None:
    """The campaign file's `[screening]` table as stored data (ISO strings in UTC), or None
    when the file has none. Raises ValueError naming the field."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise ValueError("screening: must be a table with opens, closes and reward")
    out = {}
    for key in ("opens", "closes"):
        value = raw.get(key)
        if isinstance(value, datetime):
            when = value
        elif isinstance(value, str):
            try:
                when = datetime.fromisoformat(value)
            except ValueError:
                raise ValueError(f"screening.{key}: an ISO 8601 time with its zone, "
                                 "e.g. 2027-03-01T20:00:00+08:00") from None
        else:
            raise ValueError(f"screening.{key}: an ISO 8601 time with its zone, e.g. 2027-03-01T20:00:00+08:00")
        if when.tzinfo is None:
            raise ValueError(f"screening.{key}: give the time's zone, e.g. 2027-03-01T20:00:00+08:00")
        out[key] = when.astimezone(timezone.utc).isoformat()
        out[key + "_zone"] = when.isoformat()
    if out["closes"] <= out["opens"]:
        raise ValueError("screening.closes: must be after opens")
    reward = raw.get("reward")
    if not isinstance(reward, str) or not reward.strip():
        raise ValueError("screening.reward: the early-access reward's key, e.g. \"early-access\"")
    out["reward"] = reward.strip()
    return out


def _screening(data: dict, reward_keys: set[str]) -> dict | None:
    """`[screening]`: the early-access window (opens, closes: ISO 8601 with a zone) and the
    reward whose holders stream what is published to it inside the window."""
    try:
        window = parse_window(data.get("screening"))
    except ValueError as exc:
        raise CampaignFileError(str(exc)) from None
    if window is not None and window["reward"] not in reward_keys:
        raise CampaignFileError(f"screening.reward: the campaign has no reward with key {window['reward']!r}")
    return window


def read_campaign_file(path: str | Path) -> CampaignSpec:
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CampaignFileError(f"{path}: no such campaign file") from None
    except tomllib.TOMLDecodeError as exc:
        raise CampaignFileError(f"{path}: not valid TOML ({exc})") from None
    spec = parse_campaign(data)
    # Artwork is decoration: a file that is not beside the campaign file (a copy of the file
    # moved elsewhere) is left out with a warning, and the page opens without it.
    for role, rel in list(spec.artwork.items()):
        if not (path.parent / rel).is_file():
            log.warning("campaign file %s: artwork.%s (%s) is not beside it; the page shows none", path, role, rel)
            del spec.artwork[role]
    return spec
