"""A monthly gift in a real browser (issue 13.1): the pledge form's one-time / monthly choice with
its card-only note, the test checkout, then the account page showing the gift and cancelling it
(the CSRF form), at phone width (390 px) and desktop (1280 px), in English and Chinese; none wider
than the screen. Screenshots are kept under pytest's tmp_path."""
from __future__ import annotations

import uuid

import pytest

from tests.screens import assert_fits
from tests.site.test_browser import PRODUCER_PASSWORD, browser, running_site, sign_in_donor  # noqa: F401 (browser: a fixture)
from tests.site.test_languages_browser import BROWSER_LOCALES

pytestmark = pytest.mark.browser

SAYS = {
    "en": {"card_only": "Monthly gifts are by card only", "every_month": "$12.00 every month",
           "monthly": "Your monthly gift", "cancelled": "Your monthly gift is cancelled", "badge": "Cancelled"},
    "zh-Hans": {"card_only": "每月捐款只能用银行卡支付", "every_month": "每月 US$12.00",
                "monthly": "您的每月捐款", "cancelled": "您的每月捐款已取消", "badge": "已取消"},
}


@pytest.fixture(autouse=True)
def _user_per_request():
    """The server is a subprocess: no in-process app nor database parameter."""


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    instance = tmp_path_factory.mktemp("monthly-instance")
    with running_site(instance, "producer@filmfund.test", PRODUCER_PASSWORD) as (base, _env, _log):
        yield base, instance


@pytest.mark.parametrize("width", (390, 1280))
@pytest.mark.parametrize("lang", ["en", "zh-Hans"])
def test_a_donor_gives_monthly_then_cancels_on_the_account_page(site, browser, tmp_path, lang, width):
    from playwright.sync_api import expect

    base, instance = site
    says = SAYS[lang]
    context = browser.new_context(viewport={"width": width, "height": 900}, locale=BROWSER_LOCALES[lang])
    page = context.new_page()
    name = f"monthly-{lang}-{width}"
    address = f"monthly-{uuid.uuid4().hex[:8]}@example.org"
    try:
        page.goto(base + "/")
        expect(page.locator("#interval-once")).to_be_checked()
        assert says["card_only"] in page.inner_text("#interval-help")
        page.check("#interval-month")
        page.fill("#amount", "12")
        page.fill("#email", address)
        assert_fits(page, tmp_path, f"{name}-form")
        page.click("#pledge-form button[type=submit]")
        page.wait_for_url("**/checkout/test/**")
        expect(page.locator("#checkout-amount")).to_have_text(says["every_month"])
        assert_fits(page, tmp_path, f"{name}-checkout")
        page.click("button[value=paid]")
        page.wait_for_url("**/thank-you**")
        expect(page.locator("#payment-status")).to_have_attribute("data-state", "paid", timeout=20000)

        sign_in_donor(page, base, instance, address)
        monthly = page.locator("#monthly")
        expect(monthly).to_contain_text(says["monthly"])
        expect(monthly).to_contain_text(says["every_month"])
        assert_fits(page, tmp_path, f"{name}-account")
        monthly.locator("form.cancel-subscription button").click()
        page.wait_for_url("**/account#monthly")
        expect(page.locator("body")).to_contain_text(says["cancelled"])
        expect(monthly.locator(".badge")).to_have_text(says["badge"])
        expect(monthly.locator("form.cancel-subscription")).to_have_count(0)
        assert_fits(page, tmp_path, f"{name}-cancelled")
    finally:
        context.close()
