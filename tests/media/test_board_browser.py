"""The footage board in a real browser (issue 6, item 7): `filmfund run` (site and embedded worker)
as a subprocess, Debian's chromium through Playwright. A producer has the board open; a clip is
ingested from the command line; its card appears and moves to "ready" with its poster, and the
page was never reloaded."""
from __future__ import annotations


import pytest

from tests.site.test_browser import CHROMIUM, _cli, running_site, server_log_tail, sign_in_producer_first_time

pytestmark = pytest.mark.browser

PASSWORD = "board-producer-password"


@pytest.fixture(autouse=True)
def _user_per_request():
    """No in-process app here (nor a database parameter): the server is a subprocess."""


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    with running_site(tmp_path_factory.mktemp("board-instance"), "board@filmfund.test", PASSWORD) as started:
        yield started


def test_board_shows_a_new_clip_and_its_progress_without_a_reload(site, clips, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    base, env, log = site
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM,
                                     args=["--no-sandbox", "--disable-background-networking", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            sign_in_producer_first_time(page, base, "board@filmfund.test", PASSWORD)
            page.goto(base + "/footage/")
            expect(page.locator("#footage-board li.empty")).to_be_visible()
            page.evaluate("window.__sameDocument = 'yes'")  # gone if the page reloads

            clip = tmp_path / "Interview at dusk.mp4"
            clip.write_bytes((clips / "small.mp4").read_bytes())
            out = _cli(env, "media", "ingest", str(clip))
            asset_id = out.split()[0]

            card = page.locator(f'#footage-board li[data-asset-id="{asset_id}"]')
            expect(card).to_be_visible(timeout=20000)
            expect(card.locator(".title")).to_have_text("Interview at dusk")
            expect(page.locator("#asset-count")).to_have_text("1")
            expect(card).to_have_attribute("data-state", "ready", timeout=90000)
            expect(card.locator("img.poster")).to_be_visible()
            assert page.evaluate("window.__sameDocument") == "yes", "the board reloaded"
            assert page.locator("#footage-board li.empty").count() == 0
        except AssertionError:
            print(server_log_tail(log))
            raise
        finally:
            browser.close()
