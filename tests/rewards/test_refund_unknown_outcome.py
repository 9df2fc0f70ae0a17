"""A producer's refund whose call to Stripe got no answer (a 5xx, a lost connection): Stripe says its
outcome is unknown (the refund may have been made) and that it must be asked again under the same
idempotency key. The request stays pending, still counted against what remains, and every retry
(the producer's next refund of that donation, the ten-minute job) sends that same request again
under `refund:<its id>`: never a second refund under a new key. Only Stripe's refusal (a 4xx)
fails a request (tests/rewards/test_donations_console.py)."""
from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from filmfund.db import utcnow
from filmfund.extensions import db
from filmfund.rewards import ledger_check, refunds
from filmfund.rewards.models import Donation, RefundRequest
from filmfund.rewards.payments import partner_statement
from tests.helpers import make_pledge

from .conftest import charge_obj, session_obj


@pytest.fixture
def paid(app, stripe_events, fake_stripe, campaign, make_user, token_for):
    """A $50 gift paid through (fake) Stripe, and a producer's API headers."""
    app.config["STRIPE_MAX_RETRIES"] = 0  # the library's own retries aside: one call, one answer
    headers = token_for(make_user("boss@example.org", "producer"))
    p = make_pledge(5000, email="unanswered@example.org")
    assert stripe_events.send("checkout.session.completed", session_obj(
        p.id, 5000, session_id=p.checkout_session_id, pi=f"pi_{p.id}", email=p.email)) == "processed"
    return db.session.scalar(sa.select(Donation)), headers


def _keys(fake_stripe) -> list[str]:
    return [r["idempotency_key"] for r in fake_stripe.to("/v1/refunds")]


def _request() -> RefundRequest:
    db.session.expire_all()
    return db.session.scalar(sa.select(RefundRequest))


@pytest.mark.parametrize("status", [500, 503])
def test_a_refund_stripe_answered_5xx_stays_pending_and_the_producers_retry_reuses_its_key(
        client, fake_stripe, paid, status):
    donation, headers = paid
    fake_stripe.fail_next = [status]
    first = client.post(f"/api/v1/donations/{donation.id}/refund", json={"amount": 2000}, headers=headers)
    assert first.status_code == 202, first.get_json()
    assert (first.get_json()["state"], first.get_json()["remaining"]) == ("pending", 3000)  # still counted
    req = _request()
    assert req.state.value == "pending" and req.stripe_refund_id is None and "asked again" in req.error
    # The producer clicks again (another form, another key): the same request, the same key.
    again = client.post(f"/api/v1/donations/{donation.id}/refund", json={"amount": 2000}, headers=headers)
    assert again.status_code == 202, again.get_json()
    assert _keys(fake_stripe) == [f"refund:{req.id}"] * 2
    req = _request()
    assert req.stripe_refund_id and req.error is None
    assert db.session.scalar(sa.select(sa.func.count()).select_from(RefundRequest)) == 1
    # Nothing more may be asked than remains (the $20 still counts), and nothing beyond it reaches Stripe.
    r = client.post(f"/api/v1/donations/{donation.id}/refund", json={"amount": 3001}, headers=headers)
    assert r.status_code == 409 and len(_keys(fake_stripe)) == 2


def test_a_retry_with_no_amount_is_the_same_request(client, fake_stripe, paid):
    donation, headers = paid
    fake_stripe.fail_next = [500]
    client.post(f"/api/v1/donations/{donation.id}/refund", json={"amount": 2000}, headers=headers)
    again = client.post(f"/api/v1/donations/{donation.id}/refund", json={}, headers=headers)
    assert again.status_code == 202 and again.get_json()["requested"] == 2000
    assert len(set(_keys(fake_stripe))) == 1


def test_another_amount_while_one_is_unanswered_is_refused_and_asks_stripe_nothing_new(client, fake_stripe, paid):
    donation, headers = paid
    fake_stripe.fail_next = [500]
    client.post(f"/api/v1/donations/{donation.id}/refund", json={"amount": 2000}, headers=headers)
    r = client.post(f"/api/v1/donations/{donation.id}/refund", json={"amount": 1000}, headers=headers)
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "refund_unanswered"
    assert "$20.00" in r.get_json()["error"]["message"]
    assert len(_keys(fake_stripe)) == 1 and _request().state.value == "pending"


def test_a_lost_connection_is_an_unknown_outcome_too(app, client, fake_stripe, paid):
    donation, headers = paid
    app.config["STRIPE_API_BASE"] = "http://127.0.0.1:9"  # nothing listens: the call never gets its answer
    r = client.post(f"/api/v1/donations/{donation.id}/refund", json={"amount": 1500}, headers=headers)
    assert r.status_code == 202 and r.get_json()["state"] == "pending"
    app.config["STRIPE_API_BASE"] = fake_stripe.url
    req = _request()
    db.session.execute(sa.update(RefundRequest).values(created_at=utcnow() - timedelta(minutes=5)))
    db.session.commit()
    assert refunds.resend_unanswered_refunds.call_local() == 1  # the ten-minute job
    assert _keys(fake_stripe) == [f"refund:{req.id}"]
    assert _request().stripe_refund_id


def test_the_job_asks_again_under_the_same_key_within_stripes_day_only(stripe_events, fake_stripe, paid, client,
                                                                      campaign):
    donation, headers = paid
    fake_stripe.fail_next = [500, 500]
    client.post(f"/api/v1/donations/{donation.id}/refund", json={"amount": 2000}, headers=headers)
    req_id = _request().id
    assert refunds.resend_unanswered_refunds.call_local() == 0  # a fresh one may still be on its way
    db.session.execute(sa.update(RefundRequest).values(created_at=utcnow() - timedelta(minutes=11)))
    db.session.commit()
    assert refunds.resend_unanswered_refunds.call_local() == 0  # Stripe still did not answer: still pending
    assert _request().state.value == "pending"
    assert refunds.resend_unanswered_refunds.call_local() == 1  # answered at last
    assert _keys(fake_stripe) == [f"refund:{req_id}"] * 3
    assert refunds.resend_unanswered_refunds.call_local() == 0  # nothing left to ask
    # Stripe's event books it and confirms the request.
    assert stripe_events.send("charge.refunded", charge_obj(donation.payment_intent_id, 5000, 2000)) == "processed"
    assert _request().state.value == "succeeded"
    assert partner_statement(campaign)["net"] == 3000
    assert ledger_check.check_ledger() == []


def test_past_the_day_stripe_keeps_a_key_nothing_is_sent_again(fake_stripe, paid, client):
    donation, headers = paid
    fake_stripe.fail_next = [500]
    client.post(f"/api/v1/donations/{donation.id}/refund", json={"amount": 2000}, headers=headers)
    db.session.execute(sa.update(RefundRequest).values(created_at=utcnow() - timedelta(hours=23, minutes=1)))
    db.session.commit()
    assert refunds.resend_unanswered_refunds.call_local() == 0
    assert len(_keys(fake_stripe)) == 1 and _request().state.value == "pending"


@pytest.mark.parametrize("status", [400, 402, 403])
def test_only_a_refusal_fails_the_request_and_frees_the_amount(client, fake_stripe, paid, status):
    donation, headers = paid
    fake_stripe.fail_next = [status]
    r = client.post(f"/api/v1/donations/{donation.id}/refund", json={"amount": 2000}, headers=headers)
    assert r.status_code == 502
    assert _request().state.value == "failed"
    r = client.post(f"/api/v1/donations/{donation.id}/refund", json={}, headers=headers)
    assert r.status_code == 202 and r.get_json()["requested"] == 5000  # a new request, a new key
    assert len(set(_keys(fake_stripe))) == 2
