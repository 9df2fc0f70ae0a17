"""The decode pass's edit proxy is read back by its MP4 structure (media/readback.py), not by a
second ffprobe run: it must agree with ffprobe on a whole proxy and refuse one that is not whole.
ffprobe is the oracle on real outputs; hand-built files cover what ffmpeg writes only for huge
proxies (64-bit chunk offsets, a version 1 movie header)."""
from __future__ import annotations

import struct
from pathlib import Path

import pytest

from filmfund.media import ffmpeg, readback


@pytest.fixture(scope="module")
def proxy(clips, tmp_path_factory) -> Path:
    """An edit proxy written by the pipeline's own single decode of the camera-like 1080i clip."""
    folder = tmp_path_factory.mktemp("readback")
    src = clips / "good_1080i.MTS"
    info = ffmpeg.summarize(ffmpeg.probe(str(src)))
    profs = ffmpeg.read_profiles(Path(ffmpeg.__file__).with_name("profiles.toml"), None)
    out = folder / "proxy.mp4"
    # With a camera's start timecode, as a camcorder take has: the proxy then has a third track (tmcd).
    ffmpeg.checked_run(ffmpeg.check_and_proxy_argv(str(src), str(out), str(folder / "poster.jpg"), info,
                                                   profs["proxy"], profs["poster"], timecode="01:02:03:04"), timeout=120)
    return out


def test_a_whole_proxy_reads_as_ffprobe_reads_it(proxy):
    by_ffprobe = ffmpeg.summarize(ffmpeg.probe(str(proxy)))
    read = readback.read_mp4(proxy)
    assert (read.kind, read.width, read.height, read.has_audio) == (
        "video", by_ffprobe.width, by_ffprobe.height, by_ffprobe.has_audio)
    assert read.duration == pytest.approx(by_ffprobe.duration, abs=0.002)
    assert read.video_codec == by_ffprobe.video_codec == "h264"


def test_a_proxy_cut_short_anywhere_is_not_whole(proxy, tmp_path):
    data = proxy.read_bytes()
    cut = tmp_path / "cut.mp4"
    for size in sorted({0, 7, 8, 40, 1000, len(data) // 3, len(data) // 2, len(data) - 1000, len(data) - 1}):
        cut.write_bytes(data[:size])
        with pytest.raises(ffmpeg.FfmpegError, match="not a whole MP4"):
            readback.read_mp4(cut)
    # ffprobe itself would take some of these (an index whose media data is cut off): the
    # structure is stricter than a probe.
    cut.write_bytes(data + b"\0\0\0")  # trailing bytes that are no box
    with pytest.raises(ffmpeg.FfmpegError):
        readback.read_mp4(cut)


def test_an_index_that_points_outside_the_media_data_is_not_whole(proxy, tmp_path):
    data = bytearray(proxy.read_bytes())
    at = data.index(b"stco") + 4 + 4 + 4  # type, version and flags, entry count: the first offset
    data[at:at + 4] = struct.pack(">I", len(data) + 10)
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(bytes(data))
    with pytest.raises(ffmpeg.FfmpegError, match="outside its media data"):
        readback.read_mp4(broken)


# --- hand-built files ---------------------------------------------------------------------------

def box(kind: bytes, *payload: bytes) -> bytes:
    body = b"".join(payload)
    return struct.pack(">I4s", 8 + len(body), kind) + body


def movie(*, width=1280, height=720, samples=3, timescale=90000, duration=270000, mvhd_version=1,
          co64=True, audio=False, mdat=b"\0" * 64) -> bytes:
    """ftyp, moov, mdat: one video track (and one sound track) whose chunks start in the mdat."""
    if mvhd_version == 1:
        mvhd = box(b"mvhd", b"\1\0\0\0", struct.pack(">QQIQ", 0, 0, timescale, duration), b"\0" * 80)
    else:
        mvhd = box(b"mvhd", b"\0\0\0\0", struct.pack(">IIII", 0, 0, timescale, duration), b"\0" * 80)

    def trak(handler: bytes, entry: bytes, offset: int) -> bytes:
        offsets = (box(b"co64", b"\0" * 4, struct.pack(">IQ", 1, offset)) if co64
                   else box(b"stco", b"\0" * 4, struct.pack(">II", 1, offset)))
        stbl = box(b"stbl", box(b"stsd", b"\0" * 4, struct.pack(">I", 1), entry),
                   box(b"stsz", b"\0" * 4, struct.pack(">II", 0, samples), struct.pack(">I", 10) * samples),
                   offsets)
        return box(b"trak", box(b"tkhd", b"\0" * 84),
                   box(b"mdia", box(b"hdlr", b"\0" * 8, handler, b"\0" * 13), box(b"minf", stbl)))

    avc1 = box(b"avc1", b"\0" * 6, b"\0\1", b"\0" * 16, struct.pack(">HH", width, height), b"\0" * 50)
    mp4a = box(b"mp4a", b"\0" * 6, b"\0\1", b"\0" * 20)
    ftyp = box(b"ftyp", b"isom\0\0\2\0isomiso2avc1mp41")

    def build(offset: int) -> bytes:
        traks = trak(b"vide", avc1, offset) + (trak(b"soun", mp4a, offset) if audio else b"")
        return ftyp + box(b"moov", mvhd, traks)

    head = build(0)
    return build(len(head) + 8) + box(b"mdat", mdat)  # the chunks start at the media data's first byte


def read(tmp_path: Path, data: bytes):
    path = tmp_path / "made.mp4"
    path.write_bytes(data)
    return readback.read_mp4(path)


def test_large_file_forms_are_read(tmp_path):
    info = read(tmp_path, movie(mvhd_version=1, co64=True, audio=True))
    assert (info.width, info.height, info.duration, info.has_audio) == (1280, 720, 3.0, True)
    info = read(tmp_path, movie(mvhd_version=0, co64=False, width=960, height=540, duration=135000))
    assert (info.width, info.height, info.duration, info.has_audio) == (960, 540, 1.5, False)


@pytest.mark.parametrize(("change", "said"), [
    ({"samples": 0}, "no frames"),
    ({"width": 0}, "no video track with a picture size"),
    ({"timescale": 0}, "no time scale"),
    ({"mdat": b""}, "outside its media data"),
])
def test_what_an_encoder_that_failed_leaves_is_not_whole(tmp_path, change, said):
    with pytest.raises(ffmpeg.FfmpegError, match=said):
        read(tmp_path, movie(**change))


def test_a_file_that_is_not_an_mp4_is_not_whole(tmp_path, proxy):
    with pytest.raises(ffmpeg.FfmpegError, match="ftyp"):
        read(tmp_path, box(b"moov", b"") + proxy.read_bytes())
    with pytest.raises(ffmpeg.FfmpegError, match="no movie box"):
        read(tmp_path, box(b"ftyp", b"isom") + box(b"mdat", b"\0" * 10))
