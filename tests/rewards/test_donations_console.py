"""The producers' donations: the list (search, filters, keyset pages), refunds through a Stripe that
records what it receives (booked when its charge.refunded event is booked by the worker) and
offline refunds in the ledger; the audit of each."""
from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from filmfund.audit import AuditEntry
from filmfund.extensions import db
from filmfund.rewards import donors, ledger_check, payments, refunds
from filmfund.rewards.models import Donation, LedgerEntry, RefundRequest
from tests.helpers import make_pledge, record_offline
from tests.rewards.conftest import charge_obj, session_obj


@pytest.fixture
def producer(app, make_user, token_for):
    user = make_user("boss@example.org", role="producer")
    return user, token_for(user)


def _gift(email, amount, *, name=None, anonymous=False, days_ago=0):
    when = datetime.now(timezone.utc) - timedelta(days=days_ago)
    return record_offline(email, amount, received_on=when, credit_name=name, anonymous=anonymous)


def _all_pages(client, headers, **params) -> list[dict]:
    items, cursor, pages = [], None, 0
    while True:
        args = {**params, **({"cursor": cursor} if cursor else {})}
        r = client.get("/api/v1/donations", query_string=args, headers=headers)
        assert r.status_code == 200, r.get_json()
        doc = r.get_json()
        items += doc["items"]
        pages += 1
        cursor = doc["next"]
        if not cursor:
            return items


def test_list_pages_by_keyset_newest_first_without_gaps_or_repeats(client, campaign, producer):
    _, headers = producer
    made = [_gift(f"d{i:02d}@example.org", 1000 + i, days_ago=i % 5).id for i in range(23)]
    items = _all_pages(client, headers, limit=5)
    assert sorted(i["id"] for i in items) == sorted(made)  # every one, once
    keys = [(i["created_at"], i["id"]) for i in items]
    assert keys == sorted(keys, reverse=True)
    first = items[0]
    assert set(first) >= {"id", "email", "credit_name", "anonymous", "amount", "refunded", "currency", "source",
                          "state", "recurring", "created_at"}
    assert first["recurring"] is False and first["state"] == "paid" and first["source"] == "offline"


def test_search_by_email_prefix_and_by_name_shows_real_names_with_the_anonymity_flag(client, campaign, producer):
    _, headers = producer
    _gift("alice@example.org", 2500, name="Alice Wong")
    _gift("bob@example.org", 5000, name="Bob Li", anonymous=True)
    _gift("carol@example.net", 1000)
    r = client.get("/api/v1/donations?q=ALI", headers=headers).get_json()
    assert [i["email"] for i in r["items"]] == ["alice@example.org"]
    r = client.get("/api/v1/donations?q=bob l", headers=headers).get_json()  # by name, case aside
    assert [(i["email"], i["credit_name"], i["anonymous"]) for i in r["items"]] == [
        ("bob@example.org", "Bob Li", True)]
    r = client.get("/api/v1/donations?q=carol@example.n", headers=headers).get_json()
    assert [i["email"] for i in r["items"]] == ["carol@example.net"]
    assert client.get("/api/v1/donations?q=zz%25", headers=headers).get_json()["items"] == []  # % is a letter
    assert client.get("/api/v1/donations?q=_", headers=headers).get_json()["items"] == []


def test_filters_by_date_source_and_state(client, campaign, producer, make_user):
    user, headers = producer
    old = _gift("old@example.org", 1000, days_ago=10)
    new = _gift("new@example.org", 2000)
    today = datetime.now(timezone.utc).date()
    ids = lambda **q: [i["id"] for i in client.get("/api/v1/donations", query_string=q, headers=headers).get_json()["items"]]  # noqa: E731
    assert ids(**{"from": today.isoformat()}) == [new.id]
    assert ids(to=(today - timedelta(days=5)).isoformat()) == [old.id]
    assert ids(source="stripe") == [] and set(ids(source="offline")) == {old.id, new.id}
    refunds.request_refund(new.id, 500, "asked", requested_by=user)
    db.session.commit()
    assert ids(state="partially_refunded") == [new.id]
    assert ids(state="paid") == [old.id]
    assert ids(state="refunded") == []
    refunds.request_refund(new.id, None, "the rest", requested_by=user)
    db.session.commit()
    assert ids(state="refunded") == [new.id]
    bad = client.get("/api/v1/donations?state=lost", headers=headers)
    assert bad.status_code == 400 and bad.get_json()["error"]["code"] == "invalid_state"
    bad = client.get("/api/v1/donations?cursor=nope", headers=headers)
    assert bad.status_code == 400 and bad.get_json()["error"]["code"] == "invalid_cursor"


def test_only_producers_list_or_refund(client, campaign, make_user, token_for):
    gift = _gift("x@example.org", 1000)
    for role in ("partner", "donor"):
        headers = token_for(make_user(f"{role}@example.org", role=role))
        assert client.get("/api/v1/donations", headers=headers).status_code == 403
        assert client.post(f"/api/v1/donations/{gift.id}/refund", json={}, headers=headers).status_code == 403
    assert client.get("/api/v1/donations").status_code == 401


def test_offline_refund_is_booked_at_once_partial_then_past_the_remainder_is_409(client, campaign, producer):
    user, headers = producer
    gift = _gift("cash@example.org", 5000)
    r = client.post(f"/api/v1/donations/{gift.id}/refund", json={"amount": 2000, "reason": "screening mix-up"},
                    headers=headers)
    assert r.status_code == 202, r.get_json()
    assert r.get_json() == {"donation_id": gift.id, "requested": 2000, "refunded": 2000, "state": "succeeded",
                            "remaining": 3000, "currency": "usd"}
    r = client.post(f"/api/v1/donations/{gift.id}/refund", json={"amount": 3001}, headers=headers)
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "refund_exceeds_remaining"
    assert "$30.00" in r.get_json()["error"]["message"]
    r = client.post(f"/api/v1/donations/{gift.id}/refund", json={}, headers=headers)  # the rest
    assert r.get_json()["refunded"] == 5000
    r = client.post(f"/api/v1/donations/{gift.id}/refund", json={}, headers=headers)
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "nothing_to_refund"
    assert ledger_check.check_ledger() == []
    assert db.session.get(Donation, gift.id).amount_refunded == 5000
    audits = db.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "donation.refund_request")
                                .order_by(AuditEntry.seq)).all()
    assert [(a.details_dict["amount"], a.details_dict["reason"]) for a in audits] == [
        (2000, "screening mix-up"), (3000, "")]
    assert all(a.actor_id == user.id for a in audits)


def test_stripe_refund_goes_through_stripe_with_an_idempotency_key_and_is_booked_when_stripe_confirms(
        app, client, campaign, producer, fake_stripe, stripe_events):
    _, headers = producer
    pledge = make_pledge(10000, email="card@example.org")
    pi = f"pi_{pledge.id}"
    assert stripe_events.send("checkout.session.completed",
                              session_obj(pledge.id, 10000, session_id=pledge.checkout_session_id, pi=pi,
                                          email="card@example.org")) == "processed"
    donation = db.session.scalar(sa.select(Donation).where(Donation.pledge_id == pledge.id))

    r = client.post(f"/api/v1/donations/{donation.id}/refund", json={"amount": 4000, "reason": "double gift"},
                    headers={**headers, "Idempotency-Key": "click-1"})
    assert r.status_code == 202, r.get_json()
    assert r.get_json()["state"] == "pending" and r.get_json()["refunded"] == 0 and r.get_json()["remaining"] == 6000
    sent = fake_stripe.to("/v1/refunds")
    req_id = db.session.scalar(sa.select(RefundRequest.id))
    assert [(s["form"]["payment_intent"], s["form"]["amount"], s["idempotency_key"]) for s in sent] == [
        (pi, "4000", f"refund:{req_id}")]
    assert sent[0]["form"]["metadata[reason]"] == "double gift"
    # A double click (the same key) gives back the same request and asks Stripe nothing more.
    again = client.post(f"/api/v1/donations/{donation.id}/refund", json={"amount": 4000},
                        headers={**headers, "Idempotency-Key": "click-1"})
    assert again.status_code == 202 and len(fake_stripe.to("/v1/refunds")) == 1
    # Not booked until Stripe confirms: the ledger holds no refund yet, but the pending one counts.
    assert db.session.scalar(sa.select(sa.func.count()).select_from(LedgerEntry)
                             .where(LedgerEntry.entry_kind == "refund")) == 0
    r = client.post(f"/api/v1/donations/{donation.id}/refund", json={"amount": 6001}, headers=headers)
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "refund_exceeds_remaining"
    assert len(fake_stripe.to("/v1/refunds")) == 1  # a refused refund never reaches Stripe

    # Stripe's event, booked on the queued path by the worker.
    assert stripe_events.send("charge.refunded", charge_obj(pi, 10000, 4000)) == "processed"
    db.session.expire_all()
    d = db.session.get(Donation, donation.id)
    assert d.amount_refunded == 4000
    assert db.session.scalar(sa.select(RefundRequest.state)).value == "succeeded"
    assert ledger_check.check_ledger() == []
    r = client.post(f"/api/v1/donations/{donation.id}/refund", json={"amount": 6001}, headers=headers)
    assert r.status_code == 409
    listed = client.get("/api/v1/donations?state=partially_refunded", headers=headers).get_json()["items"]
    assert [(i["id"], i["refunded"]) for i in listed] == [(donation.id, 4000)]


def test_stripe_refusing_a_refund_marks_it_failed_and_frees_the_amount(client, campaign, producer, fake_stripe,
                                                                       stripe_events):
    _, headers = producer
    pledge = make_pledge(3000, email="card@example.org")
    stripe_events.send("checkout.session.completed",
                       session_obj(pledge.id, 3000, session_id=pledge.checkout_session_id, email="card@example.org"))
    donation = db.session.scalar(sa.select(Donation))
    fake_stripe.fail_next = [400]
    r = client.post(f"/api/v1/donations/{donation.id}/refund", json={}, headers=headers)
    assert r.status_code == 502
    assert db.session.scalar(sa.select(RefundRequest.state)).value == "failed"
    r = client.post(f"/api/v1/donations/{donation.id}/refund", json={}, headers=headers)
    assert r.status_code == 202 and r.get_json()["requested"] == 3000


def test_concurrent_refund_requests_never_ask_for_more_than_remains(app, campaign, producer):
    user, _ = producer
    gift = _gift("cash@example.org", 5000)
    results = []

    def one():
        with app.app_context():
            try:
                refunds.request_refund(gift.id, 3000, "race", requested_by=None)
                db.session.commit()
                results.append("ok")
            except Exception as exc:  # noqa: BLE001 - the refusal is what is counted
                db.session.rollback()
                results.append(getattr(exc, "code", type(exc).__name__))
            finally:
                db.session.remove()

    threads = [threading.Thread(target=one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["ok"] + ["refund_exceeds_remaining"] * 3
    db.session.expire_all()
    assert db.session.get(Donation, gift.id).amount_refunded == 3000
    assert ledger_check.check_ledger() == []


def test_a_monthly_gifts_donations_are_recurring(client, campaign, producer):
    from filmfund.rewards.models import Subscription

    _, headers = producer
    one_time = _gift("once@example.org", 1000)
    monthly = _gift("monthly@example.org", 1500)
    pledge = make_pledge(1500, email="monthly@example.org")
    sub = Subscription(campaign_id=campaign.id, pledge_id=pledge.id, user_id=monthly.user_id,
                       stripe_subscription_id="sub_test_1", amount=1500, currency="usd")
    db.session.add(sub)
    db.session.flush()
    db.session.get(Donation, monthly.id).subscription_id = sub.id
    db.session.commit()
    items = {i["id"]: i["recurring"] for i in client.get("/api/v1/donations", headers=headers).get_json()["items"]}
    assert items == {one_time.id: False, monthly.id: True}


def test_dates_are_days_written_out(client, campaign, producer):
    _, headers = producer
    for bad in ("0", "20261203", "2026-13-01"):
        r = client.get("/api/v1/donations", query_string={"to": bad}, headers=headers)
        assert r.status_code == 400 and r.get_json()["error"]["code"] == "invalid_date", bad
