"""An erased donor's links (issue: erasure keeps entitlements, so a link made before it must not
outlive the person): the library's download link, a stream's master link and a viewing's play
token answer as a link that is not valid (the same answer as a forged one: nothing hints at the
erasure), and write no viewing. The erasure deletes the donor's viewings (each with an address
hash) and flags, and their marked segments; `whois` answers for their mark's code as for a code
nobody has. Real fixtures: the app, its database (both), its storage, the erasure use case."""
from __future__ import annotations

import copy
import io
from urllib.parse import urlparse

import pytest

# A one-segment HLS package stored as the transcode job would store it (no ffmpeg needed here).
FAKE_INDEX = {
    "master": "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=400000\nv0.m3u8\n",
    "playlists": {"v0.m3u8": "#EXTM3U\n#EXTINF:2.0,\nv0_0000.ts\n#EXT-X-ENDLIST\n"},
    "segments": {"v0_0000.ts": {"key": None, "variant": 0}},
    "variants": [{"name": "v0.m3u8", "height": 240}],
}


def _package(asset) -> None:
    from filmfund.extensions import db
    from filmfund.media import services
    from filmfund.media.models import Stream

    payload = b"\x47" * 188 * 4
    seg = services.storage().put_stream(io.BytesIO(payload), ".ts")
    index = copy.deepcopy(FAKE_INDEX)
    index["segments"]["v0_0000.ts"]["key"] = seg.key
    row = db.session.query(Stream).filter_by(asset_id=asset.id).one_or_none()  # publishing marked it pending
    if row is None:
        row = Stream(asset_id=asset.id, attempts=1)
        db.session.add(row)
    row.state, row.size, row.index = "ready", len(payload), index
    db.session.commit()


def _uris(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln and not ln.startswith("#")]


def _token(path: str) -> str:
    """The itsdangerous token of a link's path."""
    return next(part for part in path.split("/") if "." in part and len(part) > 40)


def _same_as_forged(client, path: str, **kwargs) -> int:
    """Fetch the link and the same link with a forged token: the two answers must be the same
    (but for the token, which a page's language switch repeats); their status is returned."""
    token = _token(path)
    forged = token[:-1] + ("A" if token[-1] != "A" else "B")
    got, other = client.get(path, **kwargs), client.get(path.replace(token, forged), **kwargs)
    assert got.status_code == other.status_code, (path, got.status_code, other.status_code)
    assert got.get_data(as_text=True).replace(token, "T") == other.get_data(as_text=True).replace(forged, "T"), path
    return got.status_code


@pytest.fixture
def published(app, client, make_user, token_for, ready_asset, campaign_reward, entitle):
    """A clip published to a digital reward, with its stream and final captions, and a donor who
    holds the reward: (asset, donor, the donor's API headers)."""
    asset = ready_asset("Collectors' clip")
    producer = token_for(make_user("prod@filmfund.test", "producer"))
    resp = client.post(f"/api/v1/media/assets/{asset.public_id}/publish", json={"reward": "digital-download"},
                       headers=producer)
    assert resp.status_code == 201, resp.get_json()
    _package(asset)
    resp = client.put(f"/api/v1/media/assets/{asset.public_id}/captions/en",
                      data=b"WEBVTT\n\n00:00.000 --> 00:01.000\nhello\n",
                      headers=producer | {"Content-Type": "text/vtt"})
    assert resp.status_code in (200, 201, 204), resp.get_json()
    donor = make_user("collector@example.org")
    entitle(donor, campaign_reward["digital-download"])
    return asset, donor, token_for(donor)


def _rows(model, user_id) -> int:
    from filmfund.extensions import db

    db.session.expire_all()
    return db.session.query(model).filter_by(user_id=user_id).count()


def _erase(user) -> None:
    from filmfund.extensions import db
    from filmfund.rewards import donor_data

    donor_data.erase_donor(user)
    db.session.commit()


def test_an_erased_donors_links_are_not_valid_and_write_nothing(app, client, published):
    from filmfund.media import screening
    from filmfund.media.common import work_dir
    from filmfund.media.models import Viewing, ViewingFlag

    asset, donor, headers = published
    donor_id, code = donor.id, screening.mark_code(donor.public_id)
    [item] = client.get("/api/v1/library", headers=headers).get_json()["items"]
    download, master_link = urlparse(item["download_url"]).path, urlparse(item["stream_url"]).path
    master = client.get(master_link)
    assert master.status_code == 200
    [variant] = _uris(master.get_data(as_text=True))
    segment = variant.rsplit("/", 1)[0] + "/s/v0_0000.ts"
    assert client.get(download).status_code == 200 and client.get(segment).status_code == 200
    # The same viewing's token fetched from four addresses in ten minutes: the donor is flagged.
    for n in range(4):
        assert client.get(variant, environ_base={"REMOTE_ADDR": f"198.51.100.{n + 1}"}).status_code == 200
    assert _rows(Viewing, donor_id) == 5 and _rows(ViewingFlag, donor_id) == 1
    assert screening.whois(code).id == donor_id
    marks = work_dir() / "marks" / code  # a marked segment kept for them
    marks.mkdir(parents=True, exist_ok=True)
    (marks / f"{asset.id}-seg.ts").write_bytes(b"\x47" * 188)

    _erase(donor)

    assert _rows(Viewing, donor_id) == 0 and _rows(ViewingFlag, donor_id) == 0
    assert not marks.exists()
    for path in (download, master_link, variant, segment):
        # the answer of a link that is not valid, whoever fetches it
        assert _same_as_forged(client, path, environ_base={"REMOTE_ADDR": "203.0.113.9"}) == 403, path
    assert _rows(Viewing, donor_id) == 0 and _rows(ViewingFlag, donor_id) == 0
    # Their code is nobody's now: the same answer as a code no account has.
    assert screening.whois(code) is None
    unknown = "AAAAAAAA" if code != "AAAAAAAA" else "BBBBBBBB"
    runner = app.test_cli_runner()
    erased_cli, unknown_cli = runner.invoke(args=["media", "whois", code]), runner.invoke(args=["media", "whois", unknown])
    assert erased_cli.exit_code == unknown_cli.exit_code == 1
    assert erased_cli.output.replace(code, "X") == unknown_cli.output.replace(unknown, "X")


def test_others_links_and_records_are_untouched(app, client, published, make_user, token_for, campaign_reward,
                                                entitle):
    """Erasing one donor leaves another's links, viewings and code as they were."""
    from filmfund.media import screening
    from filmfund.media.models import Viewing

    asset, donor, headers = published
    other = make_user("other@example.org")
    entitle(other, campaign_reward["digital-download"])
    other_id, other_code = other.id, screening.mark_code(other.public_id)
    [item] = client.get("/api/v1/library", headers=token_for(other)).get_json()["items"]
    master = client.get(urlparse(item["stream_url"]).path)
    assert master.status_code == 200 and _rows(Viewing, other_id) == 1

    _erase(donor)

    [variant] = _uris(master.get_data(as_text=True))
    assert client.get(variant).status_code == 200 and _rows(Viewing, other_id) == 2
    assert client.get(urlparse(item["download_url"]).path).status_code == 200
    assert screening.whois(other_code).id == other_id


def test_an_erased_donors_captions_link_is_not_valid(app, client, published):
    asset, donor, headers = published
    [item] = client.get("/api/v1/library", headers=headers).get_json()["items"]
    captions = urlparse(item["captions"][0]["url"]).path
    assert client.get(captions).status_code == 200

    _erase(donor)

    assert _same_as_forged(client, captions) == 403
