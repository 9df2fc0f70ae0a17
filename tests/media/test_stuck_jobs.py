"""No job stuck "running" after a crash, no orphaned file, whatever entry point the crew uses next.

A real `filmfund media ingest --wait` is killed with SIGKILL mid-encode, with no worker running:
`media verify` then says the job was stuck (exit 1) and re-queues it, its temporary files go at
once, the page says the job is restarting (no frozen time left), and the same ingest run again
finishes the take. The lease rule never takes a job a live worker is beating for. A proxy
dropped after a failed checksum is not reported as "ready"."""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

from tests.media.test_jobs import SLOW_PROFILES, _nothing_running, _worker_env
from tests.waiting import wait_until


def _cli(app, instance_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "filmfund.cli", *args], env=_worker_env(app, instance_dir, **env),
                          capture_output=True, text=True, timeout=240, stdin=subprocess.DEVNULL)


def _job(app, asset_public_id: str | None = None):
    from filmfund.media.models import Asset, Job

    with app.extensions["sqlalchemy"].engine.connect() as conn:
        query = sa.select(Job.id, Job.status, Job.progress, Job.worker, Job.heartbeat_at).join(Asset)
        if asset_public_id:
            query = query.where(Asset.public_id == asset_public_id)
        return conn.execute(query.order_by(Job.id.desc()).limit(1)).one_or_none()


def _leftovers(instance_dir: Path, storage_root: Path) -> list[Path]:
    early = instance_dir / "media-work" / "early"
    found = [p for p in early.iterdir()] if early.is_dir() else []
    return found + [p for p in (storage_root / ".incoming").iterdir()]


def _take_and_profiles(clips, tmp_path):
    """A card's take, and encoder profiles that make its encode slow (to be killed in) or fast."""
    take = tmp_path / "card" / "00000.MTS"
    take.parent.mkdir()
    take.write_bytes((clips / "good_1080i.MTS").read_bytes())
    slow, fast = tmp_path / "slow.toml", tmp_path / "fast.toml"
    slow.write_text(SLOW_PROFILES.replace("{slow}", "veryslow"))
    fast.write_text(SLOW_PROFILES.replace("{slow}", "ultrafast"))
    return take, slow, fast


def test_killed_ingest_is_found_by_verify_and_finished_by_ingest_again(app, clips, instance_dir, tmp_path):
    from filmfund.extensions import db
    from filmfund.media import services
    from filmfund.media.board import job_progress
    from filmfund.media.models import AssetState, Job, JobStatus

    take, slow, fast = _take_and_profiles(clips, tmp_path)
    storage_root = services.storage().root
    cmd = [sys.executable, "-m", "filmfund.cli", "media", "ingest", str(take), "--wait"]
    ingest = subprocess.Popen(cmd, env=_worker_env(app, instance_dir, FILMFUND_MEDIA_PROFILES=str(slow)),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        def encoding() -> bool:
            assert ingest.poll() is None, "the ingest ended before it was killed"
            row = _job(app)
            return row is not None and row.status == JobStatus.RUNNING  # its check and encode under way

        wait_until(encoding, timeout=60, interval=0.1, message=lambda: f"the encode: {_job(app)}")
        # A temporary file of the killed command that must go with it (as a copy cut mid-way
        # would leave under .incoming), named the way storage names its own.
        from filmfund.media import owners

        (storage_root / ".incoming" / f"{ingest.pid}@{socket.gethostname()}~cut").write_bytes(b"half a card")
        ingest.send_signal(signal.SIGKILL)  # no cleanup: an OOM kill, a closed laptop
        ingest.wait(timeout=10)
        wait_until(lambda: _nothing_running(instance_dir), timeout=5, interval=0.1,
                   message="the killed command's ffmpeg is gone")
    finally:
        if ingest.poll() is None:
            ingest.kill()
            ingest.wait()
    with app.extensions["sqlalchemy"].engine.connect() as conn:
        from filmfund.media.models import Asset

        asset_id = conn.execute(sa.select(Asset.public_id).join(Job, Job.asset_id == Asset.id)).scalar_one()
    row = _job(app, asset_id)
    assert row.status == JobStatus.RUNNING and row.worker.endswith(f":{ingest.pid}")  # what the kill left
    left = _leftovers(instance_dir, storage_root)
    assert left and all(owners.owner_of(p.name) == row.worker for p in left), left  # tagged with their owner

    # The page, before anyone recovers it: no frozen "41% · about 15 s left", but why it waits.
    def shown():
        db.session.expire_all()
        return job_progress(db.session.get(Job, row.id))

    wait_until(lambda: shown()["status"] == "restarting", timeout=10, interval=0.2, message=lambda: str(shown()))
    assert shown()["eta_seconds"] is None and "worker stopped" in shown()["step"]

    # `media verify`: not "all is well". It re-queues the job, says so, exits 1; the files go.
    out = _cli(app, instance_dir, "media", "verify", asset_id)
    assert out.returncode == 1, out.stdout + out.stderr
    # (killed as its check began or under way: the asset is uploaded or verifying by then)
    assert re.search(rf"^{asset_id} fixity=ok state=(uploaded|verifying) job=REQUEUED$", out.stdout, re.M), out.stdout
    assert "stuck" in out.stderr and "filmfund worker --burst" in out.stderr, out.stderr
    assert _leftovers(instance_dir, storage_root) == []
    assert _job(app, asset_id).status == JobStatus.QUEUED
    assert shown()["status"] == "restarting" and "waiting for a worker" in shown()["step"]

    # `media retry` no longer sends the crew to `verify`: it names the command that runs the job.
    out = _cli(app, instance_dir, "media", "retry", asset_id)
    assert out.returncode == 2 and "filmfund worker" in out.stderr and "verify it again" not in out.stderr, out.stderr

    # The same ingest again: the known take is not "settled"; its job runs here and finishes.
    out = _cli(app, instance_dir, "media", "ingest", str(take), "--wait", FILMFUND_MEDIA_PROFILES=str(fast))
    assert out.returncode == 0, out.stderr[-2000:]
    assert f"{asset_id} ready" in out.stdout and "ran 0 job(s)" not in out.stderr, out.stdout + out.stderr[-2000:]
    db.session.expire_all()
    assert services.get_asset(asset_id).state == AssetState.READY
    assert _leftovers(instance_dir, storage_root) == []
    assert list(services.work_dir().glob("job-*")) == []


def test_ingest_again_right_after_a_kill_takes_the_job_over(app, clips, instance_dir, tmp_path):
    """Run again within seconds of the kill (the job's lease has not expired by its age): the
    command waits until the job has missed two beats, then runs it; no temporary file stays."""
    from filmfund.media import services
    from filmfund.media.models import JobStatus

    take, slow, fast = _take_and_profiles(clips, tmp_path)
    env: dict[str, str] = {}  # heartbeat 0.3 s (_worker_env): two missed beats, 0.6 s
    ingest = subprocess.Popen([sys.executable, "-m", "filmfund.cli", "media", "ingest", str(take), "--wait"],
                              env=_worker_env(app, instance_dir, FILMFUND_MEDIA_PROFILES=str(slow), **env),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        wait_until(lambda: _job(app) is not None and _job(app).status == JobStatus.RUNNING, timeout=60, interval=0.1, message=lambda: f"the encode: {_job(app)} {ingest.poll()}")
    finally:
        ingest.send_signal(signal.SIGKILL)
        ingest.wait(timeout=10)
    out = _cli(app, instance_dir, "media", "ingest", str(take), "--wait", FILMFUND_MEDIA_PROFILES=str(fast), **env)
    assert out.returncode == 0 and "ready" in out.stdout and "ran 0 job(s)" not in out.stderr, out.stdout + out.stderr[-2000:]
    assert "stopped answering" in out.stderr  # it says what it took over
    assert _leftovers(instance_dir, services.storage().root) == []


def test_the_lease_never_takes_a_job_its_worker_beats_for(app, clips):
    """A worker of this host whose pid is gone, but whose row was beaten a moment ago, is not
    taken for dead (another container with the same hostname may be beating it); once it has
    missed two beats it is. A live process's job is kept until the stale limit."""
    from filmfund.db import utcnow
    from filmfund.media.jobs import worker_stopped

    gone = subprocess.Popen(["true"])
    gone.wait()
    here = socket.gethostname()
    beat = app.config["MEDIA_HEARTBEAT_SECONDS"]
    now = utcnow()
    assert not worker_stopped(f"{here}:{gone.pid}", now)
    assert worker_stopped(f"{here}:{gone.pid}", now - timedelta(seconds=2.5 * beat))
    alive = subprocess.Popen(["sleep", "30"])
    try:
        assert not worker_stopped(f"{here}:{alive.pid}", now - timedelta(seconds=10 * beat))
    finally:
        alive.kill()
        alive.wait()
    # Another host: only the heartbeat's age tells.
    assert not worker_stopped(f"render-box-2:{gone.pid}", now - timedelta(seconds=10 * beat))
    assert worker_stopped("render-box-2:1", now - timedelta(seconds=app.config["MEDIA_STALE_SECONDS"] + 1))


def test_a_live_worker_keeps_its_temporary_files(app, tmp_path):
    from filmfund.media import owners

    mine = tmp_path / f"{owners.file_prefix()}copy"
    mine.write_bytes(b"x")
    untagged = tmp_path / "tmpabc"
    untagged.write_bytes(b"x")
    gone = subprocess.Popen(["true"])
    gone.wait()
    dead = tmp_path / f"{gone.pid}@{socket.gethostname()}~copy"
    dead.write_bytes(b"x")
    os.utime(dead, (0, 0))
    assert owners.remove_dead(tmp_path, 1.0) == [dead]
    assert mine.exists() and untagged.exists()


def test_a_dropped_proxy_is_not_reported_ready(app, clips, runner, drain):
    """A checksum failure drops the proxy and queues its remake: verify says what is missing and
    that it is being made again, never `state=ready`, until the proxy is back."""
    from filmfund.media import services

    [result] = services.ingest_paths([clips / "small.mp4"])
    drain()
    asset = services.get_asset(result.asset.public_id)
    proxy = asset.rendition("proxy")
    store = services.storage()
    path = store.local_file(proxy.storage_key)
    os.chmod(path, 0o644)
    data = bytearray(path.read_bytes())
    data[1000:1004] = b"\xff\xff\xff\xff"
    path.write_bytes(bytes(data))

    for _ in range(2):  # the run that drops it, and the next one (no worker ran meanwhile)
        out = runner.invoke(args=["media", "verify", asset.public_id])
        assert f"{asset.public_id} fixity=" in out.stdout and "state=remaking missing=proxy" in out.stdout, out.output
        assert "state=ready" not in out.stdout
        assert "being made again" in out.output and "filmfund worker --burst" in out.output, out.output
    drain()
    out = runner.invoke(args=["media", "verify", asset.public_id])
    assert out.exit_code == 0 and f"{asset.public_id} fixity=ok state=ready" in out.stdout, out.output
