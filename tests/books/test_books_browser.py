"""The open books in a real browser: the public transparency page at 390 px and 1280 px in both
languages, and the partner's statement page, chart and monthly statement at 390 px (its "we
received it" button included). Nothing wider than the screen; screenshots kept under tmp_path."""
from __future__ import annotations

import sqlite3
import subprocess
import sys

import pytest

from tests.screens import assert_fits
from tests.site.test_browser import PRODUCER_PASSWORD, ROOT, _cli, browser, running_site  # noqa: F401

pytestmark = pytest.mark.browser

PARTNER_EMAIL, PARTNER_PASSWORD = "partner@xinxing.test", "a-long-partner-password"
SAYS = {"en": {"transparency": "Where the money went", "partner": "Share due against paid, over time",
               "month": "Closing balance"},
        "zh-Hans": {"transparency": "善款去向", "partner": "应付份额与已拨款的走势", "month": "期末余额"}}

SETUP = """
from datetime import date, timedelta
from filmfund import create_app
from filmfund.extensions import db
from filmfund.auth.services import find_user
from filmfund.books import expenses
from filmfund.rewards.campaign import current_campaign
from filmfund.rewards.payments import record_payout
app = create_app()
with app.app_context():
    producer = find_user("producer@filmfund.test")
    campaign = current_campaign()
    for line, amount, days in (("editing-computer", 129900, 20), ("travel", 31000, 9), ("hotels", 42000, 5)):
        expenses.record_expense(campaign, budget_line=line, amount=amount, spent_on=date.today() - timedelta(days=days),
                                description="private note", user=producer)
    db.session.commit()
    record_payout(5000, date.today() - timedelta(days=2), "WIRE-BROWSER", producer.email)
    db.session.commit()
"""


@pytest.fixture(autouse=True)
def _user_per_request():
    """The server is a subprocess: no in-process app nor database parameter."""


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    instance = tmp_path_factory.mktemp("books-instance")
    with running_site(instance, "producer@filmfund.test", PRODUCER_PASSWORD) as (base, env, _log):
        _cli(env, "demo", "seed", "--donations", "40", "--donors", "8")
        subprocess.run([sys.executable, "-c", SETUP], env=env, cwd=ROOT, check=True, timeout=120)
        _cli(env, "users", "create", PARTNER_EMAIL, "--role", "partner", "--password-stdin",
             stdin=PARTNER_PASSWORD + "\n")
        # Three days pass: what was booked is now before the partner's hold-back. The money the
        # ledger keeps per day (which the partner's pages read) moves with its entries; the demo
        # seed spread the gifts' received days already.
        with sqlite3.connect(instance / "filmfund.db") as conn:
            conn.execute("UPDATE ledger_entries SET created_at = datetime(created_at, '-3 days')")
            conn.execute("UPDATE donations SET received_at = datetime(received_at, '-3 days')")
            conn.execute("UPDATE campaign_days SET day = date(day, '-3 days')")
        yield base


@pytest.mark.parametrize("width", (390, 1280))
@pytest.mark.parametrize("lang", ["en", "zh-Hans"])
def test_transparency_page(site, browser, tmp_path, lang, width):
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": width, "height": 900})
    page.goto(f"{site}/?lang={lang}")
    page.click("#transparency-link")
    page.wait_for_url("**/transparency")
    assert page.evaluate("document.documentElement.lang") == lang
    expect(page.locator("h1")).to_have_text(SAYS[lang]["transparency"])
    expect(page.locator("svg.spend-bar")).to_have_count(3)
    body = page.inner_text("body")
    assert ("$1,299.00" if lang == "en" else "US$1,299.00") in body
    assert "private note" not in body and "WIRE-BROWSER" not in body and "@" not in body
    bar = page.locator("#line-editing-computer svg.spend-bar").bounding_box()
    assert bar["width"] > 0.5 * min(width, 900) - 80
    assert_fits(page, tmp_path, f"transparency-{lang}-{width}")
    page.close()


@pytest.mark.parametrize("lang", ["en", "zh-Hans"])
def test_partner_statement_and_chart_on_a_phone(site, browser, tmp_path, lang):
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    page.goto(f"{site}/login?lang={lang}")
    page.fill("#login-email", PARTNER_EMAIL)
    page.click("summary")
    page.fill("#login-password", PARTNER_PASSWORD)
    page.click("button[type=submit].primary")
    page.wait_for_load_state()
    page.goto(f"{site}/admin/partner")
    assert page.evaluate("document.documentElement.lang") == lang
    expect(page.locator("#share-chart-heading")).to_have_text(SAYS[lang]["partner"])
    chart = page.locator("svg#share-chart")
    expect(chart).to_be_visible()
    expect(chart.locator("polyline.due")).to_have_count(1)
    expect(chart.locator("polyline.paid")).to_have_count(1)
    assert chart.bounding_box()["width"] <= 390
    assert page.locator("#st-due").inner_text() not in ("$0.00", "US$0.00")
    assert_fits(page, tmp_path, f"partner-{lang}-390")
    if page.locator("text=" + ("We received it" if lang == "en" else "我们已收到")).count():
        page.click("text=" + ("We received it" if lang == "en" else "我们已收到"))
        page.wait_for_load_state()
    expect(page.locator("#payouts .badge.state-paid")).to_have_count(1)
    page.locator("#months a").first.click()
    page.wait_for_url("**/admin/partner/statements/*")
    expect(page.locator("#m-closing_balance")).to_be_visible()
    assert SAYS[lang]["month"] in page.inner_text("body")
    assert_fits(page, tmp_path, f"partner-month-{lang}-390")
    pdf = page.request.get(page.url + "?format=pdf")
    assert pdf.ok and pdf.body().startswith(b"%PDF-")
    context.close()
