"""The rewards part of /api/v1 (bearer tokens only, so exempt from CSRF)."""
from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from flask import Blueprint, current_app, g, jsonify
from pydantic import Field

from filmfund.api import Parameters, Schema, route
from filmfund.auth.services import EMAIL_MAX, EMAIL_PATTERN
from filmfund.db import commit_keeping
from filmfund.extensions import db
from filmfund.once import IDEMPOTENCY_KEY_PATTERN  # an HTTP server trims spaces: none around
from filmfund.rewards import pledges, statements
from filmfund.rewards.campaign import campaign_document, current_campaign
from filmfund.rewards.entitlements import donor_entitlements
from filmfund.rewards.pledges import CREDIT_NAME_MAX, MIN_AMOUNT
from filmfund.rewards.campaign_file import MAX_AMOUNT, read_campaign_file

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


def _campaign_currency(schema: dict) -> None:
    """The document names the one currency this campaign takes (in either case)."""
    currency = read_campaign_file(Path(current_app.config["CAMPAIGN_FILE"])).currency
    schema.pop("anyOf", None)
    schema.update(type="string", nullable=True,
                  pattern="^" + "".join(f"[{c.lower()}{c.upper()}]" for c in currency) + "$",
                  description=f"{currency}, this campaign's (null or absent: the same)")


class PledgeRequest(Schema):
    amount: int = Field(ge=MIN_AMOUNT, le=MAX_AMOUNT, description="cents")
    currency: str | None = Field(None, min_length=3, max_length=3, json_schema_extra=_campaign_currency)
    email: str = Field(max_length=EMAIL_MAX, pattern=EMAIL_PATTERN,
                       description="an email address: the receipt and the rewards go there")
    credit_name: str | None = Field(None, max_length=CREDIT_NAME_MAX)
    anonymous: bool = False
    rewards_opt_out: bool = False
    interval: str | None = Field(
        None, pattern="^month$",
        description='"month": this amount every month (card only); absent or null: a one-time gift')
    codes: ClassVar[dict[str, str]] = {"amount": "invalid_amount", "currency": "invalid_currency",
                                       "email": "invalid_email", "credit_name": "invalid_credit_name",
                                       "interval": "invalid_interval"}


class PledgeHeaders(Parameters):
    idempotency_key: str | None = Field(
        None, alias="Idempotency-Key", min_length=1, max_length=128, pattern=IDEMPOTENCY_KEY_PATTERN,
        description="Repeat a request with the same key to get the same pledge back")
    codes: ClassVar[dict[str, str]] = {"idempotency_key": "invalid_idempotency_key"}


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
                                   "as_of": {"type": "string", "nullable": True,
                                             "description": "null: live (producers); else the moment the "
                                                            "partner's held-back figures stop"},
                                   **{k: {"type": "integer"} for k in ("share_bps", "gross", "refunded", "net",
                                                                       "share_due", "paid_out", "balance")}}}


@route(bp, "/campaign", "GET", "The campaign: goal, raised, donors, partner and tiers (public: its figures may "
       "lag FILMFUND_PUBLIC_CACHE_SECONDS behind the books)", response=CAMPAIGN_SCHEMA, public=True)
def campaign():
    return jsonify(campaign_document())


@route(bp, "/pledges", "POST", "Pledge an amount and get a checkout URL", body=PledgeRequest,
       headers=PledgeHeaders, response=PLEDGE_RESPONSE, status=201, limit="30 per minute")
def create_pledge(body: PledgeRequest, headers: PledgeHeaders):
    pledge = pledges.create_pledge(body.amount, body.currency, body.email, body.credit_name, body.anonymous,
                                   body.rewards_opt_out, idempotency_key=headers.idempotency_key,
                                   interval=body.interval)
    # Committed before its Checkout Session opens (a call to Stripe in live mode): the session
    # names the pledge, and Stripe's webhook, booked by another process, must find it.
    commit_keeping(db.session, pledge)
    if pledges.open_checkout(pledge):
        commit_keeping(db.session, pledge)
    return jsonify({"pledge_id": pledge.id, "checkout_session_id": pledge.checkout_session_id,
                    "checkout_url": pledge.checkout_url}), 201


@route(bp, "/me/entitlements", "GET", "The signed-in donor's total, tier and rewards", roles=("donor",),
       response=ENTITLEMENTS_SCHEMA)
def my_entitlements():
    doc = donor_entitlements(g.api_user, current_campaign())
    for reward in doc["rewards"]:
        reward.pop("id", None)
    return jsonify(doc)


@route(bp, "/partner/statement", "GET", "What the partner is owed and has been paid (aggregates only): live "
       "for producers, held back to the end of yesterday in the campaign's zone for the partner",
       roles=("partner", "producer"), response=STATEMENT_SCHEMA)
def partner_statement():
    return jsonify(statements.statement_for(current_campaign(), g.api_user))
