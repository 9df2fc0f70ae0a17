"""Fixity with consequences: re-hash stored objects against the SHA-256 recorded at ingest, keep
a second copy of every original (FILMFUND_REPLICA_URL), and repair what fails.

- A failed check puts the asset in **alert** (`fixity_ok` false, a problem of code `fixity`):
  the board and the producers' dashboard show it, no new donor link is made to it and it
  cannot be published, until it is repaired.
- Repair: a damaged original is rewritten from the second copy when that copy still has the
  recorded SHA-256 (during the check itself), or from an intact copy ingested again (the
  re-ingest replaces the damaged object: `replace_damaged`). A damaged second copy is rewritten
  from an intact first one. A damaged rendition is dropped, and remade from the intact originals;
  so is a streaming package with a damaged segment (failed, queued again). A damaged copy with
  captions burned in is dropped and its burn marked failed: the producer burns it again.
- `sweep_incoming`: the temporary uploads a killed process left behind (periodic task).
"""
from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import current_app

from filmfund.db import utcnow
from filmfund.errors import NotFoundError
from filmfund.extensions import db
from filmfund.media import early, owners, streaming
from filmfund.media.common import _iso, _problem, drop_unreferenced, storage, sweep_partials, work_dir
from filmfund.media.models import Asset, AssetEvent, Rendition, Sidecar, Source
from filmfund.media.renditions import make_donor_renditions
from filmfund.media.storage import INCOMING, Storage, open_storage

log = logging.getLogger(__name__)

FIXITY = "fixity"          # problem code of the alert
REPLICA = "replica"        # problem code: the second copy could not be written (a warning)
REPAIRED = "fixity_repaired"


def replica() -> Storage | None:
    """The second storage that FILMFUND_REPLICA_URL names, or None (one copy of each original)."""
    app = current_app
    url = app.config.get("REPLICA_URL")
    if not url:
        return None
    # Another S3-compatible service may hold the second copy; by default the same endpoint.
    endpoint = app.config.get("REPLICA_S3_ENDPOINT_URL") or app.config.get("S3_ENDPOINT_URL")
    cache = app.extensions.setdefault("filmfund.media.storage", {})
    key = ("replica", url, endpoint)
    if key not in cache:
        cache[key] = open_storage(url, endpoint, app.config["MEDIA_S3_PART_SIZE"], setting="FILMFUND_REPLICA_URL")
    return cache[key]


class _Unreachable(Storage):
    """The second storage when it cannot even be opened (a file:// folder that is a file, a
    bad URL): every use fails, as an unreachable server's would, and is reported as such."""

    def __init__(self, url: str, reason: str):
        self.url, self.reason = url, reason

    def _fail(self, *_args, **_kwargs):
        raise OSError(f"the second storage cannot be opened: {self.reason}")

    put_stream = exists = size = open = delete = keys = sweep_incoming = sha256_of = restore = _fail


def _second() -> Storage | None:
    try:
        return replica()
    except Exception as exc:  # noqa: BLE001 - reported per object by the callers, never a crash
        log.error("FILMFUND_REPLICA_URL cannot be opened: %s", exc)
        return _Unreachable(str(current_app.config.get("REPLICA_URL")), f"{type(exc).__name__}: {exc}")


def in_alert(asset: Asset) -> bool:
    return asset.fixity_ok is False


# --- at ingest -------------------------------------------------------------------------------

def replace_damaged(sha256: str) -> bool:
    """Asked by storage when content being stored is already there: replace the stored object
    if a fixity check found it damaged (the new bytes hash to the same key, so they are the
    recorded content): an original marked damaged, or a card structure file of an asset in
    alert (replacing an intact one with the same verified bytes changes nothing)."""
    if db.session.scalar(sa.select(sa.func.count()).select_from(Source)
                         .where(Source.sha256 == sha256, Source.fixity_ok.is_(False))):
        return True
    return bool(db.session.scalar(sa.select(sa.func.count()).select_from(Sidecar).join(Asset)
                                  .where(Sidecar.sha256 == sha256, Asset.fixity_ok.is_(False))))


def _originals(asset: Asset) -> list[tuple[str, str, str]]:
    """(name, storage key, SHA-256) of every original kept for an asset: its source files and
    the card structure files (playlists, clip info) kept with it."""
    return ([(s.original_name, s.storage_key, s.sha256) for s in asset.sources]
            + [(f"card file {c.name}", c.storage_key, c.sha256) for c in asset.sidecars])


def reingest_sidecars(asset: Asset, paths) -> None:
    """A card ingested again for an asset in alert: its structure files replace damaged ones."""
    if not in_alert(asset):
        return
    store = storage()
    for path in paths:
        store.put_file(path, path.suffix, replace=replace_damaged)


def where_kept(source: Source) -> dict[str, str | None]:
    """Where one of an asset's files came from and where it is kept, as the crew looks for it:
    its path when ingested (a card's folder, a loose file's; None for an upload through the page),
    the stored original's path or s3:// address, and its second copy's (None without one)."""
    second = replica()
    return {"found_at": source.original_path, "stored_at": storage().location(source.storage_key),
            "second_copy_at": second.location(source.storage_key) if second is not None else None}


def replicate(asset: Asset) -> list[str]:
    """Write the second copy of each original of a newly ingested asset (no-op without a
    replica). A failure is recorded on the asset as a warning (the caller commits), never fails
    the ingest: the next fixity check writes what is missing."""
    second = _second()
    if second is None:
        return []
    store, failed = storage(), []
    for name, key, sha in _originals(asset):
        try:
            if not second.exists(key):
                with contextlib.closing(store.open(key)) as body:
                    second.restore(key, body, sha)
        except Exception as exc:  # noqa: BLE001 - the second storage being down must not lose the ingest
            log.warning("second copy of %s not written: %s", key, exc)
            failed.append(f"{name}: {type(exc).__name__}: {exc}"[:300])
    if failed:
        asset.problems = [*(asset.problems or []), _problem(
            REPLICA, "The second copy could not be written: " + "; ".join(failed)[:1000],
            hint="The next fixity check (nightly, or `filmfund media verify`) writes it.") | {"severity": "warning"}]
    return failed


def after_reingest(asset: Asset, replaced: bool) -> str:
    """An intact copy of a known asset was ingested again: if it replaced a damaged object,
    re-check the asset (which ends its alert) and say so."""
    if not replaced and not in_alert(asset):
        return "already ingested (same bytes)"
    [result] = check_fixity([asset.public_id])
    if result.ok:
        return "already ingested: this intact copy repaired the damaged stored original"
    return "already ingested; the asset is still in fixity alert: " + "; ".join(result.failures)[:300]


# --- the check -------------------------------------------------------------------------------

@dataclass
class FixityResult:
    asset: Asset
    ok: bool                                           # every object intact now (after repairs)
    failures: list[str]                                # damage that is not repaired: the alert
    repaired: list[str] = field(default_factory=list)  # what the check repaired
    # The second copy is damaged, lost or unreachable and could not be rewritten, while the first
    # is intact: a warning (and a non-zero `media verify`), not an alert: donors lose nothing.
    second_copy: list[str] = field(default_factory=list)


def _digest(store: Storage, key: str) -> str | None:
    """The object's SHA-256, or None if it cannot be read (missing, unreachable)."""
    try:
        return store.sha256_of(key)[0]
    except Exception as exc:  # noqa: BLE001 - unreadable is a fixity failure, reported by the caller
        log.warning("fixity: cannot read %s from %s: %s", key, getattr(store, "url", store), exc)
        return None


def _missing(store: Storage, key: str) -> bool:
    """Gone from the storage (deleted, never written), rather than there and changed: the crew
    looks for a deleted file, not for a bad disk. Unreachable storage is not said to be missing."""
    try:
        return not store.exists(key)
    except Exception:  # noqa: BLE001 - cannot tell: the caller says "does not match"
        return False


def _copy(src: Storage, dst: Storage, key: str, sha256: str) -> str | None:
    """Copy one object between the storages: None when done, otherwise why not (for the report)."""
    try:
        with contextlib.closing(src.open(key)) as body:
            dst.restore(key, body, sha256)
        return None
    except Exception as exc:  # noqa: BLE001 - a failed repair leaves the failure standing
        log.warning("fixity: repair of %s failed: %s", key, exc)
        return str(exc) or type(exc).__name__


def _check_original(name: str, key: str, sha: str, store: Storage, second: Storage | None, repair: bool,
                    failures: list[str], repaired: list[str], second_copy: list[str]) -> bool:
    """Check both copies of one original; True when the first (the one used) is intact."""
    first_ok = _digest(store, key) == sha
    second_ok = None if second is None else _digest(second, key) == sha
    why = None  # why a repair failed, so the producer reads the cause and not only the symptom
    if not first_ok and second_ok and repair:
        why = _copy(second, store, key, sha)
        if why is None:
            repaired.append(f"{name}: the stored original was damaged or missing and was rewritten from the second copy")
            first_ok = True
    if first_ok and second_ok is False and repair:
        why = _copy(store, second, key, sha)
        if why is None:
            repaired.append(f"{name}: the second copy was damaged or missing and was rewritten from the first")
            second_ok = True
    if not first_ok:
        failures.append(f"{name}: the stored original ({key}) "
                        + ("is missing" if _missing(store, key) else f"does not match its SHA-256 {sha}")
                        + ("" if second is None else ", nor does the second copy" if second_ok is False else ""))
    elif second_ok is False:
        second_copy.append(f"{name}: the second copy ({key}) is damaged, missing or unreachable and could not "
                           "be rewritten" + (f": {why}" if why else ""))
    return first_ok


def check_fixity(public_ids: list[str] | None = None, *, repair: bool = True) -> list[FixityResult]:
    """Re-hash every stored object of these assets (all when None) against its recorded SHA-256,
    in both storages; repair what an intact copy can repair; put the rest in alert."""
    query = sa.select(Asset).order_by(Asset.id)
    if public_ids:
        query = query.where(Asset.public_id.in_(public_ids))
        found = {a.public_id for a in db.session.scalars(query)}
        missing = [p for p in public_ids if p not in found]
        if missing:
            raise NotFoundError(f"No asset with id {', '.join(missing)}.")
    store, second = storage(), _second()
    results = []
    for asset_id in list(db.session.scalars(query.with_only_columns(Asset.id))):
        asset = db.session.get(Asset, asset_id)
        results.append(_check_asset(asset, store, second, repair))
        db.session.commit()  # one asset at a time: a long run keeps what it found
    return results


def _check_asset(asset: Asset, store: Storage, second: Storage | None, repair: bool) -> FixityResult:
    failures: list[str] = []
    repaired: list[str] = []
    second_copy: list[str] = []
    now = utcnow()
    sources_ok = True
    for source in asset.sources:
        ok = _check_original(source.original_name, source.storage_key, source.sha256, store, second, repair,
                             failures, repaired, second_copy)
        source.fixity_ok, source.last_fixity_at = ok, now
        sources_ok = sources_ok and ok
    for side in asset.sidecars:  # the card's playlists and clip info, kept with the take
        _check_original(f"card file {side.name}", side.storage_key, side.sha256, store, second, repair,
                        failures, repaired, second_copy)
    remake = False
    for rendition in list(asset.renditions):
        if _digest(store, rendition.storage_key) == rendition.sha256:
            continue
        if repair and sources_ok:
            # A rendition is made again from intact originals: drop the damaged one (never
            # served again), and queue the transcode that remakes it.
            repaired.append(f"{rendition.kind.value} rendition: damaged, dropped and queued to be made again")
            _drop_rendition(asset, rendition)
            remake = True
        else:
            failures.append(f"{rendition.kind.value} rendition: the stored object ({rendition.storage_key}) does "
                            f"not match its SHA-256")
    for side in asset.sidecars:  # the card's playlist and clip info, kept with the asset
        if _digest(store, side.storage_key) != side.sha256:
            failures.append(f"card file {side.name}: the stored object ({side.storage_key}) does not match its SHA-256")
    _check_burned(asset, store, repair, failures, repaired)
    remake = _check_stream(asset, store, repair and sources_ok, failures, repaired) or remake
    was_alert = in_alert(asset)
    asset.fixity_ok, asset.last_fixity_at = not failures, now
    kept = [p for p in (asset.problems or []) if p.get("code") not in (FIXITY, REPAIRED, REPLICA)]
    if failures:
        kept.append(_problem(FIXITY, "Fixity alert: a stored copy no longer matches its checksum. "
                             + "; ".join(failures)[:1500],
                             hint="Ingest an intact copy of the original again (it replaces the damaged one), "
                                  "or restore it from a backup; no new donor link is made meanwhile.")
                    | {"severity": "alert"})
    if repaired:
        kept.append(_problem(REPAIRED, "Repaired by the fixity check: " + "; ".join(repaired)[:1500])
                    | {"severity": "info"})
    if second_copy:
        kept.append(_problem(REPLICA, "The second copy is not intact: " + "; ".join(second_copy)[:1500],
                             hint="Check the second storage (FILMFUND_REPLICA_URL); the next check rewrites it "
                                  "from the intact first copy.") | {"severity": "warning"})
    asset.problems = kept
    if failures and not was_alert:
        _note(asset, "fixity alert: " + "; ".join(failures))
    elif was_alert and not failures:
        _note(asset, "fixity alert ended: every stored copy matches its checksum"
              + (" (" + "; ".join(repaired) + ")" if repaired else ""))
    elif repaired:
        _note(asset, "fixity repair: " + "; ".join(repaired))
    if remake:
        _queue_remake(asset)
    return FixityResult(asset, not failures, failures, repaired, second_copy)


def _note(asset: Asset, note: str) -> None:
    """A history line without a state change (the alert is orthogonal to the processing state)."""
    db.session.add(AssetEvent(asset=asset, from_state=asset.state, to_state=asset.state, note=note[:1000]))


def _drop_rendition(asset: Asset, rendition: Rendition) -> None:
    """Drop a damaged rendition; its object goes only if nothing else refers to it (the same bytes
    may be another asset's original: common.keys_in_use)."""
    key = rendition.storage_key
    asset.renditions.remove(rendition)
    drop_unreferenced([key])


def _check_burned(asset: Asset, store: Storage, repair: bool, failures: list[str], repaired: list[str]) -> None:
    """The donor copies with captions burned in (burnin.py). A damaged one is dropped (never served
    again) and its burn marked failed, so the producer's page offers to burn it again; it is made
    from the web rendition, not from the originals, so it is dropped even while they are damaged."""
    for caption in asset.captions:
        if not caption.burned_key or _digest(store, caption.burned_key) == caption.burned_sha256:
            continue
        name = f"copy with {caption.lang} captions burned in"
        if not repair:
            failures.append(f"{name}: the stored object ({caption.burned_key}) does not match its SHA-256")
            continue
        key = caption.burned_key
        caption.burned_key = caption.burned_sha256 = caption.burned_size = caption.burned_at = None
        if caption.burn_state not in ("queued", "running"):  # a burn under way makes a new one anyway
            caption.burn_state = "failed"
            caption.burn_error = "The stored copy was damaged (fixity check) and was dropped: burn it again."
        drop_unreferenced([key])
        repaired.append(f"{name}: damaged, dropped; burn it again from the captions")


def _check_stream(asset: Asset, store: Storage, remake: bool, failures: list[str], repaired: list[str]) -> bool:
    """The segments of the streaming package donors are served (streaming.py). A damaged one
    fails the package (no longer served), leaves its index and storage (so that the package made
    again stores intact bytes under the same content key, not finding the damaged ones there), and
    the package is queued to be made again when the originals are intact (`remake`): True then."""
    row = streaming.stream_of(asset.id)
    if row is None or row.state != "ready" or not row.index:
        return False  # only a ready package is served
    segments = row.index.get("segments") or {}
    # A segment whose SHA-256 is not known (neither recorded nor named by its key) cannot be
    # checked: it is not taken for damaged (which would drop and remake the package at every check).
    damaged = [name for name, seg in sorted(segments.items())
               if seg.get("key") and streaming.segment_sha256(seg)
               and _digest(store, seg["key"]) != streaming.segment_sha256(seg)]
    if not damaged:
        return False
    shown = ", ".join(damaged[:5]) + (f" and {len(damaged) - 5} more" if len(damaged) > 5 else "")
    if not remake:
        failures.append(f"streaming package: segment(s) {shown} do not match their SHA-256")
        return False
    keys = [segments[name]["key"] for name in damaged]
    row.index = {**row.index, "segments": {name: ({k: v for k, v in seg.items() if k != "key"}
                                                  if name in damaged else seg) for name, seg in segments.items()}}
    row.state, row.error = "failed", f"damaged segment(s) {shown} (fixity check): made again"
    drop_unreferenced(keys)
    repaired.append(f"streaming package: segment(s) {shown} damaged, dropped and queued to be made again")
    return True


def _queue_remake(asset: Asset) -> None:
    """Queue the renditions the asset now lacks (each marked pending); a job already queued or
    running for it makes them anyway."""
    make_donor_renditions(asset)


# --- temporary uploads -----------------------------------------------------------------------

def sweep_incoming(older_than: float | None = None) -> dict[str, int]:
    """Remove the temporary uploads (`.incoming`) of both storages, the partial files of
    resumable uploads and the outputs of early decodes, untouched for a day (or `older_than`
    seconds): what a worker or a `media ingest` killed mid-way, or a browser that gave up, left."""
    age = float(current_app.config["MEDIA_INCOMING_MAX_AGE"] if older_than is None else older_than)


    removed = {"storage": storage().sweep_incoming(age), "resumable": sweep_partials(age),
               "early_decodes": early.sweep(current_app.config, age)}
    second = _second()
    if second is not None:
        try:
            removed["replica"] = second.sweep_incoming(age)
        except OSError as exc:
            log.warning("sweep of the second storage failed: %s", exc)
    return removed


def remove_dead_leftovers() -> int:
    """Remove at once the temporary files whose owner process is gone (owners.remove_dead): an
    early decode's folder, a copy being stored under `.incoming` (in either local storage), a
    streamed copy of an S3 object, left by a `media ingest` or a worker killed mid-way. Asked by
    every recovery (tasks.recover_work); the daily `sweep_incoming` still takes the rest."""
    idle = 2 * float(current_app.config["MEDIA_HEARTBEAT_SECONDS"])  # the lease's two missed beats
    folders = [work_dir(), early.work_folder(current_app.config)]
    for store in (storage(), _second()):
        root = getattr(store, "root", None)  # a local folder; S3 keeps no file here
        if isinstance(root, Path):
            folders.append(root / INCOMING)
    removed = []
    for folder in folders:
        try:
            removed += owners.remove_dead(folder, idle)
        except OSError as exc:  # never fails a recovery: the daily sweep takes what stays
            log.warning("removing dead processes' temporary files in %s failed: %s", folder, exc)
    if removed:
        log.info("removed temporary files of stopped processes: %s", ", ".join(str(p) for p in removed))
    return len(removed)


def alerts(limit: int = 50) -> list[Asset]:
    """Assets in fixity alert, for the producers' dashboard."""
    return list(db.session.scalars(sa.select(Asset).where(Asset.fixity_ok.is_(False))
                                   .order_by(Asset.last_fixity_at.desc(), Asset.id).limit(limit)))


def asset_fixity(asset: Asset) -> dict[str, Any]:
    """The fixity part of an asset, for the API and the CLI (separate from its state)."""
    status = "unchecked" if asset.fixity_ok is None else ("ok" if asset.fixity_ok else "alert")
    return {"status": status, "checked_at": _iso(asset.last_fixity_at)}
