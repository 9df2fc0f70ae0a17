"""The footage API's and pages' refusals in the reader's language (contract, Languages: every API
error message in English and Simplified Chinese, its code never changing), and in English where
no one asks (a command, a job)."""
from __future__ import annotations

import re

import pytest

ZH = {"Accept-Language": "zh-Hans"}
HAN = re.compile(r"[\u4e00-\u9fff]")
MISSING = "0" * 32


def _error(resp) -> dict:
    body = resp.get_json()
    assert isinstance(body, dict) and "error" in body, resp.get_data(as_text=True)[:300]
    return body["error"]


def test_the_footage_api_says_no_in_chinese_with_the_same_codes(app, client, make_user, token_for, campaign,
                                                                ready_asset):
    producer = token_for(make_user("producer@filmfund.test", "producer"))
    clip = ready_asset("Clip one").public_id
    cases = [  # method, path, body, status, code, the English message
        ("get", "/api/v1/media/assets?state=zzz", None, 400, "invalid_state", "Unknown state 'zzz'."),
        ("get", "/api/v1/media/assets?day=zzz", None, 400, "invalid_day", "A day is written YYYY-MM-DD."),
        ("get", "/api/v1/media/assets?day=2026-02-30", None, 400, "invalid_day", "A day is written YYYY-MM-DD."),
        ("post", f"/api/v1/media/assets/{MISSING}/publish", {"reward": "video-clips"}, 404, "not_found",
         "No such asset."),
        ("post", f"/api/v1/media/assets/{clip}/publish", {"reward": "zzz-9"}, 400, "unknown_reward",
         "The campaign has no reward with key 'zzz-9'."),
        ("post", f"/api/v1/media/assets/{clip}/publish", {"reward": "video-clips", "rendition": "proxy"}, 400,
         "invalid_rendition", "The proxy rendition is not made for donors (it keeps the camera's metadata); "
                              "publish the web rendition or a still."),
        ("post", f"/api/v1/media/assets/{clip}/unpublish", {"reward": "video-clips"}, 404, "not_found",
         "This asset is not published to that reward."),
    ]
    for method, path, body, status, code, english in cases:
        kwargs = {"json": body} if body is not None else {}
        en = getattr(client, method)(path, headers=producer, **kwargs)
        zh = getattr(client, method)(path, headers={**producer, **ZH}, **kwargs)
        assert (en.status_code, zh.status_code) == (status, status), (path, en.status_code, zh.status_code)
        assert _error(en) == {"code": code, "message": english}, path
        assert _error(zh)["code"] == code, path
        said = _error(zh)["message"]
        assert HAN.search(said) and said != english, (path, said)
        # Only what is not a word of a sentence stays Latin: a value the client sent, a format, a code.
        assert not re.search(r"\b(?:such|Unknown|written|campaign|published|rendition|donors)\b", said), (path, said)


def test_a_physical_reward_is_refused_in_chinese_by_its_chinese_title(client, make_user, token_for, campaign,
                                                                     ready_asset):
    producer = token_for(make_user("producer@filmfund.test", "producer"))
    clip = ready_asset("Clip one").public_id
    url = f"/api/v1/media/assets/{clip}/publish"
    en = _error(client.post(url, json={"reward": "dvd"}, headers=producer))
    zh = _error(client.post(url, json={"reward": "dvd"}, headers={**producer, **ZH}))
    assert en["code"] == zh["code"] == "not_digital_reward"
    assert en["message"].startswith("“A DVD of the finished film” is a physical reward: footage can only be")
    assert "成片 DVD 一张" in zh["message"] and "A DVD" not in zh["message"], zh["message"]
    assert "physical" not in zh["message"] and "footage" not in zh["message"], zh["message"]


def test_the_asset_page_flashes_a_refusal_in_the_readers_language(app, client, producer, login_as, campaign,
                                                                 ready_asset):
    clip = ready_asset("Clip one").public_id
    login_as(client, producer)
    page = f"/footage/{clip}"
    token = re.search(r'name="csrf_token" value="([^"]+)"',
                      client.get(page, headers=ZH).get_data(as_text=True)).group(1)
    html = client.post(f"{page}/publish", data={"csrf_token": token, "reward": "dvd"}, headers=ZH,
                       follow_redirects=True).get_data(as_text=True)
    flashed = re.search(r'<p class="flash error" role="alert">([^<]*)</p>', html)
    assert flashed, html[:2000]
    assert "成片 DVD 一张" in flashed.group(1) and HAN.search(flashed.group(1).replace("成片 DVD 一张", ""))
    assert "footage can only be published" not in flashed.group(1)


def test_a_refusal_outside_a_request_is_english(app):
    """A command or a job (an app context, no request) builds the same messages, in English."""
    from filmfund.errors import NotFoundError, ValidationError
    from filmfund.media import services

    with app.app_context():
        with pytest.raises(NotFoundError) as missing:
            services.get_asset(MISSING)
        assert missing.value.message == "No such asset." and missing.value.code == "not_found"
        with pytest.raises(ValidationError) as day:
            services.find_assets(day="zzz")
        assert day.value.message == "A day is written YYYY-MM-DD." and day.value.code == "invalid_day"
