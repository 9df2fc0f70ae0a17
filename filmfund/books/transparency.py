"""The public account of where the money goes: planned against spent per budget line, the money
raised, the charity's share due and what it has been paid (with the payout dates).

Public, so it carries nothing private: no donor, no receipt, no expense's description (the
producers' note may name a vendor or a person), no bank reference; only each line's total. The
money figures are those the partner sees, held back to the end of yesterday in the campaign's
zone (rewards/statements.py), so this page cannot be used for a before-and-after of one gift either.
"""
from __future__ import annotations

from filmfund.books import expenses
from filmfund.rewards import statements, texts
from filmfund.rewards.models import Campaign


def _title(line, lang: str) -> str:
    titles = line.title or {}
    return titles.get(lang) or next(iter(titles.values()), line.key)


def transparency(campaign: Campaign, lang: str = "en") -> dict:
    as_of = statements.partner_cutoff(campaign)
    st = statements.statement(campaign, as_of)
    spent = expenses.spent_by_line(campaign)
    budget = [{"key": b.key, "title": _title(b, lang), "planned": int(b.planned), "spent": spent.get(b.id, 0)}
              for b in expenses.budget_lines(campaign)]
    payouts = [{"paid_on": p.paid_on.isoformat(), "amount": p.amount}
               for p in statements.payouts_seen(campaign, as_of)]
    return {"currency": campaign.currency, "raised": st["net"], "as_of": st["as_of"],
            "test_money": st["test_money"], "budget": budget,
            "partner": {"name": texts.localized(campaign.translations, "partner_name", campaign.partner_name, lang),
                        "share_bps": campaign.share_bps, "share_due": st["share_due"], "paid_out": st["paid_out"],
                        "payouts": payouts}}
