"""Queue tasks of the footage pipeline: thin wrappers over services, carrying only ids.

A caption burn; a periodic reaper re-queues jobs whose worker died, and a periodic fixity check
re-hashes stored objects (the scheduled `media verify`). The task that runs one verify or
transcode job, `run_media_job`, is declared in jobs.py beside its enqueue.
"""
from __future__ import annotations

import logging
from functools import wraps

from flask import has_app_context
from huey import crontab

from filmfund import jobs
from filmfund.extensions import db
from filmfund.jobs import app_task
from filmfund.media import burnin, fixity, screening
from filmfund.media import jobs as media_jobs
from filmfund.media.models import Asset

log = logging.getLogger(__name__)


@app_task(retries=0)
def burn_captions_task(asset_id: int, lang: str) -> str:
    """A producer's "burn into a donor copy": its state and any error are on the caption's row."""
    asset = db.session.get(Asset, asset_id)
    if asset is None:
        return "gone"
    if not burnin.claim(asset, lang):  # done already, or another message of the same request has it
        return "skipped"
    try:
        burnin.burn(asset, lang)
    except Exception as exc:  # noqa: BLE001 (recorded on the caption by burn; the page shows it)
        log.warning("burning %s captions into asset %s failed: %s", lang, asset.public_id, exc)
        return "failed"
    return "ready"


def _periodic(schedule):
    """A huey periodic task that runs inside the worker's app context."""

    def deco(fn):
        @wraps(fn)
        def run():
            if has_app_context():
                return fn()
            if jobs._worker_app is None:
                log.warning("periodic %s skipped: no app (start it through `filmfund worker`)", fn.__name__)
                return None
            with jobs._worker_app.app_context():
                try:
                    return fn()
                finally:
                    db.session.remove()

        return jobs.huey.periodic_task(schedule, name=f"filmfund.media.{fn.__name__}")(run)

    return deco


def recover_work(*, at_start: bool = True, found: list | None = None) -> int:
    """The one home of recovery, called by every entry point: `filmfund worker` at start
    (app.extensions["filmfund.recover_jobs"]), the reaper every minute, and `media ingest
    --wait`, `media verify`, `media retry` before they look at a job. Work a dead worker left
    (its lease expired: jobs.worker_stopped) is recovered: jobs re-queued (jobs.recover_jobs;
    `found` gets each one), caption burns marked failed (jobs.recover_burns), and the temporary
    files of owners that are gone removed (fixity.remove_dead_leftovers); at worker start the
    queued burns are sent again too. How many jobs and burns were recovered."""
    count = media_jobs.recover_jobs(at_start=at_start, found=found) + media_jobs.recover_burns()
    fixity.remove_dead_leftovers()
    if at_start:
        for asset_id, lang in media_jobs.queued_burns():
            burn_captions_task(asset_id, lang)
    return count


@_periodic(crontab(minute="*"))
def reap_stale_jobs() -> int:
    """Nothing stays "running" forever: re-queue jobs whose heartbeat stopped, mark failed the
    caption burns whose heartbeat stopped."""
    return recover_work(at_start=False)


@_periodic(crontab(minute="17", hour="3"))
def scheduled_fixity() -> int:
    """Nightly fixity check of every stored object, in both copies: what an intact copy can
    repair is repaired, the rest puts its asset in alert (board, dashboard, no donor links)."""
    results = fixity.check_fixity(None)
    bad = [r for r in results if not r.ok]
    for r in bad:
        log.error("fixity check failed for asset %s: %s", r.asset.public_id, "; ".join(r.failures))
    for r in results:
        if r.repaired:
            log.warning("fixity check repaired asset %s: %s", r.asset.public_id, "; ".join(r.repaired))
    return len(bad)


@_periodic(crontab(minute="41"))
def sweep_incoming() -> dict:
    """Hourly: remove the temporary uploads a killed worker or an abandoned upload left behind."""
    removed = fixity.sweep_incoming()
    if any(removed.values()):
        log.info("removed abandoned temporary uploads: %s", removed)
    return removed


@_periodic(crontab(minute="23"))
def purge_viewings() -> int:
    """Hourly: viewings older than MEDIA_VIEWING_DAYS go (their addresses are personal data), and
    marked screening segments not read for two days."""
    n = screening.purge_viewings()
    db.session.commit()
    return n + screening.sweep_mark_cache()
