"""A download's name is cut to 150 characters with its extension kept (storage.content_disposition):
a title may be 300 characters (board.TITLE_MAX), and a long one downloaded as a file without
`.mp4` (or captions without `.vtt`) that a phone or a desktop does not know how to open."""
from __future__ import annotations

import re
from urllib.parse import parse_qs, unquote, urlparse

import pytest

TITLE = "采访记录：" + "王明讲述他的儿子在二〇〇七年春天于深圳火车站附近走失之后的寻找经过" * 6


def _names(disposition: str) -> tuple[str, str]:
    """(the UTF-8 name browsers read, the ASCII fallback)."""
    return (unquote(disposition.split("filename*=UTF-8''", 1)[1]),
            re.search(r'filename="([^"]*)"', disposition).group(1))


def test_a_long_name_keeps_its_extension_and_its_language():
    from filmfund.media.storage import content_disposition

    for tail in (".mp4", ".zh-Hans.vtt", ".en.vtt"):
        utf8, fallback = _names(content_disposition(TITLE + tail))
        assert utf8.endswith(tail) and len(utf8) == 150 and utf8.startswith("采访记录：王明")
        assert fallback.endswith(tail) and len(fallback) <= 150
    utf8, fallback = _names(content_disposition("Interview with Wang Ming day " + "3" * 200 + ".mp4"))
    assert utf8 == fallback and utf8.endswith("333.mp4") and len(utf8) == 150
    assert _names(content_disposition("访谈.mp4")) == ("访谈.mp4", "download.mp4")  # short: as it was


@pytest.mark.parametrize("storage_backend", ["file", "s3"])
def test_a_long_title_downloads_with_its_extension(app, client, make_user, token_for, ready_asset, campaign_reward,
                                                   entitle, storage_backend):
    asset = ready_asset(TITLE, payload=b"L" * 3000)
    producer = token_for(make_user(role="producer"))
    assert client.post(f"/api/v1/media/assets/{asset.public_id}/publish", json={"reward": "digital-download"},
                       headers=producer).status_code == 201
    assert client.put(f"/api/v1/media/assets/{asset.public_id}/captions/zh-Hans",
                      data="WEBVTT\n\n00:00:00.000 --> 00:00:01.000\n你好\n".encode(),
                      headers={**producer, "Content-Type": "text/vtt"}).status_code == 204
    donor = make_user(role="donor")
    entitle(donor, campaign_reward["digital-download"])
    [item] = client.get("/api/v1/library", headers=token_for(donor)).get_json()["items"]
    if storage_backend == "s3":
        disposition = parse_qs(urlparse(item["download_url"]).query)["response-content-disposition"][0]
    else:
        disposition = client.get(urlparse(item["download_url"]).path).headers["Content-Disposition"]
    utf8, fallback = _names(disposition)
    assert utf8.endswith(".mp4") and utf8.startswith("采访记录") and fallback == "download.mp4"
    [caption] = item["captions"]
    utf8, fallback = _names(client.get(urlparse(caption["url"]).path).headers["Content-Disposition"])
    assert utf8.endswith(".zh-Hans.vtt") and fallback.endswith(".vtt")
