"""The task queue: huey, on an embedded SQLite file by default or Redis for many workers.

Two lanes, each a huey instance with its own queue (a queue name in the same SQLite file, or its
own Redis key) and its own consumer threads in every worker:
- `mail`: mail and payments (sign-in links, receipts, update mail, webhook booking). Short tasks;
  its consumer has its own threads, so a sign-in link never waits behind footage. Within the lane a
  task's priority orders what is queued (URGENT: a person is waiting for it; bulk mail: 0).
- `huey`: everything else (footage ingest, verify, transcode, credits roll, the periodic sweeps).

Tasks are declared once at import against their lane; `configure_queue` points each lane's storage
at the queue the settings name. Tasks take ids, never objects, and run inside an app context
(`app_task`). Durable job state (attempts, heartbeat, progress) lives in our own tables, so
a job whose worker died is found and re-queued (see filmfund.media).
"""
from __future__ import annotations

import atexit
import contextlib
import errno
import logging
import os
import select
import stat
import sys
import threading
from functools import wraps
from pathlib import Path
from typing import Any, Callable, Sequence
from urllib.parse import urlparse

from flask import Flask, has_app_context
from flask_babel import lazy_gettext as _l

# huey.storage imports psycopg for huey's own PostgreSQL storage, which filmfund never uses (the
# queue is SQLite or Redis; a PostgreSQL database reaches psycopg through SQLAlchemy, which imports
# it when it connects): 85 ms of CPU at the start of every command and worker, taken from the
# encode on a lone clip's ingest (issue 17). So huey is imported with psycopg hidden, unless it is
# loaded already; huey then refuses only its PostgreSQL storage, with its own message.
_psycopg_hidden = "psycopg" not in sys.modules
if _psycopg_hidden:
    sys.modules["psycopg"] = None  # type: ignore[assignment]  # `import psycopg` raises ImportError
try:
    from huey import Huey
    from huey.storage import PriorityRedisStorage, RedisStorage, SqliteStorage
finally:
    if _psycopg_hidden:
        del sys.modules["psycopg"]

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from filmfund.errors import DomainError
from filmfund.extensions import db

log = logging.getLogger(__name__)


class WakingSqliteStorage(SqliteStorage):
    """huey's embedded SQLite queue without the polling delay: an idle worker waits for a wake-up
    that every enqueue sends, and looks at the table again at least every `read_timeout` seconds
    (a task scheduled for later, a wake-up lost).

    The wake-up is a byte written to a FIFO per waiting process, in a folder beside the queue
    file (`queue.db.wake/<pid>`; a FIFO has no path-length limit, unlike a UNIX socket). A FIFO
    nobody reads any more (a killed worker) is removed by the next enqueue. huey's consumer sees
    `blocking = True` and calls dequeue again at once instead of backing off to `max_delay`;
    Redis does the same with BRPOP (RedisStorage's default)."""

    blocking = True

    def __init__(self, name: str = "huey", filename: str = ":memory:", read_timeout: float = 1.0, **kwargs):
        super().__init__(name=name, filename=filename, **kwargs)
        self.read_timeout = read_timeout
        self.wake_dir = None if filename == ":memory:" else Path(f"{filename}.wake")
        self._event = threading.Event()  # an in-memory queue: enqueue and worker in one process
        self.name = name
        self._fifo: tuple[int, int, Path] | None = None  # (pid, read fd, path) of this process
        self._lock = threading.Lock()

    def enqueue(self, data, priority=None):
        super().enqueue(data, priority)
        self.wake()

    def add_to_schedule(self, data, ts):
        super().add_to_schedule(data, ts)
        self.wake()  # the scheduler may be waiting too: a task due now is then read at once

    def wake(self) -> None:
        self._event.set()
        folder = self.wake_dir  # read once: another thread may give up on wake-ups meanwhile
        if folder is None:
            return
        with contextlib.suppress(FileNotFoundError):
            for entry in os.scandir(folder):
                if entry.name.startswith("."):
                    continue  # a FIFO being made (see _wake_fd), not yet read
                try:
                    if not stat.S_ISFIFO(entry.stat(follow_symlinks=False).st_mode):
                        continue  # only the workers' FIFOs are written to, never a file put there
                except FileNotFoundError:
                    continue
                try:
                    fd = os.open(entry.path, os.O_WRONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
                except OSError as exc:
                    if exc.errno == errno.ENXIO:  # no reader: its worker is gone
                        with contextlib.suppress(FileNotFoundError):
                            os.unlink(entry.path)
                    continue
                try:
                    os.write(fd, b"w")
                except BlockingIOError:
                    pass  # full of unread wake-ups: that worker will look anyway
                finally:
                    os.close(fd)

    def dequeue(self, timeout: float | None = None):
        wait = self.read_timeout if timeout is None else timeout
        fd = self._wake_fd() if wait > 0 else None  # listening before looking: no wake-up missed
        data = super().dequeue()
        if data is not None or wait <= 0:
            return data
        if fd is None:
            self._event.wait(wait)
            self._event.clear()
        else:
            with contextlib.suppress(InterruptedError):
                if select.select([fd], [], [], wait)[0]:
                    with contextlib.suppress(BlockingIOError):
                        os.read(fd, 4096)
        return super().dequeue()

    def _wake_fd(self) -> int | None:
        with self._lock:  # the threads of one worker share its FIFO
            if self.wake_dir is None:
                return None
            if self._fifo is None or self._fifo[0] != os.getpid():  # made again after a fork
                # One FIFO per process and lane: a worker waits on both lanes' queues at once.
                name = str(os.getpid()) if self.name == "filmfund" else f"{os.getpid()}.{self.name}"
                path = self.wake_dir / name
                # Made under a dot name and opened before it takes its own: an enqueue in another
                # process never finds it without a reader (and removes it as a dead worker's).
                making = self.wake_dir / f".{name}"
                try:
                    self.wake_dir.mkdir(mode=0o700, exist_ok=True)
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(making)
                    os.mkfifo(making, 0o600)
                    fd = os.open(making, os.O_RDONLY | os.O_NONBLOCK)
                    os.open(making, os.O_WRONLY | os.O_NONBLOCK)  # kept open: no EOF when a writer closes
                    os.replace(making, path)
                except OSError as exc:
                    log.warning("queue wake-up unavailable (%s): polling every %.1f s", exc, self.read_timeout)
                    self.wake_dir = None
                    return None
                self._fifo = (os.getpid(), fd, path)
                atexit.register(_unlink_quietly, path)
            return self._fifo[1]


def _unlink_quietly(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()


huey = Huey("filmfund", storage_class=WakingSqliteStorage, filename=":memory:", results=False)
mail = Huey("filmfund-mail", storage_class=WakingSqliteStorage, filename=":memory:", results=False)
LANES: tuple[Huey, ...] = (mail, huey)  # the order a burst and a QueueDriver read them: mail first
# What a crew member's `media ingest --wait` runs of a queue it may share with the site: footage
# work only. Mail and payments (sign-in links, receipts, bookings, updates) are the site's worker's,
# which runs with the site's settings; a command typed in another shell may lack its mail server
# or public address, and would send a donor's mail to a local outbox or with links to this machine.
FOOTAGE_ONLY: tuple[Huey, ...] = (huey,)
URGENT = 10  # priority of a task someone is waiting for (a sign-in link, a payment's booking)
MAIL_LANE_THREADS = 2  # a long mailing (an update to every donor) leaves a thread for a sign-in link
_worker_app: Flask | None = None


# What a Redis queue raises when it cannot be reached (a read, or a write before `_reached` turns it
# into QueueUnavailable).
QUEUE_FAULTS = (RedisConnectionError, RedisTimeoutError)


class QueueUnavailable(DomainError):
    """The queue's Redis cannot be reached: nothing was queued. Said to the person in one line
    (the log names FILMFUND_QUEUE_URL and the error), never as a traceback; a use case whose work
    is kept in its own rows (a footage job) leaves it to the recovery that re-queues it
    (`enqueue_or_leave`)."""

    status, code = 503, "queue_unavailable"


def _reached(method):
    """A Redis storage's write, turned into QueueUnavailable when Redis cannot be reached."""
    @wraps(method)
    def write(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except QUEUE_FAULTS as exc:
            log.error("the work queue cannot be reached (FILMFUND_QUEUE_URL): %s", exc)
            raise QueueUnavailable(str(_l("The work queue cannot be reached right now: nothing was queued. "
                                         "Try again in a few minutes."))) from exc
    return write


class _ReachedRedisStorage(RedisStorage):
    enqueue = _reached(RedisStorage.enqueue)
    add_to_schedule = _reached(RedisStorage.add_to_schedule)


class _ReachedPriorityRedisStorage(PriorityRedisStorage):
    enqueue = _reached(PriorityRedisStorage.enqueue)
    add_to_schedule = _reached(PriorityRedisStorage.add_to_schedule)


def enqueue_or_leave(enqueue: Callable[[], Any], what: str) -> bool:
    """Queue work whose state is kept in our own tables (so a recovery finds it and queues it
    again): with the queue down, it is logged and left, not an error for the person who asked
    (their change is saved). False if it was left."""
    try:
        enqueue()
    except QueueUnavailable as exc:
        log.warning("%s not queued now (%s): the recovery sweep queues it once the queue is back", what, exc)
        return False
    return True


def configure_queue(url: str) -> None:
    parsed = urlparse(url)
    for lane in LANES:
        if parsed.scheme in ("redis", "rediss"):
            # Blocking dequeue (BRPOP/BZPOPMIN, 1 s): an idle worker takes a new task the moment it
            # is pushed. The mail lane is a sorted set (PriorityRedisStorage) so priorities count.
            storage_class = _ReachedPriorityRedisStorage if lane is mail else _ReachedRedisStorage
            lane.storage = storage_class(name=lane.name, url=url, blocking=True, read_timeout=1)
        elif parsed.scheme == "sqlite":
            lane.storage = WakingSqliteStorage(name=lane.name, filename=parsed.path or ":memory:")
        else:
            raise ValueError(f"FILMFUND_QUEUE_URL: unsupported scheme {parsed.scheme!r} (use sqlite:/// or redis://)")
        lane.immediate = False


class OncePerMinute(logging.Filter):
    """The queue's consumer logs every failed read with its traceback, several a second while the
    queue's Redis is down (2 MB a minute: a long outage fills a disk, and the one useful line is
    lost). The first of each message is kept whole; its repeats within a minute are dropped and
    counted, and the next one says how many were."""

    def __init__(self, every: float = 60.0):
        super().__init__()
        self.every = every
        self._last: dict[str, tuple[float, int]] = {}
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        key, now = str(record.msg), record.created
        with self._lock:
            since, dropped = self._last.get(key, (0.0, 0))
            if now - since < self.every:
                self._last[key] = (since, dropped + 1)
                return False
            self._last[key] = (now, 0)
        if dropped:
            record.msg = f"{record.msg} (and {dropped} more like it in the last minute, not logged)"
        return True


def quiet_repeated_errors() -> None:
    """OncePerMinute on huey's consumer loggers (one per worker thread and the scheduler, made
    with the consumers: a filter on their parent would not see their records)."""
    repeats = OncePerMinute()
    for name in list(logging.root.manager.loggerDict):
        if name == "huey.consumer" or name.startswith("huey.consumer."):
            logging.getLogger(name).addFilter(repeats)


def set_worker_app(app: Flask) -> None:
    global _worker_app
    _worker_app = app


def app_task(lane: Huey = huey, *, registered_as: str | None = None, **task_kwargs) -> Callable:
    """A huey task that runs in an app context: the caller's in tests, the worker's otherwise.
    `lane=jobs.mail` for mail and payments (with `priority=URGENT` when someone waits for it).

    huey keys a task by "<module of the function>.<name>" and stores that key in every queued
    message. A task moved to another module passes its old key as `registered_as`
    ("filmfund.media.tasks.run_media_job"), so messages an older version queued are still found
    (huey's own `name=` replaces only the part after the module)."""

    def deco(fn):
        @wraps(fn)
        def run(*args, **kwargs):
            if has_app_context():
                return fn(*args, **kwargs)
            if _worker_app is None:
                raise RuntimeError("no app for this task: start it through `filmfund worker`")
            with _worker_app.app_context():
                try:
                    return fn(*args, **kwargs)
                finally:
                    db.session.remove()

        if registered_as is None:
            return lane.task(**task_kwargs)(run)
        run.__module__, _, name = registered_as.rpartition(".")
        return lane.task(name=name, **task_kwargs)(run)

    return deco


def in_worker_app(fn: Callable[[], Any], skipped: Any = 0) -> Any:
    """Run a periodic task's body in the caller's app context (tests), or the worker's; without
    either (a consumer started outside `filmfund worker`) it is skipped, with a warning."""
    if has_app_context():
        return fn()
    if _worker_app is None:
        log.warning("periodic task skipped: no app (start it through `filmfund worker`)")
        return skipped
    with _worker_app.app_context():
        try:
            return fn()
        finally:
            db.session.remove()


def _dequeue(lane: Huey, timeout: float):
    """The next queued message of `lane`, waiting up to `timeout` seconds (0: none) for one."""
    storage = lane.storage
    if isinstance(storage, WakingSqliteStorage):
        return storage.dequeue(timeout=timeout)
    if isinstance(storage, PriorityRedisStorage):
        if timeout <= 0:
            items = storage.conn.zpopmin(storage.queue_key, count=1)
            return items[0][0][8:] if items else None
        popped = storage.conn.bzpopmin(storage.queue_key, timeout=timeout)
        return popped[1][8:] if popped else None
    if isinstance(storage, RedisStorage):
        if timeout <= 0:
            return storage.conn.rpop(storage.queue_key)
        popped = storage.conn.brpop(storage.queue_key, timeout=timeout)
        return popped[1] if popped else None
    return storage.dequeue()


def dequeue_now(lanes: Sequence[Huey] = LANES):
    """The next queued task of any of `lanes` (mail first) as (lane, task), or None at once."""
    for lane in lanes:
        data = _dequeue(lane, 0)
        if data is not None:
            return lane, lane.deserialize_task(data)
    return None


def enqueue_due() -> None:
    """Move every scheduled task already due into its lane's queue."""
    for lane in LANES:
        for task in lane.read_schedule():
            lane.enqueue(task)


def run_burst(max_tasks: int | None = None, lanes: Sequence[Huey] = LANES) -> int:
    """Run every queued task of `lanes` (and every scheduled one already due), then return how many ran."""
    done = 0
    while max_tasks is None or done < max_tasks:
        enqueue_due()
        found = dequeue_now(lanes)
        if found is None:
            break
        lane, task = found
        lane.execute(task)
        done += 1
    return done


def pending_count() -> int:
    """Tasks queued in every lane."""
    return sum(lane.pending_count() for lane in LANES)


def flush() -> None:
    """Empty every lane (queue, schedule): tests, and `filmfund` commands that reset an instance."""
    for lane in LANES:
        lane.flush()


def _dequeue_within(timeout: float, lanes: Sequence[Huey] = LANES):
    """The next queued task of `lanes` as (lane, task), waiting up to `timeout` seconds (on the
    first lane, then a quick look at the others) for one to be enqueued."""
    found = dequeue_now(lanes)
    if found is not None or timeout <= 0:
        return found
    data = _dequeue(lanes[0], timeout)
    if data is not None:
        return lanes[0], lanes[0].deserialize_task(data)
    return dequeue_now(lanes)


def footage_threads(config) -> int:
    """Threads for the footage lane when none are asked for: one more than the encode slots
    (FILMFUND_ENCODE_SLOTS, media/ffmpeg.py), so that a job's work around its encode (claim, sniff,
    storing the outputs) runs while the next job encodes. `filmfund worker` and the QueueDriver."""
    return config["ENCODE_SLOTS"] + 1


class QueueDriver:
    """Runs the queue on threads of this process, as `filmfund worker` does (every queued task,
    and scheduled ones once due), while the caller goes on enqueueing: `media ingest --wait`
    encodes one clip while it copies the next. `finish()` waits until nothing is queued or due.
    `after_task()` is called on the thread that ran each task.

    Its threads: footage_threads() unless `threads` says. `lanes`: the lanes it runs (every lane
    unless said; `media ingest --wait` runs the footage lane only: see FOOTAGE_ONLY)."""

    def __init__(self, app: Flask, after_task: Callable[[], None] | None = None, threads: int | None = None,
                 lanes: Sequence[Huey] = LANES):
        self.app, self.after_task, self.lanes = app, after_task, tuple(lanes)
        self.ran = 0
        self.lost: Exception | None = None  # the queue's last fault while it could not be reached
        self._count = threading.Lock()
        self._closing = threading.Event()
        count = threads or footage_threads(app.config)
        self._threads = [threading.Thread(target=self._loop, name=f"filmfund-queue-driver-{i}", daemon=True)
                         for i in range(count)]

    def __enter__(self) -> "QueueDriver":
        set_worker_app(self.app)  # tasks push this app's context on the driver's threads
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.finish()

    def finish(self) -> int:
        self._closing.set()
        for lane in LANES:
            if isinstance(lane.storage, WakingSqliteStorage):
                lane.storage.wake()
        for thread in self._threads:
            if thread.is_alive():
                thread.join()
        return self.ran

    def _loop(self) -> None:
        # A thread leaves once the caller is done enqueueing and it finds nothing queued or due;
        # a task still running on another thread runs what it enqueues on that thread.
        while True:
            try:
                enqueue_due()
                found = _dequeue_within(0 if self._closing.is_set() else 0.5, self.lanes)
            except QUEUE_FAULTS as exc:
                # The queue's Redis went away: asked again each second until the caller is done
                # (what it left queued is kept in the jobs' own rows, for the recovery); the caller
                # says so once, without a thread's traceback.
                self.lost = exc
                if self._closing.wait(1.0):
                    return
                continue
            if found is None:
                if self._closing.is_set():
                    return
                continue
            lane, task = found
            try:
                lane.execute(task)
            except Exception:  # noqa: BLE001 - as huey's worker: logged, and the queue goes on
                log.exception("task %s failed", task.id)
            with self._count:
                self.ran += 1
            if self.after_task is not None:
                self.after_task()


def work_burst(app: Flask) -> int:
    """`filmfund worker --burst`: this process works for `app`, re-queues what a dead worker left
    running, books the Stripe events waiting (on PostgreSQL they wake a listening worker instead
    of queueing a task: rewards/booking_listener.py), then runs every queued task; returns how many
    tasks ran. Called in the worker's own app context (so its own database session)."""
    set_worker_app(app)
    recover = app.extensions.get("filmfund.recover_jobs")
    if recover:
        recover()
    book_waiting = app.extensions.get("filmfund.book_waiting_events")
    if book_waiting:
        book_waiting(app)
    return run_burst()


def init_app(app: Flask) -> None:
    configure_queue(app.config["QUEUE_URL"])
    app.extensions["huey"] = huey
    app.extensions["huey.mail"] = mail
