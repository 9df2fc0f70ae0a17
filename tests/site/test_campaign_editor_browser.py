"""The campaign editor in a real browser at phone (390 px) and desktop (1280 px) width (issue 14
item 2): a producer edits a tier and sees the public page change; a refused edit says why and keeps
what was typed. `filmfund run` as a subprocess over a fresh instance; screenshots under tmp_path."""
from __future__ import annotations

import pytest

from tests.screens import assert_fits
from tests.site.test_browser import CHROMIUM, running_site, sign_in_producer_first_time

pytestmark = pytest.mark.browser

PASSWORD = "campaign-editor-password"
PRODUCER = "editor@filmfund.test"


@pytest.fixture(autouse=True)
def _user_per_request():
    """No in-process app here (nor a database parameter): the server is a subprocess."""


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    with running_site(tmp_path_factory.mktemp("editor-instance"), PRODUCER, PASSWORD) as (base, _env, _log):
        yield base


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        yield chromium
        chromium.close()


def test_a_producer_edits_a_tier_at_phone_and_desktop_width_and_the_page_follows(site, browser, tmp_path):
    from playwright.sync_api import expect

    phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = phone.new_page()
    sign_in_producer_first_time(page, site, PRODUCER, PASSWORD)
    signed_in = phone.storage_state()
    desktop = browser.new_context(viewport={"width": 1280, "height": 900}, storage_state=signed_in)

    for context, width, amount, name in [(phone, 390, "20", "Follower from the phone"),
                                         (desktop, 1280, "25.50", "Follower from the desk")]:
        page = context.pages[0] if context.pages else context.new_page()
        page.goto(site + "/admin/campaign")
        assert_fits(page)
        tiers = page.locator("#part-tiers")
        tiers.locator('input[name="tier-1-min"]').fill("0.50")  # below the tier before it
        tiers.locator('button[type=submit].primary').click()
        expect(page.locator("#part-tiers .flash.error")).to_contain_text("tiers go strictly up")
        expect(page.locator('input[name="tier-1-min"]')).to_have_value("0.50")  # the typing is kept
        page.locator('input[name="tier-1-min"]').fill(amount)
        page.locator('input[name="tier-1-name-en"]').fill(name)
        page.locator('#part-tiers button[type=submit].primary').click()
        expect(page.locator(".flash.info")).to_contain_text("Saved")
        assert_fits(page, tmp_path, f"campaign-editor-{width}")

        cents = round(float(amount) * 100)
        page.goto(site + "/?lang=en")
        tier = page.locator(f"#tier-{cents}")
        expect(tier.locator(".tier-name")).to_have_text(name)
        expect(tier).to_contain_text("Monthly production updates")  # its reward moved with it
        page.goto(site + "/?lang=zh-Hans")
        expect(page.locator(f"#tier-{cents} .tier-name")).to_have_text("关注者")
        assert_fits(page, tmp_path, f"campaign-page-after-edit-{width}")
    phone.close()
    desktop.close()
