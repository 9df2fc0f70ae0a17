"""Queue tasks of fulfilment: the credits roll is rendered by a worker (ffmpeg takes minutes for
a long list), and once a day the address surveys and credits proofs go out with their reminders."""
from __future__ import annotations

import logging

from huey import crontab

from filmfund import jobs
from filmfund.jobs import app_task

log = logging.getLogger(__name__)


ROLL_TASK = "credits_roll"  # its progress in filmfund.progress, which the credits page polls


@app_task(retries=1, retry_delay=60)
def render_roll() -> str:
    from filmfund import progress
    from filmfund.fulfil import credits
    from filmfund.rewards.campaign import current_campaign

    progress.start(ROLL_TASK, "rendering")
    try:
        out = credits.render_roll(current_campaign(), on_progress=progress.Reporter(ROLL_TASK))
    except Exception as exc:
        progress.fail(ROLL_TASK, getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}")
        raise
    progress.finish(ROLL_TASK)
    return str(out)


@app_task(lane=jobs.mail)
def send_reminders() -> dict:
    """Address surveys and credits proofs: the first mail and the reminders that are due."""
    from filmfund.fulfil import credits, fulfilment
    from filmfund.rewards.campaign import current_campaign

    campaign = current_campaign()
    return {"surveys": fulfilment.send_address_surveys(campaign), "proofs": credits.send_proofs(campaign)}


@jobs.huey.periodic_task(crontab(hour="9", minute="17"), name="filmfund.fulfil.daily_reminders")
def daily_reminders() -> None:
    send_reminders()
