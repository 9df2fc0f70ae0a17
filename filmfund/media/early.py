"""The first take of `filmfund media ingest --wait`, checked and encoded while it is copied.

Before a take's verify job can decode it, the command has started, built the app, copied the take
into storage with its SHA-256 and registered it: about 1.5 s, all of it before the encode, and
on a lone 30 s clip that alone is a fifth of the encode's own time (issue 17). So the command
starts that take's decode pass at once, before it builds the app: a feeder thread reads the file
once, hashes what it feeds, and writes it into ffmpeg's stdin. An MPEG transport stream (the
AVCHD container) decodes from a pipe as from a file; other containers keep the usual path.

The take's verify job then *claims* this decode instead of running its own, only if:
- the argv is the one the job would run (the same profiles, probe, recording date and timecode;
  only the input and output paths differ), and
- the bytes fed to ffmpeg are the stored copy's: the same SHA-256 and size.
So the frames checked are the bytes kept, as when the job decodes the stored copy; a failing
card that reads differently twice is caught by the hash, and the job then decodes the stored
copy itself. A decode no job claims (the take was known already, another worker took its job)
is stopped and its files removed. Everything here is light: it runs before Flask is imported.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import shutil
import signal
import tempfile
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from filmfund.media import avchd, ffmpeg, owners
from filmfund.media.probing import camera_data, recorded_at

log = logging.getLogger(__name__)

# Transport streams: what a camcorder writes (.MTS, .M2TS) and broadcast captures (.TS).
STREAMABLE = (".mts", ".m2ts", ".ts")
PIPE = "pipe:0"
FOLDER = "early"  # under the instance's media-work folder
CHUNK = 1024 * 1024
OUTPUTS = {"proxy": ".mp4", "poster": ".jpg", "strip": ".jpg"}


@dataclass(eq=False)
class EarlyDecode:
    path: Path              # the card's file, as named on the command line
    folder: Path            # its outputs, until a job claims them
    argv: list[str]
    outputs: dict[str, Path]
    future: Future = field(default_factory=Future)  # the DecodeReport
    sha256: str | None = None  # of the bytes fed to ffmpeg, once all were fed
    size: int = 0
    listener: ffmpeg.ProgressCallback | None = None  # the claiming job's heartbeat
    duration: float | None = None  # the probe's
    stopped: threading.Event = field(default_factory=threading.Event)
    pid: int | None = None          # ffmpeg's process group, once it runs


_lock = threading.Lock()
_started: list[EarlyDecode] = []
_begun = threading.Event()  # the decode's ffmpeg runs, or it was not started


def work_folder(settings: dict[str, Any]) -> Path:
    path = Path(settings["INSTANCE_DIR"]) / "media-work" / FOLDER
    path.mkdir(parents=True, exist_ok=True)
    return path


def start(path: Path, probed: Future, settings: dict[str, Any]) -> None:
    """Start the take's decode as soon as its probe (already running) is done, without waiting
    for it here: the command goes on to build the app meanwhile. ffmpeg is configured by then
    (by the command line from `settings`, before its probes, or by the app)."""
    _begun.clear()
    if path.suffix.lower() not in STREAMABLE or not settings["MEDIA_SINGLE_PASS"]:
        _begun.set()
        return

    def begin() -> None:
        try:
            camera_data(path)  # read (and kept) while ffprobe runs: the argv needs the date and timecode
            _data, info, _error = probed.result()
            if info is None or info.kind != "video":
                _begun.set()
                return
            decode = _prepare(path, info, settings)
        except Exception:  # noqa: BLE001 (the ingest and the job report what is wrong with the file)
            log.debug("no early decode of %s", path, exc_info=True)
            _begun.set()
            return
        with _lock:
            _started.append(decode)
        threading.Thread(target=_run, args=(decode, settings), name="early-decode", daemon=True).start()

    threading.Thread(target=begin, name="early-decode-start", daemon=True).start()


def wait_until_begun(timeout: float) -> bool:
    """Wait until the decode `start` asked for runs, or was not started (at most `timeout` s)."""
    return _begun.wait(timeout)


def _prepare(path: Path, info: ffmpeg.MediaInfo, settings: dict[str, Any]) -> EarlyDecode:
    """The argv the verify job will build (verify._verify), reading the pipe."""
    profs = ffmpeg.read_profiles(settings["MEDIA_PROFILES_FILE"], settings.get("MEDIA_PROFILE_OVERRIDES"))
    folder = Path(tempfile.mkdtemp(prefix=owners.file_prefix(), dir=work_folder(settings)))  # owners.py
    outputs = {kind: folder / f"{kind}{ext}" for kind, ext in OUTPUTS.items()}
    cam = camera_data(path)
    argv = ffmpeg.check_and_proxy_argv(
        PIPE, str(outputs["proxy"]), str(outputs["poster"]), info, profs["proxy"], profs["poster"],
        recorded_at=ffmpeg.creation_time(recorded_at(path, info)), timecode=cam.timecode if cam else None,
        strip_out=str(outputs["strip"]), strip=profs["strip"])
    return EarlyDecode(path=path, folder=folder, argv=argv, outputs=outputs, duration=info.duration)


def _run(decode: EarlyDecode, settings: dict[str, Any]) -> None:
    digest = hashlib.sha256()

    def feed(proc) -> None:
        decode.pid = proc.pid
        _begun.set()
        with contextlib.suppress(OSError, AttributeError):  # Linux: a pipe of 1 MiB, not 64 KiB
            # ffmpeg then has a tenth of a second of input in hand while this thread waits for the
            # interpreter (the command builds its app meanwhile, on another thread).
            fcntl.fcntl(proc.stdin.fileno(), fcntl.F_SETPIPE_SZ, CHUNK)
        with open(decode.path, "rb") as fh:
            while not decode.stopped.is_set() and (chunk := fh.read(CHUNK)):
                digest.update(chunk)
                decode.size += len(chunk)
                proc.stdin.write(chunk)  # a broken pipe ends the feed: the hash then covers a part
        if not decode.stopped.is_set():
            decode.sha256 = digest.hexdigest()

    def on_progress(p: dict[str, str]) -> None:
        listener = decode.listener
        if listener is not None:
            listener(p)

    try:
        report = ffmpeg.checked_run(decode.argv, on_progress=on_progress, feed=feed,
                                    timeout=ffmpeg.timeout_for(decode.duration, settings["MEDIA_FFMPEG_TIMEOUT"]),
                                    timeout_is_permanent=not decode.duration)
    except BaseException as exc:  # noqa: BLE001 (a timeout, ffmpeg missing: the job decodes itself)
        _begun.set()
        decode.future.set_exception(exc)
    else:
        decode.future.set_result(report)


def claim(path: str | None, argv: list[str], spec: str, outputs: dict[str, Path], sha256: str, size: int,
          on_progress: ffmpeg.ProgressCallback | None) -> tuple[ffmpeg.DecodeReport, list[str]] | None:
    """The report and argv of the early decode of the file at `path`, its outputs moved to
    `outputs`, if it is the decode the job would run (`argv` on `spec`) of the job's bytes
    (`sha256`, `size`); else None (and that decode is stopped): the job then runs its own."""
    if not path:
        return None
    with _lock:
        decode = next((d for d in _started if avchd.path_text(d.path) == path), None)
        if decode is not None:
            _started.remove(decode)
    if decode is None:
        return None
    if _normal(decode.argv, PIPE, decode.outputs) != _normal(argv, spec, outputs):
        _discard(decode)
        return None
    decode.listener = on_progress
    try:
        report = decode.future.result()
    except BaseException:  # noqa: BLE001 (said in _run)
        report = None
    try:
        if report is None or decode.sha256 != sha256 or decode.size != size:
            return None
        for kind, out in outputs.items():
            if decode.outputs[kind].exists():
                os.replace(decode.outputs[kind], out)
        return report, decode.argv
    finally:
        _discard(decode)


def _normal(argv: list[str], spec: str, outputs: dict[str, Path]) -> list[str]:
    """The argv with its input and its outputs named by role, not by path."""
    names = {str(path): f"<{kind}>" for kind, path in outputs.items()} | {spec: "<input>"}
    return [names.get(arg, arg) for arg in argv]


def discard(path: Path) -> None:
    """Stop the early decode of `path`, if there is one (its take needs none: known already)."""
    with _lock:
        found = [d for d in _started if d.path == path]
        for d in found:
            _started.remove(d)
    for d in found:
        _discard(d)


def discard_all() -> None:
    """At the end of the command: what no job claimed is stopped and removed."""
    with _lock:
        left = list(_started)
        _started.clear()
    for d in left:
        _discard(d)


def _discard(decode: EarlyDecode) -> None:
    decode.stopped.set()
    if decode.pid is not None and not decode.future.done():
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(decode.pid, signal.SIGKILL)
    with contextlib.suppress(Exception):
        decode.future.exception(timeout=10)
    shutil.rmtree(decode.folder, ignore_errors=True)


def sweep(settings: dict[str, Any], older_than: float) -> int:
    """Remove what a killed command left (its decode's folder), untouched for `older_than` seconds."""
    cutoff = time.time() - older_than
    removed = 0
    for folder in work_folder(settings).iterdir():
        with contextlib.suppress(FileNotFoundError):
            if folder.stat().st_mtime < cutoff:
                shutil.rmtree(folder, ignore_errors=True)
                removed += 1
    return removed
