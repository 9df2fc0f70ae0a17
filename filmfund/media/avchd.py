"""What a camcorder card tells us without decoding: where its clips are, which files continue
which (spanned takes), and the recording date the camera wrote into the H.264 stream.

Layout of an AVCHD card: `PRIVATE/AVCHD/BDMV/{STREAM/*.MTS, CLIPINF/*.CPI, PLAYLIST/*.MPLS}`.
A take longer than the file-size limit is cut by the camera at a packet boundary (mid-GOP)
into consecutive files; the playlist lists them as play items whose connection condition
says they join seamlessly (5 or 6). Without a playlist we fall back to consecutive numbering
plus timestamp continuity: part 2's start time continues part 1's end (media.md, tested).
"""
from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

VIDEO_EXTENSIONS = {".mts", ".m2ts", ".mp4", ".mov", ".mkv", ".avi", ".mxf", ".m4v", ".mpg", ".mpeg", ".ts",
                    ".webm", ".dv", ".3gp"}
IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp", ".bmp"}
AUDIO_EXTENSIONS = {".wav", ".mp3", ".m4a", ".aac", ".flac", ".ogg"}
MEDIA_EXTENSIONS = VIDEO_EXTENSIONS | IMAGE_EXTENSIONS | AUDIO_EXTENSIONS
SEAMLESS = {5, 6}  # connection_condition of a play item that continues the previous one
CONTINUITY_TOLERANCE = 1.0  # seconds between part 1's end and part 2's start (B-frame reordering)


def bdmv_dir(root: Path) -> Path | None:
    """The BDMV folder of a card root (or of the BDMV folder itself), if this is a card."""
    for candidate in (root / "PRIVATE" / "AVCHD" / "BDMV", root / "AVCHD" / "BDMV", root / "BDMV", root):
        if _ci(candidate, "STREAM") is not None and candidate.name.upper() == "BDMV":
            return candidate
    return None


def _ci(parent: Path, name: str) -> Path | None:
    """A child by name, ignoring case (cards are FAT: copies come in either case)."""
    if not parent.is_dir():
        return None
    for child in parent.iterdir():
        if child.name.upper() == name.upper():
            return child
    return None


def parse_mpls(data: bytes) -> list[tuple[str, int]]:
    """Play items of an MPLS playlist: [(clip name e.g. '00001', connection_condition)]."""
    if len(data) < 20 or data[:4] != b"MPLS":
        raise ValueError("not an MPLS playlist")
    (playlist_start,) = struct.unpack(">I", data[8:12])
    pos = playlist_start + 4 + 2  # length, reserved
    (n_items,) = struct.unpack(">H", data[pos:pos + 2])
    pos += 4  # number_of_PlayItems, number_of_SubPaths
    items = []
    for _ in range(n_items):
        (length,) = struct.unpack(">H", data[pos:pos + 2])
        body = data[pos + 2:pos + 2 + length]
        name = body[0:5].decode("ascii", "replace")
        condition = body[10] & 0x0F  # low 4 bits after 11 reserved bits and is_multi_angle
        items.append((name, condition))
        pos += 2 + length
    return items


def build_mpls(items: list[tuple[str, int]]) -> bytes:
    """A minimal MPLS with these play items (for tests and for documenting the layout)."""
    body = b""
    for name, condition in items:
        item = name.encode("ascii")[:5].ljust(5, b"0") + b"M2TS" + bytes([0x00, condition & 0x0F]) + b"\x00" + b"\x00" * 8
        body += struct.pack(">H", len(item)) + item
    playlist = struct.pack(">H", 0) + struct.pack(">HH", len(items), 0) + body
    header = b"MPLS0100" + struct.pack(">III", 40, 0, 0) + b"\x00" * 20
    return header + struct.pack(">I", len(playlist)) + playlist


@dataclass
class SourceGroup:
    """One asset to be: its files in order, and how we knew they belong together."""

    files: list[Path]
    how: str = "single file"
    card: Path | None = None
    sidecars: list[Path] = field(default_factory=list)


def card_groups(bdmv: Path) -> list[SourceGroup]:
    stream = _ci(bdmv, "STREAM")
    files = {p.stem.upper(): p for p in sorted(stream.iterdir()) if p.suffix.lower() in (".mts", ".m2ts")}
    playlist_dir = _ci(bdmv, "PLAYLIST")
    clipinf = _ci(bdmv, "CLIPINF")
    groups: list[SourceGroup] = []
    used: set[str] = set()
    playlists = sorted(p for p in playlist_dir.iterdir() if p.suffix.upper() == ".MPLS") if playlist_dir else []
    for mpls in playlists:
        try:
            items = parse_mpls(mpls.read_bytes())
        except (ValueError, struct.error, IndexError):
            continue
        current: SourceGroup | None = None
        for name, condition in items:
            path = files.get(name.upper())
            if path is None or name.upper() in used:
                current = None
                continue
            used.add(name.upper())
            sidecar = [p for p in ([_ci(clipinf, name + ".CPI")] if clipinf else []) if p]
            if current is not None and condition in SEAMLESS:
                current.files.append(path)
                current.how = f"spanned take (playlist {mpls.name})"
                current.sidecars += sidecar
            else:
                current = SourceGroup([path], f"card clip (playlist {mpls.name})", bdmv, [mpls] + sidecar)
                groups.append(current)
    rest = [p for k, p in sorted(files.items()) if k not in used]
    for group in group_by_continuity(rest):
        group.card = bdmv
        groups.append(group)
    return groups


def discover(paths: list[Path]) -> list[SourceGroup]:
    """Every asset-to-be under these paths: files, folders, AVCHD card roots."""
    groups: list[SourceGroup] = []
    seen: set[Path] = set()
    for raw in paths:
        path = Path(raw).resolve()
        if not path.exists():
            raise FileNotFoundError(f"no such file or folder: {raw}")
        if path.is_file():
            if path not in seen:
                seen.add(path)
                groups.append(SourceGroup([path]))
            continue
        cards = []
        for folder in [path, *sorted(p for p in path.rglob("*") if p.is_dir())]:
            bdmv = bdmv_dir(folder)
            if bdmv is not None and bdmv not in cards:
                cards.append(bdmv)
        for bdmv in cards:
            for group in card_groups(bdmv):
                if not (set(group.files) & seen):
                    seen.update(group.files)
                    groups.append(group)
        loose: dict[Path, list[Path]] = {}
        for file in sorted(p for p in path.rglob("*") if p.is_file()):
            if file in seen or file.suffix.lower() not in MEDIA_EXTENSIONS or file.name.startswith("."):
                continue
            if any(b in file.parents for b in cards):
                continue
            loose.setdefault(file.parent, []).append(file)
            seen.add(file)
        for folder in sorted(loose):
            groups.extend(group_by_continuity(loose[folder]))
    return groups


_NUMBER = re.compile(r"^(.*?)(\d+)$")


def group_by_continuity(files: list[Path]) -> list[SourceGroup]:
    """One group per file, in numbering order; `link_spans` joins them once probed."""
    return [SourceGroup([f]) for f in sorted(files, key=_sort_key)]


def link_spans(groups: list[SourceGroup], times: dict[Path, tuple[float | None, float | None]]
               ) -> list[SourceGroup]:
    """Join single camera files into takes: consecutive numbers and part n+1 starting where
    part n ended (times maps a file to its probed (start_time, end_time))."""
    out: list[SourceGroup] = []
    for group in groups:
        prev = out[-1] if out else None
        if (prev is not None and len(group.files) == 1 and group.how == "single file"
                and (prev.how == "single file" or prev.how.startswith("spanned take (consecutive"))
                and group.files[0].suffix.lower() in (".mts", ".m2ts")
                and consecutive(prev.files[-1], group.files[0])
                and continues(times.get(prev.files[-1], (None, None))[1], times.get(group.files[0], (None, None))[0])):
            prev.files.append(group.files[0])
            prev.how = "spanned take (consecutive numbering, timestamps continue)"
            continue
        out.append(group)
    return out


def _sort_key(path: Path):
    m = _NUMBER.match(path.stem)
    return (str(path.parent), m.group(1) if m else path.stem, int(m.group(2)) if m else -1, path.name)


def consecutive(a: Path, b: Path) -> bool:
    ma, mb = _NUMBER.match(a.stem), _NUMBER.match(b.stem)
    return bool(ma and mb and a.parent == b.parent and ma.group(1) == mb.group(1)
                and int(mb.group(2)) == int(ma.group(2)) + 1 and a.suffix.lower() == b.suffix.lower())


def continues(prev_end: float | None, next_start: float | None) -> bool:
    return (prev_end is not None and next_start is not None
            and abs(next_start - prev_end) <= CONTINUITY_TOLERANCE)


def read_mdpm_date(path: Path, scan_bytes: int = 4 * 1024 * 1024) -> datetime | None:
    """The recording date a camcorder writes in H.264 SEI user data ("MDPM"), as ExifTool reads
    it: tag 0x18 = time zone, year (BCD, two bytes), month; tag 0x19 = day, hour, minute, second."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(scan_bytes)
    except OSError:
        return None
    i = data.find(b"MDPM")
    if i < 0 or i + 5 >= len(data):
        return None
    count = data[i + 4]
    tags: dict[int, bytes] = {}
    pos = i + 5
    for _ in range(count):
        if pos + 5 > len(data):
            break
        tags[data[pos]] = data[pos + 1:pos + 5]
        pos += 5
    if 0x18 not in tags or 0x19 not in tags:
        return None

    def bcd(b: int) -> int:
        return (b >> 4) * 10 + (b & 0x0F)

    tz, yh, yl, mo = tags[0x18]
    d, h, mi, s = tags[0x19]
    try:
        naive = datetime(bcd(yh) * 100 + bcd(yl), bcd(mo), bcd(d), bcd(h), bcd(mi), bcd(s))
    except ValueError:
        return None
    if tz & 0x80:  # the camera did not know its zone: read the clock as UTC
        return naive.replace(tzinfo=timezone.utc)
    offset = timedelta(hours=(tz >> 1) & 0x0F, minutes=30 if tz & 0x01 else 0)
    if tz & 0x20:
        offset = -offset
    return naive.replace(tzinfo=timezone(offset)).astimezone(timezone.utc)
