"""Files that say where they were filmed: a clip and a JPEG carrying location, device, serial and
comment metadata in every place a camera or phone writes it. Used to prove that nothing a donor
can download carries any of it."""
from __future__ import annotations

import struct
import subprocess
from pathlib import Path

# The values planted, each distinctive enough to be searched for in the bytes of an output.
LAT, LON = "+48.8584", "+002.2945"
SECRETS = ("48.8584", "2.2945", "GPS48", "002.2945", "Panasonic", "HC-X1500", "SN-998877", "family's house",
           "51.504N", "Paris")


def located_clip(out: Path, *, gop: int = 250) -> Path:
    """A phone-like MP4 with a long GOP (x264's default 250 frames) and the tags phones write:
    ISO 6709 location (QuickTime key and the 3GPP `location`), make, model, a serial, a comment;
    and a position in user-data SEI inside the H.264 stream, where camcorders put MDPM data."""
    subprocess.run([
        "ffmpeg", "-nostdin", "-v", "error", "-y",
        "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25", "-f", "lavfi", "-i", "sine=frequency=330:sample_rate=48000",
        "-t", "2", "-c:v", "libx264", "-preset", "ultrafast", "-x264-params", f"keyint={gop}", "-c:a", "aac",
        "-metadata", f"location={LAT}{LON}/",
        "-metadata", f"location-eng={LAT}{LON}/",
        "-metadata", f"com.apple.quicktime.location.ISO6709={LAT}{LON}+035.000/",
        "-metadata", "make=Panasonic", "-metadata", "model=HC-X1500",
        "-metadata", "com.apple.quicktime.make=Panasonic", "-metadata", "com.apple.quicktime.model=HC-X1500",
        "-metadata", "serial_number=SN-998877",
        "-metadata", "comment=shot at the family's house",
        "-metadata", "creation_time=2024-05-17T09:30:00Z",
        "-metadata:s:v:0", "handler_name=SN-998877",
        # What a camcorder writes in the picture stream itself: user-data SEI (MDPM-like) with a position.
        "-bsf:v", "h264_metadata=sei_user_data=17ee8c60-f84d-11d9-8cd6-0800200c9a66+GPS48.8584N002.2945E",
        "-movflags", "use_metadata_tags", str(out)], check=True, stdin=subprocess.DEVNULL)
    return out


def _segment(marker: int, payload: bytes) -> bytes:
    return b"\xff" + bytes([marker]) + struct.pack(">H", len(payload) + 2) + payload


def _ifd(entries: list[tuple[int, int, int, bytes]], next_offset: int = 0) -> bytes:
    out = struct.pack(">H", len(entries))
    for tag, typ, count, value in entries:
        out += struct.pack(">HHI", tag, typ, count) + value
    return out + struct.pack(">I", next_offset)


def _exif() -> bytes:
    """A big-endian TIFF: IFD0 with Make, Model and a pointer to a GPS IFD (48°51'30.24"N 2°17'40.2"E)."""
    make, model, serial = b"Panasonic\0", b"HC-X1500\0", b"SN-998877\0"
    data_at = 8 + 2 + 4 * 12 + 4
    make_at = data_at
    model_at = make_at + len(make)
    serial_at = model_at + len(model)
    gps_at = serial_at + len(serial)
    rationals_at = gps_at + 2 + 4 * 12 + 4
    ifd0 = _ifd([(0x010F, 2, len(make), struct.pack(">I", make_at)),
                 (0x0110, 2, len(model), struct.pack(">I", model_at)),
                 (0x8825, 4, 1, struct.pack(">I", gps_at)),
                 (0xA431, 2, len(serial), struct.pack(">I", serial_at))])  # BodySerialNumber
    gps = _ifd([(0x0001, 2, 2, b"N\0\0\0"), (0x0002, 5, 3, struct.pack(">I", rationals_at)),
                (0x0003, 2, 2, b"E\0\0\0"), (0x0004, 5, 3, struct.pack(">I", rationals_at + 24))])
    lat = struct.pack(">IIIIII", 48, 1, 51, 1, 3024, 100)
    lon = struct.pack(">IIIIII", 2, 1, 17, 1, 4020, 100)
    return b"Exif\0\0" + b"MM\0*" + struct.pack(">I", 8) + ifd0 + make + model + serial + gps + lat + lon


def located_jpeg(out: Path) -> Path:
    """A JPEG with an EXIF GPS block, XMP GPS tags, an IPTC city and serial, and a comment."""
    plain = out.with_name(out.stem + "-plain.jpg")
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=640x360",
                    "-frames:v", "1", str(plain)], check=True, stdin=subprocess.DEVNULL)
    xmp = (b"http://ns.adobe.com/xap/1.0/\0<x:xmpmeta xmlns:x=\"adobe:ns:meta/\"><rdf:RDF "
           b"xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\"><rdf:Description "
           b"xmlns:exif=\"http://ns.adobe.com/exif/1.0/\" exif:GPSLatitude=\"48,51.504N\" "
           b"exif:GPSLongitude=\"2,17.67E\"/></rdf:RDF></x:xmpmeta>")
    record = (b"\x1c\x02\x5a" + struct.pack(">H", 5) + b"Paris"            # IPTC City
              + b"\x1c\x02\x74" + struct.pack(">H", 9) + b"SN-998877")      # IPTC Copyright notice
    iptc = (b"Photoshop 3.0\0" + b"8BIM" + struct.pack(">H", 0x0404) + b"\0\0" + struct.pack(">I", len(record))
            + record + (b"\0" if len(record) % 2 else b""))
    data = plain.read_bytes()
    assert data[:2] == b"\xff\xd8"
    out.write_bytes(data[:2] + _segment(0xE1, _exif()) + _segment(0xE1, xmp) + _segment(0xED, iptc)
                    + _segment(0xFE, b"shot at the family's house") + data[2:])
    plain.unlink()
    return out


def jpeg_segments(data: bytes) -> list[tuple[int, bytes]]:
    """The marker segments of a JPEG before its image data: [(marker, payload)]."""
    assert data[:2] == b"\xff\xd8", "not a JPEG"
    out, i = [], 2
    while i + 4 <= len(data) and data[i] == 0xFF and data[i + 1] != 0xDA:
        length = struct.unpack(">H", data[i + 2:i + 4])[0]
        out.append((data[i + 1], data[i + 4:i + 2 + length]))
        i += 2 + length
    return out


def assert_no_location(data: bytes, probe: dict | None = None) -> None:
    """Nothing planted survives: not in the bytes, not in any tag ffprobe reads; a JPEG has no
    EXIF/XMP (APP1), IPTC (APP13) or comment (COM) segment; an MP4 keeps only the title."""
    for secret in SECRETS:
        assert secret.encode() not in data, f"{secret!r} is still in the donor's file"
    if data[:2] == b"\xff\xd8":
        markers = {m for m, _ in jpeg_segments(data)}
        assert not markers & {0xE1, 0xED, 0xFE}, f"metadata segments left: {sorted(hex(m) for m in markers)}"
    if probe is not None:
        tags = {k.lower() for k in (probe.get("format", {}).get("tags") or {})}
        assert tags <= {"title", "major_brand", "minor_version", "compatible_brands"}, tags
        for stream in probe.get("streams", []):
            stags = {k.lower(): v for k, v in (stream.get("tags") or {}).items()}
            assert set(stags) <= {"language", "handler_name", "vendor_id", "encoder"}, stags
            assert stags.get("handler_name", "VideoHandler") in ("VideoHandler", "SoundHandler"), stags
