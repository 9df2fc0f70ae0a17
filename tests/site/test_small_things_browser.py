"""Issue 14 item 5, "the small things that cost trust", each seen in a real browser (Debian's
chromium through Playwright) at a phone's 390 px and a desktop's 1280 px, over `filmfund run`.

With FILMFUND_TEST_SCREENSHOTS=1 the screenshots of each step are kept under the test's tmp folder
(printed at the end of the module); a page that does not fit is shot whatever the setting."""
from __future__ import annotations

import re
import time

import pytest

from tests.screens import assert_fits, assert_not_scrolled_sideways, one_line_each, shot
from tests.site.test_browser import (  # noqa: F401  (browser: a fixture)
    browser,
    give_in_browser,
    running_site,
    sign_in_donor,
    sign_in_link,
)

pytestmark = pytest.mark.browser

PASSWORD = "small-things-producer-password"
PRODUCER = "producer@filmfund.test"
WIDTHS = (390, 1280)


@pytest.fixture(autouse=True)
def _user_per_request():
    """The server is a subprocess: no in-process app or database parameter here."""


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    folder = tmp_path_factory.mktemp("small-things-screenshots")
    yield folder
    print(f"\nscreenshots of the small things: {folder}")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    with running_site(tmp_path_factory.mktemp("small-things"), PRODUCER, PASSWORD) as (base, env, log):
        yield base, env, log


def test_the_totp_setup_shows_a_qr_code_of_the_link(site, browser, shots):  # noqa: F811
    from playwright.sync_api import expect

    from tests.test_auth_staff import qr_modules, rfc6238, segno_modules

    base, _env, _log = site
    page = browser.new_page(viewport={"width": 390, "height": 800})
    page.goto(base + "/login")
    page.fill("#login-email", PRODUCER)
    page.click("summary")
    page.fill("#login-password", PASSWORD)
    page.click("button[type=submit].primary")
    page.wait_for_url("**/login/2fa/setup")
    qr = page.locator("#totp-qr svg")
    expect(qr).to_be_visible()
    uri = page.input_value("#totp-uri")
    assert qr_modules(qr.evaluate("n => n.outerHTML")) == segno_modules(uri)
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 800})
        box = qr.bounding_box()
        assert box["width"] >= 150 and box["x"] >= 0 and box["x"] + box["width"] <= width
        assert_fits(page, shots, f"totp-setup-{width}")
    _SECRET["totp"] = page.inner_text("#totp-secret").strip()
    page.fill("#totp-code", rfc6238(_SECRET["totp"], time.time()))
    page.click("button[type=submit].primary")
    page.wait_for_url("**/admin/")
    page.close()


def test_a_50_cent_pledge_gets_one_message_in_money(site, browser, shots):  # noqa: F811
    from playwright.sync_api import expect

    base, _env, _log = site
    for lang, said in (("en", "The smallest gift is $1.00."), ("zh", "捐款至少 US$1.00。")):
        page = browser.new_page(viewport={"width": 390, "height": 800}, locale="zh-CN" if lang == "zh" else "en-US")
        page.goto(base + "/")
        page.fill("#amount", "0.50")
        expect(page.locator("#tier-preview .field-error")).to_have_text(said)
        page.fill("#email", "small@example.org")
        page.click("button[type=submit].primary")
        page.wait_for_load_state()
        errors = page.locator(".field-error")
        expect(errors).to_have_count(1)
        expect(errors).to_have_text(said)
        assert "cents" not in page.inner_text("main") and "分" not in page.inner_text("#pledge-form")
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 800})
            assert_fits(page, shots, f"pledge-50-cents-{lang}-{width}")
        # typing again: the stale refusal goes, the live preview speaks (once)
        page.fill("#amount", "0.75")
        expect(page.locator(".field-error")).to_have_count(1)
        page.fill("#amount", "5")
        expect(page.locator(".field-error")).to_have_count(0)
        # what a full-width input method types, previewed as the server will read it
        page.fill("#amount", "５０．００")
        expect(page.locator("#tier-preview")).to_contain_text("US$50" if lang == "zh" else "$50")
        expect(page.locator(".field-error")).to_have_count(0)
        page.close()


def test_a_signed_out_visitor_of_a_supporters_update_is_asked_to_sign_in(site, browser, shots):  # noqa: F811
    from playwright.sync_api import expect

    base, env, _log = site
    for lang in ("en", "zh"):
        page = browser.new_page(viewport={"width": 390, "height": 800}, locale="zh-CN" if lang == "zh" else "en-US")
        resp = page.goto(base + "/updates/424242")
        assert resp.status == 401
        expect(page.locator("h1")).to_have_text("Sign in to read this update" if lang == "en" else "登录后阅读这条动态")
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 800})
            assert_fits(page, shots, f"update-sign-in-{lang}-{width}")
        page.click("#update-sign-in a.button")
        page.wait_for_url(re.compile(r".*/login\?next=.*updates.*424242"))
        page.close()


def _cli(env, *args) -> str:
    from tests.site.test_browser import _cli as run

    return run(env, *args)


def _mail_path(instance, email: str, subject_part: str, pattern: str) -> str:
    from email import policy
    from email.parser import BytesParser

    for path in sorted((instance / "outbox").glob("*.eml"), key=lambda p: p.stat().st_mtime_ns, reverse=True):
        msg = BytesParser(policy=policy.default).parse(path.open("rb"))
        if msg["To"] == email and subject_part in msg["Subject"]:
            return re.search(pattern, msg.get_body(("plain",)).get_content()).group(1)
    pytest.fail(f"no mail “{subject_part}” to {email} in the outbox")


def test_the_country_list_names_countries_in_the_pages_language(site, browser, shots):  # noqa: F811
    from pathlib import Path

    from playwright.sync_api import expect

    base, env, log = site
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    give_in_browser(page, base, "100", "countries@example.org")  # no address given: the survey asks for it
    assert "address surveys sent: 1" in _cli(env, "rewards", "remind")
    survey = _mail_path(Path(env["FILMFUND_INSTANCE_DIR"]), "countries@example.org", "send your rewards",
                        r"(/rewards/survey/\S+)")
    page.close()
    for lang, germany, china in (("en", "Germany", "China"), ("zh", "德国", "中国")):
        page = browser.new_page(viewport={"width": 390, "height": 800}, locale="zh-CN" if lang == "zh" else "en-US")
        # A mailed link opens in its donor's language (English: she gave on the English page), unless
        # the reader picks one: the Chinese page is asked for as the top bar's switch asks.
        page.goto(base + survey + ("?lang=zh-Hans" if lang == "zh" else ""))
        select = page.locator("#addr-country")
        expect(select.locator("option[value=DE]")).to_have_text(germany)
        expect(select.locator("option[value=CN]")).to_have_text(china)
        names = select.locator("option").all_inner_texts()[1:]
        from filmfund.fulfil.countries import ISO_COUNTRIES

        assert len(names) == len(ISO_COUNTRIES) and not [n for n in names if re.fullmatch(r"[A-Z]{2}", n)]
        if lang == "en":
            import unicodedata

            plain = [unicodedata.normalize("NFKD", n).encode("ascii", "ignore").decode().casefold() for n in names]
            assert plain == sorted(plain) and names.index("Côte d'Ivoire") < names.index("Croatia")
        page.select_option("#addr-country", label=germany)
        assert select.input_value() == "DE"
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 800})
            assert_fits(page, shots, f"countries-{lang}-{width}")
        page.close()


def _producer_page(browser, base: str, width: int = 1280):  # noqa: F811
    """A producer's page, signed in: the first time through the password and the second factor
    (enrolled then, or by the QR test), later in that session (a TOTP code is never taken twice)."""
    from tests.test_auth_staff import rfc6238

    if "state" in _SECRET:
        page = browser.new_context(viewport={"width": width, "height": 900}, storage_state=_SECRET["state"]).new_page()
        page.goto(base + "/admin/")
        return page
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    page.goto(base + "/login")
    page.fill("#login-email", PRODUCER)
    page.click("summary")
    page.fill("#login-password", PASSWORD)
    page.click("button[type=submit].primary")
    page.wait_for_url(re.compile(r".*/login/2fa(/setup)?$"))
    if page.url.endswith("/setup"):
        _SECRET["totp"] = page.inner_text("#totp-secret").strip()
        page.fill("#totp-code", rfc6238(_SECRET["totp"], time.time()))
    else:  # the QR test used this step's code: the next step's is still accepted
        page.fill("#totp-code", rfc6238(_SECRET["totp"], time.time() + 30))
    page.click("button[type=submit].primary")
    page.wait_for_url("**/admin/")
    _SECRET["state"] = context.storage_state()
    return page


_SECRET: dict = {}


def test_the_dashboard_at_1000_donations_is_folded_paged_and_agrees_with_the_rewards_page(site, browser, shots):  # noqa: F811
    base, env, _log = site
    _cli(env, "demo", "seed", "--donations", "1000")
    page = _producer_page(browser, base)
    owed_dash = {}
    for group in page.locator("details.fulfil-group").all():
        owed_dash[group.get_attribute("data-reward")] = int(
            group.locator(".count-owed").inner_text().split(" ")[0].replace(",", ""))
    assert page.locator("details.fulfil-group[open]").count() == 0
    height = page.evaluate("document.documentElement.scrollHeight")
    shot(page, shots / "dashboard-1000-1280.png")
    page.set_viewport_size({"width": 390, "height": 800})
    assert_fits(page)
    phone_height = page.evaluate("document.documentElement.scrollHeight")
    shot(page, shots / "dashboard-1000-390.png")
    print(f"\ndashboard at 1,000 donations: {height} px tall at 1280 px, {phone_height} px at 390 px")
    assert height < 8000, height

    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(base + "/admin/rewards")
    owed_rewards = {row.get_attribute("data-reward"): int(row.locator(".count-owed").inner_text())
                    for row in page.locator("#reward-queues tr[data-reward]").all()}
    assert owed_dash and all(owed_dash[k] == owed_rewards[k] for k in owed_dash), (owed_dash, owed_rewards)
    # The DVD: the demo's donors have no credit name (no profile), so no credit is owed to them
    # (a credit is owed only to the donors the credits print: fulfil/statement.LISTED).
    assert owed_dash["dvd"] > 20 and owed_dash["credit-name"] == 0

    # a reward unfolds and pages
    page.goto(base + "/admin/")
    page.click("#fulfil-dvd summary")
    rows = page.locator("#fulfil-dvd td.email")
    assert rows.count() == 10
    first = rows.first.inner_text()
    page.click("#fulfil-dvd a[rel=next]")
    page.wait_for_url("**fpage=2**")
    assert page.locator("#fulfil-dvd[open] td.email").count() == 10
    assert page.locator("#fulfil-dvd td.email").first.inner_text() != first
    page.close()


def test_the_asset_page_fits_a_phone(site, browser, shots, tmp_path):  # noqa: F811
    import subprocess

    base, env, _log = site
    clip = tmp_path / "phone-width.mp4"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25",
                    "-t", "1", "-pix_fmt", "yuv420p", str(clip)], check=True, timeout=120)
    out = _cli(env, "media", "ingest", "--wait", "--title", "A clip with a rather long title to wrap on a phone",
               str(clip))
    page = _producer_page(browser, base, 390)
    page.goto(base + "/footage/")
    assert_fits(page, shots, "footage-board-390")
    page.click("text=A clip with a rather long title")
    page.wait_for_load_state()
    assert_fits(page, shots, "asset-390")
    facts = page.inner_text("#asset-recorded")  # a file without a camera zone: the reader's zone, named
    assert "UTC" in facts, facts
    page.set_viewport_size({"width": 1280, "height": 900})
    assert_fits(page, shots, "asset-1280")
    assert out
    page.close()


def test_the_donors_account_and_the_export_a_person_reads(site, browser, shots):  # noqa: F811
    """A donor of $100 (wallpapers among the rewards, nothing published): no "In your downloads"
    above an empty list, and the readable export, in both languages."""
    from pathlib import Path

    from playwright.sync_api import expect

    base, env, _log = site
    address = "account.reader@example.org"  # their own: this test runs alone too (pytest -k)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    give_in_browser(page, base, "100", address)
    sign_in_donor(page, base, Path(env["FILMFUND_INSTANCE_DIR"]), address)
    for lang, says, donations in (("en", "Not published yet", "Your donations"), ("zh-Hans", "尚未发布", "您的捐款")):
        page.goto(f"{base}/account?lang={lang}")
        expect(page.locator("#reward-wallpapers")).to_contain_text(says)
        assert page.locator("#library-heading").count() == 0
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 900})
            assert_fits(page, shots, f"account-{lang}-{width}")
            # The gift's date and sum, each on one line ("2026年12月5日", not "2026 | 年12 | 月5 | 日").
            assert one_line_each(page, "td.date, td .money") == 3, "the date, the sum, the refunded sum"
            assert_not_scrolled_sideways(page, "#donations .table-wrap")
        page.click("#data-readable")
        page.wait_for_url("**/account/data/readable**")
        assert page.locator("section.data-section").count() > 10
        assert donations in page.inner_text("#data-donations h2")
        body = page.inner_text("#data-donations")
        assert ("$100.00" if lang == "en" else "US$100.00") in body and "10000" not in body
        assert ("UTC" if lang == "en" else "北京时间") in body
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 900})
            assert_fits(page, shots, f"data-readable-{lang}-{width}")
        page.set_viewport_size({"width": 1280, "height": 900})
    context.close()


def test_a_chinese_donor_types_as_her_input_method_does_and_her_long_address_fits(site, browser, shots):  # noqa: F811
    """The amount in full width, an address at a .中国 domain (the browser sends it as DNS has it),
    and that address, long, on her own pages at a phone's width in both languages."""
    from pathlib import Path

    base, env, _log = site
    typed = "xiaomei.wang.supporter.from.shanghai.pudong@例子.中国"
    stored = "xiaomei.wang.supporter.from.shanghai.pudong@xn--fsqu00a.xn--fiqs8s"
    page = browser.new_page(viewport={"width": 390, "height": 800}, locale="zh-CN")
    page.goto(base + "/?lang=zh-Hans")
    page.fill("#amount", "５０")
    page.fill("#email", typed)
    page.click("button[type=submit].primary")
    page.wait_for_url("**/checkout/test/**")
    assert "US$50.00" in page.inner_text("main")
    page.click("button[value=paid]")
    page.wait_for_url("**/thank-you**")
    # She signs in as she typed it, still in full-width mode: the form leaves the address to the
    # server (Chrome would refuse it, in the browser's language, with the page's own form unsent).
    # A typing mistake is said on the page, in the page's language, with what she typed kept.
    # (Both pages say the mistake at the field, tied to it: test_keyboard_browser, test_staff_keyboard_browser.)
    for lang, said in (("zh-Hans", "请填写有效的邮箱地址。"), ("en", "Give a valid email address.")):
        for path, field, error in (("/login", "#login-email", "#login-email-error"),
                                   ("/login/reset", "#reset-email", "#reset-email-error")):
            page.goto(f"{base}{path}?lang={lang}")
            page.fill(field, "mei@qq..com")
            page.click("form button[type=submit].primary")
            page.wait_for_selector(error)
            assert page.inner_text(error) == said and page.input_value(field) == "mei@qq..com"
            if path == "/login":  # she asked for a link: the staff's password stays folded away
                assert not page.is_visible("#login-password")
            assert_fits(page, shots, f"address-mistake{path.replace('/', '-')}-{lang}")
    page.goto(base + "/login?lang=zh-Hans")
    page.fill("#login-email", "".join(chr(ord(c) + 0xFEE0) for c in stored.split("@")[0]) + "＠例子。中国")
    page.click("form button[type=submit].primary")
    page.wait_for_selector(".flash.info")
    assert "登录链接" in page.inner_text(".flash.info")
    page.goto(sign_in_link(Path(env["FILMFUND_INSTANCE_DIR"]), stored))
    page.click("form button[type=submit]")
    page.wait_for_url("**/account**")
    for path in ("/account", "/account/data/readable"):
        for lang in ("zh-Hans", "en"):
            page.goto(f"{base}{path}?lang={lang}")
            assert typed in page.inner_text("main")  # as she wrote it, stored as DNS has it
            if path == "/account" and lang == "zh-Hans":
                # A reward's state (尚未发布, 待寄出) stays on one line: Chinese breaks between any two
                # characters, and "尚未 | 发布" split over two lines reads as two words.
                lines = page.eval_on_selector_all("#rewards-table .badge", """els => els.map(e => {
                    const r = document.createRange(); r.selectNodeContents(e); return [e.textContent, r.getClientRects().length]; })""")
                assert len(lines) >= 3 and all(n == 1 for _text, n in lines), lines
            assert_fits(page, shots, f"long-address{path.replace('/', '-')}-{lang}")
    page.close()


def test_an_invited_donor_chooses_her_time_zone_by_its_place_in_her_language(site, browser, shots):  # noqa: F811
    """A $750 donor's video chat: the producer proposes a time and invites; she reads the times
    in her zone, chosen in a list of places in the page's language (never "America/New_York"),
    the common ones first, and the page fits her phone."""
    from pathlib import Path

    from playwright.sync_api import expect

    base, env, _log = site
    donor = "chat-guest@example.org"
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    give_in_browser(page, base, "750", donor)
    page.close()
    staff = _producer_page(browser, base)
    staff.goto(base + "/admin/experiences")
    staff.select_option("#exp-reward", value="video-chat")
    staff.fill("#exp-title", "A video chat with the director")
    staff.click("form[action$='/admin/experiences'] button[type=submit]")
    staff.wait_for_url(re.compile(r".*/admin/experiences/\d+$"))
    staff.fill("#slot-start", f"{time.gmtime().tm_year + 1}-03-14T19:30")
    staff.select_option("#slot-tz", value="Asia/Shanghai")
    staff.click("form[action$='/slots'] button[type=submit]")
    staff.click("form[action$='/invite'] button[type=submit]")
    expect(staff.locator("#rsvp-counts")).to_contain_text(re.compile(r"[1-9]\d* not answered"))  # hers among them
    staff.close()

    page = browser.new_page(viewport={"width": 390, "height": 900}, locale="zh-CN")
    sign_in_donor(page, base, Path(env["FILMFUND_INSTANCE_DIR"]), donor)
    page.goto(base + "/account/invitations?lang=zh-Hans")
    page.click("main a[href*='/account/invitations/']")
    zone = page.locator("#tz")
    groups = zone.locator("optgroup")
    expect(groups.nth(0)).to_have_attribute("label", "常用时区")
    expect(zone.locator("option[value='Asia/Shanghai']")).to_have_text("北京时间")
    expect(zone.locator("option[value='America/New_York']")).to_have_text("美国（纽约）时间")
    names = zone.locator("option").all_inner_texts()
    assert len(names) > 300 and not [n for n in names if "/" in n or "_" in n], names[:5]
    page.select_option("#tz", label="美国（纽约）时间")
    page.click("form[action$='/time-zone'] button[type=submit]")
    expect(page.locator("#times-heading")).to_have_text("建议时间（北美东部时间）")
    assert zone.input_value() == "America/New_York"
    for lang in ("zh-Hans", "en"):
        page.goto(page.url.split("?")[0] + f"?lang={lang}")
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 900})
            assert_fits(page, shots, f"invitation-{lang}-{width}")
    expect(page.locator("#tz option[value='America/New_York']")).to_have_text("United States (New York) Time")
    page.close()


def test_the_producers_text_fields_span_their_form_on_a_phone(site, browser, shots):  # noqa: F811
    """A field written without a type (`<input name="title">`, a text field all the same) is as wide
    as its form, like the typed ones: the update's title was a 180 px box above a full-width text."""
    page = _producer_page(browser, site[0], width=390)
    for path in ("/admin/updates", "/admin/experiences"):
        page.goto(site[0] + path)
        page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
        widths = page.eval_on_selector_all("main form:not(.inline) input:not([type])", """els => els.map(e =>
            [e.id, Math.round(e.getBoundingClientRect().width), Math.round(e.form.getBoundingClientRect().width)])""")
        assert len(widths) >= 2 and all(w >= form - 2 for _id, w, form in widths), (path, widths)
        assert_fits(page, shots, f"producer-form{path.replace('/', '-')}")
    page.close()
