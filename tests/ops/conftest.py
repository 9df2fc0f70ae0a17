"""Operations tests: `filmfund run` as a real subprocess, a private Redis, fault injection.

The Redis here is our own `redis-server` on another loopback port (started, restarted and
stopped by the tests): the machine's Redis is never touched.
"""
from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.redis_server import RedisServer, free_port  # noqa: F401 - free_port is imported from here too

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def private_redis(tmp_path):
    """Our own redis-server that persists (appendonly, fsync always), for the restart tests."""
    folder = tmp_path / "redis"
    folder.mkdir()
    server = RedisServer(folder, persistent=True).start()
    yield server
    server.stop()


class Server:
    """`filmfund run ...` started as a subprocess; `stop(sig)` sends a signal and waits for it."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path):
        # Its own process group (the web processes, the worker and its encodes with it): what a
        # test leaves running is ended whole at teardown (kill_all).
        self.proc = subprocess.Popen([sys.executable, "-m", "filmfund.cli", "run", "--port", "0", *args],
                                     env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     start_new_session=True)
        self.stderr_lines: list[str] = []
        self._out = b""  # everything read from stdout so far: a later line may have come in the same read
        line = self._read_line(self.proc.stdout, "filmfund on http://", 60)
        self.base = line.split()[2]
        inner = line[line.index("(") + 1:line.index(")")]
        self.worker_pid = int(inner.split(",")[0].split()[-1])
        self.web_pids = [int(p) for p in inner.split("web pids", 1)[1].split()]

    def read_line(self, prefix: str, timeout: float = 30) -> str:
        """The first line of stdout that starts with `prefix` (already printed, or awaited)."""
        return self._read_line(self.proc.stdout, prefix, timeout)

    def _read_line(self, stream, prefix: str, timeout: float) -> str:
        sel = selectors.DefaultSelector()
        sel.register(stream, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        for line in self._out.decode(errors="replace").splitlines():
            if line.startswith(prefix):
                return line
        while time.monotonic() < deadline:
            if not sel.select(timeout=0.2):
                if self.proc.poll() is not None:
                    break
                continue
            chunk = os.read(stream.fileno(), 4096)
            if not chunk:
                break
            self._out += chunk
            for line in self._out.decode(errors="replace").splitlines():
                if line.startswith(prefix):
                    return line
        self.kill_all()
        err = self.stderr_text
        raise AssertionError(f"filmfund run: no line {prefix!r}: {self._out!r}\n{err[-3000:]}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 40) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise
        self.stderr_text = self.proc.stderr.read().decode(errors="replace")
        return code

    def kill_all(self) -> None:
        """SIGKILL to the server and every process it started. Killing the supervisor alone left its
        children to their parent-death SIGTERM: a worker finishing its jobs on a test's database
        kept the stderr pipe open (the read below waited out the test's 5 minutes) and held locks
        that the next tests of that database waited on."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(40)
        self.stderr_text = self.proc.stderr.read().decode(errors="replace")


def process_alive(pid: int) -> bool:
    """True if `pid` runs (a zombie, dead but not yet reaped, does not count)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def processes_with_env(marker: str) -> list[int]:
    """Pids of live processes whose environment contains `marker` (our unique instance folder)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker.encode() in (entry / "environ").read_bytes() and process_alive(int(entry.name)):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


@pytest.fixture
def run_env(app, database_url, instance_dir):
    """The environment for a `filmfund run` subprocess on this test's database and instance folder."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FILMFUND_", "STRIPE_"))}
    env.update(FILMFUND_INSTANCE_DIR=str(instance_dir), FILMFUND_DATABASE_URL=database_url,
               PYTHONUNBUFFERED="1")
    return env


@pytest.fixture
def start_server(run_env, tmp_path):
    started: list[Server] = []

    def _start(*args: str, **extra_env: str) -> Server:
        server = Server(list(args), {**run_env, **extra_env}, tmp_path)
        started.append(server)
        return server

    yield _start
    for server in started:
        server.kill_all()
