"""The one module that talks to Stripe's API.

Every call carries our own deterministic idempotency key, so a retry (the library's own retries
on 409/5xx, ours on 429, or a second request after a crash) can never create a second Checkout
Session. STRIPE_API_BASE points the client at another server (the tests' local fake Stripe).

One `StripeClient` per process (and per key), made on first use and reused by every request and
thread: its HTTP client (requests) keeps its connections to Stripe open between calls.

At a spike Stripe answers 429 (rate limited: 100 requests a second per account in live mode,
25 in test mode, and 25 a second on any one endpoint such as POST /v1/checkout/sessions). The library does not retry a 429; we do, with
exponential backoff and jitter (STRIPE_RATE_LIMIT_RETRIES times, from STRIPE_RATE_LIMIT_BACKOFF
seconds), and then tell the donor plainly to try again in a moment.
"""
from __future__ import annotations

import logging
import os
import random
import threading
import time
from typing import TYPE_CHECKING

from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from filmfund.errors import DomainError
from filmfund.i18n import in_language, normalize
from filmfund.rewards import signals
from filmfund.rewards.texts import campaign_title

# stripe (and requests under it, ~10 MiB resident) is imported where a call is made: a process
# that never talks to Stripe (the worker, a web process without live payments) does not load it.
if TYPE_CHECKING:
    import stripe

log = logging.getLogger(__name__)


class PaymentProviderError(DomainError):
    status, code = 502, "payment_provider_unavailable"


class PaymentProviderBusy(PaymentProviderError):
    status, code = 503, "payment_provider_busy"


class OutcomeUnknown(PaymentProviderError):
    """Stripe did not say whether it did it (a 5xx, a timeout, a lost connection, a conflict on the
    key): the request may have been carried out. Stripe's rule: ask again under the same idempotency
    key, which gives back what was done, or does it once."""
    status, code = 502, "payment_provider_unanswered"


BUSY_MESSAGE = _l("So many people are giving right now that our payment provider asked us to slow down. "
                  "Nothing was charged: please try again in a minute.")

_clients: dict[tuple, stripe.StripeClient] = {}
_clients_lock = threading.Lock()


def client() -> stripe.StripeClient:
    """This process's Stripe client for the configured key and API base (made once, then reused)."""
    import stripe  # deferred: see the imports

    cfg = current_app.config
    base = cfg.get("STRIPE_API_BASE")
    key = (os.getpid(), cfg["STRIPE_SECRET_KEY"], base, cfg.get("STRIPE_MAX_RETRIES", 2))
    made = _clients.get(key)
    if made is None:
        with _clients_lock:
            made = _clients.get(key)
            if made is None:
                made = stripe.StripeClient(key[1], base_addresses={"api": base} if base else None,
                                           max_network_retries=key[3])
                _clients[key] = made
    return made


def _with_rate_limit_retries(call, what: str):
    """`call()`, retried with exponential backoff and jitter while Stripe answers 429."""
    import stripe  # deferred: see the imports

    cfg = current_app.config
    retries = int(cfg.get("STRIPE_RATE_LIMIT_RETRIES", 3))
    delay = float(cfg.get("STRIPE_RATE_LIMIT_BACKOFF", 0.5))
    for attempt in range(retries + 1):
        try:
            return call()
        except stripe.RateLimitError:
            if attempt == retries:
                log.warning("Stripe rate-limited %s %d times; giving up for now", what, attempt + 1)
                raise
            pause = delay * (2 ** attempt) * random.uniform(1.0, 1.5)
            log.info("Stripe rate-limited %s; retrying in %.2fs", what, pause)
            time.sleep(pause)
    raise AssertionError("unreachable")


# Checkout's own language for each of ours (Stripe's `locale`: `zh` is Simplified Chinese).
CHECKOUT_LOCALES = {"en": "en", "zh-Hans": "zh"}


def payment_methods(recurring: bool = False) -> list[str]:
    """The payment method types a gift may use: FILMFUND_PAYMENT_METHODS for a one-time gift
    (card, Alipay, WeChat Pay by default; empty: Stripe's Dashboard decides), card alone for a
    monthly one (Alipay and WeChat Pay take no subscriptions)."""
    if recurring:
        return ["card"]
    return list(current_app.config.get("PAYMENT_METHODS") or [])


def checkout_params(pledge, campaign, success_url: str, cancel_url: str, expires_at: int | None = None) -> dict:
    language = normalize(pledge.language) or "en"
    with in_language(language):
        product = _("Donation to %(title)s", title=campaign_title(campaign))[:250]
    monthly = pledge.interval == "month"
    if monthly:
        with in_language(language):
            product = _("Monthly donation to %(title)s", title=campaign_title(campaign))[:250]
    price = {"currency": pledge.currency, "unit_amount": pledge.amount, "product_data": {"name": product}}
    if monthly:
        price["recurring"] = {"interval": "month"}
    params = {
        "mode": "subscription" if monthly else "payment",
        "line_items": [{"quantity": 1, "price_data": price}],
        "locale": CHECKOUT_LOCALES.get(language, "auto"),
        "client_reference_id": pledge.id,
        "customer_email": pledge.email,
        "metadata": {"pledge_id": pledge.id},
        "success_url": success_url,
        "cancel_url": cancel_url,
    }
    if monthly:
        # Copied to the subscription, and from it to every invoice (subscription_details.metadata,
        # or parent.subscription_details.metadata from API 2025-03-31 on): each month names its pledge.
        params["subscription_data"] = {"metadata": {"pledge_id": pledge.id}}
    else:
        # Session metadata is not copied to the PaymentIntent: refunds and disputes need it there.
        params["payment_intent_data"] = {"metadata": {"pledge_id": pledge.id}}
    if expires_at is not None:  # it holds a limited reward's item: the session lives as long as the claim
        params["expires_at"] = expires_at
    methods = payment_methods(recurring=monthly)
    if methods:
        params["payment_method_types"] = methods
        if "wechat_pay" in methods:  # Stripe requires the client kind for WeChat Pay: a web page here
            params["payment_method_options"] = {"wechat_pay": {"client": "web"}}
    # A DVD tier: Checkout asks where to post it (filmfund.fulfil answers; the webhook's signal hands it back).
    countries = signals.shipping_countries(pledge)
    if countries and not monthly:
        params["shipping_address_collection"] = {"allowed_countries": countries}
    return params


def create_checkout_session(pledge, campaign, *, success_url: str, cancel_url: str,
                            expires_at: int | None = None) -> tuple[str, str]:
    """(session id, hosted checkout URL) for this pledge; the same pledge always gets the same session."""
    import stripe  # deferred: see the imports

    params = checkout_params(pledge, campaign, success_url, cancel_url, expires_at)
    try:
        session = _with_rate_limit_retries(
            lambda: client().v1.checkout.sessions.create(
                params=params, options={"idempotency_key": f"checkout:{pledge.id}"}),
            f"the checkout session of pledge {pledge.id}")
    except stripe.RateLimitError:
        raise PaymentProviderBusy(str(BUSY_MESSAGE)) from None
    except stripe.StripeError as exc:
        log.warning("Stripe refused a checkout session for pledge %s: %s", pledge.id, type(exc).__name__)
        raise PaymentProviderError(_("The payment provider is unavailable; please try again in a moment.")) from None
    return session.id, session.url


def refused(exc: stripe.StripeError) -> bool:
    """Whether Stripe refused the request outright (a 4xx that is no conflict on the key: invalid,
    declined, not allowed, rate-limited), so that nothing was done. Anything else (a 5xx, a timeout
    or a lost connection, a 409 the library's retries did not clear, a key used otherwise) leaves
    the outcome unknown."""
    import stripe  # deferred: see the imports

    if isinstance(exc, stripe.IdempotencyError):
        return False
    return isinstance(exc, (stripe.InvalidRequestError, stripe.CardError, stripe.AuthenticationError,
                            stripe.PermissionError, stripe.RateLimitError))


def create_refund(payment_intent_id: str | None, amount: int, request_id: int, reason: str = "", *,
                  charge_id: str | None = None) -> str:
    """Ask Stripe to refund `amount` of a payment (its payment intent, else its charge: a month paid
    on API 2025-03-31 on may name only its charge): the id of Stripe's Refund. The idempotency key
    is the refund request's (`refund:<id>`), so a retry of the same request never refunds twice.
    Nothing is booked here: Stripe's `charge.refunded` event books it when the money has moved.
    Raises PaymentProviderError when Stripe refused (nothing was refunded), OutcomeUnknown when
    Stripe did not say (ask again under the same key)."""
    import stripe  # deferred: see the imports

    payment = {"payment_intent": payment_intent_id} if payment_intent_id else {"charge": charge_id}
    params = {**payment, "amount": amount, "metadata": {"refund_request": str(request_id), "reason": reason[:500]}}
    try:
        refund = _with_rate_limit_retries(
            lambda: client().v1.refunds.create(params=params, options={"idempotency_key": f"refund:{request_id}"}),
            f"refund request {request_id}")
    except stripe.RateLimitError:
        raise PaymentProviderBusy(_("Stripe asked us to slow down; nothing was refunded. Try again in a minute.")) from None
    except stripe.StripeError as exc:
        if not refused(exc):
            log.warning("Stripe did not answer refund request %s (%s): it is asked again under the same key",
                        request_id, type(exc).__name__)
            raise OutcomeUnknown(_("Stripe did not answer. The refund may have been made: it is asked again "
                                   "under the same key, which never refunds twice.")) from None
        log.warning("Stripe refused refund request %s: %s", request_id, type(exc).__name__)
        message = getattr(exc, "user_message", None) or _("The payment provider is unavailable; please try again in a moment.")
        raise PaymentProviderError(message) from None
    return refund.id


def cancel_subscription(subscription_id: str) -> None:
    """Cancel a monthly gift at once (`DELETE /v1/subscriptions/{id}`): no further invoice, and no
    proration, so nothing already paid is refunded. One Stripe already canceled is done too."""
    import stripe  # deferred: see the imports

    try:
        _with_rate_limit_retries(lambda: client().v1.subscriptions.cancel(subscription_id),
                                 f"the cancellation of subscription {subscription_id}")
    except stripe.RateLimitError:
        raise PaymentProviderBusy(str(BUSY_MESSAGE)) from None
    except stripe.InvalidRequestError as exc:
        if "canceled" in str(exc).lower() or exc.http_status == 404:
            log.info("subscription %s was already canceled in Stripe", subscription_id)
            return
        log.warning("Stripe refused to cancel subscription %s: %s", subscription_id, type(exc).__name__)
        raise PaymentProviderError(_("The payment provider is unavailable; please try again in a moment.")) from None
    except stripe.StripeError as exc:
        log.warning("Stripe refused to cancel subscription %s: %s", subscription_id, type(exc).__name__)
        raise PaymentProviderError(_("The payment provider is unavailable; please try again in a moment.")) from None
