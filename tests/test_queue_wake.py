"""An idle worker takes a queued task when it is enqueued, not at its next poll (issue 17)."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

from filmfund.jobs import WakingSqliteStorage

# Enqueues one task into the queue file given, from its own process (as the CLI or the web does).
ENQUEUE = textwrap.dedent("""
    import sys
    from filmfund.jobs import WakingSqliteStorage
    WakingSqliteStorage("filmfund", filename=sys.argv[1]).enqueue(b"task from another process")
""")


def test_a_waiting_worker_is_woken_by_another_process(tmp_path):
    queue = str(tmp_path / "queue.db")
    worker = WakingSqliteStorage("filmfund", filename=queue, read_timeout=60)
    assert worker.dequeue(timeout=0) is None
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    producer = subprocess.Popen([sys.executable, "-c", ENQUEUE, queue], env=env)
    started = time.monotonic()
    try:
        got = worker.dequeue()  # waits for the wake-up (a poll would come after 60 s)
    finally:
        producer.wait(60)
    assert got == b"task from another process"
    assert time.monotonic() - started < 30  # woken, not timed out at read_timeout
    assert producer.returncode == 0


def test_a_dead_workers_wake_up_is_removed_and_an_empty_wait_times_out(tmp_path):
    queue = str(tmp_path / "queue.db")
    wake = tmp_path / "queue.db.wake"
    wake.mkdir()
    os.mkfifo(wake / "999999999")  # left by a killed worker: nobody reads it
    WakingSqliteStorage("filmfund", filename=queue).enqueue(b"x")
    assert not (wake / "999999999").exists()
    storage = WakingSqliteStorage("filmfund", filename=queue, read_timeout=0.2)
    assert storage.dequeue() == b"x"
    assert storage.dequeue() is None  # nothing queued: back after read_timeout, for huey to loop
    assert (wake / str(os.getpid())).exists()


def test_an_enqueue_writes_only_to_workers_fifos(tmp_path):
    """A wake-up is a byte written to each waiting worker's FIFO, and to nothing else: a file put
    in the folder is left as it is, and a FIFO still being made (its dot name) is not taken for a
    dead worker's."""
    queue = str(tmp_path / "queue.db")
    wake = tmp_path / "queue.db.wake"
    wake.mkdir()
    (wake / "notes.txt").write_text("keep me")
    os.mkfifo(wake / ".12345")  # a worker making its FIFO: not opened for reading yet
    WakingSqliteStorage("filmfund", filename=queue).enqueue(b"x")
    assert (wake / "notes.txt").read_text() == "keep me"
    assert (wake / ".12345").exists()


def test_the_threads_of_one_worker_share_its_wake_up(tmp_path):
    """`filmfund worker` runs its footage lane on more than one thread: they wait on one FIFO,
    made once, and each is woken by an enqueue from another process."""
    import threading

    queue = str(tmp_path / "queue.db")
    worker = WakingSqliteStorage("filmfund", filename=queue, read_timeout=60)
    got: list[bytes | None] = []

    def wait() -> None:  # as huey's consumer does: a wake-up another thread served gives None, so look again
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            task = worker.dequeue()
            if task is not None:
                got.append(task)
                return

    threads = [threading.Thread(target=wait) for _ in range(2)]
    for t in threads:
        t.start()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    started = time.monotonic()
    for _ in range(2):
        subprocess.run([sys.executable, "-c", ENQUEUE, queue], env=env, check=True, timeout=60)
    for t in threads:
        t.join(60)
    assert got == [b"task from another process"] * 2
    assert time.monotonic() - started < 30  # woken: read_timeout is 60 s
    assert sorted(p.name for p in (tmp_path / "queue.db.wake").iterdir()) == [str(os.getpid())]


def test_a_queue_that_cannot_be_read_is_logged_once_a_minute(app):
    """Probe (ops, F5): with the queue's Redis down the worker logged 35,000 lines in 68 s, each
    failed read with its traceback. The consumer's loggers now keep the first of each message
    and count its repeats within a minute into the next one logged."""
    import logging

    from filmfund import jobs

    kept = []

    class Keep(logging.Handler):
        def emit(self, record):
            kept.append(record.getMessage())

    jobs.huey.create_consumer(workers=1, worker_type="thread")  # makes huey's consumer loggers
    jobs.quiet_repeated_errors()
    logger = logging.getLogger("huey.consumer.Worker")
    handler = Keep()
    logger.addHandler(handler)
    try:
        for second in range(0, 130):  # one failed read a second for two minutes
            record = logger.makeRecord(logger.name, logging.ERROR, __file__, 1, "Error reading from queue", (), None)
            record.created = 1_000_000 + second
            logger.handle(record)
        logger.error("Unhandled error during execution of task %s.", "t1")  # another message: kept
    finally:
        logger.removeHandler(handler)
        for f in list(logger.filters):
            logger.removeFilter(f)
    assert kept == ["Error reading from queue",
                    "Error reading from queue (and 59 more like it in the last minute, not logged)",
                    "Error reading from queue (and 59 more like it in the last minute, not logged)",
                    "Unhandled error during execution of task t1."]
