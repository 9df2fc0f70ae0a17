"""Real footage (issue 6, items 1-4): streams beside the picture, packet sizes judged from the
bytes, AVCHD cards in both namings, camera data, best-effort stills, and hostile input. Each case
is a real file made with ffmpeg (tests/media/camfiles.py), run through the real pipeline."""
from __future__ import annotations

import shutil
from datetime import datetime, timezone
from pathlib import Path

import pytest

from filmfund.media import avchd, ffmpeg
from filmfund.media.sniff import sniff, sniff_bytes
from tests.media import camfiles
from tests.media.located import located_clip

pytestmark = pytest.mark.one_database  # ffmpeg's work, not the database's (tests/conftest.py)


@pytest.fixture
def app_overrides(app_overrides):
    return {**app_overrides, "MEDIA_RESCUE": False}  # damaged cases here need no rescue rendition


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("camfiles")
    camfiles.camcorder_mts(work / "camcorder.MTS", work)
    camfiles.plain_ts(work / "phone.mts")
    camfiles.with_side_streams(work / "side.mp4", work)
    camfiles.with_pgs(work / "pgs.MTS", work / "camcorder.MTS", work)
    located_clip(work / "longgop.mp4")  # x264's default 250-frame GOP, GPS and device tags
    camfiles.hls_playlist(work / "live.m2ts")
    camfiles.huge_png(work / "huge.png")
    return work


def _ingest_and_run(drain, paths, **kwargs):
    from filmfund.media import services

    results = services.ingest_paths(paths, **kwargs)
    drain()
    return [services.get_asset(r.asset.public_id) for r in results]


# --- 1. streams and containers -----------------------------------------------------------------

def test_subtitle_and_data_streams_beside_the_picture_verify_and_are_kept(app, files, drain, tmp_path):
    from filmfund.media import services
    from filmfund.media.models import AssetState

    codec_types = [s["codec_type"] for s in ffmpeg.probe(str(files / "side.mp4"))["streams"]]
    assert codec_types == ["video", "audio", "subtitle", "data"]
    report = ffmpeg.decode_pass(str(files / "side.mp4"), timeout=60)
    assert report.returncode == 0 and report.errors == 0 and report.frames == 50
    [asset] = _ingest_and_run(drain, [files / "side.mp4"])
    assert asset.state == AssetState.READY, asset.problems
    assert asset.rendition("proxy") and asset.rendition("poster") and asset.rendition("strip")  # one keyframe: one tile
    with services.storage().local_path(asset.sources[0].storage_key, tmp_path) as stored:
        kept = [s["codec_type"] for s in ffmpeg.probe(str(stored))["streams"]]
    assert kept == codec_types  # the original keeps every stream


def test_camcorder_pgs_subtitle_stream_verifies_and_is_kept(app, files, drain, tmp_path):
    """The Panasonic case: picture, AC-3 sound and an hdmv_pgs_subtitle stream in 192-byte packets."""
    from filmfund.media import services
    from filmfund.media.models import AssetState

    codecs = [s["codec_name"] for s in ffmpeg.probe(str(files / "pgs.MTS"))["streams"]]
    assert codecs == ["h264", "ac3", "hdmv_pgs_subtitle"] and sniff(files / "pgs.MTS").packet_size == 192
    shutil.copy(files / "pgs.MTS", tmp_path / "00001.MTS")
    [asset] = _ingest_and_run(drain, [tmp_path / "00001.MTS"])
    assert asset.state == AssetState.READY, asset.problems
    assert asset.rendition("proxy") and asset.rendition("poster")
    with services.storage().local_path(asset.sources[0].storage_key, tmp_path / "w") as stored:
        assert [s["codec_name"] for s in ffmpeg.probe(str(stored))["streams"]] == codecs


def test_packet_size_and_container_come_from_the_bytes(files, tmp_path):
    assert sniff(files / "phone.mts").packet_size == 188
    assert sniff(files / "camcorder.MTS").packet_size == 192
    text = tmp_path / "notes.MTS"
    text.write_text("Day 3, card B: interview with the family, 14:00.\n" * 20)
    assert sniff(text).container == "text"
    assert sniff_bytes(b"", 0).container == "empty"
    assert sniff(files / "live.m2ts").container == "playlist"
    assert sniff(files / "side.mp4").container == "mp4"


def test_plain_188_byte_ts_named_mts_is_not_truncated(app, files, drain):
    from filmfund.media.models import AssetState

    [asset] = _ingest_and_run(drain, [files / "phone.mts"])
    assert asset.state == AssetState.READY, asset.problems
    assert not [p for p in asset.problems if p["code"] == "truncated"]


def test_text_file_named_mts_is_diagnosed_as_not_video(app, drain, tmp_path):
    from filmfund.media.models import AssetState, Job

    text = tmp_path / "00007.MTS"
    text.write_text("card B, take 7: the bus scene\n" * 40)
    [asset] = _ingest_and_run(drain, [text])
    assert asset.state == AssetState.DAMAGED
    assert [p["code"] for p in asset.problems] == ["not_media"]
    assert "not video" in asset.problems[0]["message"] and "text" in asset.problems[0]["message"]
    from filmfund.extensions import db

    assert db.session.scalar(db.select(Job.attempts).where(Job.asset_id == asset.id)) == 1


def test_empty_files_are_empty_never_already_ingested(app, tmp_path):
    from filmfund.media import services

    folder = tmp_path / "card"
    folder.mkdir()
    for name in ("00001.MTS", "00002.MTS", "00003.MTS"):
        (folder / name).write_bytes(b"")
    skipped: list = []
    assert services.ingest_paths([folder], skipped=skipped) == []
    assert sorted(s.path.name for s in skipped) == ["00001.MTS", "00002.MTS", "00003.MTS"]
    assert {s.reason for s in skipped} == {"empty file (0 bytes)"}
    with pytest.raises(Exception) as err:
        import io

        services.ingest_upload(io.BytesIO(b""), "00004.MTS")
    assert getattr(err.value, "code", None) == "empty_file"
    assert services.find_assets() == []


# --- 2. AVCHD cards and camera data ------------------------------------------------------------

def test_mdpm_with_emulation_prevention_bytes_gives_date_zone_make_and_timecode(files):
    data = (files / "camcorder.MTS").read_bytes()
    at = data.find(b"MDPM")
    assert b"\x00\x00\x03" in data[at:at + 40]  # the encoder escaped the zero runs
    cam = avchd.read_camera_data(files / "camcorder.MTS")
    assert cam.recorded_at == datetime(2024, 5, 16, 23, 0, 1, tzinfo=timezone.utc)  # 00:00:01 at +01:00
    assert cam.zone == "+01:00" and cam.make == "Panasonic" and cam.camera == "Panasonic"
    assert cam.timecode == "01:00:00:00"


def test_real_canon_sample_still_gives_its_date_and_make():
    sample = Path(__file__).resolve().parents[2] / ".." / "shared" / "media-samples" / "canon-avchd-header.mts"
    if not sample.exists():
        sample = Path(__file__).resolve().parent / "data" / "canon-avchd-header.mts"
    cam = avchd.read_camera_data(sample)
    assert cam.recorded_at == datetime(2008, 12, 31, 22, 16, 24, tzinfo=timezone.utc)  # ExifTool: 23:16:24+01:00
    assert cam.zone == "+01:00" and cam.make == "Canon"


def test_camcorder_clip_carries_camera_and_timecode_to_its_proxy(app, files, drain, tmp_path):
    from filmfund.media import services
    from filmfund.media.models import AssetState

    shutil.copy(files / "camcorder.MTS", tmp_path / "00000.MTS")
    [asset] = _ingest_and_run(drain, [tmp_path / "00000.MTS"])
    assert asset.state == AssetState.READY, asset.problems
    assert asset.camera == "Panasonic" and asset.timecode == "01:00:00:00"
    assert asset.recorded_at == datetime(2024, 5, 16, 23, 0, 1, tzinfo=timezone.utc)
    with services.storage().local_path(asset.rendition("proxy").storage_key, tmp_path) as proxy:
        streams = ffmpeg.probe(str(proxy))["streams"]
    assert "01:00:00:00" in [(s.get("tags") or {}).get("timecode") for s in streams]


@pytest.mark.parametrize("naming", ["avchd", "bluray"])
def test_card_playlist_and_clip_info_in_both_namings(clips, tmp_path, naming):
    long = (clips / "00001.MTS").read_bytes(), (clips / "00002.MTS").read_bytes()
    bdmv = camfiles.card(tmp_path / "CARD", {"00001": long[0], "00002": long[1], "00003": b"G" * 192 * 4},
                         [("00001", 1), ("00002", 5), ("00003", 1)], naming=naming)
    groups = avchd.discover([tmp_path / "CARD"])
    assert [[f.stem for f in g.files] for g in groups] == [["00001", "00002"], ["00003"]]
    assert groups[0].how.startswith("spanned take (playlist 00000.MPL")
    first = groups[0]
    assert {p.name.upper() for p in first.sidecars} >= {"00000.MPL" if naming == "avchd" else "00000.MPLS",
                                                        "00001.CPI" if naming == "avchd" else "00001.CLPI"}
    assert first.expected_sizes[bdmv / "STREAM" / first.files[0].name] == len(long[0])


def test_take_truncated_on_a_6144_byte_boundary_is_damaged_and_the_card_files_are_kept(app, clips, drain, tmp_path):
    from filmfund.media.models import AssetState

    good = (clips / "good_1080i.MTS").read_bytes()
    cut = good[: len(good) * 2 // 3 // 6144 * 6144]
    assert len(cut) % 6144 == 0 and len(cut) % 192 == 0  # nothing in the bytes says it was cut
    camfiles.card(tmp_path / "CARD_T", {"00001": cut}, [("00001", 1)], expected={"00001": len(good)})
    [asset] = _ingest_and_run(drain, [tmp_path / "CARD_T"])
    assert asset.state == AssetState.DAMAGED
    [truncated] = [p for p in asset.problems if p["code"] == "truncated"]
    assert f"says the take has {len(good)}" in truncated["message"]
    assert asset.sources[0].expected_size == len(good)
    names = sorted(s.name for s in asset.sidecars)
    assert names == ["BDMV/CLIPINF/00001.CPI", "BDMV/INDEX.BDM", "BDMV/PLAYLIST/00000.MPL"]
    from filmfund.media import services

    [check] = services.check_fixity([asset.public_id], repair=False)
    assert check.ok  # the card files are re-hashed with the rest
    cpi = next(s for s in asset.sidecars if s.name.endswith(".CPI"))
    path = Path(services.storage().local_file(cpi.storage_key))
    path.chmod(0o644)
    path.write_bytes(b"HDMV0100" + b"\x00" * 60)  # bit rot in the clip info
    [check] = services.check_fixity([asset.public_id], repair=False)
    assert not check.ok and any("card file BDMV/CLIPINF/00001.CPI" in f for f in check.failures)


# --- 3. renditions -----------------------------------------------------------------------------

def test_long_gop_clip_with_gps_gets_proxy_and_poster(app, files, drain):
    from filmfund.media.models import AssetState

    [asset] = _ingest_and_run(drain, [files / "longgop.mp4"])
    assert asset.state == AssetState.READY, asset.problems
    assert asset.rendition("proxy") and asset.rendition("poster") and asset.rendition("strip")  # one keyframe: one tile


# --- 4. hostile input --------------------------------------------------------------------------

def test_hls_playlist_named_m2ts_is_refused_at_once(app, files, drain, tmp_path):
    from filmfund.extensions import db
    from filmfund.media.models import AssetState, Job

    with pytest.raises(ffmpeg.FfmpegError) as err:
        ffmpeg.probe(str(files / "live.m2ts"))
    assert err.value.permanent and "refused" in str(err.value)
    shutil.copy(files / "live.m2ts", tmp_path / "00009.m2ts")
    [asset] = _ingest_and_run(drain, [tmp_path / "00009.m2ts"])
    assert asset.state == AssetState.DAMAGED and asset.problems[0]["code"] == "not_media"
    assert "playlist" in asset.problems[0]["message"]
    assert db.session.scalar(db.select(Job.attempts).where(Job.asset_id == asset.id)) == 1


def test_png_declaring_16000_squared_is_refused_by_the_pixel_limit(app, files, drain):
    from filmfund.media.models import AssetState

    with pytest.raises(ffmpeg.FfmpegError) as err:
        ffmpeg.probe(str(files / "huge.png"))
    assert err.value.permanent and "larger than" in str(err.value)
    [asset] = _ingest_and_run(drain, [files / "huge.png"])
    assert asset.state == AssetState.DAMAGED and asset.problems[0]["code"] == "unreadable"


def test_every_run_has_the_whitelists_and_limits(files):
    argv = ffmpeg.video_rendition_argv("in.mts", "out.mp4", ffmpeg.summarize(ffmpeg.probe(str(files / "phone.mts"))),
                                       {"height": 180})
    assert argv[argv.index("-protocol_whitelist") + 1] == "file,pipe"
    assert argv[argv.index("-format_whitelist") + 1] == ffmpeg.DEMUXERS and "hls" not in ffmpeg.DEMUXERS.split(",")
    assert int(argv[argv.index("-max_pixels") + 1]) == ffmpeg.MAX_PIXELS
    joined = ffmpeg.guard_args(ffmpeg.input_spec(["a.MTS", "b.MTS"]))
    assert joined["protocol_whitelist"] == "concat,file,pipe"  # our own join of a spanned take
    if ffmpeg.PRLIMIT:
        assert ffmpeg.limited(["ffmpeg"])[1].startswith("--as=")


def test_a_run_of_unknown_duration_that_times_out_fails_for_good():
    argv = ffmpeg._compile(ffmpeg.ffmpeg_lib.input("testsrc2=size=64x64:rate=25", f="lavfi", re=None).output("-", f="null"))
    with pytest.raises(ffmpeg.FfmpegTimeout) as err:
        ffmpeg.run(argv, timeout=0.5, timeout_is_permanent=True)
    assert err.value.permanent and "not retried" in str(err.value)
    with pytest.raises(ffmpeg.FfmpegTimeout) as err:
        ffmpeg.run(argv, timeout=0.5)
    assert not err.value.permanent


def test_symlinks_are_never_followed_out_of_the_ingested_folder(app, files, tmp_path, runner):
    from filmfund.media import services

    outside = tmp_path / "elsewhere"
    outside.mkdir()
    shutil.copy(files / "phone.mts", outside / "secret.mts")
    folder = tmp_path / "ingest-me"
    (folder / "day1").mkdir(parents=True)
    shutil.copy(files / "phone.mts", folder / "day1" / "take.mts")
    (folder / "link-out.mts").symlink_to(outside / "secret.mts")
    (folder / "dir-out").symlink_to(outside, target_is_directory=True)
    (folder / "link-in.mts").symlink_to(folder / "day1" / "take.mts")
    skipped: list = []
    results = services.ingest_paths([folder], skipped=skipped)
    assert [r.asset.sources[0].original_name for r in results] == ["take.mts"]
    reasons = {s.path.name: s.reason for s in skipped}
    assert set(reasons) == {"link-out.mts", "dir-out", "link-in.mts"}
    assert "outside the ingested folder" in reasons["link-out.mts"] and "outside" in reasons["dir-out"]
    assert "inside the ingested folder" in reasons["link-in.mts"]
    assert all("secret" not in (s.original_path or "") for r in results for s in r.asset.sources)
    out = runner.invoke(args=["media", "ingest", str(folder)])  # the command line reports them
    assert out.exit_code == 0, out.output
    assert f"skipped {folder / 'link-out.mts'}: symlink to" in out.output and "3 path(s) skipped" in out.output


def test_a_symlink_named_on_the_command_line_is_not_followed(app, files, tmp_path, runner):
    """A shell glob over a card (`media ingest /card/STREAM/*`) names each link itself."""
    from filmfund.media import services

    outside = tmp_path / "elsewhere"
    outside.mkdir()
    shutil.copy(files / "phone.mts", outside / "secret.mts")
    card = tmp_path / "card"
    card.mkdir()
    shutil.copy(files / "phone.mts", card / "00001.mts")
    (card / "00002.mts").symlink_to(outside / "secret.mts")
    (card / "folder-link").symlink_to(outside, target_is_directory=True)
    named = [card / "00001.mts", card / "00002.mts", card / "folder-link"]
    skipped: list = []
    results = services.ingest_paths(named, skipped=skipped)
    assert [r.asset.sources[0].original_name for r in results] == ["00001.mts"]
    assert {s.path.name for s in skipped} == {"00002.mts", "folder-link"}
    assert services.total_bytes(named) == (files / "phone.mts").stat().st_size
    out = runner.invoke(args=["media", "ingest", *map(str, named)])
    assert out.exit_code == 0, out.output
    assert f"skipped {card / '00002.mts'}: symlink to" in out.output and "not followed" in out.output
    assert "2 path(s) skipped" in out.output
    assert all("secret" not in (s.original_path or "") for r in services.find_assets() for s in r.sources)


def test_an_upload_is_not_probed_inside_the_web_request(app, client, make_user, login_as, files, drain):
    import re

    from filmfund.media import services
    from filmfund.media.models import AssetState

    login_as(client, make_user(role="producer"))
    html = client.get("/footage/").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
    with open(files / "phone.mts", "rb") as fh:
        resp = client.post("/footage/upload", data={"csrf_token": token, "file": (fh, "phone.mts")},
                           content_type="multipart/form-data")
    assert resp.status_code == 303
    [asset] = services.find_assets()
    assert asset.probe is None and asset.duration is None and asset.state == AssetState.UPLOADED  # nothing read yet
    drain()
    asset = services.get_asset(asset.public_id)
    assert asset.state == AssetState.READY and asset.duration and asset.width == 320  # the worker probed it


def test_a_failed_poster_is_a_notice_with_its_own_state_and_a_retry(app, files, drain, client, make_user, login_as,
                                                                     runner):
    import re

    from filmfund.media import services
    from filmfund.media.models import AssetState, RenditionState

    overrides = app.config["MEDIA_PROFILE_OVERRIDES"]
    overrides["poster"] = {"quality": "x"}  # ffmpeg refuses it: the poster fails, every time
    [asset] = _ingest_and_run(drain, [files / "phone.mts"])
    assert asset.state == AssetState.READY  # the proxy is there: the asset is usable
    assert asset.rendition("poster") is None and asset.rendition("proxy") is not None
    state = asset.rendition_state("poster")
    assert state.state == RenditionState.FAILED and "q:v" in state.error
    assert asset.rendition_state("proxy").state == RenditionState.READY
    [notice] = [p for p in asset.problems if p["code"] == "poster_failed"]
    assert notice["severity"] == "info" and "retry" in notice["hint"].lower()

    login_as(client, make_user(role="producer"))
    page = client.get(f"/footage/{asset.public_id}").get_data(as_text=True)
    assert f"/footage/{asset.public_id}/retry" in page and "Retry" in page
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    overrides["poster"] = {}  # fixed
    resp = client.post(f"/footage/{asset.public_id}/retry", data={"csrf_token": token, "kind": "poster"})
    assert resp.status_code == 303
    assert drain() == 1
    asset = services.get_asset(asset.public_id)
    assert asset.state == AssetState.READY and asset.rendition("poster") is not None
    assert asset.rendition_state("poster").state == RenditionState.READY and asset.rendition_state("poster").attempts == 2
    assert not [p for p in asset.problems if p["code"] == "poster_failed"]

    old_strip = asset.rendition("strip").storage_key
    out = runner.invoke(args=["media", "retry", asset.public_id, "--kind", "strip"])
    assert out.exit_code == 0 and "queued" in out.output, out.output
    assert drain() == 1
    asset = services.get_asset(asset.public_id)
    assert asset.rendition_state("strip").attempts == 2 and asset.rendition("strip").storage_key == old_strip  # same bytes
    refused = runner.invoke(args=["media", "retry", asset.public_id, "--kind", "rescue"])
    assert refused.exit_code == 2 and "does not take" in refused.output
