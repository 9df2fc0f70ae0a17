"""Queue tasks of filmfund.comms: ids in; each task commits what it did (the use cases do not).

A mailing is a loop here rather than in its use case: each mail's claim is committed before the
mail goes out, and what became of it before the next one, so a crash, a retry or a second worker
never mails a donor twice (the use cases give the steps: claim, send, give back).

`deliver_update` sends an update's queued deliveries; if some sends failed (mail server down)
it raises, and huey runs it again after 1, 2, 4 ... minutes (retry_delay, retry_backoff),
kept in the queue's storage so a restart loses nothing. Each delivery row is claimed before
its mail goes out, so retries and parallel workers never send one donor the same update twice.
An hourly sweep re-queues updates whose job was lost and closes claims of dead workers.
"""
from __future__ import annotations

import logging

from flask import has_app_context
from huey import crontab

from filmfund import jobs
from filmfund.jobs import app_task

log = logging.getLogger(__name__)

RETRY_DELAY = 60


class DeliveryIncomplete(Exception):
    """Raised so that huey schedules the next try."""


@app_task(lane=jobs.mail, retries=8, retry_delay=RETRY_DELAY, retry_backoff=2)
def deliver_update(update_id: int) -> dict:
    from filmfund.comms import updates

    done = updates.deliver_update(update_id)
    if done["retry"]:
        raise DeliveryIncomplete(f"update {update_id}: {done['retry']} mail(s) to try again")
    return done


@jobs.mail.periodic_task(crontab(minute="23"), name="filmfund.comms.sweep_deliveries")
def sweep_deliveries() -> dict:
    from filmfund.comms import updates
    from filmfund.extensions import db

    if has_app_context():
        return updates.sweep_deliveries()
    if jobs._worker_app is None:
        log.warning("delivery sweep skipped: no app (start it through `filmfund worker`)")
        return {}
    with jobs._worker_app.app_context():
        try:
            return updates.sweep_deliveries()
        finally:
            db.session.remove()


@app_task(lane=jobs.mail, retries=8, retry_delay=RETRY_DELAY, retry_backoff=2)
def notify_answer(question_id: int) -> bool:
    """Mail the donor that their question is answered, once. True if this run sent it."""
    from filmfund.comms import questions
    from filmfund.extensions import db

    claimed = questions.claim_answer_notice(question_id)
    db.session.commit()  # claimed before the mail goes out: a retry or a second worker never sends it again
    if not claimed:
        return False
    try:
        questions.mail_answer_notice(question_id)
    except Exception:
        questions.release_answer_notice(question_id)
        db.session.commit()  # given back, for the retry huey schedules
        raise
    return True


@app_task(lane=jobs.mail, retries=8, retry_delay=RETRY_DELAY, retry_backoff=2)
def mail_invitations(experience_id: int) -> int:
    from filmfund.comms import invitations

    return invitations.mail_invitations(experience_id)


@jobs.mail.periodic_task(crontab(minute="7"), name="filmfund.comms.send_reminders")
def send_reminders() -> dict:
    from filmfund.comms import invitations
    from filmfund.extensions import db

    if has_app_context():
        return invitations.send_reminders()
    if jobs._worker_app is None:
        log.warning("reminders skipped: no app (start it through `filmfund worker`)")
        return {}
    with jobs._worker_app.app_context():
        try:
            return invitations.send_reminders()
        finally:
            db.session.remove()


@app_task(lane=jobs.mail, retries=8, retry_delay=RETRY_DELAY, retry_backoff=2)
def notify_reply(message_id: int) -> None:
    from filmfund.comms import arrangements

    arrangements.notify_reply(message_id)
