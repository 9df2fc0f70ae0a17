"""Pages of the footage pipeline: the producers' board, an asset's page, uploads, proxy
playback with HTTP Range, and the donors' gated downloads. Thin callers of services."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import PurePath

from flask import (Blueprint, abort, current_app, flash, jsonify, redirect, render_template, request,
                   send_file, url_for)
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user

from filmfund.api import json_body
from filmfund.audit import record_audit
from filmfund.db import utcnow
from filmfund.errors import DomainError, NotFoundError, ValidationError
from filmfund.extensions import db, login_manager
from filmfund.i18n import format_money, other_languages, versions_from_form
from filmfund.media import burnin, public, resumable, screening, services, streaming
from filmfund.media import captions as media_captions
from filmfund.media.board import job_progress
from filmfund.media.fixity import where_kept
from filmfund.media.jobs import burn_stopped
from filmfund.media.library import caption_filename, resolve_caption_token, watchable
from filmfund.media.models import Asset
from filmfund.media.published import plays_clip
from filmfund.media.publishing import shown_title
from filmfund.media.storage import S3Storage, content_disposition
from filmfund.media.tasks import burn_captions_task
from filmfund.rewards import holdings, texts
from filmfund.rewards.campaign import current_campaign
from filmfund.security import role_required

bp = Blueprint("media", __name__, url_prefix="/footage", template_folder="templates",
               static_folder="static", static_url_path="/static")


@bp.app_template_filter("time_left")
def _time_left(seconds: float | None) -> str:
    """`about 40 s left`, `about 3 min left`, as the pages' scripts write it too."""
    if not seconds:
        return ""
    s = float(seconds)
    if s < 60:
        return f"about {max(1, round(s))} s left"
    if s < 3600:
        return f"about {round(s / 60)} min left"
    return f"about {int(s // 3600)} h {round((s % 3600) / 60)} min left"


@bp.app_template_global("job_progress")
def _job_progress(job):
    """Templates ask the one home of a job's progress (filmfund.media.board.job_progress)."""
    return job_progress(job)


# Donor-facing routes live outside /footage (which is the producers' area).
library_bp = Blueprint("library", __name__)

PRIVATE = "private, no-store"


def _serve(key: str, content_type: str, filename: str | None = None, *, attachment: bool = False):
    """Serve a stored object: local files with Range support (send_file conditional), S3
    objects by a short presigned redirect for video (S3 answers Range itself), streamed through
    us for images."""

    store = services.storage()
    path = store.local_file(key)
    if path is not None:
        resp = send_file(path, mimetype=content_type, conditional=True, etag=True, max_age=0,
                         as_attachment=attachment, download_name=filename if attachment else None)
    elif content_type.startswith("video/") or attachment:
        url = store.presigned_get(key, services.link_ttl(), filename or "download", content_type,
                                  inline=not attachment)
        resp = redirect(url, code=302)
    else:
        body = store.open(key)
        resp = current_app.response_class(iter(lambda: body.read(256 * 1024), b""), mimetype=content_type)
    if attachment and path is not None and filename:
        resp.headers["Content-Disposition"] = content_disposition(filename)
    resp.headers["Cache-Control"] = PRIVATE
    resp.headers["Referrer-Policy"] = "no-referrer"
    return resp


# The board asks for assets created since its last poll with this much overlap, so an asset
# committed a little after it was created is not missed (the page skips ids it already shows).
POLL_OVERLAP = timedelta(seconds=60)


def _filters() -> dict:
    return {k: (request.args.get(k) or "").strip() or None for k in ("state", "day", "camera", "q")}


@bp.get("/")
@role_required("producer")
def board():
    since = utcnow() - POLL_OVERLAP
    filters = _filters()
    assets = services.find_assets(**filters)
    return render_template("media/board.html", assets=assets, jobs=services.active_jobs(assets),
                           filters=filters, cameras=services.cameras(), since=since.isoformat(),
                           reward_titles=services.reward_titles(),
                           direct_upload=isinstance(services.storage(), S3Storage),
                           states=[s.value for s in services.AssetState])


@bp.get("/status.json")
@role_required("producer")
def status():
    """What the board polls (no reload): progress of the assets it shows with work in flight,
    each one's state and fixity (with its card re-rendered, to swap in when they change), and
    the cards of assets added since `since` that match the board's filters."""

    ids = [i for i in request.args.get("ids", "").split(",") if i][:200]
    since = None
    if request.args.get("since"):
        try:
            since = datetime.fromisoformat(request.args["since"])
        except ValueError:
            raise ValidationError(_("since: an ISO 8601 time from the board page."), code="invalid_since") from None
        since = since if since.tzinfo else since.replace(tzinfo=timezone.utc)
    now = utcnow()
    shown = services.assets_by_ids(ids)
    new = [] if since is None else [a for a in services.find_assets(**_filters(), created_after=since, limit=50)
                                    if a.public_id not in ids]
    jobs = services.active_jobs(shown + new)
    titles = services.reward_titles()

    def card(a):
        return render_template("media/_asset_card.html", a=a, jobs=jobs, reward_titles=titles)

    resp = jsonify({
        "items": [{"id": a.public_id, "state": a.state.value, "fixity": "alert" if a.fixity_ok is False else "ok",
                   "progress": jobs[a.id].progress if a.id in jobs else None,
                   "step": jobs[a.id].step if a.id in jobs else None,
                   "job": services.job_progress(jobs.get(a.id)), "html": card(a)} for a in shown],
        "new": [{"id": a.public_id, "html": card(a)} for a in new],
        "since": (now - POLL_OVERLAP).isoformat(),
    })
    resp.headers["Cache-Control"] = PRIVATE
    return resp


@bp.post("/upload")
@role_required("producer")
def upload():
    files = [f for f in request.files.getlist("file") if f and f.filename]
    if not files:
        flash(_("Choose one or more files to upload."), "error")
        return redirect(url_for("media.board"))
    title = (request.form.get("title") or "").strip() or None
    for f in files:
        result = services.ingest_upload(f.stream, f.filename, title if len(files) == 1 else None,
                                        limit=current_app.config["MAX_UPLOAD_BYTES"])
        db.session.commit()  # each file as it is stored (its verify job queued then): a later one refused keeps it
        flash(_("%(title)s: queued for verification", title=result.asset.title) if result.created else
              _("%(title)s: already here (same bytes)", title=result.asset.title), "info")
    return redirect(url_for("media.board"), code=303)


@bp.post("/uploads/start")
@role_required("producer")
def direct_upload_start():
    """Browser-to-S3 multipart upload, step 1: announce the file (JSON, CSRF header)."""
    body = json_body()
    return jsonify(services.start_direct_upload(current_user, body.get("filename"), body.get("size")))


@bp.post("/uploads/parts")
@role_required("producer")
def direct_upload_parts():
    """Step 2: presigned PUT URLs for some part numbers."""
    body = json_body()
    return jsonify({"urls": services.direct_upload_part_urls(current_user, body.get("upload"), body.get("parts"))})


@bp.post("/uploads/complete")
@role_required("producer")
def direct_upload_complete():
    """Step 3: assemble, check the size, hash, register the asset and queue its verification."""
    body = json_body()
    title = body.get("title") if isinstance(body.get("title"), str) else None
    result = services.complete_direct_upload(current_user, body.get("upload"), body.get("parts"), title or None)
    db.session.commit()  # the verify job is queued once committed
    return jsonify({"asset_id": result.asset.public_id, "state": result.asset.state.value,
                    "created": result.created, "url": url_for("media.asset_page", asset_id=result.asset.public_id)}
                   ), 201 if result.created else 200


# Resumable uploads through the app, to any storage (filmfund/media/resumable.py has the protocol).
UPLOAD_HEADERS = {"Tus-Resumable": "1.0.0", "Cache-Control": PRIVATE}


def _offset_response(have: int, size: int | None = None, status: int = 204):
    resp = current_app.response_class(status=status)
    resp.headers.update(UPLOAD_HEADERS)
    resp.headers["Upload-Offset"] = str(have)
    if size is not None:
        resp.headers["Upload-Length"] = str(size)
    return resp


@bp.post("/uploads/resumable")
@role_required("producer")
def resumable_start():
    """Open a resumable upload (JSON `{filename, size, title?}`, CSRF header)."""
    body = json_body()
    started = resumable.start(current_user, body.get("filename"), body.get("size"), body.get("title"))
    started["url"] = url_for("media.resumable_upload", token=started["upload"])
    resp = jsonify(started)
    resp.status_code = 201
    resp.headers.update(UPLOAD_HEADERS)
    resp.headers["Location"] = started["url"]
    return resp


@bp.route("/uploads/resumable/<token>", methods=["GET", "HEAD"])
@role_required("producer")
def resumable_upload(token: str):
    """How many bytes the server has (HEAD: the Upload-Offset header; GET: JSON)."""
    have, size = resumable.offset(current_user, token)
    if request.method == "HEAD":
        return _offset_response(have, size, 200)
    resp = jsonify({"offset": have, "size": size})
    resp.headers.update(UPLOAD_HEADERS)
    return resp


@bp.patch("/uploads/resumable/<token>")
@role_required("producer")
def resumable_append(token: str):
    """The bytes from Upload-Offset on (application/offset+octet-stream)."""
    if request.mimetype != "application/offset+octet-stream":
        raise ValidationError(_("Send the bytes as application/offset+octet-stream."), code="invalid_content_type")
    try:
        have = resumable.append(current_user, token, request.headers.get("Upload-Offset"), request.stream,
                                request.content_length)
    except resumable.OffsetMismatch as exc:
        resp = jsonify({"error": {"code": exc.code, "message": exc.message}, "offset": exc.have})
        resp.status_code = 409
        resp.headers["Upload-Offset"] = str(exc.have)
        return resp
    return _offset_response(have)


@bp.post("/uploads/resumable/<token>/complete")
@role_required("producer")
def resumable_complete(token: str):
    """Every byte is here: ingest the file as a form upload is ingested."""
    body = json_body() if request.content_length else {}
    title = body.get("title") if isinstance(body.get("title"), str) else None
    result = resumable.complete(current_user, token, (title or "").strip() or None)
    db.session.commit()  # the verify job is queued, and the partial file removed, once committed
    return jsonify({"asset_id": result.asset.public_id, "state": result.asset.state.value,
                    "created": result.created, "url": url_for("media.asset_page", asset_id=result.asset.public_id)}
                   ), 201 if result.created else 200


@bp.get("/<asset_id>")
@role_required("producer")
def asset_page(asset_id: str):
    return _asset_page(services.get_asset(asset_id))


def _asset_page(asset, **extra):
    jobs = services.active_jobs([asset])
    return render_template("media/asset.html", asset=asset, job=jobs.get(asset.id),
                           history=services.history(asset), data=services.asset_dict(asset, jobs.get(asset.id)),
                           targets=services.publish_targets(asset), reward_titles=services.reward_titles(),
                           caption_rows=_caption_rows(asset), where_kept=where_kept, **extra)


def _caption_rows(asset):
    """Each language's captions, and whether a burn shown running lost its worker (the reaper
    marks it failed within a minute; the page offers to burn it again at once, as it will)."""
    rows = media_captions.statuses(asset)
    for row in rows:
        row["burn_stopped"] = row["caption"] is not None and burn_stopped(row["caption"])
    return rows


_CAPTION_TYPES = {".srt": "application/x-subrip", ".vtt": "text/vtt"}


@bp.post("/<asset_id>/captions")
@role_required("producer")
def caption_save(asset_id: str):
    """Add or replace one language's captions: a .vtt/.srt file, or the text typed or pasted. A
    refusal shows the page again with what was typed, and the reason."""
    asset = services.get_asset(asset_id)
    form = {k: (request.form.get(k) or "").strip() for k in ("lang", "status", "translated_from")}
    form["text"] = request.form.get("text") or ""
    upload = request.files.get("file")
    if upload is not None and upload.filename:
        body = upload.stream.read(media_captions.MAX_BYTES + 1)
        ctype = _CAPTION_TYPES.get(PurePath(upload.filename).suffix.lower(), upload.mimetype)
    else:
        body, ctype = form["text"].encode("utf-8"), None
    try:
        caption, created = media_captions.put(asset, form["lang"], body, ctype, status=form["status"] or "final",
                                        translated_from=form["translated_from"] or None, user=current_user)
    except DomainError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return _asset_page(services.get_asset(asset_id), caption_form=form), exc.status
    db.session.commit()
    said = {"lang": caption.lang, "status": caption.status.value}
    flash(ngettext("Captions %(lang)s added: %(num)s cue, %(status)s.",
                   "Captions %(lang)s added: %(num)s cues, %(status)s.", caption.cues, **said) if created else
          ngettext("Captions %(lang)s saved: %(num)s cue, %(status)s.",
                   "Captions %(lang)s saved: %(num)s cues, %(status)s.", caption.cues, **said), "info")
    return redirect(url_for("media.asset_page", asset_id=asset_id) + "#captions", code=303)


@bp.post("/<asset_id>/captions/<lang>/delete")
@role_required("producer")
def caption_delete(asset_id: str, lang: str):
    media_captions.delete(services.get_asset(asset_id), lang, user=current_user)
    db.session.commit()
    flash(_("Captions %(lang)s removed.", lang=lang), "info")
    return redirect(url_for("media.asset_page", asset_id=asset_id) + "#captions", code=303)


@bp.post("/<asset_id>/captions/<lang>/burn")
@role_required("producer")
def caption_burn(asset_id: str, lang: str):
    """Queue a donor copy with these captions burned into the picture."""
    asset = services.get_asset(asset_id)
    try:
        caption = burnin.request(asset, lang)
    except DomainError as exc:
        flash(exc.message, "error")
    else:
        record_audit("media.captions_burn_queued", f"asset:{asset.public_id}", {"lang": caption.lang})
        db.session.commit()
        burn_captions_task(asset.id, caption.lang)
        flash(_("Burning the %(lang)s captions into a donor copy: this page shows when it is ready.",
                lang=caption.lang), "info")
    return redirect(url_for("media.asset_page", asset_id=asset_id) + "#captions", code=303)


@bp.get("/<asset_id>/captions/<lang>/burned.mp4")
@role_required("producer")
def caption_burned_file(asset_id: str, lang: str):
    asset = services.get_asset(asset_id)
    caption = media_captions.get(asset, lang)
    if not caption.burned_key:
        raise NotFoundError(_("No donor copy with these captions yet."))
    return _serve(caption.burned_key, "video/mp4", f"{asset.title} ({caption.lang}).mp4")


@bp.get("/<asset_id>/captions/<lang>.vtt")
@role_required("producer")
def caption_file(asset_id: str, lang: str):
    asset = services.get_asset(asset_id)
    caption = media_captions.get(asset, lang)
    return media_captions.vtt_response(caption, filename=f"{asset.title}.{caption.lang}.vtt")


@bp.post("/<asset_id>")
@role_required("producer")
def asset_update(asset_id: str):
    asset = services.get_asset(asset_id)
    # A post without the versions' fields (a script sending the title alone) leaves them as they are.
    carried = any(f"title:{lang}" in request.form for lang in other_languages())
    services.update_notes(asset, request.form.get("title"), request.form.get("notes"),
                          versions_from_form(request.form, ("title",)) if carried else None)
    db.session.commit()
    flash(_("Saved."), "info")
    return redirect(url_for("media.asset_page", asset_id=asset_id), code=303)


@bp.post("/<asset_id>/verify")
@role_required("producer")
def asset_verify(asset_id: str):
    services.reverify(services.get_asset(asset_id))
    db.session.commit()  # the verify job is queued once committed
    flash(_("Verification queued."), "info")
    return redirect(url_for("media.asset_page", asset_id=asset_id), code=303)


@bp.post("/<asset_id>/publish")
@role_required("producer")
def asset_publish(asset_id: str):
    """Publish to a digital reward from the asset page; any refusal is a message on the page."""
    asset = services.get_asset(asset_id)
    titles = services.reward_titles()
    reward = (request.form.get("reward") or "").strip()
    # What donors get of a video: the clip (default), or a still chosen on the page (its poster frame)
    rendition = (request.form.get("as") or "").strip() or None
    try:
        _pub, created = services.publish(asset, reward, rendition=rendition, user=current_user)
        db.session.commit()  # the donors' renditions are queued once committed
    except DomainError as exc:
        flash(exc.message, "error")
    else:
        title = titles.get(reward, reward)
        flash(_("Published to “%(title)s”.", title=title) if created else
              _("Already published to “%(title)s”.", title=title), "info")
    return redirect(url_for("media.asset_page", asset_id=asset_id) + "#publishing", code=303)


@bp.post("/<asset_id>/unpublish")
@role_required("producer")
def asset_unpublish(asset_id: str):
    asset = services.get_asset(asset_id)
    reward = (request.form.get("reward") or "").strip()
    try:
        services.unpublish(asset, reward)
        db.session.commit()
    except NotFoundError:
        raise
    except DomainError as exc:
        flash(exc.message, "error")
    else:
        flash(_("Unpublished from “%(title)s”: donors no longer see it.",
                title=services.reward_titles().get(reward, reward)), "info")
    return redirect(url_for("media.asset_page", asset_id=asset_id) + "#publishing", code=303)


@bp.post("/<asset_id>/retry")
@role_required("producer")
def asset_retry(asset_id: str):
    """Make the failed or missing renditions again (or the one named in `kind`)."""
    asset = services.get_asset(asset_id)
    try:
        services.retry_renditions(asset, (request.form.get("kind") or "").strip() or None)
        db.session.commit()  # the job is queued once committed
    except DomainError as exc:
        flash(exc.message, "error")
    else:
        flash(_("Renditions queued again."), "info")
    return redirect(url_for("media.asset_page", asset_id=asset_id), code=303)


@bp.get("/<asset_id>/r/<kind>")
@role_required("producer")
def rendition(asset_id: str, kind: str):
    asset = services.get_asset(asset_id)
    r, _url = services.rendition_link(asset, kind)
    ext = services.EXTENSIONS.get(r.content_type, "")
    return _serve(r.storage_key, r.content_type, f"{asset.title} {kind}{ext}")


def _library_download(asset_id: str):
    """The donor's copy of an asset, entitlement checked on every request (a producer sees
    what donors get); 404 for anything else."""

    if not current_user.is_authenticated:

        return None, login_manager.unauthorized()
    if current_user.has_role("partner") and not current_user.has_role("donor", "producer"):
        abort(403)
    if current_user.has_role("producer"):
        asset = services.get_asset(asset_id)
        pub = asset.publications[0] if asset.publications else None
        dl = services._download_for(pub) if pub else None
    else:
        dl = services.entitled_download(current_user, asset_id)
    if dl is None:
        raise NotFoundError(_("No such item in your library."))
    return dl, None


@library_bp.get("/library/<asset_id>")
def item(asset_id: str):
    """A donor's download: entitlement checked on every request, a fresh short link each time."""
    dl, refusal = _library_download(asset_id)
    if refusal is not None:
        return refusal
    return _serve(dl.storage_key, dl.content_type, dl.filename, attachment=True)


@library_bp.get("/library/<asset_id>/play")
def play(asset_id: str):
    """The inline player's source: the donor's web rendition, with HTTP Range (a local file is
    served in ranges; on S3 a short presigned link, which S3 serves in ranges)."""
    dl, refusal = _library_download(asset_id)
    if refusal is not None:
        return refusal
    if not dl.content_type.startswith("video/"):
        raise NotFoundError(_("This item has no player."))
    return _serve(dl.storage_key, dl.content_type, dl.filename)


@library_bp.get("/library/<asset_id>/poster")
def poster(asset_id: str):
    """The item's poster thumbnail (a still made for donors, without metadata)."""
    dl, refusal = _library_download(asset_id)
    if refusal is not None:
        return refusal
    r = dl.asset.rendition("poster")
    if r is None:
        raise NotFoundError(_("This item has no poster."))
    return _serve(r.storage_key, r.content_type)


def _watched_clip(user, asset_id: str) -> Asset:
    """The clip a donor may watch now, whose captions go with the player (library.watchable, the
    rule the stream asks too); 404 otherwise."""
    asset = watchable(user, asset_id)
    if asset is None:
        raise NotFoundError(_("No such item in your library."))
    return asset


@library_bp.get("/library/<asset_id>/captions/<lang>.vtt")
def captions(asset_id: str, lang: str):
    """The <track> of the library's player: a final WebVTT of a clip this donor may watch now
    (checked on every request, as the player's stream is)."""

    if current_user.is_authenticated and not current_user.has_role("producer"):
        if current_user.has_role("partner") and not current_user.has_role("donor"):
            abort(403)  # the charity never sees donors' media
        asset = _watched_clip(current_user, asset_id)
    else:
        dl, refusal = _library_download(asset_id)  # signs in the anonymous; a producer sees what donors get
        if refusal is not None:
            return refusal
        asset = dl.asset
    caption = media_captions.find(asset, lang)
    if caption is None or (caption.status != media_captions.CaptionStatus.FINAL and not current_user.has_role("producer")):
        raise NotFoundError(_("No such captions."))
    # Also the page's download link (`download`): named after the clip, not `zh-Hans.vtt`.
    return media_captions.vtt_response(caption, filename=caption_filename(caption))


@library_bp.get("/library/<asset_id>/captions/<lang>/burned.mp4")
def captions_burned(asset_id: str, lang: str):
    """The donor copy with these (final) captions burned in: entitlement checked on every request."""
    dl, refusal = _library_download(asset_id)
    if refusal is not None:
        return refusal
    if not current_user.has_role("producer") and not plays_clip(dl.asset, dl.publication):
        raise NotFoundError(_("No such copy."))  # published as a still: the clip is never theirs
    caption = media_captions.find(dl.asset, lang)
    if caption is None or caption.status != media_captions.CaptionStatus.FINAL or not caption.burned_key:
        raise NotFoundError(_("No such copy."))
    return _serve(caption.burned_key, "video/mp4", f"{shown_title(dl.asset).title} ({caption.lang}).mp4",
                  attachment=True)


@library_bp.get("/library/captions/<token>")
def captions_signed(token: str):
    """The API's captions link: signed, expiring, bound to the donor it was made for."""
    caption = resolve_caption_token(token, current_user if current_user.is_authenticated else None)
    return media_captions.vtt_response(caption, filename=caption_filename(caption))


@library_bp.get("/library/download/<token>")
def download(token: str):
    """A signed, expiring link bound to the donor it was made for (local storage)."""
    session_user = current_user if current_user.is_authenticated else None
    _user, dl = services.resolve_download_token(token, session_user)
    # Local files are streamed with Range; were storage moved to S3 since, _serve redirects.
    return _serve(dl.storage_key, dl.content_type, dl.filename, attachment=True)




# Public files are re-checked on every request (unpublishing takes them down at once); a shared
# cache may keep one a minute.
PUBLIC_CACHE = "public, max-age=60"
_PUBLIC_EXT = {"video": "mp4", "poster": "jpg", "still": "jpg"}


@library_bp.get("/public/<asset_id>/<what>.<ext>")
def public_file(asset_id: str, what: str, ext: str):
    """A clean copy of an asset published to the public: the trailer's web rendition (HTTP Range),
    its poster, or a still of the gallery. Nobody signs in for these."""

    if _PUBLIC_EXT.get(what) != ext:
        raise NotFoundError(_("No such file."))
    r = public.public_file(asset_id, what)
    resp = _serve(r.storage_key, r.content_type)
    resp.headers["Cache-Control"] = PUBLIC_CACHE
    del resp.headers["Referrer-Policy"]
    return resp


@library_bp.get("/public/<asset_id>/captions/<lang>.vtt")
def public_captions(asset_id: str, lang: str):
    """A public video's final captions in one language (the trailer's <track>s): re-checked on
    every request as the other public files are; 404 for a draft or an asset not public now."""

    resp = media_captions.vtt_response(public.public_caption(asset_id, lang))
    resp.headers["Cache-Control"] = PUBLIC_CACHE  # its URL carries the text's version (public.PublicCaption)
    return resp


# --- streaming (HLS): filmfund/media/streaming.py -------------------------------------------------

def _playlist(text: str, cache: str = PRIVATE):
    resp = current_app.response_class(text, mimetype="application/vnd.apple.mpegurl")
    resp.headers["Cache-Control"] = cache
    resp.headers["Referrer-Policy"] = "no-referrer"
    return resp


def _segment_response(key: str | None = None, path=None, cache: str = PRIVATE):
    """A segment: a local file (or a donor's marked copy) with Range, an S3 object streamed
    through the app (so the player never talks to another host)."""

    if path is None:
        path = services.storage().local_file(key)
    if path is not None:
        resp = send_file(path, mimetype="video/mp2t", conditional=True, etag=True, max_age=0)
    else:
        body = services.storage().open(key)
        resp = current_app.response_class(iter(lambda: body.read(256 * 1024), b""), mimetype="video/mp2t")
    resp.headers["Cache-Control"] = cache
    resp.headers["Referrer-Policy"] = "no-referrer"
    return resp


def _stream_access(token: str, *, play: bool):
    return streaming.resolve(token, play=play, session_user=current_user if current_user.is_authenticated else None)


def _log(access) -> None:
    """A donor's GET of a playlist is a viewing. A HEAD is not: a chat app unfurling a shared
    link, or a download manager probing it, watches nothing (and would count an address toward
    the donor's flag)."""
    if not access.producer and request.method == "GET":
        screening.log_viewing(access.user, access.asset, request.remote_addr, screening=access.screening)
        db.session.commit()


def _master(access):
    """The master playlist, the viewing logged, its variants named under this viewing's token."""
    _log(access)
    play = streaming.play_token(access.user, access.asset)
    return _playlist(streaming.master_for(access, url_for("library.stream_master", token=play)
                                          .rsplit("/", 1)[0] + "/"))


@library_bp.get("/stream/<token>/master.m3u8")
def stream_master(token: str):
    """The master playlist of a donor's stream (stream_url): the signed link is checked, then
    whether the donor may watch now."""
    return _master(_stream_access(token, play=False))


@library_bp.get("/library/<asset_id>/stream.m3u8")
def stream_here(asset_id: str):
    """The library page's player: the same master playlist for the signed-in donor (the page can
    stay open longer than a signed link lives)."""

    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    if current_user.has_role("partner") and not current_user.has_role("donor", "producer"):
        abort(403)  # the charity never sees donors' media
    if current_user.has_role("producer"):
        asset = db.session.scalar(db.select(Asset).where(Asset.public_id == asset_id))
    else:
        # Whether this donor may watch it is asked first: an asset they may not watch answers as
        # one that does not exist (404, as /library/<id> does), never "not available" or "not
        # entitled", which would tell that a raw, unpublished clip exists (reliability.md #21).
        asset = watchable(current_user, asset_id)
    if asset is None:
        raise NotFoundError(_("No such item in your library."))
    return _master(streaming.check(current_user, asset))


@library_bp.get("/stream/<token>/<name>.m3u8")
def stream_variant(token: str, name: str):
    access = _stream_access(token, play=True)
    _log(access)
    return _playlist(streaming.variant_for(access.stream, name + ".m3u8"))


@library_bp.get("/stream/<token>/s/<name>")
def stream_segment(token: str, name: str):
    """A segment: access checked again (a refund or the screening's end stops it at once); an
    early-access screening's segment carries the donor's mark."""

    access = _stream_access(token, play=True)
    seg = streaming.segment(access.stream, name)
    if access.screening:
        return _segment_response(path=screening.marked_segment(access.user, access.stream, name, seg))
    return _segment_response(seg["key"])


@library_bp.get("/public/<asset_id>/hls/master.m3u8")
def public_stream_master(asset_id: str):
    """The public trailer's stream: plain URLs, cacheable a minute, public re-checked each time."""
    public.public_file(asset_id, "video")  # 404 unless public now (ready, not in fixity alert)
    row = streaming.public_stream(asset_id)
    return _playlist(row.index["master"], PUBLIC_CACHE)


@library_bp.get("/public/<asset_id>/hls/<name>.m3u8")
def public_stream_variant(asset_id: str, name: str):
    public.public_file(asset_id, "video")
    return _playlist(streaming.variant_for(streaming.public_stream(asset_id), name + ".m3u8"), PUBLIC_CACHE)


@library_bp.get("/public/<asset_id>/hls/s/<name>")
def public_stream_segment(asset_id: str, name: str):
    public.public_file(asset_id, "video")
    seg = streaming.segment(streaming.public_stream(asset_id), name)
    return _segment_response(seg["key"], cache=PUBLIC_CACHE)


# --- early access: filmfund/media/screening.py ----------------------------------------------------

@library_bp.get("/screening")
def screening_page():
    """Everyone's page of the early-access screening: when (in the reader's zone, by js/local-time.js;
    UTC without script), what it takes (the tier holding the reward) and, for a donor who holds it
    while it is open, the way to their library."""

    window = screening.window()
    campaign = current_campaign()
    tier = reward = None
    if window is not None:
        for t in campaign.tiers:
            for r in t.rewards:
                if r.key == window.reward and tier is None:
                    tier, reward = t, r
    holds = False
    if window is not None and current_user.is_authenticated:

        holds = window.reward in holdings.held_keys(current_user.id, current_campaign().id)
    resp = current_app.response_class(render_template(
        "media/screening.html", window=window, state=window.state() if window else None,
        tier_name=texts.tier_name(campaign.translations, tier) if tier else None,
        reward_title=texts.reward_title(campaign.translations, reward) if reward else None,
        amount=format_money(tier.min_amount, campaign.currency, whole=True) if tier else None,
        holds=holds, campaign_title=texts.campaign_title(campaign)))
    resp.headers["Cache-Control"] = "private, no-cache"
    return resp


@bp.get("/screening")
@role_required("producer")
def screening_report():
    """The producer's screening page: the window, viewings per asset, the flags, and who is
    behind a mark's code. No address is shown (only its hash is kept)."""

    code = (request.args.get("code") or "").strip()[:16]
    who = screening.whois(code) if code else None
    if code:  # naming a donor from a mark is a producer's act on donor data: audited

        record_audit("media.whois", f"mark {code.upper()}", {"found": who is not None}, actor=current_user)
        db.session.commit()
    window = screening.window()
    return render_template("media/screening_report.html", report=screening.report(), window=window,
                           state=window.state() if window else None,
                           assets=screening.screening_assets(window.reward) if window else [],
                           code=code, who=who)
