"""Monthly gifts (issue 13.1): Checkout in subscription mode, each paid invoice a donation counted
once whatever Stripe delivers, failed renewals, cancellation, a refunded month, both API shapes.
Webhooks take the queued path (stripe_events: the request stores, a burst worker books)."""
from __future__ import annotations

import email
import time
from email.header import decode_header, make_header

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from filmfund.auth.services import find_user
from filmfund.extensions import db
from filmfund.mail import outbox_messages
from filmfund.rewards import entitlements, ledger, ledger_check
from filmfund.rewards.models import (Donation, Pledge, Subscription, WebhookEvent)
from filmfund.rewards.payments import partner_statement
from filmfund.rewards.webhooks import complete_test_checkout
from tests.helpers import make_pledge

from . import money_model
from .conftest import charge_obj, make_event, start_books_afresh

OLD, PINNED = "2024-06-20", "2026-10-28.endive"  # PINNED: the version stripe 16.1.0 pins
T0 = int(time.time()) - 3600


# ------------------------------------------------------------------ Stripe's objects, in both shapes

def sub_id(pledge_id: str) -> str:
    return f"sub_{pledge_id}"


def session_event(p, created: int = T0) -> dict:
    obj = {"id": f"cs_test_{p.id}", "object": "checkout.session", "mode": "subscription", "amount_total": p.amount,
           "client_reference_id": p.id, "currency": "usd", "customer": f"cus_{p.id}",
           "customer_details": {"email": p.email, "name": None}, "customer_email": p.email, "livemode": False,
           "metadata": {"pledge_id": p.id}, "payment_intent": None, "payment_status": "paid", "status": "complete",
           "subscription": sub_id(p.id), "invoice": f"in_{p.id}_1"}
    return dict(make_event("checkout.session.completed", obj), created=created)


def invoice_obj(p, month: int, version: str, *, paid: bool = True, include_payments: bool = False,
                attempt: int = 1) -> dict:
    key = f"{p.id}_{month}"
    start = T0 + (month - 1) * 30 * 86400
    obj = {"id": f"in_{key}", "object": "invoice", "amount_due": p.amount, "amount_paid": p.amount if paid else 0,
           "attempt_count": attempt, "billing_reason": "subscription_create" if month == 1 else "subscription_cycle",
           "currency": "usd", "customer": f"cus_{p.id}", "customer_email": p.email, "livemode": False,
           "status": "paid" if paid else "open", "hosted_invoice_url": f"https://invoice.stripe.com/i/{key}",
           "lines": {"object": "list", "data": [{"amount": p.amount, "currency": "usd", "metadata": {},
                                                 "period": {"start": start, "end": start + 30 * 86400}}]}}
    if version == OLD:
        obj.update(subscription=sub_id(p.id), subscription_details={"metadata": {"pledge_id": p.id}},
                   payment_intent=f"pi_{key}" if paid else None, charge=f"ch_pi_{key}" if paid else None)
    else:
        obj["parent"] = {"type": "subscription_details", "quote_details": None,
                         "subscription_details": {"metadata": {"pledge_id": p.id}, "subscription": sub_id(p.id)}}
        if include_payments:
            obj["payments"] = {"object": "list", "data": [{"object": "invoice_payment", "invoice": obj["id"],
                                                           "payment": {"type": "payment_intent",
                                                                       "payment_intent": f"pi_{key}"}}]}
    return obj


def invoice_events(p, month: int, version: str, created: int) -> list[dict]:
    """A month paid, as the endpoint's version delivers it; from 2025-03-31 on the payment intent
    comes in its own `invoice_payment.paid` event."""
    events = [dict(make_event("invoice.paid", invoice_obj(p, month, version)), created=created)]
    if version != OLD:
        key = f"{p.id}_{month}"
        payment = {"id": f"inpay_{key}", "object": "invoice_payment", "invoice": f"in_{key}", "amount_paid": p.amount,
                   "currency": "usd", "is_default": True, "livemode": False, "status": "paid",
                   "payment": {"type": "payment_intent", "payment_intent": f"pi_{key}"}}
        events.append(dict(make_event("invoice_payment.paid", payment), created=created))
    return events


def subscription_event(p, type_: str, status: str, created: int, version: str = OLD) -> dict:
    obj = {"id": sub_id(p.id), "object": "subscription", "status": status, "customer": f"cus_{p.id}",
           "metadata": {"pledge_id": p.id}, "livemode": False, "cancel_at_period_end": False,
           "items": {"object": "list", "data": [{"id": f"si_{p.id}", "object": "subscription_item",
                                                 "price": {"unit_amount": p.amount, "recurring": {"interval": "month"}}}]}}
    end = T0 + 60 * 86400
    if version == OLD:
        obj["current_period_end"] = end
    else:
        obj["items"]["data"][0]["current_period_end"] = end
    return dict(make_event(type_, obj), created=created)


def refund_event(p, month: int, refunded: int, created: int) -> dict:
    return dict(make_event("charge.refunded", charge_obj(f"pi_{p.id}_{month}", p.amount, refunded)), created=created)


def post(stripe_events, event: dict) -> str:
    response = stripe_events.post(event)
    assert response.status_code == 200, response.get_data(as_text=True)
    return db.session.scalar(sa.select(WebhookEvent.status).where(WebhookEvent.event_id == event["id"])).value


def first_month_paid(stripe_events, email_: str, amount: int = 2500, version: str = OLD):
    """A monthly pledge whose Checkout completed and whose first month was paid, as Stripe sends them."""
    p = make_pledge(amount, email=email_, interval="month")
    for event in [session_event(p)] + invoice_events(p, 1, version, T0 + 1):
        post(stripe_events, event)
    return p


def mails_to(addr: str) -> list[tuple[str, str]]:
    """(subject, body) of each mail in the outbox to `addr`, oldest first."""
    out = []
    for path in sorted(outbox_messages()):
        m = email.message_from_bytes(path.read_bytes())
        if m["To"] and addr in m["To"]:
            out.append((str(make_header(decode_header(m["Subject"]))), m.get_payload(decode=True).decode()))
    return out


def subscription_of(p) -> Subscription | None:
    db.session.expire_all()
    return db.session.scalar(sa.select(Subscription).where(Subscription.pledge_id == p.id))


def months_booked(p) -> list[tuple[str, int]]:
    return db.session.execute(sa.select(Donation.invoice_id, Donation.amount).join(
        Subscription, Donation.subscription_id == Subscription.id).where(Subscription.pledge_id == p.id)
        .order_by(Donation.invoice_id)).all()


# ------------------------------------------------------------------ Checkout in subscription mode

def test_monthly_pledge_opens_checkout_in_subscription_mode_card_only(app, client, campaign, fake_stripe):
    r = client.post("/api/v1/pledges", json={"amount": 2500, "email": "monthly@example.org", "interval": "month"})
    assert r.status_code == 201, r.get_json()
    [request] = [q for q in fake_stripe.requests if q["path"] == "/v1/checkout/sessions"]
    form = request["form"]
    pledge_id = r.get_json()["pledge_id"]
    assert form["mode"] == "subscription"
    assert form["line_items[0][price_data][unit_amount]"] == "2500"
    assert form["line_items[0][price_data][currency]"] == "usd"
    assert form["line_items[0][price_data][recurring][interval]"] == "month"
    assert form["subscription_data[metadata][pledge_id]"] == pledge_id
    assert form["client_reference_id"] == pledge_id
    assert form["payment_method_types[0]"] == "card"
    assert not any(k.startswith("payment_method_types[1]") for k in form)  # no Alipay, no WeChat Pay
    assert not any(k.startswith(("payment_intent_data", "payment_method_options", "shipping_address_collection"))
                   for k in form)
    assert request["idempotency_key"] == f"checkout:{pledge_id}"


def test_one_time_pledge_keeps_payment_mode(app, client, campaign, fake_stripe):
    r = client.post("/api/v1/pledges", json={"amount": 2500, "email": "once@example.org"})
    assert r.status_code == 201
    form = fake_stripe.requests[-1]["form"]
    assert form["mode"] == "payment" and "line_items[0][price_data][recurring][interval]" not in form
    assert form["payment_method_types[1]"] == "alipay"


@pytest.mark.parametrize("interval", ["year", "weekly", 3])
def test_other_intervals_are_refused(client, campaign, interval):
    r = client.post("/api/v1/pledges", json={"amount": 2500, "email": "x@example.org", "interval": interval})
    assert r.status_code == 400
    assert r.get_json()["error"]["code"] == "invalid_interval"


# ------------------------------------------------------------------ each paid invoice is a donation, once

@pytest.mark.parametrize("version", [OLD, PINNED])
@pytest.mark.parametrize("session_first", [True, False])
def test_first_month_counts_once_in_either_order(stripe_events, campaign, version, session_first):
    p = make_pledge(3000, email="first@example.org", interval="month")
    first = invoice_events(p, 1, version, T0 + 1)
    events = [session_event(p)] + first if session_first else first + [session_event(p)]
    for event in events + events:  # and every one delivered twice
        assert post(stripe_events, event) in ("processed", "received")
    assert months_booked(p) == [(f"in_{p.id}_1", 3000)]
    statement = partner_statement(campaign)
    assert (statement["gross"], statement["net"], statement["share_due"]) == (3000, 3000, 600)
    sub = subscription_of(p)
    assert sub.state.value == "active" and sub.stripe_subscription_id == sub_id(p.id)
    donation = db.session.scalar(sa.select(Donation).where(Donation.invoice_id == f"in_{p.id}_1"))
    assert donation.pledge_id == p.id and donation.recurring  # the pledge's own gift: the thank-you page finds it
    assert donation.payment_intent_id == f"pi_{p.id}_1"
    assert db.session.get(Pledge, p.id).state.value == "paid"
    assert ledger_check.check_ledger() == []


def test_each_month_is_a_donation_with_its_receipt_share_total_and_tier(stripe_events, campaign):
    p = make_pledge(1500, email="every@example.org", interval="month")
    post(stripe_events, session_event(p))
    for month in (1, 2, 3):
        for event in invoice_events(p, month, OLD, T0 + month):
            post(stripe_events, event)
    donor = find_user("every@example.org")
    assert [a for _, a in months_booked(p)] == [1500, 1500, 1500]
    assert ledger.donor_net(campaign.id, donor.id) == 4500
    held = entitlements.donor_entitlements(donor, campaign)
    assert held["total"] == 4500 and held["tier"]["min_amount"] == money_model.tier(4500) == 3000
    statement = partner_statement(campaign)
    assert statement["share_due"] == money_model.share_due(4500)
    receipts = [email.message_from_bytes(m.read_bytes()) for m in outbox_messages()]
    mine = [m for m in receipts if m["To"] == "every@example.org" and "receipt" in m["Subject"].lower()]
    assert len(mine) == 3
    assert all("one month of your monthly gift" in m.get_payload(decode=True).decode() for m in mine)
    assert subscription_of(p).next_payment_at.timestamp() == T0 + 3 * 30 * 86400


def test_both_api_versions_book_identically(stripe_events, campaign):
    """The same history, once as API 2024-06-20 writes it and once as the pinned version does
    (metadata under parent.subscription_details, the payment intent in invoice_payment.paid or in
    an included `payments` list): the same donations, the same refund, the same state."""
    outcomes = []
    for n, (version, include) in enumerate([(OLD, False), (PINNED, False), (PINNED, True)]):
        p = make_pledge(2000, email=f"shape{n}@example.org", interval="month")
        events = [session_event(p)]
        for month in (1, 2):
            if include:
                events.append(dict(make_event("invoice.paid", invoice_obj(p, month, version, include_payments=True)),
                                   created=T0 + month))
            else:
                events += invoice_events(p, month, version, T0 + month)
        events.append(refund_event(p, 2, 500, T0 + 10))
        events.append(subscription_event(p, "customer.subscription.updated", "active", T0 + 11, version))
        for event in events:
            post(stripe_events, event)
        rows = db.session.execute(sa.select(Donation.amount, Donation.amount_refunded, Donation.payment_intent_id)
                                  .join(Subscription, Donation.subscription_id == Subscription.id)
                                  .where(Subscription.pledge_id == p.id).order_by(Donation.invoice_id)).all()
        sub = subscription_of(p)
        donor = find_user(p.email)
        outcomes.append(([(a, r, pi.replace(p.id, "P")) for a, r, pi in rows], sub.state.value,
                         sub.next_payment_at, ledger.donor_net(campaign.id, donor.id)))
    assert outcomes[0] == outcomes[1] == outcomes[2]
    assert outcomes[0][0] == [(2000, 0, "pi_P_1"), (2000, 500, "pi_P_2")]
    assert outcomes[0][3] == 3500
    assert db.session.scalar(sa.select(sa.func.count()).select_from(WebhookEvent).where(
        WebhookEvent.status.notin_(["processed"]))) == 0
    assert ledger_check.check_ledger() == []


def test_refund_of_one_month_books_as_refunds_do(stripe_events, campaign):
    p = make_pledge(5000, email="refund@example.org", interval="month")
    post(stripe_events, refund_event(p, 2, 5000, T0 + 20))  # early: kept until its month is known
    for month in (1, 2, 3):
        for event in invoice_events(p, month, OLD, T0 + month):
            post(stripe_events, event)
    statement = partner_statement(campaign)
    assert (statement["gross"], statement["refunded"], statement["net"]) == (15000, 5000, 10000)
    assert statement["share_due"] == money_model.share_due(10000)
    assert subscription_of(p).state.value == "active"  # a refunded month does not end the gift
    assert ledger_check.check_ledger() == []


# ------------------------------------------------------------------ failed renewals, the end of a gift

@pytest.mark.parametrize("language", ["en", "zh-Hans"])
def test_failed_renewal_books_nothing_marks_past_due_and_mails_once(app, stripe_events, campaign, language):
    p = make_pledge(2500, email=f"fail-{language}@example.org", interval="month")
    db.session.execute(sa.update(Pledge).where(Pledge.id == p.id).values(language=language))
    db.session.commit()
    for event in [session_event(p)] + invoice_events(p, 1, OLD, T0 + 1):
        post(stripe_events, event)
    before = {m.name for m in outbox_messages()}
    failed = dict(make_event("invoice.payment_failed", invoice_obj(p, 2, OLD, paid=False)), created=T0 + 2)
    assert post(stripe_events, failed) == "processed"
    retry = dict(make_event("invoice.payment_failed", invoice_obj(p, 2, OLD, paid=False, attempt=2)), created=T0 + 3)
    assert post(stripe_events, retry) == "processed"  # Stripe's own retry: no second mail, no own retry
    assert months_booked(p) == [(f"in_{p.id}_1", 2500)]
    assert partner_statement(campaign)["net"] == 2500
    assert subscription_of(p).state.value == "past_due"
    mails = [email.message_from_bytes(m.read_bytes()) for m in outbox_messages() if m.name not in before]
    assert len(mails) == 1 and mails[0]["To"] == p.email
    body = mails[0].get_payload(decode=True).decode()
    assert f"https://invoice.stripe.com/i/{p.id}_2" in body and "/account" in body
    if language == "zh-Hans":
        assert "每月" in body
    else:
        assert "could not be charged" in body and "Nothing was taken" in body
    # Stripe's retry succeeds: the month is booked and the gift is active again
    for event in invoice_events(p, 2, OLD, T0 + 4):
        post(stripe_events, event)
    assert subscription_of(p).state.value == "active" and len(months_booked(p)) == 2


def test_subscription_updated_and_deleted_keep_the_state(stripe_events, campaign):
    p = first_month_paid(stripe_events, "state@example.org")
    post(stripe_events, subscription_event(p, "customer.subscription.updated", "past_due", T0 + 5))
    assert subscription_of(p).state.value == "past_due"
    post(stripe_events, subscription_event(p, "customer.subscription.updated", "active", T0 + 3))  # stale
    assert subscription_of(p).state.value == "past_due"
    post(stripe_events, subscription_event(p, "customer.subscription.deleted", "canceled", T0 + 6))
    sub = subscription_of(p)
    assert sub.state.value == "canceled" and sub.canceled_at is not None
    post(stripe_events, subscription_event(p, "customer.subscription.updated", "active", T0 + 7))
    assert subscription_of(p).state.value == "canceled"  # an ended gift stays ended
    assert partner_statement(campaign)["net"] == 2500  # ending it refunds nothing


# ------------------------------------------------------------------ any order, any duplicates: the model

@st.composite
def monthly_histories(draw):
    months = draw(st.integers(1, 3))
    refunds = draw(st.lists(st.tuples(st.integers(1, months), st.integers(0, 2000)), max_size=2))
    failed = draw(st.booleans())
    updated = draw(st.lists(st.sampled_from(["active", "past_due"]), max_size=2))
    deleted = draw(st.booleans())
    version = draw(st.sampled_from([OLD, PINNED]))
    return months, refunds, failed, updated, deleted, version, draw(st.randoms()), draw(st.lists(st.booleans(),
                                                                                               min_size=12, max_size=12))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                HealthCheck.too_slow])
@given(case=monthly_histories())
def test_shuffled_and_repeated_monthly_events_match_the_model(app, campaign, stripe_events, case):
    """A monthly gift's whole history (the session, each month's invoice, a failed renewal, refunds
    of months, subscription updates and its end) shuffled, some events delivered twice: the ledger,
    the donor's total and tier and the gift's state are what money_model.MonthlyGift says."""
    months, refunds, failed, updated, deleted, version, rnd, twice = case
    start_books_afresh()  # each example starts from empty books
    p = make_pledge(2000, email="model@example.org", interval="month")
    created = iter(range(T0 + 1, T0 + 1000))
    history = [(session_event(p), ("session_completed", None, None))]
    for month in range(1, months + 1):
        events = invoice_events(p, month, version, next(created))
        history.append((events[0], ("invoice_paid", f"in_{month}", 2000)))
        history += [(e, None) for e in events[1:]]  # invoice_payment.paid: moves no money by itself
    if failed:
        at = next(created)
        history.append((dict(make_event("invoice.payment_failed", invoice_obj(p, months + 1, version, paid=False)),
                             created=at), ("invoice_failed", None, None)))
    for month, refunded in refunds:
        history.append((refund_event(p, month, refunded, next(created)), ("refunded", f"in_{month}", refunded)))
    for status in updated:
        at = next(created)
        history.append((subscription_event(p, "customer.subscription.updated", status, at, version),
                        ("subscription_updated", None, status)))
    if deleted:
        history.append((subscription_event(p, "customer.subscription.deleted", "canceled", next(created), version),
                        ("subscription_deleted", None, None)))
    deliveries = history + [h for h, again in zip(history, twice) if again]
    rnd.shuffle(deliveries)
    gift, seen = money_model.MonthlyGift(), set()
    for event, what in deliveries:
        post(stripe_events, event)
        if what is not None and event["id"] not in seen:
            kind, key, value = what
            gift.apply(kind, key, value, created=event["created"])
        seen.add(event["id"])
    statement = partner_statement(campaign)
    books = gift.books
    assert (statement["gross"], statement["refunded"], statement["net"], statement["share_due"]) == \
        (books.gross, books.refunded, books.net, money_model.share_due(books.net))
    donor = find_user("model@example.org")
    assert ledger.donor_net(campaign.id, donor.id) == books.net
    held = entitlements.donor_entitlements(donor, campaign)["tier"]
    assert (held["min_amount"] if held else None) == money_model.tier(books.net)
    sub = subscription_of(p)
    assert (sub.state.value if sub else None) == gift.state
    assert len(months_booked(p)) == months
    assert ledger_check.check_ledger() == []


# ------------------------------------------------------------------ the donor's own: list and cancel

def _monthly_donor(stripe_events, email_: str, amount: int = 2500):
    return first_month_paid(stripe_events, email_, amount), find_user(email_)


def test_donor_lists_and_cancels_through_the_api_with_stripe_called(app, client, campaign, stripe_events,
                                                                   fake_stripe, token_for):
    p, donor = _monthly_donor(stripe_events, "api@example.org")
    _other_p, other = _monthly_donor(stripe_events, "other@example.org")
    r = client.get("/api/v1/me/subscriptions", headers=token_for(donor))
    assert r.status_code == 200
    [item] = r.get_json()["items"]
    assert set(item) == {"id", "amount", "currency", "interval", "state", "started_at", "next_payment_at"}
    assert (item["amount"], item["currency"], item["interval"], item["state"]) == (2500, "usd", "month", "active")
    assert item["next_payment_at"].startswith("20")
    # someone else's id: 404, and nothing sent to Stripe
    r = client.post(f"/api/v1/me/subscriptions/{item['id']}/cancel", headers=token_for(other))
    assert r.status_code == 404 and r.get_json()["error"]["code"]
    r = client.post("/api/v1/me/subscriptions/nope/cancel", headers=token_for(donor))
    assert r.status_code == 404
    assert not [q for q in fake_stripe.requests if q.get("method") == "DELETE"]
    r = client.post(f"/api/v1/me/subscriptions/{item['id']}/cancel", headers=token_for(donor))
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["state"] == "canceled" and r.get_json()["next_payment_at"] is None
    [call] = [q for q in fake_stripe.requests if q.get("method") == "DELETE"]
    assert call["path"] == f"/v1/subscriptions/{sub_id(p.id)}"
    assert call["authorization"] == "Bearer sk_test_fake"
    assert client.post(f"/api/v1/me/subscriptions/{item['id']}/cancel", headers=token_for(donor)).status_code == 200
    assert len([q for q in fake_stripe.requests if q.get("method") == "DELETE"]) == 1  # once
    assert partner_statement(campaign)["net"] == 5000  # nothing refunded by cancelling
    assert not [q for q in fake_stripe.requests if "refund" in q["path"]]
    # Stripe's own word afterwards changes nothing
    post(stripe_events, subscription_event(p, "customer.subscription.deleted", "canceled", T0 + 9))
    assert subscription_of(p).state.value == "canceled"


def test_cancel_when_stripe_is_down_changes_nothing(app, client, campaign, stripe_events, fake_stripe, token_for):
    app.config["STRIPE_MAX_RETRIES"] = 0
    p, donor = _monthly_donor(stripe_events, "down@example.org")
    sub = subscription_of(p)
    fake_stripe.fail_next = [500]
    r = client.post(f"/api/v1/me/subscriptions/{sub.id}/cancel", headers=token_for(donor))
    assert r.status_code == 502 and r.get_json()["error"]["code"] == "payment_provider_unavailable"
    assert subscription_of(p).state.value == "active"


def test_account_page_shows_and_cancels_with_csrf(app, client, campaign, stripe_events, login_as):
    p, donor = _monthly_donor(stripe_events, "page@example.org")  # test mode: no Stripe behind it
    sub = subscription_of(p)
    login_as(client, donor)
    page = client.get("/account").get_data(as_text=True)
    assert 'id="monthly"' in page and "$25.00" in page and f"/account/subscriptions/{sub.id}/cancel" in page
    app.config["WTF_CSRF_ENABLED"] = True
    assert client.post(f"/account/subscriptions/{sub.id}/cancel").status_code == 400  # no CSRF token
    assert subscription_of(p).state.value == "active"


def test_test_mode_checkout_goes_through_the_webhook_code(campaign):
    p = make_pledge(2500, email="testmode@example.org", interval="month")
    complete_test_checkout(p.id, "paid")
    complete_test_checkout(p.id, "paid")  # the same events again: nothing more
    complete_test_checkout(p.id, "renewed")
    complete_test_checkout(p.id, "renewal_failed")
    assert partner_statement(campaign)["net"] == 5000
    assert subscription_of(p).state.value == "past_due"
    types = db.session.scalars(sa.select(WebhookEvent.type).order_by(WebhookEvent.id)).all()
    assert types == ["checkout.session.completed", "invoice.paid", "checkout.session.completed", "invoice.paid",
                     "invoice.paid", "invoice.payment_failed"]
    assert ledger_check.check_ledger() == []


def test_producer_sees_monthly_givers(app, client, campaign, stripe_events, make_user, login_as):
    _monthly_donor(stripe_events, "giver1@example.org", 2500)
    p2, _ = _monthly_donor(stripe_events, "giver2@example.org", 1000)
    post(stripe_events, dict(make_event("invoice.payment_failed", invoice_obj(p2, 2, OLD, paid=False)),
                             created=T0 + 5))
    login_as(client, make_user("producer@example.org", "producer"))
    page = client.get("/admin/").get_data(as_text=True)
    assert 'id="monthly-givers"' in page
    assert "giver1@example.org" in page and "past_due" in page
    assert "$25.00" in page and "$10.00" in page and 'id="monthly-chart"' in page


def test_erasing_the_donor_stops_the_monthly_gift_first(app, campaign, stripe_events, fake_stripe):
    from filmfund.rewards import donor_data

    p, donor = _monthly_donor(stripe_events, "erase@example.org")
    donor_data.erase_donor(donor)
    db.session.commit()
    assert subscription_of(p).state.value == "canceled"
    [call] = [q for q in fake_stripe.requests if q.get("method") == "DELETE"]
    assert call["path"] == f"/v1/subscriptions/{sub_id(p.id)}"
    assert partner_statement(campaign)["net"] == 2500  # the amount stays given


def test_producer_refunds_one_month_through_stripe_once_its_payment_is_known(
        app, client, campaign, stripe_events, fake_stripe, make_user, token_for):
    """The donations list's refund of one month: on the pinned API version the month names its
    payment intent only in invoice_payment.paid; before it the refund is refused (nothing moves),
    after it Stripe's Refund API is asked for that payment, and charge.refunded books it."""
    p = make_pledge(2000, email="month-refund@example.org", interval="month")
    paid, linked = invoice_events(p, 1, PINNED, T0 + 1)
    post(stripe_events, session_event(p))
    post(stripe_events, paid)
    donation = db.session.scalar(sa.select(Donation).where(Donation.invoice_id == f"in_{p.id}_1"))
    headers = token_for(make_user("producer@example.org", "producer"))
    r = client.post(f"/api/v1/donations/{donation.id}/refund", json={}, headers=headers)
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "payment_not_linked"
    assert not [q for q in fake_stripe.requests if q["path"] == "/v1/refunds"]
    assert partner_statement(campaign)["net"] == 2000
    post(stripe_events, linked)
    r = client.post(f"/api/v1/donations/{donation.id}/refund", json={}, headers=headers)
    assert r.status_code == 202, r.get_json()
    [call] = [q for q in fake_stripe.requests if q["path"] == "/v1/refunds"]
    assert call["form"]["payment_intent"] == f"pi_{p.id}_1" and call["form"]["amount"] == "2000"
    post(stripe_events, refund_event(p, 1, 2000, T0 + 5))
    assert partner_statement(campaign)["net"] == 0
    assert ledger_check.check_ledger() == []
