"""The producers' donations in /api/v1: `GET /api/v1/donations` (search, filters, keyset pages) and
`POST /api/v1/donations/{id}/refund` (bearer tokens only, so exempt from CSRF). The use cases are
in donations.py and refunds.py."""
from __future__ import annotations

import re
from datetime import date
from typing import ClassVar, Literal

from flask import Blueprint, g, jsonify
from pydantic import Field, field_validator
from pydantic_core import PydanticCustomError

from filmfund.api import Parameters, Schema, route
from filmfund.extensions import db
from filmfund.rewards import donations, refunds
from filmfund.rewards.campaign import current_campaign
from filmfund.rewards.campaign_file import MAX_AMOUNT

bp = Blueprint("donations_api", __name__, url_prefix="/api/v1")

_ITEM = {
    "type": "object",
    "required": ["id", "email", "credit_name", "anonymous", "amount", "refunded", "currency", "source", "state",
                 "recurring", "created_at"],
    "properties": {
        "id": {"type": "integer"}, "email": {"type": "string"},
        "credit_name": {"type": "string", "nullable": True,
                        "description": "the donor's own name, shown to producers even when anonymous"},
        "anonymous": {"type": "boolean", "description": "the donor asked not to be named in public"},
        "amount": {"type": "integer"}, "refunded": {"type": "integer"},
        "refund_pending": {"type": "integer", "description": "asked of Stripe, not yet confirmed"},
        "currency": {"type": "string"}, "source": {"type": "string", "enum": list(donations.SOURCES)},
        "state": {"type": "string", "enum": list(donations.STATES)}, "recurring": {"type": "boolean"},
        "created_at": {"type": "string", "format": "date-time", "description": "when the money was received"},
        "user_id": {"type": "integer"},
    },
}
LIST_SCHEMA = {"type": "object", "required": ["items", "next"],
               "properties": {"items": {"type": "array", "items": _ITEM},
                              "next": {"type": "string", "nullable": True,
                                       "description": "the next page's cursor; null on the last page"}}}
REFUND_SCHEMA = {"type": "object", "required": ["donation_id", "requested", "refunded", "state"],
                 "properties": {"donation_id": {"type": "integer"}, "requested": {"type": "integer"},
                                "refunded": {"type": "integer"}, "remaining": {"type": "integer"},
                                "currency": {"type": "string"},
                                "state": {"type": "string", "enum": ["pending", "succeeded", "failed"]}}}


class DonationsQuery(Parameters):
    q: str | None = Field(None, max_length=donations.Q_MAX, description="the start of the donor's email or name")
    from_: date | None = Field(None, alias="from", description="received on or after this UTC day")
    to: date | None = Field(None, description="received on or before this UTC day")
    source: Literal["stripe", "offline"] | None = None
    state: Literal["paid", "partially_refunded", "refunded", "disputed"] | None = None
    cursor: str | None = Field(None, max_length=40, pattern=donations.CURSOR_PATTERN,
                               description="`next` of the previous page (opaque)")
    limit: int = Field(donations.PAGE_SIZE, ge=1, le=donations.MAX_PAGE_SIZE)
    @field_validator("from_", "to", mode="before")
    @classmethod
    def _a_day(cls, value):
        """A day written 2026-12-03 only (pydantic alone would read "0" as 1970-01-01)."""
        if value is not None and not (isinstance(value, str) and re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value)):
            # date_parsing: the API's refusal says it as it says any bad day, in the reader's language
            raise PydanticCustomError("date_parsing", "give a date like 2026-12-03")
        return value

    codes: ClassVar[dict[str, str]] = {"from_": "invalid_date", "to": "invalid_date", "cursor": "invalid_cursor",
                                       "source": "invalid_source", "state": "invalid_state", "q": "invalid_query"}


class RefundBody(Schema):
    amount: int | None = Field(None, ge=1, le=MAX_AMOUNT, description="cents; default: all that remains")
    reason: str | None = Field(None, max_length=refunds.REASON_MAX)
    codes: ClassVar[dict[str, str]] = {"amount": "invalid_amount", "reason": "invalid_reason"}


class RefundHeaders(Parameters):
    idempotency_key: str | None = Field(
        None, alias="Idempotency-Key", min_length=1, max_length=refunds.CLIENT_KEY_MAX,
        description="Repeat a request with the same key to get the same refund back (never a second one)")
    codes: ClassVar[dict[str, str]] = {"idempotency_key": "invalid_idempotency_key"}


@route(bp, "/donations", "GET", "The donations, newest first: search, filters and keyset pages",
       roles=("producer",), query=DonationsQuery, response=LIST_SCHEMA)
def list_donations(query: DonationsQuery):
    return jsonify(donations.list_donations(current_campaign(), q=query.q, from_=query.from_, to=query.to,
                                            source=query.source, state=query.state, cursor=query.cursor,
                                            limit=query.limit))


@route(bp, "/donations/<int:donation_id>/refund", "POST",
       "Refund a donation, whole or partly: through Stripe (booked when Stripe confirms) or in the ledger",
       roles=("producer",), body=RefundBody, headers=RefundHeaders, response=REFUND_SCHEMA, status=202,
       responses={409: ("More than remains to be refunded", None)}, limit="30 per minute")
def refund_donation(donation_id: int, body: RefundBody, headers: RefundHeaders):
    req = refunds.request_refund(donation_id, body.amount, body.reason or "", client_key=headers.idempotency_key,
                                 requested_by=g.api_user)
    db.session.commit()  # the request first: its id is the idempotency key of the call to Stripe
    refunds.send_to_stripe(req)
    db.session.commit()
    refunds.raise_failure(req)
    return jsonify(refunds.refund_document(req)), 202
