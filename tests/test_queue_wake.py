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
