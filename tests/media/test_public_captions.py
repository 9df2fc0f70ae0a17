"""The public trailer's captions (a11y probe F5): a video published to everyone has its final captions
at `/public/<asset>/captions/<lang>.vtt`, served like its poster and clip (re-checked on each request,
public a minute, 404 for a draft or an asset not public now, never "it exists"), and the campaign
page's `<video id="trailer">` has a `<track kind="captions">` per language, on by default in the
page's language. Captions added or edited later show on the next view of the page."""
from __future__ import annotations

import re

import pytest

from tests.media.test_captions import EN_SRT, ZH, _put


@pytest.fixture
def producer(make_user, token_for):
    return token_for(make_user(role="producer"))


def _publish(client, headers, asset, reward="public", undo=False):
    resp = client.post(f"/api/v1/media/assets/{asset.public_id}/{'unpublish' if undo else 'publish'}",
                       json={"reward": reward}, headers=headers)
    assert resp.status_code in (200, 201), resp.get_json()


def _add_poster(asset):
    from filmfund.extensions import db
    from filmfund.media.models import Rendition, RenditionKind

    web = asset.rendition("web")
    asset.renditions.append(Rendition(kind=RenditionKind.POSTER, storage_key=web.storage_key, sha256=web.sha256,
                                      size=web.size, content_type="image/jpeg"))
    db.session.commit()


def _tracks(client, lang):
    html = client.get(f"/?lang={lang}").get_data(as_text=True)
    video = re.search(r'<video id="trailer".*?</video>', html, re.S)
    if video is None:
        return None
    return re.findall(r'<track kind="captions" srclang="([^"]+)" label="([^"]*)"\s+src="([^"]+)"( default)?>',
                      video.group(0))


def test_the_trailer_has_its_final_captions_as_public_tracks(app, client, campaign, producer, ready_asset):
    asset = ready_asset("Village interview")
    assert _put(client, producer, asset, "en", EN_SRT, "application/x-subrip").status_code == 204
    assert _put(client, producer, asset, "zh-Hans", ZH).status_code == 204
    assert _put(client, producer, asset, "fr", EN_SRT, "application/x-subrip", status="draft").status_code == 204
    url = f"/public/{asset.public_id}/captions/zh-Hans.vtt"
    unknown = client.get("/public/no-such-asset/captions/zh-Hans.vtt")
    assert unknown.status_code == 404

    def as_unknown(resp):  # the same answer as for an asset that does not exist (its page names its URL)
        return resp.status_code == 404 and resp.data.replace(asset.public_id.encode(), b"no-such-asset") == unknown.data

    assert as_unknown(client.get(url))  # captions of a clip that is not public: as if there were none

    _publish(client, producer, asset)
    zh = _tracks(client, "zh-Hans")
    assert [(lang, label, default) for lang, label, _src, default in zh] == [
        ("zh-Hans", "中文", " default"), ("en", "English", "")]  # the draft is not offered
    assert [lang for lang, _label, _src, default in _tracks(client, "en") if default] == ["en"]

    src = zh[0][2].replace("&amp;", "&")
    assert src.startswith(url + "?v=")
    got = client.get(src)
    assert got.status_code == 200 and got.mimetype == "text/vtt" and got.headers["Content-Language"] == "zh-Hans"
    assert "我们在村里拍了三天" in got.get_data(as_text=True) and "<script" not in got.get_data(as_text=True)
    # the same headers as the other public files: cacheable a minute, no sniffing, the site's CSP
    video = client.get(f"/public/{asset.public_id}/video.mp4")
    assert got.headers["Cache-Control"] == video.headers["Cache-Control"] == "public, max-age=60"
    for header in ("X-Content-Type-Options", "Content-Security-Policy", "Referrer-Policy"):
        assert got.headers[header] == video.headers[header], header
    assert "Content-Disposition" not in got.headers
    for missing in ("fr", "de", "zh-hans"):  # a draft, a language it has none in, a tag not as stored
        assert client.get(f"/public/{asset.public_id}/captions/{missing}.vtt").status_code == 404

    # Added and edited later: the page shows them on its next view, at a new URL for new words.
    assert _put(client, producer, asset, "fr", EN_SRT, "application/x-subrip", status="final").status_code == 204
    edited = EN_SRT.replace("three", "four")
    assert _put(client, producer, asset, "en", edited, "application/x-subrip").status_code == 204
    after = _tracks(client, "en")
    assert [lang for lang, *_rest in after] == ["zh-Hans", "en", "fr"]
    assert after[0][2] == zh[0][2] and after[1][2] != zh[1][2]
    assert "four days" in client.get(after[1][2].replace("&amp;", "&")).get_data(as_text=True)

    # Taken back to draft, then the clip taken down: its captions go with it.
    assert _put(client, producer, asset, "fr", EN_SRT, "application/x-subrip", status="draft").status_code == 204
    assert [lang for lang, *_rest in _tracks(client, "en")] == ["zh-Hans", "en"]
    assert client.get(f"/public/{asset.public_id}/captions/fr.vtt").status_code == 404
    _publish(client, producer, asset, undo=True)
    assert as_unknown(client.get(url))
    assert _tracks(client, "en") is None


def test_captions_of_a_clip_for_donors_only_or_public_as_a_poster_are_not_public(
        app, client, campaign, producer, ready_asset, campaign_reward):
    donors_only = ready_asset("For donors")
    _publish(client, producer, donors_only, reward="digital-download")
    assert _put(client, producer, donors_only, "en", EN_SRT, "application/x-subrip").status_code == 204
    assert client.get(f"/public/{donors_only.public_id}/captions/en.vtt").status_code == 404

    poster_only = ready_asset("Its poster only")
    _add_poster(poster_only)
    assert _put(client, producer, poster_only, "en", EN_SRT, "application/x-subrip").status_code == 204
    resp = client.post(f"/api/v1/media/assets/{poster_only.public_id}/publish",
                       json={"reward": "public", "rendition": "poster"}, headers=producer)
    assert resp.status_code == 201, resp.get_json()  # a video published as its poster gives no clip, nor captions
    assert client.get(f"/public/{poster_only.public_id}/poster.jpg").status_code == 200
    assert client.get(f"/public/{poster_only.public_id}/captions/en.vtt").status_code == 404
