"""What a request to a donor's stream tells, and what it counts.

- The library page's player (`/library/<id>/stream.m3u8`) answers a signed-in donor who may not
  watch an asset as for an asset that does not exist (404), like `/library/<id>` does
  (reliability.md #21): never "not available" or "not entitled", which told that a raw,
  unpublished clip exists and whether it is packaged.
- Only a GET of a playlist is a viewing: a HEAD (a chat app unfurling a shared link, a download
  manager probing it) is neither logged nor counted toward the donor's flag.
"""
from __future__ import annotations

from urllib.parse import urljoin, urlparse

import pytest

from tests.media.test_published_rendition import _stream

MISSING = "0" * 32


def _publish(client, headers, asset, reward="digital-download"):
    r = client.post(f"/api/v1/media/assets/{asset.public_id}/publish", json={"reward": reward}, headers=headers)
    assert r.status_code == 201, r.get_json()


def _viewings() -> int:
    from filmfund.extensions import db
    from filmfund.media.models import Viewing

    db.session.expire_all()
    return db.session.scalar(db.select(db.func.count()).select_from(Viewing))


def test_a_donor_cannot_tell_an_asset_they_may_not_watch_from_a_missing_one(
        app, client, make_user, token_for, login_as, ready_asset, campaign_reward, entitle):
    raw = ready_asset("Raw interview, never published")
    packaged = ready_asset("Published to a reward this donor does not hold")
    h = token_for(make_user(role="producer"))
    _publish(client, h, packaged, "behind-the-scenes")
    _stream(packaged)
    unpackaged = ready_asset("Published, not packaged yet")
    _publish(client, h, unpackaged, "behind-the-scenes")
    donor = make_user(role="donor")
    entitle(donor, campaign_reward["digital-download"])
    login_as(client, donor)
    json = {"Accept": "application/json"}
    missing = client.get(f"/library/{MISSING}/stream.m3u8", headers=json)
    assert missing.status_code == 404
    for asset in (raw, packaged, unpackaged):
        got = client.get(f"/library/{asset.public_id}/stream.m3u8", headers=json)
        assert (got.status_code, got.get_json()) == (404, missing.get_json()), asset.title
    assert _viewings() == 0


def test_a_donor_who_may_watch_gets_the_stream_and_is_told_when_it_is_not_ready(
        app, client, make_user, token_for, login_as, ready_asset, campaign_reward, entitle):
    asset = ready_asset("Clip")
    _publish(client, token_for(make_user(role="producer")), asset)
    donor = make_user(role="donor")
    entitle(donor, campaign_reward["digital-download"])
    login_as(client, donor)
    url = f"/library/{asset.public_id}/stream.m3u8"
    pending = client.get(url, headers={"Accept": "application/json"})
    assert pending.status_code == 403 and pending.get_json()["error"]["code"] == "not_available"  # theirs, not yet
    _stream(asset)
    assert client.get(url).status_code == 200 and _viewings() == 1


@pytest.fixture
def streamed(app, client, make_user, token_for, ready_asset, campaign_reward, entitle):
    asset = ready_asset("Clip")
    _publish(client, token_for(make_user(role="producer")), asset)
    _stream(asset)
    donor = make_user(role="donor")
    entitle(donor, campaign_reward["digital-download"])
    [item] = client.get("/api/v1/library", headers=token_for(donor)).get_json()["items"]
    return {"asset": asset, "donor": donor, "master": urlparse(item["stream_url"]).path}


def test_a_head_of_a_playlist_is_not_a_viewing(app, client, login_as, streamed):
    master = streamed["master"]
    head = client.head(master)
    assert head.status_code == 200 and _viewings() == 0
    got = client.get(master)
    assert got.status_code == 200 and _viewings() == 1
    variant = urljoin(master, [ln for ln in got.get_data(as_text=True).splitlines() if ln and not ln.startswith("#")][0])
    assert client.head(variant).status_code == 200 and _viewings() == 1
    assert client.get(variant).status_code == 200 and _viewings() == 2
    login_as(client, streamed["donor"])
    here = f"/library/{streamed['asset'].public_id}/stream.m3u8"
    assert client.head(here).status_code == 200 and _viewings() == 2
