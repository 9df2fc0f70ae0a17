"""Renditions: the proxy, web, poster, strip and image outputs of an asset, each re-probed before it
is stored and switched in under its content key."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa

from filmfund.db import utcnow
from filmfund.extensions import db
from filmfund.media import ffmpeg
from filmfund.media.common import (CONTENT_TYPES, EXTENSIONS, OPTIONAL, REQUIRED, _iso, _local_sources, _problem,
                                   _timeout, profiles, storage, work_dir)
from filmfund.media.jobs import _Heartbeat
from filmfund.media.models import Asset, AssetKind, AssetState, Job, Rendition, RenditionKind, Source

def _transcode(job: Job, beat: _Heartbeat) -> None:
    asset = job.asset
    if asset.state != AssetState.TRANSCODING:
        asset.move(AssetState.TRANSCODING, f"transcode job {job.id}, attempt {job.attempts}")
    db.session.commit()
    profs = profiles()
    kinds = REQUIRED[asset.kind] + OPTIONAL[asset.kind]
    optional_problems = []
    with _local_sources(asset) as paths:
        spec = ffmpeg.input_spec(paths)
        info = ffmpeg.summarize(ffmpeg.probe(spec))
        for n, kind in enumerate(kinds):
            profile = profs[kind.value]
            current = asset.rendition(kind)
            if current is not None and current.profile == profile and storage().exists(current.storage_key):
                continue  # done by an earlier attempt (a killed worker resumes where it stopped)
            beat.step = f"{kind.value} ({n + 1}/{len(kinds)})"
            beat.progress = n / len(kinds)
            try:
                _render(job, asset, kind, spec, info, profile, beat, n, len(kinds))
            except ffmpeg.FfmpegError as exc:
                if kind in REQUIRED[asset.kind]:
                    raise
                optional_problems.append(_problem(
                    f"{kind.value}_failed", f"The {kind.value} could not be made (the clip itself is fine): {exc}",
                    detail=exc.stderr_tail[-1000:] or None,
                    hint="Retry it from this page or with `filmfund media retry`.") | {"severity": "info"})
    asset = db.session.get(Asset, asset.id)
    asset.problems = [p for p in (asset.problems or []) if not p["code"].endswith("_failed")] + optional_problems
    asset.move(AssetState.READY, "renditions made: " + ", ".join(r.kind.value for r in asset.renditions))
    db.session.commit()


def _render(job: Job, asset: Asset, kind: RenditionKind, spec: str, info: ffmpeg.MediaInfo,
            profile: dict[str, Any], beat: _Heartbeat, n: int, total: int) -> None:
    content_type = CONTENT_TYPES[kind]
    out = work_dir() / f"job-{job.id}-{kind.value}{EXTENSIONS[content_type]}"
    if kind in (RenditionKind.PROXY, RenditionKind.WEB):
        argv = ffmpeg.video_rendition_argv(spec, str(out), info, profile, recorded_at=_iso(asset.recorded_at),
                                           title=asset.title,  # the only tag a donor copy keeps
                                           timecode=asset.timecode)  # kept by the edit proxy only
    elif kind == RenditionKind.POSTER and asset.kind == AssetKind.IMAGE:
        argv = ffmpeg.image_argv(spec, str(out), profile)
    elif kind == RenditionKind.POSTER:
        argv = ffmpeg.poster_argv(spec, str(out), info, profile)
    elif kind == RenditionKind.STRIP:
        argv = ffmpeg.strip_argv(spec, str(out), info, profile)
    elif kind == RenditionKind.IMAGE:
        argv = ffmpeg.image_argv(spec, str(out), profile)
    else:
        raise ValueError(kind)
    duration = asset.duration or info.duration

    def on_progress(p: dict[str, str]) -> None:
        us = ffmpeg._float(p.get("out_time_us"))
        if us and duration:
            beat.progress = (n + min(1.0, us / 1e6 / duration)) / total

    db.session.execute(sa.update(Job).where(Job.id == job.id).values(argv=" ".join(argv)[:8000]))
    db.session.commit()
    result = ffmpeg.run(argv, timeout=_timeout(duration), on_progress=on_progress, timeout_is_permanent=not duration)
    if kind == RenditionKind.POSTER and asset.kind == AssetKind.VIDEO and not (out.exists() and out.stat().st_size):
        # A seek can land past the last keyframe the clip really has (a long GOP, a phone's edit
        # list) and ffmpeg then writes nothing, with exit code 0: take the first frame instead.
        argv = ffmpeg.poster_argv(spec, str(out), info, {**profile, "at_seconds": 0})
        result = ffmpeg.run(argv, timeout=_timeout(duration), timeout_is_permanent=not duration)
    # Re-probe before promoting: an output that does not read back is not an output.
    try:
        out_info = ffmpeg.summarize(ffmpeg.probe(str(out)))
    except ffmpeg.FfmpegError as exc:
        raise ffmpeg.FfmpegError(f"{kind.value} output does not read back: {exc}", stderr_tail=result.stderr_tail) from None
    if kind in (RenditionKind.PROXY, RenditionKind.WEB) and duration and (
            not out_info.duration or out_info.duration < duration * 0.9 - 0.5):
        raise ffmpeg.FfmpegError(f"{kind.value} output is {out_info.duration or 0:.1f} s long, the clip "
                                 f"{duration:.1f} s", stderr_tail=result.stderr_tail)
    job = db.session.get(Job, job.id)
    job.stderr_tail = result.stderr_tail[-ffmpeg.TAIL_BYTES:] or job.stderr_tail
    _promote(asset, kind, out, profile, out_info)


def _promote(asset: Asset, kind: RenditionKind, out: Path, profile: dict[str, Any], info: ffmpeg.MediaInfo) -> None:
    """Store the finished output under its content key, then switch the one rendition row of
    this kind to it in one commit: readers see the old output or the new one, never both."""
    stored = storage().put_file(out, out.suffix)
    old = db.session.scalar(sa.select(Rendition).where(Rendition.asset_id == asset.id, Rendition.kind == kind)
                            .with_for_update())
    old_key = old.storage_key if old is not None else None
    if old is None:
        old = Rendition(asset_id=asset.id, kind=kind)
        db.session.add(old)
    old.storage_key, old.sha256, old.size = stored.key, stored.sha256, stored.size
    old.content_type = CONTENT_TYPES[kind]
    old.width, old.height, old.duration = info.width, info.height, info.duration if kind not in (
        RenditionKind.POSTER, RenditionKind.STRIP, RenditionKind.IMAGE) else None
    old.profile, old.created_at = profile, utcnow()
    db.session.commit()
    db.session.refresh(asset)
    out.unlink(missing_ok=True)
    if old_key and old_key != stored.key and not _key_in_use(old_key):
        storage().delete(old_key)


def _key_in_use(key: str) -> bool:
    return bool(db.session.scalar(sa.select(sa.func.count()).select_from(Rendition).where(Rendition.storage_key == key))
                or db.session.scalar(sa.select(sa.func.count()).select_from(Source).where(Source.storage_key == key)))
