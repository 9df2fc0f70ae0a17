"""The periodic queue tasks of filmfund.comms; each commits what it did (the use cases do not).

- `sweep_deliveries` (hourly) closes the claims of dead workers and re-queues updates whose job
  was lost.
- `send_reminders` (hourly; its body `run_reminders`) invites the donors who reached an
  experience's tier since, then mails each reminder due once.

A mailing is a loop in its task rather than in its use case: each mail's claim is committed before
the mail goes out, and what became of it before the next one, so a crash, a retry or a second
worker never mails a donor twice (the use cases give the steps: claim, send, give back).

The tasks a use case enqueues are declared beside it (queueing.mail_task), so that no use case
imports this module: an update's mailing (updates.deliver_update), an answer's notice
(questions.notify_answer), the invitations' mailing (invitations.mail_invitations) and a reply's
notice (arrangements.notify_reply).
"""
from __future__ import annotations

import logging
from datetime import datetime

from flask import has_app_context
from huey import crontab

from filmfund import jobs
from filmfund.comms import invitations, updates
from filmfund.db import utcnow
from filmfund.extensions import db

log = logging.getLogger(__name__)


@jobs.mail.periodic_task(crontab(minute="23"), name="filmfund.comms.sweep_deliveries")
def sweep_deliveries() -> dict:
    if has_app_context():
        return _sweep_deliveries()
    if jobs._worker_app is None:
        log.warning("delivery sweep skipped: no app (start it through `filmfund worker`)")
        return {}
    with jobs._worker_app.app_context():
        try:
            return _sweep_deliveries()
        finally:
            db.session.remove()


def _sweep_deliveries() -> dict:
    swept = updates.sweep_deliveries()
    db.session.commit()  # the dead workers' claims closed; the lost jobs queued again
    return swept


def run_reminders(now: datetime | None = None) -> dict[str, int]:
    """The hourly reminders (send_reminders), at `now`: first the invitations of donors who
    reached an experience's tier since (committed, their mail queued), then each reminder due at
    most once, its claim committed before its mail goes out. Donors who opted out of reminders
    are skipped (and not reminded later); a failed mail is logged and given back to the next sweep."""
    now = now or utcnow()
    done = {"rsvp": 0, "soon": 0, "skipped": 0, "invited": invitations.invite_new_holders(now)}
    db.session.commit()  # the new invitations, and the job that mails them
    for kind, inv_id in invitations.due_reminders(now):
        column = invitations.REMINDERS[kind][0]
        claimed = invitations.claim(inv_id, column)
        db.session.commit()  # claimed before the mail goes out: each reminder goes once
        if not claimed:
            continue
        try:
            if invitations.remind(inv_id, kind):
                done[kind] += 1
            else:
                done["skipped"] += 1
        except Exception:
            log.exception("reminder for invitation %s failed; the next sweep tries again", inv_id)
            invitations.release(inv_id, column)
            db.session.commit()  # given back, to the next sweep
    return done


@jobs.mail.periodic_task(crontab(minute="7"), name="filmfund.comms.send_reminders")
def send_reminders() -> dict:
    if has_app_context():
        return run_reminders()
    if jobs._worker_app is None:
        log.warning("reminders skipped: no app (start it through `filmfund worker`)")
        return {}
    with jobs._worker_app.app_context():
        try:
            return run_reminders()
        finally:
            db.session.remove()
