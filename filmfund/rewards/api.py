"""The rewards part of /api/v1 (bearer tokens only, so exempt from CSRF)."""
from __future__ import annotations

from flask import Blueprint, g, jsonify, request

from filmfund.api import bearer_required, json_body, operation
from filmfund.extensions import limiter
from filmfund.rewards import services

bp = Blueprint("rewards_api", __name__, url_prefix="/api/v1")

_REWARD = {"type": "object", "required": ["key", "kind", "title"],
           "properties": {"key": {"type": "string"}, "kind": {"type": "string"}, "title": {"type": "string"}}}
_TIER_REF = {"type": "object", "nullable": True, "required": ["min_amount", "name"],
             "properties": {"min_amount": {"type": "integer"}, "name": {"type": "string"}}}
CAMPAIGN_SCHEMA = {
    "type": "object",
    "required": ["slug", "title", "currency", "goal", "raised", "donors", "partner", "tiers"],
    "properties": {
        "slug": {"type": "string"}, "title": {"type": "string"}, "tagline": {"type": "string"},
        "description": {"type": "string"}, "currency": {"type": "string"}, "goal": {"type": "integer"},
        "raised": {"type": "integer"}, "donors": {"type": "integer"},
        "partner": {"type": "object", "required": ["name", "share_bps"],
                    "properties": {"name": {"type": "string"}, "share_bps": {"type": "integer"}}},
        "tiers": {"type": "array", "items": {"type": "object", "required": ["min_amount", "name", "rewards"],
                                             "properties": {"min_amount": {"type": "integer"},
                                                            "name": {"type": "string"},
                                                            "rewards": {"type": "array", "items": _REWARD}}}},
    },
}
PLEDGE_REQUEST = {
    "type": "object", "required": ["amount", "email"], "additionalProperties": False,
    "properties": {
        "amount": {"type": "integer", "minimum": services.MIN_AMOUNT, "maximum": 10**8,
                   "description": "cents"},
        "currency": {"type": "string", "minLength": 3, "maxLength": 3},
        "email": {"type": "string", "format": "email", "maxLength": 254},
        "credit_name": {"type": "string", "maxLength": services.CREDIT_NAME_MAX, "nullable": True},
        "anonymous": {"type": "boolean"}, "rewards_opt_out": {"type": "boolean"},
    },
}
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
                                 "balance"],
                    "properties": {"currency": {"type": "string"},
                                   **{k: {"type": "integer"} for k in ("share_bps", "gross", "refunded", "net",
                                                                       "share_due", "paid_out", "balance")}}}
PLEDGE_FIELDS = set(PLEDGE_REQUEST["properties"])


@bp.get("/campaign")
@operation("/api/v1/campaign", "get", "The campaign: goal, raised, donors, partner and tiers",
           response_schema=CAMPAIGN_SCHEMA)
def campaign():
    return jsonify(services.campaign_summary(services.current_campaign()))


@bp.post("/pledges")
@limiter.limit("30 per minute")
@operation("/api/v1/pledges", "post", "Pledge an amount and get a checkout URL", status=201,
           request_schema=PLEDGE_REQUEST, response_schema=PLEDGE_RESPONSE,
           parameters=[{"name": "Idempotency-Key", "in": "header", "required": False,
                        "schema": {"type": "string", "maxLength": 128},
                        "description": "Repeat a request with the same key to get the same pledge back"}])
def create_pledge():
    from filmfund.errors import ValidationError

    body = json_body()
    unknown = set(body) - PLEDGE_FIELDS
    if unknown:
        raise ValidationError(f"Unknown field(s): {', '.join(sorted(unknown))}.", code="unknown_field")
    if "amount" not in body or "email" not in body:
        raise ValidationError("amount and email are required.", code="missing_field")
    pledge = services.create_pledge(
        body["amount"], body.get("currency"), body["email"], body.get("credit_name"),
        body.get("anonymous", False), body.get("rewards_opt_out", False),
        idempotency_key=request.headers.get("Idempotency-Key"))
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
