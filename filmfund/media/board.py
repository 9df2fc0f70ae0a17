"""The footage board and the API's view of assets: search, one asset, its jobs, its history, notes."""
from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone
from typing import Any

import sqlalchemy as sa
from flask_babel import gettext as _

from filmfund import progress
from filmfund.errors import NotFoundError, ValidationError
from filmfund.extensions import db
from filmfund.i18n import producers_versions
from filmfund.media.common import _iso
from filmfund.media.fixity import asset_fixity, where_kept
from filmfund.media.jobs import LATE, RECOVERED_NOTE, STOPPED, lease
from filmfund.media.streaming import stream_dict
from filmfund.media.models import Asset, AssetEvent, AssetState, Job, JobStatus
from filmfund.typed import one_line

def _like(term: str) -> str:
    return "%" + term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


ALERT = "alert"  # a board filter beside the states: assets whose fixity check failed


def find_assets(*, state: str | None = None, day: str | None = None, camera: str | None = None,
                q: str | None = None, limit: int = 500, created_after: datetime | None = None) -> list[Asset]:
    query = sa.select(Asset)
    if created_after is not None:
        query = query.where(Asset.created_at > created_after)
    if state == ALERT:
        query = query.where(Asset.fixity_ok.is_(False))
    elif state:
        try:
            query = query.where(Asset.state == AssetState(state))
        except ValueError:
            raise ValidationError(_("Unknown state %(state)s.", state=repr(state)), code="invalid_state") from None
    if day:
        try:
            if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", day):
                raise ValueError(day)  # date.fromisoformat also takes 20260101 and 2026-W01-1
            start = datetime.combine(date.fromisoformat(day), datetime.min.time(), tzinfo=timezone.utc)
        except ValueError:
            raise ValidationError(_("A day is written YYYY-MM-DD."), code="invalid_day") from None
        when = sa.func.coalesce(Asset.recorded_at, Asset.created_at)
        query = query.where(when >= start)
        if start.date() < date.max:  # 9999-12-31 has no next day: nothing comes after it
            query = query.where(when < start + timedelta(days=1))
    if camera:
        query = query.where(Asset.camera == camera)
    if q:
        pattern = _like(q.strip()[:200])
        query = query.where(sa.or_(Asset.title.ilike(pattern, escape="\\"), Asset.notes.ilike(pattern, escape="\\")))
    query = query.order_by(sa.func.coalesce(Asset.recorded_at, Asset.created_at).desc(), Asset.id.desc())
    return list(db.session.scalars(query.limit(max(1, min(limit, 1000)))))


def assets_by_ids(public_ids: list[str]) -> list[Asset]:
    if not public_ids:
        return []
    return list(db.session.scalars(sa.select(Asset).where(Asset.public_id.in_(public_ids[:200]))))


def cameras() -> list[str]:
    return [c for c in db.session.scalars(sa.select(Asset.camera).where(Asset.camera.is_not(None)).distinct()
                                          .order_by(Asset.camera))]


def get_asset(public_id: str) -> Asset:
    asset = db.session.scalar(sa.select(Asset).where(Asset.public_id == public_id))
    if asset is None:
        raise NotFoundError(_("No such asset."))
    return asset


def active_jobs(assets: list[Asset]) -> dict[int, Job]:
    ids = [a.id for a in assets]
    if not ids:
        return {}
    rows = db.session.scalars(sa.select(Job).where(Job.asset_id.in_(ids),
                                                   Job.status.in_([JobStatus.QUEUED, JobStatus.RUNNING]))
                              .order_by(Job.id))
    return {j.asset_id: j for j in rows}


def job_progress(job: Job | None) -> dict[str, Any] | None:
    """A footage job's progress as every view shows it (board, asset page, status.json, API):
    the job row its heartbeat writes, described by filmfund.progress (percent, step, time left)."""
    if job is None:
        return None
    described = progress.describe(job.status.value, job.progress, job.step, job.started_at,
                                  kind=job.kind.value, attempts=job.attempts)
    # A row no live worker writes any more must not show a frozen percent and time left: its
    # lease (jobs.lease, the reaper's own rule) says whether its worker stopped or is late.
    state = lease(job)
    if state == STOPPED:
        described.update(status="restarting", eta_seconds=None,
                         step="its worker stopped: restarting as soon as a worker is free")
    elif state == LATE:
        described.update(eta_seconds=None, step="no word from its worker: waiting")
    elif job.status == JobStatus.QUEUED and (job.error or "").startswith(RECOVERED_NOTE):
        described.update(status="restarting", step="its worker stopped: waiting for a worker to run it again")
    return described


def asset_dict(asset: Asset, job: Job | None = None) -> dict[str, Any]:
    """An asset as the API shows it (contract: id, title, kind, state, sha256, duration,
    recorded_at, sources[], renditions[], problems[]; the rest is added)."""
    return {
        "id": asset.public_id,
        "title": asset.title,
        "translations": asset.translations or {},
        "kind": asset.kind.value,
        "state": asset.state.value,
        "sha256": asset.sha256,
        "duration": round(asset.duration, 3) if asset.duration is not None else None,
        "recorded_at": _iso(asset.recorded_at),
        "sources": [{"position": s.position, "name": s.original_name, "sha256": s.sha256, "size": s.size,
                     "duration": s.duration, "fixity_ok": s.fixity_ok, **where_kept(s)} for s in asset.sources],
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
        "rendition_states": {s.kind.value: {"state": s.state.value, "attempts": s.attempts, "error": s.error}
                             for s in asset.rendition_states},
        "timecode": asset.timecode,
        "stream": stream_dict(asset),
        "fixity": asset_fixity(asset),
        "job": job_progress(job),
    }


def history(asset: Asset) -> list[AssetEvent]:
    return list(db.session.scalars(sa.select(AssetEvent).where(AssetEvent.asset_id == asset.id)
                                   .order_by(AssetEvent.at, AssetEvent.id)))


TITLE_MAX = 300


def _clean_title(title: str) -> str:
    """A title as donors read it (their library, their files' names, the gallery): one line of what
    prints (typed.one_line: no control, bidi override or invisible format)."""
    title = one_line(title)
    if not title:
        raise ValidationError(_("A title cannot be empty."), code="invalid_title")
    return title[:TITLE_MAX]


def typed_title(title: Any) -> str | None:
    """A title typed where footage comes in (the upload form's, a resumable or direct-to-S3
    upload's, `media ingest --title`) by the same rule as the asset page's (`_clean_title`): what
    donors read and their files are named by. None when nothing printable was typed (the
    caller then names the asset by its file)."""
    if not isinstance(title, str):
        return None
    try:
        return _clean_title(title)
    except ValidationError:
        return None


def _clean_title_version(text: dict) -> dict[str, str]:
    title = text.get("title")
    return {"title": _clean_title(title if isinstance(title, str) else "")}


def update_notes(asset: Asset, title: str | None, notes: str | None, translations: dict | None = None) -> None:
    """The producers' title and notes of an asset, and, when given, its title in the other
    languages (replacing them all; a language left blank has none, and its readers get the main
    title). Checked first, so a refused version changes nothing. The caller commits."""
    versions = (producers_versions(translations, _clean_title_version) if translations is not None
                else None)
    if title is not None:
        asset.title = _clean_title(title)
    if notes is not None:
        asset.notes = notes[:10000]
    if versions is not None:
        asset.translations = versions
