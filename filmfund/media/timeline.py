"""Timelines for an editor (`filmfund media export`): a card or a selection of clips, in recording
order, as an OpenTimelineIO timeline written by its adapters: FCP 7 XML (`fcp_xml`: Resolve,
Premiere), FCPXML (`fcpx_xml`: Final Cut), CMX 3600 EDL (`cmx_3600`) or OTIO JSON.

Each clip is the whole take: its media is the edit proxy (a `file://` URL on local storage, a
presigned URL on S3), its available and source range start at the camera's timecode at the
clip's rate (the proxy's constant rate as a timecode rate: `clip_rate`), and it carries its reel,
so that an editor can relink the cut to the originals by reel and timecode. A clip whose timecode
cannot be placed at its rate is left out with a warning on stderr; the others are exported.

Reels. The full reel is `CARD_FILE` (the card's folder name and the first file's stem, characters
other than letters, digits, `-` and `_` made `_`), e.g. `CARD_A_00001`: the FCP 7
`<timecode><reel><name>`, and the clip's name in every format. A name with characters a reel cannot
hold (Chinese: `采访 一`) keeps the ASCII it has and gets 5 base-36 characters of a hash of the name
as written (`loose_zh_3Q0U1`), so that two names stay two reels; the clip's name in FCP 7 XML,
FCPXML and OTIO keeps the name's own letters (`loose_zh_采访_一`; the EDL's is the reel). Two cards
of one export with the same name in different places (`NO NAME`, an SD card's default) each get 3
characters of a hash of their path after the name (e.g. `NO_NAME_Y3H_00000`), and two clips still
sharing a reel 4 of their SHA-256. A CMX 3600 reel has 8 characters, letters and digits only: the
card's code (the first 3 letters or digits of its name, upper case) then the file's code (the last 5
letters or digits of the stem: AVCHD numbers its files 00000-99999), e.g. `CAR00001`. A card whose
name has no such code (Chinese), or whose code another card of the export shares, or that shares its
name with another card, has 3 base-36 characters of a hash as its code instead (the same card always
gets the same one), and the EDL says so in a comment; a stem with no code has 5 of a hash of itself.
The full reel stays in every event (`* FROM CLIP NAME`).

opentimelineio is imported here only: the CLI imports this module inside its command.
"""
from __future__ import annotations

import hashlib
import re
import sys
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePath

import opentimelineio as otio
import sqlalchemy as sa
from opentimelineio.opentime import RationalTime, TimeRange, from_timecode

from filmfund.errors import DomainError, NotFoundError
from filmfund.extensions import db
from filmfund.media.common import named_assets, storage
from filmfund.media.ingest import _card_name
from filmfund.media.models import Asset, AssetKind, AssetState, RenditionKind

# Contract name -> OTIO adapter name.
FORMATS = {"fcp7xml": "fcp_xml", "fcpxml": "fcpx_xml", "edl": "cmx_3600", "otio": "otio_json"}
URL_TTL_DEFAULT = 24 * 3600
URL_TTL_MAX = 7 * 24 * 3600  # what an S3 presigned URL (SigV4) allows at most
EDL_REEL_LEN = 8
_NOT_REEL = re.compile(r"[^A-Za-z0-9_-]+")
_NOT_ALNUM = re.compile(r"[^A-Za-z0-9]+")
_NOT_NAME = re.compile(r"[^\w-]+")  # a clip's name: any script's letters and digits kept
_BASE36 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
# The rates SMPTE timecode has (OTIO's `from_timecode` refuses any other), the NTSC ones exact.
TIMECODE_RATES = (24000 / 1001, 24.0, 25.0, 30000 / 1001, 30.0, 48.0, 50.0, 60000 / 1001, 60.0)


class ExportError(DomainError):
    code = "export_refused"


@dataclass
class ClipInfo:
    asset: Asset
    card: str
    file: str
    reel: str
    edl_reel: str = ""
    notes: list[str] = field(default_factory=list)
    name: str = ""   # the clip's name where a format takes any letters (FCP 7 XML, FCPXML, OTIO)
    place: str = ""  # where the card (or the loose file's folder) was: tells two same-named cards apart
    card_tag: str = ""  # 3 characters of a hash of `place`, when another card of the export has its name


def card_and_file(asset: Asset) -> tuple[str, str]:
    """The card (the folder above PRIVATE/AVCHD/BDMV or BDMV, else the file's folder) and the
    first file's stem, from where ingest found the original."""
    card, file, _ = _card_file_place(asset)
    return card, file


def _card_file_place(asset: Asset) -> tuple[str, str, str]:
    """card_and_file, and the card's place: its BDMV folder's path (a loose file's folder; an
    upload's none)."""
    first = asset.sources[0] if asset.sources else None
    name = first.original_name if first else asset.title
    stem = PurePath(name).stem or "clip"
    path = PurePath(first.original_path) if first and first.original_path else None
    if path is None:
        return "upload", stem, ""
    parts = [p.upper() for p in path.parts]
    if "BDMV" in parts:
        i = len(parts) - 1 - parts[::-1].index("BDMV")
        bdmv = Path(*path.parts[:i + 1])
        return _card_name(bdmv), stem, str(bdmv)
    return path.parent.name or "files", stem, str(path.parent)


def _hash_code(text: str, length: int = 3) -> str:
    """`length` base-36 characters of a hash of the text as written (composed: NFC), the same
    for the same text on every export."""
    n = int.from_bytes(hashlib.sha1(unicodedata.normalize("NFC", text).encode()).digest()[:8], "big")
    out = ""
    for _ in range(length):
        n, r = divmod(n, 36)
        out += _BASE36[r]
    return out


def _reel_part(name: str, room: int) -> str:
    """A card's or a file's name in a reel's characters, at most `room` of them. A name holding
    others (Chinese: 采访 一) keeps the ASCII it has and gets 5 characters of a hash of the name:
    the rest of the name is gone from the reel, and two such names must stay two reels."""
    safe = _NOT_REEL.sub("_", name).strip("_")
    if name.isascii():
        return safe[:room]
    code = _hash_code(name, 5)
    return f"{safe[:room - 6].strip('_')}_{code}" if safe else code


def _name_part(name: str) -> str:
    """A card's or a file's name in a clip's name: its letters and digits in any script, as
    written; a hash code, as in the reel, for a name that loses other characters than ASCII ones."""
    kept = _NOT_NAME.sub("_", name).strip("_")
    lost = "".join(_NOT_NAME.findall(name))
    return f"{kept}_{_hash_code(name, 5)}".strip("_") if not lost.isascii() else kept


def reel_name(card: str, file: str, tag: str = "") -> str:
    """The full reel: `CARD_FILE` (`CARD_TAG_FILE` with a card's tag)."""
    if card.isascii() and file.isascii() and not tag:
        return _NOT_REEL.sub("_", f"{card}_{file}").strip("_")[:64] or "clip"
    card_part = _reel_part(card, 36)
    parts = [card_part[:36 - len(tag) - 1].strip("_") if tag else card_part, tag, _reel_part(file, 23)]
    return "_".join(p for p in parts if p)[:64] or "clip"


def clip_name(card: str, file: str, tag: str = "") -> str:
    """The clip's name where a format takes any letters: the full reel with the name's own letters
    (the reel itself for an ASCII name)."""
    if card.isascii() and file.isascii():
        return reel_name(card, file, tag)
    return "_".join(p for p in (_name_part(card), tag, _name_part(file)) if p) or "clip"


def _card_code(card: str) -> str:
    """The first 3 ASCII letters or digits of the card's name, upper case; "" when its name is not
    ASCII (of 卡 上海 第二天 nothing would be left, of 卡 A2 a code of 卡 B2's too)."""
    return _NOT_ALNUM.sub("", card).upper()[:3] if card.isascii() else ""


def _file_code(file: str) -> str:
    """The last 5 ASCII letters or digits of the stem (AVCHD's 00000-99999), upper case, or 5
    characters of a hash of a stem that is not ASCII or has none."""
    code = _NOT_ALNUM.sub("", file).upper()[-(EDL_REEL_LEN - 3):] if file.isascii() else ""
    return code or _hash_code(file, EDL_REEL_LEN - 3)


def edl_reels(infos: list[ClipInfo]) -> None:
    """Set each clip's 8-character EDL reel (card code, file code) and the notes on the cards whose
    code is a hash. Distinct full reels get distinct EDL reels."""
    cards = {(i.card, i.card_tag, i.place if i.card_tag else "") for i in infos}
    by_code: dict[str, set] = {}
    for card in cards:
        by_code.setdefault(card[1] or _card_code(card[0]), set()).add(card)
    card_code, notes = {}, {}
    for code, same in by_code.items():
        for card in sorted(same):
            name, tag, place = card
            if code and len(same) == 1 and not tag:
                card_code[card] = code
                continue
            card_code[card] = tag or _hash_code(name)
            notes[card] = f"REEL CODE {card_code[card]} IS CARD {name}" + (f" AT {place}" if place else "")
    taken: dict[str, str] = {}
    for i in sorted(infos, key=lambda i: (i.reel, i.asset.sha256)):
        card = (i.card, i.card_tag, i.place if i.card_tag else "")
        file_code = _file_code(i.file)
        reel, salt = (card_code[card] + file_code)[:EDL_REEL_LEN], 0
        # Two reels that share a code (CLIP_A_00001 and CLIP_B_00001, or two hashes): the later
        # one's file code is a hash of its reel instead.
        while taken.get(reel, i.reel) != i.reel:
            salt += 1
            reel = card_code[card] + _hash_code(f"{i.reel}#{salt}", EDL_REEL_LEN - 3)
        taken[reel] = i.reel
        i.edl_reel = reel
        i.notes = [notes[card]] if card in notes else []


def _tell_apart(infos: list[ClipInfo]) -> None:
    """Name and reel of each clip, distinct for distinct clips: cards of one name in several places
    (two SD cards both `NO NAME`; two phones' `100APPLE`) get a tag of their place; clips that still
    share a reel (one card mounted where another was, each with a 00000) 4 characters of their
    SHA-256."""
    places: dict[str, set[str]] = {}
    for i in infos:
        places.setdefault(i.card, set()).add(i.place)
    for i in infos:
        i.card_tag = _hash_code(i.place) if len(places[i.card]) > 1 else ""
        i.reel, i.name = reel_name(i.card, i.file, i.card_tag), clip_name(i.card, i.file, i.card_tag)
    by_reel: dict[str, list[ClipInfo]] = {}
    for i in infos:
        by_reel.setdefault(i.reel, []).append(i)
    for same in by_reel.values():
        if len(same) > 1:
            for i in same:
                code = _hash_code(i.asset.sha256, 4)
                i.reel, i.name = f"{i.reel[:59]}_{code}", f"{i.name}_{code}"


def _sort_key(info: ClipInfo):
    a = info.asset
    return (a.recorded_at is None, a.recorded_at or datetime.min, info.card, a.timecode or "", info.file, a.id)


def select(ids: list[str] | None = None, card: str | None = None) -> list[ClipInfo]:
    """The clips to export, in recording order: the named assets, or else every ready video with
    an edit proxy (of one card if `card` is given) but a part of a take ingested whole later,
    which the whole take holds already. A named asset that is not a video with a proxy is
    refused by name (nothing is written)."""
    if ids:
        assets = named_assets(ids)
        for a in assets:
            if a.kind != AssetKind.VIDEO:  # "no edit proxy yet" told the crew to wait for one that never comes
                raise ExportError(f"Asset {a.public_id} ({a.title}) is {a.kind.value}, not video: only video "
                                  "clips with an edit proxy go into a timeline.")
            if a.rendition(RenditionKind.PROXY) is None:
                raise ExportError(f"Asset {a.public_id} ({a.title}) has no edit proxy yet: only clips with a "
                                  "proxy go into a timeline.")
    else:
        assets = [a for a in db.session.scalars(sa.select(Asset).where(Asset.kind == AssetKind.VIDEO,
                                                                       Asset.state == AssetState.READY))
                  if a.rendition(RenditionKind.PROXY) is not None and a.superseded_by is None]
    infos = []
    for a in assets:
        c, f, place = _card_file_place(a)
        infos.append(ClipInfo(a, c, f, reel="", place=place))
    if card:
        infos = [i for i in infos if i.card == card]
        if not infos:
            raise NotFoundError(f"No clip with an edit proxy from card {card}.")
    if not infos:
        raise ExportError("No clip has an edit proxy yet: nothing to export.")
    _tell_apart(infos)
    edl_reels(infos)
    return sorted(infos, key=_sort_key)


def _ratio(text: object) -> float | None:
    try:
        num, _, den = str(text).partition("/")
        value = float(num) / float(den or 1)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return value if value > 0 else None


def proxy_rate(asset: Asset) -> float | None:
    """The frame rate of the clip's edit proxy, from what ffprobe said of the original.

    ffmpeg writes the proxy at a constant rate (MP4: one frame per frame period, a dropped frame
    repeated): the rate it takes for the source, which is not the average the asset records
    (`Asset.fps`, ffprobe's avg_frame_rate, by which the decode pass counts frames) when the
    frames are uneven. A 30 fps phone clip that dropped frames averages 29.4 and its proxy is 30
    fps; a variable-rate one averages 17.8 and its proxy is 30 fps. So: an average that is a
    timecode rate is the rate of a constant-rate source and of its proxy (interlaced 1080i25
    included: ffprobe's r_frame_rate is its field rate, 50, and the proxy is deinterlaced one frame
    per frame, 25); otherwise the source's base rate (r_frame_rate), as ffmpeg guesses it
    (av_guess_frame_rate): halved when it is an interlaced clip's field rate, the average when it
    is a time base (above 210 with an average below 70)."""
    avg = asset.fps
    if avg and any(abs(avg - r) < 0.005 for r in TIMECODE_RATES):
        return avg
    probe = asset.probe if isinstance(asset.probe, dict) else {}
    video = next((s for s in probe.get("streams") or [] if isinstance(s, dict) and s.get("codec_type") == "video"
                  and not (s.get("disposition") or {}).get("attached_pic")), None) or {}
    base = _ratio(video.get("r_frame_rate"))
    avg = avg or _ratio(video.get("avg_frame_rate"))
    if base is None:
        return avg
    if avg and avg < 70 and base > 210:
        return avg
    if asset.interlaced and avg and base > 1.5 * avg:
        return base / 2
    return base


def clip_rate(asset: Asset) -> float:
    """The clip's rate in a timeline: its edit proxy's rate (`proxy_rate`), as a rate timecode has.

    The timeline's media is the edit proxy: the editor's application reads it at its own rate, and
    a clip labelled at another one is cut and relinked with the wrong length and timecode (29.97
    for a 30 fps proxy drifts a frame every 33 s). A proxy rate no timecode has (a 15 fps webcam,
    120 fps slow motion) takes the nearest one: the clip keeps its length in seconds, and export
    says so. Never a rate `from_timecode` refuses: one such clip stopped every export."""
    fps = proxy_rate(asset) or 25.0
    return min(TIMECODE_RATES, key=lambda r: (abs(fps - r), r))


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def _proxy_url(asset: Asset, reel: str, ttl: int) -> str:
    r = asset.rendition(RenditionKind.PROXY)
    store = storage()
    url = store.presigned_get(r.storage_key, ttl, f"{reel}.mp4", r.content_type)
    if url is not None:
        return url
    path = store.local_file(r.storage_key)
    if path is None:
        raise ExportError(f"The proxy of {asset.public_id} is not in storage.")
    return Path(path).resolve().as_uri()


def build(infos: list[ClipInfo], *, name: str = "filmfund", url_ttl: int = URL_TTL_DEFAULT,
          warn: Callable[[str], None] = _warn, any_letters: bool = True):
    """The OTIO timeline: one video track, the clips end to end, each the whole take. A clip that
    cannot be placed (a timecode its rate cannot hold) is left out, named by `warn`, and taken out
    of `infos`, so that what the caller counts and audits is what was exported. `any_letters`:
    the clips are named with their names' own letters (`ClipInfo.name`), else by their reels."""
    timeline = otio.schema.Timeline(name=name)
    track = otio.schema.Track(name="V1", kind=otio.schema.TrackKind.Video)
    timeline.tracks.append(track)
    placed = []
    for info in infos:
        a = info.asset
        rate = clip_rate(a)
        proxy = a.rendition(RenditionKind.PROXY)
        seconds = a.duration or proxy.duration or 0
        frames = max(1, round(seconds * rate))
        tc = a.timecode or "00:00:00:00"
        try:
            start = from_timecode(tc, rate)
        except ValueError as exc:
            warn(f"{a.public_id} ({info.reel}) left out: its timecode {tc} cannot be placed at {rate:.3f} fps ({exc})")
            continue
        measured = proxy_rate(a)
        if measured and abs(measured - rate) > 0.005:
            warn(f"{a.public_id} ({info.reel}) runs at {measured:.3f} fps, a rate timecode does not have: "
                 f"placed at {rate:.3f} fps, its length in seconds kept")
        available = TimeRange(start, RationalTime(frames, rate))
        label = (info.name or info.reel) if any_letters else info.reel
        ref = otio.schema.ExternalReference(target_url=_proxy_url(a, info.reel, url_ttl), available_range=available)
        ref.name = label
        ref.metadata["fcp_xml"] = {"timecode": {"reel": {"name": info.reel}}}
        clip = otio.schema.Clip(name=label, media_reference=ref, source_range=available)
        clip.metadata["cmx_3600"] = {"reel": info.edl_reel}
        if info.notes:
            clip.metadata["cmx_3600"]["comments"] = list(info.notes)
        clip.metadata["filmfund"] = {
            "asset_id": a.public_id, "title": a.title, "reel": info.reel, "edl_reel": info.edl_reel,
            "card": info.card, "file": info.file, "timecode": a.timecode, "rate": rate,
            "recorded_at": a.recorded_at.isoformat() if a.recorded_at else None, "camera": a.camera,
            "sha256": a.sha256, "originals": [s.original_name for s in a.sources]}
        track.append(clip)
        placed.append(info)
    if not placed:
        raise ExportError("No clip could be placed on a timeline: "
                          + ", ".join(f"{i.asset.public_id} ({i.reel})" for i in infos) + ".")
    infos[:] = placed
    return timeline


def export(infos: list[ClipInfo], fmt: str, *, name: str = "filmfund", url_ttl: int = URL_TTL_DEFAULT,
           warn: Callable[[str], None] = _warn) -> str:
    """The timeline as text in one of FORMATS. An EDL has one rate: clips of other rates are refused.
    A clip that cannot be placed is left out of it and of `infos`, and named by `warn` (stderr)."""
    if fmt not in FORMATS:
        raise ExportError(f"Unknown format {fmt}; one of {', '.join(FORMATS)}.")
    if not 60 <= url_ttl <= URL_TTL_MAX:
        raise ExportError(f"Links can last from 60 s to {URL_TTL_MAX} s (7 days).")
    # CMX 3600 is ASCII: its clips are named by their reels (`* FROM CLIP NAME`).
    timeline = build(infos, name=name, url_ttl=url_ttl, warn=warn, any_letters=fmt != "edl")
    kwargs = {}
    if fmt == "edl":
        rates = {clip_rate(i.asset) for i in infos}
        if len(rates) > 1:
            raise ExportError("An EDL has one frame rate and these clips have several ("
                              + ", ".join(f"{r:.3f}" for r in sorted(rates)) + "): export them apart, "
                              "or as fcp7xml, fcpxml or otio.")
        kwargs = {"rate": rates.pop(), "reelname_len": EDL_REEL_LEN}
    return otio.adapters.write_to_string(timeline, FORMATS[fmt], **kwargs)
