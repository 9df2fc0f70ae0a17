"""The one module that talks to Stripe's API.

Every call carries our own deterministic idempotency key, so a retry (the library's own retries
on 409/5xx, or a second request after a crash) can never create a second Checkout Session.
STRIPE_API_BASE points the client at another server (the tests' local fake Stripe).
"""
from __future__ import annotations

import logging

import stripe
from flask import current_app

from filmfund.errors import DomainError

log = logging.getLogger(__name__)


class PaymentProviderError(DomainError):
    status, code = 502, "payment_provider_unavailable"


def client() -> stripe.StripeClient:
    cfg = current_app.config
    base = cfg.get("STRIPE_API_BASE")
    return stripe.StripeClient(cfg["STRIPE_SECRET_KEY"], base_addresses={"api": base} if base else None,
                               max_network_retries=cfg.get("STRIPE_MAX_RETRIES", 2))


def checkout_params(pledge, campaign, success_url: str, cancel_url: str) -> dict:
    return {
        "mode": "payment",
        "line_items": [{
            "quantity": 1,
            "price_data": {"currency": pledge.currency, "unit_amount": pledge.amount,
                           "product_data": {"name": f"Donation to {campaign.title}"[:250]}},
        }],
        "client_reference_id": pledge.id,
        "customer_email": pledge.email,
        "metadata": {"pledge_id": pledge.id},
        # Session metadata is not copied to the PaymentIntent: refunds and disputes need it there.
        "payment_intent_data": {"metadata": {"pledge_id": pledge.id}},
        "success_url": success_url,
        "cancel_url": cancel_url,
    }


def create_checkout_session(pledge, campaign, *, success_url: str, cancel_url: str) -> tuple[str, str]:
    """(session id, hosted checkout URL) for this pledge; the same pledge always gets the same session."""
    try:
        session = client().v1.checkout.sessions.create(
            params=checkout_params(pledge, campaign, success_url, cancel_url),
            options={"idempotency_key": f"checkout:{pledge.id}"})
    except stripe.StripeError as exc:
        log.warning("Stripe refused a checkout session for pledge %s: %s", pledge.id, type(exc).__name__)
        raise PaymentProviderError("The payment provider is unavailable; please try again in a moment.") from None
    return session.id, session.url
