"""The partner's monthly statements against the contract's money rules (tests/rewards/money_model.py),
over random ledgers spread across months, payouts and their reversals among them: each month adds up, the months chain (a month's closing
balance is the next one's opening), the last one matches the live statement, and what the partner
sees is the ledger as it stood at the end of the previous day in the campaign's zone."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from filmfund.errors import ConflictError, NotFoundError
from filmfund.extensions import db
from filmfund.rewards import ledger_check, statements
from filmfund.rewards.payments import partner_statement, record_payout, reverse_payout
from tests.helpers import make_pledge

from . import money_model
from .conftest import charge_obj, dispute_obj, session_obj, start_books_afresh

ZONE = ZoneInfo("Asia/Shanghai")  # the bundled campaign's zone, written here from the campaign file
# A year back: the random ledgers span up to a year from here, and a payout is never dated ahead of today.
START = datetime(2025, 9, 29, 20, 0, tzinfo=timezone.utc)



def _month_of(moment: datetime) -> str:
    return moment.astimezone(ZONE).strftime("%Y-%m")


def _month_start(month: str) -> datetime:
    y, m = map(int, month.split("-"))
    return datetime(y, m, 1, tzinfo=ZONE).astimezone(timezone.utc)


class Books:
    """The contract's rules replayed over time: after each event, what the model says."""

    def __init__(self):
        self.model = money_model.Ledger()
        self.partner = money_model.PartnerPayouts()
        self.history: list[tuple[datetime, int, int, int, int]] = []  # (when, gross, refunded, share, paid)

    def record(self, when: datetime) -> None:
        self.history.append((when, self.model.gross, self.model.refunded, self.model.share_due(),
                             self.partner.paid_out))

    def at(self, moment: datetime) -> tuple[int, int, int, int]:
        """(gross, refunded, share due, paid) of everything booked before `moment`."""
        before = [h for h in self.history if h[0] < moment]
        return before[-1][1:] if before else (0, 0, 0, 0)

    def month(self, month: str) -> dict:
        start = _month_start(month)
        y, m = map(int, month.split("-"))
        end = _month_start(f"{y + (m == 12)}-{m % 12 + 1:02d}")
        g0, r0, s0, p0 = self.at(start)
        g1, r1, s1, p1 = self.at(end)
        opening = s0 - p0
        return {"opening_balance": opening, "gross": g1 - g0, "refunded": r1 - r0, "net": (g1 - r1) - (g0 - r0),
                "share_due": s1 - s0, "paid_out": p1 - p0, "closing_balance": opening + (s1 - s0) - (p1 - p0)}


@st.composite
def ledgers(draw):
    steps = []
    for _ in range(draw(st.integers(2, 9))):
        hours = draw(st.integers(0, 24 * 40))
        kind = draw(st.sampled_from(["gift", "gift", "refund", "dispute", "payout", "payout", "reverse"]))
        steps.append((hours, kind, draw(st.integers(100, 10**7)), draw(st.integers(0, 100))))
    return steps


FIGURES = ("opening_balance", "gross", "refunded", "net", "share_due", "paid_out", "closing_balance")


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                               HealthCheck.too_slow])
@given(steps=ledgers())
def test_monthly_statements_add_up_and_match_the_model(app, campaign, stripe_events, clock, steps):
    start_books_afresh()  # each example starts from empty books
    clock.now = START
    books, payments = Books(), []
    for hours, kind, amount, pick in steps:
        clock.now += timedelta(hours=hours)
        if kind == "gift":
            p = make_pledge(amount, email=f"month{len(payments)}@example.org")
            stripe_events.send("checkout.session.completed", session_obj(p.id, amount, pi=f"pi_{p.id}"))
            books.model.apply(f"pi_{p.id}", "paid", amount)
            payments.append((f"pi_{p.id}", amount))
        elif kind == "refund" and payments:
            pi, paid = payments[pick % len(payments)]
            refunded = min(paid, books.model.payments[pi].reported_refund + amount % (paid + 1))
            stripe_events.send("charge.refunded", charge_obj(pi, paid, refunded))
            books.model.apply(pi, "refunded", refunded)
        elif kind == "dispute" and payments:
            pi, paid = payments[pick % len(payments)]
            stripe_events.send("charge.dispute.closed", dispute_obj(pi, paid, "lost"))
            books.model.apply(pi, "dispute", "lost")
        elif kind == "payout":
            balance = books.model.share_due() - books.partner.paid_out
            if balance <= 0:
                continue
            payout = 1 + amount % balance
            made = record_payout(payout, clock.now.date(), f"WIRE-{len(books.history)}", "producer@example.org")
            db.session.commit()
            books.partner.pay(made.id, payout)
        elif kind == "reverse" and books.partner.payouts:
            # Any payout, reversed or not: the model says whether the books must take it back or refuse.
            key = sorted(books.partner.payouts)[pick % len(books.partner.payouts)]
            if books.partner.reverse(key):
                reverse_payout(key, "typed $5,000 for $50.00", "producer@example.org")
                db.session.commit()
            else:
                with pytest.raises(ConflictError):
                    reverse_payout(key, "sent again", "producer@example.org")
                db.session.rollback()
        books.record(clock.now)
    now = clock.now + timedelta(minutes=1)
    first, last = _month_of(START), _month_of(now)
    months, m = [], first
    while m <= last:
        months.append(m)
        y, mo = map(int, m.split("-"))
        m = f"{y + (mo == 12)}-{mo % 12 + 1:02d}"
    previous_closing = 0
    for month in months:  # the producers' view: live and exact
        doc = statements.month_statement(campaign, month, now=now)
        assert {k: doc[k] for k in FIGURES} == books.month(month), month
        assert doc["opening_balance"] == previous_closing
        assert sum(line["amount"] for line in doc["payouts"]) == doc["paid_out"]  # reversals are lines too
        assert doc["closing_balance"] == doc["opening_balance"] + doc["share_due"] - doc["paid_out"]
        previous_closing = doc["closing_balance"]
    live = partner_statement(campaign)
    assert previous_closing == live["balance"]
    assert (live["gross"], live["refunded"], live["share_due"], live["paid_out"]) == books.at(now)
    # The partner's view: everything as it stood at the start of today in the campaign's zone.
    cutoff = statements.partner_cutoff(campaign, now)
    assert cutoff.astimezone(ZONE).time().isoformat() == "00:00:00" and now - cutoff < timedelta(days=1)
    held = statements.statement(campaign, cutoff)
    assert (held["gross"], held["refunded"], held["share_due"], held["paid_out"]) == books.at(cutoff)
    assert held["balance"] == books.at(cutoff)[2] - books.at(cutoff)[3]
    this_month = statements.month_statement(campaign, last, cutoff, now=now)
    assert this_month["closing_balance"] == held["balance"]
    assert ledger_check.check_ledger() == []


def test_month_names_are_checked(campaign):
    for bad in ("2026-13", "2026-1", "26-11", "1999-12", "2026-11-01", ""):
        with pytest.raises(NotFoundError):
            statements.month_statement(campaign, bad)
    with pytest.raises(NotFoundError):
        statements.month_statement(campaign, "2999-01")  # not begun


def test_the_months_are_counted_in_the_campaign_zone(campaign, clock):
    """A gift booked at 20:00 UTC on the last day of November is December's in Beijing."""
    from tests.helpers import record_offline

    clock.now = datetime(2026, 11, 30, 20, 0, tzinfo=timezone.utc)
    record_offline("zone@example.org", 10000, date(2026, 11, 30))
    later = datetime(2026, 12, 3, tzinfo=timezone.utc)
    assert statements.month_statement(campaign, "2026-11", now=later)["gross"] == 0
    december = statements.month_statement(campaign, "2026-12", now=later)
    assert (december["gross"], december["share_due"], december["closing_balance"]) == (10000, 2000, 2000)


def test_a_filed_month_stays_true_the_zone_is_fixed_once_gifts_are_recorded(campaign, clock, tmp_path):
    """The months filed with the partner are counted in the campaign's zone: reloading the campaign
    file with another would move a gift of 01:30 on 1 November in Beijing back into October, and
    change two statements already filed. Refused, as the currency and the share are."""
    from filmfund.config import BUNDLED_CAMPAIGN
    from filmfund.errors import ValidationError
    from filmfund.rewards.campaign import load_campaign
    from tests.helpers import record_offline

    clock.now = datetime(2026, 10, 31, 17, 30, tzinfo=timezone.utc)
    record_offline("late-october@example.org", 25000, date(2026, 10, 31))
    later = datetime(2026, 12, 5, tzinfo=timezone.utc)
    filed = statements.month_statement(campaign, "2026-11", now=later)
    assert (filed["gross"], filed["time_zone"]) == (25000, "Asia/Shanghai")
    in_utc = tmp_path / "utc.toml"
    in_utc.write_text(BUNDLED_CAMPAIGN.read_text().replace('time_zone = "Asia/Shanghai"', 'time_zone = "UTC"'))
    with pytest.raises(ValidationError, match="time_zone: cannot change once donations are recorded"):
        load_campaign(in_utc)
    db.session.rollback()
    assert statements.month_statement(campaign, "2026-11", now=later) == filed


def test_a_reversal_is_in_the_month_it_is_booked_and_on_its_day_in_the_chart(campaign, clock):
    """A $50.00 payout recorded as $500.00 in November and taken back in December: November, filed
    with the partner, still says what was booked then; December holds the reversal as a line of its
    own (negative, dated the day it was booked, with its reason), so its paid out is negative and
    its closing balance is the balance due again. The partner's chart steps back down that day."""
    from tests.helpers import record_offline

    clock.now = datetime(2026, 11, 2, 4, 0, tzinfo=timezone.utc)
    record_offline("big@example.org", 1_000_000, date(2026, 11, 2))  # share due: $2,000.00
    clock.now = datetime(2026, 11, 20, 4, 0, tzinfo=timezone.utc)
    payout = record_payout(50_000, date(2026, 11, 20), "WIRE-NOV", "producer@example.org")
    db.session.commit()
    clock.now = datetime(2026, 12, 3, 4, 0, tzinfo=timezone.utc)
    reverse_payout(payout.id, "typed $500.00 for $50.00", "producer@example.org")
    db.session.commit()
    later = datetime(2026, 12, 5, tzinfo=timezone.utc)
    november = statements.month_statement(campaign, "2026-11", now=later)
    assert (november["paid_out"], november["closing_balance"]) == (50_000, 150_000)
    assert [(p["amount"], p.get("reversal", False)) for p in november["payouts"]] == [(50_000, False)]
    december = statements.month_statement(campaign, "2026-12", now=later)
    assert (december["opening_balance"], december["paid_out"], december["closing_balance"]) == \
        (150_000, -50_000, 200_000)
    assert december["payouts"] == [{"id": payout.id, "paid_on": "2026-12-03", "amount": -50_000,
                                    "reference": "WIRE-NOV", "acknowledged": False, "reversal": True,
                                    "reason": "typed $500.00 for $50.00"}]
    # The producers' chart, live: a payout recorded by mistake was never paid, on no day.
    assert [(day.isoformat(), paid) for day, _, paid in statements.timeline(campaign)] == [
        ("2026-11-02", 0), ("2026-11-20", 0)]
    # The partner's view before the reversal's day is over still counts the payout; after it, the
    # days it was shown keep it, and the chart steps back down on the reversal's day.
    held = statements.timeline(campaign, datetime(2026, 12, 2, 16, 0, tzinfo=timezone.utc))
    assert held[-1][2] == 50_000
    held = statements.timeline(campaign, datetime(2026, 12, 4, 16, 0, tzinfo=timezone.utc))
    assert [(day.isoformat(), paid) for day, _, paid in held] == [
        ("2026-11-02", 0), ("2026-11-20", 50_000), ("2026-12-03", 0)]


def test_the_partners_chart_never_shows_a_mistaken_or_back_dated_payout_on_a_day_it_showed(campaign, clock):
    """Probe (partner, F1): a $300.00 payout dated the day before, reversed the same day and
    recorded again, drew $600 paid on that day (share due $82.09), and a payout recorded later
    with an old date changed a day the partner had seen. Held back, payouts and reversals count
    on the day they were booked, as the share does."""
    from tests.helpers import record_offline

    clock.now = datetime(2026, 11, 20, 4, 0, tzinfo=timezone.utc)
    record_offline("big@example.org", 500_000, date(2026, 11, 20))  # share due: $1,000.00
    clock.now = datetime(2026, 12, 3, 4, 0, tzinfo=timezone.utc)
    wrong = record_payout(30_000, date(2026, 12, 2), "XINXING-2026-12-A", "producer@example.org")
    db.session.commit()
    reverse_payout(wrong.id, "typed the wrong amount", "producer@example.org")
    record_payout(30_000, date(2026, 12, 2), "XINXING-2026-12-B", "producer@example.org")
    db.session.commit()
    seen = statements.timeline(campaign, datetime(2026, 12, 4, 16, 0, tzinfo=timezone.utc))
    assert max(paid for _, _, paid in seen) == 30_000
    assert [(day.isoformat(), paid) for day, _, paid in seen] == [("2026-11-20", 0), ("2026-12-03", 30_000)]

    clock.now = datetime(2026, 12, 8, 4, 0, tzinfo=timezone.utc)
    record_payout(500, date(2026, 11, 20), "XINXING-LATE", "producer@example.org")  # back-dated
    db.session.commit()
    again = statements.timeline(campaign, datetime(2026, 12, 8, 16, 0, tzinfo=timezone.utc))
    assert again[:2] == seen  # the days shown before are as they were
    assert again[-1][0].isoformat() == "2026-12-08" and again[-1][2] == 30_500
