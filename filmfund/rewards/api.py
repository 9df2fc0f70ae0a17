"""The rewards part of /api/v1 (bearer tokens only, so exempt from CSRF)."""
from __future__ import annotations

import re

from flask import Blueprint, g, jsonify, request

from filmfund.api import bearer_required, json_body, operation
from filmfund.extensions import limiter
from filmfund.rewards import services
from filmfund.rewards.campaign_file import MAX_AMOUNT

bp = Blueprint("rewards_api", __name__, url_prefix="/api/v1")

_REWARD = {"type": "object", "required": ["key", "kind", "title"],
           "properties": {"key": {"type": "string"}, "kind": {"type": "string"}, "title": {"type": "string"}}}
_TIER_REF = {"type": "object", "nullable": True, "required": ["min_amount", "name"],
             "properties": {"min_amount": {"type": "integer"}, "name": {"type": "string"}}}
CAMPAIGN_SCHEMA = {
    "type": "object",
    "required": ["slug", "title", "currency", "goal", "raised", "donors", "partner", "tiers", "test_money"],
    "properties": {
        "slug": {"type": "string"}, "title": {"type": "string"}, "tagline": {"type": "string"},
        "description": {"type": "string"}, "currency": {"type": "string"}, "goal": {"type": "integer"},
        "raised": {"type": "integer"}, "donors": {"type": "integer"},
        "test_money": {"type": "boolean"},
        "partner": {"type": "object", "required": ["name", "share_bps"],
                    "properties": {"name": {"type": "string"}, "share_bps": {"type": "integer"}}},
        "tiers": {"type": "array", "items": {"type": "object", "required": ["min_amount", "name", "rewards"],
                                             "properties": {"min_amount": {"type": "integer"},
                                                            "name": {"type": "string"},
                                                            "rewards": {"type": "array", "items": _REWARD}}}},
    },
}
# What normalize_email accepts (surrounding whitespace is trimmed), in ECMA-262 regex syntax.
EMAIL_PATTERN = r"^\s*[^@\s<>" + '"' + r"',;]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63}\s*$"
PLEDGE_REQUEST = {
    "type": "object", "required": ["amount", "email"], "additionalProperties": False,
    "properties": {
        "amount": {"type": "integer", "minimum": services.MIN_AMOUNT, "maximum": MAX_AMOUNT,
                   "description": "cents"},
        "currency": {"type": "string", "minLength": 3, "maxLength": 3},
        "email": {"type": "string", "maxLength": 254, "pattern": EMAIL_PATTERN,
                  "description": "an email address: the receipt and the rewards go there"},
        "credit_name": {"type": "string", "maxLength": services.CREDIT_NAME_MAX, "nullable": True},
        "anonymous": {"type": "boolean"}, "rewards_opt_out": {"type": "boolean"},
    },
}
# Printable ASCII, no surrounding spaces (an HTTP server trims those), 1 to 128 characters.
IDEMPOTENCY_KEY_PATTERN = r"^[\x21-\x7e]([\x20-\x7e]{0,126}[\x21-\x7e])?$"
IDEMPOTENCY_KEY = {"name": "Idempotency-Key", "in": "header", "required": False,
                   "schema": {"type": "string", "minLength": 1, "maxLength": 128,
                              "pattern": IDEMPOTENCY_KEY_PATTERN},
                   "description": "Repeat a request with the same key to get the same pledge back"}


def pledge_request_schema() -> dict:
    """The pledge body, with the one currency this campaign takes (in either case)."""
    from pathlib import Path

    from flask import current_app

    from filmfund.rewards.campaign_file import read_campaign_file

    currency = read_campaign_file(Path(current_app.config["CAMPAIGN_FILE"])).currency
    pattern = "^" + "".join(f"[{c.lower()}{c.upper()}]" for c in currency) + "$"
    props = {**PLEDGE_REQUEST["properties"],
             "currency": {"type": "string", "pattern": pattern, "nullable": True,
                          "description": f"{currency}, this campaign's (null or absent: the same)"}}
    return {**PLEDGE_REQUEST, "properties": props}


PLEDGE_RESPONSE = {"type": "object", "required": ["pledge_id", "checkout_session_id", "checkout_url"],
                   "properties": {"pledge_id": {"type": "string"}, "checkout_session_id": {"type": "string"},
                                  "checkout_url": {"type": "string"}}}
ENTITLEMENTS_SCHEMA = {
    "type": "object", "required": ["total", "tier", "rewards_opt_out", "rewards"],
    "properties": {"total": {"type": "integer"}, "tier": _TIER_REF, "rewards_opt_out": {"type": "boolean"},
                   "rewards": {"type": "array", "items": {**_REWARD, "required": ["key", "kind", "title", "status"],
                                                          "properties": {**_REWARD["properties"],
                                                                         "status": {"type": "string"}}}}},
}
STATEMENT_SCHEMA = {"type": "object",
                    "required": ["currency", "share_bps", "gross", "refunded", "net", "share_due", "paid_out",
                                 "balance", "test_money"],
                    "properties": {"currency": {"type": "string"}, "test_money": {"type": "boolean"},
                                   **{k: {"type": "integer"} for k in ("share_bps", "gross", "refunded", "net",
                                                                       "share_due", "paid_out", "balance")}}}
PLEDGE_FIELDS = set(PLEDGE_REQUEST["properties"])


@bp.get("/campaign")
@operation("/api/v1/campaign", "get", "The campaign: goal, raised, donors, partner and tiers",
           response_schema=CAMPAIGN_SCHEMA)
def campaign():
    return jsonify(services.campaign_document())


@bp.post("/pledges")
@limiter.limit("30 per minute")
@operation("/api/v1/pledges", "post", "Pledge an amount and get a checkout URL", status=201,
           request_schema=pledge_request_schema, response_schema=PLEDGE_RESPONSE,
           parameters=[IDEMPOTENCY_KEY])
def create_pledge():
    from filmfund.errors import ValidationError

    key = request.headers.get("Idempotency-Key")
    if key is not None and not re.fullmatch(IDEMPOTENCY_KEY_PATTERN, key):
        raise ValidationError("Idempotency-Key: 1 to 128 printable ASCII characters.",
                              code="invalid_idempotency_key")
    body = json_body()
    unknown = set(body) - PLEDGE_FIELDS
    if unknown:
        raise ValidationError(f"Unknown field(s): {', '.join(sorted(unknown))}.", code="unknown_field")
    if "amount" not in body or "email" not in body:
        raise ValidationError("amount and email are required.", code="missing_field")
    pledge = services.create_pledge(
        body["amount"], body.get("currency"), body["email"], body.get("credit_name"),
        body.get("anonymous", False), body.get("rewards_opt_out", False),
        idempotency_key=key)
    return jsonify({"pledge_id": pledge.id, "checkout_session_id": pledge.checkout_session_id,
                    "checkout_url": pledge.checkout_url}), 201


@bp.get("/me/entitlements")
@operation("/api/v1/me/entitlements", "get", "The signed-in donor's total, tier and rewards",
           roles=("donor",), response_schema=ENTITLEMENTS_SCHEMA)
@bearer_required("donor")
def my_entitlements():
    doc = services.donor_entitlements(g.api_user)
    for reward in doc["rewards"]:
        reward.pop("id", None)
    return jsonify(doc)


@bp.get("/partner/statement")
@operation("/api/v1/partner/statement", "get", "What the partner is owed and has been paid (aggregates only)",
           roles=("partner", "producer"), response_schema=STATEMENT_SCHEMA)
@bearer_required("partner", "producer")
def partner_statement():
    return jsonify(services.partner_statement(services.current_campaign()))
