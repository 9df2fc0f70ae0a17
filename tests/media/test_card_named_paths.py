"""A card's clips named on their own (`media ingest /card/PRIVATE/AVCHD/BDMV/STREAM/*`, or the STREAM
folder) are read with the card's playlists and clip info, as from the card root; a take already
here, ingested again from a card that says more (a copy cut short, a part missing), gets what the
card says instead of "already ingested"; a take made whole later supersedes the partial asset.
Discovery on tiny generated cards; ingest on the cached clips (tests/media/conftest.py)."""
from __future__ import annotations

import shutil

import pytest

from filmfund.media import avchd
from tests.media import camfiles

# Its subject is how a card is read, not the database (tests/conftest.py: one_database).
pytestmark = pytest.mark.one_database

TS = b"\x47" + b"\x00" * 191  # one 188+4 packet's worth: discovery reads names and clip info, not bytes


def _stream(bdmv):
    return bdmv / "STREAM"


def _groups_by_files(groups):
    return {tuple(f.name for f in g.files): g for g in groups}


# --- discovery --------------------------------------------------------------------------------------

def test_a_named_part_of_a_spanned_take_brings_its_take(tmp_path):
    """STREAM/00002.MTS named alone, the second half of a spanned take whose first half is on the
    card: the take whole, as from the card root, never "00002" alone as a single file."""
    bdmv = camfiles.card(tmp_path / "CARD", {"00001": TS * 40, "00002": TS * 30},
                         [("00001", 1), ("00002", 5)])
    skipped = []
    [group] = avchd.discover([_stream(bdmv) / "00002.MTS"], skipped)
    assert [f.name for f in group.files] == ["00001.MTS", "00002.MTS"]
    assert group.how == "spanned take (playlist 00000.MPL)" and group.card == bdmv.resolve()
    assert group.expected_sizes[group.files[1]] == len(TS * 30)
    assert any(s.name == "00000.MPL" for s in group.sidecars) and skipped == []


def test_a_named_file_whose_take_goes_on_in_a_missing_file_is_told_so(tmp_path):
    """STREAM/00001.MTS named alone; the playlist joins 00002, not in the copy: the take's missing
    part is named (skipped, and a missing part of the group). What else the card skipped (a
    text file beside) is not told for a file that was not named."""
    bdmv = camfiles.card(tmp_path / "CARD", {"00001": TS * 40, "00002": TS * 30},
                         [("00001", 1), ("00002", 5)])
    (_stream(bdmv) / "00002.MTS").unlink()
    (_stream(bdmv) / "NOTES.TXT").write_text("card 3\n")
    skipped = []
    [group] = avchd.discover([_stream(bdmv) / "00001.MTS"], skipped)
    assert [f.name for f in group.files] == ["00001.MTS"]
    [missing] = group.missing
    assert (missing.name, missing.side, missing.size) == ("00002.MTS", "end", len(TS * 30))
    [told] = skipped
    assert told.path.name == "00002.MTS" and "not in this copy: the take is incomplete" in told.reason


def test_a_named_file_cut_short_keeps_its_clip_info(tmp_path):
    bdmv = camfiles.card(tmp_path / "CARD", {"00000": TS * 30}, [("00000", 1)], expected={"00000": len(TS * 50)})
    [group] = avchd.discover([_stream(bdmv) / "00000.MTS"])
    assert group.card == bdmv.resolve() and group.expected_sizes == {group.files[0]: len(TS * 50)}


@pytest.mark.parametrize("naming", ["avchd", "bluray"])
def test_the_stream_folder_or_a_glob_of_it_is_the_card(tmp_path, naming):
    """The STREAM folder, and every file of it named (the shell's `STREAM/*`), find the same takes
    as the card root: the same groups, with the card's facts, each take once."""
    bdmv = camfiles.card(tmp_path / "CARD", {"00000": TS * 10, "00001": TS * 40, "00002": TS * 30},
                         [("00000", 1), ("00001", 1), ("00002", 5)], expected={"00000": len(TS * 20)}, naming=naming)

    def seen(groups):
        return {k: (g.how, g.card, sorted(g.expected_sizes.values()), [m.name for m in g.missing])
                for k, g in _groups_by_files(groups).items()}

    from_root = seen(avchd.discover([tmp_path / "CARD"]))
    assert len(from_root) == 2
    assert seen(avchd.discover([_stream(bdmv)])) == from_root
    assert seen(avchd.discover(sorted(_stream(bdmv).iterdir()))) == from_root
    # The card root named as well: still each take once.
    assert len(avchd.discover([*sorted(_stream(bdmv).iterdir()), tmp_path / "CARD"])) == 2


def test_a_file_outside_a_card_structure_is_a_loose_file(tmp_path):
    """A folder named STREAM that is not under a BDMV is nobody's card."""
    (tmp_path / "STREAM").mkdir()
    (tmp_path / "STREAM" / "00000.MTS").write_bytes(TS * 10)
    assert avchd.card_of(tmp_path / "STREAM" / "00000.MTS") is None
    [group] = avchd.discover([tmp_path / "STREAM" / "00000.MTS"])
    assert group.card is None and group.how == "single file"


# --- ingest -----------------------------------------------------------------------------------------

def _declared(data: bytes, share: float) -> int:
    """The length a clip info declares for a take of which `data` is the first `share` (the copy
    lost the rest: here a whole, cleanly decoding clip, so only the card can tell)."""
    return int(len(data) / share) // 192 * 192


def test_stream_files_named_with_the_shell_are_checked_against_the_card(app, clips, tmp_path, runner, drain):
    """The probe's repro: `media ingest CARD/.../STREAM/*`. A clip 40 % short of its clip info is
    damaged (truncated), not ready; a take whose second file is not in the copy is damaged
    (missing_part); the titles carry the card's name."""
    from filmfund.media import services
    from filmfund.media.models import AssetState

    good = (clips / "good_1080i.MTS").read_bytes()
    long = (clips / "long.MTS").read_bytes()
    half = len(long) // 2 // 6144 * 6144
    bdmv = camfiles.card(tmp_path / "CARD_T", {"00000": good, "00001": long[:half], "00002": long[half:]},
                         [("00000", 1), ("00001", 1), ("00002", 5)], expected={"00000": _declared(good, 0.6)})
    (_stream(bdmv) / "00002.MTS").unlink()
    result = runner.invoke(args=["media", "ingest", *map(str, sorted(_stream(bdmv).iterdir()))])
    assert result.exit_code == 0, result.output
    assert "00002.MTS: named by the card's playlist 00000.MPL as a part of a spanned take" in result.output
    drain()
    by_title = {a.title: services.get_asset(a.public_id) for a in services.find_assets()}
    assert set(by_title) == {"CARD_T 00000", "CARD_T 00001"}, by_title
    cut, rest = by_title["CARD_T 00000"], by_title["CARD_T 00001"]
    assert cut.state == rest.state == AssetState.DAMAGED, (cut.problems, rest.problems)
    [trunc] = [p for p in cut.problems if p["code"] == "truncated"]
    assert "40%" in trunc["message"] and "clip information" in trunc["message"]
    rescue = [p["message"] for p in cut.problems if p["code"] == "rescue"]
    # what was saved is not "all of it": the clip info's length says how much the copy lacks
    assert rescue and all("more are missing from the end of this copy" in m for m in rescue), cut.problems
    [gap] = [p for p in rest.problems if p["code"] == "missing_part"]
    assert gap["missing"] == "00002.MTS" and gap["side"] == "end"
    assert any(s.name.endswith("CLIPINF/00000.CPI") for s in cut.sidecars)


def test_a_known_clip_gets_what_its_card_says_when_ingested_again(app, clips, tmp_path, runner, drain):
    """A clip first ingested while its card's clip info and playlist were not there (copied later,
    or ingested before ingest read them for STREAM files) is "ready". Ingested again with them, it is
    not "already ingested (same bytes)" and left ready: the card's truncation and missing part are
    recorded on it, its state leaves ready, and its structure files are kept. A third ingest adds
    nothing twice; a verify keeps what the card said."""
    from filmfund.media import services
    from filmfund.media.models import AssetState

    good = (clips / "good_1080i.MTS").read_bytes()
    long = (clips / "long.MTS").read_bytes()
    half = len(long) // 2 // 6144 * 6144
    stream = tmp_path / "CARD" / "PRIVATE" / "AVCHD" / "BDMV" / "STREAM"
    stream.mkdir(parents=True)
    (stream / "00000.MTS").write_bytes(good)
    (stream / "00002.MTS").write_bytes(long[half:])  # the take's second file; its first was lost
    first = runner.invoke(args=["media", "ingest", str(tmp_path / "CARD")])
    assert first.exit_code == 0, first.output
    drain()
    assets = {a.sources[0].original_name: a for a in services.find_assets()}
    assert {a.state for a in assets.values()} == {AssetState.READY}, [a.problems for a in assets.values()]

    # The card's clip info and playlist, as the camera wrote them (00001 lost in the copy).
    shutil.rmtree(tmp_path / "CARD")
    camfiles.card(tmp_path / "CARD", {"00000": good, "00001": long[:half], "00002": long[half:]},
                  [("00000", 1), ("00001", 1), ("00002", 5)], expected={"00000": _declared(good, 0.6)})
    (stream / "00001.MTS").unlink()
    again = runner.invoke(args=["media", "ingest", str(tmp_path / "CARD")])
    assert again.exit_code == 0, again.output
    assert again.output.count("already ingested (same bytes); the card adds: ") == 2, again.output
    assert "truncated: 00000.MTS has" in again.output
    assert "missing_part: This clip continues a take from 00001.MTS" in again.output
    cut = services.get_asset(assets["00000.MTS"].public_id)
    rest = services.get_asset(assets["00002.MTS"].public_id)
    assert cut.state == rest.state == AssetState.DAMAGED
    assert [p["code"] for p in cut.problems] == ["truncated"]
    assert [p["code"] for p in rest.problems if p.get("severity") != "info"] == ["missing_part"]
    assert cut.sources[0].expected_size == _declared(good, 0.6)
    assert {s.name for s in cut.sidecars} >= {"BDMV/CLIPINF/00000.CPI", "BDMV/PLAYLIST/00000.MPL", "BDMV/INDEX.BDM"}
    assert cut.title == "CARD 00000" and "Card: " in cut.notes

    third = runner.invoke(args=["media", "ingest", str(stream / "00000.MTS"), str(stream / "00002.MTS")])
    assert third.exit_code == 0 and "the card adds" not in third.output, third.output
    assert [p["code"] for p in services.get_asset(cut.public_id).problems] == ["truncated"]

    services.reverify(cut)
    services.reverify(rest)
    from filmfund.extensions import db
    db.session.commit()
    drain()
    assert services.get_asset(cut.public_id).state == AssetState.DAMAGED
    rest = services.get_asset(rest.public_id)
    assert rest.state == AssetState.DAMAGED and "missing_part" in [p["code"] for p in rest.problems]


def _ingest_a_take_without(clips, tmp_path, runner, drain, missing: str):
    """A card whose take is spanned over 00001 and 00002, ingested with one of them not copied:
    (its BDMV folder, the take's bytes, where the second file begins)."""
    long = (clips / "long.MTS").read_bytes()
    half = len(long) // 2 // 6144 * 6144
    bdmv = camfiles.card(tmp_path / "CARD", {"00001": long[:half], "00002": long[half:]},
                         [("00001", 1), ("00002", 5)])
    (_stream(bdmv) / f"{missing}.MTS").unlink()
    assert runner.invoke(args=["media", "ingest", str(tmp_path / "CARD")]).exit_code == 0
    drain()
    return bdmv, long, half


def test_a_take_made_whole_later_supersedes_its_partial_asset(app, clips, tmp_path, runner, drain):
    """The first copy lacked 00001: 00002 came in damaged (missing_part, its first pictures lost).
    Once 00001 is copied and the card ingested again, the take comes in whole; the partial asset is linked to it
    ("superseded"), loses its missing_part, is checked again, and `media verify --all` passes."""
    from filmfund.media import services
    from filmfund.media.models import AssetState

    bdmv, long, half = _ingest_a_take_without(clips, tmp_path, runner, drain, "00001")
    [partial] = services.find_assets()
    assert partial.state == AssetState.DAMAGED
    assert runner.invoke(args=["media", "verify", "--all"]).exit_code == 1

    (_stream(bdmv) / "00001.MTS").write_bytes(long[:half])
    result = runner.invoke(args=["media", "ingest", str(tmp_path / "CARD")])
    assert result.exit_code == 0, result.output
    drain()
    whole = next(a for a in services.find_assets() if len(a.sources) == 2)
    partial = services.get_asset(partial.public_id)
    assert whole.state == AssetState.READY, whole.problems
    assert partial.state == AssetState.READY, partial.problems  # checked again as the part it is
    [link] = [p for p in partial.problems if p["code"] == "superseded"]
    assert link["by"] == whole.public_id and link["severity"] == "info" and whole.public_id in link["message"]
    assert not any(p["code"] == "missing_part" for p in partial.problems)
    assert f"Superseded by {whole.public_id}" in partial.notes
    verify = runner.invoke(args=["media", "verify", "--all"])
    assert verify.exit_code == 0, verify.output
    # An editor's timeline of everything gets the take once, whole; the part is still exported
    # when named.
    export = runner.invoke(args=["media", "export", "--format", "otio"])
    assert export.exit_code == 0, export.output
    assert "1 clip(s) exported" in export.stderr
    assert whole.public_id in export.stdout and partial.public_id not in export.stdout
    named = runner.invoke(args=["media", "export", "--format", "otio", partial.public_id])
    assert named.exit_code == 0 and partial.public_id in named.stdout, named.output

    # The old, incomplete copy (elsewhere) ingested once more: the partial does not get its
    # missing part back, nor leave "ready".
    shutil.copytree(tmp_path / "CARD", tmp_path / "OLD")
    (tmp_path / "OLD" / "PRIVATE" / "AVCHD" / "BDMV" / "STREAM" / "00001.MTS").unlink()
    again = runner.invoke(args=["media", "ingest", str(tmp_path / "OLD" / "PRIVATE" / "AVCHD" / "BDMV" / "STREAM")])
    assert again.exit_code == 0 and "the card adds" not in again.output, again.output
    partial = services.get_asset(partial.public_id)
    assert partial.state == AssetState.READY and not any(p["code"] == "missing_part" for p in partial.problems)


def test_a_first_part_made_whole_later_no_longer_fails_verify(app, clips, tmp_path, runner, drain):
    """The other way round: the copy lacked the take's second file. Its first part, cut mid
    picture group, may decode with errors at its end and stay damaged once superseded: `media
    verify --all` says so and does not count it (the whole take is checked on its own line)."""
    from filmfund.media import services
    from filmfund.media.models import AssetState

    bdmv, long, half = _ingest_a_take_without(clips, tmp_path, runner, drain, "00002")
    [partial] = services.find_assets()
    assert partial.state == AssetState.DAMAGED
    assert runner.invoke(args=["media", "verify", "--all"]).exit_code == 1

    (_stream(bdmv) / "00002.MTS").write_bytes(long[half:])
    assert runner.invoke(args=["media", "ingest", str(tmp_path / "CARD")]).exit_code == 0
    drain()
    whole = next(a for a in services.find_assets() if len(a.sources) == 2)
    partial = services.get_asset(partial.public_id)
    assert whole.state == AssetState.READY, whole.problems
    assert any(p["code"] == "superseded" and p["by"] == whole.public_id for p in partial.problems)
    verify = runner.invoke(args=["media", "verify", "--all"])
    assert verify.exit_code == 0, verify.output
    assert partial.state == AssetState.DAMAGED, partial.problems  # its cut end still decodes with errors
    assert f"superseded by {whole.public_id}" in verify.output


def test_damage_in_a_spanned_take_names_its_file(app, clips, tmp_path, runner, drain):
    """Decode errors in a take spanned over two files say which file they are in: the crew copies
    that one again, not the whole card."""
    from filmfund.media import services

    long = (clips / "long.MTS").read_bytes()
    half = len(long) // 2 // 6144 * 6144
    second = bytearray(long[half:])
    middle = len(second) // 2 // 192 * 192
    for at in range(middle, middle + 40 * 192, 192):
        second[at + 4 + 20:at + 192] = bytes(192 - 24)  # payloads zeroed, the packets' headers kept
    camfiles.card(tmp_path / "CARD_D", {"00001": long[:half], "00002": bytes(second)}, [("00001", 1), ("00002", 5)])
    assert runner.invoke(args=["media", "ingest", str(tmp_path / "CARD_D")]).exit_code == 0
    drain()
    [asset] = services.find_assets()
    errors = [p for p in asset.problems if p["code"] == "decode_errors"]
    assert errors and "(in 00002.MTS)" in errors[0]["message"] and "00001" not in errors[0]["message"], asset.problems
    assert errors[0]["hint"].startswith("Copy 00002.MTS again")


def test_an_empty_part_of_a_spanned_take_is_said_empty_not_absent(app, clips, tmp_path, runner, drain):
    """A copy that failed at its first byte leaves the file there, empty: the crew is told that,
    not sent looking for a file that "is not in this copy"."""
    from filmfund.media import services

    long = (clips / "long.MTS").read_bytes()
    half = len(long) // 2 // 6144 * 6144
    bdmv = camfiles.card(tmp_path / "CARD_E", {"00001": long[:half], "00002": long[half:]},
                         [("00001", 1), ("00002", 5)])
    (_stream(bdmv) / "00002.MTS").write_bytes(b"")
    result = runner.invoke(args=["media", "ingest", str(tmp_path / "CARD_E")])
    assert result.exit_code == 0, result.output
    drain()
    [asset] = services.find_assets()
    [gap] = [p for p in asset.problems if p["code"] == "missing_part"]
    assert "00002.MTS" in gap["message"] and "is empty (0 bytes) in this copy" in gap["message"], gap
    assert "not in this copy" not in gap["message"]
