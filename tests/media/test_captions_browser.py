"""Captions in a real browser (issue 15 item 3): `filmfund run` as a subprocess, chromium through
Playwright. A producer publishes a clip to the $50 tier's video clips and adds its Chinese captions
(pasted) and English ones (an SRT file) on the asset's page; a donor who gave $55 opens the library on
a 390 px phone (and a 1280 px screen), in English and in Chinese, and the player offers both
languages' tracks, loaded."""
from __future__ import annotations

import re

import uuid

import pytest

from tests.media.test_captions import EN_SRT, ZH
from tests.screens import assert_fits
from tests.site.test_browser import (  # noqa: F401  (browser: a fixture)
    _cli,
    browser,
    give_in_browser,
    running_site,
    server_log_tail,
    sign_in_donor,
    sign_in_producer_first_time,
)
from tests.waiting import wait_until

pytestmark = pytest.mark.browser

PASSWORD = "captions-producer-password"
PRODUCER = "captions@filmfund.test"


@pytest.fixture(autouse=True)
def _user_per_request():
    """No in-process app here (nor a database parameter): the server is a subprocess."""


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    instance = tmp_path_factory.mktemp("captions-instance")
    with running_site(instance, PRODUCER, PASSWORD) as (base, env, log):
        yield base, env, log, instance


def _reload_until(page, url, selector, timeout=120):
    def shown():
        page.goto(url)
        return page.locator(selector).count() > 0
    wait_until(shown, timeout=timeout, interval=1.0, message=f"{selector} on {url}")


def test_producer_adds_captions_and_a_donor_player_offers_both_languages(site, browser, clips, tmp_path):
    from playwright.sync_api import expect

    base, env, log, instance = site
    clip = tmp_path / "Village interview.mp4"
    clip.write_bytes((clips / "small.mp4").read_bytes())
    asset_id = _cli(env, "media", "ingest", str(clip)).split()[0]
    srt = tmp_path / "interview.en.srt"
    srt.write_text(EN_SRT, encoding="utf-8")
    try:
        producer = browser.new_context(viewport={"width": 1280, "height": 900})
        page = producer.new_page()
        sign_in_producer_first_time(page, base, PRODUCER, PASSWORD)
        asset_url = f"{base}/footage/{asset_id}"
        _reload_until(page, asset_url, "h1 .badge.state-ready")
        page.select_option(".publish-form select[name=reward]", "video-clips")
        page.click(".publish-form button[type=submit]")
        expect(page.locator(".publications")).to_contain_text("Exclusive video clips")

        add = page.locator("#caption-add")
        add.locator("input[name=lang]").fill("zh-Hans")
        add.locator("textarea[name=text]").fill(ZH)
        add.locator("select[name=status]").select_option("final")
        add.locator("button[type=submit]").click()
        expect(page.locator('.caption-lang[data-lang="zh-Hans"]')).to_have_attribute("data-status", "final")
        add = page.locator("#caption-add")
        add.locator("input[name=lang]").fill("en")
        add.locator("input[type=file]").set_input_files(str(srt))
        add.locator("input[name=translated_from]").fill("zh-Hans")
        add.locator("select[name=status]").select_option("final")
        add.locator("button[type=submit]").click()
        expect(page.locator('.caption-lang[data-lang="en"]')).to_have_attribute("data-status", "final")
        expect(page.locator('.caption-lang[data-lang="en"]')).to_contain_text("translated from zh-Hans")
        # The editor: the stored WebVTT, sanitised, in an editable box.
        zh = page.locator('.caption-lang[data-lang="zh-Hans"]')
        zh.locator("summary").click()
        stored = zh.locator("textarea").input_value()
        assert "我们在村里拍了三天" in stored and "<script" not in stored and "onerror" not in stored
        zh.locator("select[name=status]").select_option("draft")
        zh.locator("button", has_text="Save zh-Hans").click()
        expect(page.locator('.caption-lang[data-lang="zh-Hans"]')).to_have_attribute("data-status", "draft")
        zh = page.locator('.caption-lang[data-lang="zh-Hans"]')
        zh.locator("summary").click()
        zh.locator("select[name=status]").select_option("final")
        zh.locator("button", has_text="Save zh-Hans").click()
        expect(page.locator('.caption-lang[data-lang="zh-Hans"]')).to_have_attribute("data-status", "final")
        assert_fits(page, tmp_path, "producer-captions-1280")
        page.set_viewport_size({"width": 390, "height": 900})
        page.goto(asset_url + "#captions")
        assert_fits(page, tmp_path, "producer-captions-390")
        producer.close()

        # A donor gives $55 (the $50 tier: exclusive video clips) and signs in on a phone.
        donor = browser.new_context(viewport={"width": 390, "height": 900}, locale="en-US")
        page = donor.new_page()
        address = f"donor-{uuid.uuid4().hex[:8]}@example.org"
        give_in_browser(page, base, "55", address)
        expect(page.locator("#payment-status")).to_have_attribute("data-state", "paid", timeout=20000)
        sign_in_donor(page, base, instance, address)
        player = f'.library-item[data-asset-id="{asset_id}"] video.library-player'
        _reload_until(page, base + "/account?lang=en", player)  # the web rendition is made at publish

        for lang, default in (("en", "en"), ("zh-Hans", "zh-Hans")):
            page.goto(f"{base}/account?lang={lang}")
            tracks = page.locator(f"{player} track")
            expect(tracks).to_have_count(2)
            assert [tracks.nth(i).get_attribute("srclang") for i in range(2)] == ["zh-Hans", "en"]
            assert [tracks.nth(i).get_attribute("label") for i in range(2)] == ["中文", "English"]
            assert page.locator(f"{player} track[default]").get_attribute("srclang") == default
            # The browser itself fetches and parses both tracks (the donor's session, entitlement checked).
            page.eval_on_selector(player, "v => { for (const t of v.textTracks) t.mode = 'hidden'; v.load(); }")
            page.wait_for_function("""sel => { const v = document.querySelector(sel);
                return v && v.textTracks.length === 2 && [...v.textTracks].every(t => t.cues && t.cues.length === 2); }""",
                                   arg=player, timeout=20000)
            cues = page.eval_on_selector(player, "v => [...v.textTracks].map(t => [t.language, t.cues[0].text])")
            assert cues[0][0] == "zh-Hans" and "我们在村里拍了三天" in cues[0][1]
            assert cues[1][0] == "en" and "for three days" in cues[1][1]
            # No markup of the captions runs: the page's only scripts are the site's own files
            # (js/player.js plays the HLS stream).
            scripts = re.findall(r"<script[^>]*>", page.content())
            assert scripts and all(tag.startswith('<script src="/static/') for tag in scripts), scripts
            expect(page.locator(f'.library-item[data-asset-id="{asset_id}"] .library-captions a')).to_have_count(2)
            assert_fits(page, tmp_path, f"donor-library-{lang}-390")
            page.set_viewport_size({"width": 1280, "height": 900})
            assert_fits(page, tmp_path, f"donor-library-{lang}-1280")
            page.set_viewport_size({"width": 390, "height": 900})
        donor.close()
    except AssertionError:
        print(server_log_tail(log))
        raise
