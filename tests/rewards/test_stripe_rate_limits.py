"""Stripe at a spike: one client per process, and a Checkout Session call that Stripe rate-limits
(429, from the fake Stripe on loopback) is retried with backoff, then explained to the donor."""
from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from filmfund.extensions import db
from filmfund.rewards import stripe_gateway
from filmfund.rewards.models import Pledge
from tests.helpers import make_pledge

# Its subject is Stripe's 429s and the backoff, not the database (tests/conftest.py).
pytestmark = pytest.mark.one_database


@pytest.fixture
def quick_backoff(app):
    app.config.update(STRIPE_RATE_LIMIT_BACKOFF=0.05, STRIPE_RATE_LIMIT_RETRIES=3)


def test_one_client_per_process_reused_by_every_call(app, campaign, fake_stripe):
    first = stripe_gateway.client()
    make_pledge(2000, email="a@example.org")
    make_pledge(3000, email="b@example.org")
    assert stripe_gateway.client() is first
    assert len(fake_stripe.requests) == 2
    app.config["STRIPE_SECRET_KEY"] = "sk_test_other"  # another key is another client
    assert stripe_gateway.client() is not first


def test_a_rate_limited_checkout_is_retried_with_backoff_and_the_same_key(client, campaign, fake_stripe,
                                                                         quick_backoff):
    fake_stripe.fail_next = [429, 429]
    r = client.post("/api/v1/pledges", json={"amount": 2000, "email": "d@example.org"})
    assert r.status_code == 201, r.get_json()
    pid = r.get_json()["pledge_id"]
    reqs = fake_stripe.requests
    assert [q["idempotency_key"] for q in reqs] == [f"checkout:{pid}"] * 3
    assert len(fake_stripe.sessions) == 1 and r.get_json()["checkout_session_id"] in fake_stripe.sessions
    # Exponential backoff: at least 0.05 s, then at least 0.1 s between the attempts.
    gaps = [b["at"] - a["at"] for a, b in zip(reqs, reqs[1:])]
    assert gaps[0] >= 0.05 and gaps[1] >= 0.1


def test_a_lasting_rate_limit_gives_the_api_client_a_clear_503(client, campaign, fake_stripe, quick_backoff):
    fake_stripe.fail_next = [429] * 4
    headers = {"Idempotency-Key": "spike-1"}
    r = client.post("/api/v1/pledges", json={"amount": 2000, "email": "d@example.org"}, headers=headers)
    assert r.status_code == 503
    err = r.get_json()["error"]
    assert err["code"] == "payment_provider_busy" and "try again in a minute" in err["message"]
    assert len(fake_stripe.requests) == 4 and not fake_stripe.sessions
    # The pledge is kept without a session; the same key later opens exactly one session for it.
    again = client.post("/api/v1/pledges", json={"amount": 2000, "email": "d@example.org"}, headers=headers)
    assert again.status_code == 201
    assert db.session.scalar(sa.select(sa.func.count(Pledge.id))) == 1
    assert len(fake_stripe.sessions) == 1


def test_the_donor_on_the_page_sees_a_clear_message_not_an_error(client, campaign, fake_stripe, quick_backoff):
    fake_stripe.fail_next = [429] * 4
    page = client.get("/").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page) or re.search(
        r'value="([^"]+)"[^>]*name="csrf_token"', page)
    r = client.post("/pledge", data={"amount": "25", "email": "d@example.org", "csrf_token": token.group(1)})
    assert r.status_code < 500
    html = r.get_data(as_text=True)
    assert "asked us to slow down" in html and "try again in a minute" in html
    assert "Something went wrong" not in html
    assert 'value="25' in html  # what the donor typed is kept for the retry
