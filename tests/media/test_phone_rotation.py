"""A phone held upright records its frames sideways and says so in a display matrix. The crew's
pages and the archive's manifest give the clip's size as it is seen (portrait), as its proxy
and donors' copies are made (ffmpeg turns the frames), not the coded landscape size."""
from __future__ import annotations

import struct
import subprocess
from pathlib import Path

import pytest

from filmfund.media import ffmpeg


def _upright_phone_clip(out: Path, degrees: int) -> Path:
    """A 320x180 clip whose track header turns it a quarter (what an iPhone writes when held
    upright): ffmpeg 5.1 writes no matrix itself, so the tkhd box's matrix is set here."""
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=30",
                    "-t", "1", "-c:v", "libx264", "-preset", "ultrafast", str(out)], check=True, stdin=subprocess.DEVNULL)
    data = bytearray(out.read_bytes())
    tkhd = data.find(b"tkhd")
    matrix = tkhd + 4 + 4 + (20 if data[tkhd + 4] == 0 else 32) + 16
    one = 1 << 16
    turn = {90: (0, one, 0, -one, 0, 0), 270: (0, -one, 0, one, 0, 0), 180: (-one, 0, 0, 0, -one, 0)}[degrees]
    struct.pack_into(">9i", data, matrix, *turn, 0, 0, 1 << 30)
    out.write_bytes(data)
    return out


@pytest.mark.parametrize(("degrees", "size"), [(90, (180, 320)), (270, (180, 320)), (180, (320, 180))])
def test_the_probe_gives_the_size_as_seen(tmp_path, degrees, size):
    clip = _upright_phone_clip(tmp_path / "IMG_0001.MOV", degrees)
    info = ffmpeg.summarize(ffmpeg.probe(str(clip)))
    assert (info.width, info.height) == size


@pytest.mark.one_database  # ffmpeg's work, not the database's (tests/conftest.py)
def test_an_upright_phone_clip_is_recorded_upright(app, drain, tmp_path):
    from filmfund.extensions import db
    from filmfund.media import services
    from filmfund.media.models import AssetState

    clip = _upright_phone_clip(tmp_path / "IMG_0002.MOV", 90)
    [result] = services.ingest_paths([clip])
    db.session.commit()
    drain()
    asset = services.get_asset(result.asset.public_id)
    assert asset.state == AssetState.READY, asset.problems
    assert (asset.width, asset.height) == (180, 320)
    proxy = asset.rendition("proxy")
    assert proxy.width < proxy.height  # turned by ffmpeg: the same way round as the asset
