"""Jobs never stay "running" forever: a worker killed with SIGKILL mid-transcode, a stale
heartbeat, a timeout, retries with backoff. Real worker processes, real ffmpeg."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

from filmfund import jobs
from filmfund.media.jobs import run_media_job
from filmfund.media.runner import run_job
from tests.waiting import wait_until

SLOW_PROFILES = """
[proxy]
height = 540
preset = "{slow}"
gop_seconds = 1
[web]
height = 720
preset = "ultrafast"
[poster]
height = 360
[strip]
width = 160
[image]
height = 1080
[rescue]
height = 540
"""


def _worker_env(app, instance_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FILMFUND_")}
    env.update({
        "FILMFUND_INSTANCE_DIR": str(instance_dir),
        "FILMFUND_DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
        "FILMFUND_MEDIA_HEARTBEAT_SECONDS": "0.3",
        "FILMFUND_MEDIA_RETRY_BASE_SECONDS": "0",
    })
    env.update(extra)
    return env


def _job_row(app, job_id):
    from filmfund.media.models import Job

    with app.extensions["sqlalchemy"].engine.connect() as conn:
        return conn.execute(sa.select(Job.status, Job.progress, Job.step, Job.attempts, Job.worker)
                            .where(Job.id == job_id)).one()


def test_killed_worker_mid_transcode_then_another_finishes(app, clips, instance_dir, tmp_path):
    from filmfund import jobs
    from filmfund.extensions import db
    from filmfund.media import services
    from filmfund.media.models import AssetState, Job, JobKind, JobStatus, Rendition

    [result] = services.ingest_paths([clips / "good_1080i.MTS"])
    assert jobs.run_burst(max_tasks=1) == 1  # the verify job, here: its one decode made every rendition
    db.session.expire_all()
    # The proxy made again (a retry from the asset page): the transcode the worker is killed in.
    services.retry_renditions(services.get_asset(result.asset.public_id), "proxy")
    job = db.session.scalar(sa.select(Job).where(Job.kind == JobKind.TRANSCODE))
    assert job.status == JobStatus.QUEUED
    db.session.commit()

    slow, fast = tmp_path / "slow.toml", tmp_path / "fast.toml"
    slow.write_text(SLOW_PROFILES.replace("{slow}", "veryslow"))
    fast.write_text(SLOW_PROFILES.replace("{slow}", "ultrafast"))
    cmd = [sys.executable, "-m", "filmfund.cli", "worker", "--burst"]
    first = subprocess.Popen(cmd, env=_worker_env(app, instance_dir, FILMFUND_MEDIA_PROFILES=str(slow)),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def encoding() -> bool:
            """Into the encode: ffmpeg has reported progress (veryslow: over 10 s for this clip)."""
            assert first.poll() is None, "the first worker ended before it was killed"
            row = _job_row(app, job.id)
            return row.status == JobStatus.RUNNING and (row.step or "").startswith("proxy") and row.progress > 0

        wait_until(encoding, timeout=60, interval=0.1, message=lambda: f"the transcode: {_job_row(app, job.id)}")
        first.send_signal(signal.SIGKILL)  # no cleanup, no goodbye: as an OOM kill or a power cut
        first.wait(timeout=10)
        # Its ffmpeg died with it (parent-death signal), so it does not compete with the next worker.
        wait_until(lambda: _nothing_running(instance_dir), timeout=5, interval=0.1,
                   message="the killed worker's ffmpeg is gone")
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    row = _job_row(app, job.id)
    assert row.status == JobStatus.RUNNING and row.attempts == 1  # what the dead worker left behind

    second = subprocess.run(cmd, env=_worker_env(app, instance_dir, FILMFUND_MEDIA_PROFILES=str(fast)),
                            capture_output=True, text=True, timeout=180)
    assert second.returncode == 0, second.stderr[-2000:]

    db.session.expire_all()
    asset = services.get_asset(result.asset.public_id)
    assert asset.state == AssetState.READY, asset.problems
    job = db.session.get(Job, job.id)
    assert job.status == JobStatus.SUCCEEDED and job.attempts == 2
    # Exactly one output of each kind, no orphan objects, no leftover temp files.
    kinds = db.session.scalars(sa.select(Rendition.kind).where(Rendition.asset_id == asset.id)).all()
    assert sorted(k.value for k in kinds) == ["poster", "proxy", "strip"]  # web: at first publish
    stored = set(services.storage().keys("sha256/"))
    referenced = {s.storage_key for s in asset.sources} | {r.storage_key for r in asset.renditions}
    assert stored == referenced
    assert list(services.work_dir().glob("job-*")) == []
    # ffmpeg of the dead worker went with it (its progress pipe broke): nothing left running.
    wait_until(lambda: _nothing_running(instance_dir), timeout=5, interval=0.1, message="no process left")


def _nothing_running(instance_dir: Path) -> bool:
    return subprocess.run(["pgrep", "-f", str(instance_dir)], capture_output=True, text=True).stdout == ""


def test_stale_heartbeat_is_requeued_and_finished(app, clips, drain):
    from filmfund.db import utcnow
    from filmfund.extensions import db
    from filmfund.media import services
    from filmfund.media.models import AssetState, Job, JobStatus

    [result] = services.ingest_paths([clips / "still.jpg"])
    job = db.session.scalar(sa.select(Job))
    # A worker on another machine took it and went silent ten minutes ago.
    db.session.execute(sa.update(Job).where(Job.id == job.id).values(
        status=JobStatus.RUNNING, attempts=1, worker="render-box-2:4242",
        heartbeat_at=utcnow() - timedelta(minutes=10)))
    db.session.commit()
    from filmfund import jobs

    while jobs.huey.dequeue() is not None:  # its queue message went with that worker
        pass
    assert drain() == 0
    assert services.recover_jobs(at_start=False) == 1
    drain()
    asset = services.get_asset(result.asset.public_id)
    assert asset.state == AssetState.READY
    job = db.session.get(Job, job.id)
    assert job.status == JobStatus.SUCCEEDED and job.attempts == 2


def test_live_job_is_not_reaped(app, clips):
    from filmfund.db import utcnow
    from filmfund.extensions import db
    from filmfund.media import services
    from filmfund.media.models import Job, JobStatus

    services.ingest_paths([clips / "still.jpg"])
    db.session.execute(sa.update(Job).values(status=JobStatus.RUNNING, attempts=1, worker="render-box-2:4242",
                                             heartbeat_at=utcnow()))
    db.session.commit()
    assert services.recover_jobs(at_start=False) == 0


def test_timeout_retries_with_backoff_then_fails_clearly(app, clips, drain):
    from filmfund import jobs
    from filmfund.db import utcnow
    from filmfund.extensions import db
    from filmfund.media import services
    from filmfund.media.models import AssetState, Job, JobStatus

    app.config["MEDIA_FFMPEG_TIMEOUT"] = 0.01
    app.config["MEDIA_RETRY_BASE_SECONDS"] = 60
    [result] = services.ingest_paths([clips / "good_1080i.MTS"])
    jobs.run_burst()  # runs the verify once; its retry goes to huey's schedule, 60 s away
    db.session.expire_all()
    job = db.session.scalar(sa.select(Job))
    assert job.status == JobStatus.QUEUED and job.attempts == 1
    wait = (job.next_run_at - utcnow()).total_seconds()
    assert 55 < wait <= 73  # 60 s, plus up to 20% jitter
    assert "did not finish within" in job.error
    jobs.run_burst()
    db.session.expire_all()
    assert db.session.get(Job, job.id).attempts == 1  # not due yet: not run again

    app.config["MEDIA_RETRY_BASE_SECONDS"] = 0
    db.session.execute(sa.update(Job).values(next_run_at=utcnow()))
    db.session.commit()
    services.enqueue(job)
    drain()
    job = db.session.get(Job, job.id)
    assert job.status == JobStatus.FAILED and job.attempts == 3
    asset = services.get_asset(result.asset.public_id)
    assert asset.state == AssetState.FAILED
    assert asset.problems[-1]["code"] == "job_failed"
    assert "3 attempt(s)" in asset.problems[-1]["message"]


def test_worker_start_calls_recovery(app):
    """`filmfund worker` recovers at start what a dead worker left: footage jobs and caption burns."""
    from filmfund.media.tasks import recover_work

    assert app.extensions["filmfund.recover_jobs"] is recover_work


def test_the_media_job_task_keeps_its_queue_key(app):
    """Declared in media/jobs.py, the task keeps the key it had in media/tasks.py: messages an
    older version left in the queue are still found. It runs each job through runner.run_job."""
    assert jobs.huey._registry.task_to_string(run_media_job.task_class) == "filmfund.media.tasks.run_media_job"
    assert jobs.huey._registry.string_to_task("filmfund.media.tasks.run_media_job") is run_media_job.task_class
    assert app.extensions["filmfund.media.run_job"] is run_job


def test_a_job_waiting_for_the_encoder_says_so_on_its_row(app, clips, tmp_path, drain):
    """With more queue threads than encode slots, a claimed job may wait for another clip's
    encode: its row says "waiting for the encoder", not a running step stuck at 0%."""
    import shutil
    import threading

    from filmfund.extensions import db
    from filmfund.media import ffmpeg, services
    from filmfund.media.jobs import _Heartbeat
    from filmfund.media.models import AssetState, Job

    clip = tmp_path / "take.MTS"
    shutil.copy(clips / "good_1080i.MTS", clip)
    [result] = services.ingest_paths([clip])
    asset_id = result.asset.id

    def step() -> str | None:
        with db.engine.connect() as conn:
            return conn.execute(sa.select(Job.step).where(Job.asset_id == asset_id)).scalar()

    held = [ffmpeg._slots.acquire(blocking=False) for _ in range(ffmpeg.ENCODE_SLOTS)]
    assert all(held)  # another clip's encode holds every slot
    ran: list[int] = []

    def work() -> None:
        with app.app_context():
            ran.append(drain())
            db.session.remove()

    worker = threading.Thread(target=work)
    worker.start()
    try:
        wait_until(lambda: step() == _Heartbeat.WAITING, timeout=30, message=lambda: f"step is {step()!r}")
    finally:
        for _ in held:
            ffmpeg._slots.release()
    worker.join(timeout=120)
    assert ran == [1]
    assert step() != _Heartbeat.WAITING  # it went on with its own step once the slot was free
    db.session.expire_all()  # the job ran on the worker thread's session
    assert services.get_asset(result.asset.public_id).state == AssetState.READY



def _run_while_taken_over(app, clips, tmp_path, meanwhile=lambda asset, job_id: None):
    """Run a take's verify job in this process, and while it waits for the encoder (the moment
    this worker is "hung") give the job to a worker on another machine, as the recovery and
    that worker's claim would, then do `meanwhile`. Returns the job's id, the asset and what
    run_job said."""
    import shutil
    import threading

    from filmfund.db import utcnow
    from filmfund.extensions import db
    from filmfund.media import ffmpeg, services
    from filmfund.media.jobs import _Heartbeat
    from filmfund.media.models import Job

    clip = tmp_path / "take.MTS"
    shutil.copy(clips / "good_1080i.MTS", clip)
    [result] = services.ingest_paths([clip])
    job_id = db.session.scalar(sa.select(Job.id).where(Job.asset_id == result.asset.id))
    while jobs.huey.dequeue() is not None:  # run here, by this test's thread, not by a drain
        pass
    held = [ffmpeg._slots.acquire(blocking=False) for _ in range(ffmpeg.ENCODE_SLOTS)]
    assert all(held)
    outcome: list[str] = []

    def work() -> None:
        with app.app_context():
            outcome.append(run_job(job_id))
            db.session.remove()

    worker = threading.Thread(target=work)
    worker.start()
    try:
        # Waiting for the encoder: past its start (whose clean-up of the job's files would race
        # with the other worker's file written below), before its encode.
        wait_until(lambda: _job_row(app, job_id).step == _Heartbeat.WAITING, timeout=30)
        with db.engine.begin() as conn:
            conn.execute(sa.update(Job).where(Job.id == job_id).values(
                worker="render-box-2:77", attempts=Job.attempts + 1, heartbeat_at=utcnow()))
        meanwhile(result.asset, job_id)
    finally:
        for _ in held:
            ffmpeg._slots.release()
    worker.join(timeout=120)
    assert not worker.is_alive()
    return job_id, result.asset, outcome


def test_a_worker_taken_for_dead_does_not_settle_the_job_it_lost(app, clips, tmp_path):
    """A worker whose beats stopped (a suspended process, a stalled disk) was taken for dead and
    its job given to another, which is running it. When the first one wakes and finishes, its
    late "succeeded" must not settle a job that still runs elsewhere, nor remove that worker's
    files of the same job."""
    from filmfund.media.common import work_dir
    from filmfund.media.models import JobStatus

    theirs: list[Path] = []

    def the_other_writes(asset, job_id) -> None:
        theirs.append(work_dir() / f"job-{job_id}-web.mp4")  # a step this worker never reached
        theirs[0].write_bytes(b"the other worker's encode, half written")

    job_id, _, outcome = _run_while_taken_over(app, clips, tmp_path, the_other_writes)
    assert outcome == ["superseded"]
    row = _job_row(app, job_id)
    assert row.status == JobStatus.RUNNING and row.worker == "render-box-2:77" and row.attempts == 2
    assert theirs[0].exists()
    theirs[0].unlink()


def test_a_worker_taken_for_dead_does_not_record_its_failure_either(app, clips, tmp_path):
    """The same worker's encode fails instead (its ffmpeg outlives the time limit): no retry is
    queued and no failure is recorded on a job the other worker is running."""
    from filmfund.extensions import db
    from filmfund.media.models import Asset, JobStatus

    app.config["MEDIA_FFMPEG_TIMEOUT"] = 0.01
    job_id, asset, outcome = _run_while_taken_over(app, clips, tmp_path)
    assert outcome == ["superseded"]
    row = _job_row(app, job_id)
    assert row.status == JobStatus.RUNNING and row.worker == "render-box-2:77" and row.attempts == 2
    assert jobs.huey.pending_count() == 0  # no retry queued by the worker that lost the job
    db.session.expire_all()
    problems = db.session.get(Asset, asset.id).problems or []
    assert not [p for p in problems if p["code"] == "job_failed"], problems
