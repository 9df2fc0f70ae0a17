"""The producers' and the charity partner's pages, and the password reset, as a blind producer's
screen reader and a keyboard-only producer meet them, in Debian's chromium over `filmfund run` with
demo donations, at a phone's 390 px and a desktop's 1280 px, in English and in Chinese: every page
a producer reaches (the dashboard, donations and a donor's page, the rewards' queues, credits,
updates, footage, audit, requests, the editors, the partner's view), every page of the partner,
and the two reset pages pass `tests.a11y.problems` (headings, names, skip link, contrast, tap
targets, grouped choices, refusals tied to their field) and fit the screen (a data table may scroll
in its own box, the page never). A refused staff sign-in, second factor, reset or money form comes
back with the focus on the field to mend, marked invalid and described by its error (before, each
came back with a message at the top of the page and the focus nowhere: at 390 px the dashboard's
payout form is screens below it). At 390 px the walk also makes the every-page checks of each page
(test_every_page_browser.check_page: no table scrolled sideways, and in Chinese the producers' own
English marked so, with no English sentence outside the mark)."""
from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from werkzeug.exceptions import HTTPException

from tests.a11y import focused_after_load, problems
from tests.screens import assert_fits
from tests.site.test_browser import browser, running_site  # noqa: F401  (browser: a fixture)
from tests.site.test_every_page_browser import (  # noqa: F401 (names_as_written: a fixture)
    FILES,
    NOT_PAGES,
    SEED,
    check_page,
    names_as_written,
)
from tests.test_auth_staff import rfc6238

pytestmark = pytest.mark.browser

PRODUCER, PASSWORD = "producer@filmfund.test", "staff-keyboard-producer-password"
PARTNER, PARTNER_PASSWORD = "partner@xinxing.test", "staff-keyboard-partner-password"
LANGUAGES = ("en", "zh-Hans")
STAFF_AREAS = ("/admin", "/footage", "/partner")


@pytest.fixture(autouse=True)
def _user_per_request():
    """The server is a subprocess: no in-process app or database parameter here."""


# `filmfund demo seed --donations 40 --donors 20`, the every-page walk's update and stills, and
# `filmfund users create PARTNER --role partner --password-stdin`, in one process (each process
# importing the app costs the module seconds).
_MAKE = """import sys
from filmfund.cli import main
main(["demo", "seed", "--donations", "40", "--donors", "20"], standalone_mode=False)
main(["users", "create", sys.argv[1], "--role", "partner", "--password-stdin"], standalone_mode=False)
""" + SEED


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The site with the demo's donations, a published update and a draft, two stills, and the
    partner's account (a password, no second factor yet)."""
    with running_site(tmp_path_factory.mktemp("staff-keyboard"), PRODUCER, PASSWORD) as (base, env, log):
        made = subprocess.run([sys.executable, "-c", _MAKE, PARTNER], env=env, input=PARTNER_PASSWORD + "\n",
                              capture_output=True, text=True, timeout=120)
        assert made.returncode == 0, made.stderr
        yield base, env, log


def _type_into(page, selector: str, text: str) -> None:
    page.focus(selector)
    page.keyboard.press("Control+A")
    page.keyboard.type(text)


def _send(page) -> None:
    """Enter in the focused field: the form is sent, and its answer loaded."""
    with page.expect_navigation():
        page.keyboard.press("Enter")


def _password_step(page, base: str, email: str, password: str) -> None:
    """The sign-in page by the keyboard: the address, then the password behind its disclosure."""
    page.goto(base + "/login")
    _type_into(page, "#login-email", email)
    page.keyboard.press("Tab")  # to the disclosure "Producers and partners: ..."
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    page.keyboard.type(password)
    _send(page)


def _assert_refused_at(page, field: str) -> None:
    """The page came back with the focus in `field`, marked invalid and described by an error
    that says something."""
    assert focused_after_load(page, field) == field, page.evaluate("document.activeElement.outerHTML")
    assert page.get_attribute("#" + field, "aria-invalid") == "true", field
    described = (page.get_attribute("#" + field, "aria-describedby") or "").split()
    assert described and any(page.inner_text("#" + d).strip() for d in described), (field, described)
    box = page.evaluate("(() => { const r = document.activeElement.getBoundingClientRect(); "
                        "return [r.top, r.bottom]; })()")
    assert 0 <= box[0] and box[1] <= page.viewport_size["height"], box  # in sight, not screens below


@pytest.fixture(scope="module")
def producer(site, browser):  # noqa: F811
    """The producer's first sign-in, by the keyboard: the password, then the second factor's
    enrolment (a code computed from the key shown); (signed-in storage state, the key)."""
    base, _env, _log = site
    context = browser.new_context(viewport={"width": 390, "height": 900})
    page = context.new_page()
    _password_step(page, base, PRODUCER, PASSWORD)
    assert urlsplit(page.url).path == "/login/2fa/setup"
    secret = page.inner_text("#totp-secret").strip()
    _type_into(page, "#totp-code", rfc6238(secret, time.time()))
    _send(page)
    assert urlsplit(page.url).path == "/admin/"
    state = context.storage_state()
    context.close()
    return state, secret


@pytest.fixture(scope="module")
def partner_state(site, browser):  # noqa: F811
    base, _env, _log = site
    context = browser.new_context(viewport={"width": 390, "height": 900})
    page = context.new_page()
    _password_step(page, base, PARTNER, PARTNER_PASSWORD)
    assert urlsplit(page.url).path == "/admin/partner"
    state = context.storage_state()
    context.close()
    return state


@pytest.fixture(scope="module")
def staff_pages(site) -> tuple[list[str], object]:
    """The producers' pages without a parameter (the app's own URL map: a new page is walked
    without being named here), and the map's matcher for the pages with one."""
    _base, env, _log = site
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FILMFUND_INSTANCE_DIR", env["FILMFUND_INSTANCE_DIR"])
        from filmfund import create_app

        url_map = create_app().url_map
    paths = sorted({rule.rule for rule in url_map.iter_rules()
                    if "GET" in rule.methods and not rule.arguments and rule.rule.startswith(STAFF_AREAS)
                    and not rule.rule.endswith(FILES)})
    return paths, url_map.bind("localhost")


def _walk(page, base: str, start: list[str], routes, where: str, found: dict[str, list[str]],
          every_page: tuple[str, list[str]] | None = None) -> set[str]:
    """Open each page of `start`, then the first page linked of each endpoint with a parameter (a
    donor's, a reward's queue, an update, a clip, a month's statement) in the staff areas; adds
    each page's problems to `found`. `every_page` (the language, the names written as they are):
    each page also passes the every-page walk's checks. The endpoints seen."""
    queue, seen_endpoints, opened = list(start), set(), set()
    while queue:
        path = queue.pop(0)
        if path in opened:
            continue
        opened.add(path)
        answer = page.goto(base + path)
        if answer is None or not answer.headers.get("content-type", "").startswith("text/html"):
            continue  # a file behind a link (a receipt, a rendition), not a page
        if answer.status != 200:
            found.setdefault(f"answered {answer.status}", []).append(f"{where} {path}")
            continue
        assert urlsplit(page.url).path == path, f"{path} went to {page.url}"
        for problem in problems(page):
            found.setdefault(problem, []).append(f"{where} {path}")
        try:
            assert_fits(page)
        except AssertionError as err:
            found.setdefault(str(err).split(":")[0], []).append(where)
        if every_page is not None and not path.startswith(NOT_PAGES):  # the sign-in steps are not pages to check
            lang, names = every_page
            try:
                check_page(page, path, routes.match(path, method="GET")[0], "producer", lang, None, names)
            except AssertionError as err:
                found.setdefault(f"every-page check: {err}", []).append(f"{where} {path}")
        for href in page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)"):
            link = urlsplit(href).path
            if not href.startswith(base + "/") or not link.startswith(STAFF_AREAS) or link.endswith(FILES):
                continue
            try:
                endpoint, arguments = routes.match(link, method="GET")
            except HTTPException:
                continue
            if arguments and endpoint not in seen_endpoints and not endpoint.startswith("media.rendition"):
                seen_endpoints.add(endpoint)
                queue.append(link)
    return seen_endpoints


@pytest.mark.parametrize("width", [390, 1280])
def test_every_staff_page_reads_to_a_screen_reader(site, browser, producer, partner_state,  # noqa: F811
                                                   staff_pages, width, names_as_written):  # noqa: F811
    base, _env, _log = site
    paths, routes = staff_pages
    found: dict[str, list[str]] = {}
    reached: set[str] = set()
    for state, start, who in ((producer[0], paths, "producer"),
                              (partner_state, ["/admin/partner", "/login/2fa/setup"], "partner")):
        context = browser.new_context(storage_state=state, viewport={"width": width, "height": 900})
        page = context.new_page()
        try:
            for lang in LANGUAGES:
                page.goto(f"{base}/?lang={lang}")
                reached |= _walk(page, base, start, routes, f"{who} {lang}", found,
                                 (lang, names_as_written) if width == 390 else None)
                assert page.evaluate("document.documentElement.lang") == lang
        finally:
            context.close()
    assert found == {}, "\n".join(f"{p}  ({len(w)}: {', '.join(w[:3])})" for p, w in found.items())
    # The demo's data gives the walk these pages with a parameter, at least, to reach:
    assert {"donations_admin.donor_page", "fulfil_admin.queue", "comms.admin_update", "media.asset_page",
            "books.partner_month"} <= reached, reached
    assert len(paths) >= 15, paths


@pytest.mark.parametrize("lang", LANGUAGES)
def test_a_refused_staff_sign_in_puts_the_focus_on_the_field_to_mend(site, browser, producer, lang):  # noqa: F811
    """A mistyped password comes back with the disclosure open and the focus in the password
    field; after the right one, a wrong code comes back with the focus in the code's field. At
    390 px."""
    base, _env, _log = site
    context = browser.new_context(viewport={"width": 390, "height": 800})
    page = context.new_page()
    try:
        page.goto(f"{base}/?lang={lang}")
        _password_step(page, base, PRODUCER, "not the password at all")
        _assert_refused_at(page, "login-password")
        assert page.input_value("#login-email") == PRODUCER
        assert problems(page) == []
        page.keyboard.type(PASSWORD)
        _send(page)
        assert urlsplit(page.url).path == "/login/2fa"
        assert focused_after_load(page, "totp-code") == "totp-code"
        page.keyboard.type("000000")
        _send(page)
        _assert_refused_at(page, "totp-code")
        assert problems(page) == []
    finally:
        context.close()


def test_a_refused_enrolment_code_puts_the_focus_on_it(site, browser, partner_state):  # noqa: F811
    """The partner adds a second factor from its page: a wrong code comes back focused on the code."""
    base, _env, _log = site
    context = browser.new_context(storage_state=partner_state, viewport={"width": 390, "height": 800})
    page = context.new_page()
    try:
        page.goto(base + "/login/2fa/setup")
        _type_into(page, "#totp-code", "12345")
        _send(page)
        _assert_refused_at(page, "totp-code")
        assert problems(page) == []
    finally:
        context.close()


def _reset_link(instance: Path, address: str) -> str:
    import email
    import email.policy

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for path in (instance / "outbox").glob("*.eml"):
            msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            found = re.search(r"https?://\S+/login/reset/\S+", msg.get_body(("plain",)).get_content())
            if msg["To"] == address and found:
                return found.group(0)
        time.sleep(0.3)
    raise AssertionError(f"no reset link for {address} within 60 s")


@pytest.mark.parametrize("width", [390, 1280])
def test_the_password_reset_pages_read_to_a_screen_reader(site, browser, width):  # noqa: F811
    """The page asking for a link, reached from the sign-in page by its link, and where an unknown
    (old, mistyped) link leads: back to it, saying so."""
    base, _env, _log = site
    page = browser.new_page(viewport={"width": width, "height": 800})
    try:
        for lang in LANGUAGES:
            page.goto(f"{base}/login?lang={lang}")
            page.click("summary")
            with page.expect_navigation():
                page.click("a[href$='/login/reset']")  # "Forgot your password?"
            assert problems(page) == [], lang
            page.goto(base + "/login/reset/not-a-token")
            assert urlsplit(page.url).path == "/login/reset"
            assert page.locator("[role=alert]").count() == 1  # "That reset link has expired..."
            assert problems(page) == [], lang
    finally:
        page.close()


def test_the_password_reset_refusals_put_the_focus_on_the_field_to_mend(site, browser, producer):  # noqa: F811
    """Asking for a link with a mistyped address, then choosing a password too short, two that
    differ, none of the second factor's code: each comes back with the focus on the field to mend,
    in both languages, the new password's page read as the rules say at 390 and 1280 px. (Each
    page takes 10 tries in 5 minutes from one address: this test sends 3 and 6.)"""
    base, env, _log = site
    page = browser.new_page(viewport={"width": 390, "height": 800})
    try:
        for lang in LANGUAGES:
            page.goto(f"{base}/login/reset?lang={lang}")
            _type_into(page, "#reset-email", "not an address")
            _send(page)
            _assert_refused_at(page, "reset-email")
            assert problems(page) == [], lang
        _type_into(page, "#reset-email", PRODUCER)
        _send(page)
        link = _reset_link(Path(env["FILMFUND_INSTANCE_DIR"]), PRODUCER)
        for lang in LANGUAGES:
            page.goto(f"{base}/?lang={lang}")
            for width in (1280, 390):
                page.set_viewport_size({"width": width, "height": 800})
                page.goto(link)
                assert problems(page) == [], (lang, width)
            _type_into(page, "#reset-password", "short")
            page.keyboard.press("Tab")
            page.keyboard.type("short")
            _send(page)
            _assert_refused_at(page, "reset-password")
            assert problems(page) == [], lang
            page.keyboard.type("a long new password")
            page.keyboard.press("Tab")
            page.keyboard.type("a long new passwort")
            _send(page)
            _assert_refused_at(page, "reset-password")  # both typed again, from the first
            page.keyboard.type("a long new password")
            page.keyboard.press("Tab")
            page.keyboard.type("a long new password")
            _send(page)  # no code from the app
            _assert_refused_at(page, "reset-code")
            assert problems(page) == [], lang
    finally:
        page.close()


@pytest.mark.parametrize("lang", LANGUAGES)
def test_a_refused_money_form_puts_the_focus_on_the_field_to_mend(site, browser, producer, lang):  # noqa: F811
    """The dashboard's offline gift and payout forms are screens down a phone's page: a refusal
    comes back with the focus in the field it names, not at the top."""
    base, _env, _log = site
    context = browser.new_context(storage_state=producer[0], viewport={"width": 390, "height": 800})
    page = context.new_page()
    try:
        page.goto(f"{base}/?lang={lang}")
        page.goto(base + "/admin/")
        _type_into(page, "#off-email", "someone@example.org")
        page.keyboard.press("Tab")
        page.keyboard.type("twelve")
        _send(page)
        _assert_refused_at(page, "off-amount")
        assert page.input_value("#off-email") == "someone@example.org"
        _type_into(page, "#pay-amount", "10")
        _send(page)  # no bank reference
        _assert_refused_at(page, "pay-ref")
        assert problems(page) == []
    finally:
        context.close()
