"""The producer's donations in a real browser at 1280 px and 390 px: search, open a donor, refund
partially; nothing wider than the screen. The site is `filmfund run` with demo donations."""
from __future__ import annotations

import pytest

from tests.screens import assert_fits
from tests.site.test_browser import (  # noqa: F401  (browser: the module's chromium fixture)
    _cli,
    browser,
    running_site,
    sign_in_producer_first_time,
)

pytestmark = pytest.mark.browser
PASSWORD = "donations-browser-password"


@pytest.fixture(autouse=True)
def _user_per_request():
    """No in-process app: the server is a subprocess."""


def _walk(page, base: str, width: int, donor: str, shots) -> None:
    from playwright.sync_api import expect

    page.set_viewport_size({"width": width, "height": 900})
    page.goto(base + "/admin/donations/")
    expect(page.locator("#donation-rows tbody tr")).to_have_count(50)
    page.fill("#q", donor[:14])
    page.click("#donation-search button[type=submit]")
    expect(page.locator("#donation-rows tbody tr").first).to_contain_text(donor)
    assert_fits(page, shots, f"donations-search-{width}")
    page.locator("#donation-rows a", has_text=donor).first.click()
    expect(page.locator("#donor-email")).to_have_text(donor)
    gift = page.locator(".fulfil-group").first
    gift.locator("summary").click()
    gift.locator("input[name=amount]").fill("1.50")
    gift.locator("input[name=reason]").fill("asked at the screening")
    gift.locator("button[type=submit]").click()
    expect(page.locator(".flash.success")).to_contain_text("Refunded $1.50")
    expect(page.locator(".fulfil-group").first).to_contain_text("asked at the screening")
    expect(page.locator(".fulfil-group").first).to_contain_text("partially refunded")
    assert_fits(page, shots, f"donor-refunded-{width}")


def test_search_open_a_donor_and_refund_partly_at_desktop_and_phone_width(browser, tmp_path_factory):  # noqa: F811
    instance = tmp_path_factory.mktemp("donations-browser")
    shots = tmp_path_factory.mktemp("donations-screenshots")
    with running_site(instance, "producer@filmfund.test", PASSWORD) as (base, env, log):
        _cli(env, "demo", "seed", "--donations", "120", "--donors", "60")
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        sign_in_producer_first_time(page, base, "producer@filmfund.test", PASSWORD)
        _walk(page, base, 1280, "donor-0000003@demo.filmfund.invalid", shots)
        _walk(page, base, 390, "donor-0000007@demo.filmfund.invalid", shots)
        page.close()
        errors = [line for line in log.read_text().splitlines() if "Traceback" in line]
        assert errors == []
