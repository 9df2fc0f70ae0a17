"""Streams in a real browser (issue 15 item 2): Debian's chromium, driven by Playwright, plays the
public trailer on the campaign page and a donor's clip on their account page from the HLS
streams, through hls.js served from the site itself; the video's currentTime advances. This
chromium decodes H.264 through MSE (MediaSource.isTypeSupported('video/mp4; codecs="avc1..."')
is true), so the test asks for real playback, not only for fetched segments. The campaign page's
first view does not load hls.js (it comes when the trailer is played). 390 px in English,
1280 px in Chinese."""
from __future__ import annotations

import pytest

from tests.screens import assert_fits
from tests.media.test_streaming import clip, live  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.one_database]
CHROMIUM = "/usr/bin/chromium"


def _play(page, selector: str) -> None:
    page.locator(selector).first.scroll_into_view_if_needed()
    page.locator(selector).first.click()  # a real click on the video: a user's gesture starts it
    page.wait_for_function("(sel) => document.querySelector(sel).currentTime > 1.0", arg=selector, timeout=30000)


def test_trailer_and_library_clip_play_from_hls_in_chromium(app, client, clip, drain, make_user, login_as,  # noqa: F811
                                                           entitle, live):  # noqa: F811
    from playwright.sync_api import sync_playwright

    from filmfund.extensions import db
    from filmfund.media import services
    from filmfund.rewards.campaign import current_campaign
    from filmfund.rewards.models import Reward

    current_campaign()
    [result] = services.ingest_paths([clip])
    drain()
    asset = services.get_asset(result.asset.public_id)
    services.publish(asset, "video-clips")
    db.session.commit()
    services.publish(services.get_asset(asset.public_id), "public")
    db.session.commit()
    drain()
    donor = make_user(role="donor")
    entitle(donor, db.session.query(Reward).filter_by(key="video-clips").first())
    login_as(client, donor)
    client.get("/account")
    cookie = client.get_cookie(app.config.get("SESSION_COOKIE_NAME", "session"))

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu",
                                                                      "--autoplay-policy=no-user-gesture-required"])
        try:
            for width, lang in ((390, "en"), (1280, "zh-Hans")):
                context = browser.new_context(viewport={"width": width, "height": 800}, timezone_id="Asia/Shanghai")
                page = context.new_page()
                requests: list[str] = []
                errors: list[str] = []
                page.on("request", lambda r: requests.append(r.url))
                page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
                page.goto(f"{live}/?lang={lang}")
                page.wait_for_load_state("load")
                assert not [u for u in requests if "hls.light" in u]  # the first view carries no player
                assert all(u.startswith(live) for u in requests), requests  # nothing from another host
                _play(page, "#trailer")
                assert page.get_attribute("#trailer", "data-stream-state") == "hls.js"
                assert [u for u in requests if u.endswith("/static/vendor/hls.js/hls.light.min.js")]
                assert [u for u in requests if "/hls/s/v" in u and u.endswith(".ts")]
                assert_fits(page)

                context.add_cookies([{"name": cookie.key, "value": cookie.value, "url": live}])
                requests.clear()
                page.goto(f"{live}/account?lang={lang}")
                _play(page, "video.library-player")
                assert page.get_attribute("video.library-player", "data-stream-state") == "hls.js"
                assert [u for u in requests if "/stream/" in u and u.endswith(".ts")]
                assert_fits(page)
                # The screening page says when in the reader's zone (the bundled file's window: Sept 2027).
                page.goto(f"{live}/screening?lang={lang}")
                when = page.locator("time[data-local]").first
                assert "UTC" not in when.inner_text() and "2027" in when.inner_text()
                assert ("20:00" in when.inner_text() or "8:00" in when.inner_text())  # 20:00 in Shanghai
                if lang == "zh-Hans":  # written by the page in Beijing time: kept as Chinese readers say it
                    assert "北京时间" in when.inner_text() and "GMT" not in when.inner_text()
                assert_fits(page)
                assert not [e for e in errors if "Content Security Policy" in e or "Refused" in e], errors
                context.close()
        finally:
            browser.close()
