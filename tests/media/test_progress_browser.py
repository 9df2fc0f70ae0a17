"""Issue 14 item 3 in a real browser (`filmfund run` as a subprocess, Debian's chromium through
Playwright), at 1280 px and 390 px: an upload's bar moves (bytes, percent, time left) and the
upload resumes after its connection is cut twice (once after the server took the chunk, once
before); the asset page's bar follows the verify and transcode jobs and the page fills in when
they end; the credits page follows the roll's render and offers it when done. Never a reload.

ffmpeg runs through a wrapper that reads clips at half their real speed (`-readrate 0.5`), so that a 3 s clip's
jobs take seconds the page can be watched in."""
from __future__ import annotations

import hashlib
import shutil

import pytest

from tests.screens import assert_fits
from tests.site.test_browser import CHROMIUM, running_site, server_log_tail, sign_in_producer_first_time

pytestmark = pytest.mark.browser

EMAIL, PASSWORD = "progress@filmfund.test", "progress-producer-password"
CHUNK = 256 * 1024

# Records every value a bar takes, and every text shown beside it, from the first paint on.
WATCH = """
window.__bars = []; window.__texts = [];
new MutationObserver(function () {
  document.querySelectorAll("progress").forEach(function (p) {
    var v = p.getAttribute("data-sent") || String(p.value);
    var key = (p.closest("[id]") || document.body).id + ":" + v;
    if (window.__bars.indexOf(key) < 0) { window.__bars.push(key); }
  });
  document.querySelectorAll(".upload-status, .job-status, .roll-status").forEach(function (t) {
    if (t.textContent && window.__texts.indexOf(t.textContent) < 0) { window.__texts.push(t.textContent); }
  });
}).observe(document, { subtree: true, childList: true, attributes: true, characterData: true });
window.__sameDocument = "yes";
"""


@pytest.fixture(autouse=True)
def _user_per_request():
    """No in-process app here (nor a database parameter): the server is a subprocess."""


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tools = tmp_path_factory.mktemp("tools")
    slow = tools / "ffmpeg-at-real-speed"
    slow.write_text('#!/bin/sh\ncase " $* " in *lavfi*) ;; *" -progress "*) exec ffmpeg -readrate 0.5 "$@";; esac\n'
                    'exec ffmpeg "$@"\n')
    slow.chmod(0o755)
    settings = {"FILMFUND_MEDIA_UPLOAD_CHUNK": str(CHUNK), "FILMFUND_MEDIA_HEARTBEAT_SECONDS": "0.3",
                "FILMFUND_FFMPEG": str(slow)}
    with running_site(tmp_path_factory.mktemp("progress-instance"), EMAIL, PASSWORD, settings) as started:
        yield started


@pytest.fixture(scope="module")
def page(site):
    from playwright.sync_api import sync_playwright

    base, _env, _log = site
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM,
                                     args=["--no-sandbox", "--disable-background-networking", "--disable-gpu"])
        try:
            pg = browser.new_page(viewport={"width": 1280, "height": 900})
            sign_in_producer_first_time(pg, base, EMAIL, PASSWORD)
            pg.add_init_script(WATCH)
            yield pg
        finally:
            browser.close()


@pytest.mark.parametrize("width,clip", [(1280, "long.MTS"), (390, "00001.MTS")])
def test_an_upload_shows_its_bytes_and_resumes_after_a_cut(site, page, clips, tmp_path, width, clip):
    from playwright.sync_api import expect

    base, _env, log = site
    page.set_viewport_size({"width": width, "height": 900})
    footage = tmp_path / f"A001_{width}.MTS"
    shutil.copy(clips / clip, footage)
    data = footage.read_bytes()
    assert len(data) > 8 * CHUNK  # a few MB: many chunks

    patches = []

    def cut(route):
        if route.request.method != "PATCH":
            return route.continue_()
        patches.append(route.request.headers.get("upload-offset"))
        if len(patches) == 3:  # the server takes this chunk, the browser never hears back
            route.fetch()
            return route.abort("connectionreset")
        if len(patches) == 6:  # this one is cut before it reaches the server
            return route.abort("connectionreset")
        return route.continue_()

    page.route("**/footage/uploads/resumable/*", cut)
    try:
        page.goto(base + "/footage/")
        page.click("details.footage-upload summary")
        page.set_input_files("#upload-form input[type=file]", str(footage))
        page.fill("#upload-form input[name=title]", f"Upload at {width}")
        page.click("#upload-form button[type=submit]")
        done = page.locator("#upload-progress li[data-done]")
        expect(done).to_be_visible(timeout=60000)
        assert_fits(page)
        bars = [int(k.split(":")[1]) for k in page.evaluate("window.__bars") if k.startswith("upload-progress:")
                and k.split(":")[1].isdigit()]
        texts = page.evaluate("window.__texts")
        # The bar moved through many byte counts to the whole file, with the time left shown.
        assert len(set(bars)) >= 8 and max(bars) == len(data), bars
        assert any(" left" in t and " of " in t for t in texts), texts
        assert any("connection lost, resuming" in t for t in texts), texts
        # After the first cut the browser asked, and went on from the server's offset (the chunk it
        # never heard about was not sent again); after the second it sent the lost chunk again.
        offsets = [int(o) for o in patches]
        assert offsets[3] == offsets[2] + CHUNK and offsets[6] == offsets[5], offsets
        assert page.evaluate("window.__sameDocument") == "yes"
        # The asset is the very bytes of the file.
        done.locator("a").click()
        page.wait_for_url("**/footage/*")
        expect(page.locator("h1")).to_contain_text(f"Upload at {width}")
        assert hashlib.sha256(data).hexdigest() in page.inner_text("table")
    except AssertionError:
        print(server_log_tail(log))
        raise
    finally:
        page.unroute("**/footage/uploads/resumable/*")


def test_the_asset_page_follows_its_jobs_without_a_reload(site, page, clips, tmp_path):
    from playwright.sync_api import expect

    base, env, log = site
    from tests.site.test_browser import _cli

    clip = tmp_path / "Night interview.MTS"
    shutil.copy(clips / "good_1080i.MTS", clip)  # bytes no other test here uploads
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 900})
        if width == 390:  # make the proxy again: a transcode alone
            page.click("#asset-live tr:has(a:text-is('proxy')) button:has-text('Make again')")
        else:
            asset_id = _cli(env, "media", "ingest", str(clip)).split()[0]
            page.goto(f"{base}/footage/{asset_id}")
        try:
            expect(page.locator("#job-progress")).to_be_visible(timeout=20000)
            # Measured once the page has its stylesheets: before, the strip has its natural width.
            page.wait_for_load_state("load")
            assert_fits(page)
            expect(page.locator("#asset-live")).to_have_attribute("data-state", "ready", timeout=120000)
            expect(page.locator("#job-progress")).to_be_hidden(timeout=20000)
            values = {float(k.split(":")[1]) for k in page.evaluate("window.__bars")
                      if k.startswith("job-progress:")}
            between = sorted(v for v in values if 0 < v < 1)
            assert len(between) >= 2, (width, values, page.evaluate("window.__texts"))  # the bar moved
            texts = page.evaluate("window.__texts")
            assert any("running" in t and "%" in t for t in texts), texts
            if width == 1280:
                assert any(" left" in t for t in texts), texts
                expect(page.locator("video.proxy")).to_be_visible()  # filled in when the job ended
                assert page.evaluate("window.__sameDocument") == "yes", "the page reloaded"
        except AssertionError:
            print(server_log_tail(log))
            raise
        if width == 1280:
            page.reload()  # the retry button's form posts and redirects: watch the new page


def test_the_credits_page_follows_the_roll_until_it_can_be_downloaded(site, page):
    from playwright.sync_api import expect

    base, _env, log = site
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 900})
        page.goto(base + "/admin/credits")
        page.click("#roll button[type=submit]")
        try:
            expect(page.locator("#roll-progress")).to_be_visible()
            page.evaluate("window.__sameDocument = 'after the post'")
            assert_fits(page)
            expect(page.locator("#roll")).to_have_attribute("data-status", "succeeded", timeout=120000)
            expect(page.locator("#roll-download")).to_be_visible()
            expect(page.locator("#roll-progress")).to_be_hidden()
            texts = page.evaluate("window.__texts")
            assert any("rendered" in t and "%" in t for t in texts), texts
            assert page.evaluate("window.__sameDocument") == "after the post", "the page reloaded"
            assert "reload" not in page.inner_text("main")
            expect(page.locator("#roll-finished")).to_contain_text("rendered")
        except AssertionError:
            print(server_log_tail(log))
            raise
