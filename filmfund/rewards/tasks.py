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

RETRY_DELAY = 60  # seconds before the first retry; doubled after each failure
RETRIES = 8


class ReceiptNotSent(Exception):
    """Raised so that huey schedules the next try."""


@app_task(retries=RETRIES, retry_delay=2 * RETRY_DELAY, retry_backoff=2)
def retry_receipt(donation_id: int) -> None:
    from filmfund.rewards import services

    if not services.send_receipt_once(donation_id):
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
    from filmfund.rewards import services

    if has_app_context():
        return services.send_unsent_receipts()
    if jobs._worker_app is None:
        log.warning("receipt sweep skipped: no app (start it through `filmfund worker`)")
        return 0
    with jobs._worker_app.app_context():
        try:
            return services.send_unsent_receipts()
        finally:
            db.session.remove()
