"""Sign-in pages: password for producers and partners, single-use magic links for donors."""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required, login_user, logout_user

from filmfund.auth import services
from filmfund.errors import DomainError
from filmfund.extensions import limiter

bp = Blueprint("auth", __name__, template_folder="templates")


def _account_key() -> str:
    return "acct:" + (request.form.get("email") or "").strip().lower()[:254]


def _home_for(user) -> str:
    if user.has_role("producer"):
        return url_for("admin.dashboard")
    if user.has_role("partner"):
        return url_for("admin.partner")
    return url_for("site.account")


def _safe_next(default: str) -> str:
    r"""Only a path on this site: never an absolute or scheme-relative URL (open redirect).

    Browsers drop tabs and newlines inside URLs and read a backslash as a slash, so "/\t/evil"
    and "/\\evil" would become "//evil": any such character refuses the target.
    """
    target = request.args.get("next") or ""
    if (not target.startswith("/") or target.startswith("//") or len(target) > 2000
            or any(c == "\\" or c.isspace() or ord(c) < 32 or ord(c) == 127 for c in target)):
        return default
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else default


def _wants_password(email: str) -> bool:
    """Staff accounts (with a password) sign in with it: a magic link must not bypass it."""
    try:
        user = services.find_user(services.normalize_email(email))
    except DomainError:
        return False
    return bool(user and user.password_hash)


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit("10 per 5 minutes", methods=["POST"])
@limiter.limit("20 per hour", methods=["POST"], key_func=_account_key)
def login():
    if request.method == "POST":
        email = request.form.get("email", "")
        password = request.form.get("password", "")
        if password:
            user = services.authenticate(email, password)
            if user is None:
                flash("That email and password do not match.", "error")
                return render_template("auth/login.html", email=email), 401
            session.clear()  # no session fixation: a fresh session on sign-in
            login_user(user)
            return redirect(_safe_next(_home_for(user)))
        # The same reply whatever the email is (no enumeration of donors or staff).
        if not _wants_password(email):
            services.request_login_link(email)
        flash("If that email belongs to a donor or member, a sign-in link is on its way. "
              "It works once, within 15 minutes.", "info")
        return redirect(url_for("auth.login"))
    return render_template("auth/login.html", email="")


@bp.route("/login/magic/<token>", methods=["GET", "POST"])
@limiter.limit("30 per 5 minutes")
def magic(token: str):
    # GET only shows a button: mail scanners that pre-fetch links must not use up the link.
    if request.method == "GET":
        return render_template("auth/magic.html", token=token)
    user = services.consume_login_link(token)
    if user is not None and user.password_hash:
        user = None  # an old link of an account that has since got a password
    if user is None:
        flash("That sign-in link has expired or was already used. Ask for a new one.", "error")
        return redirect(url_for("auth.login"))
    session.clear()
    login_user(user)
    return redirect(_home_for(user))


@bp.post("/logout")
@login_required
def logout():
    services.end_sessions(current_user._get_current_object())
    logout_user()
    session.clear()
    flash("You are signed out.", "info")
    return redirect(url_for("site.campaign"))
