"""Timelines for an editor (issue 15 item 1): `filmfund media export` in every format, read back
through OpenTimelineIO (and the EDL through pycmx), and a relink of the proxies to the originals by
reel and timecode. The cards are AVCHD-like (tests/media/camfiles.py): MDPM dates and timecodes."""
from __future__ import annotations

import urllib.parse
import urllib.request
from pathlib import Path

import opentimelineio as otio
import pycmx
import pytest

from filmfund.media import avchd, ffmpeg
from tests.media import camfiles

pytestmark = pytest.mark.one_database  # ffmpeg's work, not the database's (tests/conftest.py)

# (card, file stem, camera timecode as MDPM BCD frames/s/min/h, recorded HH MM SS)
TAKES = [("CARD_A", "00000", b"\x00\x00\x00\x10", "090010"),
         ("CARD_A", "00001", b"\x12\x05\x00\x10", "090030"),
         ("CARD_B", "00000", b"\x00\x00\x00\x11", "090000")]  # recorded first, on the other card
TIMECODES = {("CARD_A", "00000"): "10:00:00:00", ("CARD_A", "00001"): "10:00:05:12",
             ("CARD_B", "00000"): "11:00:00:00"}
ORDER = ["CARD_B_00000", "CARD_A_00000", "CARD_A_00001"]  # recording order
ADAPTERS = {"fcp7xml": "fcp_xml", "fcpxml": "fcpx_xml", "edl": "cmx_3600", "otio": "otio_json"}


@pytest.fixture(scope="module")
def cards(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cards")
    work = tmp_path_factory.mktemp("work")
    by_card: dict[str, dict[str, bytes]] = {}
    for card, stem, tc, at in TAKES:
        mts = camfiles.camcorder_mts(work / f"{card}{stem}.MTS", work, seconds=1, timecode=tc, time=at)
        by_card.setdefault(card, {})[stem] = mts.read_bytes()
    for card, takes in by_card.items():
        camfiles.card(root / card, takes, [(stem, 1) for stem in takes])
    return root


@pytest.fixture
def ingested(app, cards, drain):
    from filmfund.media import services
    from filmfund.media.models import AssetState

    results = services.ingest_paths([cards / "CARD_A", cards / "CARD_B"])
    from filmfund.extensions import db

    db.session.commit()
    drain()
    assets = [r.asset for r in results]
    assert [a.state for a in assets] == [AssetState.READY] * 3, [a.problems for a in assets]
    return assets


def _export(runner, *args) -> str:
    result = runner.invoke(args=["media", "export", *args])
    assert result.exit_code == 0, result.output
    return result.stdout


def _read(text: str, fmt: str):
    kwargs = {"rate": 25} if fmt == "edl" else {}
    return otio.adapters.read_from_string(text, ADAPTERS[fmt], **kwargs)


def _reel(clip, fmt: str) -> str:
    """The reel as each format carries it back."""
    if fmt == "fcp7xml":
        return clip.media_reference.metadata["fcp_xml"]["timecode"]["reel"]["name"]
    if fmt == "edl":
        return clip.metadata["cmx_3600"]["reel"]
    if fmt == "otio":
        return clip.metadata["filmfund"]["reel"]
    return clip.name  # FCPXML: the asset and clip name (the adapter writes no reel field)


EDL_REELS = {"CARD_B_00000": "CAR00000", "CARD_A_00000": "CAR00000", "CARD_A_00001": "CAR00001"}


def test_every_format_reads_back_with_names_reels_timecodes_and_proxy_paths(app, runner, ingested):
    """Each format from the same ingest (one ingest of three takes is most of this test's time)."""
    from filmfund.media import services

    for fmt in ADAPTERS:
        text = _export(runner, "--format", fmt)
        timeline = _read(text, fmt)
        clips = list(timeline.find_clips())
        assert [c.name for c in clips] == ORDER, fmt
        edl_reels = set()
        for clip in clips:
            card, stem = clip.name.rsplit("_", 1)
            asset = next(a for a in ingested if a.sources[0].original_path.endswith(
                f"{card}/PRIVATE/AVCHD/BDMV/STREAM/{stem}.MTS"))
            rng = clip.source_range or clip.available_range()
            assert otio.opentime.to_timecode(rng.start_time, 25) == TIMECODES[(card, stem)]
            assert rng.start_time.rate == 25 and rng.duration.to_frames() == 25  # one second at 25 fps
            url = urllib.parse.urlparse(clip.media_reference.target_url)
            assert url.scheme == "file"
            proxy = services.storage().local_file(asset.rendition("proxy").storage_key)
            assert Path(urllib.parse.unquote(url.path)) == Path(proxy).resolve()
            reel = _reel(clip, fmt)
            if fmt == "edl":
                assert len(reel) <= 8 and reel.isalnum()
                edl_reels.add(reel)
            else:
                assert reel == clip.name
        if fmt == "edl":
            # CARD_A and CARD_B share the code CAR: each gets its hash code; every reel is distinct.
            assert len(edl_reels) == 3 and not any(r.startswith("CAR") for r in edl_reels)
            assert "REEL CODE" in text and "IS CARD CARD_A" in text


def test_edl_is_read_by_a_second_parser(app, runner, ingested):
    text = _export(runner, "--format", "edl")
    edl = pycmx.parse_cmx3600(__import__("io").StringIO(text))
    edits = [e for ev in edl.events for e in ev.edits]
    assert len(edits) == 3
    names = [e.clip_name for e in edits]
    assert names == ORDER
    for e in edits:
        card, stem = e.clip_name.rsplit("_", 1)
        assert e.source_in == TIMECODES[(card, stem)]
        assert e.source_file is None or e.source_file.startswith("file://")
        assert len(e.source) <= 8
    assert [e.record_in for e in edits] == ["00:00:00:00", "00:00:01:00", "00:00:02:00"]


def test_one_card_keeps_readable_reels_and_a_selection_keeps_recording_order(app, runner, ingested):
    text = _export(runner, "--format", "edl", "--card", "CARD_A")
    clips = list(_read(text, "edl").find_clips())
    assert [c.metadata["cmx_3600"]["reel"] for c in clips] == ["CAR00000", "CAR00001"]
    a1 = next(a for a in ingested if a.sources[0].original_name == "00001.MTS" and "CARD_A" in a.title)
    b0 = next(a for a in ingested if "CARD_B" in a.title)
    text = _export(runner, "--format", "otio", a1.public_id, b0.public_id)
    assert [c.name for c in _read(text, "otio").find_clips()] == ["CARD_B_00000", "CARD_A_00001"]


def test_relink_swaps_every_proxy_for_its_original_by_reel_and_timecode(app, runner, ingested, cards):
    """What the editor's relink does: for each clip of the cut, the original whose reel is the clip's
    and whose timecode range holds the clip's source range. Every clip finds exactly one."""
    originals = []  # the crew's cards as an editor's media pool sees them
    for mts in sorted(cards.glob("*/PRIVATE/AVCHD/BDMV/STREAM/*.MTS")):
        card = mts.parents[4].name
        cam = avchd.read_camera_data(mts)
        info = ffmpeg.summarize(ffmpeg.probe(str(mts)))
        start = otio.opentime.from_timecode(cam.timecode, 25)
        originals.append({"reel": f"{card}_{mts.stem}", "path": mts,
                          "range": otio.opentime.TimeRange(start, otio.opentime.RationalTime(
                              round(info.duration * 25), 25))})
    for fmt in ("fcp7xml", "fcpxml", "edl"):
        timeline = _read(_export(runner, "--format", fmt), fmt)
        for clip in timeline.find_clips():
            rng = clip.source_range
            reel = clip.name  # the full reel: the clip name in every format (* FROM CLIP NAME in the EDL)
            found = [o for o in originals if o["reel"] == reel and o["range"].contains(rng.start_time)
                     and o["range"].end_time_exclusive() >= rng.end_time_exclusive()]
            assert len(found) == 1, (fmt, reel, otio.opentime.to_timecode(rng.start_time, 25))
            clip.media_reference = otio.schema.ExternalReference(target_url=found[0]["path"].as_uri(),
                                                                 available_range=found[0]["range"])
        relinked = otio.adapters.read_from_string(otio.adapters.write_to_string(timeline, "fcp_xml"), "fcp_xml")
        assert sorted(Path(urllib.parse.unquote(urllib.parse.urlparse(c.media_reference.target_url).path)).name
                      for c in relinked.find_clips()) == ["00000.MTS", "00000.MTS", "00001.MTS"]
        assert len(list(relinked.find_clips())) == 3


def test_the_proxy_carries_the_camera_timecode_the_timeline_names(app, ingested, tmp_path):
    from filmfund.media import services

    for asset in ingested:
        with services.storage().local_path(asset.rendition("proxy").storage_key, tmp_path) as proxy:
            tags = [(s.get("tags") or {}).get("timecode") for s in ffmpeg.probe(str(proxy))["streams"]]
        assert asset.timecode in tags


def test_refusals_name_the_clip_and_write_nothing(app, runner, ingested, ready_asset):
    from filmfund.extensions import db
    from filmfund.media.models import Asset

    result = runner.invoke(args=["media", "export", "--format", "edl", "nosuchid"])
    assert result.exit_code == 2 and "nosuchid" in result.stderr and result.stdout == ""
    still = ingested[0]
    still.renditions.remove(still.rendition("proxy"))
    db.session.commit()
    result = runner.invoke(args=["media", "export", "--format", "fcpxml", still.public_id])
    assert result.exit_code == 2 and still.public_id in result.stderr and "no edit proxy" in result.stderr
    assert result.stdout == ""
    from filmfund.media.models import AssetKind

    sound = ready_asset("Interview sound")  # an audio-only take is never given a proxy: not "yet"
    db.session.get(Asset, sound.id).kind = AssetKind.AUDIO
    db.session.commit()
    result = runner.invoke(args=["media", "export", "--format", "otio", sound.public_id])
    assert result.exit_code == 2 and "is audio, not video" in result.stderr and "yet" not in result.stderr
    fast = ready_asset("Phone clip")
    db.session.get(Asset, fast.id).fps = 30.0
    db.session.commit()
    result = runner.invoke(args=["media", "export", "--format", "edl"])
    assert result.exit_code == 2 and "one frame rate" in result.stderr


def test_an_export_is_audited(app, runner, ingested):
    import sqlalchemy as sa

    from filmfund.audit import AuditEntry
    from filmfund.extensions import db

    _export(runner, "--format", "fcp7xml")
    entry = db.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "export.timeline")).one()
    assert "fcp7xml" in entry.details


@pytest.mark.parametrize("storage_backend", ["s3"])
def test_on_s3_each_clip_links_a_signed_url_of_its_proxy(app, runner, ingested, storage_backend):
    text = _export(runner, "--format", "fcp7xml", "--url-hours", "48")
    clips = list(_read(text, "fcp7xml").find_clips())
    assert len(clips) == 3
    for clip in clips:
        url = clip.media_reference.target_url
        query = urllib.parse.parse_qs(urllib.parse.urlparse(url).query)
        assert url.startswith("http://127.0.0.1") and "X-Amz-Signature" in query
        assert query["X-Amz-Expires"] == [str(48 * 3600)]
        with urllib.request.urlopen(url) as resp:  # the editor can fetch it
            assert resp.read(8)[4:8] == b"ftyp"
