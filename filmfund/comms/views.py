"""Pages of filmfund.comms: thin callers of the use-case modules.

Donors and visitors: the updates archive (each update shown only to its audience) and the
one-click unsubscribe. Producers (under /admin/updates): write, preview, publish, and see
each update's deliveries.
"""
from __future__ import annotations

from flask import (Blueprint, current_app, flash, redirect, render_template, request, send_file,
                   url_for)
from flask_login import current_user
from flask_babel import gettext as _

from filmfund.comms import updates
from filmfund.errors import DomainError, NotFoundError, field_of, for_people
from filmfund.extensions import db, limiter
from filmfund.i18n import default_language, mailed_link, versions_from_form, versions_to_form
from filmfund.media.common import storage
from filmfund.rewards import mail_prefs
from filmfund.security import role_required

bp = Blueprint("comms", __name__, template_folder="templates")


# --- unsubscribe ----------------------------------------------------------------------------

@bp.route("/unsubscribe/<token>", methods=["GET", "POST"])
@limiter.limit("30 per minute")
@mailed_link(lambda token: mail_prefs.read_unsubscribe_token(token)[0].id)
def unsubscribe(token: str):
    """GET asks (a link scanner's visit changes nothing); POST stops that mail at once, whether
    from the page's button or from a mail client's one-click `List-Unsubscribe=One-Click`."""
    if request.method == "GET":
        user, topic = mail_prefs.read_unsubscribe_token(token)
        return render_template("comms/unsubscribe.html", token=token, email=user.email,
                               title=mail_prefs.topic_title(topic), done=False)
    if request.form.get("resubscribe") == "1":  # "I clicked by mistake": the same token turns it back on
        user, topic = mail_prefs.read_unsubscribe_token(token)
        mail_prefs.opt_in(user.id, topic)
        db.session.commit()
        return render_template("comms/unsubscribe.html", token=token, email=user.email,
                               title=mail_prefs.topic_title(topic), done=False, resubscribed=True)
    user, topic = mail_prefs.unsubscribe(token, via="one-click" if request.form.get("List-Unsubscribe") else "link")
    db.session.commit()
    return render_template("comms/unsubscribe.html", token=token, email=user.email,
                           title=mail_prefs.topic_title(topic), done=True)


# --- the archive --------------------------------------------------------------------------

def _viewer():
    return current_user._get_current_object() if current_user.is_authenticated else None


@bp.get("/updates")
def update_list():
    return render_template("comms/updates.html", items=updates.readable_updates(_viewer()),
                           label=updates.readers_labeller())


@bp.get("/updates/<int:update_id>")
def update_page(update_id: int):
    try:
        update = updates.readable_update(_viewer(), update_id)
    except NotFoundError:
        if current_user.is_authenticated:
            raise
        # A signed-out visitor is asked to sign in (it may be a supporters' update), whatever the
        # number: the same answer for a missing one, so that the answer tells nothing.
        return render_template("comms/update_sign_in.html"), 401
    body = updates.render_html(update, lambda asset_id: url_for(
        "comms.update_image", update_id=update.id, asset_id=asset_id))
    return render_template("comms/update.html", update=update, text=updates.version(update), body=body,
                           label=updates.readers_label(update))


@bp.get("/updates/<int:update_id>/images/<asset_id>")
@limiter.limit("300 per minute")
def update_image(update_id: int, asset_id: str):
    """An image of an update: for its readers only (a session, or the personal link in a mail)."""
    reader = updates.image_reader(update_id, request.args.get("t"), _viewer())
    update = updates.readable_update(reader, update_id)
    key, content_type = updates.update_image(update, asset_id)

    store = storage()
    path = store.local_file(key)
    if path is not None:
        resp = send_file(path, mimetype=content_type, conditional=True, etag=True, max_age=0)
    else:
        body = store.open(key)
        resp = current_app.response_class(iter(lambda: body.read(256 * 1024), b""), mimetype=content_type)
    resp.headers["Cache-Control"] = "private, no-store"
    return resp


# --- producers ----------------------------------------------------------------------------

def _admin_list(values: dict | None = None, error: str | None = None, status: int = 200, bad: str | None = None):
    items = updates.list_updates()
    return render_template("comms/admin_updates.html", items=items,
                           counts=updates.delivery_counts([u.id for u in items]),
                           audiences=updates.audiences(), images=updates.library_images(),
                           values=values or {}, error=error, bad=bad, label=updates.audience_labeller()), status


@bp.get("/admin/updates")
@role_required("producer")
def admin_updates():
    return _admin_list()


@bp.post("/admin/updates")
@role_required("producer")
def create_update():
    f = request.form
    try:
        update = updates.create_update(title=f.get("title", ""), body=f.get("body", ""),
                                       audience=f.get("audience", ""),
                                       translations=versions_from_form(f, ("title", "body")),
                                       author=current_user)
        db.session.commit()
    except DomainError as err:
        return _admin_list(values=f.to_dict(), error=for_people(err.message), bad=field_of(err), status=400)
    flash(_("Draft saved. Check the preview, then publish."), "success")
    return redirect(url_for("comms.admin_update", update_id=update.id), code=303)


def _stored_values(update) -> dict[str, str]:
    """The update's form fields as stored: its main text, audience and versions."""
    return {"title": update.title, "body": update.body, "audience": update.audience,
            **versions_to_form(update.translations)}


def _admin_page(update, values: dict | None = None, error: str | None = None, status: int = 200,
                bad: str | None = None):
    def image_url(asset_id):
        return url_for("comms.update_image", update_id=update.id, asset_id=asset_id)

    body = updates.render_html(update, image_url, lang=default_language())  # the main text
    versions = [(lang, text["title"], updates.render_html(update, image_url, lang=lang))
                for lang, text in (update.translations or {}).items()]
    if values is None:
        values = _stored_values(update)
    return render_template("comms/admin_update.html", update=update, body=body, versions=versions,
                           counts=updates.delivery_counts([update.id]).get(update.id, {}),
                           rows=updates.delivery_rows(update.id), audiences=updates.audiences(),
                           images=updates.library_images(), label=updates.audience_label(update),
                           reach=updates.reach(update) if update.state == "draft" else None,
                           values=values, error=error, bad=bad), status


@bp.get("/admin/updates/<int:update_id>")
@role_required("producer")
def admin_update(update_id: int):
    return _admin_page(updates.get_update(update_id))


@bp.post("/admin/updates/<int:update_id>")
@role_required("producer")
def edit_update(update_id: int):
    f = request.form
    update = updates.get_update(update_id)
    try:
        updates.edit_update(update_id, title=f.get("title", ""), body=f.get("body", ""),
                            audience=f.get("audience", ""), translations=versions_from_form(f, ("title", "body")))
        db.session.commit()
    except DomainError as err:  # 409 if another producer published it meanwhile: the page shows it published
        return _admin_page(update, values=f.to_dict(), error=for_people(err.message), bad=field_of(err),
                           status=err.status)
    flash(_("Draft saved."), "success")
    return redirect(url_for("comms.admin_update", update_id=update_id), code=303)


@bp.post("/admin/updates/<int:update_id>/versions")
@role_required("producer")
def set_update_versions(update_id: int):
    f = request.form
    update = updates.get_update(update_id)
    try:
        updates.set_versions(update_id, versions_from_form(f, ("title", "body")))
        db.session.commit()
    except DomainError as err:
        return _admin_page(update, values={**_stored_values(update), **f.to_dict()},
                           error=for_people(err.message), status=400)
    flash(_("Versions saved: the archive and the update's page show them now. No mail was sent again."), "success")
    return redirect(url_for("comms.admin_update", update_id=update_id), code=303)


@bp.post("/admin/updates/<int:update_id>/publish")
@role_required("producer")
def publish_update(update_id: int):
    update, new = updates.publish_update(update_id, current_user._get_current_object())
    db.session.commit()
    if new:
        counts = updates.delivery_counts([update.id]).get(update.id, {})
        flash(_("Published. %(queued)s mail(s) queued, one per donor; %(unsubscribed)s donor(s) had unsubscribed.",
                queued=counts.get("queued", 0), unsubscribed=counts.get("unsubscribed", 0)), "success")
    else:
        flash(_("This update was already published; nothing was sent again."), "info")
    return redirect(url_for("comms.admin_update", update_id=update_id), code=303)


@bp.post("/admin/updates/<int:update_id>/retry")
@role_required("producer")
def retry_failed_deliveries(update_id: int):
    try:
        n = updates.retry_failed(update_id, current_user._get_current_object())
        db.session.commit()
    except DomainError as err:
        return _admin_page(updates.get_update(update_id), error=for_people(err.message), status=err.status)
    flash(_("%(n)s failed mail(s) queued again.", n=n) if n else _("No failed mail to send again."),
          "success" if n else "info")
    return redirect(url_for("comms.admin_update", update_id=update_id), code=303)
