"""Domain errors and their one mapping to HTTP: JSON for the API, a friendly page for people."""
from __future__ import annotations

import logging

from flask import Flask, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

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


def for_people(message: str) -> str:
    """A service message as a page shows it: messages start with the field name for API clients
    ("amount: ..."); people don't need it."""
    head, sep, tail = message.partition(": ")
    return tail[:1].upper() + tail[1:] if sep and head.isidentifier() else message


def wants_json() -> bool:
    if request.path.startswith(("/api/", "/webhooks/", "/healthz")):
        return True
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best == "application/json" and request.accept_mimetypes[best] > request.accept_mimetypes["text/html"]


def error_response(status: int, code: str, message: str):
    if wants_json():
        return jsonify({"error": {"code": code, "message": message}}), status
    return render_template("errors/error.html", status=status, code=code, message=message), status


def init_app(app: Flask) -> None:
    from filmfund.extensions import db

    @app.errorhandler(DomainError)
    def _domain(err: DomainError):
        db.session.rollback()
        return error_response(err.status, err.code, err.message)

    @app.errorhandler(HTTPException)
    def _http(err: HTTPException):
        code = (err.name or "error").lower().replace(" ", "_")
        if err.code == 400 and "CSRF" in (err.description or ""):
            code = "csrf_failed"
        resp = error_response(err.code or 500, code, err.description or err.name)
        # The exception's own headers go with it: `Allow` on a 405 (RFC 9110), `Retry-After`, ...
        resp = app.make_response(resp)
        for name, value in err.get_headers():
            if name.lower() != "content-type":
                resp.headers[name] = value
        return resp

    @app.errorhandler(Exception)
    def _unexpected(err: Exception):
        # No traceback leaves the server: the log has it, the client gets a generic message.
        db.session.rollback()
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal_error", "Something went wrong on our side; nothing was saved.")
