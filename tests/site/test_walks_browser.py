"""The Done-when walks of issue 14 in a real browser (Debian's chromium through Playwright, the real
server): the producer's day (search the donations, refund part of a gift, edit a tier, publish a
still, send an update, pay the partner) and the partner's month (statement, chart, the payout
acknowledged, the month's statement). Every page is looked at at 1280 px and at 390 px (nothing
wider than the phone), and its screenshots are kept in test-artifacts/walks/ (printed at the end)."""
from __future__ import annotations

import re
import sqlite3
import subprocess

import pytest

from tests.screens import assert_fits, assert_not_scrolled_sideways, one_line_each
from tests.site.test_browser import _cli, browser, running_site, sign_in_producer_first_time  # noqa: F401

pytestmark = pytest.mark.browser

PRODUCER, PASSWORD = "producer@filmfund.test", "walks-producer-password"
PARTNER, PARTNER_PASSWORD = "partner@xinxing.test", "walks-partner-password"


@pytest.fixture(autouse=True)
def _user_per_request():
    """The server is a subprocess: no in-process app nor database parameter."""


@pytest.fixture(scope="module")
def shots():
    """test-artifacts/walks/ in the project (ignored by git): kept after the run, unlike pytest's
    rotated tmp folders, for CI to upload or a person to look through."""
    from tests.site.test_browser import ROOT

    folder = ROOT / "test-artifacts" / "walks"
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    yield folder
    print(f"\nscreenshots of the producer's day and the partner's month: {folder}")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    instance = tmp_path_factory.mktemp("walks")
    with running_site(instance, PRODUCER, PASSWORD) as (base, env, log):
        _cli(env, "demo", "seed", "--donations", "120", "--donors", "60")
        _cli(env, "users", "create", PARTNER, "--role", "partner", "--password-stdin", stdin=PARTNER_PASSWORD + "\n")
        # Three days pass: the gifts (the demo seed spread their received days) were booked before
        # the partner's hold-back; the money the ledger keeps per day moves with its entries.
        with sqlite3.connect(instance / "filmfund.db") as conn:
            conn.execute("UPDATE ledger_entries SET created_at = datetime(created_at, '-3 days')")
            conn.execute("UPDATE donations SET received_at = datetime(received_at, '-3 days')")
            conn.execute("UPDATE campaign_days SET day = date(day, '-3 days')")
        yield base, env, log


def look(page, shots, name: str) -> None:
    """This page at the desk and on a phone: a screenshot of each, and nothing wider than the phone."""
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 900})
        assert_fits(page, shots, f"{name}-{width}", keep=True)
    page.set_viewport_size({"width": 1280, "height": 900})


def test_the_producers_day(site, browser, shots, tmp_path):  # noqa: F811
    from playwright.sync_api import expect

    base, env, log = site
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    sign_in_producer_first_time(page, base, PRODUCER, PASSWORD)
    look(page, shots, "01-dashboard")

    # 1. find a gift and refund part of it
    donor = "donor-0000003@demo.filmfund.invalid"
    page.goto(base + "/admin/donations/")
    page.fill("#q", donor[:14])
    page.click("#donation-search button[type=submit]")
    expect(page.locator("#donation-rows tbody tr").first).to_contain_text(donor)
    look(page, shots, "02-donations-search")
    page.locator("#donation-rows a", has_text=donor).first.click()
    expect(page.locator("#donor-email")).to_have_text(donor)
    gift = page.locator(".fulfil-group").first
    gift.locator("summary").click()
    gift.locator("input[name=amount]").fill("1.50")
    gift.locator("input[name=reason]").fill("asked at the screening")
    gift.locator("button[type=submit]").click()
    expect(page.locator(".flash.success")).to_contain_text("Refunded $1.50")
    look(page, shots, "03-donor-refunded")

    # 2. edit a tier: the campaign page follows
    page.goto(base + "/admin/campaign")
    page.locator('input[name="tier-1-name-en"]').fill("Early follower")
    page.locator("#part-tiers button[type=submit].primary").click()
    expect(page.locator(".flash.info")).to_contain_text("Saved")
    look(page, shots, "04-campaign-editor")
    page.goto(base + "/?lang=en")
    expect(page.locator(".tier-name", has_text="Early follower")).to_have_count(1)

    # 3. publish a still to "Production stills"
    still = tmp_path / "set-photo.png"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=1280x720",
                    "-frames:v", "1", str(still)], check=True, timeout=120)
    _cli(env, "media", "ingest", "--wait", "--title", "On the set in Shenzhen", str(still))
    page.goto(base + "/footage/")
    page.click("text=On the set in Shenzhen")
    page.select_option(".publish-form select[name=reward]", "stills")
    page.click(".publish-form button[type=submit]")
    expect(page.locator("#publishing .published-to")).to_contain_text("Production stills")
    look(page, shots, "05-still-published")

    # 4. write an update, see how many it reaches, send it
    page.goto(base + "/admin/updates")
    page.fill("#update-title", "A week in Shenzhen")
    page.select_option("#update-audience", "everyone")
    page.fill("#update-body", "We filmed the **night market**.")
    page.click("form[action$='/admin/updates'] button[type=submit]")
    reach = page.locator("#update-reach")
    expect(reach).to_contain_text("donors by mail")
    assert int(re.search(r"reach (\d+) donor", reach.inner_text()).group(1)) > 0
    look(page, shots, "06-update-preview")
    page.click("text=Publish and send")
    expect(page.locator("#delivery-counts")).to_be_visible()
    look(page, shots, "07-update-sent")

    # 5. pay the partner (the partner acknowledges it in the partner's month)
    page.goto(base + "/admin/")
    page.fill("#pay-amount", "10")
    page.fill("#pay-ref", "WIRE-WALK-1")
    page.click("#payouts button[type=submit]")
    expect(page.locator("#payouts")).to_contain_text("WIRE-WALK-1")
    look(page, shots, "08-payout-recorded")
    page.close()
    assert [line for line in log.read_text().splitlines() if "Traceback" in line] == []


@pytest.mark.parametrize("lang", ["en", "zh-Hans"])
def test_the_partners_month(site, browser, shots, lang):  # noqa: F811
    from playwright.sync_api import expect

    base, _env, log = site
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{base}/login?lang={lang}")
    page.fill("#login-email", PARTNER)
    page.click("summary")
    page.fill("#login-password", PARTNER_PASSWORD)
    page.click("button[type=submit].primary")
    page.wait_for_load_state()
    page.goto(f"{base}/admin/partner")
    assert page.evaluate("document.documentElement.lang") == lang
    chart = page.locator("svg#share-chart")
    expect(chart).to_be_visible()
    assert page.locator("#st-due").inner_text() not in ("$0.00", "US$0.00")
    body = page.inner_text("body")
    assert "@demo.filmfund.invalid" not in body  # no donor data to the partner, ever
    look(page, shots, f"10-partner-statement-{lang}")
    page.set_viewport_size({"width": 390, "height": 900})
    # On a phone the payouts are a list, each cell under its heading's name, nothing scrolled out
    # of sight; a payout's date and its sum stay on one line (Chinese breaks between any two
    # characters, and "2026 | 年12 | 月5 | 日" down a narrow column reads as nothing).
    assert one_line_each(page, "#payouts td.date, #payouts .money") == 2
    assert_not_scrolled_sideways(page, "#payouts .table-wrap")
    page.set_viewport_size({"width": 1280, "height": 900})
    received = "We received it" if lang == "en" else "我们已收到"
    if page.locator("text=" + received).count():
        page.click("text=" + received)
        page.wait_for_load_state()
    expect(page.locator("#payouts .badge.state-paid")).to_have_count(1)
    # Booked today: listed at once, in the held-back figures from tomorrow, and the row says so
    # (its "Paid out" above is still the end of yesterday's).
    said = "In the figures above from tomorrow" if lang == "en" else "明天起计入上方数字"
    expect(page.locator("#payouts .not-yet-counted")).to_have_text(said)
    look(page, shots, f"11-partner-acknowledged-{lang}")
    page.locator("#months a").first.click()
    page.wait_for_url("**/admin/partner/statements/*")
    expect(page.locator("#m-closing_balance")).to_be_visible()
    look(page, shots, f"12-partner-month-{lang}")
    page.close()
    assert [line for line in log.read_text().splitlines() if "Traceback" in line] == []
