"""Queue tasks of the donations spine: receipts that could not be sent are retried.

A receipt whose send failed (mail server down) gets its own retry task, with exponential
backoff (after 1, 2, 4 ... 256 minutes: huey's retry_delay and retry_backoff, kept in the
queue's storage so they survive a restart). Behind them, an hourly sweep sends every receipt still
unsent (retries exhausted, or a queue that was lost). Either way a receipt is claimed
atomically before it is mailed, so it goes out once.
"""
from __future__ import annotations

import logging
from datetime import timedelta

from flask import has_app_context
from huey import crontab

from filmfund import jobs
from filmfund.jobs import app_task

log = logging.getLogger(__name__)

BOOKING_BATCH = 100  # events a booking task books after its own (a storm drains in batches)
RETRY_DELAY = 60  # seconds before the first retry; doubled after each failure
RETRIES = 8


class ReceiptNotSent(Exception):
    """Raised so that huey schedules the next try."""


@app_task(retries=RETRIES, retry_delay=2 * RETRY_DELAY, retry_backoff=2)
def retry_receipt(donation_id: int) -> None:
    from filmfund.rewards import receipts

    if not receipts.send_receipt_once(donation_id):
        raise ReceiptNotSent(f"receipt of donation {donation_id}: the mail server refused or is down")


def retry_receipt_later(donation_id: int) -> None:
    """The first retry, RETRY_DELAY from now. Put straight into the schedule (as huey does its own
    retries): the worker and run_burst run it when due, never early."""
    task = retry_receipt.s(donation_id)
    task.eta = jobs.huey._get_timestamp() + timedelta(seconds=RETRY_DELAY)
    jobs.huey.add_schedule(task)


@jobs.huey.periodic_task(crontab(minute="41"), name="filmfund.rewards.sweep_receipts")
def sweep_receipts() -> int:
    """Hourly: send the receipts still unsent. Runs in the caller's app context in tests, the
    worker's otherwise."""
    from filmfund.extensions import db
    from filmfund.rewards import receipts

    if has_app_context():
        return receipts.send_unsent_receipts()
    if jobs._worker_app is None:
        log.warning("receipt sweep skipped: no app (start it through `filmfund worker`)")
        return 0
    with jobs._worker_app.app_context():
        try:
            return receipts.send_unsent_receipts()
        finally:
            db.session.remove()


@app_task(retries=3, retry_delay=5)
def book_stripe_event(row_id: int) -> int:
    """A stored Stripe event, booked by a worker; then the batch of others still waiting (each in
    its own transaction, so the money lock is held for one booking at a time)."""
    from filmfund.rewards import webhooks

    booked = 1 if webhooks.book_event(row_id) else 0
    return booked + webhooks.book_pending(limit=BOOKING_BATCH)


@jobs.huey.periodic_task(crontab(minute="*"), name="filmfund.rewards.sweep_stripe_events")
def sweep_stripe_events() -> int:
    """Every minute: book the events whose task was lost (queue down, worker killed mid-booking:
    its transaction rolled back, so the event is still `received`)."""
    return _in_app(lambda: _book_pending_older(30))


def _book_pending_older(seconds: int) -> int:
    from filmfund.rewards import webhooks

    return webhooks.book_pending(limit=1000, older_than=seconds)


@jobs.huey.periodic_task(crontab(minute="17"), name="filmfund.rewards.scheduled_ledger_check")
def scheduled_ledger_check() -> int:
    """Hourly: `ledger check`, its result kept for the producers' dashboard. Returns the breaches."""
    from filmfund.rewards import ledger_check

    return _in_app(lambda: len(ledger_check.check_ledger(record="schedule")))


def _in_app(fn):
    from filmfund.extensions import db

    if has_app_context():
        return fn()
    if jobs._worker_app is None:
        log.warning("periodic task skipped: no app (start it through `filmfund worker`)")
        return 0
    with jobs._worker_app.app_context():
        try:
            return fn()
        finally:
            db.session.remove()
