"""A monthly donor's journeys as Stripe drives them, end to end (each passed before this file was
written; kept as the record of what was probed): the gift ended before its last month's
`invoice.paid` arrives; a refunded month lowers the tier and takes back what the kept total no
longer reaches; one receipt per paid month, in the donor's language, none for a failed attempt
nor for a duplicate; cancelling from the account page with its CSRF token, where another donor's
gift is a 404."""
from __future__ import annotations

import re

import sqlalchemy as sa

from filmfund.auth.services import find_user
from filmfund.extensions import db
from filmfund.rewards import entitlements, ledger_check
from filmfund.rewards.models import Pledge
from filmfund.rewards.payments import partner_statement
from tests.helpers import make_pledge

from . import money_model
from .conftest import make_event
from .test_monthly import (OLD, T0, first_month_paid, invoice_events, invoice_obj, mails_to, months_booked, post,
                           refund_event, session_event, subscription_event, subscription_of)


def test_the_last_month_paid_after_the_gift_ended_is_counted(stripe_events, campaign):
    p = first_month_paid(stripe_events, "ended-first@example.org")
    post(stripe_events, subscription_event(p, "customer.subscription.deleted", "canceled", T0 + 50))
    for event in invoice_events(p, 2, OLD, T0 + 40):
        post(stripe_events, event)
    assert subscription_of(p).state.value == "canceled"
    assert [amount for _, amount in months_booked(p)] == [2500, 2500]
    assert partner_statement(campaign)["share_due"] == money_model.share_due(5000)
    assert len([s for s, _ in mails_to(p.email) if "receipt" in s.lower()]) == 2
    assert ledger_check.check_ledger() == []


def test_a_refunded_month_lowers_the_tier_to_what_is_kept(stripe_events, campaign):
    p = first_month_paid(stripe_events, "kept@example.org", 1500)
    for event in invoice_events(p, 2, OLD, T0 + 2):
        post(stripe_events, event)
    donor = find_user(p.email)
    assert entitlements.donor_entitlements(donor, campaign)["tier"]["min_amount"] == 3000
    post(stripe_events, refund_event(p, 2, 1500, T0 + 3))
    held = entitlements.donor_entitlements(donor, campaign)
    assert held["total"] == 1500 and held["tier"]["min_amount"] == money_model.tier(1500) == 1500
    status = {r["key"]: r["status"] for r in held["rewards"]}
    assert status.get("stills") in (None, "revoked") and status["updates-monthly"] != "revoked"
    statement = partner_statement(campaign)
    assert (statement["gross"], statement["refunded"], statement["net"], statement["share_due"]) == \
        (3000, 1500, 1500, money_model.share_due(1500))
    assert ledger_check.check_ledger() == []


def test_one_chinese_receipt_per_paid_month_none_for_a_failure_or_a_duplicate(stripe_events, campaign):
    p = make_pledge(2000, email="zh-monthly@example.org", interval="month")
    db.session.execute(sa.update(Pledge).where(Pledge.id == p.id).values(language="zh-Hans"))
    db.session.commit()
    for event in [session_event(p)] + invoice_events(p, 1, OLD, T0 + 1):
        post(stripe_events, event)
    post(stripe_events, dict(make_event("invoice.payment_failed", invoice_obj(p, 2, OLD, paid=False)), created=T0 + 2))
    for month in (2, 3):
        for event in invoice_events(p, month, OLD, T0 + 2 + month):
            post(stripe_events, event)
    for event in invoice_events(p, 3, OLD, T0 + 20):  # month 3 again, under new event ids
        post(stripe_events, event)
    mails = mails_to(p.email)
    receipts = [body for subject, body in mails if "收据" in subject]
    assert len(receipts) == 3, [subject for subject, _ in mails]
    assert all("这是您每月捐款中的一期" in body and "Thank you" not in body for body in receipts)
    others = [subject for subject, _ in mails if "收据" not in subject]
    assert len(others) == 1 and not re.search("[A-Za-z]{4,}", others[0]), others  # the failure's, in Chinese
    assert partner_statement(campaign)["share_due"] == money_model.share_due(6000)
    assert ledger_check.check_ledger() == []


def test_the_account_page_cancels_with_its_token_and_never_anothers_gift(app, client, stripe_events, campaign,
                                                                        login_as, fake_stripe):
    p, q = first_month_paid(stripe_events, "mine@example.org"), first_month_paid(stripe_events, "theirs@example.org")
    mine, theirs = subscription_of(p), subscription_of(q)
    login_as(client, find_user(p.email))
    app.config["WTF_CSRF_ENABLED"] = True
    page = client.get("/account").get_data(as_text=True)
    assert f"subscription-{theirs.id}" not in page
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    assert client.post(f"/account/subscriptions/{theirs.id}/cancel", data={"csrf_token": token}).status_code == 404
    assert client.post(f"/account/subscriptions/{mine.id}/cancel", data={"csrf_token": token}).status_code == 303
    assert (subscription_of(p).state.value, subscription_of(q).state.value) == ("canceled", "active")
    assert [r["path"] for r in fake_stripe.requests if r.get("method") == "DELETE"] == [
        f"/v1/subscriptions/{mine.stripe_subscription_id}"]
    assert partner_statement(campaign)["net"] == 5000  # cancelling refunds nothing


def test_a_month_settled_without_money_makes_a_past_due_gift_active_again(stripe_events, campaign):
    # A coupon, or the customer's credit balance, settles the failed month: Stripe sends the
    # invoice paid with amount_paid 0. Nothing is counted, but the gift is no longer past due.
    p = first_month_paid(stripe_events, "settled@example.org")
    failed = dict(make_event("invoice.payment_failed", invoice_obj(p, 2, OLD, paid=False)), created=T0 + 2)
    post(stripe_events, failed)
    assert subscription_of(p).state.value == "past_due"
    settled = invoice_obj(p, 2, OLD, paid=False)
    settled.update(status="paid")
    assert post(stripe_events, dict(make_event("invoice.paid", settled), created=T0 + 3)) == "processed"
    assert subscription_of(p).state.value == "active"
    assert months_booked(p) == [(f"in_{p.id}_1", 2500)]  # nothing counted for the settled month
    assert ledger_check.check_ledger() == []
