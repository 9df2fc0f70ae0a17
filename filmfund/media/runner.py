"""Running one media job: claim it, run the body its kind names (verify.py's decode pass, or
renditions.py's transcode) under a heartbeat, record how it ended. Above jobs.py, verify.py and
renditions.py, which all queue jobs: none of them imports back into this module."""
from __future__ import annotations

import contextlib
import logging

import sqlalchemy as sa

from flask import current_app

from filmfund.db import utcnow
from filmfund.extensions import db
from filmfund.media import ffmpeg
from filmfund.media.common import PermanentJobError, work_dir
from filmfund.media.jobs import _claim, _Heartbeat, _record_failure, worker_name
from filmfund.media.models import Job, JobKind, JobStatus
from filmfund.media.renditions import _transcode, queue_what_a_publish_left
from filmfund.media.verify import _verify

log = logging.getLogger(__name__)


def _still_mine(job_id: int, worker: str) -> tuple[sa.ColumnElement[bool], ...]:
    return Job.id == job_id, Job.status == JobStatus.RUNNING, Job.worker == worker


def _superseded(job_id: int) -> str:
    # This worker was taken for dead (its beats stopped: a suspended process, a stalled disk)
    # and the job was given to another, which records how it ends: a late "succeeded" or
    # "failed" from here would settle a job that is still running elsewhere.
    log.warning("media job %s ended here after it was given to another worker: its outcome is left to that one", job_id)
    return "superseded"


def run_job(job_id: int) -> str:
    """Queue entry point: claim, run, record. Never raises for a job's own failure: a bad clip
    or a failing ffmpeg ends in a state the producer sees, not in a crashed worker."""
    if not _claim(job_id):
        return "skipped"
    job = db.session.get(Job, job_id)
    asset_id = job.asset_id
    _remove_work_files(job_id)  # what a killed attempt of this job left behind
    outcome = ""
    try:
        with (_Heartbeat(job_id, current_app.config["MEDIA_HEARTBEAT_SECONDS"], job.asset_id, job.kind.value) as beat,
              ffmpeg.reporting_waits(beat.waiting)):
            if job.kind == JobKind.VERIFY:
                _verify(job, beat)
            else:
                _transcode(job, beat)
        ended = db.session.execute(
            sa.update(Job).where(*_still_mine(job_id, beat.worker))
            .values(status=JobStatus.SUCCEEDED, finished_at=utcnow(), progress=1.0, error=None)
            .execution_options(synchronize_session=False))
        if ended.rowcount == 1:
            db.session.expire_all()  # read again, after the row's lock: a publish may have just committed
            queue_what_a_publish_left(asset_id)
        db.session.commit()
        db.session.expire_all()
        outcome = "succeeded" if ended.rowcount == 1 else _superseded(job_id)
    except Exception as exc:  # noqa: BLE001 - recorded on the job row, never a worker crash
        db.session.rollback()
        log.warning("media job %s failed: %s", job_id, exc, exc_info=not isinstance(exc, (PermanentJobError, ffmpeg.FfmpegError)))
        if db.session.scalar(sa.select(Job.id).where(*_still_mine(job_id, worker_name()))) is None:
            outcome = _superseded(job_id)
        else:
            outcome = _record_failure(job_id, exc)
    finally:
        if outcome != "superseded":  # the files of this job's name are the new owner's now
            _remove_work_files(job_id)
    return outcome


def _remove_work_files(job_id: int) -> None:
    with contextlib.suppress(FileNotFoundError):
        for leftover in work_dir().glob(f"job-{job_id}-*"):
            leftover.unlink()
