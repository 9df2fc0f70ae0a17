"""Expenses booked against the campaign file's budget lines (rewards.models.BudgetLine)."""
from __future__ import annotations

import enum
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from filmfund.db import str_enum, utcnow
from filmfund.extensions import db


class ExpenseState(enum.StrEnum):
    RECORDED = "recorded"
    VOID = "void"


class Expense(db.Model):
    """Money the crew spent. Never edited: a correction voids the expense (with a reason, by whom,
    when) and records a new one that names it (`replaces_id`). Only recorded expenses count.

    `description` is the producers' own note (it may name a vendor or a person): it is never shown
    outside the producers' pages. The public sees each budget line's total only."""

    __tablename__ = "expenses"
    __table_args__ = (sa.CheckConstraint("amount > 0", name="amount_positive"),
                      sa.Index("ix_expenses_campaign_state_line", "campaign_id", "state", "budget_line_id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(sa.ForeignKey("campaigns.id", ondelete="CASCADE"))
    budget_line_id: Mapped[int] = mapped_column(sa.ForeignKey("budget_lines.id"), index=True)
    amount: Mapped[int] = mapped_column(sa.BigInteger)
    currency: Mapped[str] = mapped_column(sa.String(3))
    spent_on: Mapped[date] = mapped_column(sa.Date)
    description: Mapped[str] = mapped_column(sa.String(500))
    # The receipt: a key of the media storage (content-addressed, never served publicly).
    receipt_key: Mapped[str | None] = mapped_column(sa.String(300))
    receipt_name: Mapped[str | None] = mapped_column(sa.String(200))
    receipt_type: Mapped[str | None] = mapped_column(sa.String(100))
    receipt_size: Mapped[int | None] = mapped_column(sa.BigInteger)
    state: Mapped[ExpenseState] = mapped_column(str_enum(ExpenseState, 16), default=ExpenseState.RECORDED)
    replaces_id: Mapped[int | None] = mapped_column(sa.ForeignKey("expenses.id"))
    recorded_by: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    voided_at: Mapped[datetime | None]
    voided_by: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    void_reason: Mapped[str | None] = mapped_column(sa.String(500))

    budget_line = relationship("BudgetLine", lazy="joined")

