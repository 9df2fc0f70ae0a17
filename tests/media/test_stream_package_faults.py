"""The storage failing while a stream's segments are stored (S3 down for a moment, or answering an
error botocore raises as it is) leaves no stream "running" and no segment behind: the package is
marked failed with its reason and a notice on the asset, the segments this attempt stored are
removed, the clip stays ready, and a retry makes the package."""
from __future__ import annotations

import subprocess

import pytest

from tests.media.stored_keys import orphans

pytestmark = [pytest.mark.slow, pytest.mark.one_database]


@pytest.fixture
def clip(tmp_path):
    """3 s of 640x360 with sound: two rungs of the ladder, one segment each."""
    folder = tmp_path / "clips"
    folder.mkdir()
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25",
                    "-f", "lavfi", "-i", "sine=frequency=220:sample_rate=48000", "-t", "3", "-c:v", "libx264",
                    "-preset", "ultrafast", "-c:a", "aac", str(folder / "stream-me.mp4")], check=True,
                   stdin=subprocess.DEVNULL)
    return folder


def _fault(kind: str) -> Exception:
    from botocore.exceptions import ClientError

    from filmfund.media.storage import StorageUnavailable

    if kind == "unavailable":  # what S3Storage.put_stream raises when an upload fails
        return StorageUnavailable("The footage storage failed during the upload: nothing was stored.")
    # botocore's own error, raised as it is (a HEAD refused: S3Storage.exists re-raises it)
    return ClientError({"Error": {"Code": "SlowDown", "Message": "Please reduce your request rate."}}, "HeadObject")


def _ready_clip(clip, drain):
    from filmfund.media import services
    from filmfund.media.models import AssetState

    [result] = services.ingest_paths([clip])
    drain()
    asset = services.get_asset(result.asset.public_id)
    assert asset.state == AssetState.READY
    return asset


def _faulty_storage(monkeypatch, suffix: str, kind: str, *, times: int, every: int = 2):
    """The storage fails `times` times when an object with `suffix` is stored: at every `every`th
    such object (2: the first segment of an attempt is stored, then S3 fails)."""
    from filmfund.media import services

    store = services.storage()
    real_put = type(store).put_file
    calls = {"n": 0, "failed": 0}

    def put_file(self, path, suffix_="", *args, **kwargs):
        if suffix_ == suffix:
            calls["n"] += 1
            if calls["failed"] < times and calls["n"] % every == 0:
                calls["failed"] += 1
                raise _fault(kind)
        return real_put(self, path, suffix_, *args, **kwargs)

    monkeypatch.setattr(type(store), "put_file", put_file)
    calls["mend"] = lambda: monkeypatch.setattr(type(store), "put_file", real_put)
    return calls


def _running_jobs() -> int:
    from filmfund.extensions import db
    from filmfund.media.models import Job, JobStatus

    return db.session.scalar(db.select(db.func.count()).select_from(Job).where(
        Job.status.in_([JobStatus.QUEUED, JobStatus.RUNNING])))


@pytest.mark.parametrize("storage_backend", ["s3"])
@pytest.mark.parametrize("kind", ["unavailable", "botocore"])
def test_a_storage_fault_while_segments_are_stored_fails_the_package_and_keeps_nothing(
        app, client, clip, drain, monkeypatch, kind):
    from filmfund.extensions import db
    from filmfund.media import services, streaming
    from filmfund.media.models import AssetState, Job, JobStatus

    asset = _ready_clip(clip, drain)
    calls = _faulty_storage(monkeypatch, ".ts", kind, times=99)  # S3 stays down
    services.publish(asset, "public")
    db.session.commit()
    drain()  # every attempt of the job
    asset = services.get_asset(asset.public_id)
    row = streaming.stream_of(asset.id)
    assert row.state == "failed" and row.error, row.state  # never left "running"
    assert calls["failed"] == app.config["MEDIA_MAX_ATTEMPTS"]  # the job tried again, as for any step
    assert _running_jobs() == 0
    [job] = db.session.scalars(db.select(Job).where(Job.asset_id == asset.id, Job.kind == "transcode"))
    assert job.status == JobStatus.FAILED
    assert asset.state == AssetState.READY and asset.rendition("web") is not None  # the clip is fine
    assert orphans() == []  # the segment each attempt stored before the fault is gone
    assert client.get(f"/public/{asset.public_id}/hls/master.m3u8").status_code == 404

    calls["mend"]()  # S3 is back: the producer retries
    services.retry_renditions(asset)
    db.session.commit()
    drain()
    asset = services.get_asset(asset.public_id)
    assert streaming.stream_of(asset.id).state == "ready"
    assert client.get(f"/public/{asset.public_id}/hls/master.m3u8").status_code == 200
    assert orphans() == []


@pytest.mark.parametrize("storage_backend", ["s3"])
def test_a_passing_storage_fault_is_outlived_by_the_jobs_next_attempt(app, client, clip, drain, monkeypatch):
    from filmfund.extensions import db
    from filmfund.media import services, streaming

    asset = _ready_clip(clip, drain)
    calls = _faulty_storage(monkeypatch, ".ts", "unavailable", times=1)
    services.publish(asset, "public")
    db.session.commit()
    drain()
    asset = services.get_asset(asset.public_id)
    assert calls["failed"] == 1 and streaming.stream_of(asset.id).state == "ready" and asset.problems == []
    assert _running_jobs() == 0 and orphans() == []


@pytest.mark.parametrize("storage_backend", ["s3"])
def test_a_storage_fault_while_the_web_rendition_is_stored_leaves_it_failed_not_running(
        app, clip, drain, monkeypatch):
    from filmfund.extensions import db
    from filmfund.media import services
    from filmfund.media.models import RenditionState

    asset = _ready_clip(clip, drain)
    _faulty_storage(monkeypatch, ".mp4", "botocore", times=99, every=1)
    services.publish(asset, "public")
    db.session.commit()
    drain()
    asset = services.get_asset(asset.public_id)
    state = asset.rendition_state("web")
    assert state.state == RenditionState.FAILED and "SlowDown" in state.error
    assert _running_jobs() == 0 and orphans() == []
