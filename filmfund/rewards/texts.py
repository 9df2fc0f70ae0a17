"""The campaign's texts in the reader's language.

The campaign file may give any text per language (rewards/campaign_file.py). The campaign row keeps
each text in the first language that has it, and `Campaign.translations` every language's own:
{"zh-Hans": {"title": ..., "tagline": ..., "description": ..., "partner_name": ...,
"tier:<min_amount>": ..., "reward:<key>": ...}}. A text missing in the reader's language reads the
kept one: it falls back to the other language, never to a blank.
"""
from __future__ import annotations

from filmfund.i18n import current_language, format_money


def localized(translations: dict | None, key: str, fallback: str, lang: str | None = None) -> str:
    """The text `key` in `lang` (default: the language being written now), else `fallback`."""
    own = ((translations or {}).get(lang or current_language()) or {}).get(key)
    return own or fallback


def tier_name(translations: dict | None, tier, lang: str | None = None) -> str:
    return localized(translations, f"tier:{tier.min_amount}", tier.name, lang)


def standing_tier_name(translations: dict | None, tier: dict, lang: str | None = None) -> str:
    """tier_name for the tier of a donor's standing (entitlements.donor_entitlements' dict)."""
    return localized(translations, f"tier:{tier['min_amount']}", tier["name"], lang)


def reward_title(translations: dict | None, reward, lang: str | None = None) -> str:
    return localized(translations, f"reward:{reward.key}", reward.title, lang)


def campaign_title(campaign) -> str:
    return localized(campaign.translations, "title", campaign.title)


def partner_name(campaign) -> str:
    return localized(campaign.translations, "partner_name", campaign.partner_name)


def tier_amount(campaign, reward_key: str) -> str:
    """The tier that brings a reward, as a page names it ("$250", "US$2,000"): the min_amount of
    the campaign file's tier that adds it, never a copy of the number in a text."""
    amount = next((t.min_amount for t in campaign.tiers if any(r.key == reward_key for r in t.rewards)), 0)
    return format_money(amount, campaign.currency, whole=True)
