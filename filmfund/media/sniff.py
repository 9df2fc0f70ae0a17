"""What a file is, judged from its first bytes, never from its name.

A camera's `.MTS` holds 192-byte packets (a 4-byte timestamp, then a 188-byte TS packet); a
phone, screen recorder or editor writes plain 188-byte TS under the same name, and broadcast
gear 204-byte packets (16 bytes of error correction after each). A text file, a playlist that
would make ffmpeg read other files or URLs, or an empty file must be told apart before any
ffmpeg runs on it.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

HEAD_BYTES = 64 * 1024
TS_SYNC = 0x47
# (packet size, offset of the sync byte inside a packet)
TS_LAYOUTS = ((192, 4), (188, 0), (204, 0))

# Containers that make ffmpeg open other files or URLs named inside them.
PLAYLIST_MARKERS = (
    (b"#EXTM3U", "an HLS playlist (.m3u8)"),
    (b"ffconcat version", "an ffmpeg concat script"),
    (b"#EXTINF", "a playlist"),
    (b"[playlist]", "a PLS playlist"),
)


@dataclass(frozen=True)
class Sniff:
    container: str                  # empty | mpegts | mp4 | matroska | riff | mpeg-ps | image | audio | playlist | text | unknown
    packet_size: int | None = None  # for mpegts: 188, 192 or 204
    description: str = ""

    @property
    def is_media(self) -> bool:
        return self.container not in ("empty", "playlist", "text")


def ts_packet_size(head: bytes) -> int | None:
    """188, 192 or 204 if the bytes are MPEG-TS packets of that size (sync byte 0x47 every
    packet, checked on up to 16 packets), else None."""
    for size, offset in TS_LAYOUTS:
        syncs = [offset + k * size for k in range(16) if offset + k * size < len(head)]
        if len(syncs) >= 2 and all(head[i] == TS_SYNC for i in syncs):
            return size
    return None


def _looks_like_text(head: bytes) -> bool:
    if not head or b"\x00" in head[:4096]:
        return False
    try:
        text = head[:4096].decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < 4090:  # a multi-byte character cut at the end of the sample is fine
            return False
        text = head[:exc.start].decode("utf-8")
    printable = sum(c.isprintable() or c in "\r\n\t" for c in text)
    return printable >= 0.95 * max(1, len(text))


def sniff_bytes(head: bytes, size: int | None = None) -> Sniff:
    if size == 0 or not head:
        return Sniff("empty", description="an empty file (0 bytes)")
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    for marker, what in PLAYLIST_MARKERS:
        if stripped.startswith(marker):
            return Sniff("playlist", description=what)
    if stripped.startswith(b"<?xml") and b"<MPD" in stripped[:2048]:
        return Sniff("playlist", description="a DASH manifest (.mpd)")
    packet = ts_packet_size(head)
    if packet:
        return Sniff("mpegts", packet, f"MPEG transport stream, {packet}-byte packets")
    if head[4:8] in (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip", b"pnot"):
        return Sniff("mp4", description="MP4/QuickTime")
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return Sniff("matroska", description="Matroska/WebM")
    if head[:4] == b"RIFF":
        return Sniff("riff", description=f"RIFF ({head[8:12].decode('latin-1').strip()})")
    if head[:4] in (b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3"):
        return Sniff("mpeg-ps", description="MPEG program stream")
    if head[:3] == b"\xff\xd8\xff" or head[:8] == b"\x89PNG\r\n\x1a\n" or head[:4] in (b"II*\x00", b"MM\x00*") \
            or head[:2] == b"BM" or head[:6] in (b"GIF87a", b"GIF89a") or (head[:4] == b"RIFF" and head[8:12] == b"WEBP"):
        return Sniff("image", description="an image")
    if head[:4] in (b"fLaC", b"OggS") or head[:3] == b"ID3" or head[:2] in (b"\xff\xfb", b"\xff\xf3", b"\xff\xf1"):
        return Sniff("audio", description="audio")
    if _looks_like_text(head):
        return Sniff("text", description="text, not video")
    return Sniff("unknown", description="unknown binary data")


def sniff(path: str | Path) -> Sniff:
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(HEAD_BYTES)
    return sniff_bytes(head, size)
