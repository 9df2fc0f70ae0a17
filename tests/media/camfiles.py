"""Files as cameras, phones and careless copies make them, built with the ffmpeg CLI: a
camcorder's transport stream whose H.264 carries MDPM camera data (with emulation-prevention
bytes, as a real encoder writes them), streams beside the picture, plain 188-byte TS, cards
with MPL/CPI files, and hostile files."""
from __future__ import annotations

import struct
import subprocess
import zlib
from pathlib import Path

from filmfund.media import avchd

SMALL = ["-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"]


def ff(*args: str | Path) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *map(str, args)], check=True, stdin=subprocess.DEVNULL)


def mdpm_payload(*, zone: int = 0x02, date: str = "20240517", time: str = "000001", timecode: bytes = b"\x00\x00\x00\x01",
                 make: int = 0x0103) -> bytes:
    """MDPM records: 0x13 timecode (frames, s, min, h in BCD), 0x18/0x19 zone + date + time in BCD,
    0xE0 make. The defaults hold runs of zero bytes, so the NAL needs emulation prevention:
    a reader that does not remove it reads shifted records."""
    y, mo, d = date[:4], date[4:6], date[6:]
    h, mi, s = time[:2], time[2:4], time[4:]
    tags = [(0x13, timecode),
            (0x18, bytes([zone, int(y[:2], 16), int(y[2:], 16), int(mo, 16)])),
            (0x19, bytes([int(d, 16), int(h, 16), int(mi, 16), int(s, 16)])),
            (0xE0, struct.pack(">HH", make, 0x0313))]
    return b"MDPM" + bytes([len(tags)]) + b"".join(bytes([t]) + v for t, v in tags)


def sei_nal(payload: bytes) -> bytes:
    body = avchd.MDPM_UUID + payload
    sei = bytes([5, len(body)]) + body + b"\x80"
    return b"\x00\x00\x00\x01\x06" + avchd.escape_rbsp(sei)


def camcorder_mts(out: Path, work: Path, *, seconds: int = 1, **mdpm) -> Path:
    """An AVCHD-like .MTS (192-byte packets) whose every IDR access unit carries an MDPM SEI."""
    raw = work / (out.stem + ".h264")
    ff(*SMALL[:4], "-t", seconds, "-c:v", "libx264", "-preset", "ultrafast", "-x264-params", "keyint=25",
       "-bsf:v", "h264_mp4toannexb", "-f", "h264", raw)
    data = raw.read_bytes()
    nal = sei_nal(mdpm_payload(**mdpm))
    out_bytes, pos = bytearray(), 0
    # Insert the SEI before every IDR slice (NAL type 5), as camcorders do.
    i = data.find(b"\x00\x00\x01")
    while i >= 0:
        start = i - 1 if i > 0 and data[i - 1] == 0 else i
        if data[i + 3] & 0x1F == 5:
            out_bytes += data[pos:start] + nal
            pos = start
        i = data.find(b"\x00\x00\x01", i + 3)
    out_bytes += data[pos:]
    raw.write_bytes(bytes(out_bytes))
    ff("-framerate", 25, "-f", "h264", "-i", raw, *SMALL[4:], "-t", seconds, "-map", "0:v", "-map", "1:a",
       "-c:v", "copy", "-c:a", "ac3", "-f", "mpegts", "-mpegts_m2ts_mode", 1, out)
    return out


def plain_ts(out: Path) -> Path:
    """What a phone, screen recorder or editor exports as .mts: 188-byte packets."""
    ff(*SMALL, "-t", 1, "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-f", "mpegts", out)
    return out


def with_side_streams(out: Path, work: Path) -> Path:
    """Picture, sound, a subtitle stream (mov_text) and a data stream (a tmcd timecode track)."""
    srt = work / "side.srt"
    srt.write_text("1\n00:00:00,000 --> 00:00:01,000\n2024-05-17 09:30\n")
    ff(*SMALL, "-i", srt, "-t", 2, "-map", "0:v", "-map", "1:a", "-map", "2:s", "-c:v", "libx264", "-preset", "ultrafast",
       "-c:a", "aac", "-c:s", "mov_text", "-timecode", "01:00:00:00", out)
    return out


def pgs_subtitles(out: Path) -> Path:
    """A PGS (Blu-ray/AVCHD) subtitle stream, as a camcorder's date overlay: two display sets of a
    presentation composition, a window and an end segment (ffmpeg has no encoder for PGS)."""
    def seg(pts: int, kind: int, data: bytes) -> bytes:
        return b"PG" + struct.pack(">II", pts, 0) + bytes([kind]) + struct.pack(">H", len(data)) + data

    window = bytes([1]) + struct.pack(">BHHHH", 0, 0, 0, 1920, 1080)
    data = b""
    for n, pts in enumerate((9000, 45000)):
        composition = struct.pack(">HHBHBBBB", 1920, 1080, 0x10, n, 0x80 if n == 0 else 0, 0, 0, 0)
        data += seg(pts, 0x16, composition) + seg(pts, 0x17, window) + seg(pts, 0x80, b"")
    out.write_bytes(data)
    return out


def with_pgs(out: Path, camcorder: Path, work: Path) -> Path:
    """A camcorder .MTS with the hdmv_pgs_subtitle stream many camcorders write beside picture and sound."""
    sup = pgs_subtitles(work / "date.sup")
    ff("-i", camcorder, "-i", sup, "-map", 0, "-map", 1, "-c", "copy", "-f", "mpegts", "-mpegts_m2ts_mode", 1, out)
    return out


def hls_playlist(out: Path) -> Path:
    """A 'live' HLS playlist (no ENDLIST) under a camera file's name: ffmpeg would read the
    files and URLs it names, and wait for more."""
    out.write_bytes(b"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nhttp://127.0.0.1:9/s.ts\n#EXTINF:10,\n/etc/hostname\n")
    return out


def huge_png(out: Path, side: int = 16000) -> Path:
    """A tiny PNG that declares a side x side picture (16000x16000: 780 MB to decode)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    out.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0))
                    + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))
    return out


def card(root: Path, takes: dict[str, bytes], playlist: list[tuple[str, int]], *, expected: dict[str, int] | None = None,
         naming: str = "avchd") -> Path:
    """A card: AVCHD naming (.MTS, .CPI, .MPL, INDEX.BDM) or Blu-ray naming (.M2TS, .CLPI, .MPLS).
    `expected` overrides the length a clip info declares (default: the take's own length)."""
    bdmv = root / "PRIVATE" / "AVCHD" / "BDMV"
    for d in ("STREAM", "CLIPINF", "PLAYLIST"):
        (bdmv / d).mkdir(parents=True)
    stream_ext, clip_ext, pl_ext = (".MTS", ".CPI", ".MPL") if naming == "avchd" else (".M2TS", ".CLPI", ".MPLS")
    for name, data in takes.items():
        (bdmv / "STREAM" / f"{name}{stream_ext}").write_bytes(data)
        size = (expected or {}).get(name, len(data))
        (bdmv / "CLIPINF" / f"{name}{clip_ext}").write_bytes(avchd.build_clpi(size))
    (bdmv / "PLAYLIST" / f"00000{pl_ext}").write_bytes(avchd.build_mpls(playlist))
    (bdmv / ("INDEX.BDM" if naming == "avchd" else "index.bdmv")).write_bytes(b"INDX0100" + b"\x00" * 32)
    return bdmv
