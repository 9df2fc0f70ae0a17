"""CSV cell escaping has one home (filmfund.csvsafe), used by every CSV the project writes."""
from __future__ import annotations

import csv
import io
import re
from datetime import date
from pathlib import Path

import pytest

from filmfund import csvsafe

FORMULAS = ["=HYPERLINK(\"http://evil\")", "+1+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1", " =1+1", "\u3000=1",
            "\uff1d1+1"]


@pytest.mark.parametrize("text", FORMULAS)
def test_a_cell_a_spreadsheet_would_run_is_text(text):
    assert csvsafe.cell(text).startswith("'") and csvsafe.cell(text).replace("'", "") == text


def _cells_a_spreadsheet_may_start(text: str) -> list[str]:
    """Where a spreadsheet may start a cell inside one field: at a `;` (Excel's list separator in
    most European locales), a tab, a line break."""
    return [part.lstrip(" \u00a0\u3000") for part in re.split(r"[;\t\r\n]", text)]


@pytest.mark.parametrize("text", ["Ann;=cmd|' /C calc'!A0", "Bo; +1", "x;\u3000@SUM(A1)", "name\t-2+3",
                                  "first line\n=HYPERLINK(\"http://evil\")", "a;\uff1d1", *FORMULAS])
def test_a_formula_after_a_separator_inside_the_field_is_text_too(text):
    kept = csvsafe.cell(text)
    assert not [c for c in _cells_a_spreadsheet_may_start(kept) if c.startswith(csvsafe.FORMULA_SIGNS)]
    assert kept.replace("'", "") == text.replace("'", "")  # nothing but the apostrophes added


@pytest.mark.parametrize("text", ["plain; text", "Smith; Jones", "李小龙；王", "12 Rue des Lilas"])
def test_a_separator_before_plain_text_changes_nothing(text):
    assert csvsafe.cell(text) == text


@pytest.mark.parametrize("value, expected", [("Zoë Normal", "Zoë Normal"), ("李小龙", "李小龙"), ("", ""),
                                             (None, ""), (-500, -500), (0, 0), ("12 Rue des Lilas", "12 Rue des Lilas")])
def test_plain_text_and_numbers_are_left_alone(value, expected):
    assert csvsafe.cell(value) == expected


def test_a_negative_amount_stays_a_number_a_negative_looking_string_does_not():
    rows = list(csv.reader(io.StringIO(csvsafe.render(["a", "b"], [[-195, "-195"]]))))
    assert rows == [["a", "b"], ["-195", "'-195"]]


def test_no_module_writes_csv_but_csvsafe():
    root = Path(__file__).resolve().parent.parent / "filmfund"
    writers = sorted(str(p.relative_to(root)) for p in root.rglob("*.py") if "csv.writer" in p.read_text())
    assert writers == ["csvsafe.py"]


def test_partner_statement_csv_escapes_a_payout_reference(client, campaign, login_as, partner, producer,
                                                          booked_yesterday):
    from filmfund.rewards import payments
    from filmfund.extensions import db
    from tests.site.helpers import pay

    pay(10000, "ann@example.org")
    payments.record_payout(amount=1000, paid_on=date(2026, 11, 20), reference="@SUM(A1:A9)", recorded_by=producer.email)
    db.session.commit()
    db.session.commit()
    body = login_as(client, partner).get("/admin/partner/statement.csv").get_data(as_text=True)
    rows = list(csv.reader(io.StringIO(body)))
    payout = [r for r in rows if r[0] == "payout"]
    assert payout == [["payout", "Payout", "2026-11-20", "1000", "usd", "'@SUM(A1:A9)"]]


def test_a_page_download_is_marked_utf8_for_spreadsheets_and_the_command_line_is_not(
        client, campaign, login_as, producer, runner):
    """Excel reads a CSV without the byte order mark in the system's legacy code page (GBK on a
    Chinese Windows): the Chinese names of the credits became mojibake. The page's download
    carries the mark; the command's output, which programs read (the contract's header
    `section,name`), does not."""
    from tests.site.helpers import pay

    pay(50000, "wang@example.org", credit_name="王\U00031350明")
    body = login_as(client, producer).get("/admin/credits.csv").data
    assert body.startswith(csvsafe.SPREADSHEET_BOM.encode("utf-8"))
    assert body.decode("utf-8-sig").splitlines() == ["section,name", "executive_producers,王\U00031350明"]
    out = runner.invoke(args=["credits", "export", "--format", "csv"])
    assert out.stdout.splitlines() == ["section,name", "executive_producers,王\U00031350明"]
