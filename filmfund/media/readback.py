"""What the decode pass wrote (the edit proxy, the poster, the strip), read back by its own
structure before it is stored, rather than by another ffprobe run.

An ffprobe run costs 0.05 s of start-up (its libraries) after the encode has ended, when the
crew is waiting for the take (issue 17); these files are ours, written by one ffmpeg whose
settings we chose, so their structure says whether they are whole. Each reader raises
FfmpegError (permanent) for a file that is not: a write that stopped early, an empty track, a
table that points outside the file. The verify job then leaves that output to the transcode job.
"""
from __future__ import annotations

import struct
from pathlib import Path

from filmfund.media.ffmpeg import FfmpegError, MediaInfo

_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def read_jpeg(path: str | Path) -> MediaInfo:
    """A JPEG we wrote (poster, strip): it starts with SOI, its frame header gives the picture's
    size, it ends with EOI."""
    data = Path(path).read_bytes()
    if len(data) < 4 or data[:2] != b"\xff\xd8" or data[-2:] != b"\xff\xd9":
        raise FfmpegError(f"{Path(path).name} is not a whole JPEG", permanent=True)
    pos = 2
    while pos + 4 <= len(data) and data[pos] == 0xFF:
        marker, length = data[pos + 1], int.from_bytes(data[pos + 2:pos + 4], "big")
        if marker in _SOF and pos + 9 <= len(data):
            height, width = int.from_bytes(data[pos + 5:pos + 7], "big"), int.from_bytes(data[pos + 7:pos + 9], "big")
            if not (height and width):
                break
            return MediaInfo(kind="image", duration=None, start_time=None, width=width, height=height,
                             video_codec="mjpeg", format_name="image2")
        pos += 2 + length
    raise FfmpegError(f"{Path(path).name} has no JPEG frame header", permanent=True)


# ISO/IEC 14496-12 boxes: the movie box is read whole (the media data never is), and its sample
# tables for their counts and chunk offsets, never sample by sample.
_MOOV_MAX = 64 * 1024 * 1024  # a proxy's moov is a few hundred KiB per hour


class _NotWhole(Exception):
    pass


def _header(data: bytes, pos: int, end: int) -> tuple[bytes, int, int]:
    """(type, header length, size) of the box at `pos`, which must end by `end`."""
    if pos + 8 > min(end, len(data)):
        raise _NotWhole("a box header is cut off")
    size, kind = struct.unpack_from(">I4s", data, pos)
    head = 8
    if size == 1:
        if pos + 16 > min(end, len(data)):
            raise _NotWhole("a box header is cut off")
        size, head = struct.unpack_from(">Q", data, pos + 8)[0], 16
    if size < head or pos + size > end:  # size 0 ("to the end") is what an unfinished write leaves
        raise _NotWhole(f"the {kind.decode('latin-1')!r} box runs past the end of the file")
    return kind, head, size


def _boxes(data: bytes, start: int, end: int) -> list[tuple[bytes, int, int]]:
    """(type, payload start, box end) of the boxes that tile data[start:end] exactly."""
    found, pos = [], start
    while pos < end:
        kind, head, size = _header(data, pos, end)
        found.append((kind, pos + head, pos + size))
        pos += size
    return found


def _child(data, start: int, end: int, kind: bytes) -> tuple[int, int]:
    for k, s, e in _boxes(data, start, end):
        if k == kind:
            return s, e
    raise _NotWhole(f"no {kind.decode()!r} box")


def read_mp4(path: str | Path) -> MediaInfo:
    """The edit proxy we wrote (MP4, its moov at the front): the boxes tile the file exactly, the
    movie header has a time scale, a video track has a picture size and samples, and every track's
    chunks lie inside the media data. Duration and picture size as ffprobe gives them: the movie
    header's duration, the video sample entry's coded size."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            top = _top_level(fh)
            if not top or top[0][0] != b"ftyp":
                raise _NotWhole("it does not start with an ftyp box")
            moovs = [(s, e) for k, s, e in top if k == b"moov"]
            mdats = [(s, e) for k, s, e in top if k == b"mdat"]
            if len(moovs) != 1 or not mdats:
                raise _NotWhole("it has no movie box or no media data")
            start, end = moovs[0]
            if end - start > _MOOV_MAX:
                raise _NotWhole("its movie box is larger than any proxy's")
            fh.seek(start)
            moov = fh.read(end - start)
        return _movie(moov, mdats)
    except OSError as exc:
        raise FfmpegError(f"{path.name} cannot be read: {exc}", permanent=True) from None
    except (_NotWhole, struct.error) as exc:
        raise FfmpegError(f"{path.name} is not a whole MP4: {exc}", permanent=True) from None


def _top_level(fh) -> list[tuple[bytes, int, int]]:
    """The file's top-level boxes, read header by header (the media data is not loaded)."""
    size = fh.seek(0, 2)
    found, pos = [], 0
    while pos < size:
        fh.seek(pos)
        kind, head, box = _header(fh.read(16), 0, size - pos)
        found.append((kind, pos + head, pos + box))
        pos += box
    return found


def _movie(moov: bytes, mdats: list[tuple[int, int]]) -> MediaInfo:
    boxes = _boxes(moov, 0, len(moov))
    mvhd = next(((s, e) for k, s, e in boxes if k == b"mvhd"), None)
    if mvhd is None:
        raise _NotWhole("no movie header")
    version = moov[mvhd[0]]
    timescale, duration = (struct.unpack_from(">IQ", moov, mvhd[0] + 20) if version == 1
                           else struct.unpack_from(">II", moov, mvhd[0] + 12))
    if not timescale:
        raise _NotWhole("the movie header has no time scale")
    width = height = codec = None
    has_audio = False
    for kind, t_start, t_end in boxes:
        if kind != b"trak":
            continue
        mdia = _child(moov, t_start, t_end, b"mdia")
        hdlr = _child(moov, *mdia, b"hdlr")
        handler = moov[hdlr[0] + 8:hdlr[0] + 12]
        stbl = _child(moov, *_child(moov, *mdia, b"minf"), b"stbl")
        tables = {k: (s, e) for k, s, e in _boxes(moov, *stbl)}
        samples = _sample_count(moov, tables)
        _chunks_inside(moov, tables, mdats)
        if handler == b"vide" and width is None:
            if not samples:
                raise _NotWhole("its video track has no frames")
            stsd = tables.get(b"stsd")
            if stsd is None or stsd[1] - stsd[0] < 8 + 8 + 32:
                raise _NotWhole("its video track has no sample description")
            entry = stsd[0] + 8  # version, flags, entry count; then the first entry's box
            codec = moov[entry + 4:entry + 8].decode("latin-1")
            width, height = struct.unpack_from(">HH", moov, entry + 8 + 24)
        elif handler == b"soun" and samples:
            has_audio = True
    if not (width and height):
        raise _NotWhole("it has no video track with a picture size")
    return MediaInfo(kind="video", duration=duration / timescale, start_time=None, width=width, height=height,
                     video_codec={"avc1": "h264", "hvc1": "hevc", "hev1": "hevc"}.get(codec, codec),
                     has_audio=has_audio, format_name="mov,mp4,m4a,3gp,3g2,mj2")


def _sample_count(moov: bytes, tables: dict[bytes, tuple[int, int]]) -> int:
    for kind in (b"stsz", b"stz2"):
        if kind in tables:
            return struct.unpack_from(">I", moov, tables[kind][0] + 8)[0]
    raise _NotWhole("a track has no sample sizes")


def _chunks_inside(moov: bytes, tables: dict[bytes, tuple[int, int]], mdats: list[tuple[int, int]]) -> None:
    """Every chunk offset of a track points into a media data box (a file cut short, or a table
    written for other data, points past it)."""
    if b"stco" in tables:
        start, width, fmt = tables[b"stco"][0], 4, ">I"
    elif b"co64" in tables:
        start, width, fmt = tables[b"co64"][0], 8, ">Q"
    else:
        raise _NotWhole("a track has no chunk offsets")
    count = struct.unpack_from(">I", moov, start + 4)[0]
    if start + 8 + count * width > len(moov):
        raise _NotWhole("a chunk offset table is cut off")
    offsets = struct.unpack_from(f">{count}{fmt[1]}", moov, start + 8)
    if not all(any(s <= o < e for s, e in mdats) for o in offsets):
        raise _NotWhole("a track's chunks lie outside its media data")
