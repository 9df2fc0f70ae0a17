"""Streaming for donors (issue 15 item 2): the HLS package of a published video and the signed,
expiring playlists the app serves for it.

- Made once, by the transcode job that makes the donors' web rendition (renditions._transcode):
  one ffmpeg run encodes an adaptive ladder for phones (profiles.toml `[hls]`: 240p to 720p,
  capped by the source, low bitrates) into 4 s MPEG-TS segments; each segment is a stored object
  (local folder or S3, by content key) and the playlists' texts are kept on the Stream row. A
  failed package is marked failed (broken) with its reason and a notice on the asset; the clip
  itself stays ready, and a retry makes the package again.
- Served through the app only (never a link to another host, so the page needs no CORS and
  loads nothing from elsewhere). `stream_url` (GET /api/v1/library) is `/stream/<link>/master.m3u8`,
  signed for this donor and this asset and expiring as a download link does (MEDIA_LINK_TTL).
  The master it returns names its variants by a second token, the viewing's, that lasts as long
  as a viewing can (the clip's duration, three times over, and ten minutes); each variant
  playlist names its segments under that token. Every playlist and segment request checks the
  token and then asks again whether the donor may watch now (holdings: a refund that ends the
  reward ends the stream at the next request; the screening window: screening.py).
- The public trailer streams from `/public/<asset>/hls/...`: plain URLs, cacheable a minute
  (like the trailer's MP4), each request checking that the asset is still public.
"""
from __future__ import annotations

import re
import shutil
import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from flask import current_app
from flask_babel import gettext as _
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from filmfund.auth.models import User
from filmfund.auth.services import external_url
from filmfund.db import utcnow
from filmfund.errors import ForbiddenError, NotFoundError
from filmfund.extensions import db
from filmfund.media import ffmpeg, screening
from filmfund.media.common import _problem, _timeout, drop_unreferenced, profiles, storage, work_dir
from filmfund.media.storage import key_sha256
from filmfund.media.models import Asset, AssetKind, AssetState, Stream
from filmfund.media.published import plays_clip
from filmfund.rewards import holdings
from filmfund.rewards.campaign import current_campaign

SEGMENT_RE = re.compile(r"^v\d{1,2}_\d{4,6}\.ts$")
PLAYLIST_RE = re.compile(r"^v\d{1,2}\.m3u8$")
PLAYLIST_TYPE = "application/vnd.apple.mpegurl"
SEGMENT_TYPE = "video/mp2t"


# --- packaging (a step of the transcode job) ----------------------------------------------------

def wants_stream(asset: Asset) -> bool:
    """A video published as the clip (to a reward or to everyone) streams; one published only as
    its poster does not (published.plays_clip)."""

    return asset.kind == AssetKind.VIDEO and any(plays_clip(asset, p) for p in asset.publications)


def stream_of(asset_id: int) -> Stream | None:
    return db.session.scalar(sa.select(Stream).where(Stream.asset_id == asset_id))


def needs_package(asset: Asset) -> bool:
    if not wants_stream(asset):
        return False
    row = stream_of(asset.id)
    return row is None or row.state != "ready" or row.profile != profiles().get("hls")


def mark_pending(asset: Asset) -> None:
    row = stream_of(asset.id)
    if row is None:
        row = Stream(asset_id=asset.id, state="pending", attempts=0, size=0)
        db.session.add(row)
    elif row.state != "ready":
        row.state, row.error = "pending", None


def package(job, asset: Asset, spec: str, info: ffmpeg.MediaInfo, beat=None) -> Stream:
    """Make the HLS package of a published video (the caller, the transcode job, commits). Any
    failure leaves the Stream `failed` with its reason, never `running`, and removes the segments
    this attempt stored that nothing refers to. What ffmpeg or the package's read-back refused is
    raised as an FfmpegError (best effort: the clip stays ready, a retry makes it again); the
    storage failing while segments are stored (StorageUnavailable, botocore's errors) is raised as
    it is, so that the job is tried again later, as for any step that stores."""
    profile = profiles()["hls"]
    row = stream_of(asset.id)
    if row is None:
        row = Stream(asset_id=asset.id, attempts=0, size=0)
        db.session.add(row)
    row.state, row.error, row.attempts = "running", None, (row.attempts or 0) + 1
    db.session.commit()
    out = work_dir() / f"job-{job.id}-hls"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    started = time.monotonic()
    stored_now: list[str] = []  # segments this attempt created in storage
    try:
        argv, ladder = ffmpeg.hls_argv(spec, str(out), info, profile, title=asset.title)
        duration = asset.duration or info.duration

        def on_progress(p: dict[str, str]) -> None:
            us = ffmpeg._float(p.get("out_time_us"))
            if beat is not None and us and duration:
                beat.step = "hls"
                beat.progress = min(1.0, us / 1e6 / duration)

        ffmpeg.run(argv, timeout=_timeout(duration), on_progress=on_progress, timeout_is_permanent=not duration)
        index = _read_package(out, ladder)
        # Re-probe one segment of each variant before anything is stored: an output that does not
        # read back is not an output.
        for name in index["playlists"]:
            first = next(s for s in index["segments"] if s.startswith(name[:-5] + "_"))
            ffmpeg.summarize(ffmpeg.probe(str(out / first)))
        total = 0
        for name, seg in index["segments"].items():
            stored = storage().put_file(out / name, ".ts")
            if stored.created:
                stored_now.append(stored.key)
            seg.update(key=stored.key, size=stored.size, sha256=stored.sha256)  # fixity re-hashes it
            total += stored.size
    except Exception as exc:  # ffmpeg, the package read back, or the storage (S3's own errors too)
        db.session.rollback()
        row = stream_of(asset.id)
        row.state, row.error = "failed", (str(exc) or type(exc).__name__)[:4000]
        db.session.commit()
        drop_unreferenced(stored_now)  # the failed attempt's segments: no stream names them
        if isinstance(exc, (ffmpeg.FfmpegError, StopIteration, OSError, ValueError)):
            raise ffmpeg.FfmpegError(f"streaming package: {exc}", stderr_tail=getattr(exc, "stderr_tail", "")) from None
        raise  # the storage failed (S3 away a moment): the job is tried again later, as any step is
    finally:
        shutil.rmtree(out, ignore_errors=True)
    row = stream_of(asset.id)
    old = dict((row.index or {}).get("segments") or {})
    row.index, row.profile, row.size, row.state = index, profile, total, "ready"
    row.seconds = round(time.monotonic() - started, 2)
    db.session.commit()
    # The previous package's segments that this one does not reuse (nor another stream, nor any
    # other row: common.keys_in_use).
    drop_unreferenced(seg.get("key") for seg in old.values())
    return row


def _read_package(out, ladder: list[dict[str, Any]]) -> dict[str, Any]:
    master = (out / "master.m3u8").read_text()
    playlists, segments, variants = {}, {}, []
    for i, rung in enumerate(ladder):
        name = f"v{i}.m3u8"
        text = (out / name).read_text()
        playlists[name] = text
        for line in text.splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                if not SEGMENT_RE.match(line):
                    raise ValueError(f"unexpected segment name {line!r}")
                segments[line] = {"variant": i}
        variants.append({"name": name, "height": int(rung["height"]), "bitrate": rung["bitrate"]})
    for line in master.splitlines():
        if line and not line.startswith("#") and line.strip() not in playlists:
            raise ValueError(f"the master names an unknown playlist {line!r}")
    if not segments:
        raise ValueError("the package has no segments")
    return {"master": master, "playlists": playlists, "segments": segments, "variants": variants}


def segment_sha256(seg: dict[str, Any]) -> str | None:
    """The SHA-256 a stored segment had when packaged (fixity re-hashes it): recorded in the
    index, or for a package made before it was, the one its content key names (storage keys are
    content-addressed: storage.content_key)."""
    return seg.get("sha256") or key_sha256(seg.get("key"))


def stream_dict(asset: Asset) -> dict[str, Any] | None:
    """What the producer's asset page and API say of the stream."""
    row = stream_of(asset.id)
    if row is None:
        return None
    index = row.index or {}
    return {"state": row.state, "error": row.error, "size": row.size, "seconds": row.seconds,
            "variants": [f"{v['height']}p" for v in index.get("variants", [])],
            "segments": len(index.get("segments", {}))}


# --- tokens ---------------------------------------------------------------------------------------

def _link_serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="filmfund.media.stream-link")


def _play_serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="filmfund.media.stream-play")


def link_token(user, asset: Asset) -> str:
    return _link_serializer().dumps({"u": user.public_id, "a": asset.public_id})


def play_token(user, asset: Asset) -> str:
    return _play_serializer().dumps({"u": user.public_id, "a": asset.public_id})


def play_ttl(asset: Asset) -> int:
    """How long a viewing's token works: a viewing of the whole clip with pauses."""
    return int(min(12 * 3600, max(_link_ttl(), 3 * (asset.duration or 0) + 600)))


def _link_ttl() -> int:
    return min(int(current_app.config["MEDIA_LINK_TTL"]), 300)  # as library.link_ttl


@dataclass
class Access:
    user: Any
    asset: Asset
    stream: Stream
    screening: bool   # an early-access screening: marked per donor, logged as such
    producer: bool


def _refuse_token(exc: Exception) -> None:
    if isinstance(exc, SignatureExpired):
        raise ForbiddenError(_("This stream link has expired; open your library for a new one."),
                             code="link_expired") from None
    raise ForbiddenError(_("This stream link is not valid."), code="link_invalid") from None


def resolve(token: str, *, play: bool, session_user=None) -> Access:
    """The donor and asset a stream token names, if genuine and unexpired, checked again now:
    the donor still holds a reward the asset is published to (and, for the early-access reward,
    the screening is open). Every refusal is a ForbiddenError; nothing says whether it exists."""
    serializer = _play_serializer() if play else _link_serializer()
    try:
        data, _signed_at = serializer.loads(token, return_timestamp=True)
    except BadSignature as exc:
        _refuse_token(exc)
    user = db.session.scalar(sa.select(User).where(User.public_id == data.get("u")))
    asset = db.session.scalar(sa.select(Asset).where(Asset.public_id == data.get("a")))
    if user is None or asset is None or screening.erased(user):  # an erased donor's link: not valid
        raise ForbiddenError(_("This stream link is not valid."), code="link_invalid")
    max_age = play_ttl(asset) if play else _link_ttl()
    try:
        serializer.loads(token, max_age=max_age)
    except BadSignature as exc:
        _refuse_token(exc)
    if session_user is not None and getattr(session_user, "is_authenticated", False) and session_user.id != user.id:
        raise ForbiddenError(_("This stream link was made for another account."), code="link_other_user")
    return check(user, asset)


def check(user, asset: Asset) -> Access:
    """May this user stream this asset now? (Access, or ForbiddenError.)"""
    row = stream_of(asset.id)
    if asset.state != AssetState.READY or asset.fixity_ok is False or row is None or row.state != "ready":
        raise ForbiddenError(_("This stream is not available now."), code="not_available")
    if user.has_role("producer"):
        return Access(user, asset, row, False, True)
    watch = watching(user, asset)
    if watch is None:
        raise ForbiddenError(_("This stream is no longer available to this account."), code="not_entitled")
    return Access(user, asset, row, watch, False)


def watching(user, asset: Asset) -> bool | None:
    """May this donor watch this clip now, and how: False as a clip of a reward they hold, True as
    the early-access screening (its window open), None not at all. Only a publication that gives
    the clip counts (published.plays_clip: one of its poster only does not). What the stream and
    the player's captions ask; whether it is packaged is the caller's question."""

    if asset.state != AssetState.READY or asset.fixity_ok is False:
        return None
    keys = _held_keys(user)
    window = screening.window()
    screening_open = None
    for pub in asset.publications:
        if pub.reward_key not in keys or not plays_clip(asset, pub):
            continue
        if window is not None and pub.reward_key == window.reward:
            if window.is_open():
                screening_open = True
            continue
        return False
    return screening_open


def _held_keys(user) -> set[str]:
    """The rewards of the current campaign this user holds now (filmfund.rewards.holdings)."""
    return holdings.held_keys(user.id, current_campaign().id)


def stream_url(user, asset: Asset) -> str | None:
    """The signed, expiring master playlist URL for a donor's library item (None: no package)."""
    row = stream_of(asset.id)
    if row is None or row.state != "ready":
        return None
    return external_url("library.stream_master", token=link_token(user, asset))


# --- playlists ------------------------------------------------------------------------------------

def master_for(access: Access, prefix: str) -> str:
    """The master playlist with each variant's URI under `prefix` (a path ending in /)."""
    return _rewrite(access.stream.index["master"], lambda uri: prefix + uri)


def variant_for(stream: Stream, name: str, segment_prefix: str = "s/") -> str:
    if not PLAYLIST_RE.match(name) or name not in stream.index["playlists"]:
        raise NotFoundError(_("No such playlist."))
    return _rewrite(stream.index["playlists"][name], lambda uri: segment_prefix + uri)


def _rewrite(text: str, fn) -> str:
    out = []
    for line in text.splitlines():
        stripped = line.strip()
        out.append(fn(stripped) if stripped and not stripped.startswith("#") else line)
    return "\n".join(out) + "\n"


def segment(stream: Stream, name: str) -> dict[str, Any]:
    seg = stream.index["segments"].get(name) if SEGMENT_RE.match(name) else None
    if seg is None or not seg.get("key"):
        raise NotFoundError(_("No such segment."))
    return seg


# --- the public trailer -------------------------------------------------------------------------

def public_stream(asset_public_id: str) -> Stream:
    """The stream of an asset whose public copy the caller found (views: public.public_file,
    which answers 404 unless the asset is public, ready and not in alert); 404 without one."""
    asset = db.session.scalar(sa.select(Asset).where(Asset.public_id == asset_public_id))
    row = stream_of(asset.id) if asset is not None else None
    if row is None or row.state != "ready":
        raise NotFoundError(_("No such file."))
    return row


def public_stream_ready(asset_public_id: str) -> bool:
    row = db.session.scalar(sa.select(Stream.state).join(Asset, Asset.id == Stream.asset_id)
                            .where(Asset.public_id == asset_public_id))
    return row == "ready"


def failure_problem(exc: Exception) -> dict[str, Any]:
    return _problem("hls_failed", f"The streaming package could not be made (the clip itself is fine): {exc}",
                    detail=getattr(exc, "stderr_tail", "")[-1000:] or None,
                    hint="Retry it from this page or with `filmfund media retry`.") | {"severity": "info"}


def now():
    return utcnow()
