"""The /api/v1 surface: bearer-token auth, JSON bodies, and the OpenAPI document.

API calls authenticate only with `Authorization: Bearer <token>` (never the session cookie),
so they carry no ambient credential and are exempt from CSRF. Each route is declared once, with
`route(...)`: its path, its roles, the pydantic models of its body, query and headers, and its
answer. That one declaration registers the Flask route, guards it, validates the input, and is
what `/api/v1/openapi.json` is built from (pydantic writes the JSON Schemas).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import wraps
from enum import Enum
from typing import Any, Callable, ClassVar, Literal, get_args, get_origin

import sqlalchemy as sa
from flask import Blueprint, Flask, Response, current_app, g, jsonify, request
from babel.lists import format_list
from flask_babel import get_locale
from flask_babel import gettext as _
from pydantic import BaseModel, ConfigDict
from pydantic import ValidationError as PydanticError
from pydantic_core import PydanticCustomError

from filmfund.auth.models import User
from filmfund.auth.tokens import user_for_token
from filmfund.errors import DomainError, ForbiddenError, ValidationError
from filmfund.extensions import PerClientLimit, csrf, db, go_on as _go_on
from filmfund.i18n import other_languages
from filmfund.shared_cache import anonymous

bp = Blueprint("api", __name__, url_prefix="/api/v1")


def versions_by_language(schema: dict) -> None:
    """A body's versions in other languages (`{"zh-Hans": {...}}`): the document names the languages
    a version may be in (the site's others), and no other."""
    for variant in schema.get("anyOf", [schema]):
        if variant.get("type") == "object":
            text = variant.pop("additionalProperties")
            variant["properties"] = {lang: text for lang in other_languages()}
            variant["additionalProperties"] = False


def versions_dump(translations: dict[str, BaseModel] | None) -> dict[str, dict[str, str]]:
    """A request's versions (validated by a schema using `versions_by_language`) as the services
    take them: {"zh-Hans": {"title", ...}}."""
    return {lang: text.model_dump() for lang, text in (translations or {}).items()}


class Schema(BaseModel):
    """What a route accepts (its JSON body, its query or its headers), validated by pydantic and
    written into the OpenAPI document from the same class.

    JSON bodies are strict (2500 is a number of cents, "2500" and 2500.0 are not) and refuse
    unknown fields; `codes` names the error code of each field, so clients keep the codes they
    know ("invalid_amount"); a field without one is "invalid_field"."""

    model_config = ConfigDict(strict=True, extra="forbid")
    codes: ClassVar[dict[str, str]] = {}


class Parameters(Schema):
    """Query or header parameters: text as sent, unknown ones ignored (a header model names its
    header with `alias`)."""

    model_config = ConfigDict(strict=False, extra="ignore", populate_by_name=True)


@dataclass
class Operation:
    """One route as declared by `route`: what Flask serves and what the document says."""

    rule: str
    method: str
    summary: str
    roles: tuple[str, ...] | None
    body: type[Schema] | None
    query: type[Parameters] | None
    headers: type[Parameters] | None
    response: dict[str, Any] | type[BaseModel] | None
    status: int
    responses: dict[int, tuple[str, dict[str, Any] | None]]
    raw_body: dict[str, dict[str, Any]] | None = None
    response_type: str = "application/json"

    @property
    def path(self) -> str:
        """The path as OpenAPI writes it: /api/v1/updates/{id}/publish."""
        return _RULE_VARIABLE.sub(lambda m: "{" + m["name"] + "}", self.rule)


OPERATIONS: list[Operation] = []
# Paths whose answer to an anonymous GET is the same for everyone (`route(public=True)`): the
# shared cache in front of the app may keep it (filmfund/shared_cache.py).
PUBLIC_PATHS: set[str] = set()
_RULE_VARIABLE = re.compile(r"<(?:(?P<converter>\w+):)?(?P<name>\w+)>")
MAX_ID = 2**31 - 1  # the database's integer (filmfund.security.BoundedIntConverter): a larger id names nothing


def route(bp: Blueprint, rule: str, method: str, summary: str, *, roles: tuple[str, ...] | None = None,
          body: type[Schema] | None = None, query: type[Parameters] | None = None,
          headers: type[Parameters] | None = None, response: dict | type[BaseModel] | None = None,
          status: int = 200, responses: dict[int, tuple[str, dict | None]] | None = None,
          limit: str | None = None, max_bytes: int | None = None,
          raw_body: dict[str, dict[str, Any]] | None = None, response_type: str = "application/json",
          public: bool = False):
    """Declare an API route once: it is served by `bp` at `rule` (Flask's syntax, under the
    blueprint's prefix), guarded, validated and written into /api/v1/openapi.json.

    - `roles`: None for anyone; otherwise a bearer token of a user with one of them (401/403), the
      user then in `g.api_user`.
    - `body`, `query`, `headers`: Schema classes; the view receives the validated instances as
      keyword arguments of those names. A refusal is a 400 in the API's error shape.
    - `response`: the answer's schema (a dict or a pydantic model), at `status`; `responses`: the
      other answers besides the 4XX error ({status: (description, schema or None)}).
    - `limit`: a rate limit per client address (Flask-Limiter's syntax, counted by
      `extensions.PerClientLimit`); `max_bytes`: a larger JSON body limit.
    - `raw_body`: a body that is not JSON ({media type: schema}), read by the view itself;
      `response_type`: the media type of the answer at `status` when it is not JSON.
    - `public`: a GET whose answer holds nothing about the reader beyond their language: to an
      anonymous request (no cookie, no credential) it says `Cache-Control: public,
      max-age=FILMFUND_PUBLIC_CACHE_SECONDS`, and the shared cache in front of the app may keep it.
      Such a route has no roles and no limit (a kept answer is served past both).
    """
    full_rule = (bp.url_prefix or "") + rule
    if public:
        if roles is not None or limit or method.upper() != "GET" or _RULE_VARIABLE.search(rule):
            raise ValueError(f"{full_rule}: only a plain GET without roles or a limit can be public")
        PUBLIC_PATHS.add(full_rule)

    def deco(view: Callable) -> Callable:
        OPERATIONS.append(Operation(full_rule, method.lower(), summary, roles, body, query, headers, response,
                                    status, responses or {}, raw_body, response_type))

        limited = PerClientLimit(limit, f"{method.upper()} {full_rule}") if limit else None

        @wraps(view)
        def endpoint(**kwargs):
            # The limit is counted first. A refused caller costs no lookup and no write, and is
            # told 429 before anything else; its answer is awaited only when needed: before the
            # token's lookup, else once the input is validated (pure CPU, done meanwhile).
            settle = limited.send() if limited is not None else _go_on
            if roles is not None:
                settle()
                settle = _go_on
                g.api_user = _bearer_user(roles)
            try:
                if headers is not None:
                    kwargs["headers"] = _validated(headers, _header_values(headers))
                if query is not None:
                    kwargs["query"] = _validated(query, request.args.to_dict())
                if body is not None:
                    kwargs["body"] = _validated(body, json_body(max_bytes))
            finally:
                settle()
            if public:
                return _public_answer(view(**kwargs))
            return view(**kwargs)

        bp.add_url_rule(rule, view_func=endpoint, methods=[method.upper()])
        return endpoint

    return deco


def _public_answer(rv) -> Response:
    """A public route's answer: the same for every anonymous reader of a language, so a shared
    cache may keep it briefly; whoever sends a cookie or a credential gets it uncached."""
    resp = current_app.make_response(rv)
    resp.vary.update(("Accept-Language", "Cookie"))
    seconds = current_app.config.get("PUBLIC_CACHE_SECONDS", 0)
    if seconds and anonymous(request.environ):
        resp.cache_control.public = True
        resp.cache_control.max_age = seconds
    return resp


def bearer_user() -> User | None:
    """The bearer token's user; None when no Authorization header is sent; a bad token is a 401."""
    header = request.headers.get("Authorization")
    if not header:
        return None
    scheme, _sep, token = header.partition(" ")  # not `_`: the gettext below
    user = user_for_token(token.strip()) if scheme.lower() == "bearer" and token else None
    if user is None:
        raise Unauthorized(_("A valid API token is required (Authorization: Bearer <token>)."))
    return user


def _bearer_user(roles: tuple[str, ...]) -> User:
    user = bearer_user()
    if user is None:
        raise Unauthorized(_("A valid API token is required (Authorization: Bearer <token>)."))
    if roles and not user.has_role(*roles):
        raise ForbiddenError(_("This token's user may not do that."))
    return user


def _header_values(model: type[Parameters]) -> dict[str, str]:
    names = [(f.alias or name) for name, f in model.model_fields.items()]
    return {name: request.headers[name] for name in names if name in request.headers}


def _validated(model: type[Schema], data: dict[str, Any]) -> Schema:
    try:
        return model.model_validate(data)
    except PydanticError as exc:
        raise _refusal(model, exc.errors(include_url=False, include_input=False)) from None


def _refusal(model: type[Schema], errors: list[dict]) -> ValidationError:
    """One clear error for the client: unknown fields first, then missing ones, then the first
    field whose value is refused (with that field's code)."""
    unknown = sorted(str(e["loc"][0]) for e in errors if e["type"] == "extra_forbidden")
    if unknown:
        return ValidationError(_("Unknown field(s): %(fields)s.", fields=", ".join(unknown)), code="unknown_field")
    missing = [str(e["loc"][0]) for e in errors if e["type"] == "missing"]
    if missing:
        return ValidationError(_("%(fields)s: required.", fields=_listed(missing)), code="missing_field")
    first = errors[0]
    if not first["loc"]:  # the model's own check (e.g. "at least one field"): its error type is the code
        return ValidationError(_(first["msg"]), code=first["type"])  # its message is marked where it is written
    field = str(first["loc"][0])
    name = next((n for n, f in model.model_fields.items() if field in (n, f.alias)), field)
    choices = _choices(model.model_fields[name].annotation) if name in model.model_fields else []
    # "field: message", with the reader's language's colon (full-width in Chinese): pages show the message alone
    return ValidationError(_("%(field)s: %(message)s", field=field, message=_said(first, choices)),
                           code=model.codes.get(name, "invalid_field"))


def _listed(items: list[str], style: str = "standard") -> str:
    """Names joined as the reader's language joins them ("a and b", "a和b"; style "or": "a, b, or c",
    "a、b或c"): pydantic's own joining is English."""
    return format_list(items, style=style, locale=get_locale() or "en")


def _choices(annotation: Any) -> list[str]:
    """The values a Literal or Enum field takes (also inside Optional), as the client writes them."""
    args = get_args(annotation)
    if get_origin(annotation) is Literal:
        return [json.dumps(a, ensure_ascii=False) if not isinstance(a, str) else f"'{a}'" for a in args]
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return [f"'{m.value}'" for m in annotation]
    return next((c for c in map(_choices, args) if c), [])


def _said(error: dict, choices: list[str] | None = None) -> str:
    """Pydantic's English for a refused value, in the reader's language (the usual kinds; any
    other keeps pydantic's words). `choices`: the field's values, for a value not among them."""
    ctx, kind = error.get("ctx") or {}, error["type"]
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        limit = next(iter(ctx.values()), "")
        return {"greater_than_equal": _("must be at least %(limit)s.", limit=limit),
                "greater_than": _("must be more than %(limit)s.", limit=limit),
                "less_than_equal": _("must be at most %(limit)s.", limit=limit),
                "less_than": _("must be less than %(limit)s.", limit=limit)}[kind]
    if kind == "string_too_long":
        return _("at most %(n)s characters.", n=ctx.get("max_length"))
    if kind == "string_too_short":
        return _("at least %(n)s characters.", n=ctx.get("min_length"))
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return _("must be a whole number.")
    if kind in ("bool_type", "bool_parsing"):
        return _("must be true or false.")
    if kind == "string_type":
        return _("must be text.")
    if kind == "string_pattern_mismatch":
        return _("is not in the expected form.")
    if kind in ("literal_error", "enum"):
        return _("must be one of %(choices)s.", choices=_listed(choices, "or") if choices else ctx.get("expected", ""))
    if kind in ("date_type", "date_parsing", "date_from_datetime_parsing", "date_from_datetime_inexact"):
        return _("give a date like 2026-12-03.")
    if kind in ("datetime_type", "datetime_parsing", "datetime_from_date_parsing", "timezone_aware"):
        return _("give a time with its zone, like 2026-12-03T20:30:00Z.")
    # A rarer kind: pydantic's own words stay as the detail, inside a sentence in the reader's language.
    return _("is not accepted (%(detail)s).", detail=error["msg"])


def refuse(code: str, message: str) -> PydanticCustomError:
    """A model's own check (a model_validator): the error reaches the client with this code."""
    return PydanticCustomError(code, message)


class Unauthorized(DomainError):
    status, code = 401, "unauthorized"


def json_body(limit: int | None = None) -> dict[str, Any]:
    """The request's JSON object, or a clear 4xx: too large (over `limit` bytes, by default
    MAX_JSON_BYTES), not JSON, not an object."""
    limit = limit or current_app.config["MAX_JSON_BYTES"]
    if request.content_length is not None and request.content_length > limit:
        raise DomainError(_("Request body is larger than %(n)s bytes.", n=limit), code="too_large", status=413)
    raw = request.get_data(cache=True)
    if len(raw) > limit:
        raise DomainError(_("Request body is larger than %(n)s bytes.", n=limit), code="too_large", status=413)
    if not request.mimetype == "application/json":
        raise ValidationError(_("Send a JSON body with Content-Type: application/json."), code="invalid_json")
    try:
        body = json.loads(raw or b"null", parse_constant=_refuse_constant, parse_float=_finite_float)
    except RecursionError:
        raise ValidationError(_("The JSON body is nested too deep (at most %(n)s levels).", n=MAX_JSON_DEPTH),
                              code="invalid_json") from None
    except UnicodeDecodeError:
        raise ValidationError(_("The JSON body is not UTF-8 text."), code="invalid_json") from None
    except json.JSONDecodeError as exc:  # where, in the reader's language (not the parser's English)
        raise ValidationError(_("Malformed JSON at line %(line)s, column %(column)s.", line=exc.lineno,
                                column=exc.colno), code="invalid_json") from None
    except ValueError as exc:  # a number JSON has no room for: the message is ours, translated
        raise ValidationError(_("Malformed JSON: %(error)s", error=exc), code="invalid_json") from None
    if not isinstance(body, dict):
        raise ValidationError(_("The JSON body must be an object."), code="invalid_json")
    _check_shape(body)
    return body


MAX_JSON_DEPTH = 16


def _refuse_constant(name: str):
    raise ValueError(_("%(name)s is not a number JSON allows.", name=name))


def _finite_float(text: str) -> float:
    value = float(text)
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(_("%(number)s is out of range.", number=text[:20]))
    return value


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")  # NUL, or a UTF-16 surrogate alone (json.loads lets both through)


def _check_shape(value, depth: int = 0) -> None:
    """Bounded nesting, and text that can be stored (no lone UTF-16 surrogates, no NUL)."""
    if depth > MAX_JSON_DEPTH:
        raise ValidationError(_("The JSON body is nested too deep (at most %(n)s levels).", n=MAX_JSON_DEPTH),
                              code="invalid_json")
    if isinstance(value, str):
        if _UNSTORABLE.search(value):
            raise ValidationError(_("Text holds a character that is not allowed (NUL or a lone surrogate)."),
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
    components: dict[str, Any] = {}
    paths: dict[str, Any] = {}
    for op in OPERATIONS:
        entry: dict[str, Any] = {
            "summary": op.summary,
            "operationId": f"{op.method}_{op.path.strip('/').replace('/', '_').replace('{', '').replace('}', '')}",
            "responses": {
                str(op.status): {"description": "OK", "content": {op.response_type: {
                    "schema": _schema(op.response, components) if op.response else {"type": "object"}}}},
                "4XX": {"description": "Error", "content": {"application/json": {"schema": ERROR_SCHEMA}}},
                # Any route may meet a failure that is not the client's: a service it needs (Stripe,
                # the storage, the database) down or busy, e.g. 502 payment_provider_unavailable,
                # 503 payment_provider_busy or storage_unavailable; the same error object says which.
                "5XX": {"description": "A service the server needs failed or is busy; retry later",
                        "content": {"application/json": {"schema": ERROR_SCHEMA}}},
            },
        }
        for code, (description, schema) in op.responses.items():
            entry["responses"][str(code)] = {"description": description}
            if schema is not None:
                entry["responses"][str(code)]["content"] = {"application/json": {"schema": schema}}
        parameters = _path_parameters(op.rule)
        for where, model in (("query", op.query), ("header", op.headers)):
            if model is not None:
                parameters += _parameters(model, where, components)
        if parameters:
            entry["parameters"] = parameters
        if op.roles is not None:
            entry["security"] = [{"bearer": []}]
            entry["description"] = "Roles: " + ", ".join(op.roles)
        if op.body is not None:
            entry["requestBody"] = {"required": True,
                                    "content": {"application/json": {"schema": _schema(op.body, components)}}}
        elif op.raw_body:
            entry["requestBody"] = {"required": True,
                                    "content": {media: {"schema": schema} for media, schema in op.raw_body.items()}}
        paths.setdefault(op.path, {})[op.method] = entry
    return {
        "openapi": "3.0.3",
        "info": {"title": "filmfund API", "version": "1",
                 "description": "Money is integer cents. Every string, in a body, a query or a path, is "
                                "Unicode text without NUL (U+0000) or lone surrogates: others are refused "
                                "with 400. Errors are {\"error\": {\"code\", \"message\"}}."},
        "servers": [{"url": "/"}],
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
                       **({"schemas": dict(sorted(components.items()))} if components else {})},
        "paths": dict(sorted(paths.items())),
    }


def _schema(spec: dict | type[BaseModel], components: dict[str, Any]) -> dict[str, Any]:
    """A dict as written; a pydantic model's JSON Schema in OpenAPI 3.0's dialect (its nested
    models under components). Built when the document is served: a model may read the campaign."""
    if isinstance(spec, dict):
        return spec
    schema = spec.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, sub in schema.pop("$defs", {}).items():
        components[name] = _openapi30(sub)
    return _openapi30(schema)


def _openapi30(node: Any) -> Any:
    """JSON Schema 2020-12 (pydantic's) as OpenAPI 3.0 writes it: `X or null` is `nullable`, a
    `const` a one-value `enum`; pydantic's titles and null defaults go."""
    if not isinstance(node, dict):
        return node
    out = {k: v for k, v in node.items() if k != "title"}
    variants = out.get("anyOf")
    if variants and {"type": "null"} in variants:
        others = [v for v in variants if v != {"type": "null"}]
        del out["anyOf"]
        out = {**(others[0] if len(others) == 1 else {"anyOf": others}), **out, "nullable": True}
    if "const" in out:
        out["enum"] = [out.pop("const")]
    if out.get("default", 0) is None and not out.get("nullable"):
        del out["default"]
    for key in ("items", "additionalProperties", "not"):
        if isinstance(out.get(key), dict):
            out[key] = _openapi30(out[key])
    for key in ("anyOf", "oneOf", "allOf"):
        if key in out:
            out[key] = [_openapi30(v) for v in out[key]]
    if "properties" in out:
        out["properties"] = {name: _openapi30(v) for name, v in out["properties"].items()}
    return out


def _parameters(model: type[Parameters], where: str, components: dict[str, Any]) -> list[dict[str, Any]]:
    schema = _schema(model, components)
    required = set(schema.get("required", ()))
    out = []
    for name, prop in schema["properties"].items():
        param = {"name": name, "in": where, "required": name in required}
        if "description" in prop:
            param["description"] = prop.pop("description")
        out.append({**param, "schema": prop})
    return out


def _path_parameters(rule: str) -> list[dict[str, Any]]:
    """Each variable of the Flask rule, with its converter's real bounds."""
    out = []
    for m in _RULE_VARIABLE.finditer(rule):
        schema = ({"type": "integer", "minimum": 0, "maximum": MAX_ID} if m["converter"] == "int"
                  else {"type": "string"})
        out.append({"name": m["name"], "in": "path", "required": True, "schema": schema})
    return out


@bp.get("/openapi.json")
def openapi_json():
    return jsonify(openapi_document())


def init_app(app: Flask) -> None:
    csrf.exempt(bp)
    app.register_blueprint(bp)

    @app.get("/healthz")
    def healthz():
        db.session.execute(sa.text("SELECT 1"))
        return jsonify({"status": "ok"})
