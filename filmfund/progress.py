"""How far a long job is, and how long it has left: one home that every page, status endpoint,
the API and the command line ask.

- A footage job (verify, transcode) keeps its progress on its own row (`media_jobs`: progress,
  step, started_at), written by its heartbeat; `filmfund.media.board.job_progress` reads it here.
- Any other long task (the credits roll; a long export) has a `task_progress` row by name, written
  by the worker as it goes (`start`, `report`, `finish`, `fail`, each on its own connection, so a
  page polling it sees it at once, whatever transaction the task is in) and read by `read`.

`describe` turns either into what is shown: status, fraction, percent, step, and the seconds left
(from the rate so far; none before 2 % or 2 s, where a guess would mislead).
"""
from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from filmfund.db import utcnow
from filmfund.extensions import db


class TaskProgress(db.Model):
    """The progress of a long task that is not a footage job, by name (`credits_roll`)."""

    __tablename__ = "task_progress"

    name: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    status: Mapped[str] = mapped_column(sa.String(16), default="queued")  # queued, running, succeeded, failed
    progress: Mapped[float] = mapped_column(default=0.0)  # 0..1
    step: Mapped[str | None] = mapped_column(sa.String(200))
    error: Mapped[str | None] = mapped_column(sa.String(1000))
    queued_at: Mapped[datetime | None]
    started_at: Mapped[datetime | None]
    updated_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


def _aware(when: datetime | None) -> datetime | None:
    return when.replace(tzinfo=timezone.utc) if when is not None and when.tzinfo is None else when


def eta_seconds(started_at: datetime | None, fraction: float | None, now: datetime | None = None) -> float | None:
    """Seconds left at the rate so far; None when too early to tell."""
    started_at = _aware(started_at)
    if started_at is None or fraction is None or fraction < 0.02 or fraction >= 1:
        return None
    elapsed = ((now or utcnow()) - started_at).total_seconds()
    if elapsed < 2:
        return None
    return round(elapsed * (1 - fraction) / fraction, 1)


def describe(status: str, fraction: float | None, step: str | None, started_at: datetime | None,
             now: datetime | None = None, **extra: Any) -> dict[str, Any]:
    fraction = None if fraction is None else round(min(1.0, max(0.0, fraction)), 4)
    return {"status": status, "progress": fraction, "percent": None if fraction is None else int(fraction * 100),
            "step": step, "eta_seconds": eta_seconds(started_at, fraction, now) if status == "running" else None,
            "started_at": _aware(started_at).isoformat() if started_at else None, **extra}


def _write(name: str, **values: Any) -> None:
    """Upsert the task's row on a connection of its own, committed at once."""
    values["updated_at"] = utcnow()
    with db.engine.begin() as conn:
        done = conn.execute(sa.update(TaskProgress).where(TaskProgress.name == name).values(**values)).rowcount
        if not done:
            conn.execute(sa.insert(TaskProgress).values(name=name, **values))


def queued(name: str) -> None:
    _write(name, status="queued", progress=0.0, step=None, error=None, queued_at=utcnow(), started_at=None,
           finished_at=None)


def start(name: str, step: str | None = None) -> None:
    _write(name, status="running", progress=0.0, step=step, error=None, started_at=utcnow(), finished_at=None)


class Reporter:
    """`report(fraction, step)` for a running task, written at most every `every` seconds."""

    def __init__(self, name: str, every: float = 0.5):
        self.name, self.every, self._last = name, every, 0.0

    def __call__(self, fraction: float, step: str | None = None) -> None:
        now = time.monotonic()
        if now - self._last < self.every:
            return
        self._last = now
        values: dict[str, Any] = {"progress": round(min(1.0, max(0.0, fraction)), 4)}
        if step is not None:
            values["step"] = step[:200]
        _write(self.name, **values)


def finish(name: str) -> None:
    _write(name, status="succeeded", progress=1.0, finished_at=utcnow())


def fail(name: str, error: str) -> None:
    _write(name, status="failed", error=error[:1000], finished_at=utcnow())


def read(name: str) -> dict[str, Any]:
    """The task's progress as pages and the API show it (status `none` if it never ran)."""
    row = db.session.execute(sa.select(TaskProgress).where(TaskProgress.name == name)
                             .execution_options(populate_existing=True)).scalar_one_or_none()
    if row is None:
        return describe("none", None, None, None, error=None, finished_at=None)
    return describe(row.status, row.progress, row.step, row.started_at, error=row.error,
                    finished_at=_aware(row.finished_at).isoformat() if row.finished_at else None)
