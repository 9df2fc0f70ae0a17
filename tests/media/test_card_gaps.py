"""What a copy of a card lacks or holds under the wrong name, and what a failing disk does to an
ingest: a spanned take with a part missing, a part cut short, flipped bytes in the sound, a clip
renamed or recovered by a disk repair, a read error half-way through a take. Real ffmpeg on the
cached clips (tests/media/conftest.py) and small camcorder files (camfiles)."""
from __future__ import annotations

import builtins
import errno
import shutil

import pytest

from tests.media import camfiles


@pytest.fixture
def database_url(sqlite_url):  # these are about files: one database is enough
    return sqlite_url


@pytest.fixture
def app_overrides(app_overrides):
    return {**app_overrides, "MEDIA_RESCUE": False}


def _three_parts(clips) -> list[bytes]:
    """A 3 s take cut by the camera into three files on 6144-byte boundaries (mid-GOP)."""
    data = (clips / "long.MTS").read_bytes()
    a = len(data) // 3 // 6144 * 6144
    b = 2 * len(data) // 3 // 6144 * 6144
    return [data[:a], data[a:b], data[b:]]


def test_a_take_whose_middle_file_is_missing_is_named_on_both_sides(app, clips, tmp_path, runner, drain, client,
                                                                     make_user, login_as):
    """The playlist joins 00000 -> 00001 -> 00002 seamlessly; 00001.MTS was lost in the copy. The
    CLI names the lost file, both halves carry a missing_part problem placed where the take
    breaks, and the second half is never told "not damaged"."""
    from filmfund.media import services
    from filmfund.media.models import AssetState

    p = _three_parts(clips)
    bdmv = camfiles.card(tmp_path / "CARD", {"00000": p[0], "00001": p[1], "00002": p[2]},
                         [("00000", 1), ("00001", 5), ("00002", 5)])
    (bdmv / "STREAM" / "00001.MTS").unlink()
    result = runner.invoke(args=["media", "ingest", str(tmp_path / "CARD")])
    assert result.exit_code == 0, result.output
    assert f"skipped {bdmv / 'STREAM' / '00001.MTS'}: named by the card's playlist 00000.MPL" in result.output
    assert f"({len(p[1])} bytes by its clip info)" in result.output  # what the card says of it
    assert result.output.count("missing_part: ") == 2, result.output  # on both halves, at ingest
    drain()
    by_title = {a.title: services.get_asset(a.public_id) for a in services.find_assets()}
    before, after = by_title["CARD 00000"], by_title["CARD 00002"]

    [gap] = [x for x in before.problems if x["code"] == "missing_part"]
    assert gap["side"] == "end" and gap["source"] == "00000.MTS" and "00001.MTS" in gap["message"]
    assert gap["at"] == pytest.approx(before.duration, abs=0.01)  # the take breaks off at the end of this clip
    [gap] = [x for x in after.problems if x["code"] == "missing_part"]
    assert gap["side"] == "start" and gap["at"] == 0.0 and "00001.MTS" in gap["message"]
    # Kept by the verify (no decode can find it) and the take is not whole: neither half is ready.
    assert before.state == after.state == AssetState.DAMAGED, (before.problems, after.problems)
    [notice] = [x for x in after.problems if x["code"] == "starts_mid_take"]
    assert "not damaged" not in notice["message"] and "00001.MTS" in notice["message"], notice

    login_as(client, make_user(role="producer"))
    page = client.get(f"/footage/{after.public_id}").get_data(as_text=True)
    assert "missing_part" in page and "Copy 00001.MTS from the card" in page


def test_a_truncated_last_part_is_placed_at_the_end_of_the_take(app, clips, tmp_path, drain):
    """Part 2 of a 2-part take is cut short on a 6144-byte boundary (its clip info says longer):
    the problem is placed where the take breaks off, after part 1, not at part 2's own length."""
    from filmfund.media import services
    from filmfund.media.models import AssetState

    data = (clips / "long.MTS").read_bytes()
    cut = len(data) // 2 // 6144 * 6144
    part2 = data[cut:]
    camfiles.card(tmp_path / "CARD", {"00001": data[:cut], "00002": part2[: int(len(part2) * 0.7) // 6144 * 6144]},
                  [("00001", 1), ("00002", 5)], expected={"00002": len(part2)})
    [result] = services.ingest_paths([tmp_path / "CARD"])
    drain()
    asset = services.get_asset(result.asset.public_id)
    assert asset.state == AssetState.DAMAGED, asset.problems
    [trunc] = [x for x in asset.problems if x["code"] == "truncated"]
    first, second = asset.sources
    assert trunc["source"] == "00002.MTS"
    # Part 2 starts where part 1 ends: the break is at its start offset plus its own length.
    assert trunc["at"] == pytest.approx(second.start_time - first.start_time + second.duration, abs=0.01)
    assert first.duration < trunc["at"] <= asset.duration + 0.1, (trunc, first.duration, asset.duration)


def _audio_packets(data: bytes, pid: int) -> list[int]:
    """Offsets of the 192-byte packets of one PID that continue a PES (not its first packet)."""
    out = []
    for pos in range(0, len(data) - 191, 192):
        pkt = data[pos + 4:pos + 192]
        if ((pkt[1] & 0x1F) << 8) | pkt[2] == pid and not pkt[1] & 0x40:
            out.append(pos)
    return out


def test_flipped_bytes_in_the_sound_are_damage(app, tmp_path, drain):
    """A failing disk flipped 32 bytes of one AC-3 frame a second into the clip. Without the CRC
    check the decoder plays the noise and the clip passed as intact."""
    from filmfund.media import ffmpeg, services
    from filmfund.media.models import AssetState

    clip = camfiles.camcorder_mts(tmp_path / "cam.MTS", tmp_path, seconds=2)
    assert ffmpeg.decode_pass(str(clip), timeout=60).errors == 0  # the intact clip: no false alarm
    data = bytearray(clip.read_bytes())
    audio = next(s for s in ffmpeg.probe(str(clip))["streams"] if s["codec_type"] == "audio")
    packets = _audio_packets(bytes(data), int(audio["id"], 16))
    pos = packets[len(packets) // 2]
    for i in range(pos + 4 + 40, pos + 4 + 72):  # payload bytes, not the TS header
        data[i] ^= 0xFF
    damaged = tmp_path / "00005.MTS"
    damaged.write_bytes(bytes(data))
    assert ffmpeg.decode_pass(str(damaged), timeout=60).errors  # the decode-only pass too

    [result] = services.ingest_paths([damaged])
    drain()  # the single pass (check + proxy) finds it, the decode pass diagnoses it
    asset = services.get_asset(result.asset.public_id)
    assert asset.state == AssetState.DAMAGED, asset.problems
    [problem] = [x for x in asset.problems if x["code"] == "decode_errors"]
    assert "CRC" in problem["detail"] and 0.4 <= problem["at"] <= 1.6, problem


def test_a_card_file_under_another_name_is_taken_by_its_bytes(app, clips, tmp_path, runner):
    """STREAM/00001.MTS renamed 00001.mp4 on a laptop is still the camera's clip: the playlist's
    00001 is that file. A file of STREAM whose bytes are not a clip is listed as skipped."""
    from filmfund.media import services

    good = (clips / "good_1080i.MTS").read_bytes()
    bdmv = camfiles.card(tmp_path / "CARD", {"00000": good, "00001": good[: len(good) // 2 // 6144 * 6144]},
                         [("00000", 1), ("00001", 1)])
    (bdmv / "STREAM" / "00001.MTS").rename(bdmv / "STREAM" / "00001.mp4")
    (bdmv / "STREAM" / "NOTES.TXT").write_text("card 3, day 2\n")
    (bdmv / "STREAM" / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")  # a Mac's, not the camera's
    result = runner.invoke(args=["media", "ingest", str(tmp_path / "CARD")])
    assert result.exit_code == 0, result.output
    sources = {s.original_name: a for a in services.find_assets() for s in a.sources}
    assert set(sources) == {"00000.MTS", "00001.mp4"}
    renamed = sources["00001.mp4"]
    assert "card clip (playlist 00000.MPL)" in renamed.notes
    assert any(s.name.endswith("CLIPINF/00001.CPI") for s in renamed.sidecars)  # its clip info came with it
    assert renamed.sources[0].expected_size == len(good) // 2 // 6144 * 6144
    assert f"skipped {bdmv / 'STREAM' / 'NOTES.TXT'}: in the card's STREAM folder, but it holds text" in result.output
    assert ".DS_Store" not in result.output


def test_a_recovered_or_renamed_clip_in_a_folder_is_reported(app, clips, tmp_path, runner):
    """FILE0001.CHK (how a disk repair names recovered clusters) holding a transport stream, and
    a .part left by a copy that never finished, are listed as skipped with the reason; a
    camera's XML sidecar is not footage and is not listed."""
    folder = tmp_path / "day3"
    folder.mkdir()
    good = (clips / "good_1080i.MTS").read_bytes()
    (folder / "00002.MTS").write_bytes(good)
    (folder / "FILE0001.CHK").write_bytes(good[: -192 * 50])
    (folder / "00003.MTS.part").write_bytes(b"\x00" * 4096)
    (folder / "C0001M01.XML").write_text("<?xml version='1.0'?><NonRealTimeMeta/>\n")
    result = runner.invoke(args=["media", "ingest", str(folder)])
    assert result.exit_code == 0, result.output
    assert (f"skipped {folder / 'FILE0001.CHK'}: named .CHK, as a disk repair or an unfinished copy names a "
            "file; holds MPEG transport stream, 192-byte packets under a name that is not a video name: "
            "not ingested (rename it to .MTS") in result.output, result.output
    assert f"skipped {folder / '00003.MTS.part'}: named .part" in result.output
    assert "C0001M01.XML" not in result.output
    assert "1 asset(s): 1 new, 0 already known, 2 path(s) skipped." in result.output


class _FailingRead:
    """A file the disk opens and then cannot read (a bad sector): every read is EIO."""

    def __init__(self, fh):
        self.fh = fh

    def read(self, n=-1):
        raise OSError(errno.EIO, "Input/output error")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.fh.close()


def _fail_reads_of(monkeypatch, name: str) -> None:
    from filmfund.media import ingest

    real_open = builtins.open

    def flaky_open(path, mode="r", *a, **kw):
        fh = real_open(path, mode, *a, **kw)
        return _FailingRead(fh) if str(path).endswith(name) and "b" in mode else fh

    monkeypatch.setattr(ingest, "open", flaky_open, raising=False)


def _keys_owned():
    import sqlalchemy as sa

    from filmfund.extensions import db
    from filmfund.media.models import Rendition, Sidecar, Source

    return {k for model in (Source, Sidecar, Rendition) for k in db.session.scalars(sa.select(model.storage_key))}


def test_a_read_error_in_part_two_keeps_nothing_of_the_take_but_what_was_there(app, clips, tmp_path, monkeypatch):
    """Part 1 of a spanned take is stored, then part 2 cannot be read: the take is skipped with
    the file named, and part 1's object (and the card's files) leave storage, as nothing owns
    them. An object another asset owns (the same bytes ingested before) stays."""
    from filmfund.media import services

    data = (clips / "long.MTS").read_bytes()
    cut = len(data) // 2 // 6144 * 6144
    camfiles.card(tmp_path / "CARD", {"00001": data[:cut], "00002": data[cut:]}, [("00001", 1), ("00002", 5)])
    (tmp_path / "earlier").mkdir()
    (tmp_path / "earlier" / "00001.MTS").write_bytes(data[:cut])  # the same part 1, ingested alone before
    [earlier] = services.ingest_paths([tmp_path / "earlier" / "00001.MTS"])
    earlier_key = earlier.asset.sources[0].storage_key

    _fail_reads_of(monkeypatch, "00002.MTS")
    skipped: list = []
    assert services.ingest_paths([tmp_path / "CARD"], skipped=skipped) == []
    [failed] = skipped
    assert failed.path.name == "00002.MTS"
    assert failed.reason.startswith("read error: Input/output error; the take 00001.MTS + 00002.MTS was not ingested")
    store = services.storage()
    stored = {str(p.relative_to(store.root)) for p in store.root.rglob("*") if p.is_file() and ".incoming" not in p.parts}
    assert stored == _keys_owned() and earlier_key in stored  # no orphan, and the other asset's object kept


def test_the_cli_names_an_unreadable_file_and_ingests_the_other_takes(app, clips, tmp_path, monkeypatch, runner):
    """A read error on one take of a card: the file is named, the takes before and after it come
    in (each printed as it is committed), and the command exits non-zero."""
    from filmfund.media import services

    good = (clips / "good_1080i.MTS").read_bytes()
    camfiles.card(tmp_path / "CARD", {"00001": good, "00002": good[: len(good) // 2 // 192 * 192],
                                      "00003": good[: len(good) // 3 // 192 * 192]},
                  [("00001", 1), ("00002", 1), ("00003", 1)])
    _fail_reads_of(monkeypatch, "00002.MTS")
    result = runner.invoke(args=["media", "ingest", str(tmp_path / "CARD")])
    assert result.exit_code == 1, (result.output, result.exception)
    assert "00002.MTS: read error: Input/output error; the take 00002.MTS was not ingested" in result.output
    assert "1 take(s) not ingested: a file could not be read" in result.output
    names = sorted(s.original_name for a in services.find_assets() for s in a.sources)
    assert names == ["00001.MTS", "00003.MTS"]
    assert [ln.split()[1] for ln in result.stdout.splitlines() if ln.strip()] == ["uploaded", "uploaded"]


def test_a_renamed_copy_beside_the_cameras_file_comes_in_on_its_own(tmp_path, clips):
    """Discovery only (no app): a copy of a card's clip under both names keeps both, the camera's
    name answering to the playlist."""
    from filmfund.media import avchd

    good = (clips / "good_1080i.MTS").read_bytes()
    bdmv = camfiles.card(tmp_path / "CARD", {"00001": good}, [("00001", 1)])
    shutil.copy(bdmv / "STREAM" / "00001.MTS", bdmv / "STREAM" / "00001.mp4")
    skipped: list = []
    groups = avchd.discover([tmp_path / "CARD"], skipped)
    assert [[f.name for f in g.files] for g in groups] == [["00001.MTS"], ["00001.mp4"]]
    assert groups[0].how == "card clip (playlist 00000.MPL)" and skipped == []


def test_a_macs_resource_files_beside_the_clips_are_not_footage(tmp_path, clips):
    """Discovery only (no app): a card copied by a Mac's Finder onto an exFAT disk has an
    AppleDouble `._00000.MTS` (4 KiB of the Mac's metadata) beside each file, and `._` twins of the
    playlist and clip info too. They are the Mac's, never a take (nor a part of one)."""
    from filmfund.media import avchd

    good = (clips / "good_1080i.MTS").read_bytes()
    bdmv = camfiles.card(tmp_path / "CARD", {"00000": good, "00001": good}, [("00000", 1), ("00001", 1)])
    apple_double = b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        " + bytes(4096 - 24)
    for folder, name in (("STREAM", "00000.MTS"), ("STREAM", "00001.MTS"), ("PLAYLIST", "00000.MPL"),
                         ("CLIPINF", "00000.CPI")):
        (bdmv / folder / f"._{name}").write_bytes(apple_double)
    skipped: list = []
    groups = avchd.discover([tmp_path / "CARD"], skipped)
    assert [[f.name for f in g.files] for g in groups] == [["00000.MTS"], ["00001.MTS"]]
    assert all(not s.name.startswith("._") for g in groups for s in g.sidecars)
    assert skipped == []
