"""A month paid on API 2025-03-31 on whose `invoice_payment.paid` names only a charge (no payment
intent): the producers' refund goes through Stripe's Refund API with `charge` (which it takes as
well as `payment_intent`), never booked in the ledger alone, and charge.refunded books it."""
from __future__ import annotations

import sqlalchemy as sa

from filmfund.extensions import db
from filmfund.rewards import ledger_check
from filmfund.rewards.models import Donation, LedgerEntry
from filmfund.rewards.payments import partner_statement
from tests.helpers import make_pledge

from .conftest import make_event
from .test_monthly import PINNED, T0, invoice_events, post, session_event


def test_a_month_named_by_its_charge_alone_is_refunded_through_stripe(client, campaign, stripe_events, fake_stripe,
                                                                      make_user, token_for):
    p = make_pledge(2000, email="charge-only@example.org", interval="month")
    paid, linked = invoice_events(p, 1, PINNED, T0 + 1)
    charge = f"ch_{p.id}_1"
    linked["data"]["object"]["payment"] = {"type": "charge", "charge": charge}
    post(stripe_events, session_event(p))
    post(stripe_events, paid)
    assert post(stripe_events, linked) == "processed"
    donation = db.session.scalar(sa.select(Donation).where(Donation.invoice_id == f"in_{p.id}_1"))
    assert (donation.payment_intent_id, donation.charge_id) == (None, charge)
    headers = token_for(make_user("producer@example.org", "producer"))
    r = client.post(f"/api/v1/donations/{donation.id}/refund", json={}, headers=headers)
    assert r.status_code == 202, r.get_json()
    assert r.get_json()["state"] == "pending"  # asked of Stripe, not booked by the ledger alone
    [call] = fake_stripe.to("/v1/refunds")
    assert call["form"]["charge"] == charge and "payment_intent" not in call["form"]
    assert call["form"]["amount"] == "2000"
    assert not db.session.scalar(sa.select(sa.func.count()).select_from(LedgerEntry)
                                 .where(LedgerEntry.entry_kind == "refund"))
    refunded = {"id": charge, "object": "charge", "amount": 2000, "amount_refunded": 2000, "currency": "usd",
                "livemode": False, "payment_intent": None, "refunded": True}
    assert post(stripe_events, dict(make_event("charge.refunded", refunded), created=T0 + 5)) == "processed"
    assert partner_statement(campaign)["net"] == 0
    assert ledger_check.check_ledger() == []
