"""The open books part of /api/v1: the public transparency document, expenses (producers) and the
partner's monthly statements (JSON, or `?format=csv|pdf` with the same figures)."""
from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import ClassVar, Literal

from flask import Blueprint, current_app, g, jsonify
from pydantic import Field

from filmfund.api import Parameters, Schema, route
from filmfund import once
from filmfund.once import IDEMPOTENCY_KEY_PATTERN
from filmfund.books import expenses, transparency
from filmfund.books.views import statement_response
from filmfund.extensions import db
from filmfund.i18n import current_language
from filmfund.rewards.campaign import current_campaign
from filmfund.rewards.campaign_file import MAX_AMOUNT, read_campaign_file

bp = Blueprint("books_api", __name__, url_prefix="/api/v1")

_INT = {"type": "integer"}
TRANSPARENCY_SCHEMA = {
    "type": "object", "required": ["currency", "raised", "budget", "partner"],
    "properties": {
        "currency": {"type": "string"}, "raised": _INT, "test_money": {"type": "boolean"},
        "as_of": {"type": "string", "nullable": True},
        "budget": {"type": "array", "items": {"type": "object", "required": ["key", "title", "planned", "spent"],
                                              "properties": {"key": {"type": "string"}, "title": {"type": "string"},
                                                             "planned": _INT, "spent": _INT}}},
        "partner": {"type": "object", "required": ["name", "share_due", "paid_out"],
                    "properties": {"name": {"type": "string"}, "share_bps": _INT, "share_due": _INT,
                                   "paid_out": _INT,
                                   "payouts": {"type": "array", "items": {
                                       "type": "object", "required": ["paid_on", "amount"],
                                       "properties": {"paid_on": {"type": "string"}, "amount": _INT}}}}},
    }}
EXPENSE_SCHEMA = {
    "type": "object", "required": ["id", "budget_line", "amount", "currency", "spent_on", "description", "state"],
    "properties": {"id": _INT, "budget_line": {"type": "string"}, "amount": _INT, "currency": {"type": "string"},
                   "spent_on": {"type": "string"}, "description": {"type": "string"}, "state": {"type": "string"},
                   "has_receipt": {"type": "boolean"}, "replaces": {"type": "integer", "nullable": True},
                   "created_at": {"type": "string"}}}
MONTH_SCHEMA = {
    "type": "object",
    "required": ["month", "currency", "opening_balance", "gross", "refunded", "net", "share_due", "paid_out",
                 "closing_balance"],
    "properties": {"month": {"type": "string"}, "currency": {"type": "string"},
                   **{k: _INT for k in ("opening_balance", "gross", "refunded", "net", "share_due", "paid_out",
                                        "closing_balance", "share_bps")},
                   "test_money": {"type": "boolean"}, "final": {"type": "boolean"},
                   "as_of": {"type": "string", "nullable": True}, "period_start": {"type": "string"},
                   "period_end": {"type": "string"}, "time_zone": {"type": "string"},
                   "payouts": {"type": "array", "items": {"type": "object"}}}}


def _budget_keys(schema: dict) -> None:
    """The document names the campaign file's budget lines (a line that left the file takes no expense)."""
    keys = [b.key for b in read_campaign_file(Path(current_app.config["CAMPAIGN_FILE"])).budget]
    schema.pop("minLength", None)
    schema.pop("maxLength", None)
    schema.update(enum=keys, description="the key of a [[budget]] line of the campaign file")


class ExpenseRequest(Schema):
    budget_line: str = Field(min_length=1, max_length=64, json_schema_extra=_budget_keys)
    amount: int = Field(ge=1, le=MAX_AMOUNT, description="cents")
    spent_on: str = Field(max_length=10, json_schema_extra={"format": "date"},
                          description="the day the money was spent, YYYY-MM-DD")
    description: str = Field(min_length=1, max_length=expenses.DESCRIPTION_MAX, pattern=r"\S",
                             description="for the producers only: never shown publicly")
    codes: ClassVar[dict[str, str]] = {"budget_line": "invalid_budget_line", "amount": "invalid_amount",
                                       "spent_on": "invalid_date", "description": "invalid_description"}


class ExpenseHeaders(Parameters):
    idempotency_key: str | None = Field(
        None, alias="Idempotency-Key", min_length=1, max_length=128, pattern=IDEMPOTENCY_KEY_PATTERN,
        description="Repeat a request with the same key to get the same expense back (recorded once)")
    codes: ClassVar[dict[str, str]] = {"idempotency_key": "invalid_idempotency_key"}


class StatementQuery(Parameters):
    format: Literal["json", "csv", "pdf"] | None = Field(None, description="json (default), csv or pdf")
    codes: ClassVar[dict[str, str]] = {"format": "invalid_format"}


@route(bp, "/transparency", "GET", "Where the money went: planned against spent per budget line, the "
       "partner's share due and paid (no donor, receipt or vendor data)", response=TRANSPARENCY_SCHEMA)
def transparency_doc():
    return jsonify(transparency.transparency(current_campaign(), current_language()))


@route(bp, "/expenses", "POST", "Record an expense against a budget line (its receipt by the page)",
       roles=("producer",), body=ExpenseRequest, headers=ExpenseHeaders, response=EXPENSE_SCHEMA, status=201,
       limit="60 per minute")
def create_expense(body: ExpenseRequest, headers: ExpenseHeaders):
    try:
        spent_on = date.fromisoformat(body.spent_on) if len(body.spent_on) == 10 else None
    except ValueError:
        spent_on = None
    campaign = current_campaign()
    fields = dict(budget_line=body.budget_line, amount=body.amount, spent_on=spent_on, description=body.description)
    try:
        expense = once.run("expense", g.api_user.id, headers.idempotency_key, fields,
                           lambda: expenses.record_expense(campaign, user=g.api_user, **fields), header=True)
    except once.AlreadyDone as done:  # a retry: the expense its first request recorded, counted once
        db.session.rollback()
        expense = expenses.get_expense(campaign, done.result_id)
    db.session.commit()
    return jsonify(expenses.expense_document(expense)), 201


@route(bp, "/partner/statements/<month>", "GET", "One month's statement for the partner (held back to the end "
       "of yesterday for the partner, live for producers); ?format=csv or pdf gives the same figures",
       roles=("partner", "producer"), query=StatementQuery, response=MONTH_SCHEMA,
       responses={404: ("No such month", None)})
def month_statement(month: str, query: StatementQuery):
    result = statement_response(current_campaign(), month, query.format if query.format != "json" else None,
                                g.api_user)
    if not isinstance(result, tuple):
        return result
    return jsonify(result[1])
