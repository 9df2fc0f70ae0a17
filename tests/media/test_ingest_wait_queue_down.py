"""`media ingest --wait` when the queue's Redis cannot be reached (FILMFUND_QUEUE_URL=redis://…):
a loopback port nothing listens on, then the session's private redis-server."""
from __future__ import annotations

import re
import shutil
import socket
import time

import pytest

# The subject is the command and the queue, not the database: PostgreSQL alone (tests/conftest.py).
pytestmark = pytest.mark.one_database



@pytest.fixture
def dead_queue_url() -> str:
    """A Redis queue that cannot be reached: a loopback port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"redis://127.0.0.1:{port}/0"


@pytest.fixture
def app_overrides(app_overrides, dead_queue_url):
    return {**app_overrides, "QUEUE_URL": dead_queue_url}


def test_ingest_wait_with_the_queue_down_keeps_the_copies_and_says_so_in_one_line(app, runner, clips, tmp_path,
                                                                                  session_redis):
    """With the queue's Redis down, `media ingest --wait` still copies and hashes every take (the card
    can be put away), then says in one line that their checks wait for the queue, and exits 1: no
    thread's traceback, no two minutes spent waiting for jobs nobody can run. Once the queue is back,
    the same command runs the takes' jobs to the end."""
    import redis

    from filmfund import jobs
    from filmfund.extensions import db
    from filmfund.media import services
    from filmfund.media.models import AssetState

    folder = tmp_path / "card"
    folder.mkdir()
    shutil.copy(clips / "small.mp4", folder / "take.mp4")
    started = time.monotonic()
    down = runner.invoke(args=["media", "ingest", "--wait", str(folder)])
    assert down.exit_code == 1, down.output
    assert "Traceback" not in down.output and time.monotonic() - started < 60, down.output
    said = [ln for ln in down.output.splitlines() if ln.startswith("the work queue cannot be reached (FILMFUND_QUEUE_URL: ")]
    assert len(said) == 1 and "1 take(s) copied and hashed, not checked yet" in said[0], down.output
    public_id = re.search(r"^([0-9a-f]{32}) uploaded$", down.output, re.M).group(1)  # its line on stdout
    db.session.expire_all()
    asset = services.get_asset(public_id)
    assert asset.state == AssetState.UPLOADED and asset.sha256 and asset.sources  # kept, hashed, not checked

    redis.Redis.from_url(session_redis.url).flushdb()  # our own server, emptied for this test
    jobs.configure_queue(session_redis.url)  # the queue is back
    back = runner.invoke(args=["media", "ingest", "--wait", str(folder)])
    assert back.exit_code == 0 and f"{public_id} ready" in back.output, back.output
