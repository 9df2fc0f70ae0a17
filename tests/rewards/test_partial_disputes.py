"""A dispute may be about part of a gift (the cardholder disputes $30 of $100): losing it, Stripe
withdraws the dispute's `amount`. What counts as refunded is then the refunds plus what the lost
dispute took, never beyond the gift; the rest of the gift stands, with its partner's share and the
donor's tier. Exact under any order of the refund and dispute events, against
tests/rewards/money_model.py."""
from __future__ import annotations

import itertools

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from filmfund.auth.services import find_user
from filmfund.extensions import db
from filmfund.rewards import donations, entitlements, ledger, ledger_check
from filmfund.rewards.models import (Donation, LedgerEntry, WebhookEvent, WebhookStatus)
from filmfund.rewards.payments import partner_statement
from tests.helpers import make_pledge

from . import money_model
from .conftest import charge_obj, dispute_obj, make_event, replay_against_model, session_obj, start_books_afresh


def test_a_lost_dispute_of_part_of_a_gift_counts_only_the_disputed_part(client, stripe_events, campaign,
                                                                        make_user, token_for):
    p, pi = stripe_events.pay(10000, "part-dispute@example.org")
    assert stripe_events.send("charge.dispute.created", dispute_obj(pi, 3000, "needs_response")) == "processed"
    assert partner_statement(campaign)["net"] == 10000  # an open dispute changes nothing
    assert stripe_events.send("charge.dispute.closed", dispute_obj(pi, 3000, "lost")) == "processed"
    st_ = partner_statement(campaign)
    assert (st_["gross"], st_["refunded"], st_["net"], st_["share_due"]) == (10000, 3000, 7000, 1400)
    donor = find_user(p.email)
    assert ledger.donor_net(campaign.id, donor.id) == 7000
    assert entitlements.donor_entitlements(donor, campaign)["tier"]["min_amount"] == money_model.tier(7000)
    d = db.session.scalar(sa.select(Donation))
    assert (d.dispute_amount, d.counted_refunded, donations.state_of(d)) == (3000, 3000, "partially_refunded")
    headers = token_for(make_user("boss@example.org", "producer"))
    listed = client.get("/api/v1/donations?state=partially_refunded", headers=headers).get_json()["items"]
    assert [(i["id"], i["refunded"], i["state"]) for i in listed] == [(d.id, 3000, "partially_refunded")]
    assert client.get("/api/v1/donations?state=refunded", headers=headers).get_json()["items"] == []
    # What is left can still be refunded, and no more.
    r = client.post(f"/api/v1/donations/{d.id}/refund", json={"amount": 7001}, headers=headers)
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "refund_exceeds_remaining"
    assert ledger_check.check_ledger() == []


def test_a_lost_dispute_is_counted_on_top_of_refunds_and_never_beyond_the_gift(stripe_events, campaign):
    p, pi = stripe_events.pay(10000, "both@example.org")
    stripe_events.send("charge.refunded", charge_obj(pi, 10000, 2000))
    stripe_events.send("charge.dispute.closed", dispute_obj(pi, 5000, "lost"))
    assert partner_statement(campaign)["net"] == 3000
    stripe_events.send("charge.refunded", charge_obj(pi, 10000, 6000))  # more refunded than the rest: capped
    assert partner_statement(campaign)["net"] == 0
    d = db.session.scalar(sa.select(Donation))
    assert donations.state_of(d) == "refunded"
    assert ledger_check.check_ledger() == []


def test_a_lost_dispute_overturned_gives_back_what_it_took(stripe_events, campaign):
    p, pi = stripe_events.pay(10000, "overturned@example.org")
    stripe_events.send("charge.dispute.closed", dispute_obj(pi, 3000, "lost"))
    stripe_events.send("charge.dispute.closed", dispute_obj(pi, 3000, "won"))
    assert partner_statement(campaign)["net"] == 10000
    kinds = db.session.scalars(sa.select(LedgerEntry.event_kind).where(LedgerEntry.entry_kind == "restore")).all()
    assert [k.value for k in kinds] == ["dispute_won"]
    assert ledger_check.check_ledger() == []


def test_a_lost_dispute_without_its_amount_is_kept_failed_with_the_reason(stripe_events, campaign):
    p, pi = stripe_events.pay(10000, "no-amount@example.org")
    lost = {k: v for k, v in dispute_obj(pi, 3000, "lost").items() if k != "amount"}
    assert stripe_events.send("charge.dispute.closed", lost) == "failed"
    error = db.session.scalar(sa.select(WebhookEvent.error).where(WebhookEvent.type == "charge.dispute.closed"))
    assert "amount" in error
    assert partner_statement(campaign)["net"] == 10000
    assert ledger_check.check_ledger() == []


def test_a_loss_booked_whole_before_amounts_were_kept_stays_whole(stripe_events, campaign):
    """A donation whose lost dispute was booked before this change (no amount kept): still the whole gift."""
    p, pi = stripe_events.pay(6000, "legacy@example.org")
    stripe_events.send("charge.dispute.closed", dispute_obj(pi, 2000, "lost"))
    db.session.execute(sa.update(Donation).values(dispute_amount=None))
    db.session.commit()
    assert db.session.scalar(sa.select(Donation)).counted_refunded == 6000  # the rule's unknown amount
    stripe_events.send("charge.dispute.created", dispute_obj(pi, 2000, "needs_response"))  # late: changes nothing
    assert db.session.scalar(sa.select(Donation)).dispute_amount is None


@settings(max_examples=1000)
@given(st.integers(1, 10**8).flatmap(lambda amount: st.tuples(
    st.just(amount), st.integers(0, amount), st.integers(1, 2 * amount), st.sampled_from([None, "open", "won", "lost"]))))
def test_what_counts_as_refunded_is_the_models(case):
    from filmfund.rewards import rules

    amount, refunded, disputed, status = case
    model = money_model.Payment(amount=amount, reports=[refunded], dispute=status, dispute_amount=disputed)
    assert rules.counted_refund(amount, refunded, status == "lost", min(amount, disputed)) == model.refunded
    assert rules.counted_refund(amount, refunded, status == "lost", None) == (amount if status == "lost" else refunded)


SCENARIO = [
    ("charge.refunded", lambda pi: charge_obj(pi, 12000, 1000)),
    ("charge.refunded", lambda pi: charge_obj(pi, 12000, 2500)),
    ("charge.dispute.created", lambda pi: dispute_obj(pi, 4000, "needs_response")),
    ("charge.dispute.closed", lambda pi: dispute_obj(pi, 4000, "lost")),
]


@pytest.mark.parametrize("order", list(itertools.permutations(range(1 + len(SCENARIO))))[::5])
def test_every_order_of_refunds_and_a_partial_dispute_gives_the_same_books(stripe_events, campaign, order):
    p = make_pledge(12000, email="order@example.org")
    pi = f"pi_{p.id}"
    events = [make_event("checkout.session.completed", session_obj(p.id, 12000, pi=pi, email=p.email))]
    events += [make_event(type_, obj(pi)) for type_, obj in SCENARIO]
    for i in order:
        assert stripe_events.post(events[i]).status_code == 200
    d = db.session.scalar(sa.select(Donation))
    assert (d.amount_refunded, d.dispute_status, d.dispute_amount, d.net) == (2500, "lost", 4000, 5500)
    assert partner_statement(campaign)["share_due"] == money_model.share_due(5500)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(WebhookEvent).where(
        WebhookEvent.status != WebhookStatus.PROCESSED)) == 0
    assert ledger_check.check_ledger() == []


@st.composite
def histories(draw):
    payments = []
    for _ in range(draw(st.integers(1, 3))):
        amount = draw(st.integers(100, 10**7))
        refunds = draw(st.lists(st.integers(0, amount), max_size=3))
        disputed = draw(st.integers(1, amount))
        statuses = draw(st.sampled_from([[], ["open"], ["lost"], ["open", "lost"], ["lost", "won"], ["open", "won"]]))
        payments.append((amount, refunds, disputed, statuses))
    return payments, draw(st.randoms())


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                               HealthCheck.too_slow])
@given(case=histories())
def test_partial_disputes_and_refunds_match_the_model_at_every_moment(app, campaign, stripe_events, case):
    """Payments, cumulative refunds and disputes of part of a gift, shuffled, each booked by the
    worker: after every event the books say what the contract's rules say (money_model)."""
    payments, rnd = case
    start_books_afresh()  # each example starts from empty books
    events = []
    for amount, refunds, disputed, statuses in payments:
        p = make_pledge(amount, email="partial@example.org")
        pi = f"pi_{p.id}"
        events.append((pi, "paid", amount, ("checkout.session.completed", session_obj(p.id, amount, pi=pi))))
        events += [(pi, "refunded", r, ("charge.refunded", charge_obj(pi, amount, r))) for r in refunds]
        for status in statuses:
            kind = "charge.dispute.created" if status == "open" else "charge.dispute.closed"
            stripe_status = "needs_response" if status == "open" else status
            events.append((pi, "dispute", (status, disputed), (kind, dispute_obj(pi, disputed, stripe_status))))
    rnd.shuffle(events)
    replay_against_model(stripe_events, campaign, events, "partial@example.org", money_model)
