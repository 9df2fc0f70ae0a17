"""Use cases of the footage pipeline: ingest, verify and diagnose, transcode, fixity, the
footage board's queries, publishing to a reward and the donor library.

Views, the CLI and queue tasks are thin callers of these functions. ffmpeg stays behind
filmfund.media.ffmpeg, bytes behind filmfund.media.storage.
"""
from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import random
import socket
import threading
import tomllib
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterable

import sqlalchemy as sa
from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from filmfund.auth.services import external_url
from filmfund.db import utcnow
from filmfund.errors import ConflictError, ForbiddenError, NotFoundError, ValidationError
from filmfund.extensions import db
from filmfund.media import avchd, ffmpeg
from filmfund.media.models import (Asset, AssetEvent, AssetKind, AssetState, Job, JobKind, JobStatus,
                                   Publication, Rendition, RenditionKind, Source)
from filmfund.media.storage import Storage, open_storage, sha256_file

log = logging.getLogger(__name__)

REQUIRED = {AssetKind.VIDEO: [RenditionKind.PROXY, RenditionKind.WEB, RenditionKind.POSTER],
            AssetKind.IMAGE: [RenditionKind.IMAGE, RenditionKind.POSTER],
            AssetKind.AUDIO: []}
OPTIONAL = {AssetKind.VIDEO: [RenditionKind.STRIP], AssetKind.IMAGE: [], AssetKind.AUDIO: []}
CONTENT_TYPES = {RenditionKind.PROXY: "video/mp4", RenditionKind.WEB: "video/mp4", RenditionKind.RESCUE: "video/mp4",
                 RenditionKind.POSTER: "image/jpeg", RenditionKind.STRIP: "image/jpeg",
                 RenditionKind.IMAGE: "image/jpeg"}
EXTENSIONS = {"video/mp4": ".mp4", "image/jpeg": ".jpg"}


class PermanentJobError(Exception):
    """Running the job again cannot help (bad input); the asset fails with this message."""


# --- settings, storage, profiles ----------------------------------------------------------

def defaults(env: dict[str, str] | None = None) -> dict[str, Any]:
    env = dict(os.environ if env is None else env)
    return {
        "MEDIA_PROFILES_FILE": env.get("FILMFUND_MEDIA_PROFILES") or str(Path(__file__).with_name("profiles.toml")),
        "MEDIA_PROFILE_OVERRIDES": {},
        "MEDIA_FFMPEG_TIMEOUT": float(env.get("FILMFUND_MEDIA_FFMPEG_TIMEOUT") or 0),  # 0: from the duration
        "MEDIA_MAX_ATTEMPTS": int(env.get("FILMFUND_MEDIA_MAX_ATTEMPTS") or 3),
        "MEDIA_RETRY_BASE_SECONDS": float(env.get("FILMFUND_MEDIA_RETRY_BASE_SECONDS") or 60),
        "MEDIA_HEARTBEAT_SECONDS": float(env.get("FILMFUND_MEDIA_HEARTBEAT_SECONDS") or 5),
        "MEDIA_STALE_SECONDS": float(env.get("FILMFUND_MEDIA_STALE_SECONDS") or 120),
        "MEDIA_S3_PART_SIZE": int(env.get("FILMFUND_MEDIA_S3_PART_SIZE") or 8 * 1024 * 1024),
        "MEDIA_RESCUE": (env.get("FILMFUND_MEDIA_RESCUE") or "1") == "1",
    }


def storage() -> Storage:
    app = current_app
    cache = app.extensions.setdefault("filmfund.media.storage", {})
    key = (app.config["STORAGE_URL"], app.config.get("S3_ENDPOINT_URL"))
    if key not in cache:
        cache[key] = open_storage(app.config["STORAGE_URL"], app.config.get("S3_ENDPOINT_URL"),
                                  app.config["MEDIA_S3_PART_SIZE"])
    return cache[key]


def profiles() -> dict[str, dict[str, Any]]:
    with open(current_app.config["MEDIA_PROFILES_FILE"], "rb") as fh:
        data = tomllib.load(fh)
    for name, override in (current_app.config.get("MEDIA_PROFILE_OVERRIDES") or {}).items():
        data.setdefault(name, {}).update(override)
    return data


def work_dir() -> Path:
    path = Path(current_app.config["INSTANCE_DIR"]) / "media-work"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _timeout(duration: float | None, factor: float = 20) -> float:
    fixed = current_app.config["MEDIA_FFMPEG_TIMEOUT"]
    if fixed:
        return fixed
    # Generous for a 2-core box: 20x realtime plus start-up, at least ten minutes.
    return max(600.0, 60.0 + factor * (duration or 0))


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


# --- ingest ----------------------------------------------------------------------------------

@dataclass
class IngestResult:
    asset: Asset
    created: bool
    how: str


class _Tee:
    """Feeds the bytes a storage put reads into a second hash (the asset's joined stream)."""

    def __init__(self, src: BinaryIO, digest):
        self.src, self.digest = src, digest

    def read(self, n: int = -1) -> bytes:
        data = self.src.read(n)
        self.digest.update(data)
        return data


def _probe_spec(spec: str) -> tuple[dict | None, ffmpeg.MediaInfo | None, str | None]:
    return _probe_file(spec)


def _probe_file(path: Path | str) -> tuple[dict | None, ffmpeg.MediaInfo | None, str | None]:
    try:
        data = ffmpeg.probe(str(path))
        return data, ffmpeg.summarize(data), None
    except ffmpeg.FfmpegError as exc:
        return None, None, str(exc)


def ingest_paths(paths: Iterable[str | Path], title: str | None = None,
                 progress: Callable[[int], None] | None = None,
                 on_group: Callable[[avchd.SourceGroup], None] | None = None) -> list[IngestResult]:
    """Ingest files, folders and AVCHD card roots; queue a verify job per new asset."""
    groups = avchd.discover([Path(p) for p in paths])
    probes: dict[Path, tuple[dict | None, ffmpeg.MediaInfo | None, str | None]] = {}
    for group in groups:
        for f in group.files:
            probes[f] = _probe_file(f)
    times = {f: ((p[1].start_time, p[1].end_time) if p[1] else (None, None)) for f, p in probes.items()}
    groups = avchd.link_spans(groups, times)
    results = []
    for n, group in enumerate(groups, 1):
        if on_group:
            on_group(group)
        group_title = title if title and len(groups) == 1 else (f"{title} · {n}" if title else None)
        results.append(_ingest_group(group, probes, group_title, progress))
    return results


def total_bytes(paths: Iterable[str | Path]) -> int:
    return sum(f.stat().st_size for g in avchd.discover([Path(p) for p in paths]) for f in g.files)


def _default_title(group: avchd.SourceGroup) -> str:
    first = group.files[0]
    name = first.stem if group.card is None else f"{_card_name(group.card)} {first.stem}"
    if len(group.files) > 1:
        name += f" (+{len(group.files) - 1} part{'s' if len(group.files) > 2 else ''})"
    return name


def _card_name(bdmv: Path) -> str:
    root = bdmv
    for _ in range(3):
        if root.parent.name.upper() in ("AVCHD", "PRIVATE"):
            root = root.parent
    return root.parent.name or "card"


def _ingest_group(group: avchd.SourceGroup, probes: dict, title: str | None,
                  progress: Callable[[int], None] | None) -> IngestResult:
    store = storage()
    known = _known_without_upload(group.files, progress)
    if known is not None:
        return IngestResult(known, False, "already ingested (same bytes)")
    joined = hashlib.sha256()
    stored = []
    for f in group.files:
        with open(f, "rb") as fh:
            stored.append(store.put_stream(_Tee(fh, joined), f.suffix, progress))
    sha = joined.hexdigest()
    existing = _existing_asset(sha, [s.sha256 for s in stored])
    if existing is not None:
        return IngestResult(existing, False, "already ingested (same bytes)")
    first_probe, first_info, probe_error = probes[group.files[0]]
    asset = Asset(title=(title or _default_title(group))[:300], sha256=sha, size=sum(s.size for s in stored),
                  kind=AssetKind(first_info.kind) if first_info else _kind_from_name(group.files[0]))
    for pos, (f, s) in enumerate(zip(group.files, stored)):
        data, info, _err = probes[f]
        asset.sources.append(Source(position=pos, original_name=f.name[:500], original_path=str(f)[:2000],
                                    sha256=s.sha256, size=s.size, storage_key=s.key, probe=data,
                                    start_time=info.start_time if info else None,
                                    duration=info.duration if info else None))
    _apply_info(asset, first_info, first_probe)
    if len(group.files) > 1:
        # A spanned take is measured as the one stream it is (parts overlap by a few frames).
        joined_data, joined_info, _err = _probe_spec(ffmpeg.input_spec(group.files))
        if joined_info is not None:
            _apply_info(asset, joined_info, joined_data)
    recorded = _recorded_at(group.files[0], first_info)
    if recorded:
        asset.recorded_at = recorded
    notes = [f"Found as: {group.how}."]
    if group.card is not None:
        notes.append(f"Card: {group.card}")
    if probe_error:
        notes.append(f"ffprobe: {probe_error}")
    asset.notes = "\n".join(notes)
    return _register(asset, group.how)


def _known_without_upload(files: list[Path], progress: Callable[[int], None] | None) -> Asset | None:
    """Re-running an ingest over the same folder: files we stored from the same path with the
    same size are hashed locally (one read, no upload) and recognised if the bytes match."""
    assets = set()
    for f in files:
        src = db.session.scalar(sa.select(Source).where(Source.original_path == str(f)[:2000],
                                                         Source.size == f.stat().st_size).limit(1))
        if src is None:
            return None
        assets.add(src.asset_id)
    if len(assets) != 1:
        return None
    asset = db.session.get(Asset, assets.pop())
    if [s.original_path for s in asset.sources] != [str(f)[:2000] for f in files]:
        return None
    for f, src in zip(files, asset.sources):
        if sha256_file(f, progress)[0] != src.sha256:
            return None  # same name and size, other bytes: a new copy, ingested as such
    return asset


def _kind_from_name(path: Path) -> AssetKind:
    ext = path.suffix.lower()
    if ext in avchd.IMAGE_EXTENSIONS:
        return AssetKind.IMAGE
    if ext in avchd.AUDIO_EXTENSIONS:
        return AssetKind.AUDIO
    return AssetKind.VIDEO


def _apply_info(asset: Asset, info: ffmpeg.MediaInfo | None, data: dict | None) -> None:
    asset.probe = data
    if info is None:
        return
    asset.duration = info.duration
    asset.width, asset.height, asset.fps, asset.interlaced = info.width, info.height, info.fps, info.interlaced
    asset.camera = (info.camera or None) and info.camera[:200]


def _recorded_at(path: Path | None, info: ffmpeg.MediaInfo | None) -> datetime | None:
    if info and info.recorded_at:
        with contextlib.suppress(ValueError):
            value = datetime.fromisoformat(info.recorded_at.replace("Z", "+00:00"))
            return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if path is not None and path.suffix.lower() in (".mts", ".m2ts"):
        return avchd.read_mdpm_date(path)
    return None


def _existing_asset(sha: str, source_shas: list[str]) -> Asset | None:
    asset = db.session.scalar(sa.select(Asset).where(Asset.sha256 == sha))
    if asset is None and len(source_shas) == 1:
        asset = db.session.scalar(sa.select(Asset).join(Source).where(Source.sha256 == source_shas[0]).limit(1))
    return asset


def _register(asset: Asset, how: str) -> IngestResult:
    """Insert the new asset and queue its verify job; a concurrent ingest of the same bytes wins."""
    db.session.add(asset)
    db.session.add(AssetEvent(asset=asset, from_state=None, to_state=AssetState.UPLOADED, note=how[:1000]))
    try:
        db.session.flush()
    except sa.exc.IntegrityError:
        db.session.rollback()
        existing = db.session.scalar(sa.select(Asset).where(Asset.sha256 == asset.sha256))
        if existing is None:
            raise
        return IngestResult(existing, False, "already ingested (same bytes)")
    job = _new_job(asset, JobKind.VERIFY)
    db.session.commit()
    enqueue(job)
    return IngestResult(asset, True, how)


def ingest_upload(stream: BinaryIO, filename: str, title: str | None = None, limit: int | None = None
                  ) -> IngestResult:
    """A file uploaded from the producers' page: streamed to storage, then probed from there."""
    from werkzeug.utils import secure_filename

    safe_name = secure_filename(filename or "") or "upload"
    suffix = Path(safe_name).suffix
    if suffix.lower() not in avchd.MEDIA_EXTENSIONS:
        raise ValidationError(f"{safe_name}: not a video, image or audio file this pipeline takes.",
                              code="unsupported_file")
    from filmfund.errors import DomainError
    from filmfund.media.storage import TooLarge

    store = storage()
    try:
        stored = store.put_stream(stream, suffix, limit=limit)
    except TooLarge as exc:
        raise DomainError(f"{safe_name}: {exc}.", code="too_large", status=413) from None
    return _register_stored(stored, safe_name, title, "uploaded from the footage page")


def _register_stored(stored, safe_name: str, title: str | None, how: str) -> IngestResult:
    """An asset for one object already in storage (an upload), probed from there."""
    store = storage()
    existing = _existing_asset(stored.sha256, [stored.sha256])
    if existing is not None:
        return IngestResult(existing, False, "already ingested (same bytes)")
    with store.local_path(stored.key, work_dir()) as local:
        data, info, err = _probe_file(Path(local))
        recorded = _recorded_at(Path(local), info)
    asset = Asset(title=(title or Path(safe_name).stem)[:300], sha256=stored.sha256, size=stored.size,
                  kind=AssetKind(info.kind) if info else _kind_from_name(Path(safe_name)),
                  notes=how[0].upper() + how[1:] + "." + (f"\nffprobe: {err}" if err else ""))
    asset.sources.append(Source(position=0, original_name=safe_name[:500], original_path=None,
                                sha256=stored.sha256, size=stored.size, storage_key=stored.key, probe=data,
                                start_time=info.start_time if info else None,
                                duration=info.duration if info else None))
    _apply_info(asset, info, data)
    asset.recorded_at = recorded
    return _register(asset, how)


# --- browser-to-S3 uploads --------------------------------------------------------------------

DIRECT_UPLOAD_TTL = 3600  # a part URL is good for an hour; the upload token for a day


def _direct():
    from filmfund.media.storage import DirectUploads, S3Storage

    store = storage()
    if not isinstance(store, S3Storage):
        raise ConflictError("Direct uploads need S3 storage; use the upload form.", code="direct_upload_unavailable")
    return DirectUploads(store)


def _upload_serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="filmfund.media.direct-upload")


def start_direct_upload(user, filename: Any, size: Any) -> dict[str, Any]:
    """Open a multipart upload the browser fills part by part (presigned PUTs), for files too big
    to pass through the app. Size and type are checked here, and again at completion."""
    from werkzeug.utils import secure_filename

    from filmfund.errors import DomainError

    direct = _direct()
    safe_name = secure_filename(filename if isinstance(filename, str) else "") or ""
    if Path(safe_name).suffix.lower() not in avchd.MEDIA_EXTENSIONS:
        raise ValidationError("Not a video, image or audio file this pipeline takes.", code="unsupported_file")
    if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
        raise ValidationError("Give the file's size in bytes.", code="invalid_size")
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    if size > limit:
        raise DomainError(f"The file is larger than {limit} bytes.", code="too_large", status=413)
    part_size = max(current_app.config["MEDIA_S3_PART_SIZE"], -(-size // 10000))  # S3: at most 10,000 parts
    key, upload_id = direct.start("application/octet-stream")
    token = _upload_serializer().dumps({"k": key, "i": upload_id, "n": safe_name, "s": size, "u": user.public_id})
    return {"upload": token, "part_size": part_size, "part_count": max(1, -(-size // part_size))}


def _load_upload(user, token: Any) -> dict[str, Any]:
    try:
        data = _upload_serializer().loads(token if isinstance(token, str) else "", max_age=24 * 3600)
    except BadSignature:
        raise ValidationError("Unknown or expired upload.", code="invalid_upload") from None
    if data.get("u") != user.public_id:
        raise ForbiddenError("This upload belongs to another account.")
    return data


def direct_upload_part_urls(user, token: Any, numbers: Any) -> dict[str, str]:
    data = _load_upload(user, token)
    if not isinstance(numbers, list) or not numbers or len(numbers) > 100 or not all(
            isinstance(n, int) and not isinstance(n, bool) and 1 <= n <= 10000 for n in numbers):
        raise ValidationError("Ask for 1 to 100 part numbers between 1 and 10000.", code="invalid_parts")
    direct = _direct()
    return {str(n): direct.part_url(data["k"], data["i"], n, DIRECT_UPLOAD_TTL) for n in numbers}


def complete_direct_upload(user, token: Any, parts: Any, title: str | None = None) -> IngestResult:
    """Finish the multipart upload, check the stored size (S3 does not enforce what we signed),
    hash the object, move it to its content key and register the asset."""
    from filmfund.errors import DomainError

    data = _load_upload(user, token)
    direct = _direct()
    try:
        pairs = [(int(p["part"]), str(p["etag"])) for p in parts]
    except (TypeError, KeyError, ValueError):
        raise ValidationError("List the parts as [{part, etag}].", code="invalid_parts") from None
    try:
        size = direct.complete(data["k"], data["i"], pairs)
    except Exception as exc:  # noqa: BLE001 - S3 refused the parts: tell the uploader, keep nothing
        direct.abort(data["k"], data["i"])
        raise ValidationError(f"S3 could not assemble the upload: {type(exc).__name__}.", code="upload_failed") from None
    if size != data["s"] or size > current_app.config["MAX_CONTENT_LENGTH"]:
        direct.abort(data["k"], data["i"])
        raise DomainError(f"The uploaded file has {size} bytes, {data['s']} were announced; it was discarded.",
                          code="size_mismatch", status=413 if size > data["s"] else 400)
    stored = direct.promote(data["k"], Path(data["n"]).suffix)
    return _register_stored(stored, data["n"], title, "uploaded from the footage page, directly to S3")


# --- jobs ------------------------------------------------------------------------------------

def _new_job(asset: Asset, kind: JobKind) -> Job:
    job = Job(asset=asset, kind=kind, max_attempts=current_app.config["MEDIA_MAX_ATTEMPTS"], next_run_at=utcnow())
    db.session.add(job)
    db.session.flush()
    return job


def enqueue(job: Job, delay: float = 0) -> None:
    from filmfund.media import tasks

    if delay > 0:
        tasks.run_media_job.schedule(args=(job.id,), delay=delay)
    else:
        tasks.run_media_job(job.id)


def _claim(job_id: int) -> bool:
    """Take a queued job for this worker; False if another worker has it or it is settled."""
    now = utcnow()
    result = db.session.execute(
        sa.update(Job).where(Job.id == job_id, Job.status == JobStatus.QUEUED, Job.next_run_at <= now + timedelta(seconds=1))
        .values(status=JobStatus.RUNNING, attempts=Job.attempts + 1, started_at=now, heartbeat_at=now,
                worker=worker_name(), progress=0.0, finished_at=None, ffmpeg_version=ffmpeg.version()[:200])
        .execution_options(synchronize_session=False))
    db.session.commit()
    return result.rowcount == 1


class _Heartbeat:
    """Touches the job row every few seconds from its own connection, with the latest progress,
    so a reaper can tell a live job from one whose worker died."""

    def __init__(self, job_id: int, interval: float):
        self.job_id, self.interval = job_id, interval
        self.progress: float | None = None
        self.step: str | None = None
        self._stop = threading.Event()
        self._engine = db.engine
        self._thread = threading.Thread(target=self._loop, name=f"heartbeat-{job_id}", daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=10)
        self.beat()

    def _loop(self):
        while not self._stop.wait(self.interval):
            self.beat()

    def beat(self):
        values: dict[str, Any] = {"heartbeat_at": utcnow()}
        if self.progress is not None:
            values["progress"] = round(min(1.0, max(0.0, self.progress)), 4)
        if self.step is not None:
            values["step"] = self.step[:100]
        try:
            with self._engine.begin() as conn:
                conn.execute(sa.update(Job).where(Job.id == self.job_id, Job.status == JobStatus.RUNNING).values(**values))
        except sa.exc.SQLAlchemyError:  # a missed beat is not fatal; the next one may pass
            log.warning("heartbeat of job %s failed", self.job_id, exc_info=True)


def run_job(job_id: int) -> str:
    """Queue entry point: claim, run, record. Never raises for a job's own failure: a bad clip
    or a failing ffmpeg ends in a state the producer sees, not in a crashed worker."""
    if not _claim(job_id):
        return "skipped"
    job = db.session.get(Job, job_id)
    with contextlib.suppress(FileNotFoundError):
        for leftover in work_dir().glob(f"job-{job_id}-*"):
            leftover.unlink()  # what a killed attempt of this job left behind
    try:
        with _Heartbeat(job_id, current_app.config["MEDIA_HEARTBEAT_SECONDS"]) as beat:
            if job.kind == JobKind.VERIFY:
                _verify(job, beat)
            else:
                _transcode(job, beat)
        job = db.session.get(Job, job_id)
        job.status, job.finished_at, job.progress, job.error = JobStatus.SUCCEEDED, utcnow(), 1.0, None
        db.session.commit()
        return "succeeded"
    except Exception as exc:  # noqa: BLE001 - recorded on the job row, never a worker crash
        db.session.rollback()
        log.warning("media job %s failed: %s", job_id, exc, exc_info=not isinstance(exc, (PermanentJobError, ffmpeg.FfmpegError)))
        return _record_failure(job_id, exc)
    finally:
        with contextlib.suppress(FileNotFoundError):
            for leftover in work_dir().glob(f"job-{job_id}-*"):
                leftover.unlink()


def _record_failure(job_id: int, exc: Exception) -> str:
    job = db.session.get(Job, job_id)
    permanent = isinstance(exc, PermanentJobError) or (isinstance(exc, ffmpeg.FfmpegError) and exc.permanent)
    job.error = f"{type(exc).__name__}: {exc}"[:4000]
    if isinstance(exc, ffmpeg.FfmpegError) and exc.stderr_tail:
        job.stderr_tail = exc.stderr_tail[-ffmpeg.TAIL_BYTES:]
    if not permanent and job.attempts < job.max_attempts:
        base = current_app.config["MEDIA_RETRY_BASE_SECONDS"]
        delay = base * (2 ** (job.attempts - 1)) * (1 + random.random() * 0.2) if base else 0
        job.status, job.next_run_at, job.worker = JobStatus.QUEUED, utcnow() + timedelta(seconds=delay), None
        db.session.commit()
        enqueue(job, delay)
        return "retrying"
    job.status, job.finished_at = JobStatus.FAILED, utcnow()
    asset = job.asset
    asset.problems = [*(asset.problems or []), _problem(
        "job_failed", f"The {job.kind.value} step failed after {job.attempts} attempt(s): {exc}"[:1000],
        detail=(job.stderr_tail or "")[-1000:],
        hint="Check the file plays on a workstation; re-run with `filmfund media verify` or re-ingest it.")]
    if asset.can_move(AssetState.FAILED):
        asset.move(AssetState.FAILED, f"{job.kind.value} job failed")
    db.session.commit()
    return "failed"


def recover_jobs(*, at_start: bool = True) -> int:
    """Re-queue jobs whose worker died: a stale heartbeat, or a worker process on this host that
    is gone. At worker start also re-send queued jobs whose queue message may have been lost."""
    now = utcnow()
    stale_before = now - timedelta(seconds=current_app.config["MEDIA_STALE_SECONDS"])
    host = socket.gethostname()
    count = 0
    for job in db.session.scalars(sa.select(Job).where(Job.status == JobStatus.RUNNING)):
        dead = job.heartbeat_at is None or job.heartbeat_at < stale_before
        w_host, _, w_pid = (job.worker or "").rpartition(":")
        if not dead and w_host == host and w_pid.isdigit() and int(w_pid) != os.getpid():
            dead = not _pid_alive(int(w_pid))
        if not dead:
            continue
        note = f"worker {job.worker} stopped answering (last heartbeat {job.heartbeat_at}); re-queued"
        if job.attempts >= job.max_attempts:
            job.max_attempts = job.attempts + 1  # a dead worker is not the clip's fault: one more go
        job.status, job.next_run_at, job.worker, job.error = JobStatus.QUEUED, now, None, note
        count += 1
    db.session.commit()
    jobs = list(db.session.scalars(sa.select(Job).where(Job.status == JobStatus.QUEUED, Job.next_run_at <= now)))
    for job in jobs:
        if at_start or (job.error or "").startswith("worker "):
            enqueue(job)
    return count


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# --- verify and diagnose ---------------------------------------------------------------------

def _problem(code: str, message: str, *, at: float | None = None, source: str | None = None,
             detail: str | None = None, hint: str | None = None) -> dict[str, Any]:
    return {"code": code, "message": message, "at": round(at, 2) if at is not None else None,
            "at_timecode": _timecode(at) if at is not None else None, "source": source,
            "detail": detail, "hint": hint, "found_at": utcnow().isoformat()}


def _timecode(seconds: float) -> str:
    seconds = max(0.0, seconds)
    m, s = divmod(seconds, 60)
    h, m = divmod(int(m), 60)
    return f"{h:02d}:{m:02d}:{s:05.2f}"


@contextlib.contextmanager
def _local_sources(asset: Asset):
    """Local paths of the asset's sources in order (S3 objects are streamed to temp files)."""
    store = storage()
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(store.local_path(s.storage_key, work_dir())) for s in asset.sources]


def _verify(job: Job, beat: _Heartbeat) -> None:
    asset = job.asset
    if asset.state != AssetState.VERIFYING:
        asset.move(AssetState.VERIFYING, f"verify job {job.id}, attempt {job.attempts}")
    db.session.commit()
    problems: list[dict[str, Any]] = []
    notices: list[dict[str, Any]] = []  # worth knowing, not damage
    with _local_sources(asset) as paths:
        spec = ffmpeg.input_spec(paths)
        for source, path in zip(asset.sources, paths):
            size = Path(path).stat().st_size
            if Path(source.original_name).suffix.lower() in ffmpeg.M2TS_EXTENSIONS and size % ffmpeg.M2TS_PACKET:
                missing = ffmpeg.M2TS_PACKET - size % ffmpeg.M2TS_PACKET
                problems.append(_problem(
                    "truncated", f"{source.original_name} ends in the middle of a 192-byte camera packet: "
                    f"the file was cut short ({missing} bytes missing from its last packet, probably more after it).",
                    source=source.original_name, at=source.duration,
                    hint="Copy this file again from the card or another backup; the end of the take is lost in this copy."))
        try:
            info = ffmpeg.summarize(ffmpeg.probe(spec))
        except ffmpeg.FfmpegError as exc:
            problems.append(_problem("unreadable", f"ffprobe cannot read this clip: {exc}",
                                     detail=exc.stderr_tail[-1000:] or None,
                                     hint="The file is not a playable media file; copy it again from the source."))
            _settle_verify(asset, problems, rescue=None)
            return
        duration = info.duration or asset.duration
        beat.step = "decode pass"

        def on_progress(p: dict[str, str]) -> None:
            us = ffmpeg._float(p.get("out_time_us"))
            if us and duration:
                beat.progress = us / 1e6 / duration

        report = ffmpeg.decode_pass(spec, timeout=_timeout(duration, 5), has_video=info.kind != "audio",
                                    on_progress=on_progress)
        job = db.session.get(Job, job.id)
        job.stderr_tail = report.stderr_tail[-ffmpeg.TAIL_BYTES:]
        db.session.commit()
        mid_take = _starts_mid_take(report, info, duration)
        if mid_take:
            notices.append(_problem(
                "starts_mid_take", f"This file starts in the middle of a take: its first {mid_take} frames "
                "refer to pictures in the previous file, so they cannot be decoded alone. Nothing is damaged.",
                at=0.0, detail="; ".join(dict.fromkeys(i.message for i in report.issues))[:500],
                hint="Ingest it together with the file before it (the card root or the whole folder) "
                     "to get the take as one clip.") | {"severity": "info"})
        if report.errors and not mid_take:
            where = [i.at for i in report.issues if i.at is not None]
            span = ""
            if where:
                span = (f" around {_timecode(min(where))}" if max(where) - min(where) < 1
                        else f" between {_timecode(min(where))} and {_timecode(max(where))}")
            said = "; ".join(dict.fromkeys(i.message for i in report.issues))[:1500]
            problems.append(_problem(
                "decode_errors", f"The decoder reported {report.errors} error(s){span}: the picture or sound "
                f"is damaged there.", at=min(where) if where else None, detail=said,
                hint="Check that part of the clip on a workstation; copy the file again if a good copy exists."))
        if info.kind == "video" and info.fps and duration:
            expected = round(duration * info.fps)
            if report.frames < expected - max(2, int(expected * 0.01)) - mid_take:
                at = (report.frames / info.fps) if info.fps else None
                problems.append(_problem(
                    "missing_frames", f"Only {report.frames} of about {expected} frames could be decoded: "
                    f"{expected - report.frames} frames ({(expected - report.frames) / info.fps:.1f} s) are missing.",
                    at=at, hint="The file has a hole or was cut short; the rescue rendition (if any) shows what remains."))
        if not report.frames and info.kind == "video":
            problems.append(_problem("no_frames", "Not a single frame could be decoded.",
                                     hint="The file holds no usable picture; copy it again from the source."))
        rescue = None
        if problems and info.kind == "video" and current_app.config["MEDIA_RESCUE"] and report.frames:
            beat.step = "rescue rendition"
            rescue = _try_rescue(job, asset, spec, info)
    _settle_verify(asset, problems, rescue, notices)


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
        return _problem("rescue", f"A partial rescue rendition was made: {saved:.1f} s of the clip's "
                        f"{expected:.1f} s could be saved (edit proxy quality).",
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
    job = _new_job(asset, JobKind.TRANSCODE)
    db.session.commit()
    enqueue(job)


def reverify(asset: Asset) -> Job:
    """Queue a fresh verify (and, if it passes, a fresh transcode) of an asset."""
    if asset.state in (AssetState.VERIFYING, AssetState.TRANSCODING):
        raise ConflictError("This asset is being processed already.")
    asset.move(AssetState.VERIFYING, "re-verify requested")
    job = _new_job(asset, JobKind.VERIFY)
    db.session.commit()
    enqueue(job)
    return job


# --- transcode -------------------------------------------------------------------------------

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
                optional_problems.append(_problem(f"{kind.value}_failed", f"The {kind.value} could not be made: {exc}",
                                                  detail=exc.stderr_tail[-1000:] or None))
    asset = db.session.get(Asset, asset.id)
    asset.problems = [p for p in (asset.problems or []) if not p["code"].endswith("_failed")] + optional_problems
    asset.move(AssetState.READY, "renditions made: " + ", ".join(r.kind.value for r in asset.renditions))
    db.session.commit()


def _render(job: Job, asset: Asset, kind: RenditionKind, spec: str, info: ffmpeg.MediaInfo,
            profile: dict[str, Any], beat: _Heartbeat, n: int, total: int) -> None:
    content_type = CONTENT_TYPES[kind]
    out = work_dir() / f"job-{job.id}-{kind.value}{EXTENSIONS[content_type]}"
    if kind in (RenditionKind.PROXY, RenditionKind.WEB):
        argv = ffmpeg.video_rendition_argv(spec, str(out), info, profile, recorded_at=_iso(asset.recorded_at))
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
    result = ffmpeg.run(argv, timeout=_timeout(duration), on_progress=on_progress)
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


# --- fixity ----------------------------------------------------------------------------------

@dataclass
class FixityResult:
    asset: Asset
    ok: bool
    failures: list[str]


def check_fixity(public_ids: list[str] | None = None) -> list[FixityResult]:
    """Re-hash every stored object of these assets (all when None) against its recorded SHA-256."""
    query = sa.select(Asset).order_by(Asset.id)
    if public_ids:
        query = query.where(Asset.public_id.in_(public_ids))
        found = {a.public_id for a in db.session.scalars(query)}
        missing = [p for p in public_ids if p not in found]
        if missing:
            raise NotFoundError(f"No asset with id {', '.join(missing)}.")
    store = storage()
    results = []
    for asset in db.session.scalars(query):
        failures = []
        now = utcnow()
        items: list[tuple[Any, str, str, str]] = [(s, s.storage_key, s.sha256, s.original_name) for s in asset.sources]
        items += [(r, r.storage_key, r.sha256, f"{r.kind.value} rendition") for r in asset.renditions]
        for row, key, expected, label in items:
            try:
                actual, _size = store.sha256_of(key)
            except Exception as exc:  # noqa: BLE001 - a missing object is a fixity failure, reported
                failures.append(f"{label}: cannot read stored object {key} ({type(exc).__name__})")
                ok = False
            else:
                ok = actual == expected
                if not ok:
                    failures.append(f"{label}: stored object {key} has SHA-256 {actual}, expected {expected}")
            if isinstance(row, Source):
                row.fixity_ok, row.last_fixity_at = ok, now
        asset.fixity_ok, asset.last_fixity_at = not failures, now
        kept = [p for p in (asset.problems or []) if p.get("code") != "fixity"]
        if failures:
            kept.append(_problem("fixity", "A stored copy no longer matches its checksum: " + "; ".join(failures)[:1500],
                                 hint="Restore the object from a backup or re-ingest the original file."))
        asset.problems = kept
        results.append(FixityResult(asset, not failures, failures))
    db.session.commit()
    return results


# --- the footage board and the API -----------------------------------------------------------

def _like(term: str) -> str:
    return "%" + term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def find_assets(*, state: str | None = None, day: str | None = None, camera: str | None = None,
                q: str | None = None, limit: int = 500) -> list[Asset]:
    query = sa.select(Asset)
    if state:
        try:
            query = query.where(Asset.state == AssetState(state))
        except ValueError:
            raise ValidationError(f"Unknown state {state!r}.", code="invalid_state") from None
    if day:
        try:
            start = datetime.combine(date.fromisoformat(day), datetime.min.time(), tzinfo=timezone.utc)
        except ValueError:
            raise ValidationError("A day is written YYYY-MM-DD.", code="invalid_day") from None
        when = sa.func.coalesce(Asset.recorded_at, Asset.created_at)
        query = query.where(when >= start, when < start + timedelta(days=1))
    if camera:
        query = query.where(Asset.camera == camera)
    if q:
        pattern = _like(q.strip()[:200])
        query = query.where(sa.or_(Asset.title.ilike(pattern, escape="\\"), Asset.notes.ilike(pattern, escape="\\")))
    query = query.order_by(sa.func.coalesce(Asset.recorded_at, Asset.created_at).desc(), Asset.id.desc())
    return list(db.session.scalars(query.limit(max(1, min(limit, 1000)))))


def cameras() -> list[str]:
    return [c for c in db.session.scalars(sa.select(Asset.camera).where(Asset.camera.is_not(None)).distinct()
                                          .order_by(Asset.camera))]


def get_asset(public_id: str) -> Asset:
    asset = db.session.scalar(sa.select(Asset).where(Asset.public_id == public_id))
    if asset is None:
        raise NotFoundError("No such asset.")
    return asset


def active_jobs(assets: list[Asset]) -> dict[int, Job]:
    ids = [a.id for a in assets]
    if not ids:
        return {}
    rows = db.session.scalars(sa.select(Job).where(Job.asset_id.in_(ids),
                                                   Job.status.in_([JobStatus.QUEUED, JobStatus.RUNNING]))
                              .order_by(Job.id))
    return {j.asset_id: j for j in rows}


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(timezone.utc).isoformat() if value else None


def asset_dict(asset: Asset, job: Job | None = None) -> dict[str, Any]:
    """An asset as the API shows it (contract: id, title, kind, state, sha256, duration,
    recorded_at, sources[], renditions[], problems[]; the rest is added)."""
    return {
        "id": asset.public_id,
        "title": asset.title,
        "kind": asset.kind.value,
        "state": asset.state.value,
        "sha256": asset.sha256,
        "duration": round(asset.duration, 3) if asset.duration is not None else None,
        "recorded_at": _iso(asset.recorded_at),
        "sources": [{"position": s.position, "name": s.original_name, "sha256": s.sha256, "size": s.size,
                     "duration": s.duration, "fixity_ok": s.fixity_ok} for s in asset.sources],
        "renditions": [{"kind": r.kind.value, "content_type": r.content_type, "sha256": r.sha256, "size": r.size,
                        "width": r.width, "height": r.height, "duration": r.duration,
                        "created_at": _iso(r.created_at)} for r in sorted(asset.renditions, key=lambda r: r.kind.value)],
        "problems": list(asset.problems or []),
        "camera": asset.camera,
        "size": asset.size,
        "interlaced": asset.interlaced,
        "created_at": _iso(asset.created_at),
        "state_changed_at": _iso(asset.state_changed_at),
        "published_to": [p.reward_key for p in asset.publications],
        "job": None if job is None else {"kind": job.kind.value, "status": job.status.value,
                                         "progress": job.progress, "step": job.step, "attempts": job.attempts},
    }


def history(asset: Asset) -> list[AssetEvent]:
    return list(db.session.scalars(sa.select(AssetEvent).where(AssetEvent.asset_id == asset.id)
                                   .order_by(AssetEvent.at, AssetEvent.id)))


def update_notes(asset: Asset, title: str | None, notes: str | None) -> None:
    if title is not None:
        title = title.strip()
        if not title:
            raise ValidationError("A title cannot be empty.", code="invalid_title")
        asset.title = title[:300]
    if notes is not None:
        asset.notes = notes[:10000]
    db.session.commit()


# --- publishing and the donor library --------------------------------------------------------

def _reward_models():
    try:
        from filmfund.rewards import models as rm
    except ImportError:
        return None
    return rm if hasattr(rm, "Reward") and hasattr(rm, "Entitlement") else None


def publish(asset: Asset, reward_key: Any, *, rendition: str | None = None, user=None) -> tuple[Publication, bool]:
    """Make an asset (or one rendition of it) donor-only content of a reward."""
    if not isinstance(reward_key, str) or not reward_key.strip() or len(reward_key) > 64:
        raise ValidationError("Give the reward's key, e.g. {\"reward\": \"digital-download\"}.", code="invalid_reward")
    reward_key = reward_key.strip()
    rm = _reward_models()
    if rm is not None and db.session.scalar(sa.select(sa.func.count()).select_from(rm.Reward)
                                            .where(rm.Reward.key == reward_key)) == 0:
        raise ValidationError(f"The campaign has no reward with key {reward_key!r}.", code="unknown_reward")
    if asset.state != AssetState.READY:
        raise ConflictError(f"Only a ready asset can be published (this one is {asset.state.value}).",
                            code="not_ready")
    kind = None
    if rendition:
        try:
            kind = RenditionKind(rendition)
        except ValueError:
            raise ValidationError(f"Unknown rendition {rendition!r}.", code="invalid_rendition") from None
        if asset.rendition(kind) is None:
            raise ValidationError(f"This asset has no {kind.value} rendition.", code="invalid_rendition")
    existing = next((p for p in asset.publications if p.reward_key == reward_key), None)
    if existing is not None:
        if kind is not None and existing.rendition != kind:
            existing.rendition = kind
            db.session.commit()
        return existing, False
    pub = Publication(asset=asset, reward_key=reward_key, rendition=kind, published_by=getattr(user, "id", None))
    db.session.add(pub)
    db.session.commit()
    return pub, True


def _active_reward_keys(user) -> set[str]:
    rm = _reward_models()
    if rm is None or user is None:
        return set()
    active = [rm.EntitlementStatus.GRANTED, rm.EntitlementStatus.FULFILLED]
    return set(db.session.scalars(
        sa.select(rm.Reward.key).join(rm.Entitlement, rm.Entitlement.reward_id == rm.Reward.id)
        .where(rm.Entitlement.user_id == user.id, rm.Entitlement.status.in_(active))))


@dataclass
class Download:
    asset: Asset
    publication: Publication
    storage_key: str
    filename: str
    content_type: str
    size: int


def _download_for(pub: Publication) -> Download | None:
    asset = pub.asset
    if asset.state != AssetState.READY:
        return None
    kind = pub.rendition or (RenditionKind.WEB if asset.kind == AssetKind.VIDEO else None)
    if kind is not None:
        r = asset.rendition(kind)
        if r is None:
            return None
        ext = EXTENSIONS.get(r.content_type, "")
        return Download(asset, pub, r.storage_key, f"{asset.title}{ext}", r.content_type, r.size)
    src = asset.sources[0]
    import mimetypes

    ctype = mimetypes.guess_type(src.original_name)[0] or "application/octet-stream"
    return Download(asset, pub, src.storage_key, f"{asset.title}{Path(src.original_name).suffix.lower()}", ctype, src.size)


def entitled_download(user, asset_public_id: str) -> Download | None:
    """What this user may download of this asset right now (None: not entitled)."""
    keys = _active_reward_keys(user)
    if not keys:
        return None
    pubs = db.session.scalars(sa.select(Publication).join(Asset).where(
        Asset.public_id == asset_public_id, Publication.reward_key.in_(keys)).order_by(Publication.id))
    for pub in pubs:
        dl = _download_for(pub)
        if dl is not None:
            return dl
    return None


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="filmfund.media.download")


def link_ttl() -> int:
    return min(int(current_app.config["MEDIA_LINK_TTL"]), 300)


def download_link(user, dl: Download) -> tuple[str, datetime]:
    """A link that expires: a presigned GET on S3, else a signed token bound to this user."""
    ttl = link_ttl()
    expires = utcnow() + timedelta(seconds=ttl)
    url = storage().presigned_get(dl.storage_key, ttl, dl.filename, dl.content_type)
    if url is None:
        token = _serializer().dumps({"u": user.public_id, "a": dl.asset.public_id, "k": dl.storage_key})
        url = external_url("library.download", token=token)
    return url, expires


def resolve_download_token(token: str, session_user=None) -> tuple[Any, Download]:
    """The user and file a download token names, if it is genuine, unexpired, used by the user
    it was made for, and that user is still entitled. Every refusal is a ForbiddenError."""
    from filmfund.auth.models import User

    try:
        data = _serializer().loads(token, max_age=link_ttl())
    except SignatureExpired:
        raise ForbiddenError("This download link has expired; open your library for a new one.",
                             code="link_expired") from None
    except BadSignature:
        raise ForbiddenError("This download link is not valid.", code="link_invalid") from None
    user = db.session.scalar(sa.select(User).where(User.public_id == data.get("u")))
    if user is None:
        raise ForbiddenError("This download link is not valid.", code="link_invalid")
    if session_user is not None and getattr(session_user, "is_authenticated", False) and session_user.id != user.id:
        raise ForbiddenError("This download link was made for another account.", code="link_other_user")
    dl = entitled_download(user, data.get("a", ""))
    if dl is None or dl.storage_key != data.get("k"):
        raise ForbiddenError("This download is no longer available to this account.", code="not_entitled")
    return user, dl


def library_for(user) -> list[dict[str, Any]]:
    """The donor-only media this user holds an active entitlement for, each with a fresh link."""
    keys = _active_reward_keys(user)
    if not keys:
        return []
    items, seen = [], set()
    pubs = db.session.scalars(sa.select(Publication).join(Asset).where(Publication.reward_key.in_(keys))
                              .order_by(Asset.title, Publication.id))
    for pub in pubs:
        if pub.asset_id in seen:
            continue
        dl = _download_for(pub)
        if dl is None:
            continue
        seen.add(pub.asset_id)
        url, expires = download_link(user, dl)
        items.append({"asset_id": pub.asset.public_id, "title": pub.asset.title, "kind": pub.asset.kind.value,
                      "reward": pub.reward_key, "download_url": url, "expires_at": _iso(expires),
                      "page_url": external_url("library.item", asset_id=pub.asset.public_id)})
    return items


def rendition_link(asset: Asset, kind: str) -> tuple[Rendition, str | None]:
    """A rendition for a producer's page: a presigned URL on S3, or None (the app serves it)."""
    try:
        rk = RenditionKind(kind)
    except ValueError:
        raise NotFoundError("No such rendition.") from None
    r = asset.rendition(rk)
    if r is None:
        raise NotFoundError("This asset has no such rendition yet.")
    url = storage().presigned_get(r.storage_key, link_ttl(), f"{asset.title}{EXTENSIONS.get(r.content_type, '')}",
                                  r.content_type)
    return r, url
