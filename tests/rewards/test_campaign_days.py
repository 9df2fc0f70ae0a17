"""The money kept per day of the campaign's zone (rewards/totals.CampaignDay), which the partner's
statements, months and chart read instead of summing the ledger, against a model of the contract's
rules (tests/rewards/money_model.py) and of where each movement lands, written here from the rules
and not from the code:

- a day is a day of the campaign's zone (its `time_zone`: Beijing, Los Angeles, Kathmandu's +5:45,
  Chatham's +13:45, UTC);
- money "came in" on the day a gift was received (an offline gift may be recorded days later) and
  on the day a refund, a lost dispute, a won one or a refund that failed was booked;
- what was booked on a day: the gifts, the refunds less what came back, the partner's share
  (share_due(net after the day) - share_due(net before it): the share is due at every moment),
  the payouts less the payouts taken back;
- the producers' live chart places money where it came in and a payout on its transfer date; the
  partner's held-back chart places every movement on the day it was booked and stops at the start
  of today, and a reversal lands on the day it was booked in both.

What a user would have met without the kept days: the partner's page at a million gifts read a
million entries; with kept days that drifted from the ledger, a wrong statement that nothing
reported. The ledger check proves the kept days against the entries, and catches one made wrong."""
from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from filmfund.errors import ConflictError
from filmfund.extensions import db
from filmfund.rewards import ledger_check, statements, totals
from filmfund.rewards.models import Donation
from filmfund.rewards.payments import record_payout, reverse_payout
from tests.helpers import make_pledge, record_offline

from . import money_model
from .conftest import charge_obj, dispute_obj, make_event, session_obj, start_books_afresh

START = datetime(2025, 3, 7, 13, 20, tzinfo=timezone.utc)  # a DST change ahead in LA, none in Beijing
ZONES = ("Asia/Shanghai", "America/Los_Angeles", "Asia/Kathmandu", "Pacific/Chatham", "UTC")
FIGURES = ("came_in", "came_in_entries", "gross", "refunded", "money_entries", "share", "paid_out")



class Days:
    """Where the money of each event lands, per day of the zone, from the rules above."""

    def __init__(self, zone: ZoneInfo):
        self.zone = zone
        self.days: dict[date, dict[str, int]] = defaultdict(lambda: dict.fromkeys(FIGURES, 0))
        self.paid_on: list[tuple[datetime, date, int]] = []  # (booked, lands on, amount): payouts, reversals

    def day(self, moment: datetime) -> date:
        return moment.astimezone(self.zone).date()

    def gift(self, booked: datetime, received: datetime, amount: int) -> None:
        self.days[self.day(received)]["came_in"] += amount
        self.days[self.day(received)]["came_in_entries"] += 1
        self.days[self.day(booked)]["gross"] += amount
        self.days[self.day(booked)]["money_entries"] += 1

    def back(self, booked: datetime, refunded: int) -> None:
        """`refunded` more counts as refunded (less, when money came back)."""
        day = self.days[self.day(booked)]
        day["came_in"] -= refunded
        day["came_in_entries"] += 1
        day["refunded"] += refunded
        day["money_entries"] += 1

    def share(self, booked: datetime, before_net: int, after_net: int) -> None:
        self.days[self.day(booked)]["share"] += (money_model.share_due(max(after_net, 0))
                                                 - money_model.share_due(max(before_net, 0)))

    def paid(self, booked: datetime, lands_on: date, amount: int) -> None:
        self.days[self.day(booked)]["paid_out"] += amount
        self.paid_on.append((booked, lands_on, amount))

    def kept(self) -> dict:
        return {d: v for d, v in self.days.items() if any(v.values())}

    def chart(self, cutoff: datetime | None = None) -> list[tuple[date, int, int]]:
        """(day, share due so far, paid so far): live (cutoff None) or as the partner sees it."""
        net: dict[date, int] = {}
        for d, v in self.days.items():
            if cutoff is None and v["came_in_entries"]:
                net[d] = v["came_in"]
            elif cutoff is not None and v["money_entries"] and d < self.day(cutoff):
                net[d] = v["gross"] - v["refunded"]
        paid: dict[date, int] = defaultdict(int)
        for booked, lands_on, amount in self.paid_on:
            if cutoff is None:  # live: on the transfer's date (a reversal on its payout's: never paid)
                paid[lands_on] += amount
            elif booked < cutoff:  # held back: on the day it was booked, as every entry
                paid[self.day(booked)] += amount
        out, n, p = [], 0, 0
        for d in sorted(net.keys() | paid.keys()):
            n, p = n + net.get(d, 0), p + paid.get(d, 0)
            out.append((d, money_model.share_due(max(n, 0)), p))
        return out

    def booked_before(self, cutoff: datetime) -> tuple[int, int, int, int]:
        """(gross, refunded, share due, paid out) of the days before the cut-off's."""
        days = [v for d, v in self.days.items() if d < self.day(cutoff)]
        return tuple(sum(v[k] for v in days) for k in ("gross", "refunded", "share", "paid_out"))


@st.composite
def histories(draw):
    zone = draw(st.sampled_from(ZONES))
    steps = []
    for _ in range(draw(st.integers(3, 12))):
        minutes = draw(st.integers(0, 60 * 24 * 4))
        kind = draw(st.sampled_from(["gift", "offline", "refund", "dispute_lost", "dispute_won", "refund_failed",
                                     "payout", "reverse"]))
        steps.append((minutes, kind, draw(st.integers(100, 10**6)), draw(st.integers(0, 100)),
                      draw(st.integers(0, 60 * 24 * 3))))
    return zone, steps


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                HealthCheck.too_slow])
@given(history=histories())
def test_the_kept_days_say_what_the_contract_says(app, campaign, stripe_events, clock, history):
    zone_name, steps = history
    start_books_afresh()
    campaign.time_zone = zone_name  # no gift recorded yet: the zone may still change
    db.session.commit()
    clock.now = START
    books, payouts, days = money_model.Ledger(), money_model.PartnerPayouts(), Days(ZoneInfo(zone_name))
    stripe_paid: list[tuple[str, int]] = []
    refunds: dict[str, list[tuple[str, int, int]]] = defaultdict(list)  # pi -> its refunds (id, amount, created)
    created = 1_700_000_000  # Stripe's event times: one after another
    transfer_days: dict[int, date] = {}  # payout id -> the date of its transfer
    for minutes, kind, amount, pick, earlier in steps:
        clock.now += timedelta(minutes=minutes)
        created += 60
        before_gross, before_refunded = books.gross, books.refunded
        if kind == "gift":
            p = make_pledge(amount, email=f"days{len(stripe_paid)}@example.org")
            pi = f"pi_{p.id}"
            stripe_events.post(dict(make_event("checkout.session.completed", session_obj(p.id, amount, pi=pi)),
                                    created=created))
            books.apply(pi, "paid", amount)
            stripe_paid.append((pi, amount))
            received = db.session.scalar(sa.select(Donation.received_at).where(Donation.pledge_id == p.id))
            days.gift(clock.now, received, amount)
        elif kind == "offline":
            received = clock.now - timedelta(minutes=earlier)
            record_offline(f"offline{pick}@example.org", amount, received)
            books.apply(f"offline-{len(books.payments)}", "paid", amount)
            days.gift(clock.now, received, amount)
        elif kind in ("refund", "dispute_lost", "dispute_won", "refund_failed") and stripe_paid:
            pi, paid = stripe_paid[pick % len(stripe_paid)]
            if kind == "refund":
                standing = sum(a for r, a, _ in refunds[pi] if r not in books.payments[pi].failed)
                if standing >= paid:  # Stripe refunds no more than the charge
                    continue
                refunds[pi].append((f"re_{pi}_{len(refunds[pi])}", 1 + amount % (paid - standing), created))
                total = standing + refunds[pi][-1][1]
                held = {r: a for r, a, _ in refunds[pi]}
                event = make_event("charge.refunded", charge_obj(pi, paid, total))
                books.apply(pi, "refunded", held)
            elif kind == "refund_failed":
                standing = [r for r in refunds[pi] if r[0] not in books.payments[pi].failed]
                if not standing:
                    continue
                refund_id, refund_amount, refund_created = standing[-1]
                event = make_event("refund.failed", {
                    "id": refund_id, "object": "refund", "amount": refund_amount, "charge": f"ch_{pi}",
                    "currency": "usd", "payment_intent": pi, "status": "failed", "metadata": {}, "reason": None,
                    "failure_reason": "expired_or_canceled_card", "created": refund_created})
                books.apply(pi, "refund_failed", refund_id)
            else:
                status = "lost" if kind == "dispute_lost" else "won"
                event = make_event("charge.dispute.closed", dispute_obj(pi, paid, status))
                books.apply(pi, "dispute", status)
            stripe_events.post(dict(event, created=created))
            if books.refunded != before_refunded:
                days.back(clock.now, books.refunded - before_refunded)
        elif kind == "payout":
            balance = books.share_due() - payouts.paid_out
            if balance <= 0:
                continue
            paid_on = days.day(clock.now) - timedelta(days=pick % 3)
            made = record_payout(1 + amount % balance, paid_on, f"WIRE-{created}", "producer@example.org")
            db.session.commit()
            payouts.pay(made.id, made.amount)
            transfer_days[made.id] = paid_on
            days.paid(clock.now, paid_on, made.amount)
        elif kind == "reverse" and payouts.payouts:
            key = sorted(payouts.payouts)[pick % len(payouts.payouts)]
            if payouts.reverse(key):
                reverse_payout(key, "typed twice", "producer@example.org")
                db.session.commit()
                days.paid(clock.now, transfer_days[key], -payouts.payouts[key])
            else:
                with pytest.raises(ConflictError):
                    reverse_payout(key, "again", "producer@example.org")
                db.session.rollback()
        days.share(clock.now, before_gross - before_refunded, books.net)

    # A day whose figures came back to nothing (a payout reversed on the day it was booked) keeps
    # its row of zeros, which says what no row says.
    kept = {d: dict(zip(FIGURES, rest)) for d, *rest in totals.campaign_days(campaign.id, False) if any(rest)}
    assert kept == days.kept()
    assert statements.timeline(campaign) == days.chart()
    now = clock.now + timedelta(minutes=1)
    for cutoff in (statements.partner_cutoff(campaign, now), statements.partner_cutoff(campaign, START)):
        assert statements.timeline(campaign, cutoff) == days.chart(cutoff)
        held = statements.statement(campaign, cutoff)
        assert (held["gross"], held["refunded"], held["share_due"], held["paid_out"]) == days.booked_before(cutoff)
    assert ledger_check.check_ledger() == []


@pytest.mark.parametrize("figure", FIGURES)
def test_the_ledger_check_finds_a_kept_day_that_is_wrong(campaign, clock, figure):
    clock.now = datetime(2026, 11, 30, 17, 0, tzinfo=timezone.utc)  # 1 December in Beijing
    record_offline("check@example.org", 10000, clock.now - timedelta(days=2))
    assert ledger_check.check_ledger() == []
    c = totals.CampaignDay
    db.session.execute(sa.update(c).where(c.day == date(2026, 12, 1)).values({figure: getattr(c, figure) + 1}))
    db.session.commit()
    found = ledger_check.check_ledger()
    assert len(found) == 1 and "campaign day 2026-12-01" in found[0] and figure in found[0], found


def test_an_offline_gift_recorded_late_is_on_its_own_day_live_and_on_the_booking_day_for_the_partner(
        campaign, clock):
    """Beijing: received 28 November, recorded 1 December at 01:00 (30 November in UTC)."""
    clock.now = datetime(2026, 11, 30, 17, 0, tzinfo=timezone.utc)
    record_offline("late@example.org", 10000, datetime(2026, 11, 28, 4, 0, tzinfo=timezone.utc))
    assert [(d.isoformat(), due) for d, due, _ in statements.timeline(campaign)] == [("2026-11-28", 2000)]
    held = statements.timeline(campaign, datetime(2026, 12, 1, 16, 0, tzinfo=timezone.utc))  # 2 Dec, Beijing
    assert [(d.isoformat(), due) for d, due, _ in held] == [("2026-12-01", 2000)]
    with pytest.raises(ValueError):  # kept per day: a statement stops at the start of one
        statements.statement(campaign, datetime(2026, 12, 1, 17, 0, tzinfo=timezone.utc))
