"""The updates part of /api/v1 (bearer tokens only, so exempt from CSRF)."""
from __future__ import annotations

import re
from typing import ClassVar

from flask import Blueprint, g, jsonify
from pydantic import Field

from filmfund.api import Schema, bearer_user, route, versions_by_language, versions_dump
from filmfund.comms import updates
from filmfund.comms.models import Update
from filmfund.extensions import db
from filmfund.rewards.mail_prefs import absolute_url

bp = Blueprint("comms_api", __name__, url_prefix="/api/v1")

_ITEM = {"type": "object", "required": ["id", "title", "audience", "published_at"],
         "properties": {"id": {"type": "integer"}, "title": {"type": "string"}, "audience": {"type": "string"},
                        "published_at": {"type": "string", "format": "date-time", "nullable": True},
                        "url": {"type": "string"}}}
_UPDATE = {"type": "object", "required": ["id", "title", "audience", "state", "body", "published_at"],
           "properties": {**_ITEM["properties"], "state": {"type": "string", "enum": ["draft", "published"]},
                          "body": {"type": "string"},
                          "translations": {"type": "object", "additionalProperties": {
                              "type": "object", "properties": {"title": {"type": "string"}, "body": {"type": "string"}}}},
                          "deliveries": {"type": "object", "additionalProperties": {"type": "integer"}}}}


def _campaign_audiences(schema: dict) -> None:
    """The document names the audiences this campaign really has (surrounding spaces are trimmed)."""
    choices = "|".join(re.escape(value) for value, _ in updates.audiences())
    schema["pattern"] = f"^\\s*({choices})\\s*$"


class UpdateText(Schema):
    title: str = Field(min_length=1, max_length=updates.TITLE_MAX, pattern=r"\S", description="spaces are collapsed")
    body: str = Field(min_length=1, max_length=updates.BODY_MAX, description="Markdown, not only spaces")


class NewUpdate(UpdateText):
    audience: str = Field(description="everyone, donors, or a reward key", json_schema_extra=_campaign_audiences)
    translations: dict[str, UpdateText] | None = Field(
        default=None, description="the same update in the site's other languages, by tag: "
                                  '{"zh-Hans": {"title", "body"}}; each reader gets their own, the main text otherwise',
        json_schema_extra=versions_by_language)
    codes: ClassVar[dict[str, str]] = {"title": "invalid_title", "body": "invalid_body",
                                       "audience": "invalid_audience", "translations": "invalid_translations"}


class UpdateVersions(Schema):
    translations: dict[str, UpdateText] = Field(
        description="every version in the site's other languages, by tag, replacing those stored: "
                    '{"zh-Hans": {"title", "body"}}; {} removes them',
        json_schema_extra=versions_by_language)
    codes: ClassVar[dict[str, str]] = {"translations": "invalid_translations"}


# A body of BODY_MAX characters, each up to 6 bytes once JSON-escaped, fits in one request.
MAX_REQUEST_BYTES = 6 * updates.BODY_MAX + 4096


def _iso(value):
    return value.isoformat() if value else None


def _item(u: Update) -> dict:
    """An archive's item, its title in the caller's language (updates.version)."""
    return {"id": u.id, "title": updates.version(u).title, "audience": u.audience,
            "published_at": _iso(u.published_at), "url": absolute_url("comms.update_page", update_id=u.id)}


def _full(u: Update) -> dict:
    """A producer's view: the main text and each version as written."""
    return {**_item(u), "title": u.title, "state": u.state.value, "body": u.body,
            "translations": u.translations or {}, "deliveries": updates.delivery_counts([u.id]).get(u.id, {})}


@route(bp, "/updates", "GET", "The published updates the caller may read (anonymous: the public ones)",
       response={"type": "object", "required": ["items"],
                 "properties": {"items": {"type": "array", "items": _ITEM}}}, limit="120 per minute")
def list_updates():
    return jsonify({"items": [_item(u) for u in updates.readable_updates(bearer_user())]})


@route(bp, "/updates", "POST", "Write a draft update (Markdown) for an audience", roles=("producer",),
       body=NewUpdate, response=_UPDATE, status=201, max_bytes=MAX_REQUEST_BYTES)
def create_update(body: NewUpdate):
    update = updates.create_update(title=body.title, body=body.body, audience=body.audience,
                                   translations=versions_dump(body.translations), author=g.api_user)
    db.session.commit()
    return jsonify(_full(update)), 201


@route(bp, "/updates/<int:id>/translations", "PUT",
       "Replace an update's versions in the site's other languages, a published update's too (its main text "
       "and audience stay as mailed; no mail is sent again)", roles=("producer",), body=UpdateVersions,
       response=_UPDATE, max_bytes=MAX_REQUEST_BYTES)
def set_update_versions(id: int, body: UpdateVersions):  # noqa: A002 (the document's name for it)
    update = updates.set_versions(id, versions_dump(body.translations))
    db.session.commit()
    return jsonify(_full(update))


@route(bp, "/updates/<int:id>/publish", "POST",
       "Publish an update: the archive shows it to its audience and its mail is queued, once per donor",
       roles=("producer",), response=_UPDATE)
def publish_update(id: int):  # noqa: A002 (the document's name for it)
    update, _new = updates.publish_update(id, g.api_user)
    db.session.commit()
    return jsonify(_full(update))
