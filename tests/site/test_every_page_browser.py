"""Every page of the site at a phone's 390 px, in English and in Chinese, seen by the person it is
for: the visitor's public pages, a donor's account pages, the producers' pages (these in
test_staff_keyboard_browser.py's walk, which opens them at 390 px anyway: `check_page` here). The list is the
app's own (every GET route without a parameter that answers with a page), so a page added later is
checked without being named here. Each page must answer, be the page asked for (not a sign-in
redirect), and fit the screen, its tables included: none scrolls sideways in its box. The site is
`filmfund run` with demo donations. In Chinese, the pages of the visitor, the donor and the partner
hold no English sentence (a run of two English words or more), people's and brands' names aside: a
text left unmarked, or a label falling back to a field's name, shows there. The producers' own
pages are written in English for the crew (README, "How producers translate the site's texts"):
their body is marked `lang="en"`, so that a screen reader does not read English with a Chinese
voice, and no English sentence is left outside that mark (their top bar and messages are in
Chinese). Four of them are translated (TRANSLATED_PRODUCER_PAGES: their templates set
`translated_page`): in Chinese they are Chinese pages, their body not marked English."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from werkzeug.exceptions import HTTPException

from tests.screens import assert_fits, tables_scrolled_sideways
from tests.site.test_access_matrix import MATRIX
from tests.site.test_browser import (  # noqa: F401  (browser: the module's chromium fixture)
    _cli,
    browser,
    running_site,
    sign_in_donor,
    sign_in_producer_first_time,
)

pytestmark = pytest.mark.browser
PRODUCER, PASSWORD = "producer@filmfund.test", "every-page-producer-password"
DONOR = "donor-0000003@demo.filmfund.invalid"  # a demo donor (`filmfund demo seed`)
NOT_PAGES = ("/api/", "/static/", "/webhooks/", "/hls/", "/stream/", "/healthz", "/login/2fa", "/logout")
FILES = (".csv", ".txt", ".pdf", ".json", ".xml", ".ics", ".vtt", ".mp4", ".ico")
DOWNLOADS = {"/account/data"}  # the JSON export, a file (its page is /account/data/readable)
# Pages that are "not found" without what they show (their not-found page is checked instead):
NOT_FOUND_WITHOUT = {"/thank-you": "a pledge (?pledge=)"}
# Pages that send their reader elsewhere without it, saying why (the page reached is checked):
ELSEWHERE_WITHOUT = {"/account/credits": "/account"}  # a line in the credits to proofread: to the settings
READERS = {"anon": "visitor", "donor_a": "donor", "producer": "producer"}  # the matrix's role: this test's reader
ENGLISH_RUN = re.compile(r"[A-Za-z][A-Za-z'’]+(?:[ ,.:;-]+[A-Za-z][A-Za-z'’]+)+")
NAMES_AS_WRITTEN = re.compile(r"Stripe|Xinxing|filmfund|example|demo|@")  # brands, the partner, demo accounts
# The producers' pages whose every text goes through the catalogue (`{% set translated_page = true %}`
# in their templates): Chinese throughout in Chinese, like the visitor's and the donor's.
TRANSLATED_PRODUCER_PAGES = {"site.campaign_editor", "site.page_editor", "books.expenses_page", "site.sharing_report"}


def _english_left(text: str, names: list[str]) -> list[str]:
    """The runs of English words in a page's text, but the names written so (the crew's, from the
    campaign file) and brands."""
    return sorted({run for run in ENGLISH_RUN.findall(text)
                   if " " in run  # "export.donor_data", "zh-Hans": codes and tags, not words
                   and not NAMES_AS_WRITTEN.search(run) and not any(run in name for name in names)})


@pytest.fixture(scope="module")
def names_as_written() -> list[str]:
    from filmfund.config import BUNDLED_CAMPAIGN
    from filmfund.rewards.campaign_file import read_campaign_file

    return [member["name"] for member in read_campaign_file(BUNDLED_CAMPAIGN).page["crew"]]


@pytest.fixture(autouse=True)
def _user_per_request():
    """The server is a subprocess: no in-process app nor database parameter."""


def _in_chinese_throughout(endpoint: str, reader: str) -> bool:
    """Whether this page is one the visitor, a donor or the partner reads (the access matrix's
    say), or a translated producers' page, and so written in both languages."""
    return (reader != "producer" or MATRIX[(endpoint, "GET")][2]["partner"] == 200
            or endpoint in TRANSLATED_PRODUCER_PAGES)


def _read_as_chinese(page) -> str:
    """The text a screen reader reads with a Chinese voice: the page's, but what is marked English."""
    return page.evaluate("""() => {
        document.body.querySelectorAll('[lang]:not([lang|="zh"])').forEach(e => e.remove());
        return document.body.innerText; }""")


def _marked_english(page) -> bool:
    """Whether the page's body (inside <main>) is marked as English."""
    return page.evaluate("""() => !!document.querySelector('main > [lang="en"]')""")


def _reader(endpoint: str) -> str:
    """Who the page is for, as the access matrix (the suite's one table of who may reach what)
    says: the first of a visitor, a donor and a producer it lets in."""
    statuses = MATRIX[(endpoint, "GET")][2]
    readers = [reader for role, reader in READERS.items() if statuses[role] == 200]
    assert readers, f"{endpoint}: the access matrix lets no reader in"
    return readers[0]


# The demo has no production update: one published with its Chinese version (its page offers
# the versions' form) and an older draft (its page, the draft's form), written as producers do.
# Nor footage: two ready stills (made directly, no ffmpeg), one with a Chinese title, both in the
# $1 tier's wallpapers and the first also on the campaign page, so that the footage page, the
# donor's library and the gallery are seen with what they show.
SEED = """
import io
from PIL import Image
from filmfund import create_app
from filmfund.comms import updates
from filmfund.extensions import db
from filmfund.media import services
from filmfund.media.models import Asset, AssetKind, AssetState, Publication, Rendition, RenditionKind, Source

with create_app().app_context():
    updates.create_update(title="Edit begins", body="A draft, not sent.", audience="donors")
    db.session.commit()
    sent = updates.create_update(title="Shoot day 12", body="We filmed in **Shenzhen**.", audience="everyone",
                                 translations={"zh-Hans": {"title": "拍摄第十二天", "body": "我们在**深圳**拍摄。"}})
    db.session.commit()
    updates.publish_update(sent.id)
    db.session.commit()
    for n, (title, versions, rewards) in enumerate((
            ("The village at dawn", {"zh-Hans": {"title": "黎明时的村庄"}}, ("public", "wallpapers")),
            ("Grandmother's courtyard", {}, ("wallpapers",)))):
        jpeg = io.BytesIO()
        Image.new("RGB", (1280, 720), (40 + 60 * n, 60, 90)).save(jpeg, "JPEG")
        stored = services.storage().put_stream(io.BytesIO(jpeg.getvalue()), ".jpg")
        still = Asset(title=title, translations=versions, sha256=stored.sha256, size=stored.size,
                      kind=AssetKind.IMAGE, state=AssetState.READY)
        still.sources.append(Source(position=0, original_name=f"DSC0000{n}.JPG", sha256=stored.sha256,
                                    size=stored.size, storage_key=stored.key))
        for kind in (RenditionKind.IMAGE, RenditionKind.POSTER):
            still.renditions.append(Rendition(kind=kind, storage_key=stored.key, sha256=stored.sha256,
                                              size=stored.size, content_type="image/jpeg", width=1280, height=720))
        still.publications.extend(Publication(reward_key=key) for key in rewards)
        db.session.add(still)
    db.session.commit()
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    with running_site(tmp_path_factory.mktemp("every-page"), PRODUCER, PASSWORD) as (base, env, log):
        _cli(env, "demo", "seed", "--donations", "40", "--donors", "20")
        made = subprocess.run([sys.executable, "-c", SEED], env=env, capture_output=True, text=True, timeout=120)
        assert made.returncode == 0, made.stderr
        yield base, env, log


@pytest.fixture(scope="module")
def pages(site) -> dict:
    """The app's pages by their reader, read from the URL map of an app built on the site's settings."""
    _base, env, _log = site
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FILMFUND_INSTANCE_DIR", env["FILMFUND_INSTANCE_DIR"])
        from filmfund import create_app

        url_map = create_app().url_map
    rules = list(url_map.iter_rules())
    by_reader: dict[str, list[str]] = {"visitor": [], "donor": [], "producer": []}
    endpoints = {}
    for rule in sorted(rules, key=lambda r: r.rule):
        if "GET" in rule.methods and not rule.arguments and not rule.rule.startswith(NOT_PAGES) \
                and not rule.rule.endswith(FILES) and rule.rule not in DOWNLOADS:
            by_reader[_reader(rule.endpoint)].append(rule.rule)
            endpoints[rule.rule] = rule.endpoint
    assert all(by_reader.values()), by_reader  # the split found each reader's pages
    return {**by_reader, "endpoints": endpoints, "routes": url_map.bind("localhost")}


def _linked_pages(page, base: str, routes, found: dict[str, str]) -> None:
    """Adds to `found` (endpoint: path) the pages with a parameter in their address (a reward's,
    a donor's, a month's statement) that this page links to, the first link of each endpoint:
    those pages are checked as the reader reaches them, with the site's own data."""
    for href in page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)"):
        if not href.startswith(base + "/"):
            continue
        path = urlsplit(href).path
        if path.startswith(NOT_PAGES) or path.endswith(FILES):
            continue
        try:
            endpoint, arguments = routes.match(path, method="GET")
        except HTTPException:  # not one of the app's pages (a redirect's target, a 404)
            continue
        if arguments:
            found.setdefault(endpoint, path)


def check_page(page, path: str, endpoint: str, reader: str, lang: str, shots: Path | None, names: list[str]) -> None:
    """The page just opened: in the language asked, no wider than the screen, no table scrolled
    sideways; in Chinese, no English sentence left where the reader reads Chinese."""
    assert page.evaluate("document.documentElement.lang") == lang, (path, lang)
    assert_fits(page, shots, f"{reader}-{lang}{path.replace('/', '_')}")
    assert tables_scrolled_sideways(page) == [], (lang, path)
    if lang == "zh-Hans":
        assert _marked_english(page) == (not _in_chinese_throughout(endpoint, reader)), path
        assert _english_left(_read_as_chinese(page), names) == [], path


def _signed_in(browser, base: str, env, reader: str):  # noqa: F811
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    if reader == "producer":
        sign_in_producer_first_time(page, base, PRODUCER, PASSWORD)
    elif reader == "donor":
        sign_in_donor(page, base, Path(env["FILMFUND_INSTANCE_DIR"]), DONOR)
    return page


@pytest.mark.parametrize("reader", ["visitor", "donor"])  # the producers' pages: the staff walk
def test_every_page_fits_a_phone_in_both_languages(site, pages, browser, reader, tmp_path,  # noqa: F811
                                                   names_as_written):
    base, env, log = site
    page = _signed_in(browser, base, env, reader)
    page.set_viewport_size({"width": 390, "height": 900})
    linked: dict[str, str] = {}  # the pages with a parameter, reached by a link: endpoint -> path
    try:
        for lang in ("en", "zh-Hans"):
            page.goto(f"{base}/?lang={lang}")  # the language is kept (cookie, and a donor's profile)
            for path in pages[reader]:
                answer = page.goto(base + path)
                expected = 404 if path in NOT_FOUND_WITHOUT else 200
                assert answer is not None and answer.status == expected, (lang, path, answer and answer.status)
                reached = base + ELSEWHERE_WITHOUT.get(path, path)
                assert page.url.split("?")[0].split("#")[0] == reached, f"{path} as {reader} went to {page.url}"
                check_page(page, path, pages["endpoints"][path], reader, lang, tmp_path, names_as_written)
                _linked_pages(page, base, pages["routes"], linked)
            for endpoint, path in sorted(linked.items()):
                head = page.request.get(base + path)
                if not head.headers.get("content-type", "").startswith("text/html"):
                    continue  # a file behind a link (a receipt's PDF, a rendition), not a page
                answer = page.goto(base + path)
                assert answer is not None and answer.status == 200, (lang, path, answer and answer.status)
                check_page(page, path, endpoint, reader, lang, tmp_path, names_as_written)
        # The footage each reader sees, in Chinese: the title the producers wrote in Chinese, and
        # the one they did not in English, each marked with its language.
        page.goto(f"{base}/account?lang=zh-Hans" if reader == "donor" else f"{base}/?lang=zh-Hans")
        titles = page.eval_on_selector_all(".library-title, #gallery img", """els => els.map(e =>
            [e.getAttribute('lang'), e.tagName == 'IMG' ? e.getAttribute('alt') : e.textContent.trim()])""")
        expected = {"donor": [["zh-Hans", "黎明时的村庄"], ["en", "Grandmother's courtyard"]],
                    "visitor": [["zh-Hans", "黎明时的村庄"]]}.get(reader)
        if expected is not None:
            assert sorted(titles) == sorted(expected), titles
    finally:
        page.close()
    assert [line for line in log.read_text().splitlines() if "Traceback" in line] == []
