"""Security defaults: response headers, and access checks for pages (session) by role."""
from __future__ import annotations

from functools import wraps

from flask import Flask, abort, g, has_request_context, request
from flask.sessions import SecureCookieSessionInterface
from flask_login import current_user
from werkzeug.routing import IntegerConverter
from flask_babel import gettext as _

from filmfund.errors import ValidationError
from filmfund.extensions import login_manager

CSP = (
    "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob: https:; "
    "style-src 'self'; script-src 'self'; connect-src 'self' https:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self' https://checkout.stripe.com"
)


# Sent with every answer that does not set its own (a public file drops Referrer-Policy after).
DEFAULT_HEADERS = (
    ("Content-Security-Policy", CSP),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
    ("Permissions-Policy", "camera=(), microphone=(), geolocation=()"),
)
HSTS = (("Strict-Transport-Security", "max-age=31536000; includeSubDomains"),)


class BoundedIntConverter(IntegerConverter):
    """Flask's int converter, capped at a 32-bit signed integer (every id column's range)."""

    def __init__(self, map, *args, **kwargs):
        kwargs.setdefault("max", 2**31 - 1)
        super().__init__(map, *args, **kwargs)


class SessionInterface(SecureCookieSessionInterface):
    """The session cookie is Secure whenever the request came over HTTPS (request.is_secure,
    which behind FILMFUND_TRUSTED_PROXIES follows their X-Forwarded-Proto), not only when
    FILMFUND_SECURE_COOKIES says so."""

    def open_session(self, app: Flask, request):
        # No session cookie, nothing to verify: an empty session without building the signing
        # serializer first (every webhook and API call, ~0.1 ms each). No secret key: Flask's own
        # answer (a null session that refuses writes).
        if app.secret_key and not request.cookies.get(self.get_cookie_name(app)):
            return self.session_class()
        return super().open_session(app, request)

    def get_cookie_secure(self, app: Flask) -> bool:
        if has_request_context() and request.is_secure:
            return True
        return super().get_cookie_secure(app)


def _refuse_nul() -> None:
    """A NUL character in the path or the query string cannot be stored nor compared by PostgreSQL:
    refused up front as a clear 400 rather than failing deep inside a query."""
    if "\x00" in request.path or any("\x00" in k or "\x00" in v for k, v in request.args.items(multi=True)):
        raise ValidationError(_("The address holds a NUL character."), code="invalid_characters")
    # Plain forms too (never a multipart upload: its stream is left for the upload route to read).
    if request.mimetype == "application/x-www-form-urlencoded" and any(
            "\x00" in k or "\x00" in v for k, v in request.form.items(multi=True)):
        raise ValidationError(_("The form holds a NUL character."), code="invalid_characters")


def init_app(app: Flask) -> None:
    app.session_interface = SessionInterface()
    app.before_request(_refuse_nul)

    @app.after_request
    def _headers(resp):
        h = resp.headers
        # One pass over the answer's own headers, then the missing defaults added at once: werkzeug's
        # setdefault looks each name up by raising and catching an exception (on every request).
        present = {name.lower() for name, _value in h.items()}
        strict = request.is_secure or app.config.get("SESSION_COOKIE_SECURE")
        h.extend([(name, value) for name, value in (DEFAULT_HEADERS + (HSTS if strict else ()))
                  if name.lower() not in present])
        # Answers that depend on who asks are never kept by shared caches (a CDN told to cache
        # everything, a company proxy): a page that looked at its signed-in user (Flask-Login keeps
        # it in g; a public page is not made to decode the session and load a user here), an
        # answer to a credential (an API token: a cache need not know RFC 9111's rule for it), and a
        # page opened by a mailed link's token (the unsubscribe page shows the donor's address).
        if "cache-control" not in present and _for_one_person(g.get("_login_user")):
            h["Cache-Control"] = "private, no-store"
        return resp


def _for_one_person(user) -> bool:
    return ((user is not None and getattr(user, "is_authenticated", False))
            or "HTTP_AUTHORIZATION" in request.environ
            or bool(request.view_args and "token" in request.view_args))


def role_required(*roles: str):
    """Page guard: signed in (session) with one of `roles`; otherwise 401/403 through the error pages.

    A page for producers alone is written in English for the crew, whatever language its top bar
    and messages follow: the guard says so (`g.written_for_crew`), and the page's body is marked
    `lang="en"` so that a screen reader reads it with an English voice."""

    for_crew = set(roles) == {"producer"}

    def deco(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            if not current_user.is_authenticated:
                return login_manager.unauthorized()  # to the sign-in page, coming back after
            if roles and not current_user.has_role(*roles):
                abort(403)
            if for_crew:
                g.written_for_crew = True  # its body is in English (README: how producers translate)
            return view(*args, **kwargs)

        return wrapper

    return deco
