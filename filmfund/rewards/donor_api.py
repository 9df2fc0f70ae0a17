"""The signed-in donor's own settings and data: `GET` and `PATCH /api/v1/me`, `GET /api/v1/me/data`
(bearer tokens only, so exempt from CSRF). The use cases are in donors.py and donor_data.py."""
from __future__ import annotations

from typing import ClassVar

from flask import Blueprint, g, jsonify
from pydantic import Field, model_validator

from filmfund.api import Schema, refuse, route
from filmfund.audit import record_audit, user_ref
from filmfund.extensions import db
from filmfund.rewards import donor_data, donors, pledges, subscriptions

bp = Blueprint("donor_api", __name__, url_prefix="/api/v1")

SETTINGS_SCHEMA = {
    "type": "object", "required": ["credit_name", "anonymous", "rewards_opt_out"],
    "properties": {"credit_name": {"type": "string", "nullable": True, "maxLength": pledges.CREDIT_NAME_MAX},
                   "anonymous": {"type": "boolean"}, "rewards_opt_out": {"type": "boolean"}},
}


class SettingsChange(Schema):
    """At least one setting; a field left out keeps its value."""

    model_config = {**Schema.model_config, "json_schema_extra": {"minProperties": 1}}
    credit_name: str | None = Field(None, max_length=pledges.CREDIT_NAME_MAX)
    anonymous: bool = None  # type: ignore[assignment]  (optional, never null)
    rewards_opt_out: bool = None  # type: ignore[assignment]
    codes: ClassVar[dict[str, str]] = {"credit_name": "invalid_credit_name"}

    @model_validator(mode="after")
    def _one_at_least(self):
        if not self.model_fields_set:
            raise refuse("missing_field", "Give at least one of credit_name, anonymous, rewards_opt_out.")
        return self


_ADDRESS = {"type": "object", "nullable": True,
            "required": ["name", "line1", "line2", "city", "region", "postal_code", "country"],
            "properties": {k: {"type": "string"} for k in ("name", "line1", "line2", "city", "region",
                                                            "postal_code", "country")}}
ME_SCHEMA = {
    "type": "object",
    "required": ["email", "credit_name", "anonymous", "rewards_opt_out", "language", "shipping_address",
                 "pending_changes"],
    "properties": {
        "email": {"type": "string"}, **SETTINGS_SCHEMA["properties"], "language": {"type": "string"},
        "shipping_address": _ADDRESS,
        "pending_changes": {
            "type": "array", "description": "what later gifts asked, waiting for the donor's confirmation (mailed)",
            "items": {"type": "object", "required": ["field", "value", "requested_at"],
                      "properties": {"field": {"type": "string",
                                               "enum": ["credit_name", "anonymous", "rewards_opt_out",
                                                        "shipping_address"]},
                                     "value": {}, "requested_at": {"type": "string", "format": "date-time"},
                                     "donation_id": {"type": "integer", "nullable": True}}}},
    },
}
DATA_SCHEMA = {
    "type": "object", "required": ["account", "tables"],
    "properties": {"account": {"type": "object"},
                   "tables": {"type": "object", "description": "table name -> the donor's rows",
                              "additionalProperties": {"type": "array", "items": {"type": "object"}}}},
}


@route(bp, "/me", "GET", "The signed-in donor's settings as they stand, with the changes waiting for their "
       "confirmation", roles=("donor",), response=ME_SCHEMA, limit="60 per minute")
def me():
    return jsonify(donors.me_document(g.api_user))


@route(bp, "/me", "PATCH", "Change the signed-in donor's credit name, anonymity or rewards opt-out "
       "(the only ways are this, the account page, or a link mailed to the donor)",
       roles=("donor",), body=SettingsChange, response=SETTINGS_SCHEMA, limit="30 per minute")
def update_me(body: SettingsChange):
    settings = donors.update_donor_settings(g.api_user, via="api", **body.model_dump(exclude_unset=True))
    db.session.commit()
    return jsonify(settings)


@route(bp, "/me/data", "GET", "Everything held about the signed-in donor", roles=("donor",),
       response=DATA_SCHEMA, limit="10 per minute")
def my_data():
    document = donor_data.donor_data(g.api_user)
    record_audit("export.donor_data", user_ref(g.api_user), {"via": "api"})
    db.session.commit()
    return jsonify(document)


SUBSCRIPTION_SCHEMA = {
    "type": "object", "required": ["id", "amount", "currency", "interval", "state", "started_at", "next_payment_at"],
    "properties": {"id": {"type": "string"}, "amount": {"type": "integer", "description": "cents, each month"},
                   "currency": {"type": "string"}, "interval": {"type": "string", "enum": ["month"]},
                   "state": {"type": "string", "enum": ["active", "past_due", "canceled"]},
                   "started_at": {"type": "string", "format": "date-time"},
                   "next_payment_at": {"type": "string", "format": "date-time", "nullable": True}},
}


@route(bp, "/me/subscriptions", "GET", "The signed-in donor's monthly gifts", roles=("donor",),
       response={"type": "object", "required": ["items"],
                 "properties": {"items": {"type": "array", "items": SUBSCRIPTION_SCHEMA}}},
       limit="60 per minute")
def my_subscriptions():
    return jsonify({"items": [subscriptions.document(s) for s in subscriptions.donor_subscriptions(g.api_user)]})


@route(bp, "/me/subscriptions/<id>/cancel", "POST", "Stop one of the signed-in donor's monthly gifts: no "
       "further payment; nothing already paid is refunded", roles=("donor",), response=SUBSCRIPTION_SCHEMA,
       limit="30 per minute")
def cancel_subscription(id: str):
    sub = subscriptions.cancel(g.api_user, id, via="api")
    db.session.commit()
    return jsonify(subscriptions.document(sub))
