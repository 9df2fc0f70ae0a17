"""What every use case of the footage pipeline shares: the storage,
encoding profiles, the work directory, ffmpeg timeouts, the rendition kinds an asset needs, and the
shape of a problem found in a clip."""
from __future__ import annotations

import contextlib
import os
import socket
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import current_app
from flask_babel import gettext as _

from filmfund.db import utcnow
from filmfund.errors import DomainError, NotFoundError, ValidationError
from filmfund.extensions import db
from filmfund.media import avchd, ffmpeg
from filmfund.media.models import Asset, AssetKind, RenditionKind
from filmfund.media.storage import Storage, open_storage
from filmfund.typed import one_line

# Renditions an asset needs to be ready; the optional ones are best effort: their failure is a
# notice on the asset (and a retry on its page), never a failed asset. The donors' web rendition
# is made at first publish (renditions.wanted_kinds), or at ingest if its profile says so.
REQUIRED = {AssetKind.VIDEO: [RenditionKind.PROXY],
            AssetKind.IMAGE: [RenditionKind.IMAGE],
            AssetKind.AUDIO: []}
OPTIONAL = {AssetKind.VIDEO: [RenditionKind.POSTER, RenditionKind.STRIP], AssetKind.IMAGE: [RenditionKind.POSTER],
            AssetKind.AUDIO: []}
CONTENT_TYPES = {RenditionKind.PROXY: "video/mp4", RenditionKind.WEB: "video/mp4", RenditionKind.RESCUE: "video/mp4",
                 RenditionKind.POSTER: "image/jpeg", RenditionKind.STRIP: "image/jpeg",
                 RenditionKind.IMAGE: "image/jpeg"}
EXTENSIONS = {"video/mp4": ".mp4", "image/jpeg": ".jpg"}


class PermanentJobError(Exception):
    """Running the job again cannot help (bad input); the asset fails with this message."""


# --- settings, storage, profiles ----------------------------------------------------------

def storage() -> Storage:
    app = current_app
    cache = app.extensions.setdefault("filmfund.media.storage", {})
    key = (app.config["STORAGE_URL"], app.config.get("S3_ENDPOINT_URL"))
    if key not in cache:
        cache[key] = open_storage(app.config["STORAGE_URL"], app.config.get("S3_ENDPOINT_URL"),
                                  app.config["MEDIA_S3_PART_SIZE"])
    return cache[key]


def profiles() -> dict[str, dict[str, Any]]:
    return ffmpeg.read_profiles(current_app.config["MEDIA_PROFILES_FILE"],
                                current_app.config.get("MEDIA_PROFILE_OVERRIDES"))


def work_dir() -> Path:
    path = Path(current_app.config["INSTANCE_DIR"]) / "media-work"
    path.mkdir(parents=True, exist_ok=True)
    return path


def partials_dir() -> Path:
    """Where resumable uploads keep their bytes until complete (filmfund/media/resumable.py)."""
    path = work_dir() / "uploads"
    path.mkdir(parents=True, exist_ok=True)
    return path


def upload_name(filename: Any) -> str:
    """The name a browser gave an uploaded file, as the producer sees it ("访谈第三天.MTS" stays
    that, where werkzeug's secure_filename left "MTS") and safe as one path component (a bag
    of the card writes it as a file name): its last part only (a browser on Windows may send
    C:\\clips\\...), then the one-line rule of typed text (filmfund/typed.py), no leading dots
    (no hidden file, no ".."), at most 255 characters. "" when nothing is left."""
    if not isinstance(filename, str):
        return ""
    return one_line(filename.replace("\\", "/").rsplit("/", 1)[-1]).lstrip(". ")[:255]


def checked_upload(filename: Any, size: Any) -> str:
    """A browser upload's announced name and size, checked before a byte is taken (a footage
    file this pipeline reads, a size in bytes within FILMFUND_MAX_UPLOAD_BYTES): the name made
    safe to keep (upload_name). Resumable and direct-to-S3 uploads ask the same."""
    safe_name = upload_name(filename)
    if Path(safe_name).suffix.lower() not in avchd.MEDIA_EXTENSIONS:
        raise ValidationError(_("Not a video, image or audio file this pipeline takes."), code="unsupported_file")
    if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
        raise ValidationError(_("Give the file's size in bytes."), code="invalid_size")
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    if size > limit:
        raise DomainError(_("The file is larger than %(n)s bytes.", n=limit), code="too_large", status=413)
    return safe_name


def named_assets(ids: list[str]) -> list[Asset]:
    """The assets named on a command line, in the order named (each once); an unknown id is
    refused by name before anything is written."""
    found = {a.public_id: a for a in db.session.scalars(sa.select(Asset).where(Asset.public_id.in_(ids)))}
    missing = [i for i in ids if i not in found]
    if missing:
        raise NotFoundError(f"No asset {', '.join(missing)}.")
    return [found[i] for i in dict.fromkeys(ids)]


def sweep_partials(older_than: float) -> int:
    """Remove partial files of resumable uploads untouched for `older_than` seconds (given up)."""
    cutoff = time.time() - older_than
    removed = 0
    for path in partials_dir().iterdir():
        with contextlib.suppress(FileNotFoundError):
            if path.is_file() and path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
    return removed


def _timeout(duration: float | None, factor: float = 20) -> float:
    return ffmpeg.timeout_for(duration, current_app.config["MEDIA_FFMPEG_TIMEOUT"], factor)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"



# --- problems, timecodes, local copies -------------------------------------------------------

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


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(timezone.utc).isoformat() if value else None
