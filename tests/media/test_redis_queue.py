"""Many workers on the Redis queue (FILMFUND_QUEUE_URL=redis://…): the session's private redis-server."""
from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.fixture
def redis_url(session_redis):
    import redis

    redis.Redis.from_url(session_redis.url).flushdb()  # our own server, emptied for this test
    return session_redis.url


@pytest.fixture
def app_overrides(app_overrides, redis_url):
    return {**app_overrides, "QUEUE_URL": redis_url}


def test_two_workers_share_the_redis_queue(app, clips, instance_dir, tmp_path, redis_url):
    import redis

    from filmfund.extensions import db
    from filmfund.media import services
    from filmfund.media.models import AssetState, Job, JobStatus

    stills = []
    for n in range(2):
        path = tmp_path / f"still-{n}.png"
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i",
                        f"color=c=0x{n * 40:02x}3366:s=320x240", "-frames:v", "1", str(path)], check=True)
        stills.append(path)
    results = services.ingest_paths(stills)
    assert redis.Redis.from_url(redis_url).keys("*")  # the jobs are in Redis, not in SQLite

    env = {"PATH": "/usr/bin:/bin", "FILMFUND_INSTANCE_DIR": str(instance_dir),
           "FILMFUND_DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"], "FILMFUND_QUEUE_URL": redis_url,
           "FILMFUND_MEDIA_HEARTBEAT_SECONDS": "0.5"}
    cmd = [sys.executable, "-m", "filmfund.cli", "worker", "--burst"]
    workers = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for _ in range(2)]
    outs = [w.communicate(timeout=120) for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outs
    # No third run needed: a worker queues a job's follow-up before it looks for more work.

    db.session.expire_all()
    for r in results:
        assert services.get_asset(r.asset.public_id).state == AssetState.READY
    jobs = db.session.query(Job).all()
    assert len(jobs) == 4 and all(j.status == JobStatus.SUCCEEDED and j.attempts == 1 for j in jobs)
