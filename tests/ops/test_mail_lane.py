"""Mail never waits behind footage (issue 14 item 4), on the embedded SQLite queue and on Redis.

`filmfund run --workers 1` (one footage thread) as a real subprocess on a free port
(never the default 5000). A footage job runs a real ffmpeg encode and holds the worker's only
footage thread until the test releases it; meanwhile a donor asks for a sign-in link over HTTP,
and the mail must be in the outbox within seconds, the encode still running. A mail built by the
worker itself (no request to learn the address from) links to the address the site is served on.
"""
from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from filmfund import jobs
from tests.ops.conftest import ROOT, process_alive
from tests.redis_server import RedisServer
from tests.waiting import wait_until

# Its subject is the queue's lanes, not the database (tests/conftest.py: one_database).
pytestmark = pytest.mark.one_database

LANES_DIR = Path(__file__).parent / "lanes"
MAIL_WITHIN = 5.0  # seconds from the sign-in request to the mail in the outbox


def _lanes_module():
    """tests/ops/lanes/sitecustomize.py, loaded once here (the worker loads it at start)."""
    name = "filmfund_test_lanes"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, LANES_DIR / "sitecustomize.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture(params=["sqlite", "redis"])
def queue_env(request, app, tmp_path):
    """The queue both this test and the server's worker use: the instance's SQLite file, or a
    private redis-server."""
    if request.param == "sqlite":
        yield {}
        return
    folder = tmp_path / "redis"
    folder.mkdir()
    server = RedisServer(folder).start()
    jobs.configure_queue(server.url)
    try:
        yield {"FILMFUND_QUEUE_URL": server.url}
    finally:
        jobs.configure_queue(app.config["QUEUE_URL"])
        server.stop()


def _mails(outbox: Path, needle: str) -> list[str]:
    texts = [p.read_text(errors="replace") for p in outbox.glob("*.eml")] if outbox.exists() else []
    return [t for t in texts if needle in t]


def test_a_sign_in_mail_arrives_within_seconds_while_an_encode_holds_the_only_worker(
        app, start_server, make_user, instance_dir, queue_env, tmp_path):
    lanes = _lanes_module()
    donor = "waiting-donor@example.org"
    make_user(donor, "donor")
    server = start_server("--workers", "1", PYTHONPATH=os.pathsep.join([str(LANES_DIR), str(ROOT)]), **queue_env)
    port = int(server.base.rsplit(":", 1)[1])
    assert port != 5000
    assert server.read_line("links in mail:") == (
        f"links in mail: {server.base} (the address served on; set FILMFUND_PUBLIC_URL for another)")

    started, release, finished = (tmp_path / n for n in ("started", "release", "finished"))
    lanes.hold_footage(str(started), str(release), str(finished))
    encoder_pid = int(wait_until(lambda: started.exists() and started.read_text(), timeout=60,
                                 message="the footage job did not start"))
    outbox = instance_dir / "outbox"
    try:
        web = requests.Session()
        page = web.get(server.base + "/login", timeout=30)
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.text).group(1)
        asked = time.monotonic()
        assert web.post(server.base + "/login", data={"csrf_token": token, "email": donor},
                        timeout=30).status_code == 200
        [mail] = wait_until(lambda: _mails(outbox, donor), timeout=30)
        took = time.monotonic() - asked
        assert took < MAIL_WITHIN, f"the sign-in mail took {took:.1f} s"
        print(f"sign-in mail during a held encode ({'redis' if queue_env else 'sqlite'}): {took:.2f} s")
        assert f"{server.base}/login/magic/" in mail.replace("=\n", "")
        assert not finished.exists() and process_alive(encoder_pid)  # the encode still runs

        # A mail the worker builds with no request (as receipts and updates are) links to the
        # address the site is served on, not http://127.0.0.1:5000.
        lanes.mail_public_link("worker-link@example.org")
        [built] = wait_until(lambda: _mails(outbox, "worker-link@example.org"), timeout=MAIL_WITHIN)
        assert f"base: {server.base}\n" in built
        assert not finished.exists() and process_alive(encoder_pid)
    finally:
        release.write_text("go")
    assert wait_until(lambda: finished.exists() and finished.read_text(), timeout=30) == "ffmpeg still running"
    assert server.stop() == 0


def test_a_standalone_worker_without_a_public_url_says_where_its_links_point(app, run_env, tmp_path):
    def burst(**env):
        return subprocess.run([sys.executable, "-m", "filmfund.cli", "worker", "--burst"], env={**run_env, **env},
                              cwd=tmp_path, capture_output=True, text=True, timeout=120)

    bare = burst()
    assert bare.returncode == 0, bare.stderr
    assert "FILMFUND_PUBLIC_URL is not set" in bare.stderr and "http://127.0.0.1:5000" in bare.stderr
    public = burst(FILMFUND_PUBLIC_URL="https://film.example.org")
    assert public.returncode == 0 and "FILMFUND_PUBLIC_URL" not in public.stderr
