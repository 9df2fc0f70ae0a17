"""The API shapes, publishing, the donor library and its expiring links, and the producers'
pages: who may see what (attack cases 21-25, 30, 31, 34 of reliability.md)."""
from __future__ import annotations

import re
from datetime import datetime, timezone
from urllib.parse import parse_qs, urlparse

import pytest

CONTRACT_KEYS = {"id", "title", "kind", "state", "sha256", "duration", "recorded_at", "sources", "renditions",
                 "problems"}



def _csrf(client, url="/footage/"):
    html = client.get(url).get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def test_assets_api_contract_and_roles(app, client, make_user, token_for, ready_asset):
    asset = ready_asset("Interview with the family")
    producer, donor = make_user(role="producer"), make_user(role="donor")
    resp = client.get("/api/v1/media/assets", headers=token_for(producer))
    assert resp.status_code == 200
    [item] = resp.get_json()["items"]
    assert CONTRACT_KEYS <= set(item)
    assert item["id"] == asset.public_id and re.fullmatch(r"[0-9a-f]{32}", item["id"])  # random, not a row number
    assert item["state"] == "ready" and item["kind"] == "video"
    assert item["sources"][0]["sha256"] == asset.sources[0].sha256
    assert {r["kind"] for r in item["renditions"]} == {"web", "proxy"}
    assert client.get("/api/v1/media/assets", headers=token_for(donor)).status_code == 403
    assert client.get("/api/v1/media/assets").status_code == 401
    assert client.get("/api/v1/media/assets?state=nonsense", headers=token_for(producer)).status_code == 400
    assert client.get("/api/v1/media/assets?state=damaged", headers=token_for(producer)).get_json()["items"] == []
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    assert {"/api/v1/media/assets", "/api/v1/media/assets/{id}/publish", "/api/v1/library"} <= set(paths)


def test_publish_validates_reward_and_state(app, client, make_user, token_for, ready_asset, campaign_reward):
    from filmfund.media.models import AssetState

    asset = ready_asset()
    headers = token_for(make_user(role="producer"))
    url = f"/api/v1/media/assets/{asset.public_id}/publish"
    assert client.post(url, json={"reward": "no-such-reward"}, headers=headers).get_json()["error"]["code"] == "unknown_reward"
    assert client.post(url, json={"reward": 12}, headers=headers).status_code == 400
    assert client.post(url, data="x", headers=headers).status_code == 400
    first = client.post(url, json={"reward": "digital-download"}, headers=headers)
    assert first.status_code == 201 and first.get_json()["reward"] == "digital-download"
    assert client.post(url, json={"reward": "digital-download"}, headers=headers).status_code == 200  # idempotent
    assert client.post("/api/v1/media/assets/" + "0" * 32 + "/publish", json={"reward": "digital-download"},
                       headers=headers).status_code == 404
    donor_headers = token_for(make_user(role="donor"))
    assert client.post(url, json={"reward": "digital-download"}, headers=donor_headers).status_code == 403
    other = ready_asset("Rough cut")
    other.state = AssetState.DAMAGED
    from filmfund.extensions import db

    db.session.commit()
    resp = client.post(f"/api/v1/media/assets/{other.public_id}/publish", json={"reward": "digital-download"},
                       headers=headers)
    assert resp.status_code == 409


def _publish(client, token_for, make_user, asset, reward="digital-download"):
    headers = token_for(make_user(role="producer"))
    resp = client.post(f"/api/v1/media/assets/{asset.public_id}/publish", json={"reward": reward}, headers=headers)
    assert resp.status_code in (200, 201), resp.get_json()


def test_library_lists_only_entitled_media_with_expiring_user_bound_links(
        app, client, make_user, token_for, ready_asset, campaign_reward, entitle, login_as):
    asset = ready_asset("Behind the scenes, day 3", payload=b"B" * 300_000)
    hidden = ready_asset("Unpublished")
    other_reward = ready_asset("Only for the other reward")
    _publish(client, token_for, make_user, asset)
    _publish(client, token_for, make_user, other_reward, "behind-the-scenes")
    donor, stranger = make_user(role="donor"), make_user(role="donor")
    entitle(donor, campaign_reward["digital-download"], "fulfilled")

    resp = client.get("/api/v1/library", headers=token_for(donor))
    assert resp.status_code == 200 and resp.headers["Cache-Control"] == "private, no-store"
    [item] = resp.get_json()["items"]
    assert {"asset_id", "title", "kind", "reward", "download_url", "expires_at"} <= set(item)
    assert item["asset_id"] == asset.public_id and item["reward"] == "digital-download"
    expires = datetime.fromisoformat(item["expires_at"])
    assert 0 < (expires - datetime.now(timezone.utc)).total_seconds() <= 300
    assert hidden.public_id not in str(resp.get_json()) and other_reward.public_id not in str(resp.get_json())
    assert client.get("/api/v1/library", headers=token_for(stranger)).get_json()["items"] == []

    # The link works for its donor, with Range, never cached.
    link = urlparse(item["download_url"]).path
    got = client.get(link)
    assert got.status_code == 200 and got.data == b"B" * 300_000
    assert got.headers["Cache-Control"] == "private, no-store"
    assert got.headers["Content-Disposition"].startswith("attachment;")
    part = client.get(link, headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.data == b"B" * 100

    # Tampered, or used by a signed-in other user: refused.
    assert client.get(link[:-3] + ("AAA" if not link.endswith("AAA") else "BBB")).status_code == 403
    other_client = app.test_client()
    login_as(other_client, stranger)
    assert other_client.get(link).status_code == 403

    # Expired: the clock moves past the TTL.
    from itsdangerous import TimestampSigner

    real = TimestampSigner.get_timestamp
    try:
        TimestampSigner.get_timestamp = lambda self: real(self) + 301
        pytest.MonkeyPatch  # (noqa) keep import-free; restored in finally
        assert client.get(link).status_code == 403
    finally:
        TimestampSigner.get_timestamp = real
    assert client.get(link).status_code == 200

    # Revoked entitlement: gone from the library, and the old link stops working.
    from filmfund.extensions import db
    from filmfund.rewards.models import Entitlement, EntitlementStatus

    db.session.query(Entitlement).update({"status": EntitlementStatus.REVOKED})
    db.session.commit()
    assert client.get("/api/v1/library", headers=token_for(donor)).get_json()["items"] == []
    assert client.get(link).status_code == 403


def test_library_page_checks_entitlement_per_request(app, client, make_user, token_for, ready_asset,
                                                     campaign_reward, entitle, login_as):
    asset = ready_asset("Director's commentary", payload=b"C" * 1000)
    _publish(client, token_for, make_user, asset)
    donor, stranger, partner = make_user(role="donor"), make_user(role="donor"), make_user(role="partner")
    entitle(donor, campaign_reward["digital-download"])
    url = f"/library/{asset.public_id}"

    anon = client.get(url)
    assert anon.status_code in (302, 401)
    login_as(client, donor)
    ok = client.get(url)
    assert ok.status_code == 200 and ok.data == b"C" * 1000
    assert ok.headers["Cache-Control"] == "private, no-store" and ok.headers["Referrer-Policy"] == "no-referrer"
    c2 = app.test_client()
    login_as(c2, stranger)
    assert c2.get(url).status_code == 404  # not entitled: it does not exist for them
    c3 = app.test_client()
    login_as(c3, partner)
    assert c3.get(url).status_code == 403
    assert c2.get("/library/" + "f" * 32).status_code == 404


@pytest.mark.parametrize("storage_backend", ["s3"])
def test_library_on_s3_gives_short_presigned_links(app, client, make_user, token_for, ready_asset, campaign_reward,
                                                   entitle, login_as):
    import urllib.request

    asset = ready_asset("Wallpaper pack", payload=b"W" * 6_000_000)
    _publish(client, token_for, make_user, asset)
    donor = make_user(role="donor")
    entitle(donor, campaign_reward["digital-download"])
    [item] = client.get("/api/v1/library", headers=token_for(donor)).get_json()["items"]
    url = urlparse(item["download_url"])
    query = parse_qs(url.query)
    # moto checks neither expiry nor signature: assert what we ask S3 for (reliability.md 1.3).
    assert int(query["X-Amz-Expires"][0]) <= 300
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert url.path.endswith(asset.renditions[0].storage_key)
    assert "attachment" in query["response-content-disposition"][0]
    req = urllib.request.Request(item["download_url"], headers={"Range": "bytes=0-9"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 206 and resp.read() == b"W" * 10
    # The page route mints a fresh short link on each request.
    login_as(client, donor)
    redirect = client.get(f"/library/{asset.public_id}")
    assert redirect.status_code == 302 and redirect.headers["Cache-Control"] == "private, no-store"
    assert int(parse_qs(urlparse(redirect.headers["Location"]).query)["X-Amz-Expires"][0]) <= 300


def test_board_filters_search_and_playback(app, client, make_user, ready_asset, login_as):
    from filmfund.extensions import db

    a = ready_asset("100% raw interview", payload=b"P" * 5000)
    b = ready_asset("100 raw takes")
    a.camera, b.camera = "Canon HF100", "Sony CX"
    a.notes = "father's testimony"
    a.recorded_at = datetime(2024, 5, 17, 9, 30, tzinfo=timezone.utc)
    db.session.commit()
    producer = make_user(role="producer")
    assert client.get("/footage/").status_code in (302, 401)
    login_as(client, make_user(role="donor"))
    assert client.get("/footage/").status_code == 403
    login_as(client, producer)
    page = client.get("/footage/").get_data(as_text=True)
    assert "100% raw interview" in page and "100 raw takes" in page
    assert "100 raw takes" not in client.get("/footage/?q=%25").get_data(as_text=True)  # % is literal
    assert "100% raw" in client.get("/footage/?q=testimony").get_data(as_text=True)  # notes
    for attack in ("' OR 1=1--", "%", "_", "\\", "'; DROP TABLE media_assets;--"):
        assert client.get("/footage/", query_string={"q": attack}).status_code == 200
    only_canon = client.get("/footage/?camera=Canon+HF100").get_data(as_text=True)
    assert "100% raw" in only_canon and "100 raw takes" not in only_canon
    day = client.get("/footage/?day=2024-05-17").get_data(as_text=True)
    assert "100% raw" in day and "100 raw takes" not in day
    assert client.get("/footage/?day=yesterday").status_code == 400
    assert "100 raw takes" not in client.get("/footage/?state=damaged").get_data(as_text=True)

    detail = client.get(f"/footage/{a.public_id}").get_data(as_text=True)
    assert "<video" in detail and f"/footage/{a.public_id}/r/proxy" in detail
    part = client.get(f"/footage/{a.public_id}/r/proxy", headers={"Range": "bytes=0-99"})
    assert part.status_code == 206 and part.headers["Content-Range"] == "bytes 0-99/5000"
    assert part.headers["Cache-Control"] == "private, no-store"
    assert client.get(f"/footage/{a.public_id}/r/poster").status_code == 404


def test_upload_streams_to_storage_with_a_safe_name(app, client, make_user, login_as, clips):
    from filmfund.media import services

    login_as(client, make_user(role="producer"))
    token = _csrf(client)
    data = {"csrf_token": token, "title": "",
            "file": ((clips / "small.mp4").open("rb"), "../../etc/passwd.mp4")}
    resp = client.post("/footage/upload", data=data, content_type="multipart/form-data")
    assert resp.status_code == 303
    [asset] = services.find_assets()
    assert asset.sources[0].original_name == "passwd.mp4"  # its last part: a file name, never a path
    assert asset.sources[0].storage_key.startswith("sha256/") and ".." not in asset.sources[0].storage_key
    # Stored and registered; not probed inside the request (the verify job does it).
    assert asset.state.value == "uploaded" and asset.duration is None and asset.probe is None
    again = client.post("/footage/upload", data={"csrf_token": token, "file": ((clips / "small.mp4").open("rb"), "x.mp4")},
                        content_type="multipart/form-data", follow_redirects=True)
    assert "already here" in again.get_data(as_text=True) and len(services.find_assets()) == 1
    bad = client.post("/footage/upload", data={"csrf_token": token, "file": (__import__("io").BytesIO(b"x"), "a.exe")},
                      content_type="multipart/form-data")
    assert bad.status_code == 400
    no_csrf = client.post("/footage/upload", data={"file": ((clips / "small.mp4").open("rb"), "y.mp4")},
                          content_type="multipart/form-data")
    assert no_csrf.status_code == 400


def test_an_upload_keeps_its_chinese_name(app, client, make_user, login_as, clips):
    """A crew names its files in Chinese. werkzeug's secure_filename keeps ASCII only: "访谈第三天.MTS"
    became "MTS", the asset's title too. The name is kept as written, its last part only (a client
    may send a path), with what prints nothing taken out."""
    from filmfund.media import services

    login_as(client, make_user(role="producer"))
    data = {"csrf_token": _csrf(client), "title": "",
            "file": ((clips / "00001.MTS").open("rb"), "素材/访谈第三天\u202e.MTS")}
    assert client.post("/footage/upload", data=data, content_type="multipart/form-data").status_code == 303
    [asset] = services.find_assets()
    assert (asset.title, asset.sources[0].original_name) == ("访谈第三天", "访谈第三天.MTS")


@pytest.mark.parametrize("name, kept", [
    ("访谈第三天.MTS", "访谈第三天.MTS"),
    ("C:\\clips\\采访.mp4", "采访.mp4"),
    ("../../x.mp4", "x.mp4"),
    ("..", ""),
    (".hidden.mp4", "hidden.mp4"),
    ("  王明   interview .mp4", "王明 interview .mp4"),
    ("a\u202eb\x00.mp4", "ab.mp4"),
    ("a\tb\u2028c.mp4", "a b c.mp4"),  # every kind of space a plain one, as in any typed line
    (5, ""),
])
def test_upload_names_are_one_path_component_as_written(name, kept):
    from filmfund.media.common import upload_name

    assert upload_name(name) == kept


def test_a_chinese_title_downloads_over_the_production_server(app, served_app, client, make_user, token_for,
                                                              ready_asset, campaign_reward, entitle):
    """waitress, which `filmfund run` serves with, sends a header as Latin-1 at most: a download
    named by its Chinese title put the title's own characters in the Content-Disposition's
    fallback name, and the donor got a 500. The test client does not encode headers, so only a
    real server shows it."""
    import urllib.request
    from urllib.parse import unquote

    from filmfund.extensions import db

    asset = ready_asset("访谈：王明的第三天", payload=b"C" * 5000)
    _publish(client, token_for, make_user, asset)
    donor = make_user(role="donor")
    entitle(donor, campaign_reward["digital-download"], "fulfilled")
    [item] = client.get("/api/v1/library", headers=token_for(donor)).get_json()["items"]
    db.session.commit()
    with urllib.request.urlopen(served_app + urlparse(item["download_url"]).path, timeout=30) as got:
        assert got.status == 200 and got.read() == b"C" * 5000
        disposition = got.headers["Content-Disposition"]
    fallback = re.search(r'filename="([^"]*)"', disposition).group(1)
    assert fallback == "download.mp4" and fallback.isascii()
    assert unquote(disposition.split("filename*=UTF-8''", 1)[1]) == "访谈：王明的第三天.mp4"


def test_library_for_is_available_to_the_account_page(app, make_user, ready_asset, campaign_reward, entitle):
    from filmfund.extensions import db
    from filmfund.media import services

    asset = ready_asset()
    producer = make_user(role="producer")
    services.publish(asset, "digital-download", user=producer)
    db.session.commit()
    donor = make_user(role="donor")
    assert services.library_for(donor) == []
    entitle(donor, campaign_reward["digital-download"])
    app.config["PUBLIC_URL"] = "https://film.example"  # links are built on the public URL, not the Host
    with app.test_request_context("/account", base_url="https://attacker.example"):
        [item] = services.library_for(donor)
    assert item["download_url"].startswith("https://film.example/library/download/")
    assert item["asset_id"] == asset.public_id and item["download_url"].startswith("http")


def test_direct_upload_needs_s3(app, client, make_user, login_as):
    login_as(client, make_user(role="producer"))
    token = _csrf(client)
    resp = client.post("/footage/uploads/start", json={"filename": "a.MTS", "size": 10},
                       headers={"X-CSRFToken": token, "Accept": "application/json"})
    assert resp.status_code == 409 and resp.get_json()["error"]["code"] == "direct_upload_unavailable"
    assert "data-direct-start" not in client.get("/footage/").get_data(as_text=True)


@pytest.mark.parametrize("storage_backend", ["s3"])
def test_direct_upload_to_s3_in_parts(app, client, make_user, login_as, clips):
    """What upload.js does: announce, PUT parts to presigned URLs, complete; the app checks the
    size S3 stored (moto, like S3 with a presigned PUT, enforces no limit) and hashes the object."""
    import hashlib
    import urllib.request

    from filmfund.media import services

    producer = make_user(role="producer")
    login_as(client, producer)
    assert "data-direct-start" in client.get("/footage/").get_data(as_text=True)
    token = _csrf(client)
    h = {"X-CSRFToken": token, "Accept": "application/json"}
    data = (clips / "long.MTS").read_bytes()
    assert client.post("/footage/uploads/start", json={"filename": "x.MTS", "size": 10}).status_code == 400  # CSRF
    assert client.post("/footage/uploads/start", json={"filename": "x.exe", "size": 10}, headers=h).status_code == 400
    too_big = client.post("/footage/uploads/start", json={"filename": "x.MTS", "size": 2**50}, headers=h)
    assert too_big.status_code == 413
    up = client.post("/footage/uploads/start", json={"filename": "../00001.MTS", "size": len(data)}, headers=h).get_json()
    assert up["part_count"] == 2 and up["part_size"] == 5 * 1024 * 1024
    urls = client.post("/footage/uploads/parts", json={"upload": up["upload"], "parts": [1, 2]}, headers=h).get_json()["urls"]
    assert int(parse_qs(urlparse(urls["1"]).query)["X-Amz-Expires"][0]) <= 3600
    parts = []
    for n in (1, 2):
        chunk = data[(n - 1) * up["part_size"]: n * up["part_size"]]
        req = urllib.request.Request(urls[str(n)], data=chunk, method="PUT",
                                     headers={"Content-Type": "application/octet-stream"})
        with urllib.request.urlopen(req, timeout=10) as r:
            parts.append({"part": n, "etag": r.headers["ETag"]})
    done = client.post("/footage/uploads/complete", json={"upload": up["upload"], "parts": parts, "title": "Take 1"},
                       headers=h)
    assert done.status_code == 201, done.get_json()
    asset = services.get_asset(done.get_json()["asset_id"])
    assert asset.sha256 == hashlib.sha256(data).hexdigest() and asset.title == "Take 1"
    assert asset.sources[0].original_name == "00001.MTS" and asset.state.value == "uploaded"
    assert services.storage().keys() == [asset.sources[0].storage_key]  # nothing left under .incoming

    # Another producer cannot finish someone else's upload; a short upload is discarded.
    up2 = client.post("/footage/uploads/start", json={"filename": "b.MTS", "size": 1000}, headers=h).get_json()
    url = client.post("/footage/uploads/parts", json={"upload": up2["upload"], "parts": [1]}, headers=h).get_json()["urls"]["1"]
    with urllib.request.urlopen(urllib.request.Request(url, data=b"x" * 10, method="PUT", headers={
            "Content-Type": "application/octet-stream"}), timeout=10) as r:
        etag = r.headers["ETag"]
    other = app.test_client()
    login_as(other, make_user(role="producer"))
    other_token = _csrf(other)
    assert other.post("/footage/uploads/complete", json={"upload": up2["upload"], "parts": [{"part": 1, "etag": etag}]},
                      headers={"X-CSRFToken": other_token, "Accept": "application/json"}).status_code == 403
    short = client.post("/footage/uploads/complete", json={"upload": up2["upload"], "parts": [{"part": 1, "etag": etag}]},
                        headers=h)
    assert short.status_code == 400 and short.get_json()["error"]["code"] == "size_mismatch"
    assert services.storage().keys() == [asset.sources[0].storage_key]
