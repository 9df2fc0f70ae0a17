"""Sign-in pages: password and TOTP second factor for producers and partners, single-use
magic links for donors, and a mailed password reset that asks for the second factor too."""
from __future__ import annotations

import time
from urllib.parse import urlsplit

from flask import Blueprint, abort, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required, login_user, logout_user
from flask_babel import gettext as _
from markupsafe import Markup

from filmfund import jobs
from filmfund.audit import record_failed_sign_in
from filmfund.auth import links, services, totp
from filmfund.errors import DomainError, ValidationError, field_of
from filmfund.extensions import db, limiter
from filmfund.i18n import mailed_link

bp = Blueprint("auth", __name__, template_folder="templates")

PENDING_KEY = "_2fa_pending"
PENDING_TTL = 5 * 60     # seconds between the password and the code
PENDING_TRIES = 5        # wrong codes before the password is asked again
ENROLMENT_KEY = "_totp_enrolment"  # the mark of the secret this browser was shown (services.enrolment_mark)
TWO_FACTORS = "password+totp"  # the sign-in method (audited) that passed the second factor
# True when this session's sign-in passed one factor (a password, a donor's link): see signed_in_user.
ONE_FACTOR_KEY = "_one_factor"


@bp.after_request
def _not_kept(resp):
    """Every sign-in answer is one person's (a key to scan, a reset form, a form's CSRF token): no
    cache keeps it, the browser's included. security._headers says so only once a user is loaded,
    which the half-signed-in steps and the reset form never do."""
    resp.headers["Cache-Control"] = "private, no-store"
    return resp


def signed_in_user(session_id: str):
    """Flask-Login's loader: the session's user, unless its sign-in passed one factor and the
    account asks two now (a producer since, STAFF_TOTP turned on, a second factor added in another
    browser): no session then, and the sign-in page asks for both. A session without the mark (made
    before it was kept) is the account's as before."""
    user = services.load_user_from_session(session_id)
    if user is not None and session.get(ONE_FACTOR_KEY) and services.totp_required(user):
        return None
    return user


def _account_key() -> str:
    """One account's password attempts, however its address is typed: capitals, a Chinese input
    method's full-width forms, a domain in its own letters all name the same account, and must
    not each get their own allowance."""
    typed = request.form.get("email") or ""
    try:
        return "acct:" + services.normalize_email(typed).lower()
    except ValidationError:  # no address: it signs nobody in
        return "acct:" + typed.strip().lower()[:254]


def _no_password() -> bool:
    return not request.form.get("password")


def _home_for(user) -> str:
    if user.has_role("producer"):
        return url_for("admin.dashboard")
    if user.has_role("partner"):
        return url_for("admin.partner")
    return url_for("site.account")


def _safe_next(default: str, target: str | None = None) -> str:
    r"""Only a path on this site: never an absolute or scheme-relative URL (open redirect).

    Browsers drop tabs and newlines inside URLs and read a backslash as a slash, so "/\t/evil"
    and "/\\evil" would become "//evil": any such character refuses the target.
    """
    target = (request.args.get("next") if target is None else target) or ""
    if (not target.startswith("/") or target.startswith("//") or len(target) > 2000
            or any(c == "\\" or c.isspace() or ord(c) < 32 or ord(c) == 127 for c in target)):
        return default
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else default


def _sign_in(user, method: str, next_url: str | None = None):
    services.complete_sign_in(user, method)
    db.session.commit()  # the one commit of a sign-in: the factor's step used up, the record, a rehash
    session.clear()  # no session fixation: a fresh session on sign-in
    login_user(user)
    session[ONE_FACTOR_KEY] = method != TWO_FACTORS
    return redirect(_safe_next(_home_for(user), next_url))


def _pending_user():
    """The user who gave the right password and still owes the second factor, if any."""
    pending = session.get(PENDING_KEY)
    if not isinstance(pending, dict) or time.time() - pending.get("t", 0) > PENDING_TTL:
        session.pop(PENDING_KEY, None)
        return None, None
    return services.load_user_from_session(pending.get("u", "")), pending


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit("10 per 5 minutes", methods=["POST"])
# Only password attempts count per account: asking for a donor's link never locks its owner out.
@limiter.limit("20 per hour", methods=["POST"], key_func=_account_key, exempt_when=_no_password)
def login():
    if request.method == "POST":
        email = request.form.get("email", "")
        password = request.form.get("password", "")
        if password:
            user = services.authenticate(email, password)
            if user is None:
                record_failed_sign_in(email, "password")
                db.session.commit()
                return render_template("auth/login.html", email=email,  # said at the password, focused
                                       password_error=_("That email and password do not match.")), 401
            if not services.totp_required(user):
                return _sign_in(user, "password", request.args.get("next"))
            db.session.commit()  # a password hash made again with today's parameters
            session.clear()
            session[PENDING_KEY] = {"u": user.get_id(), "t": time.time(), "n": request.args.get("next") or "",
                                    "tries": 0}
            return redirect(url_for("auth.second_factor" if user.has_totp else "auth.totp_setup"))
        # The same reply and the same work whatever the email is (no enumeration of donors or
        # staff): the link is looked up and mailed by the worker.
        try:
            links.request_login_link(email)
        except ValidationError as err:  # said at the field, tied to it, with the focus on it
            return render_template("auth/login.html", email=email, email_error=err.message), 400
        except jobs.QueueUnavailable as err:  # nothing queued: ask again later (the address kept)
            flash(err.message, "error")
            return render_template("auth/login.html", email=email), 503
        flash(_("If that email belongs to a donor, a sign-in link is on its way. "
              "It works once, within 15 minutes. Producers and partners sign in with their password."), "info")
        return redirect(url_for("auth.login"))
    return render_template("auth/login.html", email="")


def _pending_key() -> str:
    pending = session.get(PENDING_KEY)
    return "2fa:" + str(pending.get("u", "") if isinstance(pending, dict) else "")[:80]


@bp.route("/login/2fa", methods=["GET", "POST"])
@limiter.limit("10 per 5 minutes", methods=["POST"])
# Per account too: the pending state lives in the (signed) cookie, so a replayed cookie must not
# buy more guesses; 10 codes in 5 minutes from anywhere.
@limiter.limit("10 per 5 minutes", methods=["POST"], key_func=_pending_key)
def second_factor():
    user, pending = _pending_user()
    if user is None or not user.has_totp:
        flash(_("Sign in with your email and password first."), "error")
        return redirect(url_for("auth.login"))
    if request.method == "POST":
        if services.check_totp(user, request.form.get("code", "")):
            return _sign_in(user, TWO_FACTORS, pending.get("n"))
        record_failed_sign_in("", "second_factor", user=user)
        db.session.commit()
        pending["tries"] = pending.get("tries", 0) + 1
        if pending["tries"] >= PENDING_TRIES:
            session.pop(PENDING_KEY, None)
            flash(_("Too many wrong codes: sign in with your password again."), "error")
            return redirect(url_for("auth.login"))
        session[PENDING_KEY] = pending
        return render_template("auth/totp.html",  # said at the code, focused
                               code_error=_("That code is not right: give the 6 digits your app shows now.")), 401
    return render_template("auth/totp.html")


def _totp_setup_page(secret: str, uri: str, code_error: str | None = None):
    """The enrolment page: the otpauth:// link as a QR code to scan, as text to paste, and its key
    (and a refused code's message, said at the code's field)."""
    qr = Markup(totp.qr_svg(uri, _("QR code for your authenticator app"))) if uri else ""
    return render_template("auth/totp_setup.html", secret=secret, uri=uri, qr_svg=qr, code_error=code_error)


@bp.route("/login/2fa/setup", methods=["GET", "POST"])
@limiter.limit("10 per 5 minutes", methods=["POST"])
def totp_setup():
    """Enrol an authenticator: at a producer's first sign-in (after the password), or any time
    for a signed-in producer or partner who has none yet."""
    user, pending = _pending_user()
    if user is None:
        if not current_user.is_authenticated:
            flash(_("Sign in with your email and password first."), "error")
            return redirect(url_for("auth.login"))
        if not current_user.is_staff:
            abort(403)
        user = current_user._get_current_object()
    if user.has_totp:
        flash(_("Your second factor is already set up."), "info")
        return redirect(_home_for(user) if pending is None else url_for("auth.second_factor"))
    if request.method == "GET":
        # A new secret for each enrolment: kept across reloads by the browser it was shown to only.
        secret = services.start_totp_enrolment(user, session.get(ENROLMENT_KEY))
        db.session.commit()
        session[ENROLMENT_KEY] = services.enrolment_mark(secret)
        return _totp_setup_page(secret, services.totp_uri(user))
    secret = user.totp_secret or ""
    try:
        if not secret or session.get(ENROLMENT_KEY) != services.enrolment_mark(secret):
            # Another browser's (or an older) enrolment: its secret is not this page's to confirm.
            raise DomainError(_("Open the set-up page again: it shows a new key to add to your app."),
                              code="enrolment_restarted")
        services.confirm_totp(user, request.form.get("code", ""))
    except DomainError as err:
        db.session.rollback()
        if err.code == "enrolment_restarted":  # no form to mend: the page offers a new key
            flash(err.message, "error")
            return _totp_setup_page("", ""), 400
        return _totp_setup_page(secret, services.totp_uri(user), code_error=err.message), 400
    session.pop(ENROLMENT_KEY, None)
    if pending is not None:
        return _sign_in(user, TWO_FACTORS, pending.get("n"))  # commits the enrolment with the sign-in
    db.session.commit()
    session[ONE_FACTOR_KEY] = False  # a right code just now: this session has passed both factors
    flash(_("Your second factor is set up: it is asked at every sign-in."), "success")
    return redirect(_home_for(user))


@bp.route("/login/magic/<token>", methods=["GET", "POST"])
@limiter.limit("30 per 5 minutes")
@mailed_link(links.link_owner)
def magic(token: str):
    # GET only shows a button: mail scanners that pre-fetch links must not use up the link.
    if request.method == "GET":
        return render_template("auth/magic.html", token=token)
    user = links.consume_login_link(token)
    if user is None:
        record_failed_sign_in("", "link")
        db.session.commit()
        flash(_("That sign-in link has expired or was already used. Ask for a new one."), "error")
        return redirect(url_for("auth.login"))
    return _sign_in(user, "link")


@bp.route("/login/reset", methods=["GET", "POST"])
@limiter.limit("10 per 5 minutes", methods=["POST"])
def reset_request():
    if request.method == "POST":
        email = request.form.get("email", "")
        try:
            links.request_password_reset(email)
        except ValidationError as err:  # said at the field, tied to it, with the focus on it
            return render_template("auth/reset_request.html", email=email, email_error=err.message), 400
        flash(_("If that email belongs to a producer or partner, a link to choose a new password is on its way."),
              "info")
        return redirect(url_for("auth.login"))
    return render_template("auth/reset_request.html")


@bp.route("/login/reset/<token>", methods=["GET", "POST"])
@limiter.limit("10 per 5 minutes", methods=["POST"])
@mailed_link(links.link_owner)
def reset_password(token: str):
    user = links.reset_link_user(token)
    if user is None:
        flash(_("That reset link has expired or was already used. Ask for a new one."), "error")
        return redirect(url_for("auth.reset_request"))
    if request.method == "POST":
        # A refusal is said at the field to mend (focused, marked invalid, described by it); two
        # passwords that differ, at the first: both are typed again, from there.
        if request.form.get("password", "") != request.form.get("password2", ""):
            return render_template("auth/reset.html", needs_code=user.has_totp, bad="password",
                                   error=_("The two passwords differ.")), 400
        try:
            links.reset_password(token, request.form.get("password", ""), request.form.get("code"))
        except DomainError as err:
            db.session.rollback()
            # A wrong code spent the link: no field left to mend, the message is focused itself.
            spent = links.reset_link_user(token) is None
            return render_template("auth/reset.html", needs_code=user.has_totp, bad=None if spent else field_of(err),
                                   error=err.message), 400
        flash(_("Your password is changed. Sign in with it."), "success")
        return redirect(url_for("auth.login"))
    return render_template("auth/reset.html", needs_code=user.has_totp)


@bp.post("/logout")
@login_required
def logout():
    services.end_sessions(current_user._get_current_object())
    db.session.commit()
    logout_user()
    session.clear()
    flash(_("You are signed out."), "info")
    return redirect(url_for("site.campaign"))
