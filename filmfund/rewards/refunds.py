"""Refunds a producer makes from the console or the API, whole or partial.

A Stripe payment is refunded through Stripe's Refund API and booked only when Stripe confirms it
(its `charge.refunded` event, booked by webhooks.py as any refund made in Stripe's dashboard).
Until then the request is `pending` and counts against what remains, so a second request can
never ask for money already asked for. A gift recorded offline (or paid on the local test
checkout, where no money moved) is refunded in the ledger at once, with the same refund entries.

Two transactions, on purpose: the request is written and committed first (`request_refund`; its
id is the idempotency key of the call to Stripe, `refund:<id>`), then Stripe is called
(`send_to_stripe`) and its answer committed. A crash between the two leaves a pending request that
the same call, retried with the same client key, sends again under the same idempotency key:
Stripe refunds it once. Every request is audited: who, how much, why.
"""
from __future__ import annotations

import sqlalchemy as sa
from flask import current_app
from flask_babel import gettext as _

from filmfund.audit import record_audit
from filmfund.db import utcnow
from filmfund.errors import ConflictError, NotFoundError, ValidationError
from filmfund.extensions import db
from filmfund.i18n import format_money
from filmfund.rewards import ledger, payments, stripe_gateway
from filmfund.rewards.campaign_file import MAX_AMOUNT
from filmfund.rewards.models import Donation, DonationSource, RefundRequest, RefundState

REASON_MAX = 500
CLIENT_KEY_MAX = 128


def get_donation(donation_id: int) -> Donation:
    donation = db.session.get(Donation, donation_id) if isinstance(donation_id, int) else None
    if donation is None or donation.livemode != ledger.money_mode():
        raise NotFoundError(_("No such donation."))
    return donation


def pending_amount(donation_id: int) -> int:
    return int(db.session.scalar(sa.select(sa.func.coalesce(sa.func.sum(RefundRequest.amount), 0)).where(
        RefundRequest.donation_id == donation_id, RefundRequest.state == RefundState.PENDING)))


def remaining(donation: Donation) -> int:
    """What may still be refunded: the amount, less what counts as refunded (a lost dispute is
    all of it), less what is asked of Stripe and not yet confirmed."""
    return max(0, donation.amount - donation.counted_refunded - pending_amount(donation.id))


def through_stripe(donation: Donation) -> bool:
    """A real Stripe payment (a key is set and the payment was not made on the local test page)."""
    return (donation.source == DonationSource.STRIPE and bool(donation.payment_intent_id)
            and not donation.payment_intent_id.startswith("pi_test_local_")
            and not current_app.config["STRIPE_TEST_MODE"])


def request_refund(donation_id: int, amount: int | None = None, reason: str = "", *,
                   client_key: str | None = None, requested_by=None) -> RefundRequest:
    """Record a refund of `amount` cents (default: all that remains) of the donation. Refused
    (409) beyond what remains. An offline or test-mode gift is booked at once; a Stripe payment's
    request stays pending for `send_to_stripe` after the caller's commit. The same `client_key`
    (a double click, a retried call) gives back the first request."""
    reason = (reason or "").strip()
    if len(reason) > REASON_MAX:
        raise ValidationError(_("reason: at most %(n)s characters.", n=REASON_MAX), code="invalid_reason")
    if amount is not None and (isinstance(amount, bool) or not isinstance(amount, int)
                               or not 0 < amount <= MAX_AMOUNT):
        raise ValidationError(_("amount: a positive whole number of cents."), code="invalid_amount")
    if client_key is not None and not (isinstance(client_key, str) and 1 <= len(client_key) <= CLIENT_KEY_MAX):
        raise ValidationError(_("Idempotency-Key: 1 to 128 characters."), code="invalid_idempotency_key")
    donation = get_donation(donation_id)
    # The money lock: requests for one donation (two producers, a double click) are serial, and
    # a webhook booking a refund meanwhile is seen. Held to the caller's commit, before Stripe is called.
    ledger.lock_money(donation.campaign_id, donation.livemode)
    db.session.refresh(donation)
    if client_key is not None:
        earlier = db.session.scalar(sa.select(RefundRequest).where(RefundRequest.client_key == client_key))
        if earlier is not None:
            if earlier.donation_id != donation.id or (amount is not None and amount != earlier.amount):
                raise ConflictError(_("This Idempotency-Key was used for another refund."), code="idempotency_conflict")
            return earlier
    left = remaining(donation)
    if left == 0:
        raise ConflictError(_("Nothing is left to refund on this donation."), code="nothing_to_refund")
    amount = left if amount is None else amount
    if amount > left:
        raise ConflictError(_("Only %(left)s of this donation can still be refunded.",
                              left=_money(left, donation.currency)), code="refund_exceeds_remaining")
    if (donation.source == DonationSource.STRIPE and donation.subscription_id and not donation.payment_intent_id
            and not current_app.config["STRIPE_TEST_MODE"]):
        # A month paid on API 2025-03-31 or later names its payment only in `invoice_payment.paid`:
        # until that event is booked there is nothing to refund through, and the ledger alone must not move.
        raise ConflictError(_("This month's payment is not linked to its Stripe payment yet (the "
                              "invoice_payment.paid event); try again in a moment, or refund it in Stripe's Dashboard."),
                            code="payment_not_linked")
    direct = not through_stripe(donation)
    req = RefundRequest(donation_id=donation.id, amount=amount, reason=reason, client_key=client_key,
                        requested_by=getattr(requested_by, "id", None), state=RefundState.PENDING)
    db.session.add(req)
    db.session.flush()
    record_audit("donation.refund_request", f"donation {donation.id}",
                 {"refund_request": req.id, "donation_id": donation.id, "amount": amount,
                  "currency": donation.currency, "reason": reason, "via": "ledger" if direct else "stripe"},
                 actor=requested_by)
    if direct:  # no money to move through Stripe: the ledger's refund entries, now
        payments.apply_refund(donation, donation.amount_refunded + amount, None, actor=requested_by)
    return req


def send_to_stripe(req: RefundRequest) -> RefundRequest:
    """Ask Stripe for a pending request's refund (after the request's commit). Stripe's refusal
    marks it failed (nothing was refunded; it no longer counts against what remains) and is
    raised after the caller commits that: `raise_failure(req)`."""
    if req.state != RefundState.PENDING or req.stripe_refund_id:
        return req
    donation = db.session.get(Donation, req.donation_id)
    try:
        req.stripe_refund_id = stripe_gateway.create_refund(donation.payment_intent_id, req.amount, req.id,
                                                            req.reason)
    except stripe_gateway.PaymentProviderError as err:
        req.state, req.error, req.decided_at = RefundState.FAILED, err.message[:500], utcnow()
        record_audit("donation.refund_failed", f"donation {donation.id}",
                     {"refund_request": req.id, "amount": req.amount, "error": req.error})
    return req


def raise_failure(req: RefundRequest) -> None:
    if req.state == RefundState.FAILED:
        raise stripe_gateway.PaymentProviderError(req.error or _("Stripe refused the refund; nothing was refunded."))


def refund_document(req: RefundRequest) -> dict:
    donation = db.session.get(Donation, req.donation_id)
    return {"donation_id": donation.id, "requested": req.amount, "refunded": donation.counted_refunded,
            "state": req.state.value, "remaining": remaining(donation), "currency": donation.currency}


def requests_of(donation_id: int) -> list[RefundRequest]:
    return list(db.session.scalars(sa.select(RefundRequest).where(RefundRequest.donation_id == donation_id)
                                   .order_by(RefundRequest.id)))


def _money(amount: int, currency: str) -> str:
    return format_money(amount, currency)
