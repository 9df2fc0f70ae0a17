"""Early access (issue 15 item 4): the campaign file's [screening] window opens the film to the
donors holding the early-access reward, never before and never after (the window is set around
now, no sleeps), checked on every playlist and segment request; nothing published to it is a
download. Each playlist fetched is logged with a hash of the address, never the address; more
than three addresses in ten minutes flags the donor on the producer's page; old viewings are
purged. Each donor's segments carry their mark: two donors' frames differ in the mark's corner and
nowhere else to speak of, and the code names the donor on the producer's page and in the CLI."""
from __future__ import annotations

import subprocess
from datetime import timedelta
from types import SimpleNamespace

import pytest

from filmfund.media import ffmpeg


@pytest.fixture(scope="module")
def small_clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("screening") / "film.mp4"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=426x240:rate=25",
                    "-f", "lavfi", "-i", "sine=frequency=220:sample_rate=48000", "-t", "2", "-c:v", "libx264",
                    "-preset", "ultrafast", "-c:a", "aac", str(path)], check=True)
    return path


@pytest.fixture
def film(app, ready_asset, small_clip):
    """The finished film published to the early-access reward, with its real HLS package."""
    from filmfund.extensions import db
    from filmfund.media import streaming
    from filmfund.media.models import Publication
    from filmfund.rewards.campaign import current_campaign

    current_campaign()
    asset = ready_asset("Finished film")
    db.session.add(Publication(asset=asset, reward_key="early-access"))
    db.session.commit()
    info = ffmpeg.summarize(ffmpeg.probe(str(small_clip)))
    row = streaming.package(SimpleNamespace(id=0), asset, str(small_clip), info)
    assert row.state == "ready"
    return asset


@pytest.fixture
def donors(app, make_user, entitle):
    from filmfund.extensions import db
    from filmfund.rewards.campaign import current_campaign
    from filmfund.rewards.models import Reward

    current_campaign()  # loaded from the bundled file: its rewards

    def reward(key):
        return db.session.query(Reward).filter_by(key=key).first()

    patron, other, clips = make_user(role="donor"), make_user(role="donor"), make_user(role="donor")
    entitle(patron, reward("early-access"))
    entitle(other, reward("early-access"))
    entitle(clips, reward("video-clips"))
    return patron, other, clips


def _window(offset_opens: float, offset_closes: float):
    from filmfund.db import utcnow
    from filmfund.extensions import db
    from filmfund.media import screening

    now = utcnow()
    screening.set_window(now + timedelta(hours=offset_opens), now + timedelta(hours=offset_closes), "early-access")
    db.session.commit()


def _uris(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln and not ln.startswith("#")]


def _library(app, user):
    from filmfund.media import services

    with app.test_request_context("/account"):
        return services.library_for(user)


@pytest.mark.slow
def test_the_screening_streams_only_inside_its_window_and_only_to_its_donors(app, client, film, donors):
    from filmfund.media import streaming

    patron, _other, clips = donors
    with app.test_request_context():
        link = "/stream/" + streaming.link_token(patron, film) + "/master.m3u8"  # as if got in the window
        clips_link = "/stream/" + streaming.link_token(clips, film) + "/master.m3u8"
        play = streaming.play_token(patron, film)
    json = {"Accept": "application/json"}

    _window(+1, +2)  # before
    assert _library(app, patron) == []
    resp = client.get(link, headers=json)
    assert resp.status_code == 403 and resp.get_json()["error"]["code"] == "not_entitled"
    assert client.get(f"/stream/{play}/v0.m3u8").status_code == 403
    page = client.get("/screening").get_data(as_text=True)
    assert 'data-state="before"' in page and "What it takes" in page and "$1,000" in page
    assert "Premiere" in page and "Early access to the finished film" in page
    page = client.get("/screening?lang=zh-Hans").get_data(as_text=True)
    assert "首映" in page and "抢先观看成片" in page and "<time datetime=" in page
    # Without script (WeChat's browser), the Chinese page already says when in Beijing time.
    assert "（北京时间）</time>" in page and "UTC" not in page

    _window(-1, +1)  # during
    [item] = _library(app, patron)
    assert item["screening"] is True and item["download_url"] is None and item["play_url"] is None
    assert item["stream_url"].endswith("/master.m3u8")
    from filmfund.media import services

    assert services.entitled_download(patron, film.public_id) is None  # never a download
    resp = client.get(link)
    assert resp.status_code == 200
    variant = _uris(resp.get_data(as_text=True))[0]
    playlist = client.get(variant)
    assert playlist.status_code == 200
    segment = variant.rsplit("/", 1)[0] + "/" + _uris(playlist.get_data(as_text=True))[0]
    seg = client.get(segment)
    assert seg.status_code == 200 and seg.data[:1] == b"\x47"
    assert client.get(clips_link, headers=json).status_code == 403  # another reward's donor
    assert 'data-state="open"' in client.get("/screening").get_data(as_text=True)

    _window(-2, -1)  # after: the same links stop, even mid-viewing
    for url in (link, variant, segment):
        resp = client.get(url, headers=json)
        assert resp.status_code == 403 and resp.get_json()["error"]["code"] == "not_entitled", url
    assert _library(app, patron) == []
    assert 'data-state="after"' in client.get("/screening").get_data(as_text=True)


def _frame(data: bytes, tmp_path, name: str) -> tuple[bytes, int, int]:
    """The first frame of a TS segment as 8-bit gray pixels."""
    seg = tmp_path / f"{name}.ts"
    seg.write_bytes(data)
    out = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(seg), "-frames:v", "1", "-f", "rawvideo",
                          "-pix_fmt", "gray", "-"], capture_output=True, check=True).stdout
    probe = ffmpeg.summarize(ffmpeg.probe(str(seg)))
    return out, probe.width, probe.height


def _mean_diff(a: bytes, b: bytes, w: int, x0: int, y0: int, x1: int, y1: int) -> float:
    total = 0
    for y in range(y0, y1):
        row = y * w
        total += sum(abs(a[row + x] - b[row + x]) for x in range(x0, x1))
    return total / ((x1 - x0) * (y1 - y0))


@pytest.mark.slow
def test_each_donor_s_segments_carry_their_mark_and_the_code_names_them(app, client, film, donors, make_user,
                                                                        login_as, runner, tmp_path):
    from filmfund.media import screening, services, streaming

    patron, other, _clips = donors
    _window(-1, +1)
    frames = {}
    for donor in (patron, other):
        with app.test_request_context():
            link = "/stream/" + streaming.link_token(donor, film) + "/master.m3u8"
        variant = _uris(client.get(link).get_data(as_text=True))[0]
        name = _uris(client.get(variant).get_data(as_text=True))[0]
        resp = client.get(variant.rsplit("/", 1)[0] + "/" + name)
        assert resp.status_code == 200
        frames[donor.id] = _frame(resp.data, tmp_path, f"d{donor.id}")
    row = streaming.stream_of(film.id)
    with services.storage().local_path(row.index["segments"][name.removeprefix("s/")]["key"], tmp_path) as path:
        clean = _frame(path.read_bytes(), tmp_path, "clean")
    (a, w, h), (b, _, _), (c, _, _) = frames[patron.id], frames[other.id], clean
    corner = (w - int(h * 0.27), h - int(h * 0.09), w, h)  # the code's box, bottom right
    rest = (0, 0, w, int(h * 0.75))
    assert _mean_diff(a, c, w, *corner) > 2 * _mean_diff(a, c, w, *rest) + 0.5  # the mark is there
    assert _mean_diff(a, b, w, *corner) > 2 * _mean_diff(a, b, w, *rest) + 0.5  # and it differs per donor
    assert _mean_diff(a, b, w, *rest) < 3  # the picture itself is the same film

    # The code read off a leaked copy names the donor: the producer's page and the CLI.
    code = screening.mark_code(patron.public_id)
    assert len(code) == 8 and code != screening.mark_code(other.public_id) and patron.email not in code
    assert screening.whois(code.lower()).id == patron.id and screening.whois("AAAAAAAA") is None
    producer = make_user(role="producer")
    login_as(client, producer)
    page = client.get(f"/footage/screening?code={code}").get_data(as_text=True)
    assert f"is the mark of <strong>{patron.email}</strong>" in page
    result = runner.invoke(args=["media", "whois", code])
    assert result.exit_code == 0 and patron.email in result.output


def test_viewings_are_logged_without_addresses_and_many_addresses_are_flagged(app, client, ready_asset, donors,
                                                                              make_user, login_as):
    from filmfund.db import utcnow
    from filmfund.extensions import db
    from filmfund.media import screening, streaming
    from filmfund.media.models import Publication, Stream, Viewing, ViewingFlag

    patron, _other, _clips = donors
    asset = ready_asset("Finished film")
    db.session.add(Publication(asset=asset, reward_key="early-access"))
    db.session.add(Stream(asset_id=asset.id, state="ready", attempts=1, size=1, index={
        "master": "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=400000\nv0.m3u8\n",
        "playlists": {"v0.m3u8": "#EXTM3U\n#EXTINF:2.0,\nv0_0000.ts\n#EXT-X-ENDLIST\n"},
        "segments": {"v0_0000.ts": {"key": "none", "variant": 0}}, "variants": [{"name": "v0.m3u8", "height": 240}]}))
    db.session.commit()
    _window(-1, +1)
    with app.test_request_context():
        link = "/stream/" + streaming.link_token(patron, asset) + "/master.m3u8"
    for n, address in enumerate(("203.0.113.5", "203.0.113.5", "198.51.100.7", "192.0.2.44")):
        assert client.get(link, environ_base={"REMOTE_ADDR": address}).status_code == 200
    assert db.session.query(ViewingFlag).count() == 0  # three addresses: not yet
    rows = db.session.query(Viewing).all()
    assert len(rows) == 4 and all(r.screening and "203.0.113" not in r.address for r in rows)
    assert len({r.address for r in rows}) == 3
    client.get(link, environ_base={"REMOTE_ADDR": "100.64.9.9"})
    [flag] = db.session.query(ViewingFlag).all()
    assert flag.user_id == patron.id and flag.addresses == 4

    producer = make_user(role="producer")
    login_as(client, producer)
    page = client.get("/footage/screening").get_data(as_text=True)
    assert patron.email in page and screening.mark_code(patron.public_id) in page
    assert "203.0.113" not in page and "Finished film" in page

    # Viewings older than MEDIA_VIEWING_DAYS are purged; the flag stays.
    for r in db.session.query(Viewing).all():
        r.at = utcnow() - timedelta(days=31)
    db.session.commit()
    assert screening.purge_viewings() == 5
    db.session.commit()
    assert db.session.query(Viewing).count() == 0 and db.session.query(ViewingFlag).count() == 1


def test_the_campaign_file_screening_is_checked(app, tmp_path):
    from filmfund.rewards.campaign_file import CampaignFileError, parse_window

    assert parse_window(None) is None
    ok = parse_window({"opens": "2027-09-01T20:00:00+08:00", "closes": "2027-09-02T20:00:00+08:00",
                       "reward": "early-access"})
    assert ok["opens"] == "2027-09-01T12:00:00+00:00"
    for bad, field in (({"opens": "2027-09-01T20:00:00", "closes": "2027-09-02T20:00:00+08:00", "reward": "x"}, "opens"),
                       ({"opens": "2027-09-02T20:00:00+08:00", "closes": "2027-09-01T20:00:00+08:00", "reward": "x"},
                        "closes"),
                       ({"opens": "2027-09-01T20:00:00+08:00", "closes": "2027-09-02T20:00:00+08:00"}, "reward")):
        with pytest.raises(ValueError, match=f"screening.{field}"):
            parse_window(bad)
    from filmfund.rewards.campaign_file import read_campaign_file
    from filmfund.config import BUNDLED_CAMPAIGN

    text = BUNDLED_CAMPAIGN.read_text().replace('reward = "early-access"', 'reward = "no-such-reward"')
    (tmp_path / "c.toml").write_text(text)
    with pytest.raises(CampaignFileError, match="screening.reward"):
        read_campaign_file(tmp_path / "c.toml")
    assert read_campaign_file(BUNDLED_CAMPAIGN).screening["reward"] == "early-access"


@pytest.mark.slow
def test_the_account_says_when_the_screening_opens_and_the_library_links_its_player(app, film, donors, login_as,
                                                                                   token_for):
    """Outside its window the rewards table said "In your downloads — See it" (已放入“您的下载” 查看)
    for a film that is not there; inside it, the library API's page_url was /library/<id>, the
    download, a 404 for a film that only streams."""
    import re

    patron, _other, _clips = donors
    donor = login_as(app.test_client(), patron)

    def row(lang: str) -> str:
        html = donor.get(f"/account?lang={lang}").get_data(as_text=True)
        return re.search(r'<tr id="reward-early-access".*?</tr>', html, re.S).group(0)

    _window(+1, +2)  # before
    en, zh = row("en"), row("zh-Hans")
    assert "Not open yet" in en and "The screening opens" in en and "UTC" in en
    assert "尚未开放" in zh and "放映将于" in zh and "（北京时间）" in zh
    for text in (en, zh):
        assert "In your downloads" not in text and "已放入“您的下载”" not in text and "#downloads" not in text

    _window(-2, -1)  # after
    en, zh = row("en"), row("zh-Hans")
    assert "Closed" in en and "The screening closed on" in en and "See it" not in en
    assert "已结束" in zh and "放映已于" in zh and "已放入“您的下载”" not in zh

    _window(-1, +1)  # open: the film plays in the downloads
    assert 'href="/account#downloads">Watch it</a>' in row("en")
    [item] = donor.get("/api/v1/library", headers=token_for(patron)).get_json()["items"]
    assert item["screening"] is True and item["download_url"] is None
    page, _hash, anchor = item["page_url"].partition("#")
    assert page.endswith("/account") and anchor == f"library-{film.public_id}"
    account = donor.get("/account").get_data(as_text=True)
    assert f'id="{anchor}"' in account and 'class="library-player"' in account
