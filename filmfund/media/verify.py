"""Verify and diagnose: one decode pass over the clip, damage told in words a producer can act on,
and a rescue rendition of what can still be read."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import current_app
from flask_babel import gettext as _

from filmfund.errors import ConflictError
from filmfund.extensions import db
from filmfund.media import early, ffmpeg, readback
from filmfund.media.common import _local_sources, _problem, _timecode, _timeout, profiles, work_dir
from filmfund.media.ingest import _apply_camera_data, _apply_info, end_in_take as _end_in_take, shorter_than_clip_info
from filmfund.media.jobs import _Heartbeat, _new_job, enqueue, enqueue_on_commit
from filmfund.media.models import Asset, AssetKind, AssetState, Job, JobKind, RenditionKind, Source
from filmfund.media.probing import recorded_at
from filmfund.media.sniff import sniff
from filmfund.media.renditions import _promote, wanted_kinds


# Problems ingest found on the card, not in the bytes: a verify keeps them (see _verify).
CARD_PROBLEMS = ("missing_part",)
# Notices ingest gave from the card, kept likewise: this clip is part of a take ingested whole later.
CARD_NOTICES = (Asset.SUPERSEDED,)


def problems_of_bytes(name: str, path: Path, source: Source | None = None) -> list[dict[str, Any]]:
    """What the bytes of one stored file say before any ffmpeg runs: empty, not media at all
    (text, a playlist), or a transport stream cut inside a packet or shorter than its clip info."""
    found = sniff(path)
    size = path.stat().st_size
    if found.container == "empty":
        return [_problem("empty", f"{name} is empty (0 bytes): nothing was copied.", source=name,
                         hint="Copy the file again from the card or the source; this copy holds nothing.")]
    if not found.is_media:
        return [_problem("not_media", f"{name} is not video: it holds {found.description}.", source=name,
                         hint="Only picture and sound files are ingested; check what was copied under this name.")]
    out = []
    packet = found.packet_size
    if packet and size % packet:
        missing = packet - size % packet
        out.append(_problem(
            "truncated", f"{name} ends in the middle of a {packet}-byte packet: the file was cut short "
            f"({missing} bytes missing from its last packet, probably more after it).",
            source=name, at=_end_in_take(source),
            hint="Copy this file again from the card or another backup; the end of the take is lost in this copy."))
    expected = getattr(source, "expected_size", None)
    if expected and size < expected and not out:
        out.append(shorter_than_clip_info(name, size, expected, _end_in_take(source)))
    return out


def _verify(job: Job, beat: _Heartbeat) -> None:
    asset = job.asset
    if asset.state != AssetState.VERIFYING:
        asset.move(AssetState.VERIFYING, f"verify job {job.id}, attempt {job.attempts}")
    db.session.commit()
    # What ingest learnt from the card (a part its playlist joins is not in the copy) is no
    # decode's to find again: kept through every verify.
    problems: list[dict[str, Any]] = [p for p in (asset.problems or []) if p.get("code") in CARD_PROBLEMS]
    lost_before = next((p["missing"] for p in problems if p.get("side") == "start" and p.get("missing")), None)
    notices: list[dict[str, Any]] = [p for p in (asset.problems or []) if p.get("code") in CARD_NOTICES]  # not damage
    with _local_sources(asset) as paths:
        spec = ffmpeg.input_spec(paths)
        refused = False
        for source, path in zip(asset.sources, paths):
            found = problems_of_bytes(source.original_name, Path(path), source)
            problems += found
            refused = refused or any(p["code"] in ("empty", "not_media") for p in found)
        if refused:  # no ffmpeg on a file that is not media (a playlist would make it read others)
            _settle_verify(asset, problems, None, notices)
            return
        try:
            # The probe made at ingest (of the joined take for a spanned one) describes these very
            # bytes (same SHA-256): it is not run again. An upload has none yet: probed here.
            data = asset.probe if asset.probe and asset.probe.get("streams") else ffmpeg.probe(spec)
            info = ffmpeg.summarize(data)
        except ffmpeg.FfmpegError as exc:
            problems.append(_problem("unreadable", f"ffprobe cannot read this clip: {exc}",
                                     detail=exc.stderr_tail[-1000:] or None,
                                     hint="The file is not a playable media file; copy it again from the source."))
            _settle_verify(asset, problems, None, notices)
            return
        if asset.probe is None:
            # An upload is probed here, by the worker, never inside the web request that stored it.

            _apply_info(asset, info, data)
            asset.kind = AssetKind(info.kind)
            asset.recorded_at = asset.recorded_at or recorded_at(Path(paths[0]), info)
            _apply_camera_data(asset, Path(paths[0]))
            if len(asset.sources) == 1 and asset.sources[0].probe is None:
                asset.sources[0].probe = data
                asset.sources[0].start_time, asset.sources[0].duration = info.start_time, info.duration
            db.session.commit()
        duration = info.duration or asset.duration
        beat.step = "decode pass"

        def on_progress(p: dict[str, str]) -> None:
            us = ffmpeg._float(p.get("out_time_us"))
            if us and duration:
                beat.progress = us / 1e6 / duration

        outputs = None
        if info.kind == "video" and current_app.config["MEDIA_SINGLE_PASS"]:
            # One decode checks every frame and writes the edit proxy and the poster (issue 6.9).
            beat.step = "decode pass + proxy"
            profs = profiles()
            outputs = {RenditionKind.PROXY: (work_dir() / f"job-{job.id}-proxy.mp4", profs["proxy"]),
                       RenditionKind.POSTER: (work_dir() / f"job-{job.id}-poster.jpg", profs["poster"]),
                       RenditionKind.STRIP: (work_dir() / f"job-{job.id}-strip.jpg", profs["strip"])}
            argv = ffmpeg.check_and_proxy_argv(
                spec, str(outputs[RenditionKind.PROXY][0]), str(outputs[RenditionKind.POSTER][0]), info,
                profs["proxy"], profs["poster"], recorded_at=ffmpeg.creation_time(asset.recorded_at), timecode=asset.timecode,
                strip_out=str(outputs[RenditionKind.STRIP][0]), strip=profs["strip"])
            db.session.execute(sa.update(Job).where(Job.id == job.id).values(argv=" ".join(argv)[:8000]))
            db.session.commit()
            # `media ingest --wait` may have started this very decode while it copied the take.
            only = asset.sources[0] if len(asset.sources) == 1 else None
            claimed = early.claim(only.original_path if only else None, argv, spec,
                                  {kind.value: out for kind, (out, _profile) in outputs.items()},
                                  only.sha256 if only else "", only.size if only else -1, on_progress)
            if claimed is not None:
                report, ran = claimed
                db.session.execute(sa.update(Job).where(Job.id == job.id).values(argv=" ".join(ran)[:8000]))
                # Committed before any other decode: on SQLite an open write holds the one write lock,
                # and a decode pass below waits for an encode slot, then runs, while the other takes'
                # jobs (their heartbeats, their results) fail on "database is locked".
                db.session.commit()
            else:
                report = ffmpeg.checked_run(argv, timeout=_timeout(duration), on_progress=on_progress,
                                            timeout_is_permanent=not duration)
            expected = round(duration * info.fps) if duration and info.fps else 0
            if report.errors or report.returncode != 0 or report.frames < expected - max(2, int(expected * 0.01)):
                # Something is wrong, and an encoder's complaint must not pass for damage: the
                # diagnosis comes from a decode alone (clean clips, the common case, skip this).
                outputs = None
                beat.step = "decode pass"
                report = ffmpeg.decode_pass(spec, timeout=_timeout(duration, 5), has_video=True,
                                            on_progress=on_progress, timeout_is_permanent=not duration)
        else:
            report = ffmpeg.decode_pass(spec, timeout=_timeout(duration, 5), has_video=info.kind != "audio",
                                        on_progress=on_progress, timeout_is_permanent=not duration)
        job = db.session.get(Job, job.id)
        job.stderr_tail = report.stderr_tail[-ffmpeg.TAIL_BYTES:]
        db.session.commit()
        mid_take = _starts_mid_take(report, info, duration)
        if mid_take:
            if lost_before:  # the file before it is not in the copy (missing_part, above): those frames are lost
                message = (f"This file starts in the middle of a take: its first {mid_take} frames refer to "
                           f"pictures in {lost_before}, which is not in this copy, so they are lost.")
                hint = (f"Copy {lost_before} from the card or another backup, then ingest the card again "
                        "to get the take as one clip.")
            else:
                message = (f"This file starts in the middle of a take: its first {mid_take} frames refer to "
                           "pictures in the previous file, so they cannot be decoded alone. This file itself "
                           "is not damaged.")
                hint = ("Ingest it together with the file before it (the card root or the whole folder) "
                        "to get the take as one clip; if that file is lost, so are these frames.")
            notices.append(_problem("starts_mid_take", message, at=0.0, hint=hint,
                                    detail="; ".join(dict.fromkeys(i.message for i in report.issues))[:500])
                           | {"severity": "info"})
        if report.errors and not mid_take:
            where = [i.at for i in report.issues if i.at is not None]
            span = ""
            if where:
                span = (f" around {_timecode(min(where))}" if max(where) - min(where) < 1
                        else f" between {_timecode(min(where))} and {_timecode(max(where))}")
            said = "; ".join(dict.fromkeys(i.message for i in report.issues))[:1500]
            files = _files_at(asset, where)
            problems.append(_problem(
                "decode_errors", f"The decoder reported {report.errors} error(s){span}"
                + (f" (in {', '.join(files)})" if files else "") + ": the picture or sound is damaged there.",
                at=min(where) if where else None, detail=said,
                hint=(f"Copy {', '.join(files)} again from the card if a good copy exists; " if files else
                      "Copy the file again if a good copy exists; ") + "check that part of the clip on a workstation."))
        if info.kind == "video" and info.fps and duration:
            expected = round(duration * info.fps)
            if report.frames < expected - max(2, int(expected * 0.01)) - mid_take:
                at = (report.frames / info.fps) if info.fps else None
                problems.append(_problem(
                    "missing_frames", f"Only {report.frames} of about {expected} frames could be decoded: "
                    f"{expected - report.frames} frames ({(expected - report.frames) / info.fps:.1f} s) are missing.",
                    at=at, hint="The file has a hole or was cut short; the rescue rendition (if any) shows what remains."))
        if not report.frames and info.kind in ("video", "image"):
            problems.append(_problem("no_frames", "Not a single frame could be decoded.",
                                     hint="The file holds no usable picture; copy it again from the source."))
        if outputs and not problems:
            _keep_outputs(asset, outputs, duration)
        rescue = None
        if problems and info.kind == "video" and current_app.config["MEDIA_RESCUE"] and report.frames:
            beat.step = "rescue rendition"
            rescue = _try_rescue(job, asset, spec, info)
    _settle_verify(asset, problems, rescue, notices)


def _keep_outputs(asset: Asset, outputs: dict, duration: float | None) -> None:
    """Store what the single pass made, if it reads back whole; what does not is made again by
    the transcode job (never a reason to call the clip damaged)."""
    for kind, (out, profile) in outputs.items():
        try:
            if not out.exists() or not out.stat().st_size:
                raise ffmpeg.FfmpegError("no output")
            # Read back by their own structure (media/readback.py), without an ffprobe run each.
            out_info = readback.read_jpeg(out) if out.suffix == ".jpg" else readback.read_mp4(out)
            if kind == RenditionKind.PROXY and duration and (not out_info.duration
                                                              or out_info.duration < duration * 0.9 - 0.5):
                raise ffmpeg.FfmpegError("short output")
        except ffmpeg.FfmpegError:
            out.unlink(missing_ok=True)
            continue
        _promote(asset, kind, out, profile, out_info)


# What h264 says when a file begins mid-GOP (a camera's second file of a spanned take): the
# first pictures reference a parameter set or frames that were in the previous file.
_MID_TAKE = ("non-existing pps", "non-existing sps", "decode_slice_header error", "no frame!",
             "co located pocs unavailable", "reference picture missing", "missing reference picture",
             "mmco: unref short failure")


def _starts_mid_take(report: ffmpeg.DecodeReport, info: ffmpeg.MediaInfo, duration: float | None) -> int:
    """Frames lost at the start if the only errors are those of a file that continues another
    (all before the first decoded frame, within two seconds); else 0."""
    if info.kind != "video" or not report.errors or not report.frames or not info.fps or not duration:
        return 0
    errors = [i for i in report.issues if i.level in ("error", "fatal", "panic")]
    if len(errors) < report.errors or any(i.at is not None for i in errors):
        return 0
    if not all(any(sig in i.message.lower() for sig in _MID_TAKE) for i in errors):
        return 0
    missing = round(duration * info.fps) - report.frames
    return missing if 0 < missing <= 2 * info.fps else 0


def _files_at(asset: Asset, times: list[float]) -> list[str]:
    """Of a take spanned over several files, the files these moments of the take fall in (each
    file ends where ingest.end_in_take says): the crew copies that file again, not the card.
    Empty for a one-file clip, or when the files' lengths are not known."""
    if len(asset.sources) < 2 or not times:
        return []
    ends = [(_end_in_take(s), s.original_name) for s in sorted(asset.sources, key=lambda s: s.position)]
    if any(end is None for end, _name in ends):
        return []
    found = []
    for t in times:
        name = next((name for end, name in ends if t <= end), ends[-1][1])
        if name not in found:
            found.append(name)
    return found


def _lost_from_the_end(asset: Asset) -> float:
    """About how many seconds the copy lacks of what its card's clip information says the take
    holds (a file cut short: its bytes short of the clip info's, at its own bitrate), 0 if none."""
    lost = 0.0
    for s in asset.sources:
        if s.expected_size and s.size and s.duration and s.expected_size > s.size:
            lost += s.duration * (s.expected_size - s.size) / s.size
    return lost


def _try_rescue(job: Job, asset: Asset, spec: str, info: ffmpeg.MediaInfo) -> dict[str, Any]:
    """Transcode what can be read past the damage into an edit proxy, so the producer can see
    what is left. Failure here is information, not an error."""
    profile = profiles()["rescue"]
    out = work_dir() / f"job-{job.id}-rescue.mp4"
    argv = ffmpeg.video_rendition_argv(spec, str(out), info, profile,
                                       input_args={"fflags": "+discardcorrupt+genpts", "err_detect": "ignore_err"})
    try:
        ffmpeg.run(argv, timeout=_timeout(asset.duration))
        out_info = ffmpeg.summarize(ffmpeg.probe(str(out)))
        if out_info.kind != "video" or not out_info.duration:
            raise ffmpeg.FfmpegError("the rescue output has no picture")
        _promote(asset, RenditionKind.RESCUE, out, profile, out_info)
        expected = info.duration or asset.duration or 0
        saved = min(out_info.duration, expected) if expected else out_info.duration
        lost = _lost_from_the_end(asset)
        return _problem("rescue", f"A partial rescue rendition was made: {saved:.1f} s of the clip's "
                        f"{expected:.1f} s could be saved (edit proxy quality)."
                        + (f" The card's clip information says the take is longer: about {lost:.1f} s more "
                           "are missing from the end of this copy." if lost else ""),
                        hint="Use the rescue proxy for the edit if no intact copy of the file exists.")
    except ffmpeg.FfmpegError as exc:
        return _problem("rescue", "No rescue rendition was possible: " + str(exc)[:500],
                        detail=exc.stderr_tail[-1000:] or None)


def _settle_verify(asset: Asset, problems: list[dict[str, Any]], rescue: dict[str, Any] | None,
                   notices: list[dict[str, Any]] | None = None) -> None:
    asset.problems = problems + ([rescue] if rescue else []) + (notices or [])
    if problems:
        asset.move(AssetState.DAMAGED, "; ".join(p["code"] for p in problems))
        db.session.commit()
        return
    asset.move(AssetState.VERIFIED, "decode pass clean")
    made = [k for k in wanted_kinds(asset) if asset.rendition(k) is not None]
    if len(made) == len(wanted_kinds(asset)):
        # The decode pass made every rendition this asset needs (proxy, poster, strip): no
        # transcode job to queue, claim and run only to find nothing to do.
        asset.move(AssetState.TRANSCODING, "every rendition made by the decode pass")
        asset.move(AssetState.READY, "renditions made: " + ", ".join(k.value for k in made))
        db.session.commit()
        return
    job = _new_job(asset, JobKind.TRANSCODE)
    db.session.commit()
    enqueue(job)


def reverify(asset: Asset) -> Job:
    """Queue a fresh verify (and, if it passes, a fresh transcode) of an asset. The caller
    commits; the job goes on the queue then."""
    if asset.state in (AssetState.VERIFYING, AssetState.TRANSCODING):
        raise ConflictError(_("This asset is being processed already."))
    asset.move(AssetState.VERIFYING, "re-verify requested")
    job = _new_job(asset, JobKind.VERIFY)
    enqueue_on_commit(job)
    return job
