"""Stripe webhooks: verify, store once, process idempotently, in any order.

Stripe delivers at least once and in no particular order. So every verified event is stored
once by its id (a unique constraint; on PostgreSQL concurrent duplicates meet at the insert,
after the money lock), each effect is keyed by the payment (pledge, payment intent) and uses
cumulative values, and a refund or dispute that arrives before its payment is kept "unmatched"
and applied as soon as the payment is recorded. Any order of the same events gives the same ledger.
"""
from __future__ import annotations

import contextvars
import hashlib
import hmac
import json
import logging
import threading
import time
from datetime import timedelta

import sqlalchemy as sa
from flask import Blueprint, current_app, has_request_context, jsonify, request
from huey import crontab
from flask_babel import gettext as _

from filmfund import jobs
from filmfund.config import test_payment_refusal
from filmfund.db import insert_on_conflict, new_id, utcnow
from filmfund.errors import DomainError, ForbiddenError, ValidationError
from filmfund.extensions import db, one_statement_value
from filmfund.rewards import ledger, payments, rules, signals, stock, subscriptions
from filmfund.rewards.campaign import campaign_of
from filmfund.rewards.pledges import get_pledge
from filmfund.rewards.receipts import (
    drop_queued_receipts,
    queued_receipts_mark,
    recompose_queued_receipt,
    send_queued_receipts,
    take_queued_receipts,
)
from filmfund.rewards.campaign_file import MAX_AMOUNT
from filmfund.rewards.models import (
    DisputeStatus,
    Donation,
    Pledge,
    PledgeState,
    SubscriptionState,
    WebhookEvent,
    WebhookStatus,
)

log = logging.getLogger(__name__)
security_log = logging.getLogger("filmfund.security")

# The `created` time of the event being booked (unix seconds): a subscription's state follows its latest event.
_event_created: contextvars.ContextVar[int] = contextvars.ContextVar("stripe_event_created", default=0)

TOLERANCE = 300  # seconds, both ways: stripe's own check accepts any future timestamp
MAX_PAYLOAD = 512 * 1024

bp = Blueprint("rewards_webhooks", __name__)


class SignatureError(DomainError):
    status, code = 400, "invalid_signature"


class Unprocessable(Exception):
    """The event is genuine but cannot be booked (kept as failed for a producer to look at)."""


class CampaignCurrencyChanged(Exception):
    """A payment in its pledge's currency, which the campaign no longer takes: the event stays
    waiting (booked by the sweep once the campaign takes that currency again), never failed."""


# ---------------------------------------------------------------- verification

def sign_payload(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """A Stripe-Signature header value, computed exactly as Stripe does."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def verify(payload: bytes, header: str | None) -> dict:
    """The signed JSON object (a genuine message from Stripe). Its shape is checked when it is
    stored: a signed event that cannot be booked is kept as failed, never refused."""
    if not header or len(payload) > MAX_PAYLOAD:
        raise SignatureError(_("Missing or invalid Stripe-Signature."))
    stamps = [p.split("=", 1)[1] for p in header.split(",") if p.startswith("t=")]
    try:
        t = int(stamps[0])
    except (IndexError, ValueError):
        raise SignatureError(_("Missing or invalid Stripe-Signature.")) from None
    if abs(time.time() - t) > TOLERANCE:
        raise SignatureError(_("Stripe-Signature timestamp is outside the tolerance."))
    import stripe  # deferred to the first signed webhook: a worker never loads stripe (~10 MiB)

    try:
        text = payload.decode("utf-8")
        stripe.WebhookSignature.verify_header(text, header, current_app.config["STRIPE_WEBHOOK_SECRET"], TOLERANCE)
        event = json.loads(text)
    except (stripe.SignatureVerificationError, UnicodeDecodeError, ValueError, RecursionError):
        raise SignatureError(_("Missing or invalid Stripe-Signature.")) from None
    if not isinstance(event, dict):
        raise ValidationError(_("Not a Stripe event."), code="invalid_event")
    return event


def _malformed(event: dict) -> str | None:
    """Why a signed event cannot be an event we book, or None."""
    if not isinstance(event.get("id"), str) or not 1 <= len(event["id"]) <= 255:
        return "id is not a string of 1 to 255 characters"
    if not isinstance(event.get("type"), str):
        return "type is not a string"
    if not isinstance(event.get("data"), dict) or not isinstance(event["data"].get("object"), dict):
        return "data.object is not an object"
    if not isinstance(event.get("livemode", False), bool):
        return "livemode is not a boolean"
    return None


# ---------------------------------------------------------------- handling: store, answer, book later

def handle_stripe_webhook(payload: bytes, signature: str | None, *, inline: bool = False) -> dict:
    """The one entry point for Stripe events (the HTTP endpoint and the test-mode checkout):
    verify, store once, answer. The booking runs in a worker (`book_event`), or at once when
    `inline` (only the local test checkout, whose buttons lead straight to the thank-you page)."""
    try:
        event = verify(payload, signature)
    except DomainError:
        security_log.warning("rejected a Stripe webhook: bad signature or payload")
        raise
    problem = _malformed(event)
    event_id = event["id"] if problem is None else "invalid_" + hashlib.sha256(payload).hexdigest()[:48]
    stored = None
    if db.engine.dialect.name == "sqlite":
        # A redelivery is answered with one indexed read, without waiting for SQLite's writer turn.
        stored = _stored(event_id)
        db.session.commit()  # no connection held while waiting for SQLite's writer turn
    if stored is None:
        # PostgreSQL: the insert alone, in autocommit (one round trip): the unique event id is the
        # guard, for redeliveries and concurrent twins alike.
        with ledger.one_writer():
            row_id = _store_once(event, event_id, payload, problem)
        if row_id is None:  # stored already: book it only if its booking was lost
            stored, duplicate = _stored(event_id), True
            db.session.commit()
            if stored is None or stored[1] != WebhookStatus.RECEIVED:
                return {"received": True, "duplicate": True}
        elif problem is not None:
            return {"received": True, "status": WebhookStatus.FAILED.value}
        elif _ignored_because(event) is not None:
            return {"received": True, "status": WebhookStatus.IGNORED.value}
        else:
            stored, duplicate = (row_id, WebhookStatus.RECEIVED), False
    else:
        duplicate = True
    if stored[1] != WebhookStatus.RECEIVED:
        return {"received": True, "duplicate": True}
    # Stored and not booked yet (new, or a redelivery of one whose booking was lost): book it. A
    # new event stored on PostgreSQL has woken the workers itself (`_insert_once`).
    status = _dispatch(stored[0], inline, woken=not duplicate and storing_wakes_workers(db.engine.dialect))
    return {"received": True, "duplicate": True} if duplicate else {"received": True, "status": status}


def _ignored_because(event: dict) -> str | None:
    account = event.get("account")
    if account is not None:
        return f"event of another Stripe account ({str(account)[:60]}): this installation books its own only"
    if bool(event.get("livemode")) != _expected_livemode():
        return "livemode does not match this installation"
    if event["type"] not in HANDLERS:
        return "not an event type this installation books"
    return None


def _stored(event_id: str):
    return db.session.execute(sa.select(WebhookEvent.id, WebhookEvent.status)
                              .where(WebhookEvent.event_id == event_id)).first()


def _store_once(event: dict, event_id: str, payload: bytes, problem: str | None) -> int | None:
    """Insert the event once by its id; None if it was there already. Events that will never be
    booked are stored with their final status and reason."""
    now = utcnow()
    if problem is not None:
        status, error, obj = WebhookStatus.FAILED, problem, {}
        log.warning("signed Stripe event %s cannot be booked: %s", event_id, problem)
    else:
        obj = event["data"]["object"]
        reason = _ignored_because(event)
        status = WebhookStatus.RECEIVED if reason is None else WebhookStatus.IGNORED
        error = None if reason is None or event["type"] not in HANDLERS else reason
    event_type = event.get("type") if isinstance(event.get("type"), str) else "invalid"
    values = dict(event_id=event_id, type=event_type[:100], livemode=bool(event.get("livemode")),
                  payload=payload.decode("utf-8"), received_at=now, status=status, error=error,
                  processed_at=None if status == WebhookStatus.RECEIVED else now,
                  payment_intent_id=_payment_intent_of({"data": {"object": obj}}), charge_id=_charge_of(obj))
    return one_statement_value(_insert_once(db.engine.dialect), values)


# On PostgreSQL, storing an event wakes the workers' listeners on this channel (booking_listener).
BOOKING_CHANNEL = "filmfund_stripe_events"


def storing_wakes_workers(dialect: sa.Dialect) -> bool:
    """Whether storing an event wakes the listening workers itself (`_insert_once`): on PostgreSQL.
    Elsewhere each new event queues its booking task, and no worker listens."""
    return dialect.name == "postgresql"


def _insert_once(dialect: sa.Dialect) -> sa.TextClause:
    """INSERT … ON CONFLICT (event_id) DO NOTHING RETURNING id, compiled once (db.insert_on_conflict).

    On PostgreSQL the same statement also wakes the workers: a NOTIFY for each row it inserted,
    which PostgreSQL sends when the row commits, and not at all if it rolls back. So the wake-up
    costs no second round trip (a queued task cost a Redis one, a fifth of the accept's CPU), and
    there is no moment where the event is stored and nothing is on its way to book it (a web
    process killed between its commit and its enqueue left the event to the minute sweep)."""
    table = WebhookEvent.__table__
    names = ("event_id", "type", "livemode", "payload", "received_at", "status", "error", "processed_at",
             "payment_intent_id", "charge_id")

    def build(insert):
        stored = (insert(table).values({n: sa.bindparam(n, type_=table.c[n].type) for n in names})
                  .on_conflict_do_nothing(index_elements=["event_id"]).returning(table.c.id))
        if not storing_wakes_workers(dialect):
            return stored
        stored = stored.cte("stored")
        woke = sa.select(sa.func.pg_notify(sa.literal_column(f"'{BOOKING_CHANNEL}'"), sa.literal_column("''"))) \
            .select_from(stored).cte("woke")
        return sa.select(stored.c.id).select_from(stored.join(woke, sa.true()))

    return insert_on_conflict("webhook_event_once", dialect, build)


def _dispatch(row_id: int, inline: bool, woken: bool) -> str:
    if inline:
        try:
            return book_event(row_id) or WebhookStatus.RECEIVED.value
        except Exception:  # stored: a worker's sweep books it later; Stripe gets its 200 now
            log.exception("booking Stripe event row %s failed; it stays received for the sweep", row_id)
            return WebhookStatus.RECEIVED.value
    if woken:
        return WebhookStatus.RECEIVED.value
    try:
        book_stripe_event(row_id)
    except Exception:  # the queue is down: the event is stored, the minute sweep books it
        log.exception("could not queue the booking of Stripe event row %s", row_id)
    return WebhookStatus.RECEIVED.value


def claim_statement(row_id: int) -> sa.Select:
    """The claim of one event: by its primary key alone, locked, skipped if locked (SQLite, which
    has no row locks, renders no FOR UPDATE: `_claim` takes its write lock first)."""
    return sa.select(WebhookEvent).where(WebhookEvent.id == row_id).with_for_update(skip_locked=True)


def waiting_statement(limit: int, older_than: float = 0) -> sa.Select:
    """The ids of the first `limit` events still waiting to be booked, oldest first. Ordered as
    the (status, received_at) index is, so that those rows are read and no more: ordered by id
    (or by received_at and id), every waiting row was read and sorted at each batch."""
    stmt = (sa.select(WebhookEvent.id).where(WebhookEvent.status == WebhookStatus.RECEIVED)
            .order_by(WebhookEvent.received_at).limit(limit))
    if older_than:
        stmt = stmt.where(WebhookEvent.received_at < utcnow() - timedelta(seconds=older_than))
    return stmt


def _claim(row_id: int) -> WebhookEvent | None:
    """This event's row, locked for this transaction, if it still waits to be booked (concurrent
    workers skip it rather than wait).

    PostgreSQL: the row is found by its primary key alone, and its status read once it is locked.
    With the status in the WHERE clause too, the generic plan PostgreSQL keeps for the prepared
    statement (psycopg prepares what runs five times) was chosen while the table was small, and
    took the status index: each claim then read every event still waiting, about 10 ms of the
    database's CPU per booking in a storm of 2,000."""
    if db.session.get_bind().dialect.name == "sqlite":  # take the single write lock first, then read
        if db.session.execute(sa.update(WebhookEvent).where(
                WebhookEvent.id == row_id, WebhookEvent.status == WebhookStatus.RECEIVED)
                .values(status=WebhookStatus.RECEIVED)).rowcount != 1:
            return None
    row = db.session.scalars(claim_statement(row_id).execution_options(populate_existing=True)).first()
    return row if row is not None and row.status == WebhookStatus.RECEIVED else None


def book_event(row_id: int) -> str | None:
    """Book one stored event, in its own transaction: what a worker runs. Returns its status, or
    None when another worker has it or it was booked already."""
    drop_queued_receipts()
    subscriptions.drop_notices()
    try:
        with ledger.one_writer():
            row = _claim(row_id)
            if row is None:
                db.session.commit()
                return None
            _process(row, json.loads(row.payload))
            status = row.status.value
            receipts = take_queued_receipts()
            notices = subscriptions.take_notices()
            db.session.commit()
    except BaseException:
        db.session.rollback()
        drop_queued_receipts()  # rolled back: their donations do not exist
        subscriptions.drop_notices()
        raise
    # The money is committed and the lock released: only now does the mail go out.
    send_queued_receipts(receipts)
    subscriptions.send_notices(notices)
    return status


def book_pending(limit: int = 100, older_than: float = 0) -> int:
    """Book the events still waiting (oldest first), up to `limit` of them: a drain's batch, and
    the minute sweep (`older_than` seconds: leave the freshest to the tasks queued for them).
    Returns how many this call booked (those another worker held are skipped).

    An event whose booking raised (rolled back, so still waiting) does not hold back the ones
    after it: it is named in the log and tried again by the next batch. When nothing in the batch
    could be booked the error is raised, so that the task is retried. An error of the database
    itself (`OperationalError`, `InterfaceError`: the connection lost, the server restarting, a
    deadlock) is not one event's: it ends the batch at once."""
    ids = db.session.scalars(waiting_statement(limit, older_than)).all()
    db.session.commit()
    done, failure = 0, None
    for row_id in ids:
        try:
            if book_event(row_id) is not None:
                done += 1
        except (sa.exc.OperationalError, sa.exc.InterfaceError):
            raise
        except Exception as exc:  # noqa: BLE001 - raised below if it held back the whole batch
            log.exception("booking Stripe event row %s failed; it stays received", row_id)
            _note_failure(row_id, exc)
            failure = exc
    if failure is not None and not done:
        raise failure
    return done


def _note_failure(row_id: int, exc: Exception) -> None:
    """Write why the event's last booking raised on its row, which stays `received` (tried again
    by the next batch and the sweep): the producers' inbox lists it with that reason, instead of a
    payment waiting unseen behind a line in the log. Its booking (rolled back) wrote nothing; a
    later booking that succeeds clears the reason (`_process`). Only the error's kind: its message
    can quote a statement's parameters (a donor's email), which an erasure would not find here."""
    why = f"not booked yet: its last booking failed ({type(exc).__name__}; the worker's log has the details)"
    try:
        # Not rewritten when it says so already: a drain retries a damaged row at each batch.
        db.session.execute(sa.update(WebhookEvent).where(
            WebhookEvent.id == row_id, WebhookEvent.status == WebhookStatus.RECEIVED,
            WebhookEvent.error.is_distinct_from(why)).values(error=why))
        db.session.commit()
    except sa.exc.SQLAlchemyError:  # the reason is a courtesy; the log has the error already
        db.session.rollback()


def _payment_intent_of(event: dict) -> str | None:
    value = event["data"]["object"].get("payment_intent")
    if isinstance(value, dict):
        value = value.get("id")
    return value[:255] if isinstance(value, str) else None


def _charge_of(obj: dict) -> str | None:
    value = obj.get("id") if obj.get("object") == "charge" else obj.get("charge")
    if isinstance(value, dict):
        value = value.get("id")
    return value[:255] if isinstance(value, str) else None


def _expected_livemode() -> bool:
    return ledger.money_mode()


def _process(row: WebhookEvent, event: dict) -> None:
    handler = HANDLERS.get(event["type"])
    reason = _ignored_because(event)
    if reason is not None:
        status, error = WebhookStatus.IGNORED, reason if handler else None
    else:
        # So that a replay of early events does not pick this one up. Most handlers end here too:
        # then this is the row's one UPDATE (below, only what the handler changed is written).
        row.status, row.processed_at = WebhookStatus.PROCESSED, utcnow()
        db.session.flush()
        if event["type"] not in SESSION_EVENTS:
            # Refunds and disputes read and change money: serialised by the money lock, taken
            # before the donation is looked up (so a payment committed meanwhile is seen, and an
            # event kept unmatched here is seen by that payment's replay). Session events lock
            # their pledge's row instead, and the money lock only to book (record_stripe_payment).
            ledger.lock_money()
        savepoint = db.session.begin_nested()
        mark, notices = queued_receipts_mark(), subscriptions.notices_mark()
        created = event.get("created")
        token = _event_created.set(created if isinstance(created, int) and not isinstance(created, bool) else 0)
        try:
            status, error = handler(event["data"]["object"], event["id"]), None
            savepoint.commit()
        except (Unprocessable, LookupError, TypeError, ValueError, AttributeError, DomainError,
                sa.exc.DataError) as exc:
            savepoint.rollback()
            drop_queued_receipts(mark)
            subscriptions.drop_notices(notices)
            log.warning("Stripe event %s could not be processed: %s", event["id"], exc)
            status, error = WebhookStatus.FAILED, str(exc)[:1000] or type(exc).__name__
        finally:
            _event_created.reset(token)
    if (row.status, row.error) != (status, error) or row.processed_at is None:
        row.status, row.error, row.processed_at = status, error, utcnow()
        db.session.flush()


def _string(obj: dict, key: str, *, max_len: int = 255, required: bool = False) -> str | None:
    value = obj.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not 1 <= len(value) <= max_len:
        raise Unprocessable(f"{key} is not a string of 1 to {max_len} characters")
    return value


def _object(obj: dict, key: str) -> dict:
    value = obj.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise Unprocessable(f"{key} is not an object")
    return value


def _pledge_for_session(obj: dict) -> Pledge | None:
    """The session's pledge, its row locked: events of one checkout (paid, expired, failed...) are
    applied one at a time, while other pledges' events go on in parallel."""
    session_id = _string(obj, "id", required=True)
    ref = _string(obj, "client_reference_id", max_len=4096) or _object(obj, "metadata").get("pledge_id")
    # The campaign, its tiers and rewards come from the process's snapshot (campaign_of).
    pledge = db.session.scalars(
        sa.select(Pledge).where(Pledge.checkout_session_id == session_id)
        .with_for_update(key_share=True)
        .execution_options(populate_existing=True)).first()  # its state as committed now
    if pledge is None and isinstance(ref, str) and len(ref) <= 32:
        pledge = db.session.get(Pledge, ref, with_for_update={"key_share": True}, populate_existing=True)
    return pledge


def _session_paid(obj: dict, event_id: str) -> WebhookStatus:
    pledge = _pledge_for_session(obj)
    if pledge is None:
        return WebhookStatus.UNMATCHED
    currency = (_string(obj, "currency", max_len=3) or "").lower()
    campaign = campaign_of(pledge)
    _check_currency(currency, pledge, campaign)
    amount = obj.get("amount_total")
    if isinstance(amount, bool) or not isinstance(amount, int) or not 0 < amount <= MAX_AMOUNT:
        raise Unprocessable(f"amount_total is not a whole number of cents from 1 to {MAX_AMOUNT}")
    flags = [] if pledge.checkout_session_id in (None, obj["id"]) else ["session_mismatch"]
    email = _object(obj, "customer_details").get("email") or obj.get("customer_email")
    email = email if isinstance(email, str) and len(email) <= 254 else None
    pi = _payment_intent_of({"data": {"object": obj}})
    donation = payments.record_stripe_payment(pledge, campaign, amount=amount, currency=currency,
                                              payment_intent_id=pi, session_id=obj["id"], email=email,
                                              stripe_event_id=event_id, flags=flags)
    if donation is not None:
        # A DVD tier's shipping address, if collected (filmfund.fulfil keeps it): the first gift's
        # is the donor's; a later gift's waits for the email owner's confirmation, whose link its
        # receipt must carry.
        if signals.checkout_paid_pending(donation, obj):
            recompose_queued_receipt(donation)
    if donation is not None and pi and _replay_unmatched(WebhookEvent.payment_intent_id == pi):
        recompose_queued_receipt(donation)  # an early refund or dispute: the receipt says what the gift now does
    return WebhookStatus.PROCESSED


def _check_currency(currency: str, pledge: Pledge, campaign) -> None:
    """A payment is booked in the currency its pledge asked Checkout for. The campaign's currency
    cannot change while a pledge's checkout may still be paid (campaign.load_campaign), so the two
    agree for every payment Stripe can still make; if they do not, the paid money waits (the event
    stays to be booked, in the producers' inbox) rather than be booked in another currency or lost."""
    if currency != pledge.currency:
        raise Unprocessable(f"paid in {currency or 'no currency'}, the pledge asked for {pledge.currency}")
    if pledge.currency != campaign.currency:
        raise CampaignCurrencyChanged(f"paid in {currency} as pledge {pledge.id} asked, but the campaign now "
                                      f"takes {campaign.currency}: load it in {currency} again to book it")


def _replay_unmatched(match, types: tuple[str, ...] | None = None) -> int:
    """Apply the charge, refund and dispute events that arrived before their payment (or before
    its charge id was known), in arrival order. Returns how many there were."""
    early = db.session.scalars(sa.select(WebhookEvent).where(
        match, WebhookEvent.status == WebhookStatus.UNMATCHED,
        WebhookEvent.type.in_(types or PAYMENT_EVENTS)).order_by(WebhookEvent.received_at, WebhookEvent.id)).all()
    for row in early:
        _process(row, json.loads(row.payload))
    return len(early)


def on_session_completed(obj: dict, event_id: str) -> WebhookStatus:
    if obj.get("mode") == "subscription":
        return _subscription_session(obj, event_id)
    if obj.get("payment_status") in ("paid", "no_payment_required"):
        return _session_paid(obj, event_id)
    pledge = _pledge_for_session(obj)
    if pledge is None:
        return WebhookStatus.UNMATCHED
    # Paid by a delayed method (bank debit...): nothing counts until async_payment_succeeded.
    if pledge.state == PledgeState.PENDING:
        pledge.move(PledgeState.PROCESSING)
    pledge.payment_intent_id = pledge.payment_intent_id or _payment_intent_of({"data": {"object": obj}})
    return WebhookStatus.PROCESSED


def on_async_succeeded(obj: dict, event_id: str) -> WebhookStatus:
    return _session_paid(obj, event_id)


def on_async_failed(obj: dict, event_id: str) -> WebhookStatus:
    return _end_pledge(obj, PledgeState.FAILED)


def on_session_expired(obj: dict, event_id: str) -> WebhookStatus:
    return _end_pledge(obj, PledgeState.EXPIRED)


# ---------------------------------------------------------------- monthly gifts

def _subscription_session(obj: dict, event_id: str) -> WebhookStatus:
    """A monthly gift's Checkout completed: it names the subscription; its money comes only with the
    invoice (`invoice.paid`, before or after this), so the first month is counted once."""
    pledge = _pledge_for_session(obj)
    if pledge is None:
        return WebhookStatus.UNMATCHED
    if pledge.interval != subscriptions.INTERVAL:
        raise Unprocessable("a subscription checkout for a one-time pledge")
    sub_id = subscriptions._id_of(obj.get("subscription"))
    if sub_id is None:
        raise Unprocessable("subscription is missing")
    email = _object(obj, "customer_details").get("email") or obj.get("customer_email")
    user = payments.donor_for(email if isinstance(email, str) and len(email) <= 254 else None, pledge)
    subscriptions.ensure_subscription(pledge, sub_id, customer_id=subscriptions._id_of(obj.get("customer")),
                                      user_id=user.id, event_time=_event_created.get())
    return WebhookStatus.PROCESSED


def _monthly_pledge(pledge_id: str | None, sub_id: str | None) -> Pledge | None:
    pledge = subscriptions.pledge_of(pledge_id, sub_id)
    if pledge is not None and pledge.interval != subscriptions.INTERVAL:
        raise Unprocessable(f"pledge {pledge.id} is not a monthly gift")
    return pledge


def on_invoice_paid(obj: dict, event_id: str) -> WebhookStatus:
    """One month paid: a donation, booked by the one booking path, counted once by its invoice."""
    facts = subscriptions.invoice_facts(obj)
    if facts.subscription_id is None and facts.pledge_id is None:
        return WebhookStatus.IGNORED  # an invoice of something else than a monthly gift
    pledge = _monthly_pledge(facts.pledge_id, facts.subscription_id)
    if pledge is None:
        return WebhookStatus.UNMATCHED
    if facts.subscription_id is None:
        raise Unprocessable("the invoice names no subscription")
    if facts.amount_paid == 0:
        # Nothing was paid (a free month, or one settled from the customer's credit balance):
        # nothing to count, but the month is settled, so a gift that was past due is active again.
        sub = subscriptions.subscription_of(pledge)
        if sub is not None and sub.stripe_subscription_id == facts.subscription_id:
            subscriptions.note_state(sub, SubscriptionState.ACTIVE, _event_created.get())
            subscriptions.note_period_end(sub, facts.period_end)
        return WebhookStatus.PROCESSED
    if not 0 < facts.amount_paid <= MAX_AMOUNT:
        raise Unprocessable(f"amount_paid is not a whole number of cents from 1 to {MAX_AMOUNT}")
    campaign = campaign_of(pledge)
    _check_currency(facts.currency, pledge, campaign)
    created = _event_created.get()
    user = payments.donor_for(facts.email, pledge)
    sub = subscriptions.ensure_subscription(pledge, facts.subscription_id, customer_id=facts.customer_id,
                                            user_id=user.id, event_time=created)
    subscriptions.note_amount(sub, facts.monthly_amount, created)
    subscriptions.note_state(sub, SubscriptionState.ACTIVE, created)
    subscriptions.note_period_end(sub, facts.period_end)
    donation = payments.record_stripe_payment(
        pledge, campaign, amount=facts.amount_paid, currency=facts.currency,
        payment_intent_id=facts.payment_intent_id, session_id=None, email=facts.email, stripe_event_id=event_id,
        flags=[], invoice_id=facts.id, subscription=sub, charge_id=facts.charge_id, first_month=facts.first)
    if donation is not None:
        linked = _replay_unmatched(WebhookEvent.payload.contains(json.dumps(facts.id), autoescape=True),
                                   ("invoice_payment.paid",))  # which replays the month's early refunds itself
        if _replay_payment_events(donation) + linked:
            recompose_queued_receipt(donation)  # an early refund or dispute: the receipt says what the month now does
    return WebhookStatus.PROCESSED


def _replay_payment_events(donation: Donation) -> int:
    replayed = 0
    if donation.payment_intent_id:
        replayed += _replay_unmatched(WebhookEvent.payment_intent_id == donation.payment_intent_id)
    if donation.charge_id:
        replayed += _replay_unmatched(WebhookEvent.charge_id == donation.charge_id)
    return replayed


def on_invoice_payment_paid(obj: dict, event_id: str) -> WebhookStatus:
    """API 2025-03-31 on: an invoice no longer names its payment intent; this event does (refunds
    and disputes of that month are matched by it)."""
    invoice_id = subscriptions._id_of(obj.get("invoice"))
    payment = _object(obj, "payment")
    pi, charge = subscriptions._id_of(payment.get("payment_intent")), subscriptions._id_of(payment.get("charge"))
    if invoice_id is None:
        raise Unprocessable("invoice is missing")
    donation = db.session.scalar(sa.select(Donation).where(Donation.invoice_id == invoice_id))
    if donation is None:
        return WebhookStatus.UNMATCHED  # replayed when the invoice's month is booked
    if pi and donation.payment_intent_id is None:
        donation.payment_intent_id = pi
    if charge and donation.charge_id is None:
        donation.charge_id = charge
    db.session.flush()
    _replay_payment_events(donation)
    return WebhookStatus.PROCESSED


def on_invoice_payment_failed(obj: dict, event_id: str) -> WebhookStatus:
    """A month could not be charged: nothing is booked; the gift is past due while Stripe retries
    on its own schedule (we never charge again ourselves), and the donor is told what to do once,
    at the first failed attempt of that invoice. A failure that Stripe's own retry has already
    overtaken (the invoice is paid and booked, or the gift heard of something later) changes
    nothing and mails nobody: events come in any order."""
    facts = subscriptions.invoice_facts(obj)
    if facts.subscription_id is None and facts.pledge_id is None:
        return WebhookStatus.IGNORED
    pledge = _monthly_pledge(facts.pledge_id, facts.subscription_id)
    if pledge is None:
        return WebhookStatus.UNMATCHED
    sub = db.session.scalar(sa.select(subscriptions.Subscription).where(
        subscriptions.Subscription.pledge_id == pledge.id))
    if sub is None:
        # The first payment failed inside Checkout: the donor saw it there; no gift began.
        return WebhookStatus.PROCESSED
    if db.session.scalar(sa.select(sa.exists().where(Donation.invoice_id == facts.id))):
        return WebhookStatus.PROCESSED  # that month was paid after all (a retry), and is booked
    created = _event_created.get()
    if created < sub.state_at:
        return WebhookStatus.PROCESSED  # older than what the gift knows: a later event said otherwise
    before = sub.state
    subscriptions.note_amount(sub, facts.monthly_amount, created)
    subscriptions.note_state(sub, SubscriptionState.PAST_DUE, created)
    if facts.attempt_count <= 1 and before != SubscriptionState.CANCELED:
        subscriptions.queue_notice(subscriptions.payment_failed_notice(sub, facts))
    return WebhookStatus.PROCESSED


def _subscription_event(obj: dict, deleted: bool) -> WebhookStatus:
    sub_id = _string(obj, "id", required=True)
    pledge_id = _object(obj, "metadata").get("pledge_id")
    pledge = _monthly_pledge(pledge_id if isinstance(pledge_id, str) and len(pledge_id) <= 32 else None, sub_id)
    if pledge is None:
        return WebhookStatus.UNMATCHED
    status = obj.get("status")
    state = SubscriptionState.CANCELED if deleted else subscriptions.STRIPE_STATES.get(status)
    sub = db.session.scalar(sa.select(subscriptions.Subscription).where(
        subscriptions.Subscription.pledge_id == pledge.id))
    if sub is None:
        if state is None:
            return WebhookStatus.PROCESSED  # incomplete: nothing began yet
        sub = subscriptions.ensure_subscription(pledge, sub_id, customer_id=subscriptions._id_of(obj.get("customer")),
                                                user_id=payments.donor_for(None, pledge).id,
                                                event_time=_event_created.get())
    if state is not None:
        # A price changed in Stripe's Dashboard: the gift's amount from now on (older news never undoes newer).
        subscriptions.note_amount(sub, subscriptions.subscription_amount(obj), _event_created.get())
        subscriptions.note_state(sub, state, _event_created.get())
    if not deleted:
        subscriptions.note_period_end(sub, subscriptions.subscription_period_end(obj))
    return WebhookStatus.PROCESSED


def on_subscription_updated(obj: dict, event_id: str) -> WebhookStatus:
    return _subscription_event(obj, deleted=False)


def on_subscription_deleted(obj: dict, event_id: str) -> WebhookStatus:
    return _subscription_event(obj, deleted=True)


def _end_pledge(obj: dict, state: PledgeState) -> WebhookStatus:
    pledge = _pledge_for_session(obj)
    if pledge is None:
        return WebhookStatus.UNMATCHED
    if pledge.can_move(state):  # a late "failed" never undoes a payment already counted
        pledge.move(state)
        stock.release_pledge(pledge.id)  # an abandoned checkout keeps no limited item
    return WebhookStatus.PROCESSED


def _donation_for(obj: dict) -> Donation | None:
    """By payment intent; a dispute without one by its charge, once a charge event named it."""
    pi, charge = _payment_intent_of({"data": {"object": obj}}), _charge_of(obj)
    donation = db.session.scalar(sa.select(Donation).where(Donation.payment_intent_id == pi)) if pi else None
    if donation is None and charge:
        donation = db.session.scalar(sa.select(Donation).where(Donation.charge_id == charge))
    if donation is not None and charge and donation.charge_id is None and obj.get("object") == "charge":
        donation.charge_id = charge
        db.session.flush()
        _replay_unmatched(WebhookEvent.charge_id == charge)
    return donation


def on_charge_succeeded(obj: dict, event_id: str) -> WebhookStatus:
    """Only teaches us the charge id of a payment (disputes may name nothing else)."""
    return WebhookStatus.UNMATCHED if _donation_for(obj) is None else WebhookStatus.PROCESSED


def _event_time() -> int:
    """The booked event's `created` (unix seconds), or now for an event that has none."""
    return _event_created.get() or int(time.time())


def _cents(obj: dict, key: str, low: int) -> int:
    value = obj.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= MAX_AMOUNT:
        raise Unprocessable(f"{key} is not a whole number of cents from {low} to {MAX_AMOUNT}")
    return value


FAILED_REFUND = ("failed", "canceled")  # a refund's statuses whose money went back to the balance


def _refund_failure(refund: dict) -> rules.RefundFailure | None:
    """A Refund object's failure (its money went back), or None if it has not failed."""
    if refund.get("status") not in FAILED_REFUND:
        return None
    created = refund.get("created")
    return rules.RefundFailure(_string(refund, "id", required=True), _cents(refund, "amount", 1), _event_time(),
                               created if isinstance(created, int) and not isinstance(created, bool) else None)


def on_charge_refunded(obj: dict, event_id: str) -> WebhookStatus:
    """A charge's cumulative `amount_refunded` (charge.refunded, charge.updated). A charge of an API
    version that lists its refunds (before 2022-11-15) also names those that failed."""
    donation = _donation_for(obj)
    if donation is None:
        return WebhookStatus.UNMATCHED
    refunded = _cents(obj, "amount_refunded", 0)
    listed = [r for r in (_object(obj, "refunds").get("data") or []) if isinstance(r, dict)]
    failures = [f for f in map(_refund_failure, listed) if f is not None]
    payments.apply_refund(donation, refunded, event_id, reported_at=_event_time(), failures=failures)
    return WebhookStatus.PROCESSED


def on_refund_updated(obj: dict, event_id: str) -> WebhookStatus:
    """A Refund changed (refund.failed, refund.updated, charge.refund.updated): one that failed or
    was canceled after it was made gives its money back to the books."""
    failure = _refund_failure(obj)
    if failure is None:
        return WebhookStatus.PROCESSED  # made or pending: charge.refunded counts it
    donation = _donation_for(obj)
    if donation is None:
        return WebhookStatus.UNMATCHED
    reason, request = obj.get("failure_reason"), _object(obj, "metadata").get("refund_request")
    payments.apply_refund_failure(donation, failure, event_id, reason=reason[:100] if isinstance(reason, str) else "",
                                  request=request if isinstance(request, str) else None)
    return WebhookStatus.PROCESSED


def _dispute_amount(obj: dict, required: bool) -> int | None:
    """What the dispute is about (Stripe withdraws it if the dispute is lost): part of a gift, maybe."""
    if obj.get("amount") is None and not required:
        return None
    return _cents(obj, "amount", 1)


def on_dispute_created(obj: dict, event_id: str) -> WebhookStatus:
    donation = _donation_for(obj)
    if donation is None:
        return WebhookStatus.UNMATCHED
    payments.apply_dispute(donation, DisputeStatus.OPEN, event_id, _dispute_amount(obj, required=False))
    return WebhookStatus.PROCESSED


def on_dispute_closed(obj: dict, event_id: str) -> WebhookStatus:
    donation = _donation_for(obj)
    if donation is None:
        return WebhookStatus.UNMATCHED
    # Stripe closes a dispute as won, lost, or warning_closed (an inquiry that went no further).
    if not isinstance(obj.get("status"), str):
        raise Unprocessable("status is not a string")
    status = DisputeStatus.LOST if obj["status"] == "lost" else DisputeStatus.WON
    # A lost dispute takes its amount, which may be part of the gift: without it nothing is booked.
    payments.apply_dispute(donation, status, event_id, _dispute_amount(obj, required=status == DisputeStatus.LOST))
    return WebhookStatus.PROCESSED


HANDLERS = {
    "checkout.session.completed": on_session_completed,
    "checkout.session.async_payment_succeeded": on_async_succeeded,
    "checkout.session.async_payment_failed": on_async_failed,
    "checkout.session.expired": on_session_expired,
    "charge.succeeded": on_charge_succeeded,
    "charge.refunded": on_charge_refunded,
    "charge.updated": on_charge_refunded,
    "refund.failed": on_refund_updated,
    "refund.updated": on_refund_updated,
    "charge.refund.updated": on_refund_updated,
    "charge.dispute.created": on_dispute_created,
    "charge.dispute.closed": on_dispute_closed,
    "invoice.paid": on_invoice_paid,
    "invoice.payment_failed": on_invoice_payment_failed,
    "invoice_payment.paid": on_invoice_payment_paid,
    "customer.subscription.updated": on_subscription_updated,
    "customer.subscription.deleted": on_subscription_deleted,
}
SESSION_EVENTS = tuple(t for t in HANDLERS if t.startswith("checkout.session."))
PAYMENT_EVENTS = ("charge.succeeded", "charge.refunded", "charge.updated", "refund.failed", "refund.updated",
                  "charge.refund.updated", "charge.dispute.created", "charge.dispute.closed")


@bp.post("/webhooks/stripe")
def stripe_webhook():
    if (request.content_length or 0) > MAX_PAYLOAD:  # refuse before reading a huge body
        raise DomainError(_("A Stripe event is never larger than %(n)s bytes.", n=MAX_PAYLOAD), code="too_large", status=413)
    return jsonify(handle_stripe_webhook(request.get_data(cache=False), request.headers.get("Stripe-Signature")))


# ---------------------------------------------------------------- test mode

def stripe_event(type_: str, obj: dict, *, livemode: bool = False) -> dict:
    """An event envelope shaped like Stripe's (see stripe/openapi fixtures3.json)."""
    return {"id": f"evt_test_local_{new_id()}", "object": "event", "api_version": "2024-06-20",
            "created": int(time.time()), "data": {"object": obj}, "livemode": livemode, "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None}, "type": type_}


def session_object(pledge: Pledge, *, payment_status: str, status: str = "complete",
                   amount: int | None = None, shipping: dict | None = None) -> dict:
    obj = {
        "id": pledge.checkout_session_id or f"cs_test_local_{pledge.id}", "object": "checkout.session",
        "amount_subtotal": amount or pledge.amount, "amount_total": amount or pledge.amount,
        "client_reference_id": pledge.id, "created": int(pledge.created_at.timestamp()),
        "currency": pledge.currency, "customer_details": {"email": pledge.email, "name": None},
        "customer_email": pledge.email, "expires_at": int(pledge.created_at.timestamp()) + 86400,
        "livemode": False, "metadata": {"pledge_id": pledge.id}, "mode": "payment",
        "payment_intent": None if status == "expired" else f"pi_test_local_{pledge.id}",
        "payment_status": payment_status, "status": status, "url": None,
    }
    if shipping:  # as Stripe reports an address collected by shipping_address_collection
        details = {"name": shipping.get("name"), "address": {
            k: shipping.get(k) or None for k in ("line1", "line2", "city", "state", "postal_code", "country")}}
        obj["collected_information"] = {"shipping_details": details}
        obj["shipping_details"] = details
    return obj


def charge_object(pledge: Pledge, amount_refunded: int) -> dict:
    return {"id": f"ch_test_local_{pledge.id}", "object": "charge", "amount": pledge.amount,
            "amount_captured": pledge.amount, "amount_refunded": amount_refunded, "currency": pledge.currency,
            "livemode": False, "paid": True, "payment_intent": f"pi_test_local_{pledge.id}",
            "refunded": amount_refunded >= pledge.amount, "status": "succeeded", "metadata": {"pledge_id": pledge.id}}


BOOKING_BATCH = 100  # events a drain reads at a time (a storm drains in batches)

# One drain of the waiting events per worker process at a time. Bookings of a campaign queue on
# its running-total row whatever the threads, so a second booking thread added contention (the
# two waited on each other's row lock), not throughput; and a storm's later tasks found their
# events booked by an earlier task's batch, and each still claimed its own and read the waiting
# list for nothing. A task that finds this process's drain running leaves its event to it: the
# drain reads the waiting list again until a batch books nothing, and again after it lets go if
# a task came meanwhile (`_more_waiting`, set before the try). Other worker processes drain
# beside it: their claims skip each other's rows.
_drain = threading.Lock()
_more_waiting = threading.Event()


@jobs.app_task(lane=jobs.mail, priority=jobs.URGENT, retries=3, retry_delay=5)
def book_stripe_event(row_id: int) -> int:
    """A stored Stripe event (`row_id`), booked by a worker with every other event still waiting
    (each in its own transaction, so the money lock is held for one booking at a time). Returns
    how many this task booked: 0 when this process's drain took them."""
    return drain_waiting()


def drain_waiting() -> int:
    """Book every event waiting, unless this process's drain is running (it then books them).
    Returns how many this call booked."""
    booked = 0
    _more_waiting.set()
    while _more_waiting.is_set():
        if not _drain.acquire(blocking=False):
            return booked  # the running drain sees `_more_waiting` before it ends
        try:
            _more_waiting.clear()
            # Until a batch books nothing: none waiting, or the rest held by another worker
            # (whose own drain goes on until it books nothing).
            while done := book_pending(limit=BOOKING_BATCH):
                booked += done
        finally:
            _drain.release()
    return booked


@jobs.mail.periodic_task(crontab(minute="*"), name="filmfund.rewards.sweep_stripe_events")
def sweep_stripe_events() -> int:
    """Every minute: book the events whose task was lost (queue down, worker killed mid-booking:
    its transaction rolled back, so the event is still `received`)."""
    return jobs.in_worker_app(lambda: book_pending_older(30))


def book_pending_older(seconds: int) -> int:
    return book_pending(limit=1000, older_than=seconds)


# An event is booked within a second while a worker runs, and the minute sweep books those whose
# task was lost: one still waiting after this long needs a look (no worker, or a booking failing).
STUCK_AFTER = timedelta(minutes=3)


def list_stuck_events(limit: int = 50) -> list[WebhookEvent]:
    """The events still waiting to be booked that a producer should know of, newest first: those
    whose last booking failed (their `error` says why) and those waiting for longer than
    `STUCK_AFTER`. Found by the (status, received_at) index: the rows still waiting, no more."""
    stmt = _newest_first(limit).where(
        WebhookEvent.status == WebhookStatus.RECEIVED,
        sa.or_(WebhookEvent.error.is_not(None), WebhookEvent.received_at < utcnow() - STUCK_AFTER))
    return list(db.session.scalars(stmt))


def _newest_first(limit: int) -> sa.Select:
    return sa.select(WebhookEvent).order_by(WebhookEvent.received_at.desc(), WebhookEvent.id.desc()).limit(limit)


def list_webhook_events(status: str | None = None, limit: int = 200) -> list[WebhookEvent]:
    """The events received, newest first (the dashboard's inbox), of one status if given."""
    stmt = _newest_first(limit)
    if status:
        stmt = stmt.where(WebhookEvent.status == WebhookStatus(status))
    return list(db.session.scalars(stmt))


TEST_OUTCOMES = {
    "paid": lambda p: ("checkout.session.completed", session_object(p, payment_status="paid")),
    "processing": lambda p: ("checkout.session.completed", session_object(p, payment_status="unpaid")),
    "succeeded": lambda p: ("checkout.session.async_payment_succeeded", session_object(p, payment_status="paid")),
    "failed": lambda p: ("checkout.session.async_payment_failed", session_object(p, payment_status="unpaid")),
    "expired": lambda p: ("checkout.session.expired",
                          session_object(p, payment_status="unpaid", status="expired")),
    "refunded": lambda p: ("charge.refunded", charge_object(p, p.amount)),
}


def monthly_session_object(pledge: Pledge) -> dict:
    """A monthly gift's completed Checkout, as Stripe reports it (mode subscription)."""
    obj = session_object(pledge, payment_status="paid")
    obj.update(mode="subscription", payment_intent=None, subscription=f"{subscriptions.TEST_PREFIX}{pledge.id}",
               customer=f"cus_test_local_{pledge.id}")
    return obj


def monthly_invoice_object(pledge: Pledge, month: int, *, paid: bool = True) -> dict:
    """Month `month` (1: the first) of a test-mode monthly gift: an invoice as API 2024-06-20
    writes it (the version of the local events' envelope)."""
    start = int(pledge.created_at.timestamp()) + (month - 1) * 30 * 86400
    key = f"{pledge.id}_{month}"
    return {"id": f"in_test_local_{key}", "object": "invoice", "amount_due": pledge.amount,
            "amount_paid": pledge.amount if paid else 0, "amount_remaining": 0 if paid else pledge.amount,
            "attempt_count": 1, "attempted": True, "billing_reason": "subscription_create" if month == 1
            else "subscription_cycle", "charge": f"ch_test_local_{key}", "currency": pledge.currency,
            "customer": f"cus_test_local_{pledge.id}", "customer_email": pledge.email, "livemode": False,
            "hosted_invoice_url": None, "paid": paid, "payment_intent": f"pi_test_local_{key}",
            "status": "paid" if paid else "open", "subscription": f"{subscriptions.TEST_PREFIX}{pledge.id}",
            "subscription_details": {"metadata": {"pledge_id": pledge.id}},
            "lines": {"object": "list", "data": [{
                "amount": pledge.amount, "currency": pledge.currency, "metadata": {"pledge_id": pledge.id},
                "period": {"start": start, "end": start + 30 * 86400}, "type": "subscription"}]}}


def _months_paid(pledge: Pledge) -> int:
    return db.session.scalar(sa.select(sa.func.count(Donation.id)).join(
        subscriptions.Subscription, Donation.subscription_id == subscriptions.Subscription.id).where(
        subscriptions.Subscription.pledge_id == pledge.id)) or 0


def _monthly_test_events(pledge: Pledge, outcome: str) -> list[tuple[str, dict]]:
    """A monthly gift's test checkout sends what Stripe sends: the completed session and the first
    paid invoice; later buttons (the test-mode account) a renewal, a failed renewal."""
    if outcome == "paid":
        return [("checkout.session.completed", monthly_session_object(pledge)),
                ("invoice.paid", monthly_invoice_object(pledge, 1))]
    if outcome == "renewed":
        return [("invoice.paid", monthly_invoice_object(pledge, _months_paid(pledge) + 1))]
    if outcome == "renewal_failed":
        return [("invoice.payment_failed", monthly_invoice_object(pledge, _months_paid(pledge) + 1, paid=False))]
    if outcome == "expired":
        return [TEST_OUTCOMES["expired"](pledge)]
    raise ValidationError(_("outcome: one of %(outcomes)s.", outcomes="paid, renewed, renewal_failed, expired"),
                          code="invalid_outcome")


def complete_test_checkout(pledge_id: str, outcome: str, shipping: dict | None = None) -> dict:
    """The local checkout page's buttons: send a signed Stripe-shaped event through the very same
    handler the HTTP endpoint uses. Only in test mode, only for test-mode sessions."""
    if not current_app.config["STRIPE_TEST_MODE"]:
        raise ForbiddenError(_("The test checkout exists only in test mode (no STRIPE_SECRET_KEY)."))
    if has_request_context():  # a visitor's click; the CLI and the tests call this from this machine
        refusal = test_payment_refusal(current_app.config, request.remote_addr, request.host)
        if refusal:
            raise ForbiddenError(refusal, code="test_payments_refused")
    pledge = get_pledge(pledge_id)
    if not (pledge.checkout_session_id or "").startswith("cs_test_local_"):
        raise ForbiddenError(_("This pledge was not made in test mode."))
    if pledge.interval == subscriptions.INTERVAL:
        answer: dict = {}
        for type_, obj in _monthly_test_events(pledge, outcome):
            payload = json.dumps(stripe_event(type_, obj)).encode()
            answer = handle_stripe_webhook(payload, sign_payload(payload, current_app.config["STRIPE_WEBHOOK_SECRET"]),
                                           inline=True)
        return answer
    if outcome not in TEST_OUTCOMES:
        raise ValidationError(_("outcome: one of %(outcomes)s.", outcomes=", ".join(TEST_OUTCOMES)), code="invalid_outcome")
    type_, obj = TEST_OUTCOMES[outcome](pledge)
    if shipping and type_.startswith("checkout.session."):
        obj = session_object(pledge, payment_status=obj["payment_status"], status=obj["status"], shipping=shipping)
    payload = json.dumps(stripe_event(type_, obj)).encode()
    # Booked at once: the local checkout's buttons lead straight to the thank-you page.
    return handle_stripe_webhook(payload, sign_payload(payload, current_app.config["STRIPE_WEBHOOK_SECRET"]),
                                 inline=True)
