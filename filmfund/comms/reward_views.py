"""Pages of the personal rewards: questions ($250), invitations ($500-$1000) and the $2000
request thread, for the donor (under /account, linked from the account page) and for the
producers (under /admin). Thin: parse, call the use case, render."""
from __future__ import annotations

from flask import Response, flash, redirect, render_template, request, send_file, url_for
from flask_login import current_user
from flask_babel import gettext as _
from flask_babel import ngettext

from filmfund.comms import arrangements, invitations, questions, updates
from filmfund.comms.views import bp
from filmfund.errors import DomainError, NotFoundError, field_of, for_people
from filmfund.extensions import db, limiter
from filmfund.i18n import versions_from_form, zone_choices
from filmfund.media.common import storage
from filmfund.security import role_required


def _me():
    return current_user._get_current_object()


def _serve(key: str, content_type: str):
    store = storage()
    path = store.local_file(key)
    if path is not None:
        resp = send_file(path, mimetype=content_type, conditional=True, etag=True, max_age=0)
    else:
        url = store.presigned_get(key, 300, "answer", content_type)
        resp = redirect(url, code=302)
    resp.headers["Cache-Control"] = "private, no-store"
    return resp


# --- questions: donors --------------------------------------------------------------------

def _my_questions_page(error: str | None = None, body: str = "", status: int = 200, bad: str | None = None):
    me = _me()
    why_not = questions.why_not_asking(me)  # None: she may ask; else the page says why not, truly
    return render_template("comms/my_questions.html", allowed=why_not is None, why_not=why_not,
                           refusal=questions.refusal(why_not) if why_not else None,
                           items=questions.my_questions(me), remaining=questions.remaining(me),
                           limit=questions.limit_per_donor(), error=error, bad=bad, body=body,
                           state_badge=questions.state_badge), status


@bp.get("/account/questions", endpoint="questions")
@role_required("donor")
def my_questions():
    return _my_questions_page()


@bp.post("/account/questions")
@role_required("donor")
@limiter.limit("20 per hour")
def ask_question():
    try:
        questions.submit_question(_me(), request.form.get("body", ""))
        db.session.commit()
    except DomainError as err:
        db.session.rollback()  # a question over the limit is flushed already; the entitlement lock goes
        return _my_questions_page(error=for_people(err.message), body=request.form.get("body", "")[:2000],
                                  status=err.status, bad=field_of(err))
    flash(_("Your question was sent to the producers."), "success")
    return redirect(url_for("comms.questions"), code=303)


@bp.get("/account/questions/<int:question_id>")
@role_required("donor")
def my_question(question_id: int):
    return render_template("comms/my_question.html", q=questions.my_question(_me(), question_id),
                           state_sentence=questions.state_sentence)


@bp.get("/account/questions/<int:question_id>/clip")
@role_required("donor")
def question_clip(question_id: int):
    q = questions.my_question(_me(), question_id)
    if q.state != "answered":
        raise NotFoundError(_("No clip."))
    return _serve(*questions.clip_of(q))


# --- questions: producers -----------------------------------------------------------------

def _admin_questions_page(error: str | None = None, status: int = 200):
    state = request.args.get("state") or None
    if state not in (None, "submitted", "approved", "rejected", "assigned", "answered"):
        state = None
    return render_template("comms/admin_questions.html", rows=questions.queue(state), state=state,
                           counts=questions.counts(), subjects=questions.subjects(), error=error), status


@bp.get("/admin/questions")
@role_required("producer")
def admin_questions():
    return _admin_questions_page()


@bp.post("/admin/questions/subjects")
@role_required("producer")
def add_subject():
    try:
        questions.add_subject(request.form.get("name", ""), request.form.get("language", ""))
        db.session.commit()
    except DomainError as err:
        return _admin_questions_page(error=for_people(err.message), status=400)
    flash(_("Interview subject added."), "success")
    return redirect(url_for("comms.admin_questions"), code=303)


def _admin_question_page(question_id: int, error: str | None = None, status: int = 200, bad: str | None = None):
    q = questions.get_question(question_id)
    return render_template("comms/admin_question.html", q=q, subjects=questions.subjects(),
                           clips=questions.clip_choices(q), error=error, bad=bad), status


@bp.get("/admin/questions/<int:question_id>")
@role_required("producer")
def admin_question(question_id: int):
    return _admin_question_page(question_id)


def _question_action(question_id: int, fn, done: str):
    try:
        fn()
        db.session.commit()  # the one commit of the producer's step (an answer's notice is queued by it)
    except DomainError as err:
        if err.status == 404:
            raise
        db.session.rollback()  # nothing half-written shows on the page
        return _admin_question_page(question_id, error=for_people(err.message), status=err.status,
                                    bad=field_of(err))
    flash(done, "success")
    return redirect(url_for("comms.admin_question", question_id=question_id), code=303)


@bp.post("/admin/questions/<int:question_id>/moderate")
@role_required("producer")
def moderate_question(question_id: int):
    f = request.form
    return _question_action(question_id, lambda: questions.moderate(question_id, f.get("decision"),
                                                                    f.get("note", "")), "Moderated.")


@bp.post("/admin/questions/<int:question_id>/assign")
@role_required("producer")
def assign_question(question_id: int):
    return _question_action(question_id, lambda: questions.assign(question_id, request.form.get("subject")),
                            "Assigned.")


@bp.post("/admin/questions/<int:question_id>/answer")
@role_required("producer")
def answer_question(question_id: int):
    f = request.form
    return _question_action(question_id, lambda: questions.record_answer(
        question_id, original=f.get("original", ""), original_status=f.get("original_status", "missing"),
        english=f.get("english", ""), english_status=f.get("english_status", "missing"),
        language=f.get("language") or None, clip=f.get("clip") or None), "Answer saved.")


# --- invitations: donors ------------------------------------------------------------------

@bp.get("/account/invitations", endpoint="invitations")
@role_required("donor")
def my_invitations():
    items = invitations.my_invitations(_me())
    db.session.commit()  # the invitations made on first sight
    return render_template("comms/my_invitations.html", items=items, local=invitations.local, text=invitations.text,
                           state=invitations.place_state)


def _my_invitation_page(invitation_id: int, error: str | None = None, status: int = 200, bad: str | None = None):
    inv = invitations.my_invitation(_me(), invitation_id)
    counts = invitations.rsvp_counts(inv.experience_id)["slots"]  # the places held, per time
    return render_template("comms/my_invitation.html", inv=inv, words=invitations.text(inv.experience),
                           local=invitations.local, counts=counts, state=invitations.place_state(inv),
                           zones=zone_choices(invitations.time_zones(), inv.time_zone), error=error,
                           bad=bad), status


@bp.get("/account/invitations/<int:invitation_id>")
@role_required("donor")
def my_invitation(invitation_id: int):
    return _my_invitation_page(invitation_id)


@bp.post("/account/invitations/<int:invitation_id>/rsvp")
@role_required("donor")
def rsvp(invitation_id: int):
    try:
        inv = invitations.rsvp(_me(), invitation_id, request.form.get("answer"), request.form.get("slot"))
        db.session.commit()
    except DomainError as err:
        if err.status == 404:
            raise
        db.session.rollback()  # a full time's slot lock goes before the page is made
        # A full time is about the time chosen, though its message names no field.
        bad = field_of(err) or ("time" if err.code == "slot_full" else None)
        return _my_invitation_page(invitation_id, error=for_people(err.message), status=err.status, bad=bad)
    flash(_("Thank you: we look forward to seeing you.") if inv.status == "accepted" else
          _("Thank you for letting us know."), "success")
    return redirect(url_for("comms.my_invitation", invitation_id=invitation_id), code=303)


@bp.post("/account/invitations/<int:invitation_id>/time-zone")
@role_required("donor")
def invitation_time_zone(invitation_id: int):
    try:
        invitations.set_time_zone(_me(), invitation_id, request.form.get("time_zone", ""))
        db.session.commit()
    except DomainError as err:
        if err.status == 404:
            raise
        return _my_invitation_page(invitation_id, error=for_people(err.message), status=err.status,
                                   bad=field_of(err))
    return redirect(url_for("comms.my_invitation", invitation_id=invitation_id), code=303)


@bp.get("/account/invitations/<int:invitation_id>/calendar.ics")
@role_required("donor")
def invitation_ics(invitation_id: int):
    body = invitations.ics(invitations.my_invitation(_me(), invitation_id))
    return Response(body, mimetype="text/calendar",
                    headers={"Content-Disposition": 'attachment; filename="invitation.ics"',
                             "Cache-Control": "private, no-store"})


# --- invitations: producers ---------------------------------------------------------------

def _admin_experiences_page(error: str | None = None, values: dict | None = None, status: int = 200):
    return render_template("comms/admin_experiences.html", items=invitations.experiences(),
                           rewards=updates.audiences()[2:], error=error, values=values or {}), status


@bp.get("/admin/experiences")
@role_required("producer")
def admin_experiences():
    return _admin_experiences_page()


@bp.post("/admin/experiences")
@role_required("producer")
def create_experience():
    f = request.form
    try:
        translations = versions_from_form(f, ("title", "details", "location"))
        exp = invitations.create_experience(reward_key=f.get("reward", ""), title=f.get("title", ""),
                                            details=f.get("details", ""), location=f.get("location", ""),
                                            duration_minutes=f.get("duration_minutes", ""),
                                            translations=translations)
        db.session.commit()
    except DomainError as err:
        return _admin_experiences_page(error=for_people(err.message), values=f.to_dict(), status=400)
    return redirect(url_for("comms.admin_experience", experience_id=exp.id), code=303)


def _admin_experience_page(experience_id: int, error: str | None = None, status: int = 200):
    exp = invitations.get_experience(experience_id)
    return render_template("comms/admin_experience.html", exp=exp, counts=invitations.rsvp_counts(exp.id),
                           guests=invitations.guest_list(exp.id), zones=invitations.time_zones(),
                           local=invitations.local, error=error), status


@bp.get("/admin/experiences/<int:experience_id>")
@role_required("producer")
def admin_experience(experience_id: int):
    return _admin_experience_page(experience_id)


@bp.post("/admin/experiences/<int:experience_id>/slots")
@role_required("producer")
def add_slot(experience_id: int):
    f = request.form
    invitations.get_experience(experience_id)  # 404 first
    try:
        starts = invitations.parse_local_time(f.get("starts", ""), f.get("time_zone", "UTC"))
        invitations.add_slot(experience_id, starts, f.get("capacity") or None)
        db.session.commit()
    except DomainError as err:
        return _admin_experience_page(experience_id, error=for_people(err.message), status=400)
    flash(_("Time proposed."), "success")
    return redirect(url_for("comms.admin_experience", experience_id=experience_id), code=303)


@bp.post("/admin/experiences/<int:experience_id>/invite")
@role_required("producer")
def send_invitations(experience_id: int):
    invitations.get_experience(experience_id)
    try:
        n = invitations.send_invitations(experience_id)
        db.session.commit()  # the invitations, then their mailing job (queued by the commit)
    except DomainError as err:
        return _admin_experience_page(experience_id, error=for_people(err.message), status=err.status)
    flash(ngettext("%(num)s invitation queued for mailing, one per donor.",
                   "%(num)s invitations queued for mailing, one per donor.", n), "success")
    return redirect(url_for("comms.admin_experience", experience_id=experience_id), code=303)


# --- the $2000 request thread -------------------------------------------------------------

def _my_requests_page(error: str | None = None, body: str = "", status: int = 200, bad: str | None = None):
    me = _me()
    # a donor who does not hold the reward sees why (the tier, or her opt-out), no messages
    allowed = arrangements.may_write(me)
    return render_template("comms/my_requests.html", allowed=allowed, refusal=None if allowed else arrangements.refusal(me),
                           messages=arrangements.my_thread(me), error=error, bad=bad, body=body), status


@bp.get("/account/requests", endpoint="thread")
@role_required("donor")
def my_requests():
    return _my_requests_page()


@bp.post("/account/requests")
@role_required("donor")
@limiter.limit("30 per hour")
def post_request():
    try:
        arrangements.post_as_donor(_me(), request.form.get("body", ""))
        db.session.commit()
    except DomainError as err:
        return _my_requests_page(error=for_people(err.message), body=request.form.get("body", "")[:6000],
                                 status=err.status, bad=field_of(err))
    flash(_("Sent to the producers."), "success")
    return redirect(url_for("comms.thread"), code=303)


@bp.get("/admin/requests")
@role_required("producer")
def admin_requests():
    return render_template("comms/admin_requests.html", rows=arrangements.threads())


def _admin_thread_page(public_id: str, error: str | None = None, status: int = 200, bad: str | None = None):
    donor = arrangements.donor_by_public_id(public_id)
    return render_template("comms/admin_thread.html", donor=donor, messages=arrangements.thread(donor.id),
                           thread_open=arrangements.may_write(donor), error=error, bad=bad), status


@bp.get("/admin/requests/<public_id>")
@role_required("producer")
def admin_thread(public_id: str):
    return _admin_thread_page(public_id)


@bp.post("/admin/requests/<public_id>")
@role_required("producer")
def reply_request(public_id: str):
    try:
        arrangements.post_as_producer(_me(), public_id, request.form.get("body", ""))
        db.session.commit()
    except DomainError as err:
        if err.status == 404:
            raise
        return _admin_thread_page(public_id, error=for_people(err.message), status=err.status, bad=field_of(err))
    flash(_("Reply sent; the donor is told by mail."), "success")
    return redirect(url_for("comms.admin_thread", public_id=public_id), code=303)
