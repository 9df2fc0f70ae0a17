"""Timelines for an editor, the probe's findings (media.md H1, M2, M3): a phone clip whose average
frame rate is no timecode rate (dropped frames, a variable rate) is placed at its edit proxy's
constant rate and no longer stops the export of every clip; a clip that cannot be placed is left
out with a warning; Chinese clip and card names, and two cards both named NO NAME, keep distinct
reels (the EDL's 8 ASCII characters included) and, where the format takes any letters, their names."""
from __future__ import annotations

import io
import json
import subprocess
from pathlib import Path

import opentimelineio as otio
import pycmx
import pytest

from filmfund.media import ffmpeg
from tests.media import camfiles

ADAPTERS = {"fcp7xml": "fcp_xml", "fcpxml": "fcpx_xml", "edl": "cmx_3600", "otio": "otio_json"}


def _read(text: str, fmt: str, rate: float = 25):
    return otio.adapters.read_from_string(text, ADAPTERS[fmt], **({"rate": rate} if fmt == "edl" else {}))


def _asset(probe=None, **fields):
    from filmfund.media.models import Asset

    asset = Asset(title="clip", **fields)
    asset.probe = probe
    return asset


def _video(r: str, avg: str) -> dict:
    return {"streams": [{"codec_type": "video", "r_frame_rate": r, "avg_frame_rate": avg}]}


@pytest.mark.parametrize(("fps", "probe", "interlaced", "rate"), [
    (29.4, _video("30/1", "147/5"), False, 30.0),              # a 30 fps phone clip that dropped 3 frames
    (1050 / 59, _video("30/1", "1050/59"), False, 30.0),       # variable rate: its proxy is 30 fps
    (25.0, _video("50/1", "25/1"), True, 25.0),                # 1080i25: r_frame_rate is the field rate
    (24.6, _video("50/1", "123/5"), True, 25.0),               # ... that dropped frames
    (30000 / 1001, _video("30000/1001", "30000/1001"), False, 30000 / 1001),
    (29.5, _video("90000/1", "59/2"), False, 30000 / 1001),    # r_frame_rate a time base: the average
    (119.88, _video("120/1", "2997/25"), False, 60.0),         # slow motion: the nearest timecode rate
    (29.4, None, False, 30000 / 1001),                         # nothing but the average: the nearest
    (None, None, False, 25.0),
])
def test_a_clips_rate_is_its_proxys_as_a_timecode_rate(fps, probe, interlaced, rate):
    from opentimelineio.opentime import RationalTime

    from filmfund.media import timeline

    got = timeline.clip_rate(_asset(probe, fps=fps, interlaced=interlaced))
    assert got == pytest.approx(rate, abs=1e-9)
    assert RationalTime.is_smpte_timecode_rate(got)


# --- real phone clips ------------------------------------------------------------------------

def _phone(out: Path, select: str) -> Path:
    """A 30 fps phone-like clip (320x180, 2 s) with frames left out: its average rate is not 30."""
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=30",
                    "-f", "lavfi", "-i", "sine=frequency=300:sample_rate=44100", "-t", "2", "-vf", f"select='{select}'",
                    "-fps_mode", "vfr", "-c:v", "libx264", "-preset", "ultrafast", "-bf", "0", "-c:a", "aac",
                    str(out)], check=True, stdin=subprocess.DEVNULL)
    return out


@pytest.fixture(scope="module")
def phone_and_card(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("footage")
    work = tmp_path_factory.mktemp("work")
    (root / "phone").mkdir()
    _phone(root / "phone" / "IMG_0101.MOV", r"not(eq(n\,10)+eq(n\,20)+eq(n\,40))")  # dropped frames
    _phone(root / "phone" / "IMG_0102.MOV", r"gte(n\,30)+not(mod(n\,3))")            # variable rate
    mts = camfiles.camcorder_mts(work / "00000.MTS", work, seconds=1, timecode=b"\x00\x00\x00\x10", time="090010")
    camfiles.card(root / "CARD_A", {"00000": mts.read_bytes()}, [("00000", 1)])
    return root


@pytest.mark.one_database  # ffmpeg's work, not the database's (tests/conftest.py)
def test_a_phone_clip_of_uneven_rate_no_longer_stops_the_export(app, runner, phone_and_card, drain, tmp_path):
    from filmfund.extensions import db
    from filmfund.media import services
    from filmfund.media.models import AssetState

    results = services.ingest_paths([phone_and_card / "phone", phone_and_card / "CARD_A"])
    db.session.commit()
    drain()
    assets = [r.asset for r in results]
    assert [a.state for a in assets] == [AssetState.READY] * 3, [a.problems for a in assets]
    phones = [a for a in assets if a.sources[0].original_name.startswith("IMG")]
    assert all(a.fps and a.fps < 29.9 for a in phones), [a.fps for a in phones]  # the probe's case

    for fmt in ("fcp7xml", "fcpxml", "otio"):
        result = runner.invoke(args=["media", "export", "--format", fmt])
        assert result.exit_code == 0, result.output
        assert "3 clip(s) exported" in result.stderr and "Traceback" not in result.output
        clips = {c.name: c for c in _read(result.stdout, fmt).find_clips()}
        assert set(clips) == {"phone_IMG_0101", "phone_IMG_0102", "CARD_A_00000"}, fmt
        assert clips["CARD_A_00000"].source_range.duration.rate == 25
        for asset in phones:
            rng = clips[f"phone_{Path(asset.sources[0].original_name).stem}"].source_range
            assert rng.duration.rate == 30, fmt
            with services.storage().local_path(asset.rendition("proxy").storage_key, tmp_path) as proxy:
                stream = next(s for s in ffmpeg.probe(str(proxy))["streams"] if s["codec_type"] == "video")
                frames = int(subprocess.run(
                    ["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries",
                     "stream=nb_read_frames", "-of", "csv=p=0", str(proxy)], capture_output=True, text=True,
                    check=True).stdout.strip())
            assert stream["r_frame_rate"] == stream["avg_frame_rate"] == "30/1"  # the proxy is constant 30
            assert abs(rng.duration.to_frames() - frames) <= 1, (fmt, rng.duration.to_frames(), frames)

    # The phone clips alone are one rate: an EDL at 30.
    ids = [a.public_id for a in phones]
    result = runner.invoke(args=["media", "export", "--format", "edl", *ids])
    assert result.exit_code == 0, result.output
    edits = [e for ev in pycmx.parse_cmx3600(io.StringIO(result.stdout)).events for e in ev.edits]
    assert len(edits) == 2
    assert [c.source_range.duration.rate for c in _read(result.stdout, "edl", 30).find_clips()] == [30, 30]


# --- clips left out ----------------------------------------------------------------------------

def _ready(ready_asset, title: str, *, original_name: str = "00000.MTS", original_path: str | None = None,
           timecode: str | None = "01:00:00:00", fps: float | None = 25.0):
    from filmfund.extensions import db
    from filmfund.media.models import Asset

    asset = db.session.get(Asset, ready_asset(title).id)
    asset.sources[0].original_name = original_name
    asset.sources[0].original_path = original_path
    asset.timecode, asset.fps = timecode, fps
    db.session.commit()
    return asset


def test_a_clip_that_cannot_be_placed_is_left_out_with_a_warning(app, runner, ready_asset):
    import sqlalchemy as sa

    from filmfund.audit import AuditEntry
    from filmfund.extensions import db

    good = _ready(ready_asset, "Good", original_path="/cards/CARD_A/PRIVATE/AVCHD/BDMV/STREAM/00000.MTS")
    bad = _ready(ready_asset, "Bad", original_path="/cards/CARD_B/PRIVATE/AVCHD/BDMV/STREAM/00000.MTS",
                 timecode="01:00:00:27")  # frame 27 at 25 fps
    for fmt in ADAPTERS:
        result = runner.invoke(args=["media", "export", "--format", fmt])
        assert result.exit_code == 0, result.output
        assert bad.public_id in result.stderr and "CARD_B_00000" in result.stderr and "warning" in result.stderr
        assert "1 clip(s) exported" in result.stderr
        assert [c.name for c in _read(result.stdout, fmt).find_clips()] == ["CARD_A_00000"], fmt
    entry = db.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "export.timeline")
                               .order_by(AuditEntry.id.desc())).first()
    assert good.public_id in entry.details and bad.public_id not in entry.details

    result = runner.invoke(args=["media", "export", "--format", "otio", bad.public_id])
    assert result.exit_code == 2 and bad.public_id in result.stderr and "Traceback" not in result.output
    assert result.stdout == ""


# --- reels ------------------------------------------------------------------------------------

def _edl_reels(text: str) -> dict[str, str]:
    """Clip name (the full reel) -> EDL reel, as a second parser reads them."""
    edits = [e for ev in pycmx.parse_cmx3600(io.StringIO(text)).events for e in ev.edits]
    return {e.clip_name: e.source for e in edits}


def _all_formats(runner, ids):
    out = {}
    for fmt in ADAPTERS:
        result = runner.invoke(args=["media", "export", "--format", fmt, *ids])
        assert result.exit_code == 0, result.output
        out[fmt] = result.stdout
    return out


def test_chinese_clip_and_card_names_keep_distinct_reels_and_their_letters(app, runner, ready_asset):
    one = _ready(ready_asset, "采访 一", original_name="采访 一.MTS", original_path="/src/loose_zh/采访 一.MTS")
    two = _ready(ready_asset, "采访 二", original_name="采访 二.MTS", original_path="/src/loose_zh/采访 二.MTS")
    cards = [_ready(ready_asset, f"卡 {n}", original_path=f"/src/卡 {n} 第二天/PRIVATE/AVCHD/BDMV/STREAM/00000.MTS")
             for n in ("上海", "北京")]
    upload = _ready(ready_asset, "上传 测试 01", original_name="上传 测试 01.MTS")
    assets = [one, two, *cards, upload]
    texts = _all_formats(runner, [a.public_id for a in assets])

    otio_clips = list(_read(texts["otio"], "otio").find_clips())
    reels = {c.metadata["filmfund"]["asset_id"]: c.metadata["filmfund"]["reel"] for c in otio_clips}
    assert len(set(reels.values())) == len(assets), reels
    for reel in reels.values():
        assert reel.isascii() and reel.replace("_", "").replace("-", "").isalnum() and len(reel) <= 64
        assert reel not in ("loose_zh", "00000", "upload__01")
    assert reels[one.public_id].startswith("loose_zh_") and reels[upload.public_id].startswith("upload_01_")

    # The names an editor reads keep the Chinese as written, where the format takes it.
    for fmt in ("otio", "fcpxml", "fcp7xml"):
        names = [c.name for c in _read(texts[fmt], fmt).find_clips()]
        assert len(set(names)) == len(assets), (fmt, names)
        for expected in ("loose_zh_采访_一", "loose_zh_采访_二", "卡_上海_第二天_00000", "卡_北京_第二天_00000",
                         "upload_上传_测试_01"):
            assert expected in names, (fmt, names)
    fcp7_reels = {c.media_reference.metadata["fcp_xml"]["timecode"]["reel"]["name"]
                  for c in _read(texts["fcp7xml"], "fcp7xml").find_clips()}
    assert fcp7_reels == set(reels.values())

    edl = _edl_reels(texts["edl"])
    assert set(edl) == set(reels.values())  # * FROM CLIP NAME: the full (ASCII) reel
    assert len(set(edl.values())) == len(assets), edl
    assert all(len(r) <= 8 and r.isalnum() and r.isascii() for r in edl.values()), edl
    assert "IS CARD 卡 上海 第二天" in texts["edl"] and "IS CARD 卡 北京 第二天" in texts["edl"]

    # Stable: the same clip has the same reels when exported alone.
    alone = runner.invoke(args=["media", "export", "--format", "otio", one.public_id]).stdout
    clip = next(iter(_read(alone, "otio").find_clips()))
    assert clip.metadata["filmfund"]["reel"] == reels[one.public_id]
    assert clip.metadata["filmfund"]["edl_reel"] == edl[reels[one.public_id]]


def test_two_cards_named_no_name_keep_distinct_reels(app, runner, ready_asset):
    day1 = [_ready(ready_asset, f"NO NAME {s}", original_name=f"{s}.MTS",
                   original_path=f"/backup/2024-05-26/NO NAME/PRIVATE/AVCHD/BDMV/STREAM/{s}.MTS")
            for s in ("00000", "00001")]
    day2 = _ready(ready_asset, "NO NAME 00000",
                  original_path="/backup/2024-05-27/NO NAME/PRIVATE/AVCHD/BDMV/STREAM/00000.MTS")
    # Another SD card mounted where the first was, with a 00000 of its own.
    again = _ready(ready_asset, "NO NAME 00000 again",
                   original_path="/backup/2024-05-26/NO NAME/PRIVATE/AVCHD/BDMV/STREAM/00000.MTS")
    assets = [*day1, day2, again]
    texts = _all_formats(runner, [a.public_id for a in assets])
    clips = {c.metadata["filmfund"]["asset_id"]: c for c in _read(texts["otio"], "otio").find_clips()}
    reels = {i: c.metadata["filmfund"]["reel"] for i, c in clips.items()}
    assert len(set(reels.values())) == 4, reels
    assert all(r.startswith("NO_NAME_") for r in reels.values())
    # One card's clips share its tag: a card is still a reel's first part.
    tag = reels[day1[1].public_id].split("_")[2]
    assert reels[day1[0].public_id].startswith(f"NO_NAME_{tag}_")
    assert not reels[day2.public_id].startswith(f"NO_NAME_{tag}_")
    for fmt in ("fcp7xml", "fcpxml"):
        names = [c.name for c in _read(texts[fmt], fmt).find_clips()]
        assert sorted(names) == sorted(reels.values()), fmt
    edl = _edl_reels(texts["edl"])
    assert len(set(edl.values())) == 4 and all(len(r) <= 8 and r.isalnum() for r in edl.values()), edl
    assert "AT /backup/2024-05-26/NO NAME" in texts["edl"] and "AT /backup/2024-05-27/NO NAME" in texts["edl"]
    assert json.loads(texts["otio"])  # written whole
