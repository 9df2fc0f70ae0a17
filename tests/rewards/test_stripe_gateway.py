"""Stripe mode: the stripe library really talks HTTP to a fake Stripe on 127.0.0.1."""
import pytest
import sqlalchemy as sa

from filmfund.extensions import db
from filmfund.rewards.models import Pledge

# Its subject is what the stripe library sends and reads, not the database (tests/conftest.py).
pytestmark = pytest.mark.one_database


def test_checkout_session_request(client, campaign, fake_stripe):
    r = client.post("/api/v1/pledges", json={"amount": 5000, "email": "donor@example.org"})
    assert r.status_code == 201, r.get_json()
    body = r.get_json()
    [req] = fake_stripe.requests
    form, pledge_id = req["form"], body["pledge_id"]
    assert req["path"] == "/v1/checkout/sessions"
    assert req["authorization"] == "Bearer sk_test_fake"
    assert req["idempotency_key"] == f"checkout:{pledge_id}"
    assert form["mode"] == "payment"
    assert form["client_reference_id"] == pledge_id
    assert form["customer_email"] == "donor@example.org"
    assert form["metadata[pledge_id]"] == pledge_id
    assert form["payment_intent_data[metadata][pledge_id]"] == pledge_id
    assert form["line_items[0][price_data][unit_amount]"] == "5000"
    assert form["line_items[0][price_data][currency]"] == "usd"
    assert form["line_items[0][quantity]"] == "1"
    assert form["success_url"] == f"http://localhost/thank-you?pledge={pledge_id}&session_id={{CHECKOUT_SESSION_ID}}"
    assert form["cancel_url"] == "http://localhost/?amount=5000&cancelled=1"
    assert body["checkout_session_id"] in fake_stripe.sessions
    assert body["checkout_url"] == f"https://checkout.example/{body['checkout_session_id']}"


from tests.helpers import make_pledge


@pytest.mark.parametrize("status", [500, 409])
def test_a_failure_is_retried_with_the_same_key(campaign, fake_stripe, status):
    fake_stripe.fail_next = [status]
    p = make_pledge(2000, email="donor@example.org")
    keys = [r["idempotency_key"] for r in fake_stripe.requests]
    assert keys == [f"checkout:{p.id}"] * 2
    assert len(fake_stripe.sessions) == 1 and p.checkout_session_id in fake_stripe.sessions


def test_stripe_down_keeps_the_pledge_and_a_retry_makes_one_session(client, campaign, fake_stripe, app):
    app.config["STRIPE_MAX_RETRIES"] = 0
    fake_stripe.fail_next = [503]
    headers = {"Idempotency-Key": "k1"}
    r = client.post("/api/v1/pledges", json={"amount": 2000, "email": "d@example.org"}, headers=headers)
    assert r.status_code == 502 and r.get_json()["error"]["code"] == "payment_provider_unavailable"
    again = client.post("/api/v1/pledges", json={"amount": 2000, "email": "d@example.org"}, headers=headers)
    assert again.status_code == 201
    assert db.session.scalar(sa.select(sa.func.count(Pledge.id))) == 1
    assert len(fake_stripe.sessions) == 1
    pid = again.get_json()["pledge_id"]
    assert [r["idempotency_key"] for r in fake_stripe.requests] == [f"checkout:{pid}"] * 2


def test_a_replayed_key_returns_the_saved_session(campaign, fake_stripe):
    """If a crash lost our answer, asking again with the same key gives the very same session."""
    from filmfund.rewards import stripe_gateway

    p = make_pledge(2000, email="donor@example.org")
    again = stripe_gateway.create_checkout_session(p, campaign, success_url="http://x/s", cancel_url="http://x/c")
    assert again[0] == p.checkout_session_id
    assert len(fake_stripe.sessions) == 1


def test_the_test_checkout_is_refused_with_stripe_keys(campaign, fake_stripe):
    import pytest

    from filmfund.errors import ForbiddenError
    from filmfund.rewards.webhooks import complete_test_checkout

    p = make_pledge(2000, email="donor@example.org")
    with pytest.raises(ForbiddenError):
        complete_test_checkout(p.id, "paid")
