"""The issue's "done when": a folder with a good 1080i clip, a spanned pair and a damaged clip
gives two ready assets (proxy, web, poster) and one damaged asset with a clear diagnosis, on
the local backend and on S3. Real ffmpeg on real (small) clips, through the real queue."""
from __future__ import annotations

import shutil

import pytest

from filmfund.media import ffmpeg

pytestmark = pytest.mark.one_database  # ffmpeg's work, not the database's (tests/conftest.py)


@pytest.fixture
def storage_backend(request):
    # Each database run takes one backend, so both backends and both databases are covered
    # without running the encodes four times: SQLite with the local folder, PostgreSQL with S3.
    return "s3" if request.node.callspec.params.get("database_url") == "postgresql" else "file"


def test_folder_of_footage_ends_ready_or_damaged(app, runner, client, clip_folder, drain, storage_backend,
                                                 make_user, login_as, campaign_reward):
    from filmfund.extensions import db
    from filmfund.media import services
    from filmfund.media.models import AssetState, Job, JobStatus

    result = runner.invoke(args=["media", "ingest", str(clip_folder)])
    assert result.exit_code == 0, result.output
    lines = [ln for ln in result.stdout.splitlines() if ln.strip()]
    assert len(lines) == 3 and all(ln.split()[1] == "uploaded" for ln in lines), result.stdout
    assert "3 asset(s): 3 new" in result.output  # the summary table (stderr)

    login_as(client, make_user(role="producer"))
    board = client.get("/footage/").get_data(as_text=True)
    assert board.count("<progress") == 3 and "verify" in board  # queued work shows on the board

    assert drain() == 3  # 3 verify jobs: a clean clip's one decode makes proxy, poster and strip
    assets = {a.title: a for a in services.find_assets()}
    assert set(assets) == {"good_1080i", "00001 (+1 part)", "corrupt"}

    for title in ("good_1080i", "00001 (+1 part)"):
        asset = assets[title]
        assert asset.state == AssetState.READY, (title, asset.problems)
        assert asset.problems == []
        kinds = {r.kind.value for r in asset.renditions}
        assert kinds == {"proxy", "poster", "strip"}  # the donors' web rendition waits for a first publish
        assert {s.kind.value: s.state.value for s in asset.rendition_states} == {
            "proxy": "ready", "poster": "ready", "strip": "ready"}
        assert asset.interlaced
        with services.storage().local_path(asset.rendition("proxy").storage_key, services.work_dir()) as p:
            proxy = ffmpeg.summarize(ffmpeg.probe(str(p)))
        assert (proxy.height, proxy.width, proxy.interlaced) == (540, 960, False)
        assert abs(proxy.duration - asset.duration) < 0.3
        assert proxy.audio_codec == "aac"

    good = assets["good_1080i"]
    services.publish(good, "digital-download", user=make_user(role="producer"))
    db.session.commit()  # as the asset page does: the web rendition's job is queued then
    assert drain() == 1  # the web rendition, made now
    good = services.get_asset(good.public_id)
    assert good.state == AssetState.READY and good.rendition("web") is not None
    with services.storage().local_path(good.rendition("web").storage_key, services.work_dir()) as p:
        web = ffmpeg.summarize(ffmpeg.probe(str(p)))
        head = open(p, "rb").read(64 * 1024)
    assert web.height == 720
    assert head.find(b"moov") < head.find(b"mdat") or b"mdat" not in head  # faststart: index first
    assert [e.to_state.value for e in services.history(good)][-1] == "ready"  # it stayed ready meanwhile

    span = assets["00001 (+1 part)"]
    assert [s.original_name for s in span.sources] == ["00001.MTS", "00002.MTS"]
    assert 2.8 < span.duration < 3.3  # one take of 3 s, not 1.5 + 1.5 + overlap

    damaged = assets["corrupt"]
    assert damaged.state == AssetState.DAMAGED
    codes = [p["code"] for p in damaged.problems]
    assert "decode_errors" in codes and "rescue" in codes
    problem = next(p for p in damaged.problems if p["code"] == "decode_errors")
    assert 0.4 <= problem["at"] <= 1.6  # the damage is in the middle of a 2 s clip
    assert "error" in problem["message"] and problem["detail"]  # what ffmpeg said
    rescue = next(p for p in damaged.problems if p["code"] == "rescue")
    assert rescue["message"].startswith("A partial rescue rendition was made")
    assert damaged.rendition("rescue") is not None
    page = client.get(f"/footage/{damaged.public_id}").get_data(as_text=True)
    assert "decode_errors" in page and problem["at_timecode"] in page and "What ffmpeg said" in page
    assert f"/footage/{damaged.public_id}/r/rescue" in page  # the rescue plays in the page
    board = client.get("/footage/").get_data(as_text=True)
    assert board.count('class="poster"') == 2 and "<progress" not in board
    poster = client.get(f"/footage/{span.public_id}/r/poster")
    assert poster.status_code == 200 and poster.mimetype == "image/jpeg" and poster.data[:2] == b"\xff\xd8"

    import sqlalchemy as sa

    statuses = db.session.scalars(sa.select(Job.status)).all()
    assert statuses and all(s == JobStatus.SUCCEEDED for s in statuses)
    # History: every asset has its moves recorded in order.
    moves = [(e.from_state, e.to_state) for e in services.history(span)]
    assert [m[1].value for m in moves] == ["uploaded", "verifying", "verified", "transcoding", "ready"]

    # Re-ingesting the same bytes is recognised, not duplicated.
    again = runner.invoke(args=["media", "ingest", str(clip_folder)])
    assert again.exit_code == 0 and "0 new, 3 already known" in again.output
    assert len(services.find_assets()) == 3


def test_damaged_clips_are_diagnosed_not_crashed(app, clips, tmp_path, drain):
    """Truncated (ffmpeg exits 0), spanned part 2 alone (judged together with part 1 only when
    both are present), unreadable junk: each ends in a state with a reason."""
    from filmfund.media import services
    from filmfund.media.models import AssetState

    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(clips / "truncated.MTS", folder / "truncated.MTS")
    (folder / "junk.mp4").write_bytes(b"this is not a video" * 100)
    results = services.ingest_paths([folder])
    drain()
    by_title = {r.asset.title: services.get_asset(r.asset.public_id) for r in results}
    trunc = by_title["truncated"]
    assert trunc.state == AssetState.DAMAGED
    codes = {p["code"] for p in trunc.problems}
    assert "truncated" in codes
    assert "192-byte" in next(p for p in trunc.problems if p["code"] == "truncated")["message"]
    junk = by_title["junk"]
    assert junk.state == AssetState.DAMAGED
    assert junk.problems[0]["code"] == "not_media"  # text, judged from its bytes: no ffmpeg ran on it


def test_still_image_is_an_image_asset_donors_can_download(app, clips, drain, make_user, campaign_reward, entitle):
    from filmfund.extensions import db
    from filmfund.media import services
    from filmfund.media.models import AssetKind, AssetState

    [result] = services.ingest_paths([clips / "still.jpg"], title="Poster art")
    drain()
    asset = services.get_asset(result.asset.public_id)
    assert asset.kind == AssetKind.IMAGE
    assert asset.state == AssetState.READY
    assert {r.kind.value for r in asset.renditions} == {"image", "poster"}
    services.publish(asset, "digital-download", user=make_user(role="producer"))
    db.session.commit()
    donor = make_user(role="donor")
    entitle(donor, campaign_reward["digital-download"])
    with app.test_request_context("/account"):
        [item] = services.library_for(donor)
    assert item["kind"] == "image" and item["title"] == "Poster art"
    dl = services.entitled_download(donor, asset.public_id)
    # The still made for donors (re-encoded, no metadata), never the original file.
    assert dl.content_type == "image/jpeg" and dl.filename == "Poster art.jpg"
    assert dl.storage_key == asset.rendition("image").storage_key != asset.sources[0].storage_key


def test_periodic_reaper_and_fixity_are_scheduled(app):
    from filmfund import jobs

    names = {t.name for t in jobs.huey._registry.periodic_tasks}
    assert {"filmfund.media.reap_stale_jobs", "filmfund.media.scheduled_fixity"} <= names


def test_state_machine_refuses_illegal_moves(app, ready_asset):
    from filmfund.errors import IllegalTransition
    from filmfund.media.models import AssetState

    asset = ready_asset()
    with pytest.raises(IllegalTransition):
        asset.move(AssetState.UPLOADED)
    with pytest.raises(IllegalTransition):
        asset.move(AssetState.DAMAGED)  # only a verify pass can find damage
    asset.move(AssetState.VERIFYING)
    assert asset.state == AssetState.VERIFYING


def test_fixity_verify_exits_non_zero_on_a_corrupted_object(app, runner, clips, drain):
    from filmfund.media import services

    [result] = services.ingest_paths([clips / "small.mp4"])
    drain()
    asset = services.get_asset(result.asset.public_id)
    ok = runner.invoke(args=["media", "verify", "--all"])
    assert ok.exit_code == 0, ok.output
    assert f"{asset.public_id} fixity=ok state=ready" in ok.stdout

    # Flip a byte of the stored original behind the app's back (a failing disk would).
    store, key = services.storage(), asset.sources[0].storage_key
    data = bytearray(store.open(key).read())
    data[len(data) // 2] ^= 0xFF
    path = store.local_file(key)
    if path is not None:
        path.chmod(0o644)
        path.write_bytes(bytes(data))
    else:  # S3 (this module runs PostgreSQL on S3)
        store.client.put_object(Bucket=store.bucket, Key=store._k(key), Body=bytes(data))

    bad = runner.invoke(args=["media", "verify", asset.public_id])
    assert bad.exit_code == 1
    assert f"{asset.public_id} fixity=FAILED state=ready" in bad.stdout
    asset = services.get_asset(asset.public_id)
    assert asset.fixity_ok is False and any(p["code"] == "fixity" for p in asset.problems)
    assert runner.invoke(args=["media", "verify"]).exit_code == 2  # names nothing: usage error
    assert runner.invoke(args=["media", "verify", "nope"]).exit_code == 2


def test_recording_date_and_metadata_from_the_file(app, clips, drain):
    from filmfund.media import services

    [result] = services.ingest_paths([clips / "small.mp4"])
    asset = services.get_asset(result.asset.public_id)
    assert asset.recorded_at.isoformat() == "2024-05-17T09:30:00+00:00"
    assert (asset.width, asset.height) == (320, 180)
    assert len(asset.sha256) == 64


def test_second_part_of_a_take_alone_is_not_damaged(app, clips, tmp_path):
    """A file that continues another (mid-GOP start) is never judged damaged on its own."""
    from filmfund import jobs
    from filmfund.extensions import db
    from filmfund.media import services
    from filmfund.media.models import AssetState

    shutil.copy(clips / "00002.MTS", tmp_path / "00002.MTS")
    [result] = services.ingest_paths([tmp_path / "00002.MTS"])
    assert jobs.run_burst(max_tasks=1) == 1  # the verify only
    db.session.expire_all()
    asset = services.get_asset(result.asset.public_id)
    assert asset.state == AssetState.VERIFIED
    [notice] = asset.problems
    assert notice["code"] == "starts_mid_take" and notice["severity"] == "info"
    assert "previous file" in notice["message"]


def test_reingest_is_recognised_without_uploading_again(app, clips, tmp_path, monkeypatch):
    from filmfund.media import services

    path = tmp_path / "small.mp4"
    shutil.copy(clips / "small.mp4", path)
    [first] = services.ingest_paths([path])
    store = services.storage()
    calls = []
    monkeypatch.setattr(type(store), "put_stream", lambda *a, **k: calls.append(a) or (_ for _ in ()).throw(
        AssertionError("re-uploaded")))
    [again] = services.ingest_paths([path])
    assert not again.created and again.asset.id == first.asset.id and calls == []
    monkeypatch.undo()
    # Same name and size, other bytes (a fresh copy off the card): a new asset, not "known".
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))
    [third] = services.ingest_paths([path])
    assert third.created and third.asset.id != first.asset.id


def test_the_same_bytes_registered_by_a_racing_ingest_undo_only_that_insert(app):
    """Two ingests of the same bytes at once: the second finds the first's asset when its insert
    fails, and the rest of its caller's transaction is kept (a savepoint, not a rollback)."""
    import sqlalchemy as sa

    from filmfund.extensions import db
    from filmfund.media import ingest
    from filmfund.media.models import Asset, AssetKind, Job, Source

    def take(title: str, sha: str) -> Asset:
        asset = Asset(title=title, sha256=sha, size=3, kind=AssetKind.VIDEO)
        asset.sources.append(Source(position=0, original_name=f"{title}.MTS", sha256=sha, size=3, storage_key=sha))
        return asset

    first = ingest._register(take("first", "a" * 64), "test")
    db.session.commit()
    other = ingest._register(take("other", "b" * 64), "test")  # the caller's earlier work, not committed yet
    raced = ingest._register(take("raced", "a" * 64), "test")  # lost the race (no _existing_asset check here)
    assert not raced.created and raced.asset.id == first.asset.id and other.created
    db.session.commit()
    assert sorted(db.session.scalars(sa.select(Asset.title))) == ["first", "other"]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Job)) == 2  # one verify job each


def test_a_file_named_in_bytes_that_are_not_utf8_is_ingested_under_its_escaped_name(app, runner, clips, tmp_path,
                                                                                     drain):
    """A failing laptop or a damaged card's FAT can name a file in bytes that are not UTF-8.
    The take is ingested like any other (the bytes are the footage), under a name that shows
    those bytes escaped; run again over the same folder, it is recognised, not copied twice.
    (It stopped the whole ingest with a traceback: no database takes Python's lone surrogates.)"""
    import os

    from filmfund.media import services
    from filmfund.media.models import AssetState

    card = tmp_path / "card"
    card.mkdir()
    garbled = card / os.fsdecode(b"\xff\xfeTAKE.MTS")
    shutil.copy(clips / "good_1080i.MTS", garbled)
    shutil.copy(clips / "00001.MTS", card / "00009.MTS")
    first = runner.invoke(args=["media", "ingest", str(card)])
    assert first.exit_code == 0, first.output
    assert "2 asset(s): 2 new" in first.output
    assert drain() == 2
    by_title = {a.title: a for a in services.find_assets()}
    assert set(by_title) == {"00009", "\\xff\\xfeTAKE"}, set(by_title)
    take = by_title["\\xff\\xfeTAKE"]
    assert take.state == AssetState.READY, take.problems
    assert [(s.original_name, s.original_path) for s in take.sources] == [
        ("\\xff\\xfeTAKE.MTS", f"{card}/\\xff\\xfeTAKE.MTS")]
    again = runner.invoke(args=["media", "ingest", str(card)])
    assert again.exit_code == 0, again.output
    assert "2 asset(s): 0 new, 2 already known" in again.output
