"""Ingest: files, folders and AVCHD card roots from the CLI, and uploads from the footage page,
stored by content and registered as assets with a verify job queued."""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Iterable

import sqlalchemy as sa
from flask_babel import gettext as _

from filmfund.errors import DomainError, ValidationError
from filmfund.extensions import db
from filmfund.media import avchd, ffmpeg, fixity
from filmfund.media.board import typed_title
from filmfund.media.common import _problem, drop_unreferenced, storage, upload_name
from filmfund.media.jobs import _new_job, enqueue_on_commit
from filmfund.media.models import Asset, AssetEvent, AssetKind, AssetState, JobKind, Sidecar, Source
from filmfund.media.probing import _probe_file, camera_data, probe_files, recorded_at
from filmfund.media.storage import TooLarge, sha256_file

log = logging.getLogger(__name__)


@dataclass
class IngestResult:
    asset: Asset
    created: bool
    how: str


class SourceUnreadable(OSError):
    """A file of the take could not be read (a failing card, disk or laptop): the take is not
    ingested, and the file is named. Raised for the source's reads only, so that a failure to
    write the storage is never told as the card's."""

    def __init__(self, path: Path, exc: OSError):
        super().__init__(exc.errno, exc.strerror or str(exc))
        self.path = path


@contextlib.contextmanager
def _reading(path: Path):
    try:
        yield
    except SourceUnreadable:
        raise
    except OSError as exc:
        raise SourceUnreadable(path, exc) from exc


class _Source:
    """The bytes of one source file as a storage put reads them; a spanned take's joined hash is
    fed from the same reads (`digest`)."""

    def __init__(self, src: BinaryIO, path: Path, digest=None):
        self.src, self.path, self.digest = src, path, digest

    def read(self, n: int = -1) -> bytes:
        with _reading(self.path):
            data = self.src.read(n)
        if self.digest is not None:
            self.digest.update(data)
        return data


def _put_source(store, path: Path, progress: Callable[[int], None] | None, digest=None, *, replace=None):
    with _reading(path):
        fh = open(path, "rb")
    with fh:
        return store.put_stream(_Source(fh, path, digest), path.suffix, progress, replace=replace)


def _probe_spec(spec: str) -> tuple[dict | None, ffmpeg.MediaInfo | None, str | None]:
    return _probe_file(spec)


def ingest_paths(paths: Iterable[str | Path], title: str | None = None,
                 progress: Callable[[int], None] | None = None,
                 on_group: Callable[[avchd.SourceGroup], None] | None = None,
                 skipped: list[avchd.Skipped] | None = None,
                 discovered: list[avchd.SourceGroup] | None = None,
                 on_result: Callable[[avchd.SourceGroup, IngestResult], None] | None = None,
                 probing: dict[Path, Future] | None = None,
                 on_skip: Callable[[avchd.Skipped], None] | None = None) -> list[IngestResult]:
    """Ingest files, folders and AVCHD card roots; queue a verify job per new asset. What was
    not taken (symlinks, empty files, takes with a file that could not be read) is appended to
    `skipped`, with the reason; a take that cannot be read is also told to `on_skip` as it
    fails. `discovered`: what avchd.discover already found in `paths` (the CLI looks before it
    builds the app).

    This is the batch driver of `filmfund media ingest`, as a task's loop is: each take is a use
    case of its own, committed as soon as it is registered (its verify job queued then), before
    the next take is copied: the worker checks and encodes it meanwhile, and a copy that fails
    half-way through a card keeps the takes before it."""
    groups = discovered if discovered is not None else avchd.discover([Path(p) for p in paths], skipped)
    # Each file is probed once, here or already started (`probing`); spanned takes are linked by
    # the times, and the jobs reuse these probes.
    files = [f for group in groups for f in group.files]
    started = {**probe_files(f for f in files if f not in (probing or {})), **(probing or {})}
    probes = {f: started[f].result() for f in files}
    times = {f: ((p[1].start_time, p[1].end_time) if p[1] else (None, None)) for f, p in probes.items()}
    groups = avchd.link_spans(groups, times)
    results = []
    for n, group in enumerate(groups, 1):
        if on_group:
            on_group(group)
        group_title = title if title and len(groups) == 1 else (f"{title} · {n}" if title else None)
        try:
            result = _ingest_group(group, probes, group_title, progress)
        except SourceUnreadable as exc:
            # A bad sector or a pulled card fails this take only: it is named and the next
            # take is copied (what this one stored is removed by _ingest_group).
            db.session.rollback()
            failed = avchd.Skipped(exc.path, _read_error(exc, group))
            if skipped is not None:
                skipped.append(failed)
            if on_skip:
                on_skip(failed)
            continue
        db.session.commit()  # this take's, before the next one is copied (see above)
        results.append(result)
        if on_result:
            on_result(group, result)
    return results


def _read_error(exc: SourceUnreadable, group: avchd.SourceGroup) -> str:
    take = " + ".join(avchd.path_text(f.name) for f in group.files)
    return (f"read error: {exc.strerror}; the take {take} was not ingested and nothing of it was kept: "
            "copy it again from the card or another backup")


def total_bytes(paths: Iterable[str | Path]) -> int:
    return sum(f.stat().st_size for g in avchd.discover([Path(p) for p in paths]) for f in g.files)


def _default_title(group: avchd.SourceGroup) -> str:
    first = group.files[0]
    stem = avchd.path_text(first.stem)
    name = stem if group.card is None else f"{_card_name(group.card)} {stem}"
    if len(group.files) > 1:
        name += f" (+{len(group.files) - 1} part{'s' if len(group.files) > 2 else ''})"
    return name


def _card_name(bdmv: Path) -> str:
    root = bdmv
    for _level in range(3):
        if root.parent.name.upper() in ("AVCHD", "PRIVATE"):
            root = root.parent
    return avchd.path_text(root.parent.name) or "card"


def _ingest_group(group: avchd.SourceGroup, probes: dict, title: str | None,
                  progress: Callable[[int], None] | None) -> IngestResult:
    """One take. If it fails (a read error in part 2 of a spanned take), the objects it put in
    storage and nothing else has (`created`) are removed: no asset owns them, nothing would
    ever find them again. Objects that were there before (another asset's) stay."""
    store = storage()
    created: list[str] = []
    try:
        return _ingest_take(group, probes, title, progress, store, created)
    except BaseException:
        for key in created:
            try:
                store.delete(key)
            except Exception:  # noqa: BLE001 - the take's own failure is what the caller reports
                log.warning("could not remove %s after a failed ingest", key, exc_info=True)
        raise


def _ingest_take(group: avchd.SourceGroup, probes: dict, title: str | None,
                 progress: Callable[[int], None] | None, store, created: list[str]) -> IngestResult:
    known = _known_without_upload(group.files, progress)
    if known is not None and not fixity.in_alert(known):  # in alert: this copy may repair it
        said = _card_facts(known, group, [s.sha256 for s in known.sources], store, created)
        return IngestResult(known, False, _known_how("already ingested (same bytes)", said))
    # One read of each file: storage hashes what it copies (the file's SHA-256, its fixity);
    # a spanned take's joined SHA-256 is fed from the same reads.
    joined = hashlib.sha256() if len(group.files) > 1 else None
    stored = []
    for f in group.files:
        stored.append(_put_source(store, f, progress, joined, replace=fixity.replace_damaged))
        if stored[-1].created:
            created.append(stored[-1].key)
    sha = joined.hexdigest() if joined else stored[0].sha256
    existing = _existing_asset(sha, [s.sha256 for s in stored])
    if existing is not None:
        # Known bytes under another extension (a card's `00001.MTS` copied as `00001.m2ts`): what
        # this take created under that extension's key is a second full copy nothing refers to.
        # Only what it created, and only if nothing refers to it (common.drop_unreferenced).
        drop_unreferenced(created)
        created.clear()
        fixity.reingest_sidecars(existing, dict.fromkeys(group.sidecars))
        how = fixity.after_reingest(existing, any(s.replaced for s in stored))
        said = _card_facts(existing, group, [s.sha256 for s in stored], store, created)
        return IngestResult(existing, False, _known_how(how, said))
    first_probe, first_info, probe_error = probes[group.files[0]]
    asset = Asset(title=typed_title(title) or typed_title(_default_title(group)) or "untitled",
                  sha256=sha, size=sum(s.size for s in stored),
                  kind=AssetKind(first_info.kind) if first_info else _kind_from_name(group.files[0]))
    for pos, (f, s) in enumerate(zip(group.files, stored)):
        data, info, _err = probes[f]
        asset.sources.append(Source(position=pos, original_name=avchd.path_text(f.name)[:500],
                                    original_path=avchd.path_text(f)[:2000],
                                    sha256=s.sha256, size=s.size, storage_key=s.key, probe=data,
                                    start_time=info.start_time if info else None,
                                    duration=info.duration if info else None,
                                    expected_size=group.expected_sizes.get(f)))
    card_root = group.card.parent if group.card is not None else None
    for side in dict.fromkeys(group.sidecars):
        kept = _put_source(store, side, None)
        if kept.created:
            created.append(kept.key)
        name = avchd.path_text(side.relative_to(card_root) if card_root else side.name)
        asset.sidecars.append(Sidecar(name=name[:500], sha256=kept.sha256, size=kept.size, storage_key=kept.key))
    _apply_info(asset, first_info, first_probe)
    if len(group.files) > 1:
        # A spanned take is measured as the one stream it is (parts overlap by a few frames).
        joined_data, joined_info, _err = _probe_spec(ffmpeg.input_spec(group.files))
        if joined_info is not None:
            _apply_info(asset, joined_info, joined_data)
    recorded = recorded_at(group.files[0], first_info)
    if recorded:
        asset.recorded_at = recorded
    _apply_camera_data(asset, group.files[0])
    notes = [f"Found as: {group.how}."]
    if group.card is not None:
        notes.append(f"Card: {avchd.path_text(group.card)}")
    if probe_error:
        notes.append(f"ffprobe: {probe_error}")
    asset.notes = "\n".join(notes)
    # Facts of the card, not of the bytes (no decode can find them): the verify keeps them.
    asset.problems = [_missing_part(group, m, asset.duration) for m in group.missing]
    result = _register(asset, group.how)
    if result.created:
        _supersede_parts(result.asset)
    return result


def _known_how(how: str, said: list[str]) -> str:
    return how if not said else f"{how}; the card adds: {', '.join(dict.fromkeys(said))}"


def _card_facts(asset: Asset, group: avchd.SourceGroup, shas: list[str], store, created: list[str]) -> list[str]:
    """A take already here, ingested again from its card: what the card says that the asset does
    not have yet is recorded on it, never passed over because the bytes are the same (a clip
    first ingested from a copy of its STREAM files alone, or before ingest read the card there).
    The length each file's clip info gives (a copy shorter than that is "truncated"), a part of
    the take the playlist joins that this copy lacks ("missing_part"), the card's structure files,
    its name in the title and notes. A clip now known damaged leaves "ready": the crew is not
    told "intact" about it. The codes of what was added are returned (the CLI says them).

    `shas`: each file's SHA-256, in the group's order. The playlist's take facts (a missing
    part, the card's files) only for the asset of exactly these files; a file's own length for
    any asset holding that file."""
    said: list[str] = []
    problems = list(asset.problems or [])
    by_sha = {s.sha256: s for s in asset.sources}
    for f, sha in zip(group.files, shas):
        expected, source = group.expected_sizes.get(f), by_sha.get(sha)
        if expected is None or source is None or source.expected_size == expected:
            continue
        source.expected_size = expected
        if source.size < expected and not any(p.get("code") == "truncated" and p.get("source") == source.original_name
                                              for p in problems):
            problems.append(shorter_than_clip_info(source.original_name, source.size, expected, end_in_take(source)))
            said.append("truncated")
    if [s.sha256 for s in asset.sources] == list(shas) and group.card is not None:
        # A part of a take since ingested whole ("superseded") lacks nothing any more.
        whole = asset.superseded_by is not None
        for missing in [] if whole else group.missing:
            if not any(p.get("code") == "missing_part" and p.get("missing") == missing.name
                       and p.get("side") == missing.side for p in problems):
                problems.append(_missing_part(group, missing, asset.duration))
                said.append("missing_part")
        card_root = group.card.parent
        have = {s.name for s in asset.sidecars}
        for side in dict.fromkeys(group.sidecars):
            name = avchd.path_text(side.relative_to(card_root))[:500]
            if name in have:
                continue
            kept = _put_source(store, side, None)
            if kept.created:
                created.append(kept.key)
            asset.sidecars.append(Sidecar(name=name, sha256=kept.sha256, size=kept.size, storage_key=kept.key))
        card_line = f"Card: {avchd.path_text(group.card)}"
        if card_line not in (asset.notes or ""):
            asset.notes = "\n".join(filter(None, [asset.notes, f"Found again as: {group.how}.", card_line]))
        if asset.title == typed_title(_default_title(dataclasses.replace(group, card=None))):
            asset.title = typed_title(_default_title(group)) or asset.title  # the card's name, as from the card root
    if said:
        asset.problems = problems
        what = ", ".join(dict.fromkeys(said))
        if asset.state in (AssetState.READY, AssetState.FAILED):
            # Found without a decode (the card's facts): no decode can make the clip whole again.
            asset.move(AssetState.VERIFYING, "ingested again from its card, which says more")
            asset.move(AssetState.DAMAGED, f"the card says: {what}")
        else:
            # Damaged already, or its check is still to come (that check keeps the card's facts).
            db.session.add(AssetEvent(asset=asset, from_state=asset.state, to_state=asset.state,
                                      note=f"ingested again from its card, which says: {what}"))
    return said


def shorter_than_clip_info(name: str, size: int, expected: int, at: float | None) -> dict:
    """The problem of a file shorter than its card's clip information says the take is (a copy
    cut short, even on a packet boundary): at ingest from a card, and at each verify."""
    return _problem(
        "truncated", f"{name} has {size} bytes, but the card's clip information says the take has {expected}: "
        f"{expected - size} bytes ({(expected - size) / expected:.0%}) are missing from its end.",
        source=name, at=at,
        hint="Copy this file again from the card or another backup; the end of the take is lost in this copy.")


def end_in_take(source: Source | None) -> float | None:
    """Where a file's copy ends in the take's time (a problem's `at`): its own length, after the
    parts before it. A camera's part n+1 starts where part n ended (its start_time continues),
    so its offset is the difference of the start times; without them, the sum of the earlier
    parts' lengths."""
    if source is None or source.duration is None:
        return None
    parts = list(source.asset.sources) if source.asset is not None else [source]
    before = [s for s in parts if s.position < source.position]
    if not before:
        return source.duration
    first = min(parts, key=lambda s: s.position)
    if source.start_time is not None and first.start_time is not None and source.start_time >= first.start_time:
        return source.start_time - first.start_time + source.duration
    if all(s.duration is not None for s in before):
        return sum(s.duration for s in before) + source.duration
    return None


def _supersede_parts(whole: Asset) -> None:
    """A take now ingested whole (its missing part copied since): the assets made earlier of a
    part of it (a run of its files, same bytes) are linked to it ("superseded", kept by every
    verify), and lose their "missing_part", which this take answers. One that was damaged for
    that alone is checked again, so it does not stay damaged for good (`media verify --all`)."""
    shas = [s.sha256 for s in whole.sources]
    if len(shas) < 2:
        return
    ids = db.session.scalars(sa.select(Source.asset_id).where(Source.sha256.in_(shas), Source.asset_id != whole.id)
                             .distinct()).all()
    for part in (db.session.get(Asset, i) for i in sorted(ids)):
        own = [s.sha256 for s in part.sources]
        if len(own) >= len(shas) or not any(shas[i:i + len(own)] == own for i in range(len(shas) - len(own) + 1)):
            continue
        if part.superseded_by == whole.public_id:
            continue
        names = " + ".join(s.original_name for s in whole.sources)
        kept = [p for p in part.problems or [] if p.get("code") != "missing_part"]
        part.problems = kept + [_problem(
            Asset.SUPERSEDED, f"This clip is part of a take ingested whole later ({names}) as \"{whole.title}\" "
            f"({whole.public_id}): use that asset for the take.",
            hint=f"Edit with {whole.public_id}; this asset holds only part of the same bytes.")
            | {"severity": "info", "by": whole.public_id}]
        part.notes = "\n".join(filter(None, [part.notes, f"Superseded by {whole.public_id}: the whole take ({names})."]))
        # What the check found besides the missing part (a rescue rendition is its answer, not damage).
        damage = [p for p in kept if p.get("severity") not in ("info", "warning", "alert") and p.get("code") != "rescue"]
        if part.state == AssetState.DAMAGED and not damage:
            # Damaged only as a take with a part missing: checked again as the part it is.
            part.move(AssetState.VERIFYING, f"superseded by {whole.public_id}, the whole take")
            enqueue_on_commit(_new_job(part, JobKind.VERIFY))
        else:
            db.session.add(AssetEvent(asset=part, from_state=part.state, to_state=part.state,
                                      note=f"superseded by {whole.public_id}, the whole take"))


def _empty_file(path: Path) -> bool:
    try:
        return path.is_file() and not path.is_symlink() and path.stat().st_size == 0
    except OSError:
        return False


def _missing_part(group: avchd.SourceGroup, missing: avchd.MissingPart, duration: float | None) -> dict:
    """The problem of a take whose card playlist joins a file this copy does not have."""
    size = f" (the card's clip information gives it {missing.size} bytes)" if missing.size else ""
    # A file there but empty (a copy that failed at its first byte) is not one "not in this copy":
    # the crew would look for a file they can see.
    there = group.card is not None and _empty_file(group.card / "STREAM" / missing.name)
    absent = "that file is empty (0 bytes) in this copy" if there else "that file is not in this copy"
    if missing.side == "start":
        first = avchd.path_text(group.files[0].name)
        message = (f"This clip continues a take from {missing.name}{size}, which the card's playlist "
                   f"{missing.playlist} puts before {first}, but {absent}: the "
                   "start of the take, and the first pictures of this clip, are lost.")
        at, source = 0.0, first
    else:
        last = avchd.path_text(group.files[-1].name)
        message = (f"The take goes on in {missing.name}{size}, which the card's playlist {missing.playlist} "
                   f"puts after {last}, but {absent}: the take breaks off at the end "
                   "of this clip.")
        at, source = duration, last
    return _problem("missing_part", message, at=at, source=source,
                    hint=f"Copy {missing.name} from the card or another backup, then ingest the card again: "
                         "the take then comes in whole.") | {"side": missing.side, "missing": missing.name}


def _known_without_upload(files: list[Path], progress: Callable[[int], None] | None) -> Asset | None:
    """Re-running an ingest over the same folder: files we stored from the same path with the
    same size are hashed locally (one read, no upload) and recognised if the bytes match."""
    assets = set()
    for f in files:
        with _reading(f):
            size = f.stat().st_size
        src = db.session.scalar(sa.select(Source).where(Source.original_path == avchd.path_text(f)[:2000],
                                                         Source.size == size).limit(1))
        if src is None:
            return None
        assets.add(src.asset_id)
    if len(assets) != 1:
        return None
    asset = db.session.get(Asset, assets.pop())
    if [s.original_path for s in asset.sources] != [avchd.path_text(f)[:2000] for f in files]:
        return None
    for f, src in zip(files, asset.sources):
        with _reading(f):
            same = sha256_file(f, progress)[0] == src.sha256
        if not same:
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


def _apply_camera_data(asset: Asset, path: Path) -> None:
    """Make, model and start timecode from a camcorder's MDPM data (the date is recorded_at's)."""
    cam = camera_data(path)
    if cam is None:
        return
    if cam.camera and not asset.camera:
        asset.camera = cam.camera[:200]
    if cam.timecode:
        asset.timecode = cam.timecode
    if cam.zone:  # the zone the camera's clock was set to: its pages show the time as read there
        asset.probe = {**(asset.probe or {}), "camera_zone": cam.zone}


def _existing_asset(sha: str, source_shas: list[str]) -> Asset | None:
    asset = db.session.scalar(sa.select(Asset).where(Asset.sha256 == sha))
    if asset is None and len(source_shas) == 1:
        asset = db.session.scalar(sa.select(Asset).join(Source).where(Source.sha256 == source_shas[0]).limit(1))
    return asset


def _register(asset: Asset, how: str) -> IngestResult:
    """Insert the new asset and its verify job, queued once the caller commits; a concurrent
    ingest of the same bytes wins. The second copy of its originals is written before that
    commit, so that a failure to write it is noted on the asset in the same commit."""
    try:
        with db.session.begin_nested():  # only this insert is undone if the same bytes raced in
            db.session.add(asset)
            db.session.add(AssetEvent(asset=asset, from_state=None, to_state=AssetState.UPLOADED, note=how[:1000]))
            db.session.flush()
    except sa.exc.IntegrityError:
        existing = db.session.scalar(sa.select(Asset).where(Asset.sha256 == asset.sha256))
        if existing is None:
            raise
        return IngestResult(existing, False, "already ingested (same bytes)")
    job = _new_job(asset, JobKind.VERIFY)
    fixity.replicate(asset)  # the second copy (FILMFUND_REPLICA_URL), if there is one
    enqueue_on_commit(job)
    return IngestResult(asset, True, how)


def ingest_upload(stream: BinaryIO, filename: str, title: str | None = None, limit: int | None = None
                  ) -> IngestResult:
    """A file uploaded from the producers' page: streamed to storage and registered. It is
    probed by the worker's verify job, never inside the web request. The caller commits (the
    job is queued then)."""
    safe_name = upload_name(filename) or "upload"
    suffix = Path(safe_name).suffix
    if suffix.lower() not in avchd.MEDIA_EXTENSIONS:
        raise ValidationError(_("%(name)s: not a video, image or audio file this pipeline takes.", name=safe_name),
                              code="unsupported_file")

    store = storage()
    try:
        stored = store.put_stream(stream, suffix, limit=limit, replace=fixity.replace_damaged)
    except TooLarge:
        raise DomainError(_("%(name)s: upload is larger than %(n)s bytes.", name=safe_name, n=limit),
                          code="too_large", status=413) from None
    if stored.size == 0:
        if stored.created:
            store.delete(stored.key)
        raise ValidationError(_("%(name)s is empty (0 bytes): nothing to ingest.", name=safe_name), code="empty_file")
    return _register_stored(stored, safe_name, title, "uploaded from the footage page")


def _register_stored(stored, safe_name: str, title: str | None, how: str) -> IngestResult:
    """An asset for one object already in storage (an upload). Nothing reads the file here: the
    verify job probes it (kind, duration, picture, recording date), off the web request."""
    existing = _existing_asset(stored.sha256, [stored.sha256])
    if existing is not None:
        if stored.created:
            # The same footage under another extension (a.mp4, then a.mov or take.MTS): its
            # content key differs, so this upload stored a second full copy nothing refers to
            # (an object that was there before is someone's: only what it created goes).
            drop_unreferenced([stored.key])
        return IngestResult(existing, False, fixity.after_reingest(existing, stored.replaced))
    asset = Asset(title=typed_title(title) or typed_title(Path(safe_name).stem) or "upload",
                  sha256=stored.sha256, size=stored.size,
                  kind=_kind_from_name(Path(safe_name)), notes=how[0].upper() + how[1:] + ".")
    asset.sources.append(Source(position=0, original_name=safe_name[:500], original_path=None,
                                sha256=stored.sha256, size=stored.size, storage_key=stored.key))
    return _register(asset, how)
