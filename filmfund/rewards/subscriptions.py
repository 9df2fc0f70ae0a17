"""Monthly gifts: the subscription a pledge's Checkout made, kept in step with Stripe's events; the
donor's list and cancel; the producer's view of monthly givers; the mail of a failed renewal.

Money is never booked here: each paid invoice goes through the one booking path
(payments.record_stripe_payment), counted once by its invoice id. This module only says whether
more months will come (`active`, `past_due`, `canceled`) and reads Stripe's invoice and
subscription objects in both shapes: API versions up to 2025-02 (`invoice.subscription`,
`subscription_details.metadata`, `payment_intent`, `charge`) and from 2025-03-31 on
(`parent.subscription_details`, `payments.data[].payment`).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timezone

import sqlalchemy as sa
import sqlalchemy.orm
from flask_babel import gettext as _

from filmfund.audit import record_audit
from filmfund.auth.services import public_base_url
from filmfund.db import utcnow
from filmfund.errors import NotFoundError
from filmfund.extensions import db
from filmfund.i18n import for_donor, format_money
from filmfund.mail import Letter, send_mail
from filmfund.rewards import ledger, stripe_gateway, texts
from filmfund.rewards.campaign import campaign_of
from filmfund.rewards.campaign_file import MAX_AMOUNT
from filmfund.rewards.models import Donation, Pledge, Subscription, SubscriptionState

log = logging.getLogger(__name__)

INTERVAL = "month"
TEST_PREFIX = "sub_test_local_"  # a test-mode subscription: no Stripe behind it

# Stripe's subscription statuses, as this installation keeps them. `incomplete` (the first payment
# not made yet) keeps nothing: the subscription counts from its first paid invoice.
STRIPE_STATES = {
    "active": SubscriptionState.ACTIVE, "trialing": SubscriptionState.ACTIVE,
    "past_due": SubscriptionState.PAST_DUE, "unpaid": SubscriptionState.PAST_DUE,
    "paused": SubscriptionState.PAST_DUE,
    "canceled": SubscriptionState.CANCELED, "incomplete_expired": SubscriptionState.CANCELED,
}


# ---------------------------------------------------------------- Stripe's objects, either shape

def _id_of(value) -> str | None:
    if isinstance(value, dict):
        value = value.get("id")
    return value[:255] if isinstance(value, str) and value else None


def _dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def _whole(value) -> int | None:
    """A whole number as Stripe's JSON gives it (an amount, a quantity, a unix time), or None."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _monthly_amount(amounts: list[int | None]) -> int | None:
    """The sum of a month's parts, or None when one is unknown or the sum is not a gift's amount."""
    if not amounts or any(a is None for a in amounts):
        return None
    total = sum(amounts)
    return total if 0 < total <= MAX_AMOUNT else None


@dataclass(frozen=True)
class InvoiceFacts:
    id: str
    subscription_id: str | None
    pledge_id: str | None
    payment_intent_id: str | None
    charge_id: str | None
    amount_paid: int
    amount_due: int | None  # what this invoice asked for (the failed month's mail names it)
    monthly_amount: int | None  # the gift's price this month, read from the invoice's own lines
    currency: str
    email: str | None
    customer_id: str | None
    first: bool
    period_end: int | None
    attempt_count: int
    hosted_invoice_url: str | None


def invoice_facts(obj: dict) -> InvoiceFacts:
    """What an invoice event says, however its API version writes it."""
    parent = _dict(_dict(obj.get("parent")).get("subscription_details"))
    old = _dict(obj.get("subscription_details"))
    lines = [line for line in _dict(obj.get("lines")).get("data") or [] if isinstance(line, dict)]
    metadata = _dict(parent.get("metadata")) or _dict(old.get("metadata"))
    if not metadata.get("pledge_id"):
        for line in lines:  # a subscription's line carries its metadata in every version
            if _dict(line.get("metadata")).get("pledge_id"):
                metadata = _dict(line.get("metadata"))
                break
    pi, charge = _id_of(obj.get("payment_intent")), _id_of(obj.get("charge"))
    for paid in _dict(obj.get("payments")).get("data") or []:  # 2025-03-31 on, when included
        payment = _dict(_dict(paid).get("payment"))
        pi, charge = pi or _id_of(payment.get("payment_intent")), charge or _id_of(payment.get("charge"))
    period_end = None
    for line in lines:
        end = _whole(_dict(line.get("period")).get("end"))
        if end is not None:
            period_end = max(period_end or 0, end)
    pledge_id = metadata.get("pledge_id")
    paid = _whole(obj.get("amount_paid"))
    due = _whole(obj.get("amount_due"))
    attempts = obj.get("attempt_count")
    url = obj.get("hosted_invoice_url")
    email = obj.get("customer_email")
    return InvoiceFacts(
        id=str(obj["id"])[:255], subscription_id=_id_of(obj.get("subscription")) or _id_of(parent.get("subscription")),
        pledge_id=pledge_id if isinstance(pledge_id, str) and len(pledge_id) <= 32 else None,
        payment_intent_id=pi, charge_id=charge,
        amount_paid=paid if paid is not None else -1,
        amount_due=due if due is not None and 0 < due <= MAX_AMOUNT else None,
        monthly_amount=_invoice_monthly_amount(obj, lines),
        currency=(obj.get("currency") or "").lower() if isinstance(obj.get("currency"), str) else "",
        email=email if isinstance(email, str) and len(email) <= 254 else None,
        customer_id=_id_of(obj.get("customer")), first=obj.get("billing_reason") == "subscription_create",
        period_end=period_end, attempt_count=attempts if isinstance(attempts, int) else 1,
        hosted_invoice_url=url if isinstance(url, str) and url.startswith("https://") and len(url) < 2000 else None)


def _invoice_monthly_amount(obj: dict, lines: list[dict]) -> int | None:
    """What the gift costs a month as a month's own invoice bills it: its subscription lines that
    are not prorations (a change's credit or charge for part of a month), before any discount. Only
    the first month's and a renewal's invoice (not an invoice of a change's prorations), and only
    lines that say what they are (API versions up to 2025-02: `type` and `proration`; from
    2025-03-31 on: `parent.subscription_item_details.proration`)."""
    if obj.get("billing_reason") not in ("subscription_create", "subscription_cycle"):
        return None
    amounts = []
    for line in lines:
        parent = _dict(line.get("parent"))
        if parent.get("type") == "subscription_item_details":
            proration = _dict(parent.get("subscription_item_details")).get("proration")
        elif line.get("type") == "subscription":
            proration = line.get("proration")
        else:
            continue  # an invoice item of its own, or a line that does not say
        if proration is True:
            continue
        if proration is not False:
            return None  # a line that does not say whether it is a month's price
        amounts.append(_whole(line.get("amount")))
    return _monthly_amount(amounts)


def subscription_amount(obj: dict) -> int | None:
    """What the subscription charges a month now: each item's price times its quantity (the
    price's `unit_amount`, or the older `plan.amount`); None when an item's price is not a fixed
    amount (metered, tiered) or the object does not say."""
    items = [item for item in _dict(obj.get("items")).get("data") or [] if isinstance(item, dict)]
    amounts = []
    for item in items:
        price, plan = _dict(item.get("price")), _dict(item.get("plan"))
        unit = _whole(price.get("unit_amount")) if price else _whole(plan.get("amount"))
        quantity = item.get("quantity", 1)
        quantity = _whole(quantity) if quantity is not None else 1
        usage = _dict(price.get("recurring")).get("usage_type") or plan.get("usage_type")
        amounts.append(None if unit is None or quantity is None or quantity < 0 or usage == "metered"
                       else unit * quantity)
    return _monthly_amount(amounts)


def subscription_period_end(obj: dict) -> int | None:
    """The end of the paid period: top-level up to 2025-03, on the items from 2025-03-31 on."""
    end = _whole(obj.get("current_period_end"))
    if end is not None:
        return end
    ends = [_whole(item.get("current_period_end")) for item in _dict(obj.get("items")).get("data") or []
            if isinstance(item, dict)]
    ends = [e for e in ends if e is not None]
    return max(ends) if ends else None


def _when(unix: int | None) -> datetime | None:
    return datetime.fromtimestamp(unix, timezone.utc) if unix else None


# ---------------------------------------------------------------- kept in step with Stripe

def pledge_of(pledge_id: str | None, stripe_subscription_id: str | None) -> Pledge | None:
    """The monthly pledge an invoice or subscription event is about, its row locked (the events of
    one subscription are applied one at a time)."""
    if pledge_id is None and stripe_subscription_id:
        pledge_id = db.session.scalar(sa.select(Subscription.pledge_id)
                                      .where(Subscription.stripe_subscription_id == stripe_subscription_id))
    if pledge_id is None:
        return None
    return db.session.get(Pledge, pledge_id, with_for_update={"key_share": True}, populate_existing=True)


def subscription_of(pledge: Pledge) -> Subscription | None:
    """The monthly pledge's subscription, if any of its events has named it yet."""
    return db.session.scalar(sa.select(Subscription).where(Subscription.pledge_id == pledge.id))


def ensure_subscription(pledge: Pledge, stripe_subscription_id: str, *, customer_id: str | None,
                        user_id: int, event_time: int) -> Subscription:
    """The pledge's subscription, made the first time any of its events names it (the session, the
    first invoice or a subscription event, in whatever order they come)."""
    sub = subscription_of(pledge)
    if sub is None:
        campaign = campaign_of(pledge)
        sub = Subscription(campaign_id=campaign.id, pledge_id=pledge.id, user_id=user_id,
                           stripe_subscription_id=stripe_subscription_id, stripe_customer_id=customer_id,
                           amount=pledge.amount, currency=pledge.currency, interval=INTERVAL,
                           state=SubscriptionState.ACTIVE, state_at=0, livemode=ledger.money_mode(),
                           started_at=_when(event_time) or utcnow())
        db.session.add(sub)
        db.session.flush()
    elif sub.stripe_subscription_id != stripe_subscription_id:
        raise ValueError(f"pledge {pledge.id} has subscription {sub.stripe_subscription_id}, "
                         f"not {stripe_subscription_id}")
    sub.stripe_customer_id = sub.stripe_customer_id or customer_id
    return sub


def note_state(sub: Subscription, state: SubscriptionState, event_time: int) -> None:
    """Take the state an event reports, unless a later event said otherwise; canceled is final."""
    if sub.state == SubscriptionState.CANCELED:
        return
    if state == SubscriptionState.CANCELED:
        sub.state, sub.canceled_at = state, _when(event_time) or utcnow()
        sub.state_at = max(sub.state_at, event_time)
        return
    if event_time >= sub.state_at:
        sub.state, sub.state_at = state, event_time


def note_amount(sub: Subscription, amount: int | None, event_time: int) -> None:
    """Take the monthly amount an event reports (a producer may change a gift's price in Stripe's
    Dashboard), unless a later event has spoken since: call it before `note_state`, whose time
    (`state_at`) is that of the latest event that told the gift's state, each of which can carry
    the amount. An ended gift keeps the amount it ended with."""
    if amount is None or sub.state == SubscriptionState.CANCELED or event_time < sub.state_at:
        return
    sub.amount = amount


def note_period_end(sub: Subscription, unix: int | None) -> None:
    """The next payment is due at the end of the latest paid period (it only moves forward)."""
    when = _when(unix)
    if when is not None and (sub.next_payment_at is None or when > sub.next_payment_at):
        sub.next_payment_at = when


# ---------------------------------------------------------------- a failed renewal's mail (after commit)

def queue_notice(notice: Letter) -> None:
    db.session.info.setdefault("subscription_notices", []).append(notice)


def notices_mark() -> int:
    return len(db.session.info.get("subscription_notices", []))


def drop_notices(mark: int = 0) -> None:
    del db.session.info.setdefault("subscription_notices", [])[mark:]


def take_notices() -> list[Letter]:
    return db.session.info.pop("subscription_notices", [])


def send_notices(notices: list[Letter]) -> None:
    for notice in notices:
        try:
            send_mail(notice.to, notice.subject, notice.text)
        except Exception:  # the state is committed; Stripe's own dunning mail is the fallback
            log.exception("the failed-renewal mail could not be sent")


def payment_failed_notice(sub: Subscription, facts: InvoiceFacts) -> Letter:
    """What the donor is told when a month could not be charged: nothing was taken, Stripe tries
    again by itself, and how to update the card or stop the gift."""
    campaign = campaign_of(sub.pledge)
    account = public_base_url() + "/account"
    with for_donor(sub.user_id):
        title = texts.campaign_title(campaign)
        lines = [_("Your monthly gift of %(amount)s to “%(title)s” could not be charged this month. "
                   "Nothing was taken.", amount=format_money(facts.amount_due or sub.amount, sub.currency),
                   title=title), "",
                 _("Our payment provider will try your card again over the next few days. "
                   "If the card has expired or changed, please update it:")]
        lines.append(facts.hosted_invoice_url or account)
        lines += ["", _("To stop the monthly gift instead, cancel it on your account page: %(url)s", url=account), ""]
        subject = _("Your monthly gift could not be charged")
    return Letter(sub.user.email, subject, "\n".join(lines) + "\n")


# ---------------------------------------------------------------- the donor's own

def document(sub: Subscription) -> dict:
    """The contract's shape: {id, amount, currency, interval, state, started_at, next_payment_at}."""
    return {"id": sub.id, "amount": sub.amount, "currency": sub.currency, "interval": sub.interval,
            "state": sub.state.value, "started_at": sub.started_at.isoformat(),
            "next_payment_at": sub.next_payment_at.isoformat()
            if sub.next_payment_at and sub.state != SubscriptionState.CANCELED else None}


def donor_subscriptions(user, every_mode: bool = False) -> list[Subscription]:
    """The donor's monthly gifts, newest first (of the installation's money mode unless `every_mode`)."""
    stmt = sa.select(Subscription).where(Subscription.user_id == user.id)
    if not every_mode:
        stmt = stmt.where(Subscription.livemode == ledger.money_mode())
    return list(db.session.scalars(stmt.order_by(Subscription.created_at.desc(), Subscription.id)))


def owned_subscription(user, subscription_id) -> Subscription:
    """The donor's own subscription; anyone else's, or none, is the same 404."""
    sub = (db.session.get(Subscription, subscription_id)
           if isinstance(subscription_id, str) and len(subscription_id) <= 32 else None)
    if sub is None or sub.user_id != user.id:
        raise NotFoundError(_("No such monthly gift."))
    return sub


def cancel(user, subscription_id: str, via: str) -> Subscription:
    """Stop future payments (Stripe cancels the subscription at once, without proration: nothing
    already paid is refunded). Repeating it changes nothing. The caller commits."""
    sub = owned_subscription(user, subscription_id)
    if sub.state == SubscriptionState.CANCELED:
        return sub
    if not sub.stripe_subscription_id.startswith(TEST_PREFIX):
        stripe_gateway.cancel_subscription(sub.stripe_subscription_id)
    now = utcnow()
    sub.state, sub.canceled_at, sub.state_at = SubscriptionState.CANCELED, now, max(sub.state_at, int(now.timestamp()))
    record_audit("subscription.cancel", f"subscription {sub.id}", {"via": via, "amount": sub.amount,
                                                                   "currency": sub.currency}, actor=user)
    return sub


# ---------------------------------------------------------------- the producer's view

SHOWN = 50  # the dashboard's table of monthly givers


def producer_summary(campaign, months: int = 12, shown: int = SHOWN) -> dict:
    """Monthly givers: how many give each month now (active, past due), what that brings each month,
    and what the paid invoices brought per calendar month (UTC, net of refunds), oldest first; the
    `shown` newest subscriptions with their donors (one query for them all). Counted in SQL: a
    fixed few statements however many monthly givers and gifts."""
    mode = ledger.money_mode()
    mine = (Subscription.campaign_id == campaign.id, Subscription.livemode == mode)
    by_state = {state: (int(n), int(amount or 0)) for state, n, amount in db.session.execute(
        sa.select(Subscription.state, sa.func.count(), sa.func.sum(Subscription.amount))
        .where(*mine).group_by(Subscription.state))}
    subs = list(db.session.scalars(
        sa.select(Subscription).where(*mine).options(sa.orm.selectinload(Subscription.user))
        .order_by(Subscription.started_at.desc(), Subscription.id.desc()).limit(shown)))
    if db.session.get_bind().dialect.name == "postgresql":
        month = sa.func.to_char(sa.func.timezone("UTC", Donation.received_at), "YYYY-MM")
    else:
        month = sa.func.strftime("%Y-%m", Donation.received_at)
    rows = db.session.execute(
        sa.select(month, sa.func.sum(Donation.amount - Donation.counted_refunded_sql()))
        .where(Donation.campaign_id == campaign.id, Donation.livemode == mode, Donation.subscription_id.is_not(None))
        .group_by(month).order_by(month.desc()).limit(months)).all()
    active = by_state.get(SubscriptionState.ACTIVE, (0, 0))
    past_due = by_state.get(SubscriptionState.PAST_DUE, (0, 0))
    return {"currency": campaign.currency, "active": active[0], "past_due": past_due[0],
            "canceled": sum(n for n, _amount in by_state.values()) - active[0] - past_due[0],
            "monthly": active[1], "at_risk": past_due[1],
            "by_month": [(key, int(amount)) for key, amount in reversed(rows)], "subscriptions": subs}
