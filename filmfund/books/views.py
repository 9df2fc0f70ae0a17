"""Pages: the public transparency page; the producers' expenses (with receipts); the partner's
monthly statements (page, CSV, PDF) and its "received" button for a payout.

Every form is a POST with a CSRF token; every object is looked up within the campaign and the
reader's role checked. The partner's figures are held back (rewards/statements.py).
"""
from __future__ import annotations

from datetime import date

from flask import Blueprint, Response, flash, redirect, render_template, request, send_file, url_for
from flask_babel import gettext as _
from flask_login import current_user

from filmfund import csvsafe
from filmfund.audit import record_audit
from filmfund import once
from filmfund.books import expenses, printing, transparency
from filmfund.errors import ConflictError, DomainError, ValidationError, field_of, for_people
from filmfund.extensions import db
from filmfund.i18n import current_language
from filmfund.money import parse_dollars
from filmfund.rewards import statements
from filmfund.rewards.campaign import current_campaign
from filmfund.security import role_required

public_bp = Blueprint("books_public", __name__, template_folder="templates")
bp = Blueprint("books", __name__, url_prefix="/admin", template_folder="templates")


@public_bp.get("/transparency")
def transparency_page():
    campaign = current_campaign()
    doc = transparency.transparency(campaign, current_language())
    for line in doc["budget"]:
        line["percent"] = min(100, line["spent"] * 100 // line["planned"]) if line["planned"] else 0
    return render_template("books/transparency.html", campaign=campaign, t=doc)


# ---------------------------------------------------------------- producers: expenses

def _expenses_page(errors: dict | None = None, values: dict | None = None, status: int = 200):
    """The page; `errors`: a refusal (DomainError) by the form it refused ("new", or an expense's
    id), said there and tied to the field it names."""
    campaign = current_campaign()
    errors = errors or {}
    return render_template("books/expenses.html", campaign=campaign, lines=expenses.budget_lines(campaign),
                           items=expenses.list_expenses(campaign), spent=expenses.spent_by_line(campaign),
                           errors={key: for_people(err.message) for key, err in errors.items()},
                           bad={key: field_of(err) for key, err in errors.items()},
                           values=values or {}, today=date.today().isoformat(),
                           once=once.new_token()), status


def _form_fields(form) -> dict:
    spent_on = (form.get("spent_on") or "").strip()
    try:
        day = date.fromisoformat(spent_on)
    except ValueError:
        raise ValidationError(_("spent_on: a date, such as 2026-11-23."), code="invalid_date") from None
    return {"budget_line": form.get("budget_line", ""), "amount": parse_dollars(form.get("amount")),
            "spent_on": day, "description": form.get("description", "")}


def _receipt():
    upload = request.files.get("receipt")
    if upload is None or not upload.filename:
        return None
    return upload.stream, upload.filename


@bp.get("/expenses")
@role_required("producer")
def expenses_page():
    return _expenses_page()


@bp.post("/expenses")
@role_required("producer")
def expense_record():
    try:
        fields = _form_fields(request.form)
        once.run("expense", current_user.id, request.form.get("once"), fields,
                 lambda: expenses.record_expense(current_campaign(), user=current_user, receipt=_receipt(), **fields))
    except once.AlreadyDone as done:  # sent again (a double click, a resend): the first one stands, counted once
        db.session.rollback()
        flash(done.message, "success")
        return redirect(url_for("books.expenses_page"), code=303)
    except DomainError as err:
        db.session.rollback()
        return _expenses_page(errors={"new": err}, values=request.form.to_dict(), status=400)
    db.session.commit()
    flash(_("Expense recorded."), "success")
    return redirect(url_for("books.expenses_page"), code=303)


@bp.post("/expenses/<int:expense_id>/correct")
@role_required("producer")
def expense_correct(expense_id: int):
    expenses.get_expense(current_campaign(), expense_id)  # 404 before anything else
    try:
        expenses.correct_expense(current_campaign(), expense_id, reason=request.form.get("reason", ""),
                                 user=current_user, receipt=_receipt(), **_form_fields(request.form))
    except DomainError as err:
        db.session.rollback()
        if err.status == 404:
            raise
        return _expenses_page(errors={expense_id: err}, status=400)
    db.session.commit()
    flash(_("Expense corrected: the old entry is void and the new one replaces it."), "success")
    return redirect(url_for("books.expenses_page"), code=303)


@bp.post("/expenses/<int:expense_id>/void")
@role_required("producer")
def expense_void(expense_id: int):
    try:
        expenses.void_expense(current_campaign(), expense_id, request.form.get("reason", ""), current_user)
    except DomainError as err:
        db.session.rollback()
        if err.status == 404:
            raise
        return _expenses_page(errors={expense_id: err}, status=400)
    db.session.commit()
    flash(_("Expense voided."), "success")
    return redirect(url_for("books.expenses_page"), code=303)


@bp.post("/expenses/<int:expense_id>/receipt")
@role_required("producer")
def expense_attach(expense_id: int):
    campaign = current_campaign()
    try:
        expense = expenses.get_expense(campaign, expense_id)
        receipt = _receipt()
        if receipt is None:
            raise ValidationError(_("receipt: choose a file."), code="invalid_receipt")
        expenses.attach_receipt(expense, *receipt)
    except DomainError as err:
        db.session.rollback()
        if err.status == 404:
            raise
        return _expenses_page(errors={expense_id: err}, status=400)
    db.session.commit()
    flash(_("Receipt attached."), "success")
    return redirect(url_for("books.expenses_page"), code=303)


@bp.get("/expenses/<int:expense_id>/receipt")
@role_required("producer")
def expense_receipt(expense_id: int):
    expense = expenses.get_expense(current_campaign(), expense_id)
    fh = expenses.open_receipt(expense)
    record_audit("export.receipt", f"expense {expense.id}", {"expense_id": expense.id})
    db.session.commit()
    response = send_file(fh, mimetype=expense.receipt_type, as_attachment=True,
                         download_name=expense.receipt_name or "receipt")
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


# ---------------------------------------------------------------- the partner's statements

def statement_response(campaign, month: str, fmt: str | None, user, *, for_spreadsheet: bool = False):
    """The month's statement as the reader may see it: a page, `csv` or `pdf` (exports audited).
    `for_spreadsheet`: the page's CSV download (csvsafe.download), not the API's."""
    doc = statements.month_statement(campaign, month, statements.as_of_for(campaign, user))
    if fmt in ("csv", "pdf"):
        record_audit("export.partner_statement", f"campaign:{campaign.slug}", {"format": fmt, "month": doc["month"]})
        db.session.commit()
        name = f"statement-{campaign.slug}-{doc['month']}.{fmt}"
        if fmt == "csv":
            return csvsafe.download(printing.statement_csv(doc), name, {"Content-Language": current_language()},
                                    for_spreadsheet=for_spreadsheet)
        headers = {"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "private, no-store",
                   "Content-Language": current_language()}
        return Response(printing.statement_pdf(doc, campaign), mimetype="application/pdf", headers=headers)
    return None, doc


@bp.get("/partner/statements/<month>")
@role_required("partner", "producer")
def partner_month(month: str):
    campaign = current_campaign()
    fmt = request.args.get("format")
    if fmt not in (None, "", "html", "csv", "pdf"):
        raise ValidationError(_("format: csv or pdf (or none, for the page)."), code="invalid_format")
    result = statement_response(campaign, month, fmt, current_user, for_spreadsheet=True)
    if isinstance(result, Response):
        return result
    _none, doc = result
    return render_template("books/statement.html", campaign=campaign, doc=doc, labels=printing.labels(),
                           months=statements.months(campaign))


# Not under /admin: the one write a partner makes (staff areas refuse the partner every write).
@public_bp.post("/partner/payouts/<int:payout_id>/received")
@role_required("partner")
def payout_received(payout_id: int):
    try:
        statements.acknowledge_payout(current_campaign(), payout_id, current_user)
    except ConflictError as err:  # a reversed payout: said on the page it came from
        db.session.rollback()
        flash(err.message, "error")
    else:
        db.session.commit()
        flash(_("Thank you: the payout is marked as received."), "success")
    return redirect(url_for("admin.partner", _anchor="payouts"), code=303)
