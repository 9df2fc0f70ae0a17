"""The campaign's texts in the reader's language.

The campaign file may give any text per language (rewards/campaign_file.py). The campaign row keeps
each text in the first language that has it, and `Campaign.translations` every language's own:
{"zh-Hans": {"title": ..., "tagline": ..., "description": ..., "partner_name": ...,
"tier:<min_amount>": ..., "reward:<key>": ...}}. A text missing in the reader's language reads the
kept one: it falls back to the other language, never to a blank.
"""
from __future__ import annotations

from filmfund.i18n import current_language


def localized(translations: dict | None, key: str, fallback: str, lang: str | None = None) -> str:
    """The text `key` in `lang` (default: the language being written now), else `fallback`."""
    own = ((translations or {}).get(lang or current_language()) or {}).get(key)
    return own or fallback


def tier_name(translations: dict | None, tier, lang: str | None = None) -> str:
    return localized(translations, f"tier:{tier.min_amount}", tier.name, lang)


def reward_title(translations: dict | None, reward, lang: str | None = None) -> str:
    return localized(translations, f"reward:{reward.key}", reward.title, lang)


def campaign_title(campaign) -> str:
    return localized(campaign.translations, "title", campaign.title)


def partner_name(campaign) -> str:
    return localized(campaign.translations, "partner_name", campaign.partner_name)
