"""A month's statement as a file the charity can keep: CSV (through filmfund/csvsafe.py) and PDF
(WeasyPrint, from the same template as the page; Chinese drawn with fontconfig's Noto CJK).
Both carry the figures of `rewards.statements.month_statement` and nothing else: no donor."""
from __future__ import annotations

from flask import render_template
from flask_babel import gettext as _

from filmfund import csvsafe

CSV_FIELDS = ("opening_balance", "gross", "refunded", "net", "share_due", "paid_out", "closing_balance")


def labels() -> dict[str, str]:
    """Each figure's and line's name in the reader's words: the month's CSV and page and the live
    statement's CSV (admin/services.py) ask here, so both files name a figure alike."""
    return {"opening_balance": _("Opening balance"), "gross": _("Gifts (gross)"), "refunded": _("Refunds"),
            "net": _("Net"), "share_due": _("Share due"), "paid_out": _("Paid out"),
            "closing_balance": _("Closing balance"), "balance": _("Balance still due"),
            "share_booked": _("Share due booked that day"), "payout": _("Payout"),
            "payout_reversal": _("Payout reversed")}


def payout_row(p: dict, names: dict[str, str]) -> tuple[str, str]:
    """A payout line's item and label: a reversal (its amount negative) is a line of its own,
    named as such, with the producers' reason, so the lines add up to the month's paid out."""
    if not p.get("reversal"):
        return "payout", names["payout"]
    if p.get("reason"):
        return "payout_reversal", _("%(label)s: %(value)s", label=names["payout_reversal"], value=p["reason"])
    return "payout_reversal", names["payout_reversal"]


def statement_csv(doc: dict) -> str:
    """One row per figure (`item` is the contract's field name, `label` the reader's words), then
    one row per payout line of the month (a reversal: `payout_reversal`, negative)."""
    names = labels()
    rows = []
    if doc.get("test_money"):
        rows.append(["test_money", _("Test money: no real payment is counted here"), doc["month"], "",
                     doc["currency"], ""])
    rows += [[key, names[key], doc["month"], doc[key], doc["currency"], ""] for key in CSV_FIELDS]
    rows += [[*payout_row(p, names), p["paid_on"], p["amount"], doc["currency"], p["reference"]]
             for p in doc["payouts"]]
    return csvsafe.render(["item", "label", "period", "amount_cents", "currency", "reference"], rows)


def statement_pdf(doc: dict, campaign) -> bytes:
    from weasyprint import HTML  # deferred: the PDF renderer is loaded only when a statement is printed

    html = render_template("books/statement_print.html", doc=doc, campaign=campaign, labels=labels())
    return HTML(string=html).write_pdf()
