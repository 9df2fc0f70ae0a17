"""One donor in a real browser (Debian's chromium through Playwright, the real server): pays for
the Patron tier without giving an address, receives the address survey by mail, fills it in,
then approves their line in the end credits on the same page; the credits export lists them. And
"Your rewards" on a phone: a list, whatever the credit name."""
from __future__ import annotations

import os
import re
import subprocess
from email import policy
from email.parser import BytesParser

import pytest

from tests.screens import assert_fits, shot, tables_scrolled_sideways
from tests.site.test_browser import BIN, ROOT, _user_per_request, _wait_for_thank_you, browser, server  # noqa: F401
from tests.site.test_browser import PRODUCER_PASSWORD, sign_in_donor, sign_in_producer_first_time

pytestmark = pytest.mark.browser


def _cli(server, *args) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "FILMFUND_"))}
    env["FILMFUND_INSTANCE_DIR"] = str(server.log.parent)
    result = subprocess.run([str(BIN), *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr + result.stdout
    return result.stdout


def _survey_path(server, email: str) -> str:
    for path in sorted((server.log.parent / "outbox").glob("*.eml"), key=lambda p: p.stat().st_mtime_ns):
        msg = BytesParser(policy=policy.default).parse(path.open("rb"))
        if msg["To"] == email and "send your rewards" in msg["Subject"]:
            return re.search(r"(/rewards/survey/\S+)", msg.get_body(("plain",)).get_content()).group(1)
    pytest.fail("no address survey in the outbox")


def test_address_survey_and_credits_proof_in_a_real_browser(server, browser, tmp_path):
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.goto(server.url + "/")
    page.fill("#amount", "100")
    page.fill("#email", "lin@example.org")
    page.fill("#credit_name", "Lin Qiao")
    page.click("button[type=submit].primary")
    expect(page.locator("#checkout-shipping")).to_be_visible()  # as Stripe Checkout asks at a DVD tier
    page.click("text=Pay (test)")  # left empty: the survey will ask
    _wait_for_thank_you(page, server)

    assert "address surveys sent: 1" in _cli(server, "rewards", "remind")
    page.goto(server.url + _survey_path(server, "lin@example.org"))
    expect(page.locator("h1")).to_contain_text("Your rewards")
    page.fill("#addr-name", "Lin Qiao")
    page.fill("#addr-line1", "88 Jiefang Road")
    page.fill("#addr-city", "Chengdu")
    page.fill("#addr-postal", "610000")
    page.select_option("#addr-country", "CN")
    page.fill("#addr-dedication", "For the Qiao family")
    page.click("#address-submit")
    expect(page.locator("#survey-done")).to_contain_text("your address is saved")
    expect(page.locator("#survey-current-address")).to_contain_text("88 Jiefang Road")

    expect(page.locator("#proof-line")).to_have_text("Lin Qiao")
    page.click("#proof-approve")
    expect(page.locator("#survey-done")).to_contain_text("your line in the credits is confirmed")
    expect(page.locator("#proof-state")).to_have_text("Approved")
    shot(page, tmp_path / "survey.png")
    assert not [e for e in errors if "Content Security Policy" in e or "Refused" in e], errors
    page.close()

    assert "address surveys sent: 0" in _cli(server, "rewards", "remind")
    assert "supporters,Lin Qiao" in _cli(server, "credits", "export", "--format", "csv").splitlines()


# A credit name written without a space (pinyin typed in one go), quoted in the credit row's detail.
LONG_NAME = "OuyangNanaAbudurexitiMaimaitijiang"


def test_the_rewards_table_is_a_list_on_a_phone_whatever_the_credit_name(server, browser, tmp_path):
    """At 390 px, "Your rewards" lays each reward out under its headings' names (table.stack): a
    long unbroken credit name breaks inside its own cell instead of widening the first column and
    pushing every reward's state and next step out of sight."""
    page = browser.new_page(viewport={"width": 390, "height": 844})
    page.goto(server.url + "/")
    page.fill("#amount", "100")  # the credit, both DVDs, the letter: a row of each
    page.fill("#email", "ouyang@example.org")
    page.fill("#credit_name", LONG_NAME)
    page.click("button[type=submit].primary")
    page.click("text=Pay (test)")
    _wait_for_thank_you(page, server)
    sign_in_donor(page, server.url, server.log.parent, "ouyang@example.org")
    for lang in ("en", "zh-Hans"):
        page.goto(f"{server.url}/account?lang={lang}")
        assert_fits(page, tmp_path, f"rewards-{lang}")
        assert LONG_NAME in page.inner_text("#rewards-table")
        assert tables_scrolled_sideways(page) == [], lang
        rights = page.eval_on_selector_all("#rewards-table td .badge",
                                           "els => els.map(e => e.getBoundingClientRect().right)")
        assert len(rights) >= 4 and max(rights) <= 390, (lang, rights)
    page.close()

    # The producers proofread the same name, whole, on a phone: the live list is a list there too.
    staff = browser.new_page(viewport={"width": 390, "height": 844})
    sign_in_producer_first_time(staff, server.url, "producer@filmfund.test", PRODUCER_PASSWORD)
    staff.goto(server.url + "/admin/credits")
    assert LONG_NAME in staff.inner_text("#credit-lines")
    assert tables_scrolled_sideways(staff) == [] and staff.evaluate(
        "document.querySelector('#credit-lines').getBoundingClientRect().right") <= 390
    staff.close()
