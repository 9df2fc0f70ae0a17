"""The donor's pages as a blind donor with a screen reader and a donor who only uses the keyboard
meet them, in Debian's chromium over `filmfund run`, at a phone's 390 px and a desktop's 1280 px,
in English and in Chinese: the campaign page and its pledge form, the test checkout, the thank-you
page, sign-in by mailed link, the account's pages (rewards, downloads, settings, data, erase), the
address and credits pages, the updates and the open books. Each page passes `tests.a11y.problems`
(labels, names, headings, skip link, contrast, tap targets, boxes grouped under their question); a
refused form (the pledge, the sign-in address, the settings, the shipping address) comes back with
the focus on what to mend, the error tied to its field; every stop of the keyboard shows its focus."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.a11y import focus_ring, focused_after_load, problems
from tests.site.test_browser import (  # noqa: F401  (browser: a fixture)
    browser,
    running_site,
    sign_in_donor,
    sign_in_link,
)

pytestmark = pytest.mark.browser

PRODUCER, PASSWORD = "producer@filmfund.test", "keyboard-producer-password"
DONOR = "keyboard-donor@example.org"
LANGUAGES = ("en", "zh-Hans")
VISITOR_PAGES = ("/", "/login", "/updates", "/transparency")
DONOR_PAGES = ("/account", "/account/address", "/account/credits", "/account/data/readable", "/account/questions")


@pytest.fixture(autouse=True)
def _user_per_request():
    """The server is a subprocess: no in-process app or database parameter here."""


@pytest.fixture(scope="module")
def site(tmp_path_factory, browser):  # noqa: F811
    """The site with one gift of $100 (a tier with a DVD to post and a name in the credits), made
    with the keyboard alone: typed into the pledge form, sent by Enter, paid by Enter on the test
    checkout's button; yields the base URL, the env, and the thank-you and checkout pages' paths."""
    with running_site(tmp_path_factory.mktemp("keyboard"), PRODUCER, PASSWORD) as (base, env, log):
        page = browser.new_page(viewport={"width": 390, "height": 800})
        page.goto(base + "/")
        page.focus("#amount")
        page.keyboard.type("100")
        page.keyboard.press("Tab")
        page.keyboard.type(DONOR)
        page.keyboard.press("Tab")
        page.keyboard.type("Mei Keyboard")
        page.keyboard.press("Enter")
        page.wait_for_url("**/checkout/test/**")
        checkout = page.url.removeprefix(base)
        page.focus("button[value=paid]")
        page.keyboard.press("Enter")
        page.wait_for_url("**/thank-you**")
        page.wait_for_selector("#payment-status[data-state=paid]", timeout=30000)
        thank_you = page.url.removeprefix(base)
        page.close()
        yield base, env, (thank_you, checkout)


def _tab(page) -> dict:
    page.keyboard.press("Tab")
    return focus_ring(page)


@pytest.fixture(scope="module")
def donor_state(site, browser):  # noqa: F811
    """The donor's signed-in session (by the mailed link, once: the outbox holds one link), for
    each test's own browser context."""
    base, env, _pages = site
    context = browser.new_context()
    sign_in_donor(context.new_page(), base, Path(env["FILMFUND_INSTANCE_DIR"]), DONOR)
    state = context.storage_state()
    context.close()
    return state


def _donor_page(browser, state, width):  # noqa: F811
    return browser.new_context(storage_state=state, viewport={"width": width, "height": 900}).new_page()


@pytest.mark.parametrize("width", [390, 1280])
def test_every_donor_page_reads_to_a_screen_reader(site, browser, donor_state, width):  # noqa: F811
    base, env, (thank_you, checkout) = site
    found: dict[str, list[str]] = {}
    visitor = browser.new_page(viewport={"width": width, "height": 900})
    donor = _donor_page(browser, donor_state, width)
    try:
        for lang in LANGUAGES:
            for page, paths in ((visitor, VISITOR_PAGES + (checkout, thank_you, "/login/magic/not-a-token")),
                                (donor, DONOR_PAGES)):
                page.goto(f"{base}/?lang={lang}")
                for path in paths:
                    page.goto(base + path)
                    assert page.evaluate("document.documentElement.lang") == lang, path
                    for problem in problems(page):
                        found.setdefault(problem, []).append(f"{lang} {path}")
    finally:
        visitor.close()
        donor.close()
    assert found == {}, "\n".join(f"{p}  ({', '.join(where[:3])})" for p, where in found.items())


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("width", [390, 1280])
def test_the_first_tab_skips_to_the_page_itself(site, browser, width, lang):  # noqa: F811
    """The keyboard's first stop is a skip link, shown when reached (a sighted keyboard user sees
    where the focus is), and it leads past the header's links into <main>: the next Tab is the
    page's own first control, not "Updates" or "Sign in" again."""
    base, _env, _pages = site
    page = browser.new_page(viewport={"width": width, "height": 900})
    try:
        page.goto(f"{base}/?lang={lang}")
        first = _tab(page)
        assert first["tag"] == "A" and page.evaluate("document.activeElement.getAttribute('href')") == "#main", first
        left, top, w, h = first["box"]
        assert 0 <= left and 0 <= top and left + w <= width and w >= 24 and h >= 24, first  # in sight, and a target
        assert first["outline"] != "none" and first["width"] >= 2, first
        assert first["text"] == page.evaluate("document.querySelector('.skip-link').textContent.trim()") != ""
        page.keyboard.press("Enter")
        assert focus_ring(page)["isMain"]
        after = _tab(page)
        assert after["inMain"] and not after["isMain"], after
    finally:
        page.close()


@pytest.mark.parametrize("path", ["/", "/account"])
def test_every_keyboard_stop_shows_its_focus(site, browser, donor_state, path):  # noqa: F811
    """Tab through the whole page at 390 px: each stop is drawn with a ring at least 2 px wide, is
    not a 1-pixel hidden box, and the page scrolls to show it."""
    base, env, _pages = site
    page = _donor_page(browser, donor_state, 390) if path == "/account" else \
        browser.new_page(viewport={"width": 390, "height": 800})
    try:
        page.goto(base + path)
        seen = []
        for _ in range(80):
            ring = _tab(page)
            if ring["tag"] == "BODY" or (seen and ring == seen[0]):
                break
            seen.append(ring)
            left, top, w, h = ring["box"]
            assert w > 1 and h > 1, ring
            assert -1 <= top and top + min(h, 20) <= page.viewport_size["height"] + 1, ring  # scrolled into sight
            if ring["tag"] != "VIDEO":
                assert (ring["outline"] != "none" and ring["width"] >= 2) or ring["shadow"] != "none", ring
        assert len(seen) > 10, seen
    finally:
        page.close()


@pytest.mark.parametrize("lang", LANGUAGES)
def test_a_refused_pledge_puts_the_focus_on_the_field_to_mend(site, browser, lang):  # noqa: F811
    """At 390 px the pledge form is far down the page: after a refusal the page comes back with the
    focus on the first field in error (so the screen reader reads its label, "invalid" and the
    error, and a keyboard user types at once), the error tied to it by aria-describedby, and a
    summary in an alert."""
    base, _env, _pages = site
    page = browser.new_page(viewport={"width": 390, "height": 800})
    try:
        page.goto(f"{base}/?lang={lang}")
        page.focus("#amount")
        page.keyboard.type("abc")
        with page.expect_navigation():
            page.keyboard.press("Enter")  # no email either
        assert focused_after_load(page, "amount") == "amount"
        for field, error in (("#amount", "amount-error"), ("#email", "email-error")):
            assert page.get_attribute(field, "aria-invalid") == "true", field
            assert error in page.get_attribute(field, "aria-describedby").split(), field
            assert page.inner_text("#" + error).strip(), error
        assert page.locator("#pledge-card, .pledge-card").locator("[role=alert]").count() >= 1
        # Only the email wrong now: the focus goes to it.
        page.fill("#amount", "25")
        page.focus("#email")
        with page.expect_navigation():
            page.keyboard.press("Enter")
        assert focused_after_load(page, "email") == "email"
        assert page.get_attribute("#amount", "aria-invalid") is None
        assert page.evaluate("document.activeElement.getBoundingClientRect().top") < 800
    finally:
        page.close()


def test_a_mistyped_sign_in_address_is_said_at_its_field(site, browser):  # noqa: F811
    base, _env, _pages = site
    page = browser.new_page(viewport={"width": 390, "height": 800})
    try:
        page.goto(base + "/login")
        page.focus("#login-email")
        page.keyboard.type("not an address")
        with page.expect_navigation():
            page.keyboard.press("Enter")
        assert focused_after_load(page, "login-email") == "login-email"
        assert page.get_attribute("#login-email", "aria-invalid") == "true"
        described = page.get_attribute("#login-email", "aria-describedby")
        assert page.inner_text("#" + described).strip()
        assert page.get_attribute("#" + described, "role") == "alert"
    finally:
        page.close()


def test_the_account_page_refusals_focus_and_name_their_field(site, browser, donor_state):  # noqa: F811
    """The erase box and the rewards' confirmation box are far down the account page: a refusal
    comes back focused on the box, marked invalid and described by its error."""
    base, env, _pages = site
    page = _donor_page(browser, donor_state, 390)
    try:
        page.goto(base + "/account")
        page.focus("#erase-confirm")
        page.keyboard.type("no")
        with page.expect_navigation():
            page.keyboard.press("Enter")
        assert focused_after_load(page, "erase-confirm") == "erase-confirm"
        assert page.get_attribute("#erase-confirm", "aria-invalid") == "true"
        assert page.get_attribute("#erase-confirm", "aria-describedby") == "erase-error"
        assert page.inner_text("#erase-error").strip()

        page.goto(base + "/account")
        with page.expect_navigation():
            page.click("#rewards-form button[type=submit]")  # without ticking the box
        assert focused_after_load(page, "rewards-confirm") == "rewards-confirm"
        assert page.get_attribute("#rewards-confirm", "aria-invalid") == "true"
        assert page.get_attribute("#rewards-confirm", "aria-describedby") == "rewards-error"
        assert page.is_visible("#erase-form")  # nothing was erased, nothing withdrawn
        assert problems(page) == []
    finally:
        page.close()


@pytest.mark.parametrize("lang", LANGUAGES)
def test_a_refused_address_puts_the_focus_on_the_field_to_mend(site, browser, donor_state, lang):  # noqa: F811
    """The shipping address typed with the keyboard and sent by Enter without a city or a
    country: the page comes back with both marked invalid at once, each described by the message
    said under it, the focus in the first (in English the city; in Chinese, whose form asks from
    the country down, the country); sent again with that one mended, the other alone (before, the
    message stood above the form, "Required for the parcel to arrive." naming no field, and the
    focus was at the top of the page; then one field was named per try)."""
    base, _env, _pages = site
    page = _donor_page(browser, donor_state, 390)
    chinese = lang.startswith("zh")
    try:
        page.goto(f"{base}/account/address?lang={lang}")
        page.focus("#addr-name")
        page.keyboard.type("Mei Keyboard")
        for _field in range(5 if chinese else 1):  # to the street: past the country, region, city, postal code in Chinese
            page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.id") == "addr-line1"
        page.keyboard.type("1 Harbour Road")
        with page.expect_navigation():
            page.keyboard.press("Enter")
        rounds = ((("addr-country", "addr-city"), "CN"), (("addr-city",), None)) if chinese else \
            ((("addr-city", "addr-country"), "Shenzhen"), (("addr-country",), None))
        for fields, then in rounds:
            assert focused_after_load(page, fields[0]) == fields[0]
            for field in fields:
                assert page.get_attribute("#" + field, "aria-invalid") == "true"
                described = page.get_attribute("#" + field, "aria-describedby")
                assert page.inner_text("#" + described).strip()
                assert page.evaluate(f"document.getElementById('{described}').previousElementSibling.id") == field
            assert page.locator("[aria-invalid]").count() == len(fields)
            assert problems(page) == []
            if not then:
                continue
            if chinese:  # the focused country list: chosen, then sent from the street's box
                page.select_option("#" + fields[0], then)
                page.focus("#addr-line1")
            else:
                page.keyboard.type(then)
            with page.expect_navigation():
                page.keyboard.press("Enter")
        assert page.input_value("#addr-line1") == "1 Harbour Road"
        assert page.input_value("#addr-country") == "CN" if chinese else page.input_value("#addr-city") == "Shenzhen"
    finally:
        page.close()


def test_the_mail_choices_are_read_with_their_question(site, browser, donor_state):  # noqa: F811
    """The account's mail boxes answer one question: a screen reader reads it (the legend of
    their fieldset) with each box, not "Production updates, check box" alone."""
    base, _env, _pages = site
    page = _donor_page(browser, donor_state, 390)
    try:
        page.goto(base + "/account")
        legend = page.locator("#mail-form fieldset > legend")
        assert legend.count() == 1 and legend.inner_text().strip()
        assert page.locator("#mail-form fieldset input[type=checkbox][name=topic]").count() \
            == page.locator("#mail-form input[name=topic]").count() >= 2
        assert problems(page) == []
    finally:
        page.close()
