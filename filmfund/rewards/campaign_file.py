"""Read and validate a campaign TOML file (stdlib tomllib) into plain data.

Every error names the field, e.g. "tiers[3].rewards[0].kind: must be one of ...", so the
producer editing the file knows exactly what to fix.
"""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from filmfund.errors import ValidationError
from filmfund.rewards.models import RewardKind

KEY_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,79}$")
MAX_AMOUNT = 10**8  # $1,000,000: the largest single amount the system accepts


class CampaignFileError(ValidationError):
    code = "invalid_campaign"


@dataclass
class RewardSpec:
    key: str
    kind: RewardKind
    title: str


@dataclass
class TierSpec:
    min_amount: int
    name: str
    rewards: list[RewardSpec] = field(default_factory=list)


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


def _str(data: dict, key: str, where: str, *, max_len: int, required: bool = True) -> str:
    value = data.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or not value.strip():
        raise CampaignFileError(f"{where}{key}: must be a non-empty string")
    if len(value) > max_len:
        raise CampaignFileError(f"{where}{key}: must be at most {max_len} characters")
    return value.strip()


def _int(data: dict, key: str, where: str, *, low: int, high: int) -> int:
    value = data.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise CampaignFileError(f"{where}{key}: must be an integer (cents)")
    if not low <= value <= high:
        raise CampaignFileError(f"{where}{key}: must be between {low} and {high}")
    return value


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
    kinds = ", ".join(k.value for k in RewardKind)
    for i, raw in enumerate(raw_tiers):
        where = f"tiers[{i}]."
        if not isinstance(raw, dict):
            raise CampaignFileError(f"tiers[{i}]: must be a table")
        tier = TierSpec(_int(raw, "min_amount", where, low=1, high=MAX_AMOUNT), _str(raw, "name", where, max_len=200))
        if tiers and tier.min_amount <= tiers[-1].min_amount:
            raise CampaignFileError(f"{where}min_amount: tiers must be in ascending order of min_amount")
        rewards = raw.get("rewards")
        if not isinstance(rewards, list) or not rewards:
            raise CampaignFileError(f"{where}rewards: must be a non-empty list")
        for j, item in enumerate(rewards):
            rwhere = f"{where}rewards[{j}]."
            if not isinstance(item, dict):
                raise CampaignFileError(f"{where}rewards[{j}]: must be a table with key, kind, title")
            key = _str(item, "key", rwhere, max_len=64)
            if not KEY_RE.match(key):
                raise CampaignFileError(f"{rwhere}key: use lowercase letters, digits and dashes")
            if key in keys:
                raise CampaignFileError(f"{rwhere}key: {key!r} is used twice")
            keys.add(key)
            kind = item.get("kind")
            if kind not in {k.value for k in RewardKind}:
                raise CampaignFileError(f"{rwhere}kind: must be one of {kinds}")
            tier.rewards.append(RewardSpec(key, RewardKind(kind), _str(item, "title", rwhere, max_len=300)))
        tiers.append(tier)
    return CampaignSpec(
        slug=slug,
        title=_str(data, "title", "", max_len=200),
        tagline=_str(data, "tagline", "", max_len=300, required=False),
        description=_str(data, "description", "", max_len=20000, required=False),
        currency=currency,
        goal=_int(data, "goal", "", low=1, high=10**12),
        partner_name=_str(partner, "name", "partner.", max_len=200),
        share_bps=_int(partner, "share_bps", "partner.", low=0, high=10000),
        tiers=tiers,
    )


def read_campaign_file(path: str | Path) -> CampaignSpec:
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CampaignFileError(f"{path}: no such campaign file") from None
    except tomllib.TOMLDecodeError as exc:
        raise CampaignFileError(f"{path}: not valid TOML ({exc})") from None
    return parse_campaign(data)
