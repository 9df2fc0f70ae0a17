"""Media fixtures: real clips made with the ffmpeg CLI (cached across sessions), an S3 server
on loopback (moto), storage per test, and helpers to run the queue."""
from __future__ import annotations

import fcntl
import hashlib
import io
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

# Bump when a command below changes: the cache of generated clips is keyed by it.
CLIPS_VERSION = "v4"

# media.md's camera-like 1080i: H.264 High, TFF interlaced, AC-3 stereo, 192-byte packets.
CAMERA_1080I = (
    "ffmpeg -nostdin -v error -y -f lavfi -i testsrc2=size=1920x1080:rate=50,format=yuv420p "
    "-f lavfi -i sine=frequency=440:sample_rate=48000 -t {t} "
    "-vf tinterlace=mode=interleave_top,setfield=tff -c:v libx264 -preset ultrafast -profile:v high -level:v 4.0 "
    "-flags +ilme+ildct -x264-params tff=1:keyint=12:bframes=2:repeat-headers=1 -b:v 15M -maxrate 17M "
    "-bufsize 10M -r 25 -c:a ac3 -b:a 256k -ac 2 -f mpegts -mpegts_m2ts_mode 1 -muxrate 20M {out}"
)


def _sh(cmd: str) -> None:
    subprocess.run(cmd.split(), check=True, stdin=subprocess.DEVNULL)


def _make_clips(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    _sh(CAMERA_1080I.format(t=2, out=folder / "good_1080i.MTS"))
    _sh(CAMERA_1080I.format(t=3, out=folder / "long.MTS"))
    data = (folder / "long.MTS").read_bytes()
    cut = len(data) // 2 // 6144 * 6144  # the camera cuts at a 6144-byte (32-packet) boundary, mid-GOP
    (folder / "00001.MTS").write_bytes(data[:cut])
    (folder / "00002.MTS").write_bytes(data[cut:])
    good = (folder / "good_1080i.MTS").read_bytes()
    (folder / "truncated.MTS").write_bytes(good[: int(len(good) * 0.6) // 192 * 192 + 100])
    corrupt = bytearray(good)
    rnd = __import__("random").Random(7)
    start = len(corrupt) // 2 // 4096 * 4096
    corrupt[start:start + 32 * 4096] = bytes(rnd.getrandbits(8) for _ in range(32 * 4096))
    (folder / "corrupt.MTS").write_bytes(bytes(corrupt))
    _sh(f"ffmpeg -nostdin -v error -y -f lavfi -i testsrc2=size=640x360 -frames:v 1 {folder / 'still.jpg'}")
    # A small progressive clip with a recording date, for fast tests of the API and pages.
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25",
                    "-f", "lavfi", "-i", "sine=frequency=220:sample_rate=48000", "-t", "2",
                    "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-metadata",
                    "creation_time=2024-05-17T09:30:00Z", str(folder / "small.mp4")], check=True,
                   stdin=subprocess.DEVNULL)


@pytest.fixture(scope="session")
def clips(request) -> Path:
    """The generated clips (made once, then reused from pytest's cache)."""
    cache = Path(request.config.cache.mkdir(f"filmfund-media-clips-{CLIPS_VERSION}"))
    # Test processes running side by side (pytest-xdist's workers) make them once: the first
    # takes the lock and makes them, the others wait for it and reuse them.
    with open(cache.with_name(cache.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (cache / "small.mp4").exists():
            tmp = cache.with_name(cache.name + f".tmp{os.getpid()}")
            shutil.rmtree(tmp, ignore_errors=True)
            _make_clips(tmp)
            shutil.rmtree(cache, ignore_errors=True)
            tmp.rename(cache)
    return cache


@pytest.fixture
def clip_folder(clips, tmp_path) -> Path:
    """A folder as the crew copies it: a good 1080i clip, a spanned pair and a damaged clip."""
    folder = tmp_path / "footage"
    folder.mkdir()
    for name in ("good_1080i.MTS", "00001.MTS", "00002.MTS", "corrupt.MTS"):
        shutil.copy(clips / name, folder / name)
    return folder


@pytest.fixture(scope="session")
def moto_server():
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_bucket(moto_server) -> str:
    import boto3

    name = f"footage-{uuid.uuid4().hex[:10]}"
    boto3.client("s3", endpoint_url=moto_server, region_name="us-east-1").create_bucket(Bucket=name)
    return name


@pytest.fixture
def storage_backend() -> str:
    """'file' or 's3'; tests parametrize it to run on S3."""
    return "file"


@pytest.fixture
def app_overrides(request, storage_backend, tmp_path) -> dict:
    overrides = {
        "MEDIA_RETRY_BASE_SECONDS": 0,
        "MEDIA_HEARTBEAT_SECONDS": 0.5,
        # Small clips, fast presets: the filters and settings stay those of profiles.toml.
        "MEDIA_PROFILE_OVERRIDES": {k: {"preset": "ultrafast"} for k in ("proxy", "web", "rescue")},
        "MEDIA_S3_PART_SIZE": 5 * 1024 * 1024,
    }
    if storage_backend == "s3":
        endpoint = request.getfixturevalue("moto_server")
        bucket = request.getfixturevalue("s3_bucket")
        overrides.update({"STORAGE_URL": f"s3://{bucket}/media", "S3_ENDPOINT_URL": endpoint})
    return overrides


@pytest.fixture
def drain(app):
    """Run the queue in this process until it is empty (what `filmfund worker --burst` does)."""
    from filmfund import jobs
    from filmfund.extensions import db

    def _drain() -> int:
        n = jobs.run_burst()
        db.session.expire_all()
        return n

    return _drain


@pytest.fixture
def campaign_reward(app):
    """Two digital rewards of the installation's campaign (from the rewards component's models): a
    donor holds a reward of the campaign the site runs (filmfund.rewards.holdings)."""
    from filmfund.extensions import db
    from filmfund.rewards.campaign import current_campaign
    from filmfund.rewards.models import Reward, RewardKind

    campaign = current_campaign()
    rewards = {}
    for key in ("digital-download", "behind-the-scenes"):
        rewards[key] = Reward(campaign_id=campaign.id, key=key, kind=RewardKind.DIGITAL, title=key.title())
        db.session.add(rewards[key])
    db.session.commit()
    return rewards


@pytest.fixture
def entitle(app):
    from filmfund.extensions import db
    from filmfund.rewards.models import Entitlement, EntitlementStatus

    def _entitle(user, reward, status: str = "granted"):
        ent = Entitlement(user_id=user.id, reward_id=reward.id, status=EntitlementStatus(status))
        db.session.add(ent)
        db.session.commit()
        return ent

    return _entitle


@pytest.fixture
def ready_asset(app):
    """A ready asset made directly (no ffmpeg): for access-control tests of links and pages."""
    from filmfund.extensions import db
    from filmfund.media import services
    from filmfund.media.models import Asset, AssetKind, AssetState, Rendition, RenditionKind, Source

    def _make(title: str = "Interview", payload: bytes | None = None):
        store = services.storage()
        payload = payload or (b"\x00\x00\x00\x18ftypmp42" + os.urandom(200_000))
        src = store.put_stream(io.BytesIO(payload + b"source"), ".mts")
        web = store.put_stream(io.BytesIO(payload), ".mp4")
        asset = Asset(title=title, sha256=src.sha256, size=src.size, kind=AssetKind.VIDEO, state=AssetState.READY,
                      duration=2.0)
        asset.sources.append(Source(position=0, original_name="00000.MTS", sha256=src.sha256, size=src.size,
                                    storage_key=src.key))
        for kind in (RenditionKind.WEB, RenditionKind.PROXY):
            asset.renditions.append(Rendition(kind=kind, storage_key=web.key, sha256=web.sha256, size=web.size,
                                              content_type="video/mp4"))
        db.session.add(asset)
        db.session.commit()
        return asset

    return _make


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
