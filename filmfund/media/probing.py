"""Probing the files of an ingest, before and apart from the app: ffprobe (via ffmpeg.py) on what
the bytes say is media. Light to import, so the command line starts the probes while it builds
the app (neither needs the other)."""
from __future__ import annotations

import contextlib
import functools
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable

from filmfund.media import avchd, ffmpeg
from filmfund.media.sniff import sniff


def probe_files(files: Iterable[Path]) -> dict[Path, Future]:
    """Start probing files (no app needed): ffprobe processes side by side, as they mostly wait
    on the card. The command line starts them while it builds the app; `ingest_paths` takes them."""
    files = list(files)
    # One thread more than probes (at most four): `ffmpeg -version` must not hold up the first probe.
    pool = ThreadPoolExecutor(max_workers=min(4, len(files) or 1) + 1, thread_name_prefix="probe")
    try:
        pool.submit(ffmpeg.version)  # asked once per process (every job records it): asked now, meanwhile
        return {f: pool.submit(_probe_file, f) for f in files}
    finally:
        pool.shutdown(wait=False)


def _probe_file(path: Path | str) -> tuple[dict | None, ffmpeg.MediaInfo | None, str | None]:
    if not str(path).startswith("concat:"):
        found = sniff(path)
        if not found.is_media:  # no ffprobe on a playlist, a text file or nothing
            return None, None, f"not probed: the file holds {found.description}"
    try:
        data = ffmpeg.probe(str(path))
        return data, ffmpeg.summarize(data), None
    except ffmpeg.FfmpegError as exc:
        return None, None, str(exc)


def recorded_at(path: Path | None, info: ffmpeg.MediaInfo | None) -> datetime | None:
    """When a clip was recorded: its container's creation time, else a camcorder's MDPM date."""
    if info and info.recorded_at:
        with contextlib.suppress(ValueError):
            value = datetime.fromisoformat(info.recorded_at.replace("Z", "+00:00"))
            return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    cam = camera_data(path) if path is not None else None
    return cam.recorded_at if cam else None


def camera_data(path: Path) -> avchd.CameraData | None:
    """A camcorder's MDPM data (date, make, model, start timecode, clock zone) of an AVCHD file.
    Read once per file version: the ingest asks for the date and the rest apart, and the early
    decode reads it while the file is probed."""
    if path.suffix.lower() not in (".mts", ".m2ts"):
        return None
    try:
        stat = path.stat()
    except OSError:
        return None
    return _camera_data(str(path), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _camera_data(path: str, _size: int, _mtime_ns: int) -> avchd.CameraData | None:
    return avchd.read_camera_data(Path(path))
