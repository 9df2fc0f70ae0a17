"""Refunds a producer makes from the console or the API, whole or partial.

A Stripe payment is refunded through Stripe's Refund API and booked only when Stripe confirms it
(its `charge.refunded` event, booked by webhooks.py as any refund made in Stripe's dashboard).
Until then the request is `pending` and counts against what remains, so a second request can
never ask for money already asked for. A gift recorded offline (or paid on the local test
checkout, where no money moved) is refunded in the ledger at once, with the same refund entries.

Two transactions, on purpose: the request is written and committed first (`request_refund`; its
id is the idempotency key of the call to Stripe, `refund:<id>`), then Stripe is called
(`send_to_stripe`) and its answer committed. Only Stripe's refusal (a 4xx: invalid, declined)
fails a request. A crash between the two, or a call whose outcome Stripe left unknown (a 5xx, a
timeout, a lost connection: the refund may have been made), leaves the request pending and
unanswered, and every retry sends that same request again under its same idempotency key (Stripe
refunds it once): the producer's next refund of the donation (whatever client key it carries),
and `resend_unanswered`, every ten minutes, within the day Stripe keeps a key. Every request is
audited: who, how much, why.
"""
from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from flask import current_app
from flask_babel import gettext as _
from huey import crontab

from filmfund import jobs
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
# Stripe keeps an idempotency key at least 24 hours: within them, asking again under it never refunds
# twice. Past them a request still unanswered is left to Stripe's event (or its Dashboard).
RESEND_WITHIN = timedelta(hours=23)
RESEND_AFTER = timedelta(minutes=2)  # a younger one may still be on its way to Stripe


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
    """A real Stripe payment (a key is set and the payment was not made on the local test page),
    named by its payment intent or, a month paid on API 2025-03-31 on, its charge alone."""
    payment = donation.payment_intent_id or donation.charge_id
    return (donation.source == DonationSource.STRIPE and bool(payment)
            and not payment.startswith(("pi_test_local_", "ch_test_local_"))
            and not current_app.config["STRIPE_TEST_MODE"])


def unanswered(donation_id: int) -> RefundRequest | None:
    """The donation's oldest request still waiting for Stripe's answer (never sent, or its outcome
    unknown): whatever asks for a refund of the donation next sends it again, under its own key."""
    return db.session.scalar(sa.select(RefundRequest).where(
        RefundRequest.donation_id == donation_id, RefundRequest.state == RefundState.PENDING,
        RefundRequest.stripe_refund_id.is_(None)).order_by(RefundRequest.id).limit(1))


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
    waiting = unanswered(donation.id) if through_stripe(donation) else None
    if waiting is not None:
        # Stripe may have made it: asking for it again is a retry of that request (same key), never a second refund.
        if amount is not None and amount != waiting.amount:
            raise ConflictError(_("A refund of %(amount)s of this donation is still waiting for Stripe's answer; it "
                                  "is asked again now. Ask for another once it is confirmed.",
                                  amount=_money(waiting.amount, donation.currency)), code="refund_unanswered")
        return waiting
    left = remaining(donation)
    if left == 0:
        raise ConflictError(_("Nothing is left to refund on this donation."), code="nothing_to_refund")
    amount = left if amount is None else amount
    if amount > left:
        raise ConflictError(_("Only %(left)s of this donation can still be refunded.",
                              left=_money(left, donation.currency)), code="refund_exceeds_remaining")
    if (donation.source == DonationSource.STRIPE and donation.subscription_id and not donation.payment_intent_id
            and not donation.charge_id and not current_app.config["STRIPE_TEST_MODE"]):
        # A month paid on API 2025-03-31 or later names its payment (intent or charge) only in
        # `invoice_payment.paid`: until that event is booked there is nothing to refund through, and
        # the ledger alone must not move.
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
    """Ask Stripe for a pending request's refund (after the request's commit), under its own key.
    Stripe's refusal marks it failed (nothing was refunded; it no longer counts against what
    remains) and is raised after the caller commits that: `raise_failure(req)`. An answer that
    never came leaves it pending (it may have been refunded: it still counts), to be asked again
    under the same key."""
    if req.state != RefundState.PENDING or req.stripe_refund_id:
        return req
    donation = db.session.get(Donation, req.donation_id)
    try:
        req.stripe_refund_id = stripe_gateway.create_refund(donation.payment_intent_id, req.amount, req.id,
                                                            req.reason, charge_id=donation.charge_id)
    except stripe_gateway.OutcomeUnknown as err:
        if req.error is None:  # said once, not at every retry
            record_audit("donation.refund_unanswered", f"donation {donation.id}",
                         {"refund_request": req.id, "amount": req.amount})
        req.error = err.message[:500]
    except stripe_gateway.PaymentProviderError as err:
        req.move(RefundState.FAILED)
        req.error = err.message[:500]
        record_audit("donation.refund_failed", f"donation {donation.id}",
                     {"refund_request": req.id, "amount": req.amount, "error": req.error})
    else:
        req.error = None
    return req


def resend_unanswered(now=None) -> int:
    """Ask Stripe again, each under its own key, for the requests still without an answer (a 5xx,
    a timeout, a crash before the call), made within RESEND_WITHIN; each answer committed before
    the next call. Returns how many got an answer (made or refused). The periodic task's body."""
    now = now or utcnow()
    ids = db.session.scalars(sa.select(RefundRequest.id).where(
        RefundRequest.state == RefundState.PENDING, RefundRequest.stripe_refund_id.is_(None),
        RefundRequest.created_at > now - RESEND_WITHIN, RefundRequest.created_at < now - RESEND_AFTER)
        .order_by(RefundRequest.id)).all()
    db.session.commit()  # no transaction held while Stripe is called
    answered = 0
    for req_id in ids:
        req = db.session.get(RefundRequest, req_id)
        if req is None or not through_stripe(db.session.get(Donation, req.donation_id)):
            continue
        send_to_stripe(req)
        answered += req.state == RefundState.FAILED or bool(req.stripe_refund_id)
        db.session.commit()
    return answered


@jobs.mail.periodic_task(crontab(minute="*/10"), name="filmfund.rewards.resend_unanswered_refunds")
def resend_unanswered_refunds() -> int:
    """Every ten minutes: the refunds Stripe left unanswered, asked again under their own keys."""
    return jobs.in_worker_app(resend_unanswered)


def raise_failure(req: RefundRequest) -> None:
    if req.state == RefundState.FAILED:
        raise stripe_gateway.PaymentProviderError(req.error or _("Stripe refused the refund; nothing was refunded."))


def refund_document(req: RefundRequest) -> dict:
    donation = db.session.get(Donation, req.donation_id)
    return {"donation_id": donation.id, "requested": req.amount, "refunded": donation.counted_refunded,
            "state": req.state.value, "remaining": remaining(donation), "currency": donation.currency}


def requests_for(donation_ids: list[int]) -> dict[int, list[RefundRequest]]:
    """The refund requests of these gifts, by gift, oldest first: one query for a donor's page."""
    found: dict[int, list[RefundRequest]] = {}
    if donation_ids:
        for req in db.session.scalars(sa.select(RefundRequest).where(RefundRequest.donation_id.in_(donation_ids))
                                      .order_by(RefundRequest.id)):
            found.setdefault(req.donation_id, []).append(req)
    return found


def _money(amount: int, currency: str) -> str:
    return format_money(amount, currency)
