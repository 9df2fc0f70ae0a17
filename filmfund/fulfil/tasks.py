"""Queue tasks of fulfilment: the credits roll is rendered by a worker (ffmpeg takes minutes for
a long list), and once a day the address surveys and credits proofs go out with their reminders.

The mailing loops are here, the jobs that commit as they go (the producers' buttons and
`filmfund rewards remind` run them too): the services mail one donor each and never commit."""
from __future__ import annotations

import logging

from huey import crontab

from filmfund import jobs, progress
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


def mail_address_surveys(campaign, now=None) -> int:
    """Mail the address surveys and their reminders that are due; how many went out. Each mail is
    committed as sent before the next goes out: a job that dies mid-way and runs again mails
    nobody twice (at worst the one it was sending)."""
    now = now or utcnow()
    catch_up_items(campaign)  # the donors of entitlements written by SQL are owed the survey too
    due = fulfilment.survey_recipients(campaign)
    sent = 0
    for user_id in due:
        if fulfilment.send_address_survey(user_id, campaign, now):
            db.session.commit()
            sent += 1
    return sent


def mail_credit_proofs(campaign, now=None) -> int:
    """Mail the credits proofs and their reminders that are due; how many went out. Each mail is
    committed as sent before the next goes out, as the surveys are."""
    now = now or utcnow()
    sent = 0
    for line in credits.proofs_due(campaign, now):
        if credits.send_proof(campaign, line, now):
            db.session.commit()
            sent += 1
    return sent


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
    return {"surveys": mail_address_surveys(campaign), "proofs": mail_credit_proofs(campaign)}


@jobs.huey.periodic_task(crontab(hour="9", minute="17"), name="filmfund.fulfil.daily_reminders")
def daily_reminders() -> None:
    send_reminders()
