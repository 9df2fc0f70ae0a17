"""The partner's month statement in a real browser at 390 px, in both languages, with bank
references as banks write them (a SWIFT wire's, 35 to 50 characters without a space) and a
reversed payout: its payouts table was a plain table, wider than the phone (the page scrolled
sideways) with the date broken across lines ("2026-" / "12-04"). It is laid out as the partner
page's payouts (table.stack: each row a list, each cell under its heading's name), its dates
whole and written as that page writes them. Screenshots kept under tmp_path."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from filmfund.extensions import db
from filmfund.rewards import statements
from filmfund.rewards.payments import record_payout, reverse_payout
from tests.screens import assert_fits, one_line_each, tables_scrolled_sideways
from tests.site.helpers import pay
from tests.site.test_browser import browser  # noqa: F401  (the module's chromium)

# Its subject is the page's layout in a browser, not the database (tests/conftest.py): the month's
# figures are tested on both databases by tests/books/test_partner_statements.py.
pytestmark = [pytest.mark.browser, pytest.mark.one_database]

# A SWIFT wire's reference as a bank prints it (fields 20/70, no spaces), and a longer one.
REFERENCES = ("FT26338W8K2Q/XINXINGAIDCENTER/DEC26", "XINXING-AID-CENTER-WIRE-2026120400001234567890ABCDEF")


@pytest.mark.parametrize("lang", ["en", "zh-Hans"])
def test_month_statement_payouts_fit_a_phone(app, campaign, login_as, partner, producer, booked_yesterday,
                                             served_app, browser, tmp_path, lang):  # noqa: F811
    pay(10000, "zelda@donor-secret.example", credit_name="Zelda Q")  # share due: $20.00
    wrong = record_payout(1000, date.today(), REFERENCES[0], producer.email)
    record_payout(500, date.today(), REFERENCES[1], producer.email)
    reverse_payout(wrong.id, "typed to the wrong account", producer.email)
    db.session.commit()
    month = statements.current_month(campaign, datetime.now(timezone.utc) - timedelta(days=1, hours=1))  # booked in
    cookie = login_as(app.test_client(), partner).get_cookie(app.config.get("SESSION_COOKIE_NAME", "session"))
    context = browser.new_context(viewport={"width": 390, "height": 844})
    context.add_cookies([{"name": cookie.key, "value": cookie.value, "url": served_app}])
    page = context.new_page()
    try:
        page.goto(f"{served_app}/admin/partner?lang={lang}")
        as_the_partner_page_writes = set(page.locator("#payouts td.date").all_inner_texts())
        page.goto(f"{served_app}/admin/partner/statements/{month}?lang={lang}")
        assert_fits(page, tmp_path, f"month-{lang}-390")
        assert tables_scrolled_sideways(page) == []
        # Two payouts and the reversal's own line, each date on one line, as the partner page has it.
        assert one_line_each(page, "table.statement-payouts td.date") == 3
        # (the reversal's line is dated the day it was booked, which the partner page says otherwise)
        assert as_the_partner_page_writes <= set(page.locator("table.statement-payouts td.date").all_inner_texts())
        for reference in REFERENCES:  # whole, broken inside its cell rather than cut or scrolled
            assert page.locator("table.statement-payouts td.reference", has_text=reference).count() >= 1
    finally:
        context.close()
