"""Every ffmpeg/ffprobe call of filmfund, and nothing else (no database, no storage).

ffmpeg-python only *builds* the argv (`.compile()`): it is unmaintained, its `run()` can hang
on a full stderr pipe and it has no progress or timeout. So we run the process ourselves with
`-nostdin -progress pipe:1`, read progress from stdout, drain stderr on a thread into a
bounded tail, and kill the whole process group when the timeout passes.
"""
from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import signal
import subprocess
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import ffmpeg as ffmpeg_lib
import shutil

from filmfund.config import SETTINGS
from filmfund.typed import printable

# The settings' embedded defaults (filmfund/config.py) until filmfund.media.init_app passes the
# app's (configure): this module runs no Flask of its own.
_DEFAULT = {s.key: s.default for s in SETTINGS}
FFMPEG = _DEFAULT["FFMPEG"]
FFPROBE = _DEFAULT["FFPROBE"]
TAIL_BYTES = 8 * 1024
# What a camera writes: 188-byte TS packets with a 4-byte timestamp in front.
M2TS_PACKET = 192
M2TS_EXTENSIONS = {".mts", ".m2ts"}
# ffmpeg dies with the worker that started it (a SIGKILLed worker leaves no encoder running
# on its own): util-linux setpriv sets the parent-death signal, then execs ffmpeg.
SETPRIV = shutil.which("setpriv") if _DEFAULT["FFMPEG_PDEATHSIG"] else None

# Hostile input. Every ffmpeg and ffprobe run reads only local files and pipes (no network, no
# other protocol), through a demuxer of this list only: HLS and DASH playlists, concat scripts,
# SDP and the like make ffmpeg open other files or URLs named inside the file, so they are
# refused. A decoder refuses a picture of more pixels than MAX_PIXELS (a 266-byte PNG can declare
# 16000x16000: 780 MB), and the whole process gets an address-space limit (prlimit).
PROTOCOLS = "file,pipe"
DEMUXERS = ("mpegts,mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,avi,mxf,mpeg,dv,flv,asf,wav,w64,aiff,caf,mp3,aac,"
            "ac3,eac3,flac,ogg,h264,hevc,m4v,mpegvideo,image2,png_pipe,jpeg_pipe,webp_pipe,tiff_pipe,bmp_pipe,"
            "gif,gif_pipe")
MAX_PIXELS = _DEFAULT["MEDIA_MAX_PIXELS"]
MEMORY_MB = _DEFAULT["MEDIA_MEMORY_MB"]
PRLIMIT = shutil.which("prlimit")

# How many ffmpeg runs this process makes at once (FILMFUND_ENCODE_SLOTS, 1 by default: one encode
# at a time on 2 cores, media.md), however many queue threads it has. A second queue thread then
# does a job's work before and after its encode (claiming it, sniffing, probing the outputs,
# storing them) while another job encodes, so on a card of short takes that work leaves the
# critical path instead of adding to every take's time.
ENCODE_SLOTS = _DEFAULT["ENCODE_SLOTS"]
_slots = threading.BoundedSemaphore(ENCODE_SLOTS)


configured = False  # by an app's settings, or by the command line's before it builds the app


def configure(config) -> None:
    """Run ffmpeg as the app's settings say (called once by filmfund.media.init_app)."""
    global FFMPEG, FFPROBE, SETPRIV, MAX_PIXELS, MEMORY_MB, ENCODE_SLOTS, _slots, configured
    configured = True
    FFMPEG, FFPROBE = config["FFMPEG"], config["FFPROBE"]
    SETPRIV = shutil.which("setpriv") if config["FFMPEG_PDEATHSIG"] else None
    MAX_PIXELS, MEMORY_MB = config["MEDIA_MAX_PIXELS"], config["MEDIA_MEMORY_MB"]
    if config["ENCODE_SLOTS"] != ENCODE_SLOTS:  # a new semaphore only when the size changes
        ENCODE_SLOTS = config["ENCODE_SLOTS"]
        _slots = threading.BoundedSemaphore(ENCODE_SLOTS)


class FfmpegError(Exception):
    """ffmpeg failed; `permanent` says whether running it again could help."""

    def __init__(self, message: str, *, stderr_tail: str = "", returncode: int | None = None,
                 permanent: bool = False):
        super().__init__(message)
        self.stderr_tail = stderr_tail
        self.returncode = returncode
        self.permanent = permanent


class FfmpegTimeout(FfmpegError):
    pass


def guard_args(spec: str) -> dict[str, Any]:
    """Input options of every run: the protocol and demuxer whitelists and the pixel limit. A
    spanned take is our own `concat:` join of local files, so that one spec may use `concat`."""
    protocols = "concat," + PROTOCOLS if spec.startswith("concat:") else PROTOCOLS
    return {"protocol_whitelist": protocols, "format_whitelist": DEMUXERS, "max_pixels": MAX_PIXELS}


def _input(spec: str, **kwargs):
    return ffmpeg_lib.input(spec, **guard_args(spec), **kwargs)


# Input options of the check passes (decode_pass, check_and_proxy_argv): decoders whose frames
# carry a CRC (AC-3 above all, a camcorder's sound) only compare it when asked, and without the
# comparison a frame with flipped bytes decodes as noise, silently. CRC checks only: `explode`
# would stop at the first error (the damage could no longer be placed or counted), and
# `bitstream`/`buffer` make decoders reject what they now conceal, untested on camera files.
CHECK_INPUT = {"err_detect": "crccheck"}


def limited(command: list[str]) -> list[str]:
    """The command under an address-space limit (prlimit, util-linux), when there is one."""
    if PRLIMIT and MEMORY_MB > 0:
        return [PRLIMIT, f"--as={MEMORY_MB * 1024 * 1024}", "--", *command]
    return command


@dataclass
class RunResult:
    argv: list[str]
    returncode: int
    stderr_tail: str
    seconds: float
    progress: dict[str, str] = field(default_factory=dict)


ProgressCallback = Callable[[dict[str, str]], None]
LineCallback = Callable[[str], None]
# Writes the input of an argv that reads `pipe:0` into the running ffmpeg's stdin (and closes it).
Feeder = Callable[[subprocess.Popen], None]


def timeout_for(duration: float | None, fixed: float = 0, factor: float = 20) -> float:
    """How long an ffmpeg run over `duration` seconds of footage may take: FILMFUND_MEDIA_FFMPEG_TIMEOUT
    (`fixed`) if set, else generous for a 2-core box: `factor` x realtime plus start-up, at least
    ten minutes."""
    if fixed:
        return fixed
    return max(600.0, 60.0 + factor * (duration or 0))


def read_profiles(path: str | Path, overrides: dict[str, dict[str, Any]] | None = None) -> dict[str, dict[str, Any]]:
    """The encoding profiles (FILMFUND_MEDIA_PROFILES, a TOML file), with the app's overrides."""
    import tomllib  # light module: `media ingest --wait` loads it before the app

    with open(path, "rb") as fh:
        data = tomllib.load(fh)
    for name, override in (overrides or {}).items():
        data.setdefault(name, {}).update(override)
    return data


def creation_time(value) -> str | None:
    """A recording date (an aware datetime) as the `creation_time` tag editors read."""
    from datetime import timezone  # light module: `media ingest --wait` loads it before the app

    return value.astimezone(timezone.utc).isoformat() if value else None


def run(argv: Sequence[str], *, timeout: float, on_progress: ProgressCallback | None = None,
        on_stderr_line: LineCallback | None = None, check: bool = True,
        timeout_is_permanent: bool = False, slot: bool = True, feed: Feeder | None = None) -> RunResult:
    """Run an ffmpeg argv built with `-progress pipe:1`; raise FfmpegError/FfmpegTimeout on failure.

    `timeout_is_permanent`: the input's duration is unknown, so its timeout is a guess that a
    retry would only repeat (a "live" stream never ends): the timeout fails for good.
    `slot`: wait for one of the process's encode slots first (every job's encode); False for a
    few seconds' work a web request waits for (a viewer's marked segment), which must not queue
    behind a card's encodes. The timeout counts from the start of the run, not of the wait.
    `feed`: the argv reads `pipe:0`, and `feed(process)` writes it on a thread of its own."""
    if not slot:
        return _run(list(argv), timeout, on_progress, on_stderr_line, check, timeout_is_permanent, feed)
    slots = _slots
    if not slots.acquire(blocking=False):
        report = getattr(_waits, "report", None)
        if report is not None:
            report(True)
        slots.acquire()
        if report is not None:
            report(False)
    try:
        return _run(list(argv), timeout, on_progress, on_stderr_line, check, timeout_is_permanent, feed)
    finally:
        slots.release()


_waits = threading.local()


@contextlib.contextmanager
def reporting_waits(report: Callable[[bool], None]):
    """While the block runs on this thread, a run that must wait for an encode slot says so:
    `report(True)` before it waits, `report(False)` once it has the slot (a job's heartbeat shows
    "waiting for the encoder" then, not a running encode stuck at 0%)."""
    previous = getattr(_waits, "report", None)
    _waits.report = report
    try:
        yield
    finally:
        _waits.report = previous


def _run(argv: list[str], timeout: float, on_progress: ProgressCallback | None,
         on_stderr_line: LineCallback | None, check: bool, timeout_is_permanent: bool,
         feed: Feeder | None = None) -> RunResult:
    started = time.monotonic()
    command = limited([SETPRIV, "--pdeathsig", "KILL", *argv] if SETPRIV else argv)
    proc = subprocess.Popen(command, stdin=subprocess.PIPE if feed else subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)  # own process group: a kill takes its children too
    feeder = None
    if feed is not None:
        feeder = threading.Thread(target=_feeding, args=(feed, proc), name="ffmpeg-stdin", daemon=True)
        feeder.start()
    tail: deque[bytes] = deque()
    tail_size = [0]

    def drain_stderr() -> None:
        for raw in iter(proc.stderr.readline, b""):
            tail.append(raw)
            tail_size[0] += len(raw)
            while tail_size[0] > TAIL_BYTES and len(tail) > 1:
                tail_size[0] -= len(tail.popleft())
            if on_stderr_line is not None:
                on_stderr_line(raw.decode("utf-8", "replace").rstrip("\r\n"))

    timed_out = threading.Event()

    def kill() -> None:
        timed_out.set()
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    reader = threading.Thread(target=drain_stderr, name="ffmpeg-stderr", daemon=True)
    reader.start()
    timer = threading.Timer(timeout, kill)
    timer.daemon = True
    timer.start()
    block: dict[str, str] = {}
    last: dict[str, str] = {}
    try:
        for raw in iter(proc.stdout.readline, b""):
            key, sep, value = raw.decode("utf-8", "replace").strip().partition("=")
            if not sep:
                continue
            block[key] = value
            if key == "progress":  # one block of key=value lines ends with progress=continue|end
                last = block
                if on_progress is not None:
                    on_progress(block)
                block = {}
        returncode = proc.wait()
    finally:
        timer.cancel()
        if proc.poll() is None:
            kill()
            proc.wait()
        reader.join(timeout=5)
        if feeder is not None:
            feeder.join(timeout=5)  # it ends at the latest when the pipe breaks
        proc.stdout.close()
        proc.stderr.close()
    stderr_tail = b"".join(tail).decode("utf-8", "replace")
    result = RunResult(argv, returncode, stderr_tail, time.monotonic() - started, last)
    if timed_out.is_set():
        raise FfmpegTimeout(f"ffmpeg did not finish within {timeout:.0f} s and was stopped"
                            + (" (the input's duration is unknown: not retried)" if timeout_is_permanent else ""),
                            stderr_tail=stderr_tail, returncode=returncode, permanent=timeout_is_permanent)
    if check and returncode != 0:
        raise FfmpegError(f"ffmpeg exited with code {returncode}: {_last_line(stderr_tail)}",
                          stderr_tail=stderr_tail, returncode=returncode)
    return result


def _feeding(feed: Feeder, proc: subprocess.Popen) -> None:
    """Run a feeder; ffmpeg sees the end of its input when the feeder returns (or fails)."""
    try:
        feed(proc)
    except (BrokenPipeError, ValueError):
        pass  # ffmpeg stopped reading (it ended or was stopped): its report says why
    finally:
        with contextlib.suppress(OSError):
            proc.stdin.close()


def _last_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1][:300] if lines else "(no message)"


def _compile(stream) -> list[str]:
    """argv from an ffmpeg-python graph, with our run-time flags (global args go after the output:
    ffmpeg accepts that, tested on 5.1)."""
    return stream.global_args("-nostdin", "-nostats", "-progress", "pipe:1", "-y").compile(cmd=FFMPEG)


def input_spec(paths: Sequence[str | Path]) -> str:
    """One input for one file, or a byte-level join of spanned camera files (`concat:` protocol):
    a take cut mid-GOP by the camera decodes cleanly only as one stream."""
    names = [str(p) for p in paths]
    if len(names) == 1:
        return names[0]
    for name in names:
        if "|" in name:
            raise ValueError(f"cannot join a file whose path contains '|': {name}")
    return "concat:" + "|".join(names)


# --- probing ---------------------------------------------------------------------------------

def probe(spec: str, *, timeout: float = 60) -> dict[str, Any]:
    """ffprobe's streams and format as a dict; raises FfmpegError (permanent) when unreadable."""
    guards = [x for k, v in guard_args(spec).items() for x in (f"-{k}", str(v))]
    argv = [FFPROBE, "-v", "error", *guards, "-pattern_type", "none", "-show_format", "-show_streams",
            "-of", "json", spec]
    try:
        out = subprocess.run(limited(argv), stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        # A probe reads a few seconds of the file: one that does not finish is not a media file
        # (e.g. a "live" playlist), and trying again would only repeat it.
        raise FfmpegTimeout(f"ffprobe did not finish within {timeout:.0f} s", permanent=True) from None
    if out.returncode != 0:
        err = out.stderr.decode("utf-8", "replace")
        said = _last_line(err)
        if "not on whitelist" in err:
            said = "refused: its container makes ffmpeg open other files or URLs (playlists, concat scripts)"
        elif "exceeds specified max pixel count" in err:
            said = f"refused: its picture is larger than {MAX_PIXELS} pixels"
        raise FfmpegError(f"ffprobe cannot read this file: {said}", stderr_tail=err[-TAIL_BYTES:],
                          returncode=out.returncode, permanent=True)
    err = out.stderr.decode("utf-8", "replace")
    if "exceeds specified max pixel count" in err:  # ffprobe still exits 0, with a 0x0 picture
        raise FfmpegError(f"ffprobe cannot read this file: refused: its picture is larger than {MAX_PIXELS} pixels",
                          stderr_tail=err[-TAIL_BYTES:], returncode=out.returncode, permanent=True)
    data = json.loads(out.stdout or b"{}")
    if not data.get("streams"):
        raise FfmpegError("ffprobe found no audio or video stream in this file", permanent=True)
    return data


def _float(value: Any) -> float | None:
    try:
        result = float(value)
    except (TypeError, ValueError):
        return None
    return result if result == result else None  # NaN


def _rate(value: str | None) -> float | None:
    if not value or "/" not in value:
        return _float(value)
    num, _, den = value.partition("/")
    n, d = _float(num), _float(den)
    return n / d if n and d else None


_IMAGE_CODECS = {"mjpeg", "png", "webp", "tiff", "bmp", "gif", "jpegls", "jpeg2000"}


@dataclass
class MediaInfo:
    kind: str                       # video | image | audio
    duration: float | None
    start_time: float | None
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    interlaced: bool = False
    sar: str | None = None
    video_codec: str | None = None
    audio_codec: str | None = None
    has_audio: bool = False
    recorded_at: str | None = None  # ISO string from a creation_time tag, when the file has one
    camera: str | None = None
    format_name: str | None = None

    @property
    def end_time(self) -> float | None:
        if self.start_time is None or self.duration is None:
            return None
        return self.start_time + self.duration


def summarize(data: dict[str, Any]) -> MediaInfo:
    """The few facts the pipeline decides on, from an ffprobe dict."""
    fmt = data.get("format", {})
    streams = data.get("streams", [])
    video = next((s for s in streams if s.get("codec_type") == "video"
                  and not (s.get("disposition") or {}).get("attached_pic")), None)
    audio = next((s for s in streams if s.get("codec_type") == "audio"), None)
    tags = {k.lower(): v for k, v in (fmt.get("tags") or {}).items()}
    for s in (video, audio):
        for k, v in ((s or {}).get("tags") or {}).items():
            tags.setdefault(k.lower(), v)
    format_name = fmt.get("format_name") or ""
    is_image = bool(video) and (video.get("codec_name") in _IMAGE_CODECS) and (
        "image2" in format_name or "_pipe" in format_name or (_float(fmt.get("duration")) or 0) <= 0.05)
    kind = "image" if is_image else ("video" if video else "audio")
    duration = None if is_image else _float(fmt.get("duration")) or _float((video or audio or {}).get("duration"))
    field_order = (video or {}).get("field_order") or ""
    camera = " ".join(v for v in (tags.get("make"), tags.get("model")) if v) or tags.get("com.apple.quicktime.model")
    width, height = (video or {}).get("width"), (video or {}).get("height")
    if _quarter_turn(video):
        width, height = height, width  # as it is seen, and as ffmpeg's outputs (autorotated) are
    return MediaInfo(
        kind=kind,
        duration=duration,
        start_time=_float(fmt.get("start_time")),
        width=width,
        height=height,
        fps=None if is_image else _rate((video or {}).get("avg_frame_rate")) or _rate((video or {}).get("r_frame_rate")),
        # MediaCMS's rule: ffprobe's field_order names the interlaced orders tt/tb/bt/bb.
        interlaced=field_order in ("tt", "tb", "bt", "bb"),
        sar=(video or {}).get("sample_aspect_ratio"),
        video_codec=(video or {}).get("codec_name"),
        audio_codec=(audio or {}).get("codec_name"),
        has_audio=audio is not None,
        recorded_at=tags.get("creation_time") or tags.get("date"),
        camera=camera or None,
        format_name=format_name,
    )


def _quarter_turn(video: dict[str, Any] | None) -> bool:
    """A phone held upright records its frames sideways, with a display matrix (ffprobe's side
    data `rotation`; older files a `rotate` tag) that says to turn them a quarter."""
    if not video:
        return False
    turns = [d.get("rotation") for d in video.get("side_data_list") or [] if "rotation" in d]
    turns.append((video.get("tags") or {}).get("rotate"))
    return any(_float(turn) is not None and round(_float(turn)) % 180 == 90 for turn in turns)


# --- the decode pass -------------------------------------------------------------------------

_LEVEL_RE = re.compile(r"\[(panic|fatal|error|warning)\]")
_SHOWINFO_RE = re.compile(r"\[Parsed_showinfo_\d+ @ [^\]]+\].*?\bn:\s*(\d+).*?\bpts_time:\s*(-?[\d.]+)")
_PREFIX_RE = re.compile(r"^(\[[^\]]+ @ 0x[0-9a-f]+\] )?\[(panic|fatal|error|warning)\] ")
# Warnings that mean damaged bytes (others, e.g. "changing packet size", are noise of the resync).
_DAMAGE_WARNINGS = ("corrupt", "non-existing", "missing", "invalid", "truncat", "error")


@dataclass
class DecodeIssue:
    at: float | None          # seconds into the clip: the last frame decoded before the message
    level: str
    message: str


@dataclass
class DecodeReport:
    frames: int
    decoded_seconds: float | None
    errors: int
    issues: list[DecodeIssue]
    returncode: int
    stderr_tail: str
    seconds: float


def decode_pass(spec: str, *, timeout: float, has_video: bool = True,
                on_progress: ProgressCallback | None = None, timeout_is_permanent: bool = False) -> DecodeReport:
    """Decode every stream to nowhere and collect what ffmpeg complains about, and where.

    ffmpeg exits 0 on truncated and corrupted files, so the exit code says little: we count
    error-level lines (`-loglevel level+info` prefixes each line with its level) and place each
    one in time after the last frame `showinfo` saw.
    """
    inp = _input(spec, **CHECK_INPUT)
    # Picture and sound only: subtitle, data and timecode streams (a camcorder's PGS date overlay,
    # a phone's GPS track, a tmcd track) have no encoder for the null muxer and are not footage.
    streams = [inp["V"].filter("showinfo", checksum=0), inp["a?"]] if has_video else [inp["a"]]
    stream = ffmpeg_lib.output(*streams, "-", f="null")
    argv = _compile(stream.global_args("-loglevel", "level+info"))
    return checked_run(argv, timeout=timeout, has_video=has_video, on_progress=on_progress,
                       timeout_is_permanent=timeout_is_permanent)


def checked_run(argv: list[str], *, timeout: float, has_video: bool = True, on_progress: ProgressCallback | None = None,
                timeout_is_permanent: bool = False, feed: Feeder | None = None) -> DecodeReport:
    """Run an argv whose input goes through `showinfo` at `-loglevel level+info`, and report
    every frame decoded and every complaint, placed in time. `feed`: as in `run`."""
    state = {"frames": 0, "t": None, "told": 0.0}
    issues: list[DecodeIssue] = []
    errors = [0]

    def on_line(line: str) -> None:
        m = _SHOWINFO_RE.search(line)
        if m:
            state["frames"] = int(m.group(1)) + 1
            state["t"] = float(m.group(2))
            # Each decoded frame is progress: ffmpeg's own report waits until every output has
            # begun, which a poster or strip output of the same pass does only at the end.
            now = time.monotonic()
            if on_progress is not None and now - state["told"] >= 0.25:
                state["told"] = now
                on_progress({"out_time_us": str(int(max(0.0, state["t"]) * 1e6)), "progress": "decoding"})
            return
        lm = _PREFIX_RE.match(line)
        if not lm:
            return
        level = lm.group(2)
        message = line[lm.end():].strip()
        source = (lm.group(1) or "").strip().strip("[]").split(" @ ")[0]
        text = f"{source}: {message}" if source else message
        if level in ("error", "fatal", "panic"):
            errors[0] += 1
        elif not any(w in message.lower() for w in _DAMAGE_WARNINGS):
            return
        if len(issues) < 200:
            issues.append(DecodeIssue(state["t"], level, text[:500]))

    result = run(argv, timeout=timeout, on_progress=on_progress, on_stderr_line=on_line, check=False,
                 timeout_is_permanent=timeout_is_permanent, feed=feed)
    frames = state["frames"]
    if not has_video:
        frames = int(result.progress.get("frame", "0") or 0)
    decoded = _float(result.progress.get("out_time_us"))
    return DecodeReport(frames=frames, decoded_seconds=decoded / 1e6 if decoded is not None else state["t"],
                        errors=errors[0], issues=issues, returncode=result.returncode,
                        stderr_tail=result.stderr_tail, seconds=result.seconds)


# --- renditions ------------------------------------------------------------------------------

def _video_chain(stream, info: MediaInfo, height: int):
    if info.interlaced:
        # bwdif keeps the frame rate and one output frame per input frame, so NLE relinks line up.
        stream = stream.filter("bwdif", mode="send_frame", parity="auto", deint="all")
    if info.sar and info.sar not in ("1:1", "0:1", "N/A"):
        # Anamorphic 1440x1080 (SAR 4:3) becomes square pixels before scaling (zou's fix).
        stream = stream.filter("scale", "trunc(iw*sar/2)*2", "ih").filter("setsar", 1)
    return stream.filter("scale", -2, height, flags="lanczos").filter("format", "yuv420p")


# Donors' copies keep nothing of the source's metadata but what DONOR_METADATA allows: no
# location (`location`, ISO 6709 tags, GPS), device (make, model, serial), comment or date. The
# automatic copies ffmpeg makes are turned off one by one: `-map_metadata -1` only stops the
# global tags; stream tags (`:s:v`, `:s:a`) and chapters are copied unless stopped too; and
# `bitexact` drops the encoder's own "Lavf/Lavc" version tags and JPEG comment.
DONOR_METADATA = ("title",)


def clean_metadata_args(title: str | None = None, *, audio: bool = True) -> dict[str, Any]:
    """Output options that write no metadata except the allow-listed title."""
    args: dict[str, Any] = {"map_metadata": -1, "map_metadata:s:v": -1, "map_chapters": -1,
                            "fflags": "+bitexact", "flags:v": "+bitexact"}
    if audio:
        args.update({"map_metadata:s:a": -1, "flags:a": "+bitexact"})
    if title:
        # As the producer wrote it (filmfund/typed.py): an ideographic space, a rare character of a
        # name are kept (str.isprintable refused both); line breaks, controls and overrides go.
        clean = printable(title).strip()[:200]
        if clean:
            args["metadata"] = f"title={clean}"
    return args


def video_rendition_argv(spec: str, out: str, info: MediaInfo, profile: dict[str, Any],
                         input_args: dict[str, Any] | None = None, recorded_at: str | None = None,
                         *, title: str | None = None, timecode: str | None = None) -> list[str]:
    """An H.264 + AAC MP4 (edit proxy or web rendition) from a profile of profiles.toml.

    Only a profile that says `keep_source_metadata = true` (the edit proxy, the rescue) keeps the
    source's tags (recording date, timecode) for the editor. Every other output, the donors' web
    rendition first, keeps none of them, only `title` (DONOR_METADATA): safe by default, so a
    crew's own profiles file cannot leak a location by leaving a key out."""
    inp = _input(spec, **(input_args or {}))
    video = _video_chain(inp["v:0"], info, _height(info, profile))
    out_args = _video_out_args(info, profile, recorded_at=recorded_at, title=title, timecode=timecode)
    streams = [video]
    if info.has_audio:
        streams.append(inp["a:0"])
    return _compile(ffmpeg_lib.output(*streams, out, **out_args))


def _height(info: MediaInfo, profile: dict[str, Any]) -> int:
    height = int(profile["height"])
    if info.height and info.height < height:
        height = info.height - info.height % 2
    return height


def _video_out_args(info: MediaInfo, profile: dict[str, Any], *, recorded_at: str | None = None,
                    title: str | None = None, timecode: str | None = None) -> dict[str, Any]:
    keep = profile.get("keep_source_metadata") is True
    fps = info.fps or 25
    out_args: dict[str, Any] = {
        "c:v": profile.get("video_codec", "libx264"),
        "preset": profile.get("preset", "veryfast"),
        "crf": profile.get("crf", 23),
        "g": max(1, round(fps * float(profile.get("gop_seconds", 1)))),
        "keyint_min": max(1, round(fps * float(profile.get("gop_seconds", 1)))),
        "sc_threshold": 0,
    }
    if keep:
        out_args["map_metadata"] = 0  # keeps creation_time (the recording date) and timecode tags
    else:
        out_args.update(clean_metadata_args(title, audio=info.has_audio))
        if out_args["c:v"] == "libx264":
            # A camcorder's MDPM (date, camera, GPS on some) rides in user-data SEI: never copied
            # into the new stream (libx264's default today, said explicitly so it stays so).
            out_args["udu_sei"] = 0
    for key, flag in (("maxrate", "maxrate"), ("bufsize", "bufsize"), ("profile", "profile:v"),
                      ("level", "level:v"), ("tune", "tune")):
        if profile.get(key):
            out_args[flag] = profile[key]
    if profile.get("faststart", True):
        # "rewrite": the output's length cannot be known ahead (the rescue of a damaged clip),
        # so its index is moved to the front after the fact (+faststart, a second pass).
        out_args.update({"movflags": "+faststart"} if profile.get("faststart") == "rewrite" else moov_first_args(info))
    if recorded_at and keep:  # e.g. from the camera's MDPM data: editors show it as the clip's date
        out_args["metadata"] = f"creation_time={recorded_at}"
    if timecode and keep and re.fullmatch(r"\d\d:\d\d:\d\d[:;]\d\d", timecode):
        out_args["timecode"] = timecode  # the camera's start timecode (a tmcd track): editors relink by it
    if info.has_audio:
        out_args.update({"c:a": profile.get("audio_codec", "aac"), "b:a": profile.get("audio_bitrate", "128k"),
                         "ac": int(profile.get("audio_channels", 2))})
    out_args["f"] = "mp4"
    return out_args


def moov_size(info: MediaInfo) -> int | None:
    """Bytes to reserve at the start of an MP4 for its index (moov), or None when the clip's
    duration is unknown. Generous on purpose: per second, 32 bytes for each video frame (size,
    composition offset, sync and chunk entries; about 16 are used) and 800 for the sound (AAC at
    48 kHz uses about 400); the unused rest stays a `free` box, about 0.5% of a 540p proxy."""
    if not info.duration or info.duration <= 0:
        return None
    fps = info.fps if info.fps and info.fps > 0 else 60
    return int(64 * 1024 + info.duration * (fps * 32 + 800))


def moov_first_args(info: MediaInfo) -> dict[str, Any]:
    """An MP4 whose index comes before the media, written in one pass: the muxer reserves room
    for the moov at the start (`moov_size`) and fills it at the end, so no second pass rewrites
    the whole file to move it there (`+faststart`). A plain, non-fragmented MP4: players and
    editors read it as they read a faststart file (moov, a `free` box, then mdat). When the
    duration is unknown there is no safe size: +faststart then."""
    size = moov_size(info)
    return {"moov_size": size} if size else {"movflags": "+faststart"}


def check_and_proxy_argv(spec: str, proxy_out: str, poster_out: str, info: MediaInfo, proxy: dict[str, Any],
                         poster: dict[str, Any], *, recorded_at: str | None = None,
                         timecode: str | None = None, strip_out: str | None = None,
                         strip: dict[str, Any] | None = None) -> list[str]:
    """One decode of the clip that does it all (the ingest of a video): every frame passes
    `showinfo` (the check: errors are counted and placed as in decode_pass), is deinterlaced once
    and split into the edit proxy's encoder, the poster (the frame at the poster's time, chosen
    by number among decoded frames: it exists whatever the GOP) and, with `strip_out`, the
    thumbnail strip (every few seconds' frame, tiled); every sound stream is decoded (to
    nowhere, beyond the one the proxy encodes)."""
    inp = _input(spec, **CHECK_INPUT)
    picture = inp["V:0"].filter("showinfo", checksum=0)
    if info.interlaced:
        picture = picture.filter("bwdif", mode="send_frame", parity="auto", deint="all")
    if info.sar and info.sar not in ("1:1", "0:1", "N/A"):
        picture = picture.filter("scale", "trunc(iw*sar/2)*2", "ih").filter("setsar", 1)
    split = picture.split()
    to_proxy, to_poster = split[0], split[1]
    strip_v = None
    if strip_out is not None:
        strip_v = _strip_chain(split[2], info, strip or {})
    proxy_v = to_proxy.filter("scale", -2, _height(info, proxy), flags="lanczos").filter("format", "yuv420p")
    fps = info.fps or 25
    frame = round(poster_seconds(info, poster) * fps)
    if info.duration:
        frame = max(0, min(frame, round(info.duration * fps) - 2))  # a frame the clip has
    # eq, not gte: only that one frame goes on to the poster's scaler (the graph keeps feeding a
    # branch after its output has its one frame, and a 1080 -> 360 scale of every later frame
    # would cost a tenth of the proxy's encode).
    poster_v = (to_poster.filter("select", f"eq(n,{frame})")
                .filter("scale", -2, int(poster.get("height", 360)), flags="lanczos").filter("format", "yuv420p"))
    outputs = [ffmpeg_lib.output(*([proxy_v, inp["a:0"]] if info.has_audio else [proxy_v]), proxy_out,
                                 **_video_out_args(info, proxy, recorded_at=recorded_at, timecode=timecode)),
               ffmpeg_lib.output(poster_v, poster_out, vframes=1, f="image2", update=1,
                                 **{"q:v": poster.get("quality", 3)}, **clean_metadata_args(audio=False))]
    if strip_v is not None:
        outputs.append(ffmpeg_lib.output(strip_v, strip_out, vframes=1, f="image2", update=1,
                                         **{"q:v": (strip or {}).get("quality", 4)}, **clean_metadata_args(audio=False)))
    if info.has_audio:
        outputs.append(ffmpeg_lib.output(inp["a"], "-", f="null"))
    return _compile(ffmpeg_lib.merge_outputs(*outputs).global_args("-loglevel", "level+info"))


def _strip_layout(info: MediaInfo, profile: dict[str, Any]) -> tuple[float, int, int, int]:
    """(seconds between tiles, tiles, columns, rows) of a clip's strip."""
    every = float(profile.get("every_seconds", 2))
    columns = int(profile.get("columns", 5))
    count = max(1, min(int(profile.get("max_tiles", 50)), int((info.duration or every) // every) + 1))
    return every, count, min(columns, count), max(1, -(-count // columns))


def _strip_chain(stream, info: MediaInfo, profile: dict[str, Any]):
    """The strip's branch of the single decode: one decoded frame every `every_seconds` (chosen
    by number, as the poster is), scaled small and tiled; the tile is written at the end of the
    stream even when the clip is shorter than the strip's grid."""
    every, count, columns, rows = _strip_layout(info, profile)
    step = max(1, round(every * (info.fps or 25)))
    return (stream.filter("select", f"not(mod(n,{step}))*lt(n,{step * count})")
            .filter("scale", int(profile.get("width", 160)), -2)
            .filter("tile", f"{columns}x{rows}"))


def poster_seconds(info: MediaInfo, profile: dict[str, Any]) -> float:
    """A little into the clip (the first frames are often black or unsteady), never past 30%."""
    if not info.duration:
        return 0.0
    return max(0.0, min(float(profile.get("at_seconds", 1.0)), info.duration * float(profile.get("at_fraction", 0.3))))


def poster_argv(spec: str, out: str, info: MediaInfo, profile: dict[str, Any]) -> list[str]:
    """One JPEG frame, a little into the clip (the first frames are often black or unsteady)."""
    at = poster_seconds(info, profile)
    inp = _input(spec, ss=f"{at:.3f}") if at > 0 else _input(spec)
    video = _video_chain(inp["v:0"], info, int(profile.get("height", 360)))
    return _compile(ffmpeg_lib.output(video, out, vframes=1, f="image2", **{"q:v": profile.get("quality", 3)},
                                      **clean_metadata_args(audio=False)))


def strip_argv(spec: str, out: str, info: MediaInfo, profile: dict[str, Any]) -> list[str]:
    """A thumbnail strip: one small frame every few seconds, tiled into one JPEG."""
    every, count, columns, rows = _strip_layout(info, profile)
    # Keyframes only (media.md): a strip of 160 px frames needs no full decode of hours of 1080i,
    # and at that size interlacing does not show.
    inp = _input(spec, skip_frame="nokey")
    # eof_action=pass: a clip with one keyframe (a long GOP) still gives its one tile; `fps`
    # would otherwise drop the only frame it has at the end of the stream.
    video = (inp["v:0"].filter("fps", f"1/{every:g}", eof_action="pass")
             .filter("scale", int(profile.get("width", 160)), -2)
             .filter("tile", f"{columns}x{rows}"))
    return _compile(ffmpeg_lib.output(video, out, vframes=1, f="image2", **{"q:v": profile.get("quality", 4)},
                                      **clean_metadata_args(audio=False)))


def image_argv(spec: str, out: str, profile: dict[str, Any]) -> list[str]:
    """A still (image asset): a JPEG no taller than the profile's height, never upscaled.

    Re-encoded from the decoded picture, so no EXIF, XMP or IPTC segment of the original (GPS,
    camera serial, comments) reaches it; bitexact also drops ffmpeg's own comment marker."""
    h = int(profile.get("height", 360))
    video = _input(spec)["v:0"].filter("scale", -2, f"min({h},ih)").filter("format", "yuvj420p")
    return _compile(ffmpeg_lib.output(video, out, vframes=1, f="image2", **{"q:v": profile.get("quality", 3)},
                                      **clean_metadata_args(audio=False)))


@functools.lru_cache(maxsize=1)
def version() -> str:
    """ffmpeg's version line (recorded on every job): asked once per process, not per job."""
    try:
        out = subprocess.run([FFMPEG, "-version"], capture_output=True, timeout=10, stdin=subprocess.DEVNULL)
        return out.stdout.decode("utf-8", "replace").splitlines()[0]
    except (OSError, subprocess.SubprocessError, IndexError):
        return "unknown"


# --- streaming (HLS) --------------------------------------------------------------------------

def _kbits(rate: str) -> int:
    rate = str(rate).strip().lower()
    mult = 1000 if rate.endswith("k") else 1_000_000 if rate.endswith("m") else 1
    return int(float(rate.rstrip("km")) * mult)


def hls_ladder(info: MediaInfo, profile: dict[str, Any]) -> list[dict[str, Any]]:
    """The rungs of the ladder this source gets: those no taller than the source; a source
    smaller than the first rung gets that one rung at its own height."""
    rungs = sorted(profile["ladder"], key=lambda r: int(r["height"]))
    src = info.height or int(rungs[-1]["height"])
    kept = [dict(r) for r in rungs if int(r["height"]) <= src]
    if not kept:
        kept = [dict(rungs[0], height=src - src % 2)]
    return kept


def hls_argv(spec: str, out_dir: str, info: MediaInfo, profile: dict[str, Any],
             title: str | None = None) -> tuple[list[str], list[dict[str, Any]]]:
    """One ffmpeg run that decodes once and encodes every rung (split), muxed by ffmpeg's HLS
    muxer as VOD playlists of MPEG-TS segments cut on keyframes, with a master playlist
    (master.m3u8, variants v0.m3u8...). Keeps no source metadata (a donor copy)."""
    ladder = hls_ladder(info, profile)
    fps = info.fps or 25
    gop = max(1, round(fps * float(profile.get("gop_seconds", 2))))
    chain = []
    if info.interlaced:
        chain.append("bwdif=mode=send_frame:parity=auto:deint=all")
    if info.sar and info.sar not in ("1:1", "0:1", "N/A"):
        chain.append("scale=trunc(iw*sar/2)*2:ih,setsar=1")
    pre = ",".join(chain + [f"split={len(ladder)}"])
    graph = f"[0:v:0]{pre}" + "".join(f"[s{i}]" for i in range(len(ladder)))
    for i, rung in enumerate(ladder):
        graph += f";[s{i}]scale=-2:{int(rung['height'])}:flags=lanczos,format=yuv420p[v{i}]"
    argv = [FFMPEG, "-nostdin", "-nostats", "-progress", "pipe:1", "-y"]
    for k, v in guard_args(spec).items():
        argv += [f"-{k}", str(v)]
    argv += ["-i", spec, "-filter_complex", graph]
    for i in range(len(ladder)):
        argv += ["-map", f"[v{i}]"]
        if info.has_audio:
            argv += ["-map", "0:a:0"]
    argv += ["-c:v", profile.get("video_codec", "libx264"), "-preset", profile.get("preset", "veryfast"),
             "-profile:v", profile.get("profile", "main"), "-g", str(gop), "-keyint_min", str(gop),
             "-sc_threshold", "0", "-udu_sei", "0"]
    for i, rung in enumerate(ladder):
        rate = _kbits(rung["bitrate"])
        argv += [f"-b:v:{i}", str(rate), f"-maxrate:v:{i}", str(int(rate * 1.2)), f"-bufsize:v:{i}", str(rate * 2)]
    if info.has_audio:
        argv += ["-c:a", profile.get("audio_codec", "aac"), "-b:a", str(profile.get("audio_bitrate", "64k")),
                 "-ac", str(int(profile.get("audio_channels", 2)))]
    for k, v in clean_metadata_args(title, audio=info.has_audio).items():
        argv += [f"-{k}", str(v)]
    streams = " ".join(f"v:{i},a:{i}" if info.has_audio else f"v:{i}" for i in range(len(ladder)))
    argv += ["-f", "hls", "-hls_time", str(profile.get("segment_seconds", 4)), "-hls_playlist_type", "vod",
             "-hls_segment_type", "mpegts", "-hls_flags", "independent_segments",
             "-hls_segment_filename", str(Path(out_dir) / "v%v_%04d.ts"), "-master_pl_name", "master.m3u8",
             "-var_stream_map", streams, str(Path(out_dir) / "v%v.m3u8")]
    return argv, ladder


def mark_argv(segment: str, out: str, code: str, rung: dict[str, Any], profile: dict[str, Any],
              mark: dict[str, Any]) -> list[str]:
    """A segment again with a donor's code drawn small and faint in the bottom-right corner:
    video re-encoded at the rung's bitrate, timestamps kept (-copyts), the sound copied."""
    if not re.fullmatch(r"[A-Z0-9]{4,16}", code):
        raise ValueError("a mark code is 4-16 capital letters and digits")
    rate = _kbits(rung["bitrate"])
    font = str(mark.get("font", "")).replace("\\", "").replace(":", "\\:").replace("'", "")
    size = float(mark.get("size_fraction", 0.045))
    draw = (f"drawtext=fontfile='{font}':text='{code}':fontcolor=white@{float(mark.get('opacity', 0.35)):.2f}"
            f":fontsize=max(10\\,h*{size:.4f}):x=w-tw-h/40:y=h-th-h/40")
    return [FFMPEG, "-nostdin", "-nostats", "-progress", "pipe:1", "-y", "-protocol_whitelist", "file",
            "-copyts", "-i", segment, "-map", "0:v:0", "-map", "0:a?", "-vf", draw,
            "-c:v", profile.get("video_codec", "libx264"), "-preset", mark.get("preset", "veryfast"),
            "-profile:v", profile.get("profile", "main"), "-b:v", str(rate), "-maxrate", str(int(rate * 1.2)),
            "-bufsize", str(rate * 2), "-sc_threshold", "0", "-c:a", "copy", "-map_metadata", "-1",
            "-muxdelay", "0", "-muxpreload", "0", "-f", "mpegts", out]


# --- the credits roll --------------------------------------------------------------------------

def credits_roll_argv(script: str, out: str, *, size: tuple[int, int], fps: int, duration: float) -> list[str]:
    """The end credits for an editor: an ASS script (fulfil/roll.py lays the roll out) drawn
    by libass on black, as H.264. libass shapes each line (HarfBuzz: an accent on its letter,
    Arabic joined and read right to left), centres each one, and takes a glyph its face lacks
    from another installed font (fontconfig); drawtext did none of these."""
    w, h = size
    video = ffmpeg_lib.input(f"color=c=black:s={w}x{h}:r={fps}:d={duration:.2f}", f="lavfi").filter(
        "ass", filename=script)
    return _compile(ffmpeg_lib.output(video, out, vcodec="libx264", preset="veryfast", pix_fmt="yuv420p",
                                      movflags="+faststart").global_args("-loglevel", "error", "-stats_period", "0.2"))


# --- captions burned into a donor copy -----------------------------------------------------------

CJK_FONT = "Noto Sans CJK SC"  # fonts-noto-cjk: Chinese and Latin in one face


def burn_captions_argv(src: str, vtt: str, out: str, profile: dict[str, Any], *, title: str | None = None,
                       font: str = CJK_FONT) -> list[str]:
    """The donor copy with one language's captions drawn into the picture (libass through the
    `subtitles` filter, a CJK font), the sound copied, no subtitle stream, no metadata but the title."""
    style = f"FontName={font},Fontsize={int(profile.get('font_size', 22))},Outline=2,Shadow=0,MarginV=24"
    video = _input(src)["v:0"].filter("subtitles", filename=vtt, charenc="UTF-8", force_style=style)
    out_args = {"vcodec": profile.get("video_codec", "libx264"), "preset": profile.get("preset", "medium"),
                "crf": profile.get("crf", 23), "pix_fmt": "yuv420p", "movflags": "+faststart", "sn": None,
                "dn": None, **clean_metadata_args(title)}
    audio = _input(src)["a:0"] if profile.get("_has_audio", True) else None
    streams = [video, audio] if audio is not None else [video]
    if audio is not None:
        out_args["acodec"] = "copy"
    return _compile(ffmpeg_lib.output(*streams, out, **out_args))
