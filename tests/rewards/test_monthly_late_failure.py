"""A month's failed first attempt delivered after Stripe's retry paid it (no ordering guarantee):
the donor paid and must not be told "could not be charged ... Nothing was taken"; nor by a failure
older than what the gift already knows. A failure that is the latest word still mails once."""
from __future__ import annotations

from filmfund.rewards import ledger_check

from .conftest import make_event
from .test_monthly import (OLD, PINNED, T0, first_month_paid, invoice_events, invoice_obj, mails_to, months_booked,
                           post, subscription_event, subscription_of)


def _subjects(addr: str) -> list[str]:
    return [subject for subject, _body in mails_to(addr)]


def _start(stripe_events, email_: str, version: str = OLD):
    return first_month_paid(stripe_events, email_, version=version)


def _failed(p, month: int, created: int, version: str = OLD, attempt: int = 1) -> dict:
    return dict(make_event("invoice.payment_failed", invoice_obj(p, month, version, paid=False, attempt=attempt)),
                created=created)


def test_a_failed_attempt_delivered_after_the_month_was_paid_mails_nothing(stripe_events, campaign):
    p = _start(stripe_events, "late-fail@example.org")
    for event in invoice_events(p, 2, OLD, T0 + 40):
        post(stripe_events, event)
    assert post(stripe_events, _failed(p, 2, T0 + 20)) == "processed"
    assert subscription_of(p).state.value == "active"
    assert len(months_booked(p)) == 2
    assert not [s for s in _subjects(p.email) if "could not be charged" in s]
    assert ledger_check.check_ledger() == []


def test_a_failure_of_a_booked_month_mails_nothing_whatever_its_time(stripe_events, campaign):
    """Even stamped later (Stripe's clocks, a retry's own event), a month that is paid and booked was charged."""
    p = _start(stripe_events, "booked@example.org", version=PINNED)
    for event in invoice_events(p, 2, PINNED, T0 + 40):
        post(stripe_events, event)
    post(stripe_events, _failed(p, 2, T0 + 50, version=PINNED))
    assert subscription_of(p).state.value == "active"
    assert not [s for s in _subjects(p.email) if "could not be charged" in s]


def test_a_failure_older_than_what_the_gift_knows_mails_nothing(stripe_events, campaign):
    p = _start(stripe_events, "older@example.org")
    post(stripe_events, subscription_event(p, "customer.subscription.updated", "active", T0 + 60))
    post(stripe_events, _failed(p, 2, T0 + 30))  # month 2 unpaid yet, but Stripe said "active" since
    assert subscription_of(p).state.value == "active"
    assert not [s for s in _subjects(p.email) if "could not be charged" in s]


def test_a_failure_that_is_the_latest_word_still_mails_once(stripe_events, campaign):
    p = _start(stripe_events, "real-fail@example.org")
    post(stripe_events, _failed(p, 2, T0 + 30))
    post(stripe_events, _failed(p, 2, T0 + 31, attempt=2))  # Stripe's retry failing too: no second mail
    assert subscription_of(p).state.value == "past_due"
    assert [s for s in _subjects(p.email) if "could not be charged" in s] == ["Your monthly gift could not be charged"]
