"""Probing the files of an ingest, before and apart from the app: ffprobe (via ffmpeg.py) on what
the bytes say is media. Light to import, so the command line starts the probes while it builds
the app (neither needs the other)."""
from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Iterable

from filmfund.media import ffmpeg
from filmfund.media.sniff import sniff


def probe_files(files: Iterable[Path]) -> dict[Path, Future]:
    """Start probing files (no app needed): ffprobe processes side by side, as they mostly wait
    on the card. The command line starts them while it builds the app; `ingest_paths` takes them."""
    files = list(files)
    pool = ThreadPoolExecutor(max_workers=min(4, len(files) or 1), thread_name_prefix="probe")
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
