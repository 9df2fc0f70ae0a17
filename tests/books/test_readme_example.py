"""The README's worked example of a month's statement, booked through the real paths: if the code
and the README part ways, this fails."""
from __future__ import annotations

from datetime import date, datetime, timezone

from filmfund.extensions import db
from filmfund.rewards import ledger, statements
from filmfund.rewards.payments import partner_statement, record_payout
from tests.rewards.conftest import charge_obj, session_obj

README_NOVEMBER = {"month": "2026-11", "opening_balance": 3000, "gross": 28333, "refunded": 5000, "net": 23333,
                   "share_due": 4667, "paid_out": 4000, "closing_balance": 3667}


def test_the_readme_example(campaign, stripe_events, pledge, monkeypatch):
    def at(when: datetime):
        monkeypatch.setattr(ledger, "utcnow", lambda: when)

    def give(amount: int) -> str:
        p = pledge(amount, email=f"example{amount}@example.org")
        stripe_events.send("checkout.session.completed", session_obj(p.id, amount, pi=f"pi_{p.id}"))
        return f"pi_{p.id}"

    at(datetime(2026, 10, 12, 3, 0, tzinfo=timezone.utc))
    first = give(10000)
    at(datetime(2026, 10, 30, 9, 0, tzinfo=timezone.utc))
    give(5000)
    at(datetime(2026, 10, 31, 17, 30, tzinfo=timezone.utc))  # 01:30 on 1 November in Beijing: November's
    give(25000)
    at(datetime(2026, 11, 14, 8, 0, tzinfo=timezone.utc))
    give(3333)
    at(datetime(2026, 11, 18, 8, 0, tzinfo=timezone.utc))
    stripe_events.send("charge.refunded", charge_obj(first, 10000, 5000))
    at(datetime(2026, 11, 20, 2, 0, tzinfo=timezone.utc))
    record_payout(4000, date(2026, 11, 20), "XINXING-2026-11", "producer@example.org")
    db.session.commit()
    now = datetime(2026, 12, 3, tzinfo=timezone.utc)
    october = statements.month_statement(campaign, "2026-10", now=now)
    assert (october["gross"], october["share_due"], october["closing_balance"]) == (15000, 3000, 3000)
    november = statements.month_statement(campaign, "2026-11", now=now)
    assert {k: november[k] for k in README_NOVEMBER} == README_NOVEMBER
    assert november["payouts"][0]["reference"] == "XINXING-2026-11"
    december = statements.month_statement(campaign, "2026-12", now=now)
    assert december["opening_balance"] == december["closing_balance"] == 3667
    assert partner_statement(campaign)["balance"] == 3667
    from filmfund.books.printing import statement_csv

    november["test_money"] = False  # the README shows live money's file
    assert statement_csv(november).replace("\r\n", "\n") == README_CSV


README_CSV = """item,label,period,amount_cents,currency,reference
opening_balance,Opening balance,2026-11,3000,usd,
gross,Gifts (gross),2026-11,28333,usd,
refunded,Refunds,2026-11,5000,usd,
net,Net,2026-11,23333,usd,
share_due,Share due,2026-11,4667,usd,
paid_out,Paid out,2026-11,4000,usd,
closing_balance,Closing balance,2026-11,3667,usd,
payout,Payout,2026-11-20,4000,usd,XINXING-2026-11
"""
