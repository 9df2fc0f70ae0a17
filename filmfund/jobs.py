"""The task queue: huey, on an embedded SQLite file by default or Redis for many workers.

Tasks are declared once at import against `huey`; `configure_queue` points its storage at
the queue the settings name. Tasks take ids, never objects, and run inside an app context
(`app_task`). Durable job state (attempts, heartbeat, progress) lives in our own tables, so
a job whose worker died is found and re-queued (see filmfund.media).
"""
from __future__ import annotations

import logging
from functools import wraps
from typing import Callable
from urllib.parse import urlparse

from flask import Flask, has_app_context
from huey import Huey
from huey.storage import RedisStorage, SqliteStorage

log = logging.getLogger(__name__)

huey = Huey("filmfund", storage_class=SqliteStorage, filename=":memory:", results=False)
_worker_app: Flask | None = None


def configure_queue(url: str) -> None:
    parsed = urlparse(url)
    if parsed.scheme in ("redis", "rediss"):
        huey.storage = RedisStorage(name="filmfund", url=url)
    elif parsed.scheme == "sqlite":
        huey.storage = SqliteStorage(name="filmfund", filename=parsed.path or ":memory:")
    else:
        raise ValueError(f"FILMFUND_QUEUE_URL: unsupported scheme {parsed.scheme!r} (use sqlite:/// or redis://)")
    huey.immediate = False


def set_worker_app(app: Flask) -> None:
    global _worker_app
    _worker_app = app


def app_task(**task_kwargs) -> Callable:
    """A huey task that runs in an app context: the caller's in tests, the worker's otherwise."""

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
                    from filmfund.extensions import db

                    db.session.remove()

        return huey.task(**task_kwargs)(run)

    return deco


def run_burst(max_tasks: int | None = None) -> int:
    """Run every queued task (and every scheduled one already due), then return how many ran."""
    done = 0
    while max_tasks is None or done < max_tasks:
        for task in huey.read_schedule():
            huey.enqueue(task)
        task = huey.dequeue()
        if task is None:
            break
        huey.execute(task)
        done += 1
    return done


def init_app(app: Flask) -> None:
    configure_queue(app.config["QUEUE_URL"])
    app.extensions["huey"] = huey
