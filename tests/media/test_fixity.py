"""Fixity with consequences (issue 6, item 5): a failed check puts the asset in alert (board,
dashboard, API), stops new donor links and publishing; re-ingesting an intact copy repairs it,
and so does the second copy that FILMFUND_REPLICA_URL names (local folder or S3); abandoned
temporary uploads are swept. `filmfund media verify` reports fixity and state separately."""
from __future__ import annotations

import shutil

import pytest


def _rot(store, key: str) -> None:
    """Flip a byte of a stored object behind the app's back, as a failing disk would."""
    data = bytearray(store.open(key).read())
    data[len(data) // 2] ^= 0xFF
    path = store.local_file(key)
    if path is not None:
        path.chmod(0o644)
        path.write_bytes(bytes(data))
    else:
        store.client.put_object(Bucket=store.bucket, Key=store._k(key), Body=bytes(data))


@pytest.fixture
def published(app, client, make_user, token_for, ready_asset, campaign_reward, entitle):
    """A ready asset published to a reward a donor holds."""
    asset = ready_asset("Interview")
    producer = make_user(role="producer")
    resp = client.post(f"/api/v1/media/assets/{asset.public_id}/publish", json={"reward": "digital-download"},
                       headers=token_for(producer))
    assert resp.status_code == 201
    donor = make_user(role="donor")
    entitle(donor, campaign_reward["digital-download"])
    return asset, producer, donor


def test_failed_check_puts_the_asset_in_alert_everywhere_and_stops_donor_links(
        app, client, runner, published, token_for, login_as, ready_asset):
    from filmfund.media import fixity, services

    asset, producer, donor = published
    with app.test_request_context("/"):
        assert len(services.library_for(donor)) == 1
    ok = runner.invoke(args=["media", "verify", asset.public_id])
    assert ok.exit_code == 0 and f"{asset.public_id} fixity=ok state=ready" in ok.stdout

    _rot(services.storage(), asset.sources[0].storage_key)
    bad = runner.invoke(args=["media", "verify", asset.public_id])
    assert bad.exit_code == 1
    assert f"{asset.public_id} fixity=FAILED state=ready" in bad.stdout  # intact state, failed fixity
    asset = services.get_asset(asset.public_id)
    assert fixity.in_alert(asset) and asset.state.value == "ready"
    [problem] = [p for p in asset.problems if p["code"] == "fixity"]
    assert problem["severity"] == "alert" and "00000.MTS" in problem["message"]

    # No new donor link: not in the library, no download, no signed link made.
    with app.test_request_context("/"):
        assert services.library_for(donor) == []
        assert services.entitled_download(donor, asset.public_id) is None
    login_as(client, donor)
    assert client.get(f"/library/{asset.public_id}").status_code == 404
    # Nor can it be published to another reward.
    resp = client.post(f"/api/v1/media/assets/{asset.public_id}/publish", json={"reward": "behind-the-scenes"},
                       headers=token_for(producer))
    assert resp.status_code == 409 and resp.get_json()["error"]["code"] == "fixity_alert"

    # The API, the board and the dashboard say so.
    [item] = [i for i in client.get("/api/v1/media/assets", headers=token_for(producer)).get_json()["items"]
              if i["id"] == asset.public_id]
    assert item["fixity"]["status"] == "alert" and item["state"] == "ready"
    ready_asset("Another clip")
    login_as(client, producer)
    board = client.get("/footage/").get_data(as_text=True)
    assert "fixity alert" in board
    alerts_only = client.get("/footage/?state=alert").get_data(as_text=True)
    assert "Interview" in alerts_only and "Another clip" not in alerts_only
    dashboard = client.get("/admin/").get_data(as_text=True)
    assert "Footage in fixity alert" in dashboard and "Interview" in dashboard
    assert "fixity alert" in client.get(f"/footage/{asset.public_id}").get_data(as_text=True)


def test_reingesting_an_intact_copy_repairs_the_stored_original(app, clips, tmp_path, runner):
    from filmfund.media import fixity, services

    path = tmp_path / "small.mp4"
    shutil.copy(clips / "small.mp4", path)
    [first] = services.ingest_paths([path])
    key = first.asset.sources[0].storage_key
    _rot(services.storage(), key)
    [result] = services.check_fixity([first.asset.public_id])
    assert not result.ok and fixity.in_alert(result.asset)

    # A damaged copy (other bytes) repairs nothing: it is another asset, the alert stays.
    damaged = tmp_path / "elsewhere" / "small.mp4"
    damaged.parent.mkdir()
    data = bytearray(path.read_bytes())
    data[100] ^= 0xFF
    damaged.write_bytes(bytes(data))
    [other] = services.ingest_paths([damaged])
    assert other.created and other.asset.id != first.asset.id
    assert fixity.in_alert(services.get_asset(first.asset.public_id))

    # The intact copy, ingested again from the same path: the stored object is replaced.
    [again] = services.ingest_paths([path])
    assert not again.created and again.asset.id == first.asset.id
    assert "repaired" in again.how
    asset = services.get_asset(first.asset.public_id)
    assert asset.fixity_ok is True and not [p for p in asset.problems if p["code"] == "fixity"]
    assert services.storage().sha256_of(key)[0] == asset.sources[0].sha256
    assert any("fixity alert ended" in e.note for e in services.history(asset))
    assert runner.invoke(args=["media", "verify", asset.public_id]).exit_code == 0


def test_reupload_from_the_page_repairs_too(app, client, clips, make_user, login_as):
    import re

    from filmfund.media import services

    login_as(client, make_user(role="producer"))
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/footage/").get_data(as_text=True)).group(1)

    def upload():
        with open(clips / "small.mp4", "rb") as fh:
            return client.post("/footage/upload", data={"csrf_token": token, "file": (fh, "small.mp4")},
                               content_type="multipart/form-data")

    assert upload().status_code == 303
    [asset] = services.find_assets()
    _rot(services.storage(), asset.sources[0].storage_key)
    services.check_fixity(None)
    assert services.get_asset(asset.public_id).fixity_ok is False
    assert upload().status_code == 303
    assert services.get_asset(asset.public_id).fixity_ok is True


@pytest.fixture(params=["file", "s3"])
def replica_backend(request):
    return request.param


@pytest.fixture
def app_overrides(app_overrides, request, tmp_path):
    overrides = dict(app_overrides)
    if "replica_backend" in request.fixturenames:
        if request.getfixturevalue("replica_backend") == "s3":
            endpoint = request.getfixturevalue("moto_server")
            import boto3
            import uuid

            bucket = f"replica-{uuid.uuid4().hex[:10]}"
            boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket=bucket)
            overrides.update({"REPLICA_URL": f"s3://{bucket}/second", "REPLICA_S3_ENDPOINT_URL": endpoint})
        else:
            overrides["REPLICA_URL"] = (tmp_path / "second-copy").as_uri()
    return overrides


def test_second_copy_is_written_at_ingest_checked_and_used_for_repair(app, clips, tmp_path, runner, replica_backend):
    from filmfund.media import fixity, services

    [result] = services.ingest_paths([clips / "small.mp4"])
    source = result.asset.sources[0]
    second = fixity.replica()
    assert second is not None and second.url != services.storage().url
    assert second.sha256_of(source.storage_key)[0] == source.sha256  # written at ingest

    _rot(services.storage(), source.storage_key)  # the first copy rots: repaired from the second
    [check] = services.check_fixity([result.asset.public_id])
    assert check.ok and check.repaired and "from the second copy" in check.repaired[0]
    assert services.storage().sha256_of(source.storage_key)[0] == source.sha256
    asset = services.get_asset(result.asset.public_id)
    assert asset.fixity_ok is True and [p["code"] for p in asset.problems] == ["fixity_repaired"]

    second.delete(source.storage_key)  # the second copy is lost: rewritten from the first
    out = runner.invoke(args=["media", "verify", asset.public_id])
    assert out.exit_code == 0 and "fixity=repaired" in out.stdout, out.output
    assert second.sha256_of(source.storage_key)[0] == source.sha256

    _rot(services.storage(), source.storage_key)  # both rot: nothing intact is left, alert
    _rot(second, source.storage_key)
    out = runner.invoke(args=["media", "verify", asset.public_id])
    assert out.exit_code == 1 and "fixity=FAILED" in out.stdout and "nor does the second copy" in out.output
    assert services.get_asset(asset.public_id).fixity_ok is False


def test_an_unreachable_second_copy_is_a_warning_not_an_alert(app, clips, runner, tmp_path):
    """The second storage gone (its folder replaced by a file: every read and write fails for
    real): the intact first copy keeps the asset out of alert, `verify` says so and exits 1."""
    import shutil as sh

    from filmfund.media import fixity, services

    app.config["REPLICA_URL"] = (tmp_path / "second-copy").as_uri()
    [result] = services.ingest_paths([clips / "small.mp4"])
    assert fixity.replica().exists(result.asset.sources[0].storage_key)
    sh.rmtree(tmp_path / "second-copy")
    (tmp_path / "second-copy").write_text("the disk of the second copy is gone")
    out = runner.invoke(args=["media", "verify", result.asset.public_id])
    assert out.exit_code == 1, out.output
    assert f"{result.asset.public_id} fixity=ok state=uploaded second_copy=FAILED" in out.stdout
    asset = services.get_asset(result.asset.public_id)
    assert asset.fixity_ok is True and not fixity.in_alert(asset)
    [warning] = [p for p in asset.problems if p["code"] == "replica"]
    assert warning["severity"] == "warning" and "small.mp4" in warning["message"]

    # Even a second storage that cannot be opened at all (a fresh process) loses no ingest.
    app.extensions["filmfund.media.storage"].clear()
    clip = tmp_path / "other.mp4"
    clip.write_bytes((clips / "small.mp4").read_bytes()[:-1] + b"\x00")
    [other] = services.ingest_paths([clip])
    assert other.created and any(p["code"] == "replica" for p in services.get_asset(other.asset.public_id).problems)
    out = runner.invoke(args=["media", "verify", other.asset.public_id])
    assert out.exit_code == 1 and "second_copy=FAILED" in out.stdout and "cannot be opened" in out.output


def test_a_damaged_rendition_is_dropped_and_made_again(app, ready_asset):
    from filmfund.media import services
    from filmfund.media.models import Job, JobKind, JobStatus
    from filmfund.extensions import db

    asset = ready_asset()
    web = asset.rendition("web")
    _rot(services.storage(), web.storage_key)
    [check] = services.check_fixity([asset.public_id])
    assert check.ok and "web rendition" in check.repaired[0]
    asset = services.get_asset(asset.public_id)
    assert asset.rendition("web") is None and asset.fixity_ok is True  # never served again
    job = db.session.scalar(db.select(Job).where(Job.asset_id == asset.id).order_by(Job.id.desc()))
    assert job.kind == JobKind.TRANSCODE and job.status in (JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.FAILED,
                                                            JobStatus.SUCCEEDED)


def test_sweep_of_abandoned_uploads_is_scheduled_and_covers_both_storages(app, tmp_path):
    import os
    import time

    from filmfund import jobs
    from filmfund.media import fixity, services

    names = {t.name for t in jobs.huey._registry.periodic_tasks}
    assert "filmfund.media.sweep_incoming" in names
    leftover = services.storage().root / ".incoming" / "killed"
    leftover.write_bytes(b"half an upload")
    os.utime(leftover, (time.time() - 2 * 86400,) * 2)
    from filmfund.media import resumable

    given_up = resumable.partials_dir() / "given-up.part"  # a resumable upload nobody finished
    given_up.write_bytes(b"the first chunks")
    os.utime(given_up, (time.time() - 2 * 86400,) * 2)
    recent = resumable.partials_dir() / "going-on.part"
    recent.write_bytes(b"a chunk a minute ago")
    from filmfund.media import early

    killed_ingest = early.work_folder(app.config) / "tmpkilled"  # a `media ingest --wait` killed mid-decode
    killed_ingest.mkdir()
    (killed_ingest / "proxy.mp4").write_bytes(b"half a proxy")
    os.utime(killed_ingest, (time.time() - 2 * 86400,) * 2)
    assert fixity.sweep_incoming() == {"storage": 1, "resumable": 1, "early_decodes": 1}
    assert not leftover.exists() and not given_up.exists() and recent.exists() and not killed_ingest.exists()


def test_verify_reports_a_damaged_asset_apart_from_its_intact_storage(app, runner, ready_asset):
    from filmfund.extensions import db
    from filmfund.media.models import AssetState

    good, damaged = ready_asset("Good take"), ready_asset("Card error take")
    damaged.state = AssetState.DAMAGED
    damaged.problems = [{"code": "decode_errors", "message": "The decoder reported 3 error(s) around 00:00:01.20"}]
    db.session.commit()
    out = runner.invoke(args=["media", "verify", "--all"])
    assert out.exit_code == 1
    lines = dict(line.split(" ", 1) for line in out.stdout.splitlines())
    assert lines[good.public_id] == "fixity=ok state=ready"
    assert lines[damaged.public_id] == "fixity=ok state=DAMAGED"  # stored intact, still not usable
    assert "decoder reported 3 error(s)" in out.output
    assert "fixity failed for 0, 1 damaged or failed" in out.output
    assert runner.invoke(args=["media", "verify", good.public_id]).exit_code == 0


def test_a_deleted_original_is_said_missing_and_a_changed_one_damaged(app, runner, ready_asset):
    """The crew looks for a deleted file, not for a bad disk: the two are told apart."""
    from filmfund.media import services

    gone, rotten = ready_asset("Deleted"), ready_asset("Rotten")
    store = services.storage()
    store.local_file(gone.sources[0].storage_key).unlink()
    _rot(store, rotten.sources[0].storage_key)
    out = runner.invoke(args=["media", "verify", gone.public_id, rotten.public_id])
    assert out.exit_code == 1
    assert f"the stored original ({gone.sources[0].storage_key}) is missing" in out.output
    assert f"the stored original ({rotten.sources[0].storage_key}) does not match its SHA-256" in out.output


def test_card_structure_files_are_checked_kept_twice_and_repaired(app, clips, tmp_path, runner):
    """The playlist and clip info kept with a take are originals too: in the second copy, in the
    check, repaired from the second copy, and by ingesting the card again."""
    from filmfund.media import fixity, services
    from tests.media import camfiles

    app.config["REPLICA_URL"] = (tmp_path / "second-copy").as_uri()
    good = (clips / "good_1080i.MTS").read_bytes()
    camfiles.card(tmp_path / "CARD", {"00001": good}, [("00001", 1)])
    [result] = services.ingest_paths([tmp_path / "CARD"])
    asset = services.get_asset(result.asset.public_id)
    cpi = next(c for c in asset.sidecars if c.name.endswith(".CPI"))
    second = fixity.replica()
    assert second.sha256_of(cpi.storage_key)[0] == cpi.sha256  # written at ingest

    _rot(services.storage(), cpi.storage_key)
    [check] = services.check_fixity([asset.public_id])
    assert check.ok and any("card file BDMV/CLIPINF/00001.CPI" in r for r in check.repaired)

    app.config["REPLICA_URL"] = None  # one copy only: the damage is an alert until the card comes back
    _rot(services.storage(), cpi.storage_key)
    out = runner.invoke(args=["media", "verify", asset.public_id])
    assert out.exit_code == 1 and "fixity=FAILED" in out.stdout and "00001.CPI" in out.output
    [again] = services.ingest_paths([tmp_path / "CARD"])
    assert not again.created and again.asset.id == asset.id and "repaired" in again.how
    assert services.get_asset(asset.public_id).fixity_ok is True


def test_a_damaged_copy_with_burned_captions_is_dropped_and_offered_to_burn_again(
        app, client, published, token_for, login_as):
    """The donors' copy with captions burned in is a stored object with a recorded SHA-256 like a
    rendition: a damaged one must not go on being served. It is dropped, and its burn marked
    failed, so the producer's page offers the button that makes it again."""
    import io
    import os

    from filmfund.extensions import db
    from filmfund.media import services

    asset, producer, donor = published
    resp = client.put(f"/api/v1/media/assets/{asset.public_id}/captions/zh-Hans",
                      data="WEBVTT\n\n00:00:00.000 --> 00:00:01.000\n你好\n".encode(),
                      headers={**token_for(producer), "Content-Type": "text/vtt"})
    assert resp.status_code == 204
    store = services.storage()
    burned = store.put_stream(io.BytesIO(b"\x00\x00\x00\x18ftypmp42" + os.urandom(50_000)), ".mp4")
    [caption] = services.get_asset(asset.public_id).captions
    caption.burned_key, caption.burned_sha256, caption.burned_size = burned.key, burned.sha256, burned.size
    caption.burn_state = "ready"
    db.session.commit()
    url = f"/library/{asset.public_id}/captions/zh-Hans/burned.mp4"
    login_as(client, donor)
    assert client.get(url).status_code == 200

    _rot(store, burned.key)
    [check] = services.check_fixity([asset.public_id])
    assert check.ok and any("copy with zh-Hans captions burned in" in r for r in check.repaired)
    assert client.get(url).status_code == 404  # the damaged bytes are never served again
    assert not store.exists(burned.key)        # and gone, so a new burn stores intact bytes
    [caption] = services.get_asset(asset.public_id).captions
    assert caption.burn_state == "failed" and caption.burned_key is None
    assert any(p["code"] == "fixity_repaired" and "burned in" in p["message"]
               for p in services.get_asset(asset.public_id).problems)
    login_as(client, producer)
    page = client.get(f"/footage/{asset.public_id}").get_data(as_text=True)
    assert f"/footage/{asset.public_id}/captions/zh-Hans/burn" in page and "burn it again" in page


def test_a_damaged_stream_segment_fails_the_package_and_queues_it_again(app, client, published):
    """A donor's stream is served segment by segment from storage: a damaged segment stops the
    package being served (failed), is dropped from storage (the new package stores intact bytes
    under its content key) and a transcode job is queued to make the package again."""
    import io
    import os

    from filmfund.extensions import db
    from filmfund.media import services, streaming
    from filmfund.media.common import profiles
    from filmfund.media.models import Job, JobKind, JobStatus, Stream

    asset, _producer, donor = published
    store = services.storage()
    segs = {name: store.put_stream(io.BytesIO(b"G" + os.urandom(20_000)), ".ts") for name in ("v0_0000.ts", "v0_0001.ts")}
    row = streaming.stream_of(asset.id) or Stream(asset_id=asset.id, attempts=1)
    row.state, row.profile, row.size = "ready", profiles()["hls"], sum(s.size for s in segs.values())
    row.index = {"master": "#EXTM3U\nv0.m3u8\n", "playlists": {"v0.m3u8": "#EXTM3U\nv0_0000.ts\nv0_0001.ts\n"},
                 "segments": {n: {"variant": 0, "key": s.key, "size": s.size} for n, s in segs.items()},
                 "variants": [{"name": "v0.m3u8", "height": 240, "bitrate": "300k"}]}
    db.session.add(row)
    db.session.execute(db.update(Job).where(Job.asset_id == asset.id).values(status=JobStatus.SUCCEEDED))
    db.session.commit()
    with app.test_request_context("/"):
        url = f"/stream/{streaming.play_token(donor, asset)}/s/v0_0001.ts"
    assert client.get(url).status_code == 200

    damaged = segs["v0_0001.ts"].key
    _rot(store, damaged)
    [check] = services.check_fixity([asset.public_id])
    assert check.ok and any("v0_0001.ts" in r and "queued to be made again" in r for r in check.repaired)
    assert client.get(url).status_code != 200  # no longer served
    assert not store.exists(damaged) and store.exists(segs["v0_0000.ts"].key)
    row = streaming.stream_of(asset.id)
    assert row.state in ("failed", "pending") and "key" not in row.index["segments"]["v0_0001.ts"]
    job = db.session.scalar(db.select(Job).where(Job.asset_id == asset.id).order_by(Job.id.desc()))
    assert job.kind == JobKind.TRANSCODE and job.status == JobStatus.QUEUED


def test_a_segment_whose_checksum_is_not_known_is_not_taken_for_damaged(app, client, published):
    """A package whose segment names no SHA-256 (not recorded, not in its key) cannot be checked:
    taken for damaged, it would be dropped and made again at every hourly check."""
    from filmfund.extensions import db
    from filmfund.media import services, streaming
    from filmfund.media.common import profiles
    from filmfund.media.models import Stream

    asset, _producer, _donor = published
    store = services.storage()
    legacy = store.root / "legacy" / "v0_0000.ts"  # stored under a name, not its content's SHA-256
    legacy.parent.mkdir(parents=True)
    legacy.write_bytes(b"G" * 4000)
    row = streaming.stream_of(asset.id) or Stream(asset_id=asset.id, attempts=1)
    row.state, row.profile, row.size = "ready", profiles()["hls"], 4000
    row.index = {"master": "#EXTM3U\nv0.m3u8\n", "playlists": {"v0.m3u8": "#EXTM3U\nv0_0000.ts\n"},
                 "segments": {"v0_0000.ts": {"variant": 0, "key": "legacy/v0_0000.ts", "size": 4000}},
                 "variants": [{"name": "v0.m3u8", "height": 240, "bitrate": "300k"}]}
    db.session.add(row)
    db.session.commit()
    [check] = services.check_fixity([asset.public_id])
    assert check.ok and not [r for r in check.repaired if "streaming" in r]
    assert streaming.stream_of(asset.id).state == "ready" and legacy.exists()
