"""Who owns a piece of running footage work, and whether that owner is gone: the one rule that
the reaper, `filmfund worker` at start, `media ingest --wait`, `media verify`, `media retry` and
the pages ask (through jobs.worker_stopped and tasks.recover_work).

An owner is a process, named `host:pid` (a job row's `worker`, a caption burn's `burn_worker`).
The temporary files a process makes while it works (an early decode's folder under
`media-work/early`, a copy being stored under the storage's `.incoming`, a streamed copy of an
S3 object under `media-work`) carry the same owner in their name (`PID@HOST~...`), so that what
a killed process left is removed as soon as that process is known to be gone, not a day later
by the daily sweep (which still removes untagged leftovers).

Light on purpose: `media ingest` names its early decode's folder before Flask is imported.
"""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import time
from pathlib import Path

_TAG = re.compile(r"^(\d+)@([A-Za-z0-9._-]+)~")


def me() -> str:
    """This process as an owner: `host:pid`."""
    return f"{socket.gethostname()}:{os.getpid()}"


def file_prefix() -> str:
    """The start of a temporary file's or folder's name that names this process as its owner."""
    return f"{os.getpid()}@{socket.gethostname()}~"


def owner_of(name: str) -> str | None:
    """The owner (`host:pid`) a temporary file's name carries, or None (an untagged name)."""
    m = _TAG.match(name)
    return f"{m.group(2)}:{m.group(1)}" if m else None


def process_gone(owner: str | None) -> bool:
    """The owner is a process of THIS host, other than this one, that no longer exists. False
    whenever that cannot be known (another host, no pid, a pid that exists again): only a
    heartbeat that stopped can then tell (jobs.worker_stopped)."""
    host, _, pid = (owner or "").rpartition(":")
    return (host == socket.gethostname() and pid.isdigit() and int(pid) != os.getpid()
            and not _pid_alive(int(pid)))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _last_touched(path: Path) -> float:
    """The newest mtime of a file, or of a folder and what is directly in it (ffmpeg's outputs)."""
    newest = path.stat().st_mtime
    if path.is_dir():
        for child in path.iterdir():
            with contextlib.suppress(FileNotFoundError):
                newest = max(newest, child.stat().st_mtime)
    return newest


def remove_dead(folder: Path, idle_seconds: float) -> list[Path]:
    """Remove the temporary files and folders in `folder` whose owner process is gone and that
    nothing wrote to for `idle_seconds` (the same two missed beats a job's lease asks: see
    jobs.worker_stopped). What was removed."""
    removed: list[Path] = []
    if not folder.is_dir():
        return removed
    now = time.time()
    for entry in folder.iterdir():
        owner = owner_of(entry.name)
        if owner is None or not process_gone(owner):
            continue
        try:
            if now - _last_touched(entry) < idle_seconds:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        except FileNotFoundError:
            continue
        removed.append(entry)
    return removed
