"""Footage API: the producers' asset list, publishing to a reward, and the donor's library.

Bearer tokens only (never the session cookie), so the blueprint is exempt from CSRF.
"""
from __future__ import annotations

from typing import ClassVar

from flask import Blueprint, Flask, g, jsonify, request
from pydantic import Field

from filmfund.api import Parameters, Schema, route, versions_by_language, versions_dump
from filmfund.extensions import csrf, db
from filmfund.media import captions, services
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
        "translations": {"type": "object", "description": "the title in the site's other languages, by tag",
                         "additionalProperties": {"type": "object", "properties": {"title": {"type": "string"}}}},
        "kind": {"type": "string", "enum": ["video", "image", "audio"]},
        "state": {"type": "string", "enum": ["uploaded", "verifying", "verified", "damaged", "transcoding",
                                             "ready", "failed"]},
        "sha256": {"type": "string"}, "duration": {"type": "number", "nullable": True},
        "recorded_at": {"type": "string", "format": "date-time", "nullable": True},
        "sources": {"type": "array", "items": {"type": "object", "properties": {
            "found_at": {"type": "string", "nullable": True,
                         "description": "the file's path when ingested (null: uploaded through the site)"},
            "stored_at": {"type": "string", "description": "the stored original: a path, or an s3:// address"},
            "second_copy_at": {"type": "string", "nullable": True,
                               "description": "its second copy (FILMFUND_REPLICA_URL), if one is kept"}}}},
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
    "properties": {"asset_id": {"type": "string"},
                   "title": {"type": "string", "description": "the producers' version in the caller's language "
                                                              "(?lang=, Accept-Language), the main title otherwise"},
                   "title_lang": {"type": "string", "description": "the language the title is written in"},
                   "kind": {"type": "string"}, "reward": {"type": "string"},
                   "download_url": {"type": "string", "nullable": True,
                                    "description": "null for an early-access screening (it only streams)"},
                   "stream_url": {"type": "string", "nullable": True,
                                  "description": "video: the HLS master playlist, signed and expiring like "
                                                 "download_url; null until the stream is made"},
                   "screening": {"type": "boolean"},
                   "expires_at": {"type": "string", "format": "date-time"},
                   "reward_title": {"type": "string"},
                   "page_url": {"type": "string", "description": "the signed-in download; for a screening "
                                "(it only streams) its player on the account page"},
                   "duration": {"type": "number", "nullable": True}, "size": {"type": "integer"},
                   "content_type": {"type": "string"},
                   "width": {"type": "integer", "nullable": True}, "height": {"type": "integer", "nullable": True},
                   "poster_url": {"type": "string", "nullable": True},
                   "play_url": {"type": "string", "nullable": True},
                   "captions": {"type": "array", "description": "the clip's final captions, Chinese and English "
                                "first; `url` a WebVTT file, signed and expiring like download_url",
                                "items": {"type": "object", "required": ["lang", "url"], "properties": {
                                    "lang": {"type": "string", "description": "BCP 47 tag, e.g. zh-Hans, en"},
                                    "url": {"type": "string"}, "label": {"type": "string"},
                                    "track_url": {"type": "string", "description": "for the site's own player "
                                                  "(the signed-in session's)"},
                                    "expires_in": {"type": "integer"}}}}},
}


def _items(schema):
    return {"type": "object", "required": ["items"], "properties": {"items": {"type": "array", "items": schema}}}


_NO_NUL = r"^[^\x00]*$"


class AssetFilters(Parameters):
    state: str = Field("", description="empty: every state",
                       json_schema_extra={"enum": ["", *[s.value for s in AssetState], "alert"]})
    day: str = Field("", description="recorded (or else ingested) on this UTC day, YYYY-MM-DD; empty: any day",
                     json_schema_extra={"anyOf": [{"format": "date", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"},
                                                  {"maxLength": 0}]})
    camera: str = Field("", pattern=_NO_NUL, description="exact camera name")
    q: str = Field("", pattern=_NO_NUL, description="words in the title or notes (the first 200 characters count)")
    # A NUL anywhere in the query is refused before the view, as invalid_characters (filmfund.security).


class Publication(Schema):
    model_config = {**Schema.model_config, "extra": "ignore"}
    reward: str = Field(description="a digital reward's key, or \"public\": shown to everyone on the campaign page "
                                    "(a video as the trailer, a still in the gallery), its clean copy only")
    # Its own message when refused ("... not made for donors"): the enum is the document's, the check the service's.
    rendition: str = Field(None, json_schema_extra={"enum": ["web", "poster", "image"]})  # type: ignore[assignment]
    codes: ClassVar[dict[str, str]] = {"reward": "invalid_reward", "rendition": "invalid_rendition"}


class Unpublication(Schema):
    model_config = {**Schema.model_config, "extra": "ignore"}
    reward: str
    codes: ClassVar[dict[str, str]] = {"reward": "invalid_reward"}


@route(bp, "/media/assets", "GET", "Every footage asset with its state, sources, renditions and problems",
       roles=("producer",), query=AssetFilters, response=_items(ASSET_SCHEMA))
def list_assets(query: AssetFilters):
    assets = services.find_assets(state=query.state or None, day=query.day or None, camera=query.camera or None,
                                  q=query.q or None, limit=1000)
    jobs = services.active_jobs(assets)
    return jsonify({"items": [services.asset_dict(a, jobs.get(a.id)) for a in assets]})


_PUBLISHED = {"type": "object", "properties": {"asset_id": {"type": "string"}, "reward": {"type": "string"},
                                               "rendition": {"type": "string", "nullable": True},
                                               "published_at": {"type": "string"}}}


@route(bp, "/media/assets/<id>/publish", "POST",
       "Make an asset donor-only content of a reward, or public on the campaign page ({\"reward\": \"public\"})",
       roles=("producer",), body=Publication, response=_PUBLISHED,
       responses={201: ("Published (it was not yet)", _PUBLISHED)})
def publish_asset(id: str, body: Publication):  # noqa: A002 (the document's name for it)

    asset = services.get_asset(id)
    pub, created = services.publish(asset, body.reward, rendition=body.rendition, user=g.api_user)
    db.session.commit()  # the donors' renditions are queued once committed
    return jsonify({"asset_id": asset.public_id, "reward": pub.reward_key,
                    "rendition": pub.rendition.value if pub.rendition else None,
                    "published_at": services._iso(pub.published_at)}), 201 if created else 200


@route(bp, "/media/assets/<id>/unpublish", "POST", "Take an asset back from a reward", roles=("producer",),
       body=Unpublication,
       response={"type": "object", "properties": {"asset_id": {"type": "string"}, "reward": {"type": "string"},
                                                  "published_to": {"type": "array", "items": {"type": "string"}}}})
def unpublish_asset(id: str, body: Unpublication):  # noqa: A002

    asset = services.get_asset(id)
    services.unpublish(asset, body.reward)
    db.session.commit()
    return jsonify({"asset_id": asset.public_id, "reward": body.reward,
                    "published_to": [p.reward_key for p in asset.publications]})


class TitleText(Schema):
    title: str = Field(min_length=1, max_length=services.TITLE_MAX, pattern=r"\S")


class TitleVersions(Schema):
    translations: dict[str, TitleText] = Field(
        description="the title in each of the site's other languages, by tag, replacing those stored: "
                    '{"zh-Hans": {"title"}}; {} removes them. Donors and visitors reading that language see it '
                    "(their library, its downloads' names, the campaign page); the main title otherwise",
        json_schema_extra=versions_by_language)
    codes: ClassVar[dict[str, str]] = {"translations": "invalid_translations"}


@route(bp, "/media/assets/<id>/translations", "PUT",
       "Replace an asset's title in the site's other languages", roles=("producer",), body=TitleVersions,
       response=ASSET_SCHEMA)
def set_asset_title_versions(id: str, body: TitleVersions):  # noqa: A002 (the document's name for it)
    asset = services.get_asset(id)
    services.update_notes(asset, None, None, versions_dump(body.translations))
    db.session.commit()
    return jsonify(services.asset_dict(asset))


@route(bp, "/library", "GET", "The donor-only media this donor is entitled to, with expiring links",
       roles=("donor",), response=_items(LIBRARY_ITEM))
def library():
    resp = jsonify({"items": services.library_for(g.api_user)})
    resp.headers["Cache-Control"] = "private, no-store"
    return resp


class CaptionOptions(Parameters):
    status: str = Field("final", description="draft: the producers' only; final: offered to donors",
                        json_schema_extra={"enum": ["draft", "final"]})
    translated_from: str = Field("", pattern=_NO_NUL, max_length=35,
                                 description="BCP 47 tag of the language these captions were translated from")


_LANG_RULE = "/media/assets/<id>/captions/<lang>"


@route(bp, _LANG_RULE, "PUT",
       "Upload or replace a clip's captions in one language: the body WebVTT (text/vtt) or SRT "
       "(application/x-subrip), at most 512 KiB; stored as sanitised WebVTT",
       roles=("producer",), query=CaptionOptions, status=204, responses={204: ("Stored", None)},
       raw_body={"text/vtt": {"type": "string", "description": "WebVTT text (UTF-8)"},
                 "application/x-subrip": {"type": "string", "description": "SRT text (UTF-8)"}})
def put_captions(id: str, lang: str, query: CaptionOptions):  # noqa: A002


    asset = services.get_asset(id)
    captions.put(asset, lang, request.stream.read(captions.MAX_BYTES + 1), request.content_type, status=query.status,
                 translated_from=query.translated_from or None, user=g.api_user)
    db.session.commit()
    return "", 204


@route(bp, _LANG_RULE, "GET", "A clip's captions in one language, as WebVTT (text/vtt)", roles=("producer",),
       response={"type": "string", "description": "WebVTT text"}, response_type="text/vtt")
def get_captions(id: str, lang: str):  # noqa: A002

    return captions.vtt_response(captions.get(services.get_asset(id), lang))


@route(bp, _LANG_RULE, "DELETE", "Remove a clip's captions in one language", roles=("producer",), status=204,
       responses={204: ("Removed", None)})
def delete_captions(id: str, lang: str):  # noqa: A002

    captions.delete(services.get_asset(id), lang, user=g.api_user)
    db.session.commit()
    return "", 204


def init_app(app: Flask) -> None:
    csrf.exempt(bp)
    app.register_blueprint(bp)
