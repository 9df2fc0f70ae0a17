"""Media jobs on the queue: creating, claiming, heartbeats, retries with backoff and recovery of
jobs whose worker died. What a job does is in verify.py and renditions.py; runner.py, above all
three, claims a job and runs it."""
from __future__ import annotations

import contextlib
import logging
import random
import threading
from datetime import datetime, timedelta
from typing import Any, Callable

import sqlalchemy as sa
from flask import current_app

from filmfund.db import on_commit, utcnow
from filmfund.extensions import db
from filmfund.jobs import app_task, enqueue_or_leave
from filmfund.media import ffmpeg, owners
from filmfund.media.common import PermanentJobError, _problem, work_dir, worker_name
from filmfund.media.models import Asset, AssetState, Caption, Job, JobKind, JobStatus

log = logging.getLogger(__name__)

def _new_job(asset: Asset, kind: JobKind) -> Job:
    job = Job(asset=asset, kind=kind, max_attempts=current_app.config["MEDIA_MAX_ATTEMPTS"], next_run_at=utcnow())
    db.session.add(job)
    db.session.flush()
    return job


def enqueue(job: Job, delay: float = 0) -> None:
    """Put a committed job on the queue (a job body's own retry, the reaper)."""
    _enqueue_id(job.id, delay)


def _enqueue_id(job_id: int, delay: float = 0) -> None:
    """Queue a job whose row is committed. With the queue's Redis unreachable the row stays
    queued, and the recovery (tasks.recover_work, every minute and at each worker's start) queues
    it again: the producer's publish or the crew's ingest is saved, not an error."""
    def send() -> None:
        if delay > 0:
            run_media_job.schedule(args=(job_id,), delay=delay)
        else:
            run_media_job(job_id)

    if not enqueue_or_leave(send, f"media job {job_id}"):  # said on its row, for the next recovery
        with db.engine.begin() as conn:
            conn.execute(sa.update(Job).where(Job.id == job_id, Job.status == JobStatus.QUEUED)
                         .values(error=LEFT_NOTE))


def enqueue_on_commit(job: Job) -> None:
    """Queue a new job once the caller commits the use case that made it: the worker, in
    another process, must find its row (a rollback forgets it)."""
    job_id = job.id  # flushed by _new_job
    on_commit(db.session, lambda: _enqueue_id(job_id))


# Declared here, beside the enqueue, so that queueing a job imports no module above this one. The
# job runs through runner.run_job (runner.py imports this module), which filmfund.media.init_app
# puts in app.extensions. The task keeps the key it had in media/tasks.py: jobs queued in Redis or
# SQLite by an older version must still be found.
@app_task(retries=0, registered_as="filmfund.media.tasks.run_media_job")
def run_media_job(job_id: int) -> str:
    # Retries, backoff and timeouts are ours (on the job row), not huey's: they survive restarts.
    return current_app.extensions["filmfund.media.run_job"](job_id)


def _claim(job_id: int) -> bool:
    """Take a queued job for this worker; False if another worker has it or it is settled."""
    now = utcnow()
    result = db.session.execute(
        sa.update(Job).where(Job.id == job_id, Job.status == JobStatus.QUEUED, Job.next_run_at <= now + timedelta(seconds=1))
        .values(status=JobStatus.RUNNING, attempts=Job.attempts + 1, started_at=now, heartbeat_at=now,
                worker=worker_name(), progress=0.0, finished_at=None, ffmpeg_version=ffmpeg.version()[:200])
        .execution_options(synchronize_session=False))
    db.session.commit()
    return result.rowcount == 1


# The jobs running in this process, by job id: `media ingest --wait` shows their progress live
# (the database sees it at each heartbeat).
RUNNING: dict[int, "_Heartbeat"] = {}


class Beat:
    """Touches a row every few seconds from its own thread and connection while work runs (a
    job, a caption burn: `touch` says which row), so that a reaper can tell live work from work
    whose worker died (`worker_stopped`)."""

    def __init__(self, interval: float, touch: Callable[[sa.Connection], None], name: str = "heartbeat"):
        self.interval, self._touch = interval, touch
        self._stop = threading.Event()
        self._engine = db.engine
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=10)
        self.beat()

    def _loop(self):
        while not self._stop.wait(self.interval):
            self.beat()

    def beat(self):
        try:
            with self._engine.begin() as conn:
                self._touch(conn)
        except sa.exc.SQLAlchemyError:  # a missed beat is not fatal; the next one may pass
            log.warning("heartbeat (%s) failed", self._thread.name, exc_info=True)


class _Heartbeat(Beat):
    """A job's beat: its row's heartbeat, with the latest progress and step."""

    def __init__(self, job_id: int, interval: float, asset_id: int | None = None, kind: str | None = None):
        super().__init__(interval, self._touch_job, name=f"heartbeat-{job_id}")
        self.job_id, self.asset_id, self.kind = job_id, asset_id, kind
        self.worker = worker_name()  # as _claim wrote it
        self.progress: float | None = None
        self.step: str | None = None
        self._step_before: str | None = None

    def __enter__(self):
        RUNNING[self.job_id] = self
        return super().__enter__()

    def __exit__(self, *exc):
        RUNNING.pop(self.job_id, None)
        super().__exit__(*exc)

    WAITING = "waiting for the encoder"

    def waiting(self, waits: bool) -> None:
        """Told by ffmpeg.run: this job's encode waits for another clip's to end (encode slots)."""
        if waits:
            self._step_before, self.step = self.step, self.WAITING
            self.beat()  # at once: a producer looking at the board sees why nothing moves
        elif self.step == self.WAITING:
            self.step = self._step_before

    def _touch_job(self, conn: sa.Connection) -> None:
        values: dict[str, Any] = {"heartbeat_at": utcnow()}
        if self.progress is not None:
            values["progress"] = round(min(1.0, max(0.0, self.progress)), 4)
        if self.step is not None:
            values["step"] = self.step[:100]
        # Only while the job is still this worker's: once a recovery gave it to another worker
        # (this one took for dead), this one's late beats must not move the other's progress.
        conn.execute(sa.update(Job).where(Job.id == self.job_id, Job.status == JobStatus.RUNNING,
                                          Job.worker == self.worker).values(**values))


def _record_failure(job_id: int, exc: Exception) -> str:
    job = db.session.get(Job, job_id)
    permanent = isinstance(exc, PermanentJobError) or (isinstance(exc, ffmpeg.FfmpegError) and exc.permanent)
    job.error = f"{type(exc).__name__}: {exc}"[:4000]
    if isinstance(exc, ffmpeg.FfmpegError) and exc.stderr_tail:
        job.stderr_tail = exc.stderr_tail[-ffmpeg.TAIL_BYTES:]
    if not permanent and job.attempts < job.max_attempts:
        base = current_app.config["MEDIA_RETRY_BASE_SECONDS"]
        delay = base * (2 ** (job.attempts - 1)) * (1 + random.random() * 0.2) if base else 0
        job.status, job.next_run_at, job.worker = JobStatus.QUEUED, utcnow() + timedelta(seconds=delay), None
        db.session.commit()
        enqueue(job, delay)
        return "retrying"
    job.status, job.finished_at = JobStatus.FAILED, utcnow()
    asset = job.asset
    asset.problems = [*(asset.problems or []), _problem(
        "job_failed", f"The {job.kind.value} step failed after {job.attempts} attempt(s): {exc}"[:1000],
        detail=(job.stderr_tail or "")[-1000:],
        hint="Check the file plays on a workstation; re-run with `filmfund media verify` or re-ingest it.")]
    if asset.can_move(AssetState.FAILED):
        asset.move(AssetState.FAILED, f"{job.kind.value} job failed")
    db.session.commit()
    return "failed"


def worker_stopped(worker: str | None, heartbeat_at: datetime | None, now: datetime | None = None) -> bool:
    """The one rule of work whose worker died (its lease expired), asked for a media job and a
    caption burn by the reaper, `filmfund worker` at start, `media ingest --wait`, `media
    verify`, `media retry` and the pages (`lease`). Either:

    - its heartbeat is older than MEDIA_STALE_SECONDS (the lease): whatever host it runs on, a
      worker that has not written its row for that long is taken for dead; or
    - its worker (`host:pid`) is a process of this host, other than this one, that is gone
      (owners.process_gone), AND it has missed two heartbeats (MEDIA_HEARTBEAT_SECONDS each).

    Why the second half cannot take a live job from another running worker: a live worker beats
    every MEDIA_HEARTBEAT_SECONDS from its own thread and connection (`Beat`), so its heartbeat
    is never two beats old. The pid test alone could be wrong only when another PID namespace (a
    container) has the same hostname and the same database, or when the pid was reused (then it
    looks alive: only slower); the missed beats cover the first. It is what lets a crew's
    `media ingest --wait`, run again seconds after a `kill -9`, take the job over at once instead
    of waiting two minutes for the lease."""
    now = now or utcnow()
    if heartbeat_at is None or heartbeat_at < now - timedelta(seconds=current_app.config["MEDIA_STALE_SECONDS"]):
        return True
    return _missed_two_beats(heartbeat_at, now) and owners.process_gone(worker)


def _missed_two_beats(heartbeat_at: datetime, now: datetime) -> bool:
    """A live worker beats every MEDIA_HEARTBEAT_SECONDS: two beats missed and it is late."""
    return heartbeat_at < now - timedelta(seconds=2 * current_app.config["MEDIA_HEARTBEAT_SECONDS"])


LIVE, LATE, STOPPED = "live", "late", "stopped"


def lease(job: Job, now: datetime | None = None) -> str:
    """How a running job's worker is doing, for the pages and the command line: `stopped` (its
    lease expired: worker_stopped; it is re-queued by the next recovery), `late` (two heartbeats
    missed, its worker on another host or not known to be gone: its progress and time left are
    not to be trusted), else `live`. Only a running job has a lease: others are `live`."""
    if job.status != JobStatus.RUNNING:
        return LIVE
    now = now or utcnow()
    if worker_stopped(job.worker, job.heartbeat_at, now):
        return STOPPED
    if _missed_two_beats(job.heartbeat_at, now):
        return LATE
    return LIVE


RECOVERED_NOTE = "worker "  # how the note of a job recover_jobs re-queued begins
LEFT_NOTE = "not queued: the work queue could not be reached; the recovery queues it"


def recover_jobs(*, at_start: bool = True, found: list[Job] | None = None) -> int:
    """Re-queue jobs whose worker died (worker_stopped), removing the files their killed attempt
    left (`job-ID-*` in media-work). At worker start also re-send queued jobs whose queue message
    may have been lost. How many were recovered; `found` (if given) gets each recovered job.
    (Caption burns: `recover_burns`; both, and the dead owners' temporary files, through
    tasks.recover_work, which every entry point calls.)"""
    now = utcnow()
    count = 0
    recovered: list[Job] = []
    for job in db.session.scalars(sa.select(Job).where(Job.status == JobStatus.RUNNING)):
        if not worker_stopped(job.worker, job.heartbeat_at, now):
            continue
        note = f"{RECOVERED_NOTE}{job.worker} stopped answering (last heartbeat {job.heartbeat_at}); re-queued"
        if job.attempts >= job.max_attempts:
            job.max_attempts = job.attempts + 1  # a dead worker is not the clip's fault: one more go
        job.status, job.next_run_at, job.worker, job.error = JobStatus.QUEUED, now, None, note
        recovered.append(job)
        count += 1
    db.session.commit()
    for job in recovered:
        with contextlib.suppress(FileNotFoundError):
            for leftover in work_dir().glob(f"job-{job.id}-*"):
                leftover.unlink()  # its owner is gone: what the killed attempt wrote goes now
    if found is not None:
        found.extend(recovered)
    jobs = list(db.session.scalars(sa.select(Job).where(Job.status == JobStatus.QUEUED, Job.next_run_at <= now)))
    resend = [job.id for job in jobs if at_start or (job.error or "").startswith((RECOVERED_NOTE, LEFT_NOTE))]
    db.session.execute(sa.update(Job).where(Job.id.in_(resend), Job.error == LEFT_NOTE).values(error=None))
    db.session.commit()
    for job_id in resend:
        _enqueue_id(job_id)  # the queue still down: its note is written again, for the next recovery
    return count


# --- caption burns (burnin.py): not Job rows, but run by the same workers and reaped alike ---------
# While a burn runs, its caption row names its worker (`burn_worker`, `host:pid`) and beats
# (`burn_beat_at`, `burn_beat`); the two are cleared when it ends.


def burn_beat(caption_id: int) -> Beat:
    """The heartbeat of a running caption burn."""
    def touch(conn: sa.Connection) -> None:
        conn.execute(sa.update(Caption).where(Caption.id == caption_id, Caption.burn_state == "running")
                     .values(burn_beat_at=utcnow()))

    return Beat(current_app.config["MEDIA_HEARTBEAT_SECONDS"], touch, name=f"burn-{caption_id}")


def burn_stopped(caption: Caption, now: datetime | None = None) -> bool:
    """A running burn whose worker died (`worker_stopped`): never finished, its button offered again."""
    return caption.burn_state == "running" and worker_stopped(caption.burn_worker, caption.burn_beat_at, now)


def recover_burns() -> int:
    """Mark failed the caption burns whose worker died (the producer burns them again from the
    page); how many. Queued burns are sent again at worker start (`queued_burns`, by
    tasks.recover_work: the queue's tasks are above this module)."""
    now = utcnow()
    count = 0
    for caption in db.session.scalars(sa.select(Caption).where(Caption.burn_state == "running")):
        if burn_stopped(caption, now):
            who, beat = caption.burn_worker, caption.burn_beat_at
            caption.burn_state, caption.burn_worker, caption.burn_beat_at = "failed", None, None
            caption.burn_error = (f"worker {who + ' ' if who else ''}stopped (last heartbeat "
                                  f"{beat:%Y-%m-%d %H:%M:%S} UTC): burn it again" if beat else
                                  f"worker {who + ' ' if who else ''}stopped: burn it again")
            count += 1
    db.session.commit()
    return count


def queued_burns() -> list[tuple[int, str]]:
    """The caption burns waiting for a worker, (asset id, language): at worker start their queue
    message may have been lost with a dead worker. A burn is claimed (queued to running) before it
    runs, so a second message does nothing."""
    return [tuple(r) for r in db.session.execute(
        sa.select(Caption.asset_id, Caption.lang).where(Caption.burn_state == "queued"))]


