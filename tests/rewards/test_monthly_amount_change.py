"""A monthly gift whose price changes in Stripe (a producer edits the subscription in the
Dashboard): the donor's list, the producers' figures, the failed month's mail and the months'
flags follow Stripe's latest word on the amount, whichever event brings it and in whatever order
the events come. Before, the gift kept the pledge's first amount for ever: the donor read "$25.00
every month" while $40.00 was taken, and every later month was flagged `amount_mismatch`."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from filmfund.auth.services import find_user
from filmfund.extensions import db
from filmfund.rewards import ledger_check, subscriptions
from filmfund.rewards.models import Donation
from filmfund.rewards.payments import partner_statement

from . import money_model
from .conftest import make_event
from .test_monthly import (OLD, PINNED, T0, first_month_paid, invoice_events, invoice_obj, mails_to, post,
                           subscription_event, subscription_of)


def _line_says_what_it_is(invoice: dict, version: str, amount: int, *, proration: bool = False) -> dict:
    """The line as Stripe writes it: a subscription's price for the month, or a proration."""
    line = invoice["lines"]["data"][0]
    line["amount"] = amount
    if version == OLD:
        line.update(type="subscription", proration=proration)
    else:
        line["parent"] = {"type": "subscription_item_details", "subscription_item_details": {
            "proration": proration, "subscription": invoice["id"].replace("in_", "sub_"), "subscription_item": "si_1"}}
    return invoice


def _month_at(p, month: int, amount: int, created: int, version: str = OLD) -> list[dict]:
    events = invoice_events(p, month, version, created)
    for event in events:
        obj = event["data"]["object"]
        obj["amount_paid"] = amount
        if obj["object"] == "invoice":
            obj["amount_due"] = amount
            _line_says_what_it_is(obj, version, amount)
    return events


def _priced(event: dict, amount: int) -> dict:
    event["data"]["object"]["items"]["data"][0].update(quantity=1)
    event["data"]["object"]["items"]["data"][0]["price"]["unit_amount"] = amount
    return event


def _start(stripe_events, email_: str, version: str = OLD):
    return first_month_paid(stripe_events, email_, version=version)


def _failure_mails(addr: str) -> list[str]:
    return [body for subject, body in mails_to(addr) if "could not be charged" in subject]


@pytest.mark.parametrize("version", [OLD, PINNED])
def test_a_new_price_is_what_the_donor_and_producers_read(app, client, stripe_events, campaign, token_for, version):
    p = _start(stripe_events, f"new-price-{version[:4]}@example.org", version)
    post(stripe_events, _priced(subscription_event(p, "customer.subscription.updated", "active", T0 + 5, version), 4000))
    for event in _month_at(p, 2, 4000, T0 + 6, version):
        post(stripe_events, event)
    r = client.get("/api/v1/me/subscriptions", headers=token_for(find_user(p.email)))
    assert [item["amount"] for item in r.get_json()["items"]] == [4000]
    assert subscriptions.producer_summary(campaign)["monthly"] == 4000
    month2 = db.session.scalar(sa.select(Donation).where(Donation.invoice_id == f"in_{p.id}_2"))
    assert month2.amount == 4000 and "amount_mismatch" not in month2.flags
    assert partner_statement(campaign)["share_due"] == money_model.share_due(6500)
    # the next month fails: the mail names what could not be charged
    failed = _line_says_what_it_is(invoice_obj(p, 3, version, paid=False), version, 4000)
    failed["amount_due"] = 4000
    post(stripe_events, dict(make_event("invoice.payment_failed", failed), created=T0 + 9))
    [body] = _failure_mails(p.email)
    assert "$40.00" in body and "$25.00" not in body
    assert ledger_check.check_ledger() == []


def test_the_renewal_brings_the_new_price_before_the_update_does(stripe_events, campaign):
    """The month's invoice, billed at the new price, is delivered first: the gift takes the amount
    from its lines; the update (older) and an older one still (the first price) change nothing."""
    p = _start(stripe_events, "invoice-first@example.org")
    for event in _month_at(p, 2, 4000, T0 + 6):
        post(stripe_events, event)
    assert subscription_of(p).amount == 4000
    post(stripe_events, _priced(subscription_event(p, "customer.subscription.updated", "active", T0 + 5), 4000))
    post(stripe_events, _priced(subscription_event(p, "customer.subscription.updated", "active", T0 + 2), 2500))
    assert subscription_of(p).amount == 4000


def test_prorations_and_unpriced_items_are_not_the_monthly_amount(stripe_events, campaign):
    p = _start(stripe_events, "prorated@example.org")
    events = _month_at(p, 2, 4500, T0 + 6)
    lines = events[0]["data"]["object"]["lines"]["data"]
    lines[0]["amount"] = 4000
    lines.append({"amount": 500, "currency": "usd", "metadata": {}, "type": "subscription", "proration": True,
                  "period": lines[0]["period"]})  # the part of the last month at the new price
    for event in events:
        post(stripe_events, event)
    assert subscription_of(p).amount == 4000
    metered = subscription_event(p, "customer.subscription.updated", "active", T0 + 7)
    metered["data"]["object"]["items"]["data"][0]["price"].update(
        unit_amount=None, recurring={"interval": "month", "usage_type": "metered"})
    post(stripe_events, metered)
    assert subscription_of(p).amount == 4000  # not a fixed amount: the last known one stays


def test_an_ended_gift_keeps_the_amount_it_ended_with(stripe_events, campaign):
    p = _start(stripe_events, "ended@example.org")
    post(stripe_events, _priced(subscription_event(p, "customer.subscription.deleted", "canceled", T0 + 5), 2500))
    post(stripe_events, _priced(subscription_event(p, "customer.subscription.updated", "active", T0 + 6), 9900))
    sub = subscription_of(p)
    assert (sub.state.value, sub.amount) == ("canceled", 2500)
