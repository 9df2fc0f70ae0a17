"""Expenses: recorded by producers against the campaign file's budget lines, each with its private
receipt; corrected by a void and a new entry, never by an edit; every change audited.

Use cases flush and never commit (their caller commits once). A receipt is written to the media
storage before its row: if the row is then refused, the bytes just stored are removed again (a
content-addressed object that already existed is left alone), so nothing is orphaned.
"""
from __future__ import annotations

import contextlib
from datetime import date
from typing import BinaryIO

import sqlalchemy as sa
from flask_babel import gettext as _

from filmfund.audit import record_audit
from filmfund.books.models import Expense, ExpenseState
from filmfund.db import utcnow
from filmfund.errors import ConflictError, NotFoundError, ValidationError
from filmfund.extensions import db
from filmfund.media.common import storage
from filmfund.media.storage import TooLarge
from filmfund.rewards.campaign import AMOUNTS_ELSEWHERE
from filmfund.rewards.campaign_file import MAX_AMOUNT
from filmfund.rewards.models import BudgetLine, Campaign
from filmfund.typed import one_line

DESCRIPTION_MAX = 500
RECEIPT_MAX_BYTES = 20 * 1024 * 1024
# What a receipt may be, known from its first bytes (not its name): a PDF or a photo.
RECEIPT_TYPES = ((b"%PDF-", "application/pdf", ".pdf"), (b"\xff\xd8\xff", "image/jpeg", ".jpg"),
                 (b"\x89PNG\r\n\x1a\n", "image/png", ".png"))


def receipt_refers_to(key: str) -> bool:
    """Receiver of media's `stored_key_in_use`: a receipt kept in the media storage is an object that
    footage may share (storage is content-addressed: a still uploaded both as footage and as a
    receipt is one object), so media deletes none that an expense still refers to."""
    return db.session.scalar(sa.select(sa.exists().where(Expense.receipt_key == key))) or False


def expenses_recorded(campaign_id: int) -> bool:
    """Whether the campaign has an expense (void ones too: each keeps the currency it was spent in,
    shown beside its amount on the producers' page). The campaign's currency is fixed from then on."""
    return bool(db.session.scalar(sa.select(sa.exists().where(Expense.campaign_id == campaign_id))))


AMOUNTS_ELSEWHERE["expenses"] = expenses_recorded


def budget_lines(campaign: Campaign, *, active_only: bool = True) -> list[BudgetLine]:
    stmt = sa.select(BudgetLine).where(BudgetLine.campaign_id == campaign.id).order_by(BudgetLine.position,
                                                                                       BudgetLine.id)
    if active_only:
        stmt = stmt.where(BudgetLine.active)
    return list(db.session.scalars(stmt))


def _line(campaign: Campaign, key) -> BudgetLine:
    line = db.session.scalar(sa.select(BudgetLine).where(BudgetLine.campaign_id == campaign.id,
                                                         BudgetLine.key == key, BudgetLine.active)) \
        if isinstance(key, str) else None
    if line is None:
        keys = ", ".join(b.key for b in budget_lines(campaign))
        raise ValidationError(_("budget_line: one of %(keys)s.", keys=keys), code="invalid_budget_line")
    return line


def _amount(value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_AMOUNT:
        raise ValidationError(_("amount: a positive whole number of cents."), code="invalid_amount")
    return value


def _description(value) -> str:
    """As the producer typed it, on one line, minus what prints nothing a reader could check
    (filmfund/typed.py): a zero-width space alone is no description."""
    text = one_line(value) if isinstance(value, str) else ""
    if not text or len(text) > DESCRIPTION_MAX:
        raise ValidationError(_("description: 1 to %(n)s characters.", n=DESCRIPTION_MAX),
                              code="invalid_description")
    return text


def _spent_on(value) -> date:
    if not isinstance(value, date):
        raise ValidationError(_("spent_on: a date, such as 2026-11-23."), code="invalid_date")
    return value  # a deposit paid now for a later stay may carry the stay's date


def sniff_receipt(head: bytes) -> tuple[str, str]:
    for magic, mime, suffix in RECEIPT_TYPES:
        if head.startswith(magic):
            return mime, suffix
    raise ValidationError(_("receipt: a PDF, JPEG or PNG file."), code="invalid_receipt")


def record_expense(campaign: Campaign, *, budget_line, amount, spent_on, description, user,
                   receipt: tuple[BinaryIO, str] | None = None, replaces: Expense | None = None) -> Expense:
    """Book one expense (optionally with its receipt: a stream and its file name)."""
    line = _line(campaign, budget_line)
    expense = Expense(campaign_id=campaign.id, budget_line_id=line.id, amount=_amount(amount),
                      currency=campaign.currency, spent_on=_spent_on(spent_on), description=_description(description),
                      recorded_by=user.id, replaces_id=replaces.id if replaces else None,
                      state=ExpenseState.RECORDED)
    stored = _store_receipt(*receipt) if receipt else None
    try:
        if stored:
            key, created, name, mime, size = stored
            expense.receipt_key, expense.receipt_name, expense.receipt_type, expense.receipt_size = key, name, mime, size
        db.session.add(expense)
        db.session.flush()
    except Exception:
        if stored and stored[1]:
            _forget(stored[0])
        raise
    record_audit("expense.record", f"expense {expense.id}",
                 {"expense_id": expense.id, "budget_line": line.key, "amount": expense.amount,
                  "currency": expense.currency, "spent_on": expense.spent_on.isoformat(),
                  "receipt": bool(expense.receipt_key), "replaces": expense.replaces_id})
    return expense


def attach_receipt(expense: Expense, stream: BinaryIO, filename: str) -> Expense:
    """A receipt for an expense booked without one (by the API): once only; a wrong one is a correction."""
    if expense.state != ExpenseState.RECORDED:
        raise ConflictError(_("This expense is void."), code="expense_void")
    if expense.receipt_key:
        raise ConflictError(_("This expense has its receipt: correct the expense to replace it."),
                            code="receipt_exists")
    key, created, name, mime, size = _store_receipt(stream, filename)
    expense.receipt_key, expense.receipt_name, expense.receipt_type, expense.receipt_size = key, name, mime, size
    try:
        db.session.flush()
    except Exception:
        if created:
            _forget(key)
        raise
    record_audit("expense.receipt", f"expense {expense.id}", {"expense_id": expense.id, "size": size})
    return expense


def _store_receipt(stream: BinaryIO, filename: str):
    head = stream.read(16)
    mime, suffix = sniff_receipt(head)
    name = (filename or "receipt").replace("\\", "/").rsplit("/", 1)[-1][:200] or "receipt"

    class _Joined:
        def __init__(self):
            self.first = head

        def read(self, n=-1):
            if self.first:
                out, self.first = self.first, b""
                return out
            return stream.read(n)

    try:
        stored = storage().put_stream(_Joined(), suffix, limit=RECEIPT_MAX_BYTES)
    except TooLarge:
        raise ValidationError(_("receipt: at most %(n)s MB.", n=RECEIPT_MAX_BYTES // (1024 * 1024)),
                              code="receipt_too_large") from None
    return stored.key, stored.created, name, mime, stored.size


def _forget(key: str) -> None:
    with contextlib.suppress(Exception):
        storage().delete(key)


def get_expense(campaign: Campaign, expense_id: int) -> Expense:
    expense = db.session.get(Expense, expense_id)
    if expense is None or expense.campaign_id != campaign.id:
        raise NotFoundError(_("No such expense."), code="not_found")
    return expense


def void_expense(campaign: Campaign, expense_id: int, reason, user) -> Expense:
    expense = get_expense(campaign, expense_id)
    if expense.state == ExpenseState.VOID:
        raise ConflictError(_("This expense is already void."), code="expense_void")
    reason = (reason or "").strip() if isinstance(reason, str) else ""
    if not reason or len(reason) > DESCRIPTION_MAX:
        raise ValidationError(_("reason: say why, in 1 to %(n)s characters.", n=DESCRIPTION_MAX),
                              code="invalid_reason")
    expense.state, expense.voided_at, expense.voided_by, expense.void_reason = ExpenseState.VOID, utcnow(), user.id, reason
    db.session.flush()
    record_audit("expense.void", f"expense {expense.id}", {"expense_id": expense.id, "amount": expense.amount,
                                                           "reason": reason})
    return expense


def correct_expense(campaign: Campaign, expense_id: int, *, reason, user, **fields) -> Expense:
    """A correction: the old expense is voided and a new one, naming it, takes its place (its receipt
    carried over unless a new one is given)."""
    old = void_expense(campaign, expense_id, reason, user)
    receipt = fields.pop("receipt", None)
    new = record_expense(campaign, user=user, receipt=receipt, replaces=old, **fields)
    if receipt is None and old.receipt_key:
        new.receipt_key, new.receipt_name, new.receipt_type, new.receipt_size = (
            old.receipt_key, old.receipt_name, old.receipt_type, old.receipt_size)
        db.session.flush()
    return new


def list_expenses(campaign: Campaign) -> list[Expense]:
    return list(db.session.scalars(sa.select(Expense).where(Expense.campaign_id == campaign.id)
                                   .order_by(Expense.spent_on.desc(), Expense.id.desc())))


def spent_by_line(campaign: Campaign) -> dict[int, int]:
    return {lid: int(total) for lid, total in db.session.execute(
        sa.select(Expense.budget_line_id, sa.func.sum(Expense.amount))
        .where(Expense.campaign_id == campaign.id, Expense.state == ExpenseState.RECORDED)
        .group_by(Expense.budget_line_id)).all()}


def open_receipt(expense: Expense):
    """The receipt's bytes (a file object) for a producer's checked request."""
    if not expense.receipt_key:
        raise NotFoundError(_("This expense has no receipt."), code="not_found")
    return storage().open(expense.receipt_key)


def expense_document(expense: Expense) -> dict:
    """What the producers' API answers for an expense (never shown to anyone else)."""
    return {"id": expense.id, "budget_line": expense.budget_line.key, "amount": expense.amount,
            "currency": expense.currency, "spent_on": expense.spent_on.isoformat(),
            "description": expense.description, "state": expense.state.value,
            "has_receipt": bool(expense.receipt_key), "replaces": expense.replaces_id,
            "created_at": expense.created_at.isoformat()}
