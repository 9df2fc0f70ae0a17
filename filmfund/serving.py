"""`filmfund run`: the site on waitress in N processes sharing one listening socket, plus the
embedded worker, under one supervisor that SIGTERM or SIGINT stops as a whole.

- The supervisor binds the socket once; each web process is forked from it and serves that
  inherited socket with waitress (the kernel spreads the connections between them). A web
  process that dies is restarted; so is the worker.
- Each process gets its own database pool, sized for its threads (`engine_options`).
- Several processes must share their rate-limit counters: a Redis storage
  (FILMFUND_RATELIMIT_STORAGE_URL, or the Redis queue's server), never per-process memory.
- Behind FILMFUND_TRUSTED_PROXIES reverse proxies, waitress passes X-Forwarded-* through and
  the app's ProxyFix takes the client address from them, so rate limits and the access log key
  on the real client (waitress alone would drop those headers).
- Children carry a parent-death signal: a supervisor killed with SIGKILL takes them with it.
"""
from __future__ import annotations

import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from typing import Callable
from urllib.parse import urlparse

from flask import Flask, request
from waitress import serve

from filmfund.config import REQUEST_BODY_FLOOR

log = logging.getLogger("filmfund.run")
access_log = logging.getLogger("filmfund.access")

PR_SET_PDEATHSIG = 1
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Stop(Exception):
    """Raised in the main thread by SIGTERM/SIGINT."""


def engine_options(base: dict, database_url: str, threads: int) -> dict:
    """A pool of one connection per server thread, with a little overflow; SQLite keeps its own."""
    if database_url.startswith("sqlite"):
        return dict(base)
    return {**base, "pool_size": threads, "max_overflow": 4, "pool_timeout": 10}


def ratelimit_storage(config: dict, processes: int) -> str:
    """The rate-limit storage URL for `processes` web processes (shared across them)."""
    url = config.get("RATELIMIT_STORAGE_URI") or "memory://"
    if processes <= 1 or not url.startswith("memory"):
        return url
    queue = config.get("QUEUE_URL") or ""
    if urlparse(queue).scheme in ("redis", "rediss"):
        return queue
    raise SystemExit(f"filmfund run --processes {processes}: rate limits kept in each process's memory would "
                     "not be shared; set FILMFUND_RATELIMIT_STORAGE_URL=redis://host:6379/N")


def bind(host: str, port: int, backlog: int = 1024) -> socket.socket:
    family, socktype, proto, _, addr = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM,
                                                          flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(family, socktype, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(addr)
    sock.listen(backlog)
    return sock


def _die_with_parent() -> None:
    """In a child: receive SIGTERM when the supervisor dies (Linux), so nothing is left behind."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
        except (OSError, AttributeError):
            pass


# The URL arguments that are secrets: every link that signs in, confirms, unsubscribes, downloads
# or streams carries its bearer token as <token> (a route's own name for it). Whoever reads the
# log must not be able to replay one: a mailed sign-in link read there is the donor's account.
SECRET_URL_ARGS = frozenset({"token"})
LOGGED_PATH = "filmfund.logged_path"


def install_access_log(app: Flask) -> None:
    """One line per request, keyed on the client address as the app sees it (after ProxyFix),
    answers from the shared cache included: so it wraps the whole WSGI app, not Flask's hooks.
    A path that carries a secret is logged as its route's pattern (`/login/magic/<token>`)."""
    @app.url_value_preprocessor
    def _path_for_the_log(_endpoint, values) -> None:
        if values and not SECRET_URL_ARGS.isdisjoint(values) and request.url_rule is not None:
            request.environ[LOGGED_PATH] = request.url_rule.rule

    app.wsgi_app = AccessLog(app.wsgi_app)


class AccessLog:
    """WSGI middleware writing the access log's line once the app has answered. ProxyFix (inside)
    rewrites REMOTE_ADDR in the same environ, so the address read afterwards is the client's."""

    def __init__(self, app: Callable) -> None:
        self.app = app

    def __call__(self, environ: dict, start_response: Callable):
        t0 = time.perf_counter()
        status: list[str] = []

        def logged_start(code, headers, exc_info=None):
            status[:] = [code]
            return start_response(code, headers, exc_info) if exc_info else start_response(code, headers)

        try:
            return self.app(environ, logged_start)
        finally:
            access_log.info('%s "%s %s" %s %.1fms', environ.get("REMOTE_ADDR"), environ.get("REQUEST_METHOD"),
                            environ.get(LOGGED_PATH) or environ.get("PATH_INFO"), status[0][:3] if status else "-",
                            (time.perf_counter() - t0) * 1000)


def _raise_stop(signum, _frame):
    raise Stop(signum)


def _exit(_signum, _frame):
    raise SystemExit(0)  # waitress closes its sockets and returns from serve() on SystemExit


def serve_forever(app: Flask, sock: socket.socket, threads: int) -> None:
    """Serve `sock` with waitress in this process until SIGTERM/SIGINT."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, _exit)
    serve(app, sockets=[sock], threads=threads, ident="filmfund",
          # waitress spools a body to disk before the app is asked: no larger than any route takes
          # (footage comes in chunks), so no stranger's POST fills the disk (config.py).
          # (an app without the setting, such as the benchmark's bare Flask app: the same floor).
          max_request_body_size=app.config.get("MAX_CONTENT_LENGTH") or REQUEST_BODY_FLOOR,
          # Behind trusted proxies ProxyFix (in the app) reads X-Forwarded-*: waitress must pass them.
          clear_untrusted_proxy_headers=not app.config.get("TRUSTED_PROXIES"),
          _quiet=True)


# The embedded worker runs below the web processes' CPU priority (nice +10), and so do its ffmpeg
# encodes, which can hold both cores for minutes: when both want the cores, a donor's page or
# gift goes first. Nothing the worker does is waited for by a request (a webhook is answered once
# its event is stored; the booking, the receipt, an encode follow), and everything it has to do
# is queued and durable: under a burst it falls behind and catches up when the burst passes. Even
# then it keeps a tenth of a contended core (Linux's weights for +10 against 0), so its heartbeats
# and periodic sweeps go on. It does not move the hot-path bench's webhook ratio (README: two A/B
# pairs, 0.28x and 0.29x at nice 0, 0.28x and 0.28x at +10).
WORKER_NICENESS = 10


def start_worker(workers: int | None, env: dict[str, str] | None = None) -> subprocess.Popen:
    """The embedded worker; `env` (config.child_environment) tells it, e.g., the served address.
    `workers` None: the worker's own default (its encode slots and one)."""
    threads = [] if workers is None else ["--workers", str(workers)]
    return subprocess.Popen([sys.executable, "-m", "filmfund.cli", "worker", *threads],
                            preexec_fn=_as_worker, env=env)


def _as_worker() -> None:
    """In the worker's child, before it runs: tied to the supervisor, and below the web's priority."""
    _die_with_parent()
    os.nice(WORKER_NICENESS)


def _fork_web(app: Flask, sock: socket.socket, threads: int, dispose: Callable[[], None]) -> int:
    pid = os.fork()
    if pid:
        return pid
    code = 0
    try:
        _die_with_parent()
        dispose()  # never share the supervisor's database connections
        serve_forever(app, sock, threads)
    except BaseException:  # noqa: BLE001 - a child never returns into the supervisor's code
        log.exception("web process %s failed", os.getpid())
        code = 1
    finally:
        logging.shutdown()
        os._exit(code)


def _alive(pid: int) -> bool:
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return False
    return done == 0


def supervise(app: Flask, sock: socket.socket, *, processes: int, threads: int, workers: int | None,
              dispose: Callable[[], None], on_ready: Callable[[subprocess.Popen, list[int]], None],
              worker_env: dict[str, str] | None = None) -> None:
    """Run `processes` web processes and the worker until SIGTERM/SIGINT, restarting any that die."""
    previous = {sig: signal.signal(sig, _raise_stop) for sig in STOP_SIGNALS}
    worker: subprocess.Popen | None = None
    web: dict[int, float] = {}
    try:
        worker = start_worker(workers, worker_env)
        if processes <= 1:
            on_ready(worker, [os.getpid()])
            serve_forever(app, sock, threads)  # returns on SIGTERM/SIGINT
            return
        for _ in range(processes):
            web[_fork_web(app, sock, threads, dispose)] = time.monotonic()
        on_ready(worker, list(web))
        while True:
            time.sleep(0.2)
            for pid, started in list(web.items()):
                if not _alive(pid):
                    del web[pid]
                    log.warning("web process %s exited; starting another", pid)
                    if time.monotonic() - started < 1:
                        time.sleep(1)  # a process that dies at start must not spin the supervisor
                    web[_fork_web(app, sock, threads, dispose)] = time.monotonic()
            if worker.poll() is not None:
                log.warning("worker %s exited (%s); starting another", worker.pid, worker.returncode)
                worker = start_worker(workers, worker_env)
    except Stop:
        pass
    finally:
        for sig in STOP_SIGNALS:  # a second Ctrl-C must not interrupt the clean-up
            signal.signal(sig, signal.SIG_IGN)
        _stop_all(worker, list(web))
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _stop_all(worker: subprocess.Popen | None, web: list[int], timeout: float = 20) -> None:
    procs = [pid for pid in web if _alive(pid)]
    for pid in procs:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    if worker is not None and worker.poll() is None:
        worker.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and (any(_alive(p) for p in procs)
                                            or (worker is not None and worker.poll() is None)):
        time.sleep(0.05)
    for pid in procs:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
    if worker is not None and worker.poll() is None:
        worker.kill()
        worker.wait()
