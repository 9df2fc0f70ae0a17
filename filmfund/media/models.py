"""Footage records: assets (one per clip, a spanned take counting as one), their ordered
source files, renditions, jobs (the durable state of queue work) and each asset's history."""
from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from filmfund.db import new_id, str_enum, utcnow


def _named_enum(enum_cls: type[enum.Enum], length: int, name: str) -> sa.Enum:
    """str_enum with its own CHECK name, for a table with two columns of the same enum."""
    return sa.Enum(enum_cls, native_enum=False, length=length, values_callable=lambda e: [m.value for m in e],
                   validate_strings=True, create_constraint=True, name=name)
from filmfund.errors import IllegalTransition
from filmfund.extensions import db


class AssetState(enum.StrEnum):
    UPLOADED = "uploaded"
    VERIFYING = "verifying"
    VERIFIED = "verified"
    DAMAGED = "damaged"
    TRANSCODING = "transcoding"
    READY = "ready"
    FAILED = "failed"


# The only moves an asset can make. A verify may be re-run from any settled state (fixity
# re-check, or a producer retrying after a fix); a crash mid-step puts it back where it was.
ASSET_MOVES: dict[AssetState, set[AssetState]] = {
    AssetState.UPLOADED: {AssetState.VERIFYING},
    AssetState.VERIFYING: {AssetState.VERIFIED, AssetState.DAMAGED, AssetState.FAILED, AssetState.UPLOADED},
    AssetState.VERIFIED: {AssetState.TRANSCODING, AssetState.VERIFYING},
    AssetState.DAMAGED: {AssetState.VERIFYING},
    AssetState.TRANSCODING: {AssetState.READY, AssetState.FAILED, AssetState.VERIFIED},
    AssetState.READY: {AssetState.VERIFYING, AssetState.TRANSCODING},
    AssetState.FAILED: {AssetState.VERIFYING, AssetState.TRANSCODING},
}


class AssetKind(enum.StrEnum):
    VIDEO = "video"
    IMAGE = "image"
    AUDIO = "audio"


class RenditionKind(enum.StrEnum):
    PROXY = "proxy"        # 540p H.264 + AAC for editing
    WEB = "web"            # 720p faststart MP4 for donors
    POSTER = "poster"      # one JPEG frame
    STRIP = "strip"        # tiled thumbnails
    RESCUE = "rescue"      # what could be saved of a damaged clip
    IMAGE = "image"        # a resized still (image assets)


class RenditionState(enum.StrEnum):
    PENDING = "pending"    # wanted, not made yet (or queued again by a retry)
    RUNNING = "running"
    READY = "ready"
    FAILED = "failed"      # the last attempt failed; `error` says why; a retry queues it again


class JobKind(enum.StrEnum):
    VERIFY = "verify"
    TRANSCODE = "transcode"


class JobStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class Asset(db.Model):
    __tablename__ = "media_assets"

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(sa.String(32), unique=True, default=new_id)
    title: Mapped[str] = mapped_column(sa.String(300))
    # The title in the site's other languages, as the producers wrote it ({"zh-Hans": {"title": ...}}):
    # what donors and visitors reading that language see (publishing.shown_title).
    translations: Mapped[dict] = mapped_column(sa.JSON, default=dict, server_default="{}")
    notes: Mapped[str] = mapped_column(sa.Text, default="")
    kind: Mapped[AssetKind] = mapped_column(str_enum(AssetKind, 16), default=AssetKind.VIDEO)
    state: Mapped[AssetState] = mapped_column(str_enum(AssetState, 16), default=AssetState.UPLOADED, index=True)
    # SHA-256 of the asset's bytes as one stream (the sources joined in order).
    sha256: Mapped[str] = mapped_column(sa.String(64), unique=True)
    size: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    duration: Mapped[float | None]
    recorded_at: Mapped[datetime | None] = mapped_column(index=True)
    camera: Mapped[str | None] = mapped_column(sa.String(200), index=True)
    timecode: Mapped[str | None] = mapped_column(sa.String(16))  # the camera's start timecode, HH:MM:SS:FF
    width: Mapped[int | None]
    height: Mapped[int | None]
    fps: Mapped[float | None]
    interlaced: Mapped[bool] = mapped_column(default=False)
    probe: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    problems: Mapped[list[dict[str, Any]]] = mapped_column(sa.JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    state_changed_at: Mapped[datetime] = mapped_column(default=utcnow)
    verified_at: Mapped[datetime | None]
    ready_at: Mapped[datetime | None]
    last_fixity_at: Mapped[datetime | None]
    fixity_ok: Mapped[bool | None]

    sources: Mapped[list[Source]] = relationship(back_populates="asset", order_by="Source.position",
                                                 cascade="all, delete-orphan", lazy="selectin")
    renditions: Mapped[list[Rendition]] = relationship(back_populates="asset", cascade="all, delete-orphan",
                                                       lazy="selectin")
    publications: Mapped[list[Publication]] = relationship(back_populates="asset", cascade="all, delete-orphan",
                                                           lazy="selectin")
    sidecars: Mapped[list[Sidecar]] = relationship(back_populates="asset", cascade="all, delete-orphan",
                                                   order_by="Sidecar.id", lazy="selectin")
    captions: Mapped[list[Caption]] = relationship(back_populates="asset", cascade="all, delete-orphan",
                                                   order_by="Caption.lang", lazy="selectin")
    rendition_states: Mapped[list[RenditionStatus]] = relationship(back_populates="asset", cascade="all, delete-orphan",
                                                                   order_by="RenditionStatus.kind", lazy="selectin")

    @property
    def camera_zone(self) -> str | None:
        """The UTC offset the camera recorded with its date ("+05:30"), kept with the probe data
        at ingest; None when the camera did not know its zone (or the file says nothing)."""
        zone = (self.probe or {}).get("camera_zone") if isinstance(self.probe, dict) else None
        return zone if isinstance(zone, str) and len(zone) == 6 and zone[0] in "+-" else None

    def can_move(self, to: AssetState) -> bool:
        return to in ASSET_MOVES[self.state]

    def move(self, to: AssetState, note: str = "") -> None:
        """Change state, refusing moves the state machine does not have, and keep the history."""
        to = AssetState(to)
        if not self.can_move(to):
            raise IllegalTransition(f"An asset cannot go from {self.state.value} to {to.value}.")
        now = utcnow()
        db.session.add(AssetEvent(asset=self, from_state=self.state, to_state=to, note=note[:1000], at=now))
        self.state = to
        self.state_changed_at = now
        if to == AssetState.VERIFIED:
            self.verified_at = now
        if to == AssetState.READY:
            self.ready_at = now

    def rendition(self, kind: RenditionKind | str) -> Rendition | None:
        return next((r for r in self.renditions if r.kind == RenditionKind(kind)), None)

    def rendition_state(self, kind: RenditionKind | str) -> RenditionStatus | None:
        return next((s for s in self.rendition_states if s.kind == RenditionKind(kind)), None)

    SUPERSEDED = "superseded"  # the problem's code on a part of a take ingested whole later

    @property
    def superseded_by(self) -> str | None:
        """The public id of the whole take this asset is a part of (ingest._supersede_parts), or
        None: the whole take is the asset to edit with and to count."""
        return next((p.get("by") for p in self.problems or [] if p.get("code") == self.SUPERSEDED), None)


class Source(db.Model):
    """One original file; a spanned take has several, in recording order."""

    __tablename__ = "media_sources"
    __table_args__ = (sa.UniqueConstraint("asset_id", "position", name="uq_media_sources_asset_position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    asset_id: Mapped[int] = mapped_column(sa.ForeignKey("media_assets.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(default=0)
    original_name: Mapped[str] = mapped_column(sa.String(500))
    original_path: Mapped[str | None] = mapped_column(sa.String(2000))
    sha256: Mapped[str] = mapped_column(sa.String(64), index=True)
    size: Mapped[int] = mapped_column(sa.BigInteger)
    storage_key: Mapped[str] = mapped_column(sa.String(300))
    start_time: Mapped[float | None]
    duration: Mapped[float | None]
    # Bytes the card's clip info (CPI/CLPI) says this file has: a shorter copy lost its end.
    expected_size: Mapped[int | None] = mapped_column(sa.BigInteger)
    probe: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_fixity_at: Mapped[datetime | None]
    fixity_ok: Mapped[bool | None]

    asset: Mapped[Asset] = relationship(back_populates="sources")


class Sidecar(db.Model):
    """A card structure file kept with the asset (playlist MPL/MPLS, clip info CPI/CLPI, INDEX.BDM,
    MOVIEOBJ.BDM): what an editor or a later rescue needs to rebuild the card's takes."""

    __tablename__ = "media_sidecars"
    __table_args__ = (sa.UniqueConstraint("asset_id", "name", name="uq_media_sidecars_asset_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    asset_id: Mapped[int] = mapped_column(sa.ForeignKey("media_assets.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(sa.String(500))   # path inside the card, e.g. BDMV/CLIPINF/00001.CPI
    sha256: Mapped[str] = mapped_column(sa.String(64))
    size: Mapped[int] = mapped_column(sa.BigInteger)
    storage_key: Mapped[str] = mapped_column(sa.String(300))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    asset: Mapped[Asset] = relationship(back_populates="sidecars")


class Rendition(db.Model):
    """A derived file. One per (asset, kind): a re-run replaces the row only after the new
    output is stored and re-probed, so there is never more than one of a kind."""

    __tablename__ = "media_renditions"
    __table_args__ = (sa.UniqueConstraint("asset_id", "kind", name="uq_media_renditions_asset_kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    asset_id: Mapped[int] = mapped_column(sa.ForeignKey("media_assets.id", ondelete="CASCADE"), index=True)
    kind: Mapped[RenditionKind] = mapped_column(str_enum(RenditionKind, 16))
    storage_key: Mapped[str] = mapped_column(sa.String(300))
    sha256: Mapped[str] = mapped_column(sa.String(64))
    size: Mapped[int] = mapped_column(sa.BigInteger)
    content_type: Mapped[str] = mapped_column(sa.String(100))
    width: Mapped[int | None]
    height: Mapped[int | None]
    duration: Mapped[float | None]
    profile: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    asset: Mapped[Asset] = relationship(back_populates="renditions")


class RenditionStatus(db.Model):
    """The state of making one rendition of an asset, apart from the asset's own state: a poster
    that failed is a notice with a retry, not a failed asset."""

    __tablename__ = "media_rendition_status"
    __table_args__ = (sa.UniqueConstraint("asset_id", "kind", name="uq_media_rendition_status_asset_kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    asset_id: Mapped[int] = mapped_column(sa.ForeignKey("media_assets.id", ondelete="CASCADE"), index=True)
    kind: Mapped[RenditionKind] = mapped_column(str_enum(RenditionKind, 16))
    state: Mapped[RenditionState] = mapped_column(str_enum(RenditionState, 16), default=RenditionState.PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    error: Mapped[str | None] = mapped_column(sa.Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    asset: Mapped[Asset] = relationship(back_populates="rendition_states")


class Job(db.Model):
    """The durable state of one piece of queue work; the queue message only carries its id."""

    __tablename__ = "media_jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    asset_id: Mapped[int] = mapped_column(sa.ForeignKey("media_assets.id", ondelete="CASCADE"), index=True)
    kind: Mapped[JobKind] = mapped_column(str_enum(JobKind, 16))
    status: Mapped[JobStatus] = mapped_column(str_enum(JobStatus, 16), default=JobStatus.QUEUED, index=True)
    attempts: Mapped[int] = mapped_column(default=0)
    max_attempts: Mapped[int] = mapped_column(default=3)
    next_run_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    heartbeat_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    worker: Mapped[str | None] = mapped_column(sa.String(200))   # host:pid of the worker running it
    progress: Mapped[float] = mapped_column(default=0.0)          # 0..1
    step: Mapped[str | None] = mapped_column(sa.String(100))      # e.g. "proxy 2/4"
    argv: Mapped[str | None] = mapped_column(sa.Text)
    stderr_tail: Mapped[str | None] = mapped_column(sa.Text)
    error: Mapped[str | None] = mapped_column(sa.Text)
    ffmpeg_version: Mapped[str | None] = mapped_column(sa.String(200))

    asset: Mapped[Asset] = relationship()


class AssetEvent(db.Model):
    """History: every state change of an asset, with when and why."""

    __tablename__ = "media_asset_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    asset_id: Mapped[int] = mapped_column(sa.ForeignKey("media_assets.id", ondelete="CASCADE"), index=True)
    from_state: Mapped[AssetState | None] = mapped_column(_named_enum(AssetState, 16, "from_state"))
    to_state: Mapped[AssetState] = mapped_column(_named_enum(AssetState, 16, "to_state"))
    note: Mapped[str] = mapped_column(sa.String(1000), default="")
    at: Mapped[datetime] = mapped_column(default=utcnow)

    asset: Mapped[Asset] = relationship()


class Publication(db.Model):
    """An asset (or one rendition of it) made donor-only content of a reward, by reward key."""

    __tablename__ = "media_publications"
    __table_args__ = (sa.UniqueConstraint("asset_id", "reward_key", name="uq_media_publications_asset_reward_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    asset_id: Mapped[int] = mapped_column(sa.ForeignKey("media_assets.id", ondelete="CASCADE"), index=True)
    reward_key: Mapped[str] = mapped_column(sa.String(64), index=True)
    rendition: Mapped[RenditionKind | None] = mapped_column(str_enum(RenditionKind, 16))
    published_at: Mapped[datetime] = mapped_column(default=utcnow)
    published_by: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))

    asset: Mapped[Asset] = relationship(back_populates="publications")


class CaptionStatus(enum.StrEnum):
    """As a question's translation: a language without a row is missing; a draft is the producers'
    only; a final text is what donors' players and downloads offer."""
    DRAFT = "draft"
    FINAL = "final"


class Caption(db.Model):
    """An asset's captions in one language (a BCP 47 tag), kept as sanitised WebVTT: captions are
    small, and a save is one transaction with its history and audit entry."""

    __tablename__ = "media_captions"
    __table_args__ = (sa.UniqueConstraint("asset_id", "lang", name="uq_media_captions_asset_lang"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    asset_id: Mapped[int] = mapped_column(sa.ForeignKey("media_assets.id", ondelete="CASCADE"), index=True)
    lang: Mapped[str] = mapped_column(sa.String(35))
    status: Mapped[CaptionStatus] = mapped_column(str_enum(CaptionStatus, 16), default=CaptionStatus.FINAL)
    vtt: Mapped[str] = mapped_column(sa.Text)
    cues: Mapped[int] = mapped_column(default=0)
    source_format: Mapped[str] = mapped_column(sa.String(8), default="vtt")   # what was uploaded: vtt or srt
    translated_from: Mapped[str | None] = mapped_column(sa.String(35))       # BCP 47 tag, None: the original words
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    updated_by: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    # A donor copy with these captions drawn into the picture (filmfund.media.burnin): none,
    # queued, running, ready or failed; a new text makes the old copy stale (dropped).
    burn_state: Mapped[str] = mapped_column(sa.String(16), default="none", server_default="none")
    burn_error: Mapped[str | None] = mapped_column(sa.Text)
    # While a burn runs: its worker (`host:pid`) and heartbeat (media/jobs.burn_beat), so that a
    # burn whose worker died is told from a live one by the footage jobs' rule (jobs.worker_stopped).
    burn_worker: Mapped[str | None] = mapped_column(sa.String(200))
    burn_beat_at: Mapped[datetime | None]
    burned_key: Mapped[str | None] = mapped_column(sa.String(300))
    burned_sha256: Mapped[str | None] = mapped_column(sa.String(64))
    burned_size: Mapped[int | None] = mapped_column(sa.BigInteger)
    burned_at: Mapped[datetime | None]

    asset: Mapped[Asset] = relationship(back_populates="captions")


class Stream(db.Model):
    """The HLS package of a published video (streaming.py): an adaptive ladder of variants made
    once by the transcode job. The playlists' texts are kept here (the app rewrites every URI
    in them to a signed one when it serves them); the segments are stored objects, by content
    key. `state` is pending, running, ready or failed (broken: `error` says why; a retry makes it
    again)."""

    __tablename__ = "media_streams"

    id: Mapped[int] = mapped_column(primary_key=True)
    asset_id: Mapped[int] = mapped_column(sa.ForeignKey("media_assets.id", ondelete="CASCADE"), unique=True)
    state: Mapped[str] = mapped_column(sa.String(16), default="pending")
    error: Mapped[str | None] = mapped_column(sa.Text)
    attempts: Mapped[int] = mapped_column(default=0)
    # {"master": text, "playlists": {"v0.m3u8": text}, "segments": {"v0_000.ts": {"key", "size"}},
    #  "variants": [{"name", "height", "bandwidth"}]}
    index: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    profile: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    size: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    seconds: Mapped[float | None]  # how long packaging took (bench and the asset page)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    asset: Mapped[Asset] = relationship()


class Viewing(db.Model):
    """One playlist fetched by a donor (library or screening). The address is personal data:
    only a keyed hash of it is kept (enough to count distinct addresses), and rows older than
    SCREENING_LOG_DAYS are purged."""

    __tablename__ = "media_viewings"
    __table_args__ = (sa.Index("ix_media_viewings_user_at", "user_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    asset_id: Mapped[int] = mapped_column(sa.ForeignKey("media_assets.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    address: Mapped[str] = mapped_column(sa.String(32))  # HMAC of the address, never the address
    screening: Mapped[bool] = mapped_column(default=False)


class ViewingFlag(db.Model):
    """A donor whose stream was fetched from more distinct addresses than allowed within the
    window (streaming.FLAG_ADDRESSES in FLAG_WINDOW): shown to the producer, kept after the
    viewings themselves are purged."""

    __tablename__ = "media_viewing_flags"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    asset_id: Mapped[int] = mapped_column(sa.ForeignKey("media_assets.id", ondelete="CASCADE"))
    first_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    addresses: Mapped[int] = mapped_column(default=0)
