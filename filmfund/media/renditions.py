"""Renditions: the proxy, web, poster, strip and image outputs of an asset, each re-probed before it
is stored and switched in under its content key."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask_babel import gettext as _

from filmfund.db import utcnow
from filmfund.errors import ConflictError, ValidationError
from filmfund.extensions import db
from filmfund.media import ffmpeg, streaming
from filmfund.media.common import (CONTENT_TYPES, EXTENSIONS, OPTIONAL, REQUIRED, _local_sources, _problem,
                                   _timeout, drop_unreferenced, profiles, storage, work_dir)
from filmfund.media.jobs import _Heartbeat, _new_job, enqueue_on_commit
from filmfund.media.models import (
    Asset,
    AssetKind,
    AssetState,
    Job,
    JobKind,
    JobStatus,
    Rendition,
    RenditionKind,
    RenditionState,
    RenditionStatus,
)

def wanted_kinds(asset: Asset) -> list[RenditionKind]:
    """The renditions this asset should have now. The donors' web rendition is made when the
    asset is first published, or at ingest if the web profile says `at = "ingest"`."""
    kinds = REQUIRED[asset.kind] + OPTIONAL[asset.kind]
    if asset.kind == AssetKind.VIDEO and (profiles().get("web", {}).get("at", "publish") == "ingest"
                                          or asset.publications):
        kinds.append(RenditionKind.WEB)
    return kinds


def _set_state(asset: Asset, kind: RenditionKind, state: RenditionState, error: str | None = None) -> None:
    row = asset.rendition_state(kind)
    if row is None:
        row = RenditionStatus(asset=asset, kind=kind, attempts=0)
        db.session.add(row)
    row.state, row.error = state, (error[:4000] if error else None)
    if state == RenditionState.RUNNING:
        row.attempts = (row.attempts or 0) + 1
    row.updated_at = utcnow()


def _transcode(job: Job, beat: _Heartbeat) -> None:
    """Make the renditions the asset lacks. The required ones (the proxy, a still's image) fail
    the job; the others (poster, strip, web) are best effort: their failure is a notice on the
    asset and a failed rendition state that can be retried. A ready asset stays ready while a
    missing rendition is made (the web rendition at first publish, a retry)."""
    asset = job.asset
    if asset.state not in (AssetState.TRANSCODING, AssetState.READY):
        asset.move(AssetState.TRANSCODING, f"transcode job {job.id}, attempt {job.attempts}")
    db.session.commit()
    profs = profiles()
    kinds = wanted_kinds(asset)
    attempted: list[RenditionKind] = []
    optional_problems = []
    with _local_sources(asset) as paths:
        spec = ffmpeg.input_spec(paths)
        # The probe made at ingest (or by the verify job, for an upload) describes these bytes.
        info = ffmpeg.summarize(asset.probe if asset.probe and asset.probe.get("streams") else ffmpeg.probe(spec))
        while kinds:
            for n, kind in enumerate(kinds):
                profile = profs[kind.value]
                current = asset.rendition(kind)
                if current is not None and current.profile == profile and storage().exists(current.storage_key):
                    if asset.rendition_state(kind) is None or asset.rendition_state(kind).state != RenditionState.READY:
                        _set_state(asset, kind, RenditionState.READY)
                        db.session.commit()
                    continue  # done by an earlier attempt (a killed worker resumes where it stopped)
                beat.step = f"{kind.value} ({n + 1}/{len(kinds)})"
                beat.progress = n / len(kinds)
                _set_state(asset, kind, RenditionState.RUNNING)
                db.session.commit()
                try:
                    _render(job, asset, kind, spec, info, profile, beat, n, len(kinds))
                except ffmpeg.FfmpegError as exc:
                    db.session.rollback()
                    _set_state(asset, kind, RenditionState.FAILED, str(exc))
                    db.session.commit()
                    if kind in REQUIRED[asset.kind]:
                        raise
                    optional_problems.append(_problem(
                        f"{kind.value}_failed", f"The {kind.value} could not be made (the clip itself is fine): {exc}",
                        detail=exc.stderr_tail[-1000:] or None,
                        hint="Retry it from this page or with `filmfund media retry`.") | {"severity": "info"})
                except Exception as exc:
                    # The storage (or the database) failed: the job is tried again later, and until
                    # then the rendition is failed, never left "running" by a job that is not.
                    db.session.rollback()
                    _set_state(asset, kind, RenditionState.FAILED, f"{type(exc).__name__}: {exc}")
                    db.session.commit()
                    raise
            attempted += kinds
            # A publish while this job ran found it running and left the donors' copy to it
            # (make_donor_renditions), but `kinds` was read when the job started: what the asset
            # wants now and this job has not tried yet is made too, before the job ends.
            db.session.expire(asset)
            kinds = [k for k in wanted_kinds(asset) if k not in attempted]
        if streaming.needs_package(asset):
            # The HLS package of a published video: best effort like the web rendition (a failed
            # package is marked failed on its row and noted on the asset; the clip stays ready).
            beat.step = f"hls ({len(attempted) + 1}/{len(attempted) + 1})"
            try:
                streaming.package(job, asset, spec, info, beat)
            except ffmpeg.FfmpegError as exc:
                optional_problems.append(streaming.failure_problem(exc))
    asset = db.session.get(Asset, asset.id)
    asset.problems = [p for p in (asset.problems or []) if not p["code"].endswith("_failed")] + optional_problems
    made = ", ".join(r.kind.value for r in asset.renditions)
    if asset.state != AssetState.READY:
        asset.move(AssetState.READY, "renditions made: " + made)
    db.session.commit()


def make_donor_renditions(asset: Asset) -> Job | None:
    """Queue the renditions a published asset lacks (the donors' web rendition), unless a job
    of this asset is queued or running already (it makes them: the asset is published now).
    The caller commits; the job goes on the queue then."""
    missing = [k for k in wanted_kinds(asset) if asset.rendition(k) is None]
    if not (missing or streaming.needs_package(asset)) or asset.state != AssetState.READY:
        return None
    # The publication is written before the running job is looked for, and that job's row is
    # locked while it is: a job settling at this moment then either waits for this commit and
    # sees the publication (queue_what_a_publish_left), or has settled and is not found here.
    db.session.flush()
    if db.session.scalars(sa.select(Job.id).where(
            Job.asset_id == asset.id, Job.status.in_([JobStatus.QUEUED, JobStatus.RUNNING])).with_for_update()).first():
        return None
    return _queue(asset, missing)


def queue_what_a_publish_left(asset_id: int) -> Job | None:
    """At a transcode's or a check's end, in the transaction that records it succeeded (the row
    already says so, runner.run_job): a publish made after the job last read what its asset
    wants (the job's final commits) found it running and left the donors' copy to it, which it
    will not make. Queued now: the kinds no job has tried (no rendition, no state but pending),
    never one this job tried and failed (that is retried by hand, not in a loop)."""
    asset = db.session.get(Asset, asset_id)
    if asset is None or asset.state != AssetState.READY:
        return None
    untried = [k for k in wanted_kinds(asset) if asset.rendition(k) is None and (
        asset.rendition_state(k) is None or asset.rendition_state(k).state == RenditionState.PENDING)]
    package_untried = streaming.wants_stream(asset) and (
        (stream := streaming.stream_of(asset.id)) is None or stream.state == "pending")
    if not (untried or package_untried):
        return None
    return _queue(asset, untried)


def _queue(asset: Asset, missing: list[RenditionKind]) -> Job:
    for kind in missing:
        _set_state(asset, kind, RenditionState.PENDING)
    if streaming.needs_package(asset):
        streaming.mark_pending(asset)
    job = _new_job(asset, JobKind.TRANSCODE)
    enqueue_on_commit(job)
    return job


def retry(asset: Asset, kind: str | None = None) -> Job:
    """Queue the renditions that failed (or one named kind) again, from the asset page or with
    `filmfund media retry ID`. A ready asset stays ready meanwhile. The caller commits; the job
    goes on the queue then."""
    if asset.state == AssetState.DAMAGED:
        raise ConflictError(_("Renditions are retried on a verified asset that is ready or failed (this one is "
                              "damaged): ingest an intact copy of its files instead."), code="not_retryable")
    if asset.state not in (AssetState.READY, AssetState.FAILED) or asset.verified_at is None:
        # Not checked yet (uploaded, verifying, transcoding): its own job makes the renditions.
        # "Verify it again" sent the crew to `media verify`, which checks fixity only (a dead end).
        raise ConflictError(_("This asset is still being checked (%(state)s): its job makes the renditions "
                              "when a worker runs it (`filmfund worker`, or the site's `filmfund run`).",
                              state=asset.state.value), code="not_retryable")
    if db.session.scalar(sa.select(sa.func.count()).select_from(Job).where(
            Job.asset_id == asset.id, Job.status.in_([JobStatus.QUEUED, JobStatus.RUNNING]))):
        raise ConflictError(_("This asset is being processed already."), code="busy")
    wanted = wanted_kinds(asset)
    if kind is not None:
        try:
            rk = RenditionKind(kind)
        except ValueError:
            raise ValidationError(_("Unknown rendition %(rendition)s.", rendition=repr(kind)),
                                  code="invalid_rendition") from None
        if rk not in wanted:
            raise ValidationError(_("This asset does not take a %(kind)s rendition now.", kind=rk.value),
                                  code="invalid_rendition")
        targets = [rk]
    else:
        targets = [k for k in wanted if asset.rendition(k) is None]
    if not targets and kind is None and streaming.needs_package(asset):
        streaming.mark_pending(asset)  # only the streaming package is missing (or failed)
    elif not targets:
        raise ConflictError(_("Every rendition of this asset is made; name one to make it again."),
                            code="nothing_to_retry")
    for rk in targets:
        current = asset.rendition(rk)
        if current is not None:
            current.profile = None  # made again even though it exists
        _set_state(asset, rk, RenditionState.PENDING)
    if asset.state == AssetState.FAILED:
        asset.move(AssetState.TRANSCODING, "retry of " + ", ".join(k.value for k in targets))
    job = _new_job(asset, JobKind.TRANSCODE)
    enqueue_on_commit(job)
    return job


def _render(job: Job, asset: Asset, kind: RenditionKind, spec: str, info: ffmpeg.MediaInfo,
            profile: dict[str, Any], beat: _Heartbeat, n: int, total: int) -> None:
    content_type = CONTENT_TYPES[kind]
    out = work_dir() / f"job-{job.id}-{kind.value}{EXTENSIONS[content_type]}"
    if kind in (RenditionKind.PROXY, RenditionKind.WEB):
        argv = ffmpeg.video_rendition_argv(spec, str(out), info, profile, recorded_at=ffmpeg.creation_time(asset.recorded_at),
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
    _set_state(asset, kind, RenditionState.READY)
    db.session.commit()
    db.session.refresh(asset)
    out.unlink(missing_ok=True)
    if old_key and old_key != stored.key:
        drop_unreferenced([old_key])
