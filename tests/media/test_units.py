"""ffmpeg runner and diagnosis, storage backends, AVCHD card reading: on real generated clips,
a real camera header and a real S3 server on loopback."""
from __future__ import annotations

import hashlib
import io
import os
import shutil
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from filmfund.media import avchd, ffmpeg
from filmfund.media.storage import LocalStorage, S3Storage, content_key, sha256_file

SAMPLES = Path(__file__).resolve().parents[2] / ".." / "shared" / "media-samples"  # ../shared from the project root
CANON = Path(__file__).resolve().parents[2] / "tests" / "media" / "data" / "canon-avchd-header.mts"


# --- ffmpeg: diagnosis -------------------------------------------------------------------------

def test_camera_clip_probes_as_a_camcorder_writes_it(clips):
    info = ffmpeg.summarize(ffmpeg.probe(str(clips / "good_1080i.MTS")))
    assert (info.width, info.height, info.video_codec, info.audio_codec) == (1920, 1080, "h264", "ac3")
    assert info.interlaced and info.fps == 25
    assert (clips / "good_1080i.MTS").stat().st_size % 192 == 0


def test_decode_pass_tells_intact_from_corrupt(clips):
    good = ffmpeg.decode_pass(str(clips / "good_1080i.MTS"), timeout=60)
    assert good.errors == 0 and good.frames == 50
    bad = ffmpeg.decode_pass(str(clips / "corrupt.MTS"), timeout=60)
    assert bad.returncode == 0  # ffmpeg's exit code misses it ...
    assert bad.errors >= 1      # ... the error lines do not
    located = [i.at for i in bad.issues if i.at is not None]
    assert located and 0.4 < min(located) < 1.6


def test_spanned_part_alone_has_errors_but_the_joined_take_has_none(clips):
    part2 = ffmpeg.decode_pass(str(clips / "00002.MTS"), timeout=60)
    assert part2.errors > 0  # "non-existing PPS 0 referenced": it starts mid-GOP
    joined = ffmpeg.decode_pass(ffmpeg.input_spec([clips / "00001.MTS", clips / "00002.MTS"]), timeout=60)
    assert joined.errors == 0 and joined.frames == 75
    p1 = ffmpeg.summarize(ffmpeg.probe(str(clips / "00001.MTS")))
    p2 = ffmpeg.summarize(ffmpeg.probe(str(clips / "00002.MTS")))
    assert avchd.continues(p1.end_time, p2.start_time)  # part 2 starts where part 1 ended


def test_run_enforces_timeout_and_bounds_stderr():
    argv = ffmpeg._compile(ffmpeg.ffmpeg_lib.input("testsrc2=size=320x240:rate=25", f="lavfi", re=None)
                           .output("-", f="null"))
    assert "-progress" in argv and "pipe:1" in argv and "-nostdin" in argv
    with pytest.raises(ffmpeg.FfmpegTimeout):
        ffmpeg.run(argv, timeout=0.5)
    noisy = ["sh", "-c", "i=0; while [ $i -lt 3000 ]; do echo 'x-line-of-noise-to-fill-the-pipe' >&2; i=$((i+1)); done; "
             "echo progress=end"]
    lines = []
    result = ffmpeg.run(noisy, timeout=20, on_stderr_line=lines.append)
    assert len(lines) == 3000  # every line drained (a full pipe would have hung the child)
    assert len(result.stderr_tail.encode()) <= ffmpeg.TAIL_BYTES + 100


def _runs_side_by_side(slot: bool) -> list[tuple[float, float]]:
    """Two threads each run a 1 s real-time ffmpeg at once; each run's (start, end) as ffmpeg ran."""
    import threading
    import time

    argv = ffmpeg._compile(ffmpeg.ffmpeg_lib.input("testsrc2=size=160x120:rate=25:duration=1", f="lavfi", re=None)
                           .output("-", f="null"))
    spans: list[tuple[float, float]] = []

    def one() -> None:
        result = ffmpeg.run(argv, timeout=30, slot=slot)
        ended = time.monotonic()
        spans.append((ended - result.seconds, ended))

    threads = [threading.Thread(target=one) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sorted(spans)


def test_encodes_take_turns_in_the_process_slot():
    """FILMFUND_ENCODE_SLOTS (1): a job's encode waits for the other's to end, whatever the
    threads; a viewer's marked segment (slot=False) does not queue behind them."""
    (_, first_end), (second_start, _) = _runs_side_by_side(slot=True)
    assert second_start >= first_end
    (_, first_end), (second_start, _) = _runs_side_by_side(slot=False)
    assert second_start < first_end


def test_failure_raises_with_what_ffmpeg_said(tmp_path):
    argv = ffmpeg._compile(ffmpeg.ffmpeg_lib.input(str(tmp_path / "missing.mts")).output(str(tmp_path / "o.mp4")))
    with pytest.raises(ffmpeg.FfmpegError) as err:
        ffmpeg.run(argv, timeout=30)
    assert "No such file" in str(err.value) or "No such file" in err.value.stderr_tail


def test_rendition_argv_deinterlaces_and_fixes_anamorphic_pixels(clips):
    info = ffmpeg.summarize(ffmpeg.probe(str(clips / "good_1080i.MTS")))
    info.sar = "4:3"
    argv = ffmpeg.video_rendition_argv("in.mts", "out.mp4", info, {"height": 540, "preset": "veryfast",
                                                                    "keep_source_metadata": True},
                                       recorded_at="2008-12-31T22:16:24+00:00")
    graph = argv[argv.index("-filter_complex") + 1]
    assert "bwdif=deint=all:mode=send_frame:parity=auto" in graph
    assert "scale=trunc(iw*sar/2)*2:ih" in graph and "setsar=1" in graph and "scale=-2:540" in graph
    # The index first, in room reserved from the clip's length: one pass, no faststart rewrite.
    assert "-movflags" not in argv and int(argv[argv.index("-moov_size") + 1]) > 2 * 24 * info.duration * 25
    assert argv[argv.index("-map_metadata") + 1] == "0"  # tags kept (an edit proxy's profile says so)
    assert argv[argv.index("-metadata") + 1] == "creation_time=2008-12-31T22:16:24+00:00"  # recording date


# --- storage -----------------------------------------------------------------------------------

def test_local_storage_is_content_addressed_and_never_overwrites(tmp_path):
    store = LocalStorage(tmp_path / "media")
    first = store.put_stream(io.BytesIO(b"take one"), ".MTS")
    again = store.put_stream(io.BytesIO(b"take one"), ".MTS")
    assert first.key == again.key == content_key(hashlib.sha256(b"take one").hexdigest(), ".mts")
    assert first.created and not again.created
    assert store.open(first.key).read() == b"take one"
    assert not os.access(store.local_file(first.key), os.W_OK) or os.geteuid() == 0  # read-only
    assert list((tmp_path / "media" / ".incoming").iterdir()) == []
    with pytest.raises(ValueError):
        store._path("../../etc/passwd")


def test_sha256_matches_sha256sum(clips):
    import subprocess

    ours, size = sha256_file(clips / "good_1080i.MTS")
    theirs = subprocess.run(["sha256sum", str(clips / "good_1080i.MTS")], capture_output=True, text=True).stdout.split()[0]
    assert ours == theirs and size == (clips / "good_1080i.MTS").stat().st_size


def test_s3_multipart_upload_and_presigned_range(moto_server, s3_bucket, clips):
    import urllib.request

    store = S3Storage(f"s3://{s3_bucket}/footage", moto_server, part_size=5 * 1024 * 1024)
    path = clips / "long.MTS"  # ~7.5 MB: two parts
    calls = []
    real = store.client.upload_part

    def counting(**kw):
        calls.append(kw["PartNumber"])
        return real(**kw)

    store.client.upload_part = counting
    stored = store.put_file(path)
    assert calls == [1, 2]
    assert stored.sha256 == sha256_file(path)[0] and stored.size == path.stat().st_size
    assert store.size(stored.key) == stored.size
    assert store.sha256_of(stored.key)[0] == stored.sha256
    assert not store.put_file(path).created  # same content: same key, not rewritten
    assert store.keys() == [stored.key]  # the temporary upload key is gone
    url = store.presigned_get(stored.key, 300, "take.MTS", "video/mp2t")
    q = parse_qs(urlparse(url).query)
    assert q["X-Amz-Expires"] == ["300"] and "X-Amz-Signature" in q
    with urllib.request.urlopen(urllib.request.Request(url, headers={"Range": "bytes=192-383"}), timeout=10) as r:
        assert r.status == 206 and r.read() == path.read_bytes()[192:384]
    with store.local_path(stored.key, clips.parent / "work") as local:
        assert sha256_file(local)[0] == stored.sha256
    assert not local.exists()


# --- AVCHD cards -------------------------------------------------------------------------------

def test_mdpm_recording_date_of_a_real_canon_file():
    # ExifTool reads 2008:12:31 23:16:24+01:00 from this camera header (media-samples/README.md).
    sample = SAMPLES / "canon-avchd-header.mts" if (SAMPLES / "canon-avchd-header.mts").exists() else CANON
    assert avchd.read_mdpm_date(sample) == datetime(2008, 12, 31, 22, 16, 24, tzinfo=timezone.utc)


def test_mpls_round_trip():
    items = [("00001", 1), ("00002", 5), ("00003", 1)]
    assert avchd.parse_mpls(avchd.build_mpls(items)) == items
    with pytest.raises(ValueError):
        avchd.parse_mpls(b"not a playlist at all")


def _card(root: Path, clips: Path, playlist: list[tuple[str, int]] | None) -> Path:
    bdmv = root / "PRIVATE" / "AVCHD" / "BDMV"
    (bdmv / "STREAM").mkdir(parents=True)
    (bdmv / "CLIPINF").mkdir()
    (bdmv / "PLAYLIST").mkdir()
    shutil.copy(clips / "00001.MTS", bdmv / "STREAM" / "00001.MTS")
    shutil.copy(clips / "00002.MTS", bdmv / "STREAM" / "00002.MTS")
    shutil.copy(clips / "good_1080i.MTS", bdmv / "STREAM" / "00003.MTS")
    for n in ("00001", "00002", "00003"):
        (bdmv / "CLIPINF" / f"{n}.CPI").write_bytes(b"HDMV0100")
    if playlist:
        (bdmv / "PLAYLIST" / "00000.MPLS").write_bytes(avchd.build_mpls(playlist))
    return bdmv


def test_card_playlist_groups_spanned_files(clips, tmp_path):
    _card(tmp_path / "CARD_A", clips, [("00001", 1), ("00002", 5), ("00003", 1)])
    groups = avchd.discover([tmp_path / "CARD_A"])
    assert [[f.name for f in g.files] for g in groups] == [["00001.MTS", "00002.MTS"], ["00003.MTS"]]
    assert groups[0].how.startswith("spanned take (playlist")


def test_card_without_playlist_falls_back_to_numbering_and_timestamps(clips, tmp_path):
    _card(tmp_path / "CARD_B", clips, None)
    groups = avchd.discover([tmp_path / "CARD_B"])
    times = {}
    for g in groups:
        for f in g.files:
            info = ffmpeg.summarize(ffmpeg.probe(str(f)))
            times[f] = (info.start_time, info.end_time)
    linked = avchd.link_spans(groups, times)
    # 00003 is numbered next to 00002 but its timestamps restart: a separate recording.
    assert [[f.name for f in g.files] for g in linked] == [["00001.MTS", "00002.MTS"], ["00003.MTS"]]
    assert "timestamps continue" in linked[0].how


def test_ingest_card_root_makes_one_asset_per_take(app, clips, tmp_path):
    from filmfund.media import services

    _card(tmp_path / "CARD_C", clips, [("00001", 1), ("00002", 6), ("00003", 1)])
    results = services.ingest_paths([tmp_path / "CARD_C"])
    assert [len(r.asset.sources) for r in results] == [2, 1]
    assert [s.position for s in results[0].asset.sources] == [0, 1]
    assert results[0].asset.title == "CARD_C 00001 (+1 part)"
    assert all(r.asset.state.value == "uploaded" for r in results)
