"""Domain errors and their one mapping to HTTP: JSON for the API, a friendly page for people."""
from __future__ import annotations

import logging
import re

from flask import Flask, jsonify, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from werkzeug.exceptions import HTTPException

from filmfund.extensions import db, limiter, seconds_until

log = logging.getLogger(__name__)


class DomainError(Exception):
    """A use case refused: `code` is stable for clients, the message is for people."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        if status:
            self.status = status


class ValidationError(DomainError):
    status, code = 400, "invalid"


class NotFoundError(DomainError):
    status, code = 404, "not_found"


class ForbiddenError(DomainError):
    status, code = 403, "forbidden"


class ConflictError(DomainError):
    status, code = 409, "conflict"


class IllegalTransition(ConflictError):
    code = "illegal_transition"


# "amount: ..." as the API's clients read a refusal: the field's name, then what is wrong with it
# (a Chinese message writes the full-width colon: "reference：...").
_FIELD_HEAD = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?:: |：)(.*)", re.DOTALL)


def for_people(message: str) -> str:
    """A service message as a page shows it: messages start with the field name for API clients
    ("amount: ..."); people don't need it."""
    head = _FIELD_HEAD.fullmatch(message)
    return head.group(2)[:1].upper() + head.group(2)[1:] if head else message


# The refusals whose message names no field, by the field their code is always about.
_FIELD_OF_CODE = {"invalid_amount": "amount", "invalid_email": "email", "weak_password": "password",
                  "invalid_code": "code"}


def field_of(err: DomainError) -> str | None:
    """The form field a refusal is about, for the page to tie its message to that field (marked
    invalid, described by the message, focused): the field its message starts with ("city: ..."),
    else the one its code names; None when it is about the form as a whole."""
    head = _FIELD_HEAD.fullmatch(err.message)
    return head.group(1) if head else _FIELD_OF_CODE.get(err.code)


def wants_json() -> bool:
    if request.path.startswith(("/api/", "/webhooks/", "/healthz")):
        return True
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best == "application/json" and request.accept_mimetypes[best] > request.accept_mimetypes["text/html"]


def error_response(status: int, code: str, message: str):
    if wants_json():
        return jsonify({"error": {"code": code, "message": message}}), status
    return render_template("errors/error.html", status=status, code=code, message=message), status


def _http_message(status: int, default: str) -> str:
    """The reader's language for the HTTP errors that werkzeug describes in English."""
    messages = {
        400: _l("The request could not be understood. Go back and try again."),
        401: _l("Sign in to see this."),
        403: _l("You are not allowed to see this."),
        404: _l("There is nothing at this address. The link may be old or mistyped."),
        405: _l("This address does not take that kind of request."),
        413: _l("What was sent is too large."),
        415: _l("This kind of content is not accepted here."),
        429: _l("Too many tries in a short time. Wait a minute, then try again."),
        500: _l("Something went wrong on our side; nothing was saved."),
        503: _l("The site is busy for a moment. Please try again shortly."),
    }
    if status == 400 and "CSRF" in default:
        return _("This form has expired or did not come from this site. "
                 "Go back, reload the page and send it again; nothing was saved.")
    return str(messages.get(status, default))


def _retry_seconds(err: HTTPException) -> int | None:
    """When a request refused by a rate limit may come back: the spent page limit's window
    (Flask-Limiter), or the API limit's own `retry_after` (extensions.PerClientLimit)."""
    current = limiter.current_limit
    if current is not None:
        return seconds_until(current.reset_at)
    retry_after = getattr(err, "retry_after", None)
    return retry_after if isinstance(retry_after, int) and not isinstance(retry_after, bool) else None


def too_many_message(seconds: int | None) -> str:
    """A 429 in the reader's language, with how long to wait. Flask-Limiter describes the refusal
    by its limit ("10 per 5 minute"), in English, which no donor should have to read."""
    if seconds is None or seconds <= 60:
        return str(_http_message(429, ""))
    minutes = -(-seconds // 60)
    return ngettext("Too many tries in a short time. Try again in %(num)d minute.",
                    "Too many tries in a short time. Try again in %(num)d minutes.", minutes)


def init_app(app: Flask) -> None:
    @app.errorhandler(DomainError)
    def _domain(err: DomainError):
        db.session.rollback()
        return error_response(err.status, err.code, err.message)

    @app.errorhandler(HTTPException)
    def _http(err: HTTPException):
        code = (err.name or "error").lower().replace(" ", "_")
        if err.code == 400 and "CSRF" in (err.description or ""):
            code = "csrf_failed"
        message = err.description or err.name
        retry = _retry_seconds(err) if err.code == 429 else None
        if err.code == 429:
            message = too_many_message(retry)
        elif message == type(err).description or code == "csrf_failed":  # werkzeug's own English: ours instead
            message = _http_message(err.code or 500, message)
        resp = error_response(err.code or 500, code, message)
        # The exception's own headers go with it: `Allow` on a 405 (RFC 9110), `Retry-After`, ...
        resp = app.make_response(resp)
        for name, value in err.get_headers():
            if name.lower() != "content-type":
                resp.headers[name] = value
        if retry is not None:  # RFC 9110 Retry-After: when the limit's window ends
            resp.headers["Retry-After"] = str(retry)
        return resp

    @app.errorhandler(Exception)
    def _unexpected(err: Exception):
        # No traceback leaves the server: the log has it, the client gets a generic message.
        db.session.rollback()
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal_error", _("Something went wrong on our side; nothing was saved."))
