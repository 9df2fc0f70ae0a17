"""Archive bags (`filmfund media bag`): a card's originals, their structure files and a manifest
of what filmfund knows of them, as a BagIt bag (RFC 8493) made and validated with the Library of
Congress's `bagit` library, written to a folder or under an S3 prefix; and the fixity check of a
bag read back (`filmfund media verify --bag`).

Layout: `data/CARD/PRIVATE/AVCHD/BDMV/STREAM/00001.MTS` (each original where it was on its card,
a loose file under its folder's name, an upload under `upload/`), the card's playlist, clip info
and index files beside them (`.../BDMV/PLAYLIST/00000.MPL`, `CLIPINF/*.CPI`, `INDEX.BDM`), and
`data/filmfund-manifest.json`: per asset its id, title, SHA-256, recording date, camera, timecode,
duration, picture, state, problems and last fixity check, and each file's checksum and size.

Nothing half-made is left: a local bag is built in a hidden sibling folder and renamed into place
once bagit has validated it; an S3 bag is built in the work folder, uploaded, read back and
checked, and its objects are deleted if anything fails. bagit is imported here only.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Callable
from urllib.parse import urlparse

import bagit
import sqlalchemy as sa
from flask import current_app

from filmfund.db import utcnow
from filmfund.errors import DomainError, NotFoundError
from filmfund.extensions import db
from filmfund.media.common import _iso, named_assets, storage, work_dir
from filmfund.media.models import Asset
from filmfund.media.storage import S3Storage
from filmfund.media.timeline import card_and_file

CHUNK = 8 * 1024 * 1024
MANIFEST = "filmfund-manifest.json"
# step ("copying" | "checksumming" | "uploading" | "reading back"), bytes done in this step, its total
Progress = Callable[[str, int, int], None]


class BagError(DomainError):
    code = "bag_failed"


@dataclass
class Entry:
    path: str          # inside data/
    storage_key: str
    sha256: str
    size: int


@dataclass
class BagResult:
    location: str
    files: int
    bytes: int
    assets: list[str]


@dataclass
class BagCheck:
    location: str
    ok: bool
    files: int = 0
    damaged: list[str] = field(default_factory=list)     # checksum differs
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    error: str | None = None


def _card_rel(asset: Asset) -> tuple[PurePosixPath, PurePosixPath | None]:
    """Where the asset's first original goes (its folder in the bag) and, on a card, the folder
    that holds BDMV there (the sidecars' names are relative to it)."""
    first = asset.sources[0] if asset.sources else None
    if first is None or not first.original_path:
        return PurePosixPath("upload"), None
    parts = Path(first.original_path).parts
    upper = [p.upper() for p in parts]
    if "BDMV" in upper:
        i = len(upper) - 1 - upper[::-1].index("BDMV")
        j = i
        while j > 0 and upper[j - 1] in ("AVCHD", "PRIVATE"):
            j -= 1
        card = parts[j - 1] if j > 0 else "card"
        return PurePosixPath(card, *parts[j:i]), PurePosixPath(card, *parts[j:i])
    return PurePosixPath(parts[-2] if len(parts) > 1 else "files"), None


def _safe(rel: PurePosixPath) -> PurePosixPath:
    clean = [p for p in rel.parts if p not in ("", ".", "..", "/")]
    return PurePosixPath(*clean) if clean else PurePosixPath("file")


def plan(assets: list[Asset]) -> tuple[list[Entry], dict[str, Any]]:
    """The payload files and the manifest of what filmfund knows. Two assets' files that would
    land on the same path with other bytes go under the asset's id instead."""
    entries: dict[str, Entry] = {}

    def add(rel: PurePosixPath, key: str, sha: str, size: int, asset: Asset) -> str:
        path = str(_safe(rel))
        if path in entries and entries[path].sha256 != sha:
            path = str(_safe(PurePosixPath(f"asset-{asset.public_id}") / rel))
        entries.setdefault(path, Entry(path, key, sha, size))
        return path

    described = []
    for asset in assets:
        folder, bdmv_parent = _card_rel(asset)
        sources = []
        for s in asset.sources:
            if s.original_path and bdmv_parent is not None:
                parts = Path(s.original_path).parts
                upper = [p.upper() for p in parts]
                i = len(upper) - 1 - upper[::-1].index("BDMV") if "BDMV" in upper else len(parts) - 1
                rel = bdmv_parent.joinpath(*parts[i:])
            else:
                rel = folder / s.original_name
            path = add(rel, s.storage_key, s.sha256, s.size, asset)
            sources.append({"path": f"data/{path}", "original_name": s.original_name,
                            "original_path": s.original_path, "sha256": s.sha256, "size": s.size,
                            "expected_size": s.expected_size, "start_time": s.start_time, "duration": s.duration,
                            "fixity_ok": s.fixity_ok, "last_fixity_at": _iso(s.last_fixity_at)})
        sidecars = []
        for side in asset.sidecars:
            path = add((bdmv_parent or folder) / side.name, side.storage_key, side.sha256, side.size, asset)
            sidecars.append({"path": f"data/{path}", "name": side.name, "sha256": side.sha256, "size": side.size})
        described.append({
            "id": asset.public_id, "title": asset.title, "kind": asset.kind.value, "state": asset.state.value,
            "sha256": asset.sha256, "size": asset.size, "recorded_at": _iso(asset.recorded_at),
            "camera": asset.camera, "timecode": asset.timecode, "duration": asset.duration,
            "width": asset.width, "height": asset.height, "fps": asset.fps, "interlaced": asset.interlaced,
            "problems": asset.problems or [], "notes": asset.notes,
            "fixity": {"ok": asset.fixity_ok, "checked_at": _iso(asset.last_fixity_at)},
            "ingested_at": _iso(asset.created_at), "sources": sources, "structure_files": sidecars})
    manifest = {"bagged_at": _iso(utcnow()), "generator": "filmfund", "assets": described}
    return list(entries.values()), manifest


def select(ids: list[str], card: str | None = None) -> list[Asset]:
    if ids:
        assets = named_assets(ids)
    else:
        assets = []
    if card:
        assets += [a for a in db.session.scalars(sa.select(Asset).order_by(Asset.recorded_at, Asset.id))
                   if a not in assets and card_and_file(a)[0] == card]
    if not assets:
        raise NotFoundError("No asset to bag: name asset ids or a card." if not card else f"No asset from card {card}.")
    return sorted(assets, key=lambda a: (a.recorded_at is None, a.recorded_at or utcnow(), a.id))


class _Hashing(logging.Handler):
    """bagit logs each file it hashes: that is the checksumming step's progress."""

    def __init__(self, sizes: dict[str, int], progress: Progress, total: int):
        super().__init__(logging.INFO)
        self.sizes, self.progress, self.total, self.done = sizes, progress, total, 0

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg and "manifest lines for file" in str(record.msg) and record.args:
            name = str(record.args[0] if isinstance(record.args, tuple) else record.args)
            self.done += self.sizes.get(name.removeprefix("data/"), 0)  # bagit names them from the bag's root
            self.progress("checksumming", self.done, self.total)


def _copy(entries: list[Entry], root: Path, progress: Progress) -> None:
    """Each stored file into the folder, checked against the SHA-256 filmfund holds for it."""
    store = storage()
    total, done = sum(e.size for e in entries), 0
    for e in entries:
        target = root / e.path
        target.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        with contextlib.closing(store.open(e.storage_key)) as src, open(target, "wb") as out:
            while chunk := src.read(CHUNK):
                digest.update(chunk)
                out.write(chunk)
                done += len(chunk)
                progress("copying", done, total)
        if digest.hexdigest() != e.sha256:
            raise BagError(f"{e.path}: the stored copy does not match its checksum (run `filmfund media verify`); "
                           "no bag was written.")


def _bag_info(assets: list[Asset]) -> dict[str, str]:
    cards = sorted({_card_rel(a)[0].parts[0] for a in assets})
    return {"Source-Organization": current_app.config.get("CAMPAIGN_TITLE") or "filmfund",
            "External-Description": f"Camera originals of {len(assets)} clip(s) from {', '.join(cards)}, with their "
                                    f"card structure files and {MANIFEST}.",
            "External-Identifier": " ".join(a.public_id for a in assets)[:2000],
            "Bag-Group-Identifier": ", ".join(cards)[:500]}


def make(assets: list[Asset], to: str, *, progress: Progress | None = None) -> BagResult:
    """Bag the assets' originals to a folder (which must not exist yet, or be empty) or to
    s3://bucket/prefix (which must hold nothing yet)."""
    progress = progress or (lambda *_: None)
    entries, manifest = plan(assets)
    total = sum(e.size for e in entries)
    s3 = to.startswith("s3://")
    if s3:
        client, bucket, prefix = _s3(to)
        if client.list_objects_v2(Bucket=bucket, Prefix=prefix + "/", MaxKeys=1).get("KeyCount"):
            raise BagError(f"{to} already holds objects: choose an empty prefix.")
        build = work_dir() / f"bag-{uuid.uuid4().hex}"
    else:
        dest = Path(to).expanduser().resolve()
        if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
            raise BagError(f"{dest} already exists and is not an empty folder.")
        dest.parent.mkdir(parents=True, exist_ok=True)
        build = dest.parent / f".{dest.name}.partial-{uuid.uuid4().hex[:8]}"
    build.mkdir()
    uploaded: list[str] = []
    try:
        _copy(entries, build, progress)
        (build / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        sizes = {e.path: e.size for e in entries}
        handler = _Hashing(sizes, progress, total)
        logger = logging.getLogger("bagit")
        old_level = logger.level
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        try:
            bag = bagit.make_bag(str(build), _bag_info(assets), checksums=["sha256"])
        finally:
            logger.removeHandler(handler)
            logger.setLevel(old_level)
        bag.validate()
        files = len(entries) + 1
        if s3:
            _upload(build, client, bucket, prefix, uploaded, progress)
            check = verify(to, progress=progress)
            if not check.ok:
                raise BagError(f"The bag read back from {to} is not valid: {_describe(check)}")
            location = to
        else:
            if dest.exists():
                dest.rmdir()
            os.replace(build, dest)
            location = str(dest)
    except BaseException:
        if uploaded:
            for i in range(0, len(uploaded), 1000):
                client.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in uploaded[i:i + 1000]]})
        raise
    finally:
        shutil.rmtree(build, ignore_errors=True)
    return BagResult(location, files, total, [a.public_id for a in assets])


def _s3(url: str):
    parsed = urlparse(url)
    if not parsed.netloc:
        raise BagError("An S3 location is s3://bucket/prefix.")
    store = S3Storage(f"s3://{parsed.netloc}", current_app.config.get("S3_ENDPOINT_URL"))
    return store.client, parsed.netloc, parsed.path.strip("/")


def _key(prefix: str, rel: str) -> str:
    return f"{prefix}/{rel}" if prefix else rel


def _upload(build: Path, client, bucket: str, prefix: str, uploaded: list[str], progress: Progress) -> None:
    files = sorted(p for p in build.rglob("*") if p.is_file())
    total, done = sum(p.stat().st_size for p in files), 0
    for p in files:
        key = _key(prefix, p.relative_to(build).as_posix())
        uploaded.append(key)
        client.upload_file(str(p), bucket, key)
        done += p.stat().st_size
        progress("uploading", done, total)


def _describe(check: BagCheck) -> str:
    parts = []
    if check.error:
        parts.append(check.error)
    if check.damaged:
        parts.append("damaged: " + ", ".join(check.damaged))
    if check.missing:
        parts.append("missing: " + ", ".join(check.missing))
    if check.unexpected:
        parts.append("not in the manifest: " + ", ".join(check.unexpected))
    return "; ".join(parts)


def describe(check: BagCheck) -> str:
    return _describe(check)


def verify(location: str, *, progress: Progress | None = None) -> BagCheck:
    """Read a bag back and check every file against its manifest (payload and tag files): a folder
    with bagit's own validation, an S3 prefix by streaming each object's bytes through the
    manifests bagit parsed. Names each damaged, missing or unexpected file."""
    progress = progress or (lambda *_: None)
    if location.startswith("s3://"):
        return _verify_s3(location, progress)
    path = str(Path(location).expanduser())
    bag, files = None, 0
    try:
        bag = bagit.Bag(path)
        files = len(bag.payload_entries())
        bag.validate()
    except bagit.BagValidationError as exc:
        # validate() stops at its first failing stage (Payload-Oxum, completeness, checksums): to
        # name every damaged, missing and unexpected file, run the last two stages in full.
        details = list(exc.details or [])
        if not details and bag is not None:
            for stage in (bag._validate_completeness, lambda: bag._validate_entries(1)):
                try:
                    stage()
                except bagit.BagValidationError as more:
                    details += more.details or []
        check = BagCheck(location, False, files=files, error=None if details else str(exc.message))
        missing = {d.path for d in details if isinstance(d, bagit.FileMissing)}
        for d in details:
            if isinstance(d, bagit.ChecksumMismatch) and d.path in missing:
                continue
            elif isinstance(d, bagit.ChecksumMismatch):
                check.damaged.append(d.path)
            elif isinstance(d, bagit.FileMissing):
                check.missing.append(d.path)
            elif isinstance(d, bagit.UnexpectedFile):
                check.unexpected.append(d.path)
            else:
                check.error = str(d)
        if not (check.damaged or check.missing or check.unexpected or check.error):
            check.error = str(exc)
        check.damaged, check.missing = sorted(set(check.damaged)), sorted(set(check.missing))
        return check
    except bagit.BagError as exc:
        return BagCheck(location, False, error=f"not a valid bag: {exc}")
    return BagCheck(location, True, files=files)


def _verify_s3(location: str, progress: Progress) -> BagCheck:
    client, bucket, prefix = _s3(location)
    listed: dict[str, int] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=_key(prefix, "")):
        for obj in page.get("Contents", []):
            listed[obj["Key"][len(_key(prefix, "")):]] = obj["Size"]
    if "bagit.txt" not in listed:
        return BagCheck(location, False, error="not a bag: no bagit.txt")
    tmp = work_dir() / f"bagcheck-{uuid.uuid4().hex}"
    try:
        (tmp / "data").mkdir(parents=True)
        for rel in listed:
            if not rel.startswith("data/"):
                (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
                client.download_file(bucket, _key(prefix, rel), str(tmp / rel))
        try:
            bag = bagit.Bag(str(tmp))
        except bagit.BagError as exc:
            return BagCheck(location, False, error=f"not a valid bag: {exc}")
        check = BagCheck(location, True, files=len(bag.payload_entries()))
        payload_total = sum(listed.get(p, 0) for p in bag.payload_entries())
        done = 0
        for rel, hashes in sorted(bag.entries.items()):
            want = hashes.get("sha256") or next(iter(hashes.values()))
            alg = "sha256" if "sha256" in hashes else next(iter(hashes))
            digest = hashlib.new(alg)
            if rel.startswith("data/"):
                if rel not in listed:
                    check.missing.append(rel)
                    continue
                body = client.get_object(Bucket=bucket, Key=_key(prefix, rel))["Body"]
                while chunk := body.read(CHUNK):
                    digest.update(chunk)
                    done += len(chunk)
                    progress("reading back", done, payload_total)
            else:
                if not (tmp / rel).exists():
                    check.missing.append(rel)
                    continue
                digest.update((tmp / rel).read_bytes())
            if digest.hexdigest() != want:
                check.damaged.append(rel)
        check.unexpected = sorted(r for r in listed if r.startswith("data/") and r not in bag.entries)
        check.ok = not (check.damaged or check.missing or check.unexpected)
        return check
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
