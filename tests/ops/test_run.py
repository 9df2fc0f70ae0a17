"""`filmfund run` over real HTTP: several processes on one port, the real client behind a proxy,
and SIGTERM/SIGINT stopping every process it started (the worker included)."""
from __future__ import annotations

import json
import signal
import urllib.error
import urllib.request

import pytest

from filmfund import serving
from tests.ops.conftest import process_alive, processes_with_env


def _post(base: str, path: str, body: dict, headers: dict | None = None) -> tuple[int, dict]:
    req = urllib.request.Request(base + path, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def _niceness(pid: int) -> int:
    """A process's nice value, as the kernel reports it (/proc/PID/stat, field 19)."""
    with open(f"/proc/{pid}/stat") as fh:
        return int(fh.read().rsplit(")", 1)[1].split()[16])


def _get(base: str, path: str) -> int:
    with urllib.request.urlopen(base + path, timeout=30) as resp:
        return resp.status


@pytest.mark.parametrize("sig, processes", [(signal.SIGTERM, "2"), (signal.SIGINT, "1")])
def test_a_stop_signal_stops_the_web_processes_and_the_worker(start_server, instance_dir, sig, processes,
                                                              private_redis):
    server = start_server("--processes", processes, FILMFUND_RATELIMIT_STORAGE_URL=private_redis.url)
    assert _get(server.base, "/healthz") == 200
    started = [server.worker_pid, *server.web_pids]
    assert all(process_alive(pid) for pid in started)
    # The worker (and so its encodes) yields the cores to the web processes: nice +10 beside them.
    assert {_niceness(pid) for pid in server.web_pids} == {_niceness(server.proc.pid)}
    assert _niceness(server.worker_pid) == min(19, _niceness(server.proc.pid) + serving.WORKER_NICENESS)
    assert len(processes_with_env(str(instance_dir))) >= 1 + int(processes)

    assert server.stop(sig) == 0
    assert not [pid for pid in started if process_alive(pid)]
    # Nothing that carries this instance's environment (worker, web processes, their children) is left.
    assert processes_with_env(str(instance_dir)) == []


def test_behind_a_proxy_rate_limits_and_the_log_key_on_the_real_client(start_server, campaign, private_redis):
    server = start_server("--processes", "2", "--threads", "4", FILMFUND_TRUSTED_PROXIES="1",
                          FILMFUND_RATELIMIT_STORAGE_URL=private_redis.url)
    client_a = {"X-Forwarded-For": "198.51.100.9"}
    pledge = {"amount": 2000, "email": "donor@example.org"}
    for _ in range(30):  # POST /api/v1/pledges allows 30 a minute per client
        status, body = _post(server.base, "/api/v1/pledges", pledge, client_a)
        assert status == 201, body
    status, body = _post(server.base, "/api/v1/pledges", pledge, client_a)
    assert status == 429, body  # counted across both processes: the counter is shared
    # A spoofed address in front of the proxy's does not dodge the limit: only the proxy's entry counts.
    status, _ = _post(server.base, "/api/v1/pledges", pledge, {"X-Forwarded-For": "203.0.113.7, 198.51.100.9"})
    assert status == 429
    # Another client behind the same proxy (the same socket address, 127.0.0.1) is not limited.
    status, body = _post(server.base, "/api/v1/pledges", pledge, {"X-Forwarded-For": "198.51.100.10"})
    assert status == 201, body

    # The campaign document, answered by Flask or from a process's shared cache: logged alike.
    sent, kept = 0, 0
    while kept < 2 and sent < 200:  # two processes: each asks Flask first, then keeps the answer a second
        req = urllib.request.Request(server.base + "/api/v1/campaign", headers={"X-Forwarded-For": "198.51.100.11"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            assert resp.status == 200
            kept += resp.headers.get("Age") is not None
        sent += 1
    assert kept == 2

    assert server.stop() == 0
    lines = server.stderr_text.splitlines()
    assert sum('198.51.100.11 "GET /api/v1/campaign" 200' in line for line in lines if "filmfund.access" in line) == sent
    access = [line for line in lines if "filmfund.access" in line and "pledges" in line]
    assert len(access) == 33
    assert sum('198.51.100.9 "POST /api/v1/pledges" 201' in line for line in access) == 30
    assert sum('198.51.100.9 "POST /api/v1/pledges" 429' in line for line in access) == 2
    assert sum('198.51.100.10 "POST /api/v1/pledges" 201' in line for line in access) == 1
    assert not any("127.0.0.1" in line for line in access)


def test_several_processes_need_a_shared_rate_limit_storage():
    with pytest.raises(SystemExit, match="FILMFUND_RATELIMIT_STORAGE_URL"):
        serving.ratelimit_storage({"RATELIMIT_STORAGE_URI": "memory://", "QUEUE_URL": "sqlite:///q.db"}, 2)
    assert serving.ratelimit_storage({"RATELIMIT_STORAGE_URI": "memory://", "QUEUE_URL": "sqlite:///q"}, 1) \
        == "memory://"
    # A Redis queue is a shared server already: the counters go there.
    assert serving.ratelimit_storage({"RATELIMIT_STORAGE_URI": "memory://", "QUEUE_URL": "redis://r:6379/1"}, 3) \
        == "redis://r:6379/1"
    assert serving.ratelimit_storage({"RATELIMIT_STORAGE_URI": "redis://r/2"}, 4) == "redis://r/2"


def test_each_web_process_gets_a_pool_sized_for_its_threads():
    opts = serving.engine_options({"pool_pre_ping": True}, "postgresql+psycopg://db/x", 12)
    assert opts == {"pool_pre_ping": True, "pool_size": 12, "max_overflow": 4, "pool_timeout": 10}
    assert serving.engine_options({}, "sqlite:///x.db", 12) == {}


def _declare(base: str, path: str, length: int, wait: float = 10.0) -> bytes:
    """A POST that declares a body of `length` bytes and sends none: what the server answers
    before reading it (a server that waits for the body answers nothing)."""
    import socket

    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=wait) as s:
        s.sendall((f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                   f"Content-Length: {length}\r\n\r\n").encode())
        try:
            return s.recv(200)
        except socket.timeout:
            return b"(no answer: the server waits for the body)"


@pytest.mark.one_database  # waitress's limit, before the app and its database are asked
def test_a_strangers_huge_body_is_refused_before_it_is_read(start_server, campaign):
    """waitress writes a body to a temporary file before the app is asked: it took up to the footage
    limit (64 GiB) on every path, so one anonymous POST could fill the disk. Footage comes in chunks:
    no request's body may be larger than twice a chunk (64 MiB at least)."""
    server = start_server()
    for path in ("/login", "/api/v1/pledges", "/media/upload"):
        assert _declare(server.base, path, 65 * 1024**2).startswith(b"HTTP/1.1 413"), path
    assert not _declare(server.base, "/api/v1/pledges", 1024, wait=1.0).startswith(b"HTTP/1.1 413")


def test_an_app_without_the_setting_is_served_with_the_same_floor(monkeypatch):
    """serve_forever serves any Flask app (the hot-path bench's bare one has no filmfund settings):
    its body limit is then the same floor, not None (waitress refused to start)."""
    from flask import Flask

    seen = {}
    monkeypatch.setattr(serving, "serve", lambda app, **kw: seen.update(kw))
    monkeypatch.setattr(serving.signal, "signal", lambda *_args: None)  # this test process keeps its own
    serving.serve_forever(Flask("bare"), sock=None, threads=1)
    assert seen["max_request_body_size"] == 64 * 1024**2
