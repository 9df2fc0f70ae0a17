"""Pages of fulfilment. Thin: parse the form, call one service, render or redirect.

Donors: their shipping address, the receipt of a parcel, their credits proof (signed in), and
the same address survey and proof through the signed link mailed to them. Producers: the
per-reward queues, item states, letters, the packing list, the credits (freeze, proofs, roll).
"""
from __future__ import annotations

from datetime import datetime, time, timezone

import sqlalchemy as sa
from flask import (Blueprint, abort, flash, jsonify, redirect, render_template, request, send_file,
                   url_for)
from flask_login import current_user
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext

from filmfund import csvsafe, progress
from filmfund.audit import record_audit
from filmfund.auth import links
from filmfund.auth.models import User
from filmfund.auth.services import email_for_people
from filmfund.errors import DomainError, ValidationError, field_of, for_people
from filmfund.extensions import db, limiter
from filmfund.fulfil import credits, fulfilment, statement, tasks
from filmfund.fulfil import roll as roll_video
from filmfund.fulfil.countries import country_groups
from filmfund.fulfil.models import FulfilmentItem
from filmfund.fulfil.tokens import link_user
from filmfund.i18n import current_language, mailed_link
from filmfund.rewards.campaign import current_campaign
from filmfund.rewards.models import Reward
from filmfund.security import role_required

bp = Blueprint("fulfil", __name__, template_folder="templates")
admin_bp = Blueprint("fulfil_admin", __name__, url_prefix="/admin", template_folder="templates")



def _address_form() -> dict:
    return {f: request.form.get(f, "")[:400] for f in fulfilment.ADDRESS_FIELDS}


def _address_values(user: User, posted: bool) -> dict:
    """What the address form shows: what was just posted (refused), or the address we have."""
    if posted:
        return {**_address_form(), **({"dedication": request.form["dedication"][:400]}
                                      if "dedication" in request.form else {})}
    address = fulfilment.get_address(user.id)
    return {f: getattr(address, f) for f in fulfilment.ADDRESS_FIELDS} if address else {}


def _address_refusal(err: DomainError | None) -> dict:
    """What the address form says of a refusal: each field to mend with its message (every one an
    address names at once, fulfilment.AddressRefused), or a message for the whole form."""
    if err is None:
        return {"errors": {}, "error": None}
    if isinstance(err, fulfilment.AddressRefused):
        return {"errors": {f: for_people(m) for f, m in err.fields.items()}, "error": None}
    bad = field_of(err)
    if bad in ADDRESS_FORM_FIELDS:
        return {"errors": {bad: for_people(err.message)}, "error": None}
    return {"errors": {}, "error": for_people(err.message)}


# The address form's fields: the address's own, and the parcel's dedication beside them.
ADDRESS_FORM_FIELDS = frozenset({*fulfilment.ADDRESS_FIELDS, "dedication"})


def _donor_context(user: User) -> dict:
    campaign = current_campaign()
    st = statement.rewards_statement(user)
    signed = [row for row in fulfilment.donor_items(user, campaign) if row["signed"] and not row["revoked"]]
    return {"campaign": campaign, "st": st, "signed": signed, "countries": country_groups(current_language()),
            "deadline": credits.proof_deadline_day(campaign), "proof_open": credits.proof_open(campaign)}


def _page(template: str, **context) -> str:
    """A page whose statement made the reward items it shows (fulfilment.sync_items), then the
    commit of those items: after the render, which a commit before it would make load again every
    row it expired."""
    html = render_template(template, **context)
    db.session.commit()
    return html


def _save_address(user: User, source: str) -> DomainError | None:
    """Save the posted address (and dedication); the refusal (for the page to say at its field), or None."""
    campaign = current_campaign()
    try:
        fulfilment.save_address(user, _address_form(), source=source)
        if "dedication" in request.form:
            fulfilment.set_dedication(user, campaign, request.form.get("dedication", ""))
        db.session.commit()  # the address and the dedication together, or neither
    except DomainError as err:
        db.session.rollback()
        return err
    return None


def _save_proof(user: User) -> str | None:
    campaign = current_campaign()
    decision = request.form.get("decision")
    try:
        if decision not in ("approve", "changes"):
            raise ValidationError(_("Approve the line, or say what should change."), code="invalid_field")
        if decision == "changes":
            credits.request_changes(user, campaign, request.form.get("note", ""))
        else:
            wording = request.form.get("wording")
            credits.approve_proof(user, campaign, wording=wording[:600] if wording is not None else None)
        db.session.commit()
    except DomainError as err:
        db.session.rollback()
        return for_people(err.message)
    return None


# ---------------------------------------------------------------- donors, signed in

@bp.route("/account/address", methods=["GET", "POST"])
@role_required("donor")
@limiter.limit("30 per hour", methods=["POST"])
def address():
    user = current_user._get_current_object()
    error = None
    if request.method == "POST":
        error = _save_address(user, "account")
        if error is None:
            flash(_("Address saved: your rewards will go there."), "success")
            return redirect(url_for("site.account", _anchor="rewards-heading"), code=303)
    ctx = _donor_context(user)
    return _page("fulfil/address.html", form=_address_values(user, bool(error)), refusal=_address_refusal(error),
                 action=url_for("fulfil.address"), **ctx), 400 if error else 200


@bp.post("/account/items/<int:item_id>/received")
@role_required("donor")
def item_received(item_id: int):
    fulfilment.confirm_received(current_user._get_current_object(), item_id)
    db.session.commit()
    flash(_("Thank you for telling us it arrived."), "success")
    return redirect(url_for("site.account", _anchor="rewards-heading"), code=303)


# Why a signed-in donor has no line to proofread (credits.why_no_line), said where the choice is changed.
_NO_LINE = {
    "opted_out": _l("Your name is not in the credits: you chose no rewards, and the credit is one of them. "
                    "You can change that in your settings below."),
    "anonymous": _l("Your name is not in the credits: you asked to stay anonymous. You can change that in "
                    "your settings below."),
    "no_name": _l("Your name is not in the credits: you gave no credit name. You can change that in your "
                  "settings below."),
    "none": _l("You have no line in the credits (anonymous, no credit name, or no credit reward)."),
}


@bp.route("/account/credits", methods=["GET", "POST"])
@role_required("donor")
@limiter.limit("30 per hour", methods=["POST"])
def proof():
    user = current_user._get_current_object()
    error = None
    if request.method == "POST":
        error = _save_proof(user)
        if error is None:
            flash(_("Thank you: your line in the credits is confirmed."), "success")
            return redirect(url_for("site.account", _anchor="rewards-heading"), code=303)
    ctx = _donor_context(user)
    if ctx["st"]["line"] is None and ctx["st"]["waiting_name"] is None and error is None:
        # Nothing to proofread: a donor who followed a proof's link is told the true reason
        # (credits.why_no_line), where a choice of theirs can be changed, not "page not found".
        why = credits.why_no_line(user, ctx["campaign"])
        if why == "refunded":  # nothing in the settings brings it back
            flash(_("Your name is not in the credits: after the refund, your total no longer includes a "
                    "credit."), "info")
            return redirect(url_for("site.account", _anchor="rewards-heading"), code=303)
        flash(str(_NO_LINE[why]), "info")
        return redirect(url_for("site.account", _anchor="settings"), code=303)
    return _page("fulfil/proof.html", error=error, action=url_for("fulfil.proof"), **ctx), \
        400 if error else 200


# ---------------------------------------------------------------- donors, by the mailed link

@bp.route("/rewards/survey/<token>", methods=["GET", "POST"])
@limiter.limit("30 per hour", methods=["POST"])
@mailed_link(lambda token: link_user(token, "survey").id)
def survey(token: str):
    user = link_user(token, "survey")  # an erased donor's link is a stale one: 404, nothing written
    errors: dict[str, str] = {}
    done: list[str] = []
    refusal = _address_refusal(None)  # the address form's: each field to mend, or the whole form's
    if request.method == "POST":
        # The survey's link was mailed to the donor: kept with what the form saves (its commit).
        links.mailbox_proven.send(user, why="the donor answered the address survey mailed to the address")
        which = request.form.get("form")
        if which == "address":
            refused = _save_address(user, "survey")
            if refused:
                errors["address"], refusal = for_people(refused.message), _address_refusal(refused)
            else:
                done.append("address")
        elif which == "proof":
            error = _save_proof(user)
            (errors.__setitem__("proof", error) if error else done.append("proof"))
        else:
            abort(400, description=_("Send one of the forms on the page."))
    ctx = _donor_context(user)
    html = _page("fulfil/survey.html", errors=errors, done=done, user=user, refusal=refusal,
                 form=_address_values(user, bool(errors.get("address"))),
                 action=url_for("fulfil.survey", token=token), **ctx)
    # The donor's address, without a session: never kept by a shared cache.
    return html, 400 if errors else 200, {"Cache-Control": "private, no-store"}


# ---------------------------------------------------------------- producers: queues and items

def _date(value: str | None, field: str) -> datetime | None:
    value = (value or "").strip()
    if not value:
        return None
    try:
        day = datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        raise ValidationError(_("%(field)s: give a date like 2027-03-01.", field=field),
                              code="invalid_date") from None
    return datetime.combine(day, time(23, 59, 59), tzinfo=timezone.utc)


def _actor() -> str:
    return current_user.email


@admin_bp.get("/rewards")
@role_required("producer")
def queues():
    campaign = current_campaign()
    return _page("fulfil/queues.html", campaign=campaign, queues=statement.queues(campaign),
                 flagged=fulfilment.refunded_after_shipping(campaign))


def _page_number(text: str | None) -> int:
    return int(text) if text and text.isdigit() and len(text) < 6 else 1


def _place(values) -> dict:
    """Where in a reward's list of holders a page is (request.args, or a step's form that comes
    back to it): the cursor it was read from (`after`, or `before` for a page back) and its number,
    a label carried along the links (keyset pages have no offset)."""
    after, before = (values.get("after") or "")[:40] or None, (values.get("before") or "")[:40] or None
    return {"after": after if not before else None, "before": before, "page": _page_number(values.get("page"))}


def _queue_page(key: str, state: str | None, place: dict, *, refused: dict | None = None, status: int = 200):
    """One reward's page of holders; `refused`: a move, signing or letter just refused (the item,
    the message naming it, the values typed, put back in its row)."""
    campaign = current_campaign()
    q = statement.queue_page(campaign, key[:64], state or None, after=place["after"], before=place["before"])
    q["page"] = 1 if q["first"] else max(2, place["page"])
    if refused:
        refused["on_page"] = any(row["item"] is not None and row["item"].id == refused["item_id"] for row in q["rows"])
    return render_template("fulfil/queue.html", campaign=campaign, q=q,
                           signed=fulfilment.is_signed(q["reward"]), letter=fulfilment.is_letter(q["reward"]),
                           states=statement.QUEUE_STATES, refused=refused), status


@admin_bp.get("/rewards/<key>")
@role_required("producer")
def queue(key: str):
    state, place = request.args.get("state") or None, _place(request.args)
    if place["page"] > 1 and not (place["after"] or place["before"]):
        # A link from before the pages were keyset (`?page=N` alone): the list's first page.
        return redirect(url_for("fulfil_admin.queue", key=key, state=state), code=302)
    return _queue_page(key, state, place)


def _back_to(key: str | None, state: str | None = None, place: dict | None = None):
    """The reward's page the producer came from (its filter and page kept), else the list of rewards."""
    if not key:
        return redirect(url_for("fulfil_admin.queues"), code=303)
    place = {k: v for k, v in (place or {}).items() if v and (k != "page" or v > 1)}
    return redirect(url_for("fulfil_admin.queue", key=key, state=state or None, **place), code=303)


def _reward_key(reward_id: int) -> str | None:
    reward = db.session.get(Reward, reward_id)
    return reward.key if reward else None


@admin_bp.post("/rewards/<key>/schedule")
@role_required("producer")
def schedule(key: str):
    reward = db.session.scalar(sa.select(Reward).where(Reward.key == key[:64]))
    if reward is None:
        abort(404)
    try:
        available = request.form.get("available")
        if available not in ("1", "0"):
            raise ValidationError(_("available: 1 or 0."), code="invalid_field")
        fulfilment.mark_available(reward.id, available=available == "1",
                                  due_at=_date(request.form.get("due_at"), "due_at"))
        db.session.commit()
    except DomainError as err:
        db.session.rollback()
        flash(for_people(err.message), "error")
        return redirect(url_for("fulfil_admin.queue", key=key), code=303)
    flash(_("Reward schedule saved."), "success")
    return _back_to(key)


@admin_bp.post("/rewards/items/<int:item_id>")
@role_required("producer")
def item(item_id: int):
    f = request.form
    action = f.get("action", "")
    try:
        if action == "move":
            done = fulfilment.move_item(item_id, f.get("to", ""), tracking=f.get("tracking"))
        elif action == "signing":
            done = fulfilment.set_signing(item_id, signer=f.get("signer"), dedication=f.get("dedication"))
        elif action == "letter":
            done = fulfilment.save_letter(item_id, f.get("letter", ""))
        elif action == "draft_letter":
            done = fulfilment.draft_letter(item_id, campaign=current_campaign())
        else:
            raise ValidationError(_("action: move, signing, letter or draft_letter."), code="invalid_action")
        db.session.commit()
    except DomainError as err:
        if err.status == 404:
            raise
        db.session.rollback()
        return _item_refused(item_id, err, f)
    flash(_("Item updated."), "success")
    return _back_to(_reward_key(done.reward_id), f.get("state"), _place(f))


def _item_refused(item_id: int, err: DomainError, form):
    """A refused step stays on the reward's page it was typed on (its filter and page), the message
    naming the item and its donor beside the row, and what was typed (a tracking number, a letter)
    put back in the row's fields, so nothing has to be typed again."""
    it = db.session.get(FulfilmentItem, item_id)
    donor = db.session.get(User, it.user_id)
    message = _("Item #%(item)s (%(donor)s) was not changed: %(reason)s", item=it.id,
                donor=email_for_people(donor.email), reason=for_people(err.message))
    typed = {k: form.get(k, "") for k in ("action", "to", "tracking", "signer", "dedication", "letter")}
    state = form.get("state") if form.get("state") in statement.QUEUE_STATES else None
    return _queue_page(_reward_key(it.reward_id), state, _place(form),
                       refused={"item_id": it.id, "message": message, "typed": typed},
                       status=err.status if err.status in (400, 409) else 400)


@admin_bp.get("/rewards/packing-list.csv")
@role_required("producer")
def packing_list():
    campaign = current_campaign()
    reward = request.args.get("reward") or None
    record_audit("export.packing_list", f"campaign:{campaign.slug}",
                 {"reward": reward, "rows": fulfilment.packing_list_count(campaign, reward)})
    db.session.commit()
    return csvsafe.download(fulfilment.packing_list_csv(campaign, reward), "packing-list.csv")


def _flash_refused(refused: int) -> None:
    """Donors whose address the mail server refused for good: passed over, each a try of theirs."""
    if refused:
        flash(ngettext("The mail server refused %(num)s donor's address; the others were mailed.",
                       "The mail server refused %(num)s donors' addresses; the others were mailed.", refused),
              "error")


@admin_bp.post("/rewards/surveys")
@role_required("producer")
def surveys():
    done = tasks.survey_mailing(current_campaign())  # commits each mail as it goes
    flash(ngettext("Address survey sent to %(num)s donor (first mails and reminders).",
                   "Address survey sent to %(num)s donors (first mails and reminders).", done.sent), "success")
    _flash_refused(done.refused)
    return redirect(url_for("fulfil_admin.queues"), code=303)


# ---------------------------------------------------------------- producers: credits

@admin_bp.get("/credits")
@role_required("producer")
def credits_page():
    campaign = current_campaign()
    roll_video.withdraw_stale_roll(campaign)  # a roll showing a withdrawn name is taken down, not offered
    after = request.args.get("after") or None
    page = credits.live_page(campaign, after)  # keyset: a supporter arriving meanwhile repeats no name
    summary = credits.live_summary(campaign)
    undrawable = roll_video.undrawable_in_credits(campaign)
    return render_template("fulfil/credits.html", campaign=campaign, lines=page["lines"], next_after=page["next"],
                           first=after is None, total=summary["total"], counts=summary["proofs"],
                           state=credits.credits_state(campaign), changes=credits.changes_since_freeze(campaign),
                           roll=roll_video.roll_path() if roll_video.roll_path().exists() else None,
                           roll_stale=roll_video.roll_needs_rendering(campaign), roll_status=_roll_status(),
                           undrawable=undrawable,
                           undrawable_emoji=any(roll_video.is_emoji(c) for _name, codes in undrawable for c in codes))


@admin_bp.post("/credits/freeze")
@role_required("producer")
def credits_freeze():
    if request.form.get("confirm") != "1":
        flash(_("Tick the box to confirm picture lock."), "error")
        return redirect(url_for("fulfil_admin.credits_page"), code=303)
    state = credits.freeze(current_campaign(), _actor())
    db.session.commit()
    flash(_("Credits frozen at %(time)s UTC.", time=f"{state.frozen_at:%Y-%m-%d %H:%M}"), "success")
    return redirect(url_for("fulfil_admin.credits_page"), code=303)


@admin_bp.post("/credits/deadline")
@role_required("producer")
def credits_deadline():
    try:
        credits.set_proof_deadline(current_campaign(), _date(request.form.get("deadline"), "deadline"))
        db.session.commit()
    except DomainError as err:
        db.session.rollback()
        flash(for_people(err.message), "error")
        return redirect(url_for("fulfil_admin.credits_page"), code=303)
    flash(_("Proof deadline saved."), "success")
    return redirect(url_for("fulfil_admin.credits_page"), code=303)


@admin_bp.post("/credits/proofs")
@role_required("producer")
def credits_proofs():
    done = tasks.proof_mailing(current_campaign())  # commits each mail as it goes
    flash(ngettext("Credits proof sent to %(num)s donor.", "Credits proof sent to %(num)s donors.", done.sent),
          "success")
    _flash_refused(done.refused)
    return redirect(url_for("fulfil_admin.credits_page"), code=303)


@admin_bp.get("/credits.txt")
@role_required("producer")
def credits_txt():
    campaign = current_campaign()
    record_audit("export.credits", f"campaign:{campaign.slug}", {"format": "txt"})
    db.session.commit()
    # Streamed, a chunk of the live list at a time, as the credits' CSV.
    return csvsafe.download(credits.stream_txt(campaign), "credits.txt", for_spreadsheet=False,
                            mimetype="text/plain")


@admin_bp.post("/credits/roll")
@role_required("producer")
def credits_roll():
    progress.queued(tasks.ROLL_TASK)
    tasks.render_roll.schedule(delay=0)
    flash(_("The credits roll is being rendered: its progress shows below."), "success")
    return redirect(url_for("fulfil_admin.credits_page") + "#roll", code=303)


def _roll_status() -> dict:
    """The roll's render as the credits page shows it: filmfund.progress's record of the task,
    and whether a rendered roll is there to download."""
    status = progress.read(tasks.ROLL_TASK)
    status["download_url"] = url_for("fulfil_admin.credits_roll_file") if roll_video.roll_path().exists() else None
    return status


@admin_bp.get("/credits/roll.json")
@role_required("producer")
def credits_roll_status():
    """What the credits page polls while the roll renders (no reload)."""
    resp = jsonify(_roll_status())
    resp.headers["Cache-Control"] = "private, no-store"
    return resp


@admin_bp.get("/credits/roll.mp4")
@role_required("producer")
def credits_roll_file():
    path = roll_video.roll_for_download(current_campaign())  # 409 when it must be rendered again
    record_audit("export.credits_roll", f"campaign:{current_campaign().slug}")
    db.session.commit()
    return send_file(path, mimetype="video/mp4", as_attachment=True, download_name="credits-roll.mp4", max_age=0)
