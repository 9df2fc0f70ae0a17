"""Running one media job: claim it, run the body its kind names (verify.py's decode pass, or
renditions.py's transcode) under a heartbeat, record how it ended. Above jobs.py, verify.py and
renditions.py, which all queue jobs: none of them imports back into this module."""
from __future__ import annotations

import contextlib
import logging

from flask import current_app

from filmfund.db import utcnow
from filmfund.extensions import db
from filmfund.media import ffmpeg
from filmfund.media.common import PermanentJobError, work_dir
from filmfund.media.jobs import _claim, _Heartbeat, _record_failure
from filmfund.media.models import Job, JobKind, JobStatus
from filmfund.media.renditions import _transcode
from filmfund.media.verify import _verify

log = logging.getLogger(__name__)


def run_job(job_id: int) -> str:
    """Queue entry point: claim, run, record. Never raises for a job's own failure: a bad clip
    or a failing ffmpeg ends in a state the producer sees, not in a crashed worker."""
    if not _claim(job_id):
        return "skipped"
    job = db.session.get(Job, job_id)
    with contextlib.suppress(FileNotFoundError):
        for leftover in work_dir().glob(f"job-{job_id}-*"):
            leftover.unlink()  # what a killed attempt of this job left behind
    try:
        with (_Heartbeat(job_id, current_app.config["MEDIA_HEARTBEAT_SECONDS"], job.asset_id, job.kind.value) as beat,
              ffmpeg.reporting_waits(beat.waiting)):
            if job.kind == JobKind.VERIFY:
                _verify(job, beat)
            else:
                _transcode(job, beat)
        job = db.session.get(Job, job_id)
        job.status, job.finished_at, job.progress, job.error = JobStatus.SUCCEEDED, utcnow(), 1.0, None
        db.session.commit()
        return "succeeded"
    except Exception as exc:  # noqa: BLE001 - recorded on the job row, never a worker crash
        db.session.rollback()
        log.warning("media job %s failed: %s", job_id, exc, exc_info=not isinstance(exc, (PermanentJobError, ffmpeg.FfmpegError)))
        return _record_failure(job_id, exc)
    finally:
        with contextlib.suppress(FileNotFoundError):
            for leftover in work_dir().glob(f"job-{job_id}-*"):
                leftover.unlink()
