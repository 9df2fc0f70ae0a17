"""Publishing from the asset page and the donor library (issue 6, items 6-8), end to end with
real ffmpeg: a phone clip (long GOP) and a photo that both carry GPS, device, serial and comment
metadata are ingested, published to a digital reward from the page, and what a donor can
download, play or see of them is proven free of location metadata. Physical rewards are
refused with a clear message on the page and in the API; unpublishing takes an item back."""
from __future__ import annotations

import re
import urllib.request
from urllib.parse import urlparse

import pytest

from filmfund.media import ffmpeg
from tests.media.located import assert_no_location, located_clip, located_jpeg


@pytest.fixture
def storage_backend(request):
    # The end-to-end test runs SQLite with the local folder and PostgreSQL with S3 (moto): both
    # backends, the encodes run twice. The others test local links (an S3 link lasts its TTL).
    postgres = request.node.callspec.params.get("database_url") == "postgresql"
    return "s3" if postgres and request.node.name.startswith("test_a_donor_gets") else "file"


def _csrf(client, url):
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get(url).get_data(as_text=True)).group(1)


def _fetch(client, url: str, headers: dict | None = None) -> tuple[int, bytes, dict]:
    """GET a library URL: through the app (local storage), or following its redirect to S3."""
    parsed = urlparse(url)
    if parsed.path.startswith("/library") or not parsed.netloc or parsed.netloc == "localhost":
        resp = client.get(parsed.path + (f"?{parsed.query}" if parsed.query else ""), headers=headers or {})
        if resp.status_code in (301, 302, 303):
            return _fetch(client, resp.headers["Location"], headers)
        return resp.status_code, resp.get_data(), dict(resp.headers)
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=20) as r:
        return r.status, r.read(), dict(r.headers)


def test_a_donor_gets_copies_free_of_location_metadata(app, client, tmp_path, drain, make_user, login_as,
                                                       campaign, entitle, storage_backend):
    from filmfund.media import services
    from filmfund.media.models import AssetState
    from filmfund.rewards.models import Reward

    folder = tmp_path / "phone"
    folder.mkdir()
    located_clip(folder / "interview.mp4")   # long GOP (250), GPS in QuickTime, 3GPP and mdta keys
    located_jpeg(folder / "house.jpg")        # EXIF GPS IFD, XMP, IPTC, comment
    results = services.ingest_paths([folder])
    drain()
    assets = {r.asset.title: services.get_asset(r.asset.public_id) for r in results}
    clip, photo = assets["interview"], assets["house"]
    assert clip.state == AssetState.READY and photo.state == AssetState.READY, (clip.problems, photo.problems)

    producer = make_user(role="producer")
    login_as(client, producer)
    for asset in (clip, photo):
        page = f"/footage/{asset.public_id}"
        html = client.get(page).get_data(as_text=True)
        assert "Exclusive video clips" in html and "Production stills" in html  # rewards by title
        assert "A DVD of the finished film (physical: cannot carry footage)" in html
        resp = client.post(f"{page}/publish", data={"csrf_token": _csrf(client, page), "reward": "video-clips"})
        assert resp.status_code == 303
        html = client.get(page).get_data(as_text=True)
        assert "Published to “Exclusive video clips”." in html  # the flash
        assert 'class="badge published-to">Exclusive video clips<' in html
    assert "Exclusive video clips" in client.get("/footage/").get_data(as_text=True)  # board badge
    assert drain() == 1  # the clip's web rendition for donors is made now, at its first publish

    donor = make_user(role="donor")
    entitle(donor, db_reward(Reward, "video-clips"))
    with app.test_request_context("/account"):
        items = {i["title"]: i for i in services.library_for(donor)}
    assert set(items) == {"interview", "house"}
    video, still = items["interview"], items["house"]
    assert video["reward_title"] == still["reward_title"] == "Exclusive video clips"
    assert video["duration"] and 1.5 < video["duration"] < 2.5 and video["size"] > 0
    assert video["play_url"] and video["poster_url"] and still["play_url"] is None

    login_as(client, donor)
    account = client.get("/account").get_data(as_text=True)
    assert "<video" in account and "Exclusive video clips" in account and "0:02" in account

    # Every file the donor can fetch: the download, the player's source, the posters.
    status, data, _ = _fetch(client, video["download_url"])
    assert status == 200
    probe_path = tmp_path / "downloaded.mp4"
    probe_path.write_bytes(data)
    probe = ffmpeg.probe(str(probe_path))
    assert probe["format"]["tags"].get("title") == "interview"
    assert_no_location(data, probe)
    assert data != (folder / "interview.mp4").read_bytes()
    status, part, headers = _fetch(client, video["play_url"], {"Range": "bytes=0-1023"})
    assert status == 206 and len(part) == 1024 and part == data[:1024]
    for url in (video["poster_url"], still["poster_url"], still["download_url"]):
        status, data, _ = _fetch(client, url)
        assert status == 200 and data[:2] == b"\xff\xd8"
        assert_no_location(data)
    original = services.get_asset(photo.public_id).sources[0].storage_key
    assert services.entitled_download(donor, photo.public_id).storage_key != original  # never the original


def db_reward(Reward, key):
    from filmfund.extensions import db

    return db.session.scalar(db.select(Reward).where(Reward.key == key))


def test_physical_rewards_are_refused_with_a_clear_message(app, client, make_user, login_as, token_for,
                                                           ready_asset, campaign):
    asset = ready_asset("Rough cut")
    producer = make_user(role="producer")
    resp = client.post(f"/api/v1/media/assets/{asset.public_id}/publish", json={"reward": "dvd"},
                       headers=token_for(producer))
    assert resp.status_code == 400
    error = resp.get_json()["error"]
    assert error["code"] == "not_digital_reward"
    assert "“A DVD of the finished film” is a physical reward" in error["message"]
    resp = client.post(f"/api/v1/media/assets/{asset.public_id}/publish", json={"reward": "video-clips",
                                                                                "rendition": "proxy"},
                       headers=token_for(producer))
    assert resp.status_code == 400 and "not made for donors" in resp.get_json()["error"]["message"]

    login_as(client, producer)
    page = f"/footage/{asset.public_id}"
    resp = client.post(f"{page}/publish", data={"csrf_token": _csrf(client, page), "reward": "dvd"},
                       follow_redirects=True)
    assert resp.status_code == 200
    assert "is a physical reward: footage can only be published to a digital reward" in resp.get_data(as_text=True)
    assert asset.publications == []
    assert client.post(f"{page}/publish", data={"reward": "video-clips"}).status_code == 400  # no CSRF token


def test_unpublish_from_the_page_and_the_api(app, client, make_user, login_as, token_for, ready_asset, campaign,
                                             entitle):
    from filmfund.media import services
    from filmfund.rewards.models import Reward

    asset = ready_asset("Behind the scenes")
    producer, donor = make_user(role="producer"), make_user(role="donor")
    entitle(donor, db_reward(Reward, "video-clips"))
    api = f"/api/v1/media/assets/{asset.public_id}"
    assert client.post(f"{api}/publish", json={"reward": "video-clips"}, headers=token_for(producer)).status_code == 201
    assert client.post(f"{api}/publish", json={"reward": "stills"}, headers=token_for(producer)).status_code == 201
    with app.test_request_context("/"):
        [item] = services.library_for(donor)
    link = urlparse(item["download_url"]).path
    login_as(client, donor)
    assert client.get(link).status_code == 200
    # In Chinese, the crew's title (written in the site's first language, with no other version)
    # is marked as English, so that a screen reader does not read it with a Chinese voice.
    library = client.get("/account?lang=zh-Hans").get_data(as_text=True)
    assert '<strong class="library-title" lang="en">Behind the scenes</strong>' in library

    login_as(client, producer)
    page = f"/footage/{asset.public_id}"
    resp = client.post(f"{page}/unpublish", data={"csrf_token": _csrf(client, page), "reward": "video-clips"},
                       follow_redirects=True)
    # The browser still reads Chinese (the cookie above): the flash says it in Chinese, with the
    # reward's Chinese title.
    said = resp.get_data(as_text=True).split('class="flash')[1].split("</p>")[0]
    assert "已从“" in said and "撤下" in said and "Unpublished" not in said
    with app.test_request_context("/"):
        assert services.library_for(donor) == []
    login_as(client, donor)
    assert client.get(link).status_code == 403  # a link already given stops working
    resp = client.post(f"{api}/unpublish", json={"reward": "stills"}, headers=token_for(producer))
    assert resp.status_code == 200 and resp.get_json()["published_to"] == []
    resp = client.post(f"{api}/unpublish", json={"reward": "stills"}, headers=token_for(producer))
    assert resp.status_code == 404
    assert "/api/v1/media/assets/{id}/unpublish" in client.get("/api/v1/openapi.json").get_json()["paths"]


def test_a_video_published_to_the_stills_gives_donors_the_chosen_frame(app, client, make_user, login_as,
                                                                        ready_asset, campaign, entitle):
    """Publishing a clip to "Production stills" offers its frame as the still: chosen, the donor
    downloads a JPEG (no player, no MP4)."""
    import io

    from filmfund.extensions import db
    from filmfund.media import services
    from filmfund.media.models import Rendition, RenditionKind
    from filmfund.rewards.models import Reward

    asset = ready_asset("Night market")
    jpeg = b"\xff\xd8\xff\xe0" + b"still" * 100 + b"\xff\xd9"
    kept = services.storage().put_stream(io.BytesIO(jpeg), ".jpg")
    asset.renditions.append(Rendition(kind=RenditionKind.POSTER, storage_key=kept.key, sha256=kept.sha256,
                                      size=kept.size, content_type="image/jpeg"))
    db.session.commit()
    login_as(client, make_user(role="producer"))
    page = f"/footage/{asset.public_id}"
    html = client.get(page).get_data(as_text=True)
    choice = html.split('id="publish-as"')[1].split("</fieldset>")[0]
    assert 'name="as" value="poster"' in choice and '<img class="publish-still"' in choice
    resp = client.post(f"{page}/publish", data={"csrf_token": _csrf(client, page), "reward": "stills", "as": "poster"})
    assert resp.status_code == 303
    [pub] = services.get_asset(asset.public_id).publications
    assert pub.reward_key == "stills" and pub.rendition == RenditionKind.POSTER

    donor = make_user(role="donor")
    entitle(donor, db_reward(Reward, "stills"))
    with app.test_request_context("/account"):
        [item] = services.library_for(donor)
    assert item["content_type"] == "image/jpeg" and item["play_url"] is None and item["duration"] is None
    login_as(client, donor)
    status, data, _ = _fetch(client, item["download_url"])
    assert status == 200 and data == jpeg
