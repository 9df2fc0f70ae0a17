"""Queue tasks of fulfilment: the credits roll is rendered by a worker (ffmpeg takes minutes for
a long list), and once a day the address surveys and credits proofs go out with their reminders.

The mailing loops are here, the jobs that commit as they go (the producers' buttons and
`filmfund rewards remind` run them too): the services mail one donor each and never commit."""
from __future__ import annotations

import logging
from collections import Counter
from typing import NamedTuple

import sqlalchemy as sa
from huey import crontab

from filmfund import jobs, progress
from filmfund.mail import refusal_kind, servers_fault
from filmfund.db import utcnow
from filmfund.extensions import db
from filmfund.fulfil import credits, fulfilment
from filmfund.fulfil import roll as roll_video
from filmfund.jobs import app_task
from filmfund.rewards.campaign import current_campaign

log = logging.getLogger(__name__)


ROLL_TASK = "credits_roll"  # its progress in filmfund.progress, which the credits page polls


@app_task(retries=1, retry_delay=60)
def render_roll() -> str:
    progress.start(ROLL_TASK, "rendering")
    try:
        out = roll_video.render_roll(current_campaign(), on_progress=progress.Reporter(ROLL_TASK))
        db.session.commit()  # its audit entry
    except Exception as exc:
        progress.fail(ROLL_TASK, getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}")
        raise
    progress.finish(ROLL_TASK)
    return str(out)


class Mailed(NamedTuple):
    sent: int
    refused: int  # donors whose address the mail server refused for good (a try of theirs each)


def survey_mailing(campaign, now=None) -> Mailed:
    """Mail the address surveys and their reminders that are due. Each mail is committed as sent
    before the next goes out: a job that dies mid-way and runs again mails nobody twice (at worst
    the one it was sending). A donor whose address is refused is counted and passed over
    (_mail_one); a mail server that is down stops the run."""
    now = now or utcnow()
    catch_up_items(campaign)  # the donors of entitlements written by SQL are owed the survey too
    return _tally(_mail_one(lambda: fulfilment.send_address_survey(user_id, campaign, now),
                            user_id, "address_survey", now)
                  for user_id in fulfilment.survey_recipients(campaign))


def proof_mailing(campaign, now=None) -> Mailed:
    """Mail the credits proofs and their reminders that are due, each committed as sent before
    the next goes out, a refused address passed over, as the surveys are."""
    now = now or utcnow()
    return _tally(_mail_one(lambda: credits.send_proof(campaign, line, now), line.user_id, "credit_proof", now)
                  for line in credits.proofs_due(campaign, now))


def _tally(outcomes) -> Mailed:
    """Run one mailing (each donor's `_mail_one` outcome, in turn) and count what went out."""
    counted = Counter(outcomes)
    return Mailed(counted["sent"], counted["refused"])


def _mail_one(send, user_id: int, kind: str, now) -> str:
    """Run one donor's `send` and commit what became of it: `sent`, `skipped` (not due), or
    `refused`: the mail server refused this donor's address or this message for good (a 550), which
    says nothing about the next donor's, so the try is recorded against this donor's mails, as
    refused and on what (fulfilment.record_refused_reminder, mail.refusal_kind), and the run goes
    on. A mail server that cannot be reached or asks us to come back later (mail.servers_fault: a
    421, a dropped connection) would fail every donor after this one too: that, and a database
    error, stops the run (the daily task runs again tomorrow, and nobody's try is used up)."""
    try:
        mailed = send()
    except Exception as exc:
        if servers_fault(exc) or isinstance(exc, sa.exc.SQLAlchemyError):
            raise
        db.session.rollback()  # whatever the failed send left in the session
        log.warning("%s to user %s refused: %s: %s", kind, user_id, type(exc).__name__, exc)
        fulfilment.record_refused_reminder(user_id, kind, now, refusal_kind(exc))
        db.session.commit()
        return "refused"
    if not mailed:
        return "skipped"
    db.session.commit()
    return "sent"


def catch_up_items(campaign) -> int:
    """The items of physical entitlements that have none (made before items were made at booking,
    or written by SQL such as `filmfund demo seed`), each batch committed; how many were made."""
    made = 0
    for batch_made in fulfilment.missing_item_batches(campaign):
        db.session.commit()
        made += batch_made
    return made


@jobs.huey.periodic_task(crontab(minute="*/10"), name="filmfund.fulfil.catch_up_items")
def periodic_catch_up_items() -> int:
    """Every 10 minutes: the catch-up of reward items (nothing to do costs one indexed read)."""
    return jobs.in_worker_app(lambda: catch_up_items(current_campaign()))


@app_task(lane=jobs.mail)
def send_reminders() -> dict:
    """Address surveys and credits proofs: the first mail and the reminders that are due."""
    campaign = current_campaign()
    surveys, proofs = survey_mailing(campaign), proof_mailing(campaign)
    return {"surveys": surveys.sent, "proofs": proofs.sent, "refused": surveys.refused + proofs.refused}


@jobs.huey.periodic_task(crontab(hour="9", minute="17"), name="filmfund.fulfil.daily_reminders")
def daily_reminders() -> None:
    send_reminders()
