"""What a camcorder card tells us without decoding: where its clips are, which files continue
which (spanned takes), and the recording date the camera wrote into the H.264 stream.

Layout of an AVCHD card: `PRIVATE/AVCHD/BDMV/{STREAM/*.MTS, CLIPINF/*.CPI, PLAYLIST/*.MPL}`, the 8.3
names of a camera's FAT card; a Blu-ray style copy names them `.M2TS`, `.CLPI` and `.MPLS`. Both
are read. The clip info (CPI/CLPI) gives each file's length in 192-byte source packets, so a
copy cut short is found even when it ends on a packet (or a 6144-byte unit) boundary.
A take longer than the file-size limit is cut by the camera at a packet boundary (mid-GOP)
into consecutive files; the playlist lists them as play items whose connection condition
says they join seamlessly (5 or 6). Without a playlist we fall back to consecutive numbering
plus timestamp continuity: part 2's start time continues part 1's end (media.md, tested).
"""
from __future__ import annotations

import os
import re
import struct
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

# light (the standard library only): `media ingest --wait` loads this module before the app
from filmfund.media.sniff import sniff, ts_packet_size

VIDEO_EXTENSIONS = {".mts", ".m2ts", ".mp4", ".mov", ".mkv", ".avi", ".mxf", ".m4v", ".mpg", ".mpeg", ".ts",
                    ".webm", ".dv", ".3gp"}
IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp", ".bmp"}
AUDIO_EXTENSIONS = {".wav", ".mp3", ".m4a", ".aac", ".flac", ".ogg"}
MEDIA_EXTENSIONS = VIDEO_EXTENSIONS | IMAGE_EXTENSIONS | AUDIO_EXTENSIONS
SEAMLESS = {5, 6}  # connection_condition of a play item that continues the previous one
CONTINUITY_TOLERANCE = 1.0  # seconds between part 1's end and part 2's start (B-frame reordering)


def path_text(path: Path | str) -> str:
    """A file's path (or name) as text, for the database and the screen. A failing laptop or a
    damaged card's FAT can name a file in bytes that are not UTF-8; Python keeps them as lone
    surrogates, which no database or terminal takes. They are written escaped (`\\xff`), so the
    take is still ingested under a name that says what was there, the same name each time."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def bdmv_dir(root: Path) -> Path | None:
    """The BDMV folder of a card root (or of the BDMV folder itself), if this is a card."""
    for candidate in (root / "PRIVATE" / "AVCHD" / "BDMV", root / "AVCHD" / "BDMV", root / "BDMV", root):
        if _ci(candidate, "STREAM") is not None and candidate.name.upper() == "BDMV":
            return candidate
    return None


def card_of(path: Path) -> Path | None:
    """The BDMV folder of the card a path named on its own belongs to: the card's STREAM folder,
    or a file in it (what `media ingest /card/PRIVATE/AVCHD/BDMV/STREAM/*` names). The one answer
    to "which card is this file on": discovery then reads that card's playlists and clip info for
    the named clips, as for the card root (a part cut short, a part of the take not in the copy)."""
    stream = path if path.is_dir() else path.parent
    if stream.name.upper() != "STREAM" or stream.is_symlink():
        return None
    bdmv = stream.parent
    if bdmv_dir(bdmv) != bdmv or _ci(bdmv, "STREAM") != stream:
        return None
    return bdmv


def _ci(parent: Path, name: str) -> Path | None:
    """A child by name, ignoring case (cards are FAT: copies come in either case); never a symlink."""
    if not parent.is_dir() or parent.is_symlink():
        return None
    for child in parent.iterdir():
        if child.name.upper() == name.upper() and not child.is_symlink():
            return child
    return None


PLAYLIST_SUFFIXES = (".MPL", ".MPLS")
CLIPINF_SUFFIXES = (".CPI", ".CLPI")
STREAM_SUFFIXES = (".mts", ".m2ts")
CARD_FILES = ("INDEX.BDM", "MOVIEOBJ.BDM", "INDEX.BDMV", "MOVIEOBJECT.BDMV")


def _clipinf(clipinf: Path | None, name: str) -> Path | None:
    if clipinf is None:
        return None
    for suffix in CLIPINF_SUFFIXES:
        found = _ci(clipinf, name + suffix)
        if found is not None:
            return found
    return None


def parse_clpi(data: bytes) -> int:
    """The length of a clip in bytes from its clip info (CPI/CLPI): number_of_source_packets
    (ClipInfo at byte 40: length, reserved, types, flags, TS_recording_rate, then the count) x 192."""
    if len(data) < 60 or data[:4] != b"HDMV":
        raise ValueError("not a clip info file")
    (packets,) = struct.unpack(">I", data[56:60])
    return packets * 192


def build_clpi(size: int) -> bytes:
    """A minimal clip info declaring a clip of `size` bytes (for tests and for the layout)."""
    clip_info = struct.pack(">IHBBII", 0, 0, 1, 1, 0, 48_000_000 // 8) + struct.pack(">I", size // 192)
    header = b"HDMV0100" + struct.pack(">IIIII", 0, 0, 0, 0, 0) + b"\x00" * 12
    return header + clip_info + b"\x00" * 128


def parse_mpls(data: bytes) -> list[tuple[str, int]]:
    """Play items of an MPL/MPLS playlist: [(clip name e.g. '00001', connection_condition)]."""
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
    expected_sizes: dict[Path, int] = field(default_factory=dict)  # from the clip info
    missing: list[MissingPart] = field(default_factory=list)  # parts of the take not in this copy


@dataclass
class MissingPart:
    """A file the card's playlist joins to this take that is not in the copy: the take breaks
    at the group's `side` ("start" or "end"). `size`: its length from the clip info, if kept."""

    name: str          # the file's name as the card would have it, e.g. 00001.MTS
    side: str          # "start": the part before the group's first file; "end": after its last
    playlist: str
    size: int | None = None


@dataclass
class Skipped:
    """A path ingest did not take, and why (reported by `filmfund media ingest`)."""

    path: Path
    reason: str


def card_groups(bdmv: Path, skipped: list[Skipped] | None = None) -> list[SourceGroup]:
    skipped = skipped if skipped is not None else []
    stream = _ci(bdmv, "STREAM")
    files: dict[str, Path] = {}
    # The camera's names first: a file under another name (taken by its bytes) answers to the
    # playlist's name only if no file has the camera's name, else it comes in on its own.
    # Hidden files are never the camera's: a Mac's Finder leaves an AppleDouble `._00000.MTS` (its
    # metadata, 4 KiB) beside each file it copies onto exFAT, and a `.DS_Store`.
    named = sorted((p for p in stream.iterdir() if not p.name.startswith(".")),
                   key=lambda p: (p.suffix.lower() not in STREAM_SUFFIXES, p.name))
    for p in named:
        if p.suffix.lower() not in STREAM_SUFFIXES and not _stream_by_bytes(p, skipped):
            continue
        if p.is_symlink():
            skipped.append(Skipped(p, _link_reason(p, bdmv)))
        elif p.stat().st_size == 0:
            skipped.append(Skipped(p, "empty file (0 bytes)"))
        else:
            files[p.stem.upper() if p.stem.upper() not in files else p.name.upper()] = p
    playlist_dir = _ci(bdmv, "PLAYLIST")
    clipinf = _ci(bdmv, "CLIPINF")
    card_files = [f for f in (_ci(bdmv, n) for n in CARD_FILES) if f is not None and f.is_file()]
    groups: list[SourceGroup] = []
    used: set[str] = set()
    playlists = sorted(p for p in playlist_dir.iterdir() if p.suffix.upper() in PLAYLIST_SUFFIXES
                       and not p.name.startswith(".") and not p.is_symlink() and p.is_file()) if playlist_dir else []

    def clip_facts(name: str, path: Path, group: SourceGroup) -> None:
        info = _clipinf(clipinf, name)
        if info is None:
            return
        group.sidecars.append(info)
        try:
            group.expected_sizes[path] = parse_clpi(info.read_bytes())
        except (ValueError, struct.error, OSError):
            pass

    for mpls in playlists:
        try:
            items = parse_mpls(mpls.read_bytes())
        except (ValueError, struct.error, IndexError):
            continue
        current: SourceGroup | None = None
        lost: MissingPart | None = None  # the part just before, named by the playlist, not in the copy
        for name, condition in items:
            path = files.get(name.upper())
            if name.upper() in used:
                current, lost = None, None
                continue
            if path is None:
                # Named by the playlist, not in this copy (lost, or skipped above as a link or an
                # empty file): the take breaks here, and both sides of the break are told so.
                lost = _missing(stream, name, clipinf, mpls, skipped, continues=condition in SEAMLESS)
                if current is not None and condition in SEAMLESS:
                    current.missing.append(MissingPart(lost.name, "end", lost.playlist, lost.size))
                current = None
                continue
            used.add(name.upper())
            if current is not None and condition in SEAMLESS:
                current.files.append(path)
                current.how = f"spanned take (playlist {mpls.name})"
            else:
                current = SourceGroup([path], f"card clip (playlist {mpls.name})", bdmv, [mpls, *card_files])
                groups.append(current)
                if lost is not None and condition in SEAMLESS:
                    current.missing.append(MissingPart(lost.name, "start", lost.playlist, lost.size))
            lost = None
            clip_facts(name, path, current)
    rest = [p for k, p in sorted(files.items()) if k not in used]
    for group in group_by_continuity(rest):
        group.card = bdmv
        group.sidecars += card_files
        clip_facts(group.files[0].stem, group.files[0], group)
        groups.append(group)
    return groups


def _missing(stream: Path, name: str, clipinf: Path | None, mpls: Path, skipped: list[Skipped], *,
             continues: bool) -> MissingPart:
    """A play item whose file is not in the copy, listed in `skipped` (unless it is there already,
    as a link or an empty file) with what the card says of it."""
    info = _clipinf(clipinf, name)
    size = None
    if info is not None:
        try:
            size = parse_clpi(info.read_bytes())
        except (ValueError, struct.error, OSError):
            pass
    ext = next((p.suffix for p in stream.iterdir() if p.suffix.lower() in STREAM_SUFFIXES), ".MTS")
    file_name = f"{name}{ext}"
    if not any(s.path.parent == stream and s.path.stem.upper() == name.upper() for s in skipped):
        length = f" ({size} bytes by its clip info)" if size else ""
        role = "a part of a spanned take" if continues else "a take"
        skipped.append(Skipped(stream / file_name, f"named by the card's playlist {mpls.name} as {role}{length}, "
                                                   "but not in this copy: the take is incomplete"))
    return MissingPart(file_name, "", mpls.name, size)


def _stream_by_bytes(path: Path, skipped: list[Skipped]) -> bool:
    """A file of a card's STREAM folder under another name (00001.MTS renamed .mp4, .MTS.part on a
    laptop): taken if its bytes are a transport stream (judged from the bytes, not the name),
    else listed in `skipped`. Hidden files (a Mac's ._ and .DS_Store) are not the camera's."""
    if path.is_symlink():
        return True  # listed by the caller as a link, never followed (nor read here)
    if path.name.startswith(".") or not path.is_file():
        return False
    try:
        found = sniff(path)
    except OSError as exc:
        skipped.append(Skipped(path, f"in the card's STREAM folder, cannot be read: {exc.strerror or exc}"))
        return False
    if found.container in ("mpegts", "empty"):  # an empty one is listed by the caller as empty
        return True
    skipped.append(Skipped(path, f"in the card's STREAM folder, but it holds {found.description}, "
                                 "not a camera clip: not ingested"))
    return False


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
        return True
    except (ValueError, OSError, RuntimeError):
        return False


def _link_reason(link: Path, root: Path) -> str:
    try:
        target = link.resolve(strict=True)
    except (OSError, RuntimeError):
        return "symlink to nothing (broken link): not followed"
    if _inside(target, root):
        return f"symlink to {target} inside the ingested folder: ingested there, not twice"
    return f"symlink to {target}, outside the ingested folder: not followed"


def discover(paths: list[Path], skipped: list[Skipped] | None = None) -> list[SourceGroup]:
    """Every asset-to-be under these paths: files, folders, AVCHD card roots.

    Symlinks are never followed (to a file or to a folder), whether found inside a folder or named
    in `paths`: a link could make ingest store any file of the machine. They, and empty files, are listed in `skipped`."""
    skipped = skipped if skipped is not None else []
    groups: list[SourceGroup] = []
    seen: set[Path] = set()
    read: dict[Path, tuple[list[SourceGroup], list[Skipped]]] = {}  # each card named into, read once
    for raw in paths:
        named = Path(raw)
        if named.is_symlink():
            # Named directly (a shell glob over a card expands to its links too): refused like a
            # link found inside a folder, never followed to wherever it points.
            skipped.append(Skipped(named, f"symlink to {os.path.realpath(named)}, named as a path: not followed"))
            continue
        path = named.resolve()
        if not path.exists():
            raise FileNotFoundError(f"no such file or folder: {raw}")
        bdmv = card_of(path)
        if bdmv is not None:
            # A card's STREAM folder, or files of it (a shell glob over it): the card's playlists
            # and clip info hold for them as for the card root (spanned takes whole, a part not in
            # the copy named, a copy cut short found), never a loose file that says nothing.
            _named_in_card(path, bdmv, read, groups, seen, skipped)
            continue
        if path.is_file():
            if path.stat().st_size == 0:
                skipped.append(Skipped(path, "empty file (0 bytes)"))
            elif path not in seen:
                seen.add(path)
                groups.append(SourceGroup([path]))
            continue
        folders, all_files = [], []
        for top, dirnames, filenames in os.walk(path, followlinks=False):
            here = Path(top)
            folders.append(here)
            for d in sorted(dirnames):
                if (here / d).is_symlink():
                    skipped.append(Skipped(here / d, _link_reason(here / d, path)))
            dirnames[:] = sorted(d for d in dirnames if not (here / d).is_symlink())
            all_files += [here / f for f in filenames]
        cards = []
        for folder in sorted(folders):
            bdmv = bdmv_dir(folder)
            if bdmv is not None and bdmv not in cards:
                cards.append(bdmv)
        for bdmv in cards:
            for group in card_groups(bdmv, skipped):
                if not (set(group.files) & seen):
                    seen.update(group.files)
                    groups.append(group)
        loose: dict[Path, list[Path]] = {}
        for file in sorted(all_files):
            if file in seen or file.name.startswith(".") or any(b in file.parents for b in cards):
                continue
            if file.is_symlink():
                if file.suffix.lower() in MEDIA_EXTENSIONS:
                    skipped.append(Skipped(file, _link_reason(file, path)))
                continue
            if file.suffix.lower() not in MEDIA_EXTENSIONS:
                reason = _passed_over(file)
                if reason:
                    skipped.append(Skipped(file, reason))
                continue
            if file.stat().st_size == 0:
                skipped.append(Skipped(file, "empty file (0 bytes)"))
                continue
            loose.setdefault(file.parent, []).append(file)
            seen.add(file)
        for folder in sorted(loose):
            groups.extend(group_by_continuity(loose[folder]))
    return groups


def _named_in_card(path: Path, bdmv: Path, read: dict, groups: list[SourceGroup], seen: set[Path],
                   skipped: list[Skipped]) -> None:
    """The takes of a card that a named STREAM folder or STREAM file is in, as `card_groups` finds
    them for the card root: a named part of a spanned take brings its take (its other parts on the
    card are joined to it, or named as missing). What the card skipped is told only for what was
    named: the named file itself, or a part missing from a named file's take."""
    if bdmv not in read:
        found: list[Skipped] = []
        read[bdmv] = (card_groups(bdmv, found), found)
    card, card_skipped = read[bdmv]
    stream = _ci(bdmv, "STREAM")
    whole_folder = path.is_dir()
    if not whole_folder and path.stat().st_size == 0:
        skipped.append(Skipped(path, "empty file (0 bytes)"))
        return
    mine = [g for g in card if whole_folder or path in g.files]
    told: list[Skipped] = list(card_skipped) if whole_folder else [s for s in card_skipped if s.path == path]
    for group in mine:
        lost = {Path(m.name).stem.upper() for m in group.missing}
        told += [s for s in card_skipped if s.path.parent == stream and s.path.stem.upper() in lost]
        if not (set(group.files) & seen):
            seen.update(group.files)
            groups.append(group)
    for s in told:
        if s not in skipped:
            skipped.append(s)
    if not whole_folder and not mine and not told and path not in seen:
        # Not a take of the card's (a file the card does not take by its bytes is told above):
        # as any file named on its own.
        seen.add(path)
        groups.append(SourceGroup([path]))


# Names a copy gets when it is not the file it was: pieces a disk repair recovered (chkdsk's
# FILE0001.CHK, fsck's lost+found) and copies or downloads that never finished.
RECOVERED_SUFFIXES = {".chk", ".part", ".partial", ".crdownload", ".download"}
FOOTAGE_CONTAINERS = {"mpegts": ".MTS", "mp4": ".mp4", "matroska": ".mkv", "riff": ".avi", "mpeg-ps": ".mpg"}


def _passed_over(file: Path) -> str | None:
    """Why a file of a folder whose name is not a video, image or audio name is not ingested, if
    the crew must hear of it: its bytes are footage, or its name is that of a recovered or
    unfinished copy. Other files (a camera's .XML and .THM, notes) are not footage: not listed."""
    kind = file.suffix or "no extension"
    recovered = file.suffix.lower() in RECOVERED_SUFFIXES
    try:
        found = sniff(file)
    except OSError as exc:
        return f"named {kind}, as a recovered or unfinished copy is, and cannot be read: {exc.strerror or exc}" \
            if recovered else None
    said = f"named {kind}, as a disk repair or an unfinished copy names a file; " if recovered else ""
    if found.container in FOOTAGE_CONTAINERS:
        return (f"{said}holds {found.description} under a name that is not a video name: not ingested "
                f"(rename it to {FOOTAGE_CONTAINERS[found.container]} and ingest it to keep it)")
    if recovered:
        return f"{said}holds {found.description}: not ingested"
    return None


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


MDPM_UUID = bytes.fromhex("17ee8c60f84d11d98cd60800200c9a66")
MAKES = {0x0103: "Panasonic", 0x0108: "Sony", 0x1011: "Canon", 0x1104: "JVC"}  # ExifTool's list


@dataclass
class CameraData:
    """What a camcorder writes in the H.264 SEI user data "MDPM" (as ExifTool reads it)."""

    recorded_at: datetime | None = None   # in UTC, from the camera's clock and zone
    zone: str | None = None               # the camera's zone, e.g. "+01:00" (None: not set)
    make: str | None = None
    model: str | None = None
    timecode: str | None = None           # HH:MM:SS:FF

    @property
    def camera(self) -> str | None:
        return " ".join(v for v in (self.make, self.model) if v) or None


def unescape_rbsp(nal: bytes) -> bytes:
    """A NAL unit's payload without its emulation-prevention bytes (00 00 03 -> 00 00)."""
    out = bytearray()
    zeros = 0
    for b in nal:
        if zeros >= 2 and b == 3:
            zeros = 0
            continue
        out.append(b)
        zeros = zeros + 1 if b == 0 else 0
    return bytes(out)


def escape_rbsp(payload: bytes) -> bytes:
    """The reverse (for building test streams): 00 00 0x with x <= 3 becomes 00 00 03 0x."""
    out = bytearray()
    zeros = 0
    for b in payload:
        if zeros >= 2 and b <= 3:
            out.append(3)
            zeros = 0
        out.append(b)
        zeros = zeros + 1 if b == 0 else 0
    return bytes(out)


def ts_elementary_streams(data: bytes, packet: int, limit: int = 4 * 1024 * 1024) -> dict[int, bytes]:
    """The PES payloads of each PID of an MPEG-TS, joined across packets (PES headers removed).
    A camera's SEI is often split over two TS packets: the raw file bytes are not the stream."""
    offset = 4 if packet == 192 else 0
    streams: dict[int, bytearray] = {}
    for pos in range(0, len(data) - packet + 1, packet):
        pkt = data[pos + offset:pos + offset + 188]
        if len(pkt) < 188 or pkt[0] != 0x47:
            continue
        pid = ((pkt[1] & 0x1F) << 8) | pkt[2]
        start = bool(pkt[1] & 0x40)
        afc = (pkt[3] >> 4) & 0x3
        if pid == 0x1FFF or not afc & 1:
            continue
        body = 4 + (1 + pkt[4] if afc & 2 else 0)
        payload = pkt[body:]
        if start:
            if payload[:3] != b"\x00\x00\x01" or len(payload) < 9:
                streams.pop(pid, None)
                continue
            if not 0xE0 <= payload[3] <= 0xEF and payload[3] != 0xFD:  # video PES only
                continue
            payload = payload[9 + payload[8]:]
            streams.setdefault(pid, bytearray())
        if pid in streams:
            streams[pid] += payload
            if len(streams[pid]) > limit:
                break
    return {pid: bytes(es) for pid, es in streams.items()}


def _nal_units(es: bytes):
    i = es.find(b"\x00\x00\x01")
    while i >= 0:
        j = es.find(b"\x00\x00\x01", i + 3)
        nal = es[i + 3:j if j >= 0 else len(es)]
        yield nal.rstrip(b"\x00") if j >= 0 else nal
        i = j


def _sei_user_data(rbsp: bytes):
    """(uuid, data) of each user_data_unregistered message of one SEI RBSP."""
    pos = 0
    while pos < len(rbsp) - 2:
        ptype = 0
        while pos < len(rbsp) and rbsp[pos] == 0xFF:
            ptype += 255
            pos += 1
        if pos >= len(rbsp):
            return
        ptype += rbsp[pos]
        pos += 1
        size = 0
        while pos < len(rbsp) and rbsp[pos] == 0xFF:
            size += 255
            pos += 1
        if pos >= len(rbsp):
            return
        size += rbsp[pos]
        pos += 1
        if ptype == 5 and size >= 16:
            yield rbsp[pos:pos + 16], rbsp[pos + 16:pos + size]
        pos += size
        if pos < len(rbsp) and rbsp[pos] == 0x80:  # rbsp_trailing_bits
            return


def parse_mdpm(data: bytes) -> CameraData | None:
    """The MDPM records after the UUID: "MDPM", a count, then 5-byte entries (tag + 4 bytes)."""
    if not data.startswith(b"MDPM") or len(data) < 5:
        return None
    count = data[4]
    tags: dict[int, bytes] = {}
    pos = 5
    for _ in range(count):
        if pos + 5 > len(data):
            break
        tags[data[pos]] = data[pos + 1:pos + 5]
        pos += 5
    cam = CameraData()

    def bcd(b: int) -> int:
        return (b >> 4) * 10 + (b & 0x0F)

    if 0x18 in tags and 0x19 in tags:
        tz, yh, yl, mo = tags[0x18]
        d, h, mi, s = tags[0x19]
        try:
            naive = datetime(bcd(yh) * 100 + bcd(yl), bcd(mo), bcd(d), bcd(h), bcd(mi), bcd(s))
        except ValueError:
            naive = None
        if naive is not None:
            if tz & 0x80:  # the camera did not know its zone: read the clock as UTC
                cam.recorded_at = naive.replace(tzinfo=timezone.utc)
            else:
                offset = timedelta(hours=(tz >> 1) & 0x0F, minutes=30 if tz & 0x01 else 0)
                sign = "-" if tz & 0x20 else "+"
                if tz & 0x20:
                    offset = -offset
                cam.zone = f"{sign}{(tz >> 1) & 0x0F:02d}:{30 if tz & 0x01 else 0:02d}"
                cam.recorded_at = naive.replace(tzinfo=timezone(offset)).astimezone(timezone.utc)
    if 0x13 in tags:  # frames, seconds, minutes, hours in BCD (top bits are flags)
        ff, ss, mm, hh = tags[0x13]
        if tags[0x13] != b"\xff\xff\xff\xff":
            cam.timecode = f"{bcd(hh & 0x3F):02d}:{bcd(mm & 0x7F):02d}:{bcd(ss & 0x7F):02d}:{bcd(ff & 0x3F):02d}"
    if 0xE0 in tags:
        (code,) = struct.unpack(">H", tags[0xE0][:2])
        cam.make = MAKES.get(code)
    model = b"".join(tags.get(t, b"") for t in (0xE4, 0xE5, 0xE6)).split(b"\x00")[0].strip()
    if model and cam.make == "Sony":  # ExifTool: only Sony writes its model name here
        cam.model = model.decode("ascii", "replace")
    return cam


def read_camera_data(path: Path, scan_bytes: int = 4 * 1024 * 1024) -> CameraData | None:
    """The camera's MDPM data from the first SEI that carries it, in a camcorder's transport
    stream: the TS packets are unwrapped and the emulation-prevention bytes removed first."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(scan_bytes)
    except OSError:
        return None
    packet = ts_packet_size(data)
    if packet is None:
        return None
    for es in ts_elementary_streams(data, packet).values():
        for nal in _nal_units(es):
            if not nal or nal[0] & 0x1F != 6:
                continue
            for uuid, payload in _sei_user_data(unescape_rbsp(nal[1:])):
                if uuid == MDPM_UUID:
                    cam = parse_mdpm(payload)
                    if cam is not None:
                        return cam
    return None


def read_mdpm_date(path: Path, scan_bytes: int = 4 * 1024 * 1024) -> datetime | None:
    """The recording date a camcorder writes in H.264 SEI user data ("MDPM"), in UTC."""
    cam = read_camera_data(path, scan_bytes)
    return cam.recorded_at if cam else None
