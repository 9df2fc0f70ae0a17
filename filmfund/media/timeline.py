"""Timelines for an editor (`filmfund media export`): a card or a selection of clips, in recording
order, as an OpenTimelineIO timeline written by its adapters: FCP 7 XML (`fcp_xml`: Resolve,
Premiere), FCPXML (`fcpx_xml`: Final Cut), CMX 3600 EDL (`cmx_3600`) or OTIO JSON.

Each clip is the whole take: its media is the edit proxy (a `file://` URL on local storage, a
presigned URL on S3), its available and source range start at the camera's timecode at the
clip's rate, and it carries its reel, so that an editor can relink the cut to the originals by
reel and timecode.

Reels. The full reel is `CARD_FILE` (the card's folder name and the first file's stem, characters
other than letters, digits, `-` and `_` made `_`), e.g. `CARD_A_00001`: the clip's name in every
format, the FCP 7 `<timecode><reel><name>`, the FCPXML asset and clip name. A CMX 3600 reel has 8
characters, letters and digits only: the card's code (the first 3 letters or digits of its name,
upper case) then the file's code (the last 5 letters or digits of the stem: AVCHD numbers its files
00000-99999), e.g. `CAR00001`. When two cards of one export share a code, each of those cards'
codes is 3 base-36 characters of a hash of its name instead (the same card always gets the same
one), and the EDL says so in a comment. The full reel stays in every event (`* FROM CLIP NAME`).

opentimelineio is imported here only: the CLI imports this module inside its command.
"""
from __future__ import annotations

import hashlib
import re
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


def card_and_file(asset: Asset) -> tuple[str, str]:
    """The card (the folder above PRIVATE/AVCHD/BDMV or BDMV, else the file's folder) and the
    first file's stem, from where ingest found the original."""
    first = asset.sources[0] if asset.sources else None
    name = first.original_name if first else asset.title
    stem = PurePath(name).stem or "clip"
    path = PurePath(first.original_path) if first and first.original_path else None
    if path is None:
        return "upload", stem
    parts = [p.upper() for p in path.parts]
    if "BDMV" in parts:
        i = len(parts) - 1 - parts[::-1].index("BDMV")
        return _card_name(Path(*path.parts[:i + 1])), stem
    return path.parent.name or "files", stem


def reel_name(card: str, file: str) -> str:
    return _NOT_REEL.sub("_", f"{card}_{file}").strip("_")[:64] or "clip"


def _card_code(card: str) -> str:
    code = _NOT_ALNUM.sub("", card).upper()[:3]
    return code or "CRD"


def _hash_code(card: str) -> str:
    n = int.from_bytes(hashlib.sha1(card.encode()).digest()[:8], "big")
    digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    out = ""
    for _ in range(3):
        n, r = divmod(n, 36)
        out += digits[r]
    return out


def edl_reels(cards_files: list[tuple[str, str]]) -> tuple[dict[tuple[str, str], str], list[str]]:
    """The 8-character EDL reel of each (card, file), and notes on the cards whose code is a hash."""
    codes: dict[str, set[str]] = {}
    for card, _ in cards_files:
        codes.setdefault(_card_code(card), set()).add(card)
    card_code, notes = {}, []
    for code, cards in codes.items():
        for card in sorted(cards):
            if len(cards) > 1:
                card_code[card] = _hash_code(card)
                notes.append(f"REEL CODE {card_code[card]} IS CARD {card}")
            else:
                card_code[card] = code
    reels = {}
    for card, file in cards_files:
        file_code = _NOT_ALNUM.sub("", file).upper()[-(EDL_REEL_LEN - 3):] or "0"
        reels[(card, file)] = (card_code[card] + file_code)[:EDL_REEL_LEN]
    return reels, notes


def _sort_key(info: ClipInfo):
    a = info.asset
    return (a.recorded_at is None, a.recorded_at or datetime.min, info.card, a.timecode or "", info.file, a.id)


def select(ids: list[str] | None = None, card: str | None = None) -> list[ClipInfo]:
    """The clips to export, in recording order: the named assets, or else every ready video with
    an edit proxy (of one card if `card` is given). A named asset that is not a video with a
    proxy is refused by name (nothing is written)."""
    if ids:
        assets = named_assets(ids)
        for a in assets:
            if a.kind != AssetKind.VIDEO or a.rendition(RenditionKind.PROXY) is None:
                raise ExportError(f"Asset {a.public_id} ({a.title}) has no edit proxy yet: only clips with a "
                                  "proxy go into a timeline.")
    else:
        assets = [a for a in db.session.scalars(sa.select(Asset).where(Asset.kind == AssetKind.VIDEO,
                                                                       Asset.state == AssetState.READY))
                  if a.rendition(RenditionKind.PROXY) is not None]
    infos = []
    for a in assets:
        c, f = card_and_file(a)
        infos.append(ClipInfo(a, c, f, reel_name(c, f)))
    if card:
        infos = [i for i in infos if i.card == card]
        if not infos:
            raise NotFoundError(f"No clip with an edit proxy from card {card}.")
    if not infos:
        raise ExportError("No clip has an edit proxy yet: nothing to export.")
    reels, notes = edl_reels([(i.card, i.file) for i in infos])
    for i in infos:
        i.edl_reel = reels[(i.card, i.file)]
        i.notes = [n for n in notes if n.endswith(f"CARD {i.card}")]
    return sorted(infos, key=_sort_key)


def clip_rate(asset: Asset) -> float:
    fps = asset.fps or 25.0
    for exact in (24000 / 1001, 30000 / 1001, 60000 / 1001):
        if abs(fps - exact) < 0.005:
            return exact
    return float(round(fps, 3))


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


def build(infos: list[ClipInfo], *, name: str = "filmfund", url_ttl: int = URL_TTL_DEFAULT):
    """The OTIO timeline: one video track, the clips end to end, each the whole take."""
    timeline = otio.schema.Timeline(name=name)
    track = otio.schema.Track(name="V1", kind=otio.schema.TrackKind.Video)
    timeline.tracks.append(track)
    for info in infos:
        a = info.asset
        rate = clip_rate(a)
        proxy = a.rendition(RenditionKind.PROXY)
        seconds = a.duration or proxy.duration or 0
        frames = max(1, round(seconds * rate))
        tc = a.timecode or "00:00:00:00"
        start = from_timecode(tc, rate)
        available = TimeRange(start, RationalTime(frames, rate))
        ref = otio.schema.ExternalReference(target_url=_proxy_url(a, info.reel, url_ttl), available_range=available)
        ref.name = info.reel
        ref.metadata["fcp_xml"] = {"timecode": {"reel": {"name": info.reel}}}
        clip = otio.schema.Clip(name=info.reel, media_reference=ref, source_range=available)
        clip.metadata["cmx_3600"] = {"reel": info.edl_reel}
        if info.notes:
            clip.metadata["cmx_3600"]["comments"] = list(info.notes)
        clip.metadata["filmfund"] = {
            "asset_id": a.public_id, "title": a.title, "reel": info.reel, "edl_reel": info.edl_reel,
            "card": info.card, "file": info.file, "timecode": a.timecode, "rate": rate,
            "recorded_at": a.recorded_at.isoformat() if a.recorded_at else None, "camera": a.camera,
            "sha256": a.sha256, "originals": [s.original_name for s in a.sources]}
        track.append(clip)
    return timeline


def export(infos: list[ClipInfo], fmt: str, *, name: str = "filmfund", url_ttl: int = URL_TTL_DEFAULT) -> str:
    """The timeline as text in one of FORMATS. An EDL has one rate: clips of other rates are refused."""
    if fmt not in FORMATS:
        raise ExportError(f"Unknown format {fmt}; one of {', '.join(FORMATS)}.")
    if not 60 <= url_ttl <= URL_TTL_MAX:
        raise ExportError(f"Links can last from 60 s to {URL_TTL_MAX} s (7 days).")
    timeline = build(infos, name=name, url_ttl=url_ttl)
    kwargs = {}
    if fmt == "edl":
        rates = {clip_rate(i.asset) for i in infos}
        if len(rates) > 1:
            raise ExportError("An EDL has one frame rate and these clips have several ("
                              + ", ".join(f"{r:.3f}" for r in sorted(rates)) + "): export them apart, "
                              "or as fcp7xml, fcpxml or otio.")
        kwargs = {"rate": rates.pop(), "reelname_len": EDL_REEL_LEN}
    return otio.adapters.write_to_string(timeline, FORMATS[fmt], **kwargs)
