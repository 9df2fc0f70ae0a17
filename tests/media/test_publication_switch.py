"""Publishing again to the same reward with another rendition changes what its donors get (a still
of a clip becomes the clip: downloadable and streamable): the change is in the audit log, and the
clip gets its stream as at a first publish."""
from __future__ import annotations

import pytest

from tests.media.test_published_rendition import _poster


def _publish(client, headers, asset, reward="digital-download", rendition=None):
    body = {"reward": reward} | ({"rendition": rendition} if rendition else {})
    return client.post(f"/api/v1/media/assets/{asset.public_id}/publish", json=body, headers=headers)


def test_switching_from_the_still_to_the_clip_is_audited(app, client, make_user, token_for, ready_asset,
                                                         campaign_reward):
    from filmfund.audit import list_audit
    from filmfund.extensions import db

    asset = ready_asset("Rough cut")
    _poster(asset)
    boss = make_user("boss@filmfund.test", "producer")
    h = token_for(boss)
    assert _publish(client, h, asset, rendition="poster").status_code == 201
    assert _publish(client, h, asset, rendition="poster").status_code == 200  # no change: nothing recorded
    switched = _publish(client, h, asset, rendition="web")
    assert switched.status_code == 200 and switched.get_json()["rendition"] == "web"
    db.session.expire_all()
    entries = [(e.action, e.actor, e.details_dict["reward"], e.details_dict["rendition"], e.details_dict.get("was"))
               for e in reversed(list_audit(action="media"))]
    assert entries == [("media.publish", f"user:{boss.id}", "digital-download", "poster", None),
                       ("media.publish", f"user:{boss.id}", "digital-download", "web", "poster")]


@pytest.fixture
def clip(tmp_path):
    import subprocess

    folder = tmp_path / "clips"
    folder.mkdir()
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25",
                    "-f", "lavfi", "-i", "sine=frequency=220:sample_rate=48000", "-t", "2", "-c:v", "libx264",
                    "-preset", "ultrafast", "-c:a", "aac", str(folder / "switch-me.mp4")], check=True,
                   stdin=subprocess.DEVNULL)
    return folder


@pytest.mark.slow
def test_a_publication_switched_from_the_still_to_the_clip_gets_its_stream(app, client, clip, drain, make_user,
                                                                           token_for):
    from filmfund.auth.models import User
    from filmfund.extensions import db
    from filmfund.media import services, streaming
    from filmfund.media.models import AssetState
    from filmfund.rewards.campaign import current_campaign
    from tests.helpers import record_offline

    current_campaign()
    [result] = services.ingest_paths([clip])
    drain()
    asset = services.get_asset(result.asset.public_id)
    assert asset.state == AssetState.READY
    h = token_for(make_user(role="producer"))
    assert _publish(client, h, asset, "video-clips", rendition="poster").status_code == 201
    drain()
    assert streaming.stream_of(asset.id) is None  # a still streams nothing
    assert _publish(client, h, asset, "video-clips", rendition="web").status_code == 200
    drain()
    asset = services.get_asset(asset.public_id)
    row = streaming.stream_of(asset.id)
    assert row is not None and row.state == "ready"
    donor = db.session.get(User, record_offline("clips@example.org", 5000).user_id)
    [item] = client.get("/api/v1/library", headers=token_for(donor)).get_json()["items"]
    assert item["content_type"] == "video/mp4" and item["stream_url"]
