"""Streaming for donors (issue 15 item 2), end to end with real ffmpeg: a published clip gets its
HLS ladder from the transcode job (segments stored once, local or S3); the donor's `stream_url`
from GET /api/v1/library is read by ffprobe over HTTP from a live server, through the rewritten,
signed playlists; a producer's refund (the entitlement ended) refuses the master, the variants and the
segments at once; an expired or forged link is refused; the public trailer streams from plain
cacheable URLs while it is public, and not after."""
from __future__ import annotations

import json
import subprocess
import threading
import urllib.error
import urllib.request
from urllib.parse import urljoin

import pytest
from werkzeug.serving import make_server

from filmfund.media import ffmpeg

pytestmark = [pytest.mark.slow, pytest.mark.one_database]


@pytest.fixture
def storage_backend(request):
    # SQLite runs the local folder, PostgreSQL the S3 server (moto): both backends, once each.
    return "s3" if request.node.callspec.params.get("database_url") == "postgresql" else "file"


@pytest.fixture
def live(app):
    """The app on a loopback port in a thread: ffprobe reads from it as from the real site."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_port}"
    app.config["PUBLIC_URL"] = base
    yield base
    server.shutdown()
    thread.join(timeout=10)


def _get(url: str) -> tuple[int, bytes, dict]:
    try:
        request = urllib.request.Request(url, headers={"Accept": "application/json"})  # refusals as JSON
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, r.read(), dict(r.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), dict(exc.headers)


def _ffprobe(url: str) -> subprocess.CompletedProcess:
    return subprocess.run(["ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams", url],
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


def _uris(text: str) -> list[str]:
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]


@pytest.fixture
def clip(tmp_path):
    """3 s of 640x360 with sound: two rungs of the ladder (240p, 360p), the 540p/720p left out."""
    folder = tmp_path / "clips"
    folder.mkdir()
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25",
                    "-f", "lavfi", "-i", "sine=frequency=220:sample_rate=48000", "-t", "3", "-c:v", "libx264",
                    "-preset", "ultrafast", "-c:a", "aac", str(folder / "stream-me.mp4")], check=True)
    return folder


def test_a_donor_streams_by_ffprobe_and_a_refund_stops_it(app, client, clip, drain, make_user, token_for,
                                                         live, storage_backend):
    from filmfund.extensions import db
    from filmfund.media import services, streaming
    from filmfund.media.models import AssetState
    from filmfund.rewards.campaign import current_campaign
    from filmfund.auth.models import User
    from filmfund.rewards.models import Entitlement, EntitlementStatus, Reward

    current_campaign()
    [result] = services.ingest_paths([clip])
    drain()
    asset = services.get_asset(result.asset.public_id)
    assert asset.state == AssetState.READY
    services.publish(asset, "video-clips")
    db.session.commit()
    assert drain() == 1  # one transcode job: the web rendition and the HLS package
    asset = services.get_asset(asset.public_id)
    row = streaming.stream_of(asset.id)
    assert row.state == "ready", row.error
    assert [v["height"] for v in row.index["variants"]] == [240, 360]  # capped by the 360p source
    for seg in row.index["segments"].values():
        assert services.storage().exists(seg["key"])  # made once, stored as objects
    assert streaming.stream_dict(asset)["variants"] == ["240p", "360p"]

    # A $50 gift (recorded offline, booked at once) brings the tier holding "video-clips".
    from tests.helpers import record_offline

    gift = record_offline("streamer@example.org", 5000)
    donor = db.session.get(User, gift.user_id)
    assert "video-clips" in {r.key for r in db.session.query(Reward).join(Entitlement).filter(
        Entitlement.user_id == donor.id, Entitlement.status != EntitlementStatus.REVOKED)}
    items = client.get("/api/v1/library", headers=token_for(donor)).get_json()["items"]
    [item] = items
    assert item["stream_url"].startswith(live + "/stream/") and item["stream_url"].endswith("/master.m3u8")
    assert item["download_url"]

    # ffprobe reads the signed playlist over HTTP, through the variant and its segments.
    probe = _ffprobe(item["stream_url"])
    assert probe.returncode == 0, probe.stderr
    info = json.loads(probe.stdout)
    assert 2.5 < float(info["format"]["duration"]) < 3.6
    assert {s["codec_name"] for s in info["streams"]} >= {"h264", "aac"}

    status, master, headers = _get(item["stream_url"])
    assert status == 200 and headers["Content-Type"].startswith("application/vnd.apple.mpegurl")
    assert "no-store" in headers["Cache-Control"]
    variants = _uris(master.decode())
    assert len(variants) == 2 and all(v.startswith("/stream/") for v in variants)
    assert not any(v.startswith(("v0", "v1")) for v in variants)  # rewritten, never the stored names
    variant_url = urljoin(item["stream_url"], variants[0])
    status, playlist, _ = _get(variant_url)
    assert status == 200 and "#EXT-X-ENDLIST" in playlist.decode()
    segment_url = urljoin(variant_url, _uris(playlist.decode())[0])
    status, data, headers = _get(segment_url)
    assert status == 200 and data[:1] == b"\x47" and headers["Content-Type"] == "video/mp2t"

    # Tampered tokens are refused.
    assert _get(item["stream_url"].replace("/stream/", "/stream/x"))[0] == 403
    assert _get(segment_url.replace("/s/", "/s/../s/v9_")[:-3])[0] in (403, 404)

    # The producer refunds the gift (POST /api/v1/donations/{id}/refund; offline: booked at once):
    # the reward ends, and the same links stop at their next request, every one of them.
    producer = make_user(role="producer")
    resp = client.post(f"/api/v1/donations/{gift.id}/refund", json={"reason": "asked"}, headers=token_for(producer))
    assert resp.status_code == 202 and resp.get_json()["refunded"] == 5000, resp.get_json()
    db.session.expire_all()
    for url in (item["stream_url"], variant_url, segment_url):
        status, body, _ = _get(url)
        assert status == 403, url
        assert json.loads(body)["error"]["code"] == "not_entitled"
    assert _ffprobe(item["stream_url"]).returncode != 0
    assert client.get("/api/v1/library", headers=token_for(donor)).get_json()["items"] == []

    # Entitled again (a new gift), an expired link is still refused (the link lives MEDIA_LINK_TTL).
    record_offline("streamer@example.org", 5000)
    assert _get(item["stream_url"])[0] == 200
    app.config["MEDIA_LINK_TTL"] = -1
    status, body, _ = _get(item["stream_url"])
    assert status == 403 and json.loads(body)["error"]["code"] == "link_expired"
    app.config["MEDIA_LINK_TTL"] = 300

    # The public trailer: the same package from plain URLs while it is public.
    services.publish(asset, "public")
    db.session.commit()  # the live server reads it from its own connection
    public = f"{live}/public/{asset.public_id}/hls/master.m3u8"
    status, master, headers = _get(public)
    assert status == 200 and headers["Cache-Control"] == "public, max-age=60"
    probe = _ffprobe(public)
    assert probe.returncode == 0, probe.stderr
    services.unpublish(asset, "public")
    db.session.commit()
    assert _get(public)[0] == 404
    assert _get(urljoin(public, _uris(master.decode())[0]))[0] == 404


def test_a_failed_package_is_marked_broken_and_a_retry_makes_it(app, client, clip, drain, make_user, login_as):
    from filmfund.extensions import db
    from filmfund.media import services, streaming
    from filmfund.media.models import AssetState

    [result] = services.ingest_paths([clip])
    drain()
    asset = services.get_asset(result.asset.public_id)
    app.config["MEDIA_PROFILE_OVERRIDES"] = {**app.config["MEDIA_PROFILE_OVERRIDES"],
                                            "hls": {"video_codec": "no-such-encoder"}}
    services.publish(asset, "public")
    db.session.commit()
    drain()
    asset = services.get_asset(asset.public_id)
    row = streaming.stream_of(asset.id)
    assert row.state == "failed" and "streaming package" not in (row.error or "") and row.error
    assert asset.state == AssetState.READY and asset.rendition("web") is not None  # the clip itself is fine
    assert [p["code"] for p in asset.problems] == ["hls_failed"]
    assert client.get(f"/public/{asset.public_id}/hls/master.m3u8").status_code == 404
    assert client.get(f"/public/{asset.public_id}/video.mp4").status_code in (200, 302)  # the MP4 plays (S3: a redirect)
    login_as(client, make_user(role="producer"))
    page = client.get(f"/footage/{asset.public_id}").get_data(as_text=True)
    assert 'id="stream-row"' in page and "failed" in page and ">Retry<" in page

    del app.config["MEDIA_PROFILE_OVERRIDES"]["hls"]  # fixed: the producer retries from the page
    page = f"/footage/{asset.public_id}"
    import re

    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get(page).get_data(as_text=True)).group(1)
    assert client.post(f"{page}/retry", data={"csrf_token": token}).status_code == 303
    drain()
    asset = services.get_asset(asset.public_id)
    assert streaming.stream_of(asset.id).state == "ready" and asset.problems == []
    assert client.get(f"/public/{asset.public_id}/hls/master.m3u8").status_code == 200
