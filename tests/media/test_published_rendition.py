"""What a publication gives, and nothing more (published.published_kinds): a video published as
its poster gives the poster only, to everyone and to a reward's donors (never its web rendition,
its stream, its captions nor a copy with them burned in); the SQL form the campaign page's query
uses agrees with the Python form. And the early-access screening: its captions, listed while the
window is open, are served by the same rule as its stream; an asset published to the screening
and to a reward that downloads is a download, in the library as at /library/<id>."""
from __future__ import annotations

import copy
import io
from datetime import timedelta
from urllib.parse import urlparse

VTT = "WEBVTT\n\n00:00.000 --> 00:01.000\nhello\n"
INDEX = {
    "master": "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=400000\nv0.m3u8\n",
    "playlists": {"v0.m3u8": "#EXTM3U\n#EXTINF:2.0,\nv0_0000.ts\n#EXT-X-ENDLIST\n"},
    "segments": {"v0_0000.ts": {"key": None, "variant": 0}},
    "variants": [{"name": "v0.m3u8", "height": 240, "bitrate": "400k"}],
}


def _stream(asset):
    """A ready HLS package (one stored segment), as the transcode job leaves it."""
    from filmfund.extensions import db
    from filmfund.media import services, streaming
    from filmfund.media.models import Stream

    seg = services.storage().put_stream(io.BytesIO(b"\x47" * 188 * 4), ".ts")
    index = copy.deepcopy(INDEX)
    index["segments"]["v0_0000.ts"]["key"] = seg.key
    row = streaming.stream_of(asset.id)  # publishing the clip left it pending
    if row is None:
        row = Stream(asset_id=asset.id, attempts=1)
        db.session.add(row)
    row.state, row.size, row.index = "ready", seg.size, index
    db.session.commit()


def _poster(asset):
    from filmfund.extensions import db
    from filmfund.media import services
    from filmfund.media.models import Rendition, RenditionKind

    p = services.storage().put_stream(io.BytesIO(b"\xff\xd8\xff\xe0" + b"p" * 100), ".jpg")
    asset.renditions.append(Rendition(kind=RenditionKind.POSTER, storage_key=p.key, sha256=p.sha256, size=p.size,
                                      content_type="image/jpeg"))
    db.session.commit()


def _captions(client, producer, asset, lang="en", burned=True):
    from filmfund.extensions import db
    from filmfund.media import captions, services

    r = client.put(f"/api/v1/media/assets/{asset.public_id}/captions/{lang}", data=VTT.encode(),
                   headers=producer | {"Content-Type": "text/vtt"})
    assert r.status_code == 204, r.get_data(as_text=True)
    if burned:
        copy_ = services.storage().put_stream(io.BytesIO(b"BURNED" * 100), ".mp4")
        captions.find(asset, lang).burned_key = copy_.key
        db.session.commit()


def _publish(client, producer, asset, reward, rendition=None):
    body = {"reward": reward} | ({"rendition": rendition} if rendition else {})
    r = client.post(f"/api/v1/media/assets/{asset.public_id}/publish", json=body, headers=producer)
    assert r.status_code == 201, r.get_json()


def test_a_video_published_to_everyone_as_its_poster_shows_the_poster_only(app, client, make_user, token_for,
                                                                            ready_asset):
    from filmfund.media import streaming

    asset = ready_asset("Raw interview, uncut")
    _poster(asset)
    _publish(client, token_for(make_user(role="producer")), asset, "public", "poster")
    _stream(asset)
    assert not streaming.wants_stream(asset)  # nothing packages it for this publication
    anon = app.test_client()
    assert anon.get(f"/public/{asset.public_id}/poster.jpg").status_code == 200
    assert anon.get(f"/public/{asset.public_id}/video.mp4").status_code == 404
    for path in ("hls/master.m3u8", "hls/v0.m3u8", "hls/s/v0_0000.ts"):
        assert anon.get(f"/public/{asset.public_id}/{path}").status_code == 404, path
    page = anon.get("/").get_data(as_text=True)
    assert 'id="trailer"' not in page and asset.public_id not in page


def test_a_donor_of_a_poster_only_publication_gets_no_clip_stream_or_captions(app, client, make_user, token_for,
                                                                             ready_asset, campaign_reward,
                                                                             entitle, login_as):
    from filmfund.media import streaming

    asset = ready_asset("Raw interview")
    _poster(asset)
    producer = token_for(make_user(role="producer"))
    _publish(client, producer, asset, "digital-download", "poster")
    _stream(asset)
    _captions(client, producer, asset)
    donor = make_user(role="donor")
    entitle(donor, campaign_reward["digital-download"])
    [item] = client.get("/api/v1/library", headers=token_for(donor)).get_json()["items"]
    assert item["content_type"] == "image/jpeg" and item["stream_url"] is None and item["captions"] == []

    c = login_as(app.test_client(), donor)
    assert c.get(f"/library/{asset.public_id}").data[:2] == b"\xff\xd8"  # the poster is theirs
    # Not theirs to watch: answered as for a clip that does not exist, as its captions are
    assert c.get(f"/library/{asset.public_id}/stream.m3u8").status_code == 404
    assert c.get(f"/library/{asset.public_id}/captions/en.vtt").status_code == 404
    assert c.get(f"/library/{asset.public_id}/captions/en/burned.mp4").status_code == 404
    # a stream link made for them some other way is refused too
    signed = app.test_client().get(f"/stream/{streaming.link_token(donor, asset)}/master.m3u8",
                                      headers={"Accept": "application/json"})
    assert signed.status_code == 403 and signed.get_json()["error"]["code"] == "not_entitled"

    # Published as the clip to another reward they hold: the clip, its stream and captions are theirs.
    _publish(client, producer, asset, "behind-the-scenes")
    entitle(donor, campaign_reward["behind-the-scenes"])
    assert c.get(f"/library/{asset.public_id}/stream.m3u8").status_code == 200
    assert c.get(f"/library/{asset.public_id}/captions/en.vtt").status_code == 200


def test_the_query_form_of_published_kinds_agrees_with_the_python_form(app):
    import sqlalchemy as sa

    from filmfund.extensions import db
    from filmfund.media.models import Asset, AssetKind, AssetState, Publication, Rendition, RenditionKind
    from filmfund.media.published import published_kinds, published_kinds_sql

    expected = {}
    for asset_kind in AssetKind:
        asset = Asset(title=f"every {asset_kind.value}", sha256=asset_kind.value * 4, size=1, kind=asset_kind,
                      state=AssetState.READY)
        for kind in RenditionKind:
            asset.renditions.append(Rendition(kind=kind, storage_key=f"{asset_kind.value}/{kind.value}", sha256="0",
                                              size=1, content_type="application/octet-stream"))
        for named in (None, *RenditionKind):
            key = f"r-{named.value if named else 'default'}"
            asset.publications.append(Publication(reward_key=key, rendition=named))
            expected[(asset_kind.value, key)] = {k.value for k in published_kinds(asset_kind, named)}
        db.session.add(asset)
    db.session.commit()

    a, p, r = Asset.__table__, Publication.__table__, Rendition.__table__
    rows = db.session.execute(sa.select(a.c.kind, p.c.reward_key, r.c.kind.label("rendition"))
                              .select_from(p.join(a, a.c.id == p.c.asset_id).join(r, r.c.asset_id == a.c.id))
                              .where(published_kinds_sql(a.c.kind, p.c.rendition, r.c.kind)))
    got = {key: set() for key in expected}
    for row in rows:
        got[(str(row.kind.value if hasattr(row.kind, "value") else row.kind), row.reward_key)].add(
            str(row.rendition.value if hasattr(row.rendition, "value") else row.rendition))
    assert got == expected
    assert expected[("video", "r-poster")] == {"poster"}
    assert expected[("video", "r-default")] == {"web", "poster"}
    assert expected[("audio", "r-default")] == set()


def _window(hours_open: float, hours_close: float):
    from filmfund.db import utcnow
    from filmfund.extensions import db
    from filmfund.media import screening

    now = utcnow()
    screening.set_window(now + timedelta(hours=hours_open), now + timedelta(hours=hours_close), "early-access")
    db.session.commit()


def _reward(key):
    import sqlalchemy as sa

    from filmfund.extensions import db
    from filmfund.rewards.models import Reward

    return db.session.scalars(sa.select(Reward).where(Reward.key == key).order_by(Reward.id)).first()


def test_early_access_captions_are_served_while_listed_and_only_then(app, campaign, client, make_user, token_for,
                                                                    ready_asset, login_as, entitle):
    film = ready_asset("Finished film")
    producer = token_for(make_user(role="producer"))
    _publish(client, producer, film, "early-access")
    _stream(film)
    _captions(client, producer, film, "zh-Hans")
    patron = make_user(role="donor")
    entitle(patron, _reward("early-access"))
    _window(-1, +1)
    [item] = client.get("/api/v1/library", headers=token_for(patron)).get_json()["items"]
    assert item["screening"] and item["stream_url"] and item["download_url"] is None
    [cap] = item["captions"]
    assert cap["burned_url"] is None  # a screening is never a download
    c = login_as(app.test_client(), patron)
    signed = app.test_client().get(urlparse(cap["url"]).path)
    track = c.get(urlparse(cap["track_url"]).path)
    assert (signed.status_code, track.status_code) == (200, 200), (signed.get_json(), track.get_json())
    assert "hello" in signed.get_data(as_text=True) and "hello" in track.get_data(as_text=True)
    assert c.get(f"/library/{film.public_id}/captions/zh-Hans/burned.mp4").status_code == 404

    _window(-2, -1)  # closed: neither listed nor served
    assert client.get("/api/v1/library", headers=token_for(patron)).get_json()["items"] == []
    assert c.get(urlparse(cap["track_url"]).path).status_code == 404
    again = app.test_client().get(urlparse(cap["url"]).path, headers={"Accept": "application/json"})
    assert again.status_code == 403 and again.get_json()["error"]["code"] == "not_entitled"


def test_published_to_the_screening_and_to_a_download_reward_it_is_a_download(app, campaign, client, make_user,
                                                                            token_for, ready_asset, login_as,
                                                                            entitle):
    film = ready_asset("Making-of")
    producer = token_for(make_user(role="producer"))
    _publish(client, producer, film, "early-access")
    _publish(client, producer, film, "video-clips")
    _stream(film)
    patron = make_user(role="donor")
    entitle(patron, _reward("early-access"))
    entitle(patron, _reward("video-clips"))
    _window(-1, +1)
    [item] = client.get("/api/v1/library", headers=token_for(patron)).get_json()["items"]
    assert item["reward"] == "video-clips" and not item["screening"] and item["download_url"]
    c = login_as(app.test_client(), patron)
    assert c.get(f"/library/{film.public_id}").status_code == 200
