"""Both languages in a real browser (issue 12.1 and 12.5): the campaign page, the pledge, the test
checkout, the thank-you page and the account page, at phone (390 px) and desktop (1280 px) width,
in English and in Chinese chosen by the browser's language; none wider than the screen. With
FILMFUND_TEST_SCREENSHOTS=1 the screenshots are kept under pytest's tmp_path as the run's artifacts."""
from __future__ import annotations

import uuid

import pytest

from tests.screens import assert_fits, shot
from tests.site.test_browser import PRODUCER_PASSWORD, browser, running_site, sign_in_donor  # noqa: F401 (browser: a fixture)

pytestmark = pytest.mark.browser

BROWSER_LOCALES = {"en": "en-US", "zh-Hans": "zh-CN"}
WIDTHS = (390, 1280)
SAYS = {  # one text each page shows in each language
    "en": {"campaign": "Support the film", "checkout": "Checkout", "thanks": "Thank you",
           "account": "Your donations and rewards"},
    "zh-Hans": {"campaign": "支持这部影片", "checkout": "付款", "thanks": "谢谢您", "account": "您的捐款与回报"},
}


@pytest.fixture(autouse=True)
def _user_per_request():
    """The server is a subprocess: no in-process app nor database parameter."""


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    instance = tmp_path_factory.mktemp("languages-instance")
    with running_site(instance, "producer@filmfund.test", PRODUCER_PASSWORD) as (base, _env, _log):
        yield base, instance


def _check(page, lang: str, what: str, shots, name: str) -> None:
    """The page is in `lang`, says what it should, fits the screen (tests.screens: its screenshot)."""
    assert page.evaluate("document.documentElement.lang") == lang
    assert SAYS[lang][what] in page.inner_text("body"), f"{name}: {SAYS[lang][what]!r} missing"
    assert_fits(page, shots, name)


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("lang", ["en", "zh-Hans"])
def test_a_donor_gives_and_signs_in_in_their_language(site, browser, tmp_path, lang, width):
    from playwright.sync_api import expect

    base, instance = site
    context = browser.new_context(viewport={"width": width, "height": 900}, locale=BROWSER_LOCALES[lang])
    page = context.new_page()
    name = f"{lang}-{width}"
    address = f"donor-{uuid.uuid4().hex[:8]}@example.org"
    try:
        page.goto(base + "/")
        _check(page, lang, "campaign", tmp_path, f"{name}-campaign")

        page.fill("#amount", "55")
        expect(page.locator("#tier-preview")).to_contain_text("收藏家" if lang == "zh-Hans" else "Collector")
        page.fill("#email", address)
        page.fill("#credit_name", "王小梅 Mei")
        page.click("#pledge-form button[type=submit]")
        page.wait_for_url("**/checkout/test/**")
        _check(page, lang, "checkout", tmp_path, f"{name}-pledge")

        page.click("button[value=paid]")
        page.wait_for_url("**/thank-you**")
        expect(page.locator("#payment-status")).to_have_attribute("data-state", "paid", timeout=20000)
        _check(page, lang, "thanks", tmp_path, f"{name}-thank-you")

        sign_in_donor(page, base, instance, address)
        _check(page, lang, "account", tmp_path, f"{name}-account")
        assert "王小梅 Mei" in page.input_value("#credit_name")  # the name exactly as written
    finally:
        context.close()


@pytest.mark.parametrize("lang", ["en", "zh-Hans"])
def test_the_campaign_page_fits_the_narrowest_phone(site, browser, tmp_path, lang):
    """320 px (an iPhone SE's width, still sold): the budget's lines in Chinese have no space to
    break at, and once pushed their amounts out of the screen."""
    base, _instance = site
    context = browser.new_context(viewport={"width": 320, "height": 700}, locale=BROWSER_LOCALES[lang])
    try:
        page = context.new_page()
        page.goto(base + "/")
        _check(page, lang, "campaign", tmp_path, f"{lang}-320-campaign")
        amounts = page.eval_on_selector_all(".budget td.amount", "els => els.map(e => e.getBoundingClientRect().right)")
        assert amounts and max(amounts) <= 320, amounts  # every amount on the screen
    finally:
        context.close()


def test_the_switch_turns_a_chinese_page_english_and_it_stays(site, browser, tmp_path):
    base, _instance = site
    context = browser.new_context(viewport={"width": 390, "height": 900}, locale="zh-CN")
    page = context.new_page()
    try:
        page.goto(base + "/")
        assert page.evaluate("document.documentElement.lang") == "zh-Hans"
        page.click("a.language-switch[hreflang=en]")
        page.wait_for_url("**lang=en")
        assert page.evaluate("document.documentElement.lang") == "en"
        assert "Support the film" in page.inner_text("body")
        page.goto(base + "/login")  # remembered (a cookie), though the browser still asks for Chinese
        assert page.evaluate("document.documentElement.lang") == "en"
        shot(page, tmp_path / "switched-to-english.png")
    finally:
        context.close()
