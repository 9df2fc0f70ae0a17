"""A clip's or still's title in the site's other languages: the crew names footage in English,
and a donor reading Chinese got "Behind the scenes" in their library, in the name of the file they
saved and under the campaign page's stills. The producers can now write each title's Chinese
version (the asset page, the API); every reader sees the version in their language, the main
title otherwise, each marked with the language it is in (publishing.shown_title)."""
from __future__ import annotations

import io
import re
from urllib.parse import unquote, urlparse

import pytest

ZH = "幕后花絮"


def _csrf(client, url):
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get(url).get_data(as_text=True)).group(1)


def _reward(key):
    from filmfund.extensions import db
    from filmfund.rewards.models import Reward

    return db.session.scalar(db.select(Reward).where(Reward.key == key))


@pytest.fixture
def clip_for_donor(app, campaign, client, make_user, token_for, ready_asset, entitle):
    """A ready clip published to the video-clips reward, and a donor who holds it."""
    asset = ready_asset("Behind the scenes")
    producer, donor = make_user(role="producer"), make_user(role="donor")
    entitle(donor, _reward("video-clips"))
    resp = client.post(f"/api/v1/media/assets/{asset.public_id}/publish", json={"reward": "video-clips"},
                       headers=token_for(producer))
    assert resp.status_code == 201, resp.get_json()
    return asset, producer, donor


def _library_title(html: str) -> tuple[str, str]:
    found = re.search(r'<strong class="library-title" lang="([^"]+)">([^<]+)</strong>', html)
    assert found, html[:2000]
    return found.group(1), found.group(2)


def test_the_asset_page_writes_a_chinese_title_that_chinese_readers_get(app, client, login_as, clip_for_donor):
    from filmfund.media import services

    asset, producer, donor = clip_for_donor
    login_as(client, producer)
    page = f"/footage/{asset.public_id}"
    assert 'name="title:zh-Hans" lang="zh-Hans"' in client.get(page).get_data(as_text=True)
    resp = client.post(page, data={"csrf_token": _csrf(client, page), "title": "Behind the scenes",
                                   "notes": "day 12", "title:zh-Hans": f"  {ZH} "}, follow_redirects=True)
    assert resp.status_code == 200 and "Saved." in resp.get_data(as_text=True)
    assert services.get_asset(asset.public_id).translations == {"zh-Hans": {"title": ZH}}
    assert f'value="{ZH}"' in resp.get_data(as_text=True)  # the form shows what is stored

    login_as(client, donor)
    assert _library_title(client.get("/account?lang=zh-Hans").get_data(as_text=True)) == ("zh-Hans", ZH)
    assert _library_title(client.get("/account?lang=en").get_data(as_text=True)) == ("en", "Behind the scenes")
    # The file a Chinese reader saves is named by the title they read (the UTF-8 name, RFC 5987).
    from filmfund.i18n import in_language

    with app.test_request_context("/"), in_language("zh-Hans"):
        [item] = services.library_for(donor)
    assert item["title"] == ZH and item["title_lang"] == "zh-Hans"
    resp = client.get(urlparse(item["download_url"]).path + "?lang=zh-Hans")
    assert resp.status_code == 200
    disposition = resp.headers["Content-Disposition"]
    assert unquote(disposition.split("filename*=UTF-8''", 1)[1]) == f"{ZH}.mp4", disposition

    # Left blank, the version is gone: Chinese readers get the main title again, marked English.
    login_as(client, producer)
    client.post(page, data={"csrf_token": _csrf(client, page), "title": "Behind the scenes", "title:zh-Hans": " "})
    assert services.get_asset(asset.public_id).translations == {}
    login_as(client, donor)
    assert _library_title(client.get("/account?lang=zh-Hans").get_data(as_text=True)) == ("en", "Behind the scenes")


def test_a_title_keeps_what_prints_on_one_line(app, client, token_for, clip_for_donor):
    """What the donors read of a title (their library, their file's name) is what prints: a bidi
    override (which turns "gpj.exe" around), a zero-width space and a line break are not kept."""
    from filmfund.media import services

    asset, producer, _donor = clip_for_donor
    url = f"/api/v1/media/assets/{asset.public_id}/translations"
    resp = client.put(url, json={"translations": {"zh-Hans": {"title": "幕后\u200b花絮\n\u202egpj.4pm"}}},
                      headers=token_for(producer))
    assert resp.status_code == 200, resp.get_json()
    assert services.get_asset(asset.public_id).translations == {"zh-Hans": {"title": "幕后花絮 gpj.4pm"}}
    resp = client.put(url, json={"translations": {"zh-Hans": {"title": "\u200b\u202e"}}}, headers=token_for(producer))
    assert resp.status_code == 400 and resp.get_json()["error"]["code"] == "invalid_title"


def test_a_post_without_the_versions_leaves_them(app, client, login_as, clip_for_donor):
    from filmfund.extensions import db
    from filmfund.media import services

    asset, producer, _donor = clip_for_donor
    asset.translations = {"zh-Hans": {"title": ZH}}
    db.session.commit()
    login_as(client, producer)
    page = f"/footage/{asset.public_id}"
    resp = client.post(page, data={"csrf_token": _csrf(client, page), "title": "Behind the scenes, cut 2"})
    assert resp.status_code == 303
    stored = services.get_asset(asset.public_id)
    assert stored.title == "Behind the scenes, cut 2" and stored.translations == {"zh-Hans": {"title": ZH}}


def test_the_api_replaces_the_versions_and_the_library_reads_them(app, client, token_for, clip_for_donor):
    from filmfund.audit import AuditEntry
    from filmfund.extensions import db

    asset, producer, donor = clip_for_donor
    url = f"/api/v1/media/assets/{asset.public_id}/translations"
    resp = client.put(url, json={"translations": {"zh-Hans": {"title": ZH}}}, headers=token_for(producer))
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["translations"] == {"zh-Hans": {"title": ZH}}
    listed = client.get("/api/v1/media/assets", headers=token_for(producer)).get_json()["items"]
    assert [a["translations"] for a in listed if a["id"] == asset.public_id] == [{"zh-Hans": {"title": ZH}}]
    entries = db.session.scalars(db.select(AuditEntry).where(
        AuditEntry.action == "write.media_api.set_asset_title_versions")).all()
    assert entries, "the producer's write is in the audit log"

    for lang, title in (("zh-Hans", ZH), ("en", "Behind the scenes")):
        resp = client.get("/api/v1/library", headers={**token_for(donor), "Accept-Language": lang})
        [item] = resp.get_json()["items"]
        assert (item["title"], item["title_lang"]) == (title, lang)

    # Refused, each with its reason, and nothing changed.
    for body, code in (({"translations": {"fr": {"title": "Les coulisses"}}}, "invalid_translations"),
                       ({"translations": {"zh-Hans": {"title": "   "}}}, "invalid_translations"),
                       ({"translations": {"zh-Hans": {"title": "x" * 301}}}, "invalid_translations"),
                       ({}, "missing_field")):
        resp = client.put(url, json=body, headers=token_for(producer))
        assert resp.status_code == 400 and resp.get_json()["error"]["code"] == code, (body, resp.get_json())
    assert client.put(url, json={"translations": {}}, headers=token_for(donor)).status_code == 403
    assert client.put(url, json={"translations": {}}).status_code == 401
    assert client.put("/api/v1/media/assets/nosuchasset/translations", json={"translations": {}},
                      headers=token_for(producer)).status_code == 404
    db.session.expire_all()
    assert db.session.get(type(asset), asset.id).translations == {"zh-Hans": {"title": ZH}}

    # {} removes them all.
    resp = client.put(url, json={"translations": {}}, headers=token_for(producer))
    assert resp.status_code == 200 and resp.get_json()["translations"] == {}


def test_the_campaign_page_shows_a_still_by_its_readers_title(app, campaign, client):
    from filmfund.extensions import db
    from filmfund.media import services
    from filmfund.media.models import Asset, AssetKind, AssetState, Publication, Rendition, RenditionKind

    store = services.storage()
    jpeg = store.put_stream(io.BytesIO(b"\xff\xd8\xff\xe0" + b"still" * 100), ".jpg")
    still = Asset(title="The village at dawn", translations={"zh-Hans": {"title": "黎明时的村庄"}},
                  sha256=jpeg.sha256, size=jpeg.size, kind=AssetKind.IMAGE, state=AssetState.READY)
    for kind in (RenditionKind.IMAGE, RenditionKind.POSTER):
        still.renditions.append(Rendition(kind=kind, storage_key=jpeg.key, sha256=jpeg.sha256, size=jpeg.size,
                                          content_type="image/jpeg", width=640, height=360))
    still.publications.append(Publication(reward_key="public"))
    db.session.add(still)
    db.session.commit()

    for lang, alt in (("zh-Hans", "黎明时的村庄"), ("en", "The village at dawn")):
        html = client.get(f"/?lang={lang}").get_data(as_text=True)
        gallery = html[html.index('id="gallery"'):html.index("</ul>", html.index('id="gallery"'))]
        assert f'alt="{alt}" lang="{lang}"' in gallery, gallery

