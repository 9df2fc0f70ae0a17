"""The /api/v1 surface: bearer-token auth, JSON bodies, and the OpenAPI document.

API calls authenticate only with `Authorization: Bearer <token>` (never the session cookie),
so they carry no ambient credential and are exempt from CSRF. Each route registers its
OpenAPI operation with `@operation(...)`, and `/api/v1/openapi.json` is built from those.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import wraps
from typing import Any, Callable

from flask import Blueprint, Flask, current_app, g, jsonify, request

from filmfund.errors import DomainError, ForbiddenError, ValidationError

bp = Blueprint("api", __name__, url_prefix="/api/v1")


@dataclass
class Operation:
    path: str
    method: str
    summary: str
    roles: tuple[str, ...] = ()
    # A dict, or a function building it when the document is served (some depend on the campaign).
    request_spec: dict[str, Any] | Callable[[], dict[str, Any]] | None = None
    response: dict[str, Any] | None = None
    status: int = 200
    parameters: list[dict[str, Any]] = field(default_factory=list)
    # Other answers than `status` and the 4XX error: {status: (description, schema or None)}.
    responses: dict[int, tuple[str, dict[str, Any] | None]] = field(default_factory=dict)

    @property
    def request(self) -> dict[str, Any] | None:
        """The request body's schema (in an app context when it depends on the campaign)."""
        return self.request_spec() if callable(self.request_spec) else self.request_spec


OPERATIONS: list[Operation] = []


def operation(path: str, method: str, summary: str, *, roles: tuple[str, ...] = (),
              request_schema: dict | Callable[[], dict] | None = None, response_schema: dict | None = None,
              status: int = 200, parameters: list[dict] | None = None,
              responses: dict[int, tuple[str, dict | None]] | None = None):
    """Record a route in the OpenAPI document (the path as OpenAPI writes it, e.g. /x/{id}).

    Declare each parameter's real format and bounds (what the view accepts and nothing else),
    and in `responses` every other status the route answers (e.g. 200 beside a 201): the
    document is checked against the running app by schemathesis (tests/test_api_fuzz.py)."""

    def deco(view):
        OPERATIONS.append(Operation(path, method.lower(), summary, roles, request_schema,
                                    response_schema, status, parameters or [], responses or {}))
        return view

    return deco


class Unauthorized(DomainError):
    status, code = 401, "unauthorized"


def bearer_required(*roles: str):
    """API guard: a valid bearer token of a user with one of `roles` (any role if none given)."""

    def deco(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            from filmfund.auth.services import user_for_token

            header = request.headers.get("Authorization", "")
            scheme, _, token = header.partition(" ")
            user = user_for_token(token.strip()) if scheme.lower() == "bearer" and token else None
            if user is None:
                raise Unauthorized("A valid API token is required (Authorization: Bearer <token>).")
            if roles and not user.has_role(*roles):
                raise ForbiddenError("This token's user may not do that.")
            g.api_user = user
            return view(*args, **kwargs)

        return wrapper

    return deco


def json_body(limit: int | None = None) -> dict[str, Any]:
    """The request's JSON object, or a clear 4xx: too large (over `limit` bytes, by default
    MAX_JSON_BYTES), not JSON, not an object."""
    limit = limit or current_app.config["MAX_JSON_BYTES"]
    if request.content_length is not None and request.content_length > limit:
        raise DomainError(f"Request body is larger than {limit} bytes.", code="too_large", status=413)
    raw = request.get_data(cache=True)
    if len(raw) > limit:
        raise DomainError(f"Request body is larger than {limit} bytes.", code="too_large", status=413)
    if not request.mimetype == "application/json":
        raise ValidationError("Send a JSON body with Content-Type: application/json.", code="invalid_json")
    try:
        body = json.loads(raw or b"null", parse_constant=_refuse_constant, parse_float=_finite_float)
    except RecursionError:
        raise ValidationError(f"The JSON body is nested too deep (at most {MAX_JSON_DEPTH} levels).",
                              code="invalid_json") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationError(f"Malformed JSON: {exc}", code="invalid_json") from None
    if not isinstance(body, dict):
        raise ValidationError("The JSON body must be an object.", code="invalid_json")
    _check_shape(body)
    return body


MAX_JSON_DEPTH = 16


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a number JSON allows")


def _finite_float(text: str) -> float:
    value = float(text)
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"{text[:20]} is out of range")
    return value


def _check_shape(value, depth: int = 0) -> None:
    """Bounded nesting, and text that can be stored (no lone UTF-16 surrogates, no NUL)."""
    if depth > MAX_JSON_DEPTH:
        raise ValidationError(f"The JSON body is nested too deep (at most {MAX_JSON_DEPTH} levels).",
                              code="invalid_json")
    if isinstance(value, str):
        if "\x00" in value or any(0xD800 <= ord(c) <= 0xDFFF for c in value):
            raise ValidationError("Text holds a character that is not allowed (NUL or a lone surrogate).",
                                  code="invalid_json")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_shape(key, depth + 1)
            _check_shape(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check_shape(item, depth + 1)


ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "object", "required": ["code", "message"],
                             "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}},
}


def openapi_document() -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for op in OPERATIONS:
        entry: dict[str, Any] = {
            "summary": op.summary,
            "operationId": f"{op.method}_{op.path.strip('/').replace('/', '_').replace('{', '').replace('}', '')}",
            "responses": {
                str(op.status): {"description": "OK", "content": {"application/json": {"schema": op.response or {"type": "object"}}}},
                "4XX": {"description": "Error", "content": {"application/json": {"schema": ERROR_SCHEMA}}},
            },
        }
        for code, (description, schema) in op.responses.items():
            entry["responses"][str(code)] = {"description": description}
            if schema is not None:
                entry["responses"][str(code)]["content"] = {"application/json": {"schema": schema}}
        if op.parameters:
            entry["parameters"] = op.parameters
        if op.roles:
            entry["security"] = [{"bearer": []}]
            entry["description"] = "Roles: " + ", ".join(op.roles)
        schema = op.request
        if schema:
            entry["requestBody"] = {"required": True, "content": {"application/json": {"schema": schema}}}
        paths.setdefault(op.path, {})[op.method] = entry
    return {
        "openapi": "3.0.3",
        "info": {"title": "filmfund API", "version": "1",
                 "description": "Money is integer cents. Every string, in a body, a query or a path, is "
                                "Unicode text without NUL (U+0000) or lone surrogates: others are refused "
                                "with 400. Errors are {\"error\": {\"code\", \"message\"}}."},
        "servers": [{"url": "/"}],
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "paths": dict(sorted(paths.items())),
    }


@bp.get("/openapi.json")
def openapi_json():
    return jsonify(openapi_document())


def init_app(app: Flask) -> None:
    from filmfund.extensions import csrf, db

    csrf.exempt(bp)
    app.register_blueprint(bp)

    @app.get("/healthz")
    def healthz():
        import sqlalchemy as sa

        db.session.execute(sa.text("SELECT 1"))
        return jsonify({"status": "ok"})
