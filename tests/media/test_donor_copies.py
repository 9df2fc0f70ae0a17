"""Clean donor copies (issue 6, item 6): the argv that makes a donor's web rendition or a still
keeps no location, device, serial or comment, only the title; the edit proxy keeps the source's
tags for the editor. Real ffmpeg on files that carry GPS metadata everywhere a camera writes it."""
from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from filmfund.media import ffmpeg
from tests.media.located import assert_no_location, jpeg_segments, located_clip, located_jpeg

PROFILES = tomllib.loads((Path(ffmpeg.__file__).with_name("profiles.toml")).read_text())


@pytest.fixture(scope="module")
def located(tmp_path_factory):
    folder = tmp_path_factory.mktemp("located")
    return located_clip(folder / "phone.mp4"), located_jpeg(folder / "photo.jpg")


@pytest.fixture(scope="module")
def located_short_gop(tmp_path_factory):
    # The strip reads keyframes only: a keyframe a second gives it frames to tile.
    return located_clip(tmp_path_factory.mktemp("located-gop") / "camera.mp4", gop=25)


def _fast(profile: dict) -> dict:
    return {**profile, "preset": "ultrafast"}


def test_the_planted_metadata_is_really_there(located):
    clip, jpeg = located
    tags = ffmpeg.probe(str(clip))["format"]["tags"]
    assert {"location", "com.apple.quicktime.location.ISO6709", "make", "model", "comment"} <= set(tags)
    assert b"GPS48.8584N" in clip.read_bytes()  # the SEI inside the picture stream
    assert {0xE1, 0xED, 0xFE} <= {m for m, _ in jpeg_segments(jpeg.read_bytes())}
    with pytest.raises(AssertionError):
        assert_no_location(jpeg.read_bytes())


@pytest.mark.parametrize("title, written", [
    ("Interview, day 3", "Interview, day 3"),
    # An ideographic space and a rare character of CJK Extension H (newer than this Python's
    # Unicode) are the producer's; a line break is not a title's.
    ("访谈\u3000第三天：王\U00031350明\n", "访谈\u3000第三天：王\U00031350明"),
])
def test_web_rendition_keeps_only_the_title(located, tmp_path, title, written):
    clip, _ = located
    info = ffmpeg.summarize(ffmpeg.probe(str(clip)))
    out = tmp_path / "web.mp4"
    ffmpeg.run(ffmpeg.video_rendition_argv(str(clip), str(out), info, _fast(PROFILES["web"]),
                                           recorded_at="2024-05-17T09:30:00+00:00", title=title),
               timeout=120)
    probe = ffmpeg.probe(str(out))
    assert probe["format"]["tags"].get("title") == written
    assert "creation_time" not in probe["format"]["tags"]
    assert_no_location(out.read_bytes(), probe)


def test_a_profile_without_the_key_is_clean_by_default(located, tmp_path):
    clip, _ = located
    info = ffmpeg.summarize(ffmpeg.probe(str(clip)))
    crews_own = {k: v for k, v in PROFILES["proxy"].items() if k != "keep_source_metadata"}
    out = tmp_path / "custom.mp4"
    ffmpeg.run(ffmpeg.video_rendition_argv(str(clip), str(out), info, _fast(crews_own)), timeout=120)
    assert_no_location(out.read_bytes(), ffmpeg.probe(str(out)))


def test_edit_proxy_keeps_the_source_tags_for_the_editor(located, tmp_path):
    clip, _ = located
    info = ffmpeg.summarize(ffmpeg.probe(str(clip)))
    out = tmp_path / "proxy.mp4"
    ffmpeg.run(ffmpeg.video_rendition_argv(str(clip), str(out), info, _fast(PROFILES["proxy"]),
                                           recorded_at="2024-05-17T09:30:00+00:00"), timeout=120)
    tags = ffmpeg.probe(str(out))["format"]["tags"]
    assert tags["creation_time"].startswith("2024-05-17T09:30:00")


def test_stills_are_reencoded_without_exif_xmp_iptc_or_comment(located, located_short_gop, tmp_path):
    _, jpeg = located
    clip = located_short_gop
    still = tmp_path / "still.jpg"
    ffmpeg.run(ffmpeg.image_argv(str(jpeg), str(still), PROFILES["image"]), timeout=60)
    data = still.read_bytes()
    assert data != jpeg.read_bytes()
    assert_no_location(data)
    info = ffmpeg.summarize(ffmpeg.probe(str(clip)))
    for name, argv in (("poster", ffmpeg.poster_argv), ("strip", ffmpeg.strip_argv)):
        out = tmp_path / f"{name}.jpg"
        ffmpeg.run(argv(str(clip), str(out), info, PROFILES[name]), timeout=60)
        assert_no_location(out.read_bytes())


def test_a_portrait_photo_stays_upright_without_its_exif(tmp_path):
    """Phones store portrait photos landscape with an EXIF Orientation; the still made for donors
    has no EXIF, so the rotation is applied to the pixels (ffmpeg reads it as a display matrix)."""
    import struct

    plain = tmp_path / "plain.jpg"
    ffmpeg.run(ffmpeg._compile(ffmpeg.ffmpeg_lib.input("testsrc2=size=640x360", f="lavfi")
                               .output(str(plain), vframes=1)), timeout=60)
    ifd = struct.pack(">H", 1) + struct.pack(">HHI", 0x0112, 3, 1) + struct.pack(">HH", 6, 0) + struct.pack(">I", 0)
    exif = b"Exif\0\0MM\0*" + struct.pack(">I", 8) + ifd
    data = plain.read_bytes()
    rotated = tmp_path / "portrait.jpg"
    rotated.write_bytes(data[:2] + b"\xff\xe1" + struct.pack(">H", len(exif) + 2) + exif + data[2:])
    out = tmp_path / "still.jpg"
    ffmpeg.run(ffmpeg.image_argv(str(rotated), str(out), PROFILES["image"]), timeout=60)
    info = ffmpeg.summarize(ffmpeg.probe(str(out)))
    assert (info.width, info.height) == (360, 640)
    assert_no_location(out.read_bytes())
