"""Footage API: the producers' asset list, publishing to a reward, and the donor's library.

Bearer tokens only (never the session cookie), so the blueprint is exempt from CSRF.
"""
from __future__ import annotations

from flask import Blueprint, Flask, g, jsonify, request

from filmfund.api import bearer_required, json_body, operation
from filmfund.media.models import AssetState

bp = Blueprint("media_api", __name__, url_prefix="/api/v1")

_PROBLEM = {"type": "object", "properties": {"code": {"type": "string"}, "message": {"type": "string"},
                                             "at": {"type": "number", "nullable": True},
                                             "hint": {"type": "string", "nullable": True}}}
ASSET_SCHEMA = {
    "type": "object",
    "required": ["id", "title", "kind", "state", "sha256", "duration", "recorded_at", "sources", "renditions",
                 "problems"],
    "properties": {
        "id": {"type": "string"}, "title": {"type": "string"},
        "kind": {"type": "string", "enum": ["video", "image", "audio"]},
        "state": {"type": "string", "enum": ["uploaded", "verifying", "verified", "damaged", "transcoding",
                                             "ready", "failed"]},
        "sha256": {"type": "string"}, "duration": {"type": "number", "nullable": True},
        "recorded_at": {"type": "string", "format": "date-time", "nullable": True},
        "sources": {"type": "array", "items": {"type": "object"}},
        "renditions": {"type": "array", "items": {"type": "object"}},
        "problems": {"type": "array", "items": _PROBLEM},
        "published_to": {"type": "array", "items": {"type": "string"}},
        "rendition_states": {"type": "object", "description": "rendition kind -> its own state",
                             "additionalProperties": {"type": "object", "properties": {
                                 "state": {"type": "string", "enum": ["pending", "running", "ready", "failed"]},
                                 "attempts": {"type": "integer"}, "error": {"type": "string", "nullable": True}}}},
        "timecode": {"type": "string", "nullable": True, "description": "the camera's start timecode, HH:MM:SS:FF"},
        "fixity": {"type": "object", "properties": {
            "status": {"type": "string", "enum": ["unchecked", "ok", "alert"]},
            "checked_at": {"type": "string", "format": "date-time", "nullable": True}}},
    },
}
LIBRARY_ITEM = {
    "type": "object", "required": ["asset_id", "title", "kind", "reward", "download_url", "expires_at"],
    "properties": {"asset_id": {"type": "string"}, "title": {"type": "string"}, "kind": {"type": "string"},
                   "reward": {"type": "string"}, "download_url": {"type": "string"},
                   "expires_at": {"type": "string", "format": "date-time"},
                   "reward_title": {"type": "string"}, "page_url": {"type": "string"},
                   "duration": {"type": "number", "nullable": True}, "size": {"type": "integer"},
                   "content_type": {"type": "string"},
                   "width": {"type": "integer", "nullable": True}, "height": {"type": "integer", "nullable": True},
                   "poster_url": {"type": "string", "nullable": True},
                   "play_url": {"type": "string", "nullable": True}},
}


def _items(schema):
    return {"type": "object", "required": ["items"], "properties": {"items": {"type": "array", "items": schema}}}


@bp.get("/media/assets")
@operation("/api/v1/media/assets", "get", "Every footage asset with its state, sources, renditions and problems",
           roles=("producer",), response_schema=_items(ASSET_SCHEMA),
           parameters=[
               {"name": "state", "in": "query", "required": False, "description": "empty: every state",
                "schema": {"type": "string", "enum": ["", *[s.value for s in AssetState], "alert"]}},
               {"name": "day", "in": "query", "required": False,
                "description": "recorded (or else ingested) on this UTC day, YYYY-MM-DD; empty: any day",
                "schema": {"type": "string", "anyOf": [{"format": "date", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"},
                                                       {"maxLength": 0}]}},
               {"name": "camera", "in": "query", "required": False, "description": "exact camera name",
                "schema": {"type": "string", "pattern": "^[^\\x00]*$"}},
               {"name": "q", "in": "query", "required": False,
                "description": "words in the title or notes (the first 200 characters count)",
                "schema": {"type": "string", "pattern": "^[^\\x00]*$"}},
           ])
@bearer_required("producer")
def list_assets():
    from filmfund.media import services

    assets = services.find_assets(state=request.args.get("state") or None, day=request.args.get("day") or None,
                                  camera=request.args.get("camera") or None, q=request.args.get("q") or None,
                                  limit=1000)
    jobs = services.active_jobs(assets)
    return jsonify({"items": [services.asset_dict(a, jobs.get(a.id)) for a in assets]})


@bp.post("/media/assets/<asset_id>/publish")
@operation("/api/v1/media/assets/{id}/publish", "post", "Make an asset donor-only content of a reward",
           roles=("producer",),
           request_schema={"type": "object", "required": ["reward"],
                           "properties": {"reward": {"type": "string", "description": "a digital reward's key"},
                                          "rendition": {"type": "string", "enum": ["web", "poster", "image"]}}},
           response_schema={"type": "object", "properties": {"asset_id": {"type": "string"},
                                                             "reward": {"type": "string"},
                                                             "rendition": {"type": "string", "nullable": True},
                                                             "published_at": {"type": "string"}}},
           parameters=[{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}])
@bearer_required("producer")
def publish_asset(asset_id: str):
    from filmfund.media import services

    body = json_body()
    asset = services.get_asset(asset_id)
    pub, created = services.publish(asset, body.get("reward"), rendition=body.get("rendition"), user=g.api_user)
    return jsonify({"asset_id": asset.public_id, "reward": pub.reward_key,
                    "rendition": pub.rendition.value if pub.rendition else None,
                    "published_at": services._iso(pub.published_at)}), 201 if created else 200


@bp.post("/media/assets/<asset_id>/unpublish")
@operation("/api/v1/media/assets/{id}/unpublish", "post", "Take an asset back from a reward",
           roles=("producer",),
           request_schema={"type": "object", "required": ["reward"], "properties": {"reward": {"type": "string"}}},
           response_schema={"type": "object", "properties": {"asset_id": {"type": "string"},
                                                             "reward": {"type": "string"},
                                                             "published_to": {"type": "array",
                                                                              "items": {"type": "string"}}}},
           parameters=[{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}])
@bearer_required("producer")
def unpublish_asset(asset_id: str):
    from filmfund.media import services

    body = json_body()
    asset = services.get_asset(asset_id)
    services.unpublish(asset, body.get("reward"))
    return jsonify({"asset_id": asset.public_id, "reward": body.get("reward"),
                    "published_to": [p.reward_key for p in asset.publications]})


@bp.get("/library")
@operation("/api/v1/library", "get", "The donor-only media this donor is entitled to, with expiring links",
           roles=("donor",), response_schema=_items(LIBRARY_ITEM))
@bearer_required("donor")
def library():
    from filmfund.media import services

    resp = jsonify({"items": services.library_for(g.api_user)})
    resp.headers["Cache-Control"] = "private, no-store"
    return resp


def init_app(app: Flask) -> None:
    from filmfund.extensions import csrf

    csrf.exempt(bp)
    app.register_blueprint(bp)
