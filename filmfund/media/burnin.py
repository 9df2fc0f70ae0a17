"""Captions burned into a donor copy: the donors' web rendition with one language's final
captions drawn into the picture by ffmpeg's `subtitles` filter (libass, a CJK font), for players
and phones that show no caption track. The copy has no subtitle stream and no metadata but its
title; it is kept on the caption's row (`burned_*`) and offered beside the clean download.

A producer asks for it on the asset's page (queued: `burn_captions_task`) or with
`filmfund media burn ID --lang LANG` (here, with a progress bar). New captions make the old copy
stale: `captions.put` drops it, and deletes its object once nothing refers to it (so do deleting
the captions, a burn whose words were edited or deleted meanwhile, and a burn that replaces one).
"""
from __future__ import annotations

import shutil
import uuid
from typing import Callable

import sqlalchemy as sa
from flask_babel import gettext as _

from filmfund.db import utcnow
from filmfund.errors import ConflictError, NotFoundError
from filmfund.extensions import db
from filmfund.media import captions, ffmpeg
from filmfund.media.common import _timeout, drop_unreferenced, profiles, storage, work_dir, worker_name
from filmfund.media.jobs import burn_beat
from filmfund.media.models import Asset, AssetState, Caption, CaptionStatus, RenditionKind

Progress = Callable[[float], None]  # 0..1


def _check(asset: Asset, lang: str) -> Caption:
    caption = captions.get(asset, lang)
    if caption.status != CaptionStatus.FINAL:
        raise ConflictError(_("Only final captions are burned into a donor copy: mark them final first."),
                            code="captions_draft")
    if asset.state != AssetState.READY or asset.rendition(RenditionKind.WEB) is None:
        raise ConflictError(_("This clip has no donor copy yet: publish it first (its web rendition is made then)."),
                            code="no_donor_copy")
    return caption


def request(asset: Asset, lang: str) -> Caption:
    """Queue a burn (the page's button). The caller commits, then enqueues `burn_captions_task`."""
    caption = _check(asset, lang)
    caption.burn_state, caption.burn_error = "queued", None
    return caption


def claim(asset: Asset, lang: str) -> bool:
    """Take a queued burn for this worker (the task, before `burn`); False when it is not queued
    any more (done, or taken by another message of the same request: worker start re-sends the
    queued burns, jobs.recover_burns). Commits."""
    taken = db.session.execute(
        sa.update(Caption).where(Caption.asset_id == asset.id, Caption.lang == captions.normalize_lang(lang),
                                 Caption.burn_state == "queued")
        .values(burn_state="running", burn_error=None, burn_worker=worker_name(), burn_beat_at=utcnow())
        .execution_options(synchronize_session=False))
    db.session.commit()
    db.session.expire_all()
    return taken.rowcount == 1


def burn(asset: Asset, lang: str, *, progress: Progress | None = None) -> Caption:
    """Make the burned copy now and keep it on the caption. Commits its state changes itself
    (running, then ready or failed), as a job does: a failure is recorded, not lost. While it runs
    it beats as a job does (jobs.burn_beat), so a burn whose worker died is marked failed by the
    reaper (jobs.recover_burns), never left running."""
    caption = _check(asset, lang)
    caption_id = caption.id  # read again by id below: the row may be gone by then
    caption.burn_state, caption.burn_error = "running", None
    caption.burn_worker, caption.burn_beat_at = worker_name(), utcnow()
    db.session.commit()
    web = asset.rendition(RenditionKind.WEB)
    vtt_text = caption.vtt
    work = work_dir() / f"burn-{uuid.uuid4().hex}"
    work.mkdir()
    try:
        with burn_beat(caption_id):  # its heartbeat: the reaper tells a live burn from a dead one
            vtt = work / "captions.vtt"
            vtt.write_text(vtt_text, encoding="utf-8")
            out = work / "burned.mp4"
            profile = dict(profiles().get("web", {}))
            with storage().local_path(web.storage_key, work) as src:
                info = ffmpeg.summarize(ffmpeg.probe(str(src)))
                profile["_has_audio"] = info.has_audio
                argv = ffmpeg.burn_captions_argv(str(src), str(vtt), str(out), profile, title=asset.title)
                duration = info.duration or asset.duration or 1

                def on_progress(p: dict[str, str]) -> None:
                    if progress is not None and p.get("out_time_ms", "").isdigit():
                        progress(min(1.0, int(p["out_time_ms"]) / 1e6 / duration))

                ffmpeg.run(argv, timeout=_timeout(duration, 40), on_progress=on_progress)
            stored = storage().put_file(out, ".mp4")
    except Exception as exc:
        db.session.rollback()
        caption = db.session.get(Caption, caption_id)
        if caption is not None:  # deleted meanwhile: nothing to mark, the failure is still raised
            caption.burn_state, caption.burn_error = "failed", str(exc)[:2000]
            caption.burn_worker = caption.burn_beat_at = None
            db.session.commit()
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    # Read the caption again as it stands now, not as this session last saw it (its identity map
    # would answer without a query): the producer may have edited or deleted it while ffmpeg ran.
    db.session.commit()
    caption = db.session.get(Caption, caption_id)
    replaced = None
    if caption is None or caption.vtt != vtt_text:
        # Deleted, or edited meanwhile: this copy is stale already and nothing will refer to it.
        if caption is not None:
            caption.burn_state, caption.burn_error, caption.burn_worker, caption.burn_beat_at = "none", None, None, None
        db.session.commit()
        if stored.created:
            drop_unreferenced([stored.key])
        if caption is None:
            raise NotFoundError(_("These captions were deleted while their copy was being made: nothing was kept."))
    else:
        replaced = caption.burned_key  # an earlier burn of the same words, if its bytes differ
        caption.burned_key, caption.burned_sha256, caption.burned_size = stored.key, stored.sha256, stored.size
        caption.burned_at, caption.burn_state, caption.burn_error = utcnow(), "ready", None
        caption.burn_worker = caption.burn_beat_at = None
        db.session.commit()
        if replaced != stored.key:
            drop_unreferenced([replaced])
    if progress is not None:
        progress(1.0)
    return caption

