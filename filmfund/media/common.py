"""What every use case of the footage pipeline shares: the storage and whether anything still
refers to a stored object, encoding profiles, the work directory, ffmpeg timeouts, the rendition
kinds an asset needs, and the shape of a problem found in a clip."""
from __future__ import annotations

import contextlib
import logging
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from blinker import Namespace
from flask import current_app
from flask_babel import gettext as _

from filmfund.db import on_commit, utcnow
from filmfund.errors import DomainError, NotFoundError, ValidationError
from filmfund.extensions import db
from filmfund.media import avchd, ffmpeg, owners
from filmfund.media.models import Asset, AssetKind, Caption, Rendition, RenditionKind, Sidecar, Source, Stream
from filmfund.media.storage import Storage, given_up, open_storage
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


log = logging.getLogger(__name__)


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


# --- stored objects: does anything still refer to one? ----------------------------------------

#: Asked whether a stored object is still referred to by a component above media, which keeps
#: its own files in the same content-addressed storage (sender: the storage key). A receiver
#: answers True when one of its rows refers to that key; connected at the component's init_app
#: (a receiver must be a module-level function: blinker keeps a weak reference).
stored_key_in_use = Namespace().signal("stored-key-in-use")


def keys_in_use(keys) -> set[str]:
    """Those of these storage keys that something still refers to. Storage is content-addressed:
    one object stands for every copy of the same bytes under the same extension, whoever stored
    them (a poster's bytes uploaded again as a still are a rendition's object and an original's at
    once; a clip's stream segment may be another's). So an object is deleted only when no
    original (a source, a card file), rendition, copy with captions burned in or stream segment
    refers to it, nor any component above (`stored_key_in_use`). The one home of that question:
    whatever deletes a stored object asks it, on a flushed session."""
    keys = {k for k in keys if k}
    if not keys:
        return set()
    used: set[str] = set()
    for column in (Source.storage_key, Sidecar.storage_key, Rendition.storage_key, Caption.burned_key):
        for chunk in _chunks(sorted(keys), 500):
            used |= set(db.session.scalars(sa.select(column).where(column.in_(chunk)).distinct()))
    for index in db.session.scalars(sa.select(Stream.index).where(Stream.index.is_not(None))):
        used |= keys & {s.get("key") for s in (index or {}).get("segments", {}).values()}
    for key in keys - used:
        if any(answer for _receiver, answer in stored_key_in_use.send(key)):
            used.add(key)
    return used


def _chunks(items: list, n: int):
    for i in range(0, len(items), n):
        yield items[i:i + n]


def drop_unreferenced(keys) -> list[str]:
    """Delete now those of these stored objects that nothing refers to any more (keys_in_use); the
    keys deleted. For work that committed what stopped referring to them (a job's step), or for
    an object stored a moment ago that nothing will refer to. A use case whose caller commits asks
    `drop_unreferenced_on_commit`. A delete that fails is logged, not raised: what it leaves
    behind is only space, never a broken link."""
    keys = [k for k in dict.fromkeys(keys) if k]
    if not keys:
        return []
    db.session.flush()
    unused = [k for k in keys if k not in keys_in_use(keys)]
    return _delete(storage(), unused)


def drop_unreferenced_on_commit(keys) -> None:
    """Once the caller commits, delete those of these stored objects that nothing refers to any
    more (asked now, on the flushed session that no longer refers to them). A rollback keeps them,
    as its rows still refer to them: a burned copy is never deleted under captions that stay."""
    keys = [k for k in dict.fromkeys(keys) if k]
    if not keys:
        return
    db.session.flush()
    unused = [k for k in keys if k not in keys_in_use(keys)]
    if unused:
        store = storage()
        on_commit(db.session, lambda: _delete(store, unused))


def _delete(store: Storage, keys: list[str]) -> list[str]:
    deleted = []
    for key in keys:
        try:
            store.delete(key)
            deleted.append(key)
        except Exception:  # noqa: BLE001 - the storage may be what failed; the work it followed is done
            log.warning("could not delete %s, which nothing refers to any more", key, exc_info=True)
    return deleted


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
    if size == 0 and not isinstance(size, bool):  # what the CLI says of an empty file too
        raise ValidationError(_("This file is empty (0 bytes): there is nothing in it to upload."), code="empty_file")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ValidationError(_("Give the file's size in bytes."), code="invalid_size")
    limit = current_app.config["MAX_UPLOAD_BYTES"]
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
    """Remove partial files of resumable uploads given up: no byte for `older_than` seconds
    (storage.given_up, the rule resumable.py accepts a chunk by)."""
    removed = 0
    for path in partials_dir().iterdir():
        with contextlib.suppress(FileNotFoundError):
            if path.is_file() and given_up(path.stat().st_mtime, older_than):
                path.unlink()
                removed += 1
    return removed


def _timeout(duration: float | None, factor: float = 20) -> float:
    return ffmpeg.timeout_for(duration, current_app.config["MEDIA_FFMPEG_TIMEOUT"], factor)


def worker_name() -> str:
    """This process as the owner of the work it claims (`host:pid`: owners.me)."""
    return owners.me()



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
