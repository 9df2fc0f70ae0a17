"""The updates part of /api/v1 (bearer tokens only, so exempt from CSRF)."""
from __future__ import annotations

from flask import Blueprint, g, jsonify, request

from filmfund.api import Unauthorized, bearer_required, json_body, operation
from filmfund.comms import updates
from filmfund.comms.models import Update
from filmfund.extensions import limiter

bp = Blueprint("comms_api", __name__, url_prefix="/api/v1")

_ITEM = {"type": "object", "required": ["id", "title", "audience", "published_at"],
         "properties": {"id": {"type": "integer"}, "title": {"type": "string"}, "audience": {"type": "string"},
                        "published_at": {"type": "string", "format": "date-time", "nullable": True},
                        "url": {"type": "string"}}}
_UPDATE = {"type": "object", "required": ["id", "title", "audience", "state", "body", "published_at"],
           "properties": {**_ITEM["properties"], "state": {"type": "string", "enum": ["draft", "published"]},
                          "body": {"type": "string"},
                          "deliveries": {"type": "object", "additionalProperties": {"type": "integer"}}}}
CREATE_REQUEST = {"type": "object", "required": ["title", "body", "audience"], "additionalProperties": False,
                  "properties": {"title": {"type": "string", "minLength": 1, "maxLength": updates.TITLE_MAX,
                                           "pattern": "\\S", "description": "spaces are collapsed"},
                                 "body": {"type": "string", "minLength": 1, "maxLength": updates.BODY_MAX,
                                          "description": "Markdown, not only spaces"},
                                 "audience": {"type": "string", "description": "everyone, donors, or a reward key"}}}
# A body of BODY_MAX characters, each up to 6 bytes once JSON-escaped, fits in one request.
MAX_REQUEST_BYTES = 6 * updates.BODY_MAX + 4096
MAX_ID = 2**31 - 1  # the database's integer: a larger id names no update


def create_request_schema() -> dict:
    """The request with the audiences this campaign really has (surrounding spaces are trimmed)."""
    import re

    choices = "|".join(re.escape(value) for value, _ in updates.audiences())
    audience = {**CREATE_REQUEST["properties"]["audience"], "pattern": f"^\\s*({choices})\\s*$"}
    return {**CREATE_REQUEST, "properties": {**CREATE_REQUEST["properties"], "audience": audience}}


def _iso(value):
    return value.isoformat() if value else None


def _item(u: Update) -> dict:
    from filmfund.rewards.mail_prefs import absolute_url

    return {"id": u.id, "title": u.title, "audience": u.audience, "published_at": _iso(u.published_at),
            "url": absolute_url("comms.update_page", update_id=u.id)}


def _full(u: Update) -> dict:
    return {**_item(u), "state": u.state.value, "body": u.body,
            "deliveries": updates.delivery_counts([u.id]).get(u.id, {})}


def _optional_user():
    """The token's user when an Authorization header is sent (a bad token is a 401), else None."""
    if not request.headers.get("Authorization"):
        return None
    from filmfund.auth.services import user_for_token

    scheme, _, token = request.headers["Authorization"].partition(" ")
    user = user_for_token(token.strip()) if scheme.lower() == "bearer" and token else None
    if user is None:
        raise Unauthorized("A valid API token is required (Authorization: Bearer <token>).")
    return user


@bp.get("/updates")
@limiter.limit("120 per minute")
@operation("/api/v1/updates", "get", "The published updates the caller may read (anonymous: the public ones)",
           response_schema={"type": "object", "required": ["items"],
                            "properties": {"items": {"type": "array", "items": _ITEM}}})
def list_updates():
    return jsonify({"items": [_item(u) for u in updates.readable_updates(_optional_user())]})


@bp.post("/updates")
@bearer_required("producer")
@operation("/api/v1/updates", "post", "Write a draft update (Markdown) for an audience", roles=("producer",),
           request_schema=create_request_schema, response_schema=_UPDATE, status=201)
def create_update():
    body = json_body(limit=MAX_REQUEST_BYTES)
    unknown = set(body) - set(CREATE_REQUEST["properties"])
    if unknown:
        from filmfund.errors import ValidationError

        raise ValidationError(f"Unknown field(s): {', '.join(sorted(unknown))}.", code="unknown_field")
    update = updates.create_update(title=body.get("title"), body=body.get("body"), audience=body.get("audience"),
                                   author=g.api_user)
    return jsonify(_full(update)), 201


@bp.post("/updates/<int:update_id>/publish")
@bearer_required("producer")
@operation("/api/v1/updates/{id}/publish", "post",
           "Publish an update: the archive shows it to its audience and its mail is queued, once per donor",
           roles=("producer",), response_schema=_UPDATE,
           parameters=[{"name": "id", "in": "path", "required": True,
                        "schema": {"type": "integer", "minimum": 0, "maximum": MAX_ID}}])
def publish_update(update_id: int):
    if update_id > MAX_ID:
        from filmfund.errors import NotFoundError

        raise NotFoundError("No such update.")
    update, _new = updates.publish_update(update_id, g.api_user)
    return jsonify(_full(update))
