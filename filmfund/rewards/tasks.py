"""The periodic schedule of the donations spine that belongs to no one use case. Tasks that run a
use case are declared beside it: receipts.py (retry_receipt, sweep_receipts) and webhooks.py
(book_stripe_event, sweep_stripe_events)."""
from __future__ import annotations

from huey import crontab

from filmfund import jobs
from filmfund.rewards import ledger_check


@jobs.huey.periodic_task(crontab(minute="17"), name="filmfund.rewards.scheduled_ledger_check")
def scheduled_ledger_check() -> int:
    """Hourly: `ledger check`, its result kept for the producers' dashboard. Returns the breaches."""
    return jobs.in_worker_app(lambda: len(ledger_check.check_ledger(record="schedule")))
