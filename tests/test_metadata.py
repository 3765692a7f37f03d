"""Capture metadata: one EXIF reader for JPEG, PNG and TIFF (classic and BigTIFF),
the container walkers, and the metadata carried into the output."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest

from superres_gpu.discover import is_own_output, probe
from superres_gpu.metadata import capture_datetime, parse_tiff_exif, png_chunks, png_exif_block, png_text, xmp_packet
from superres_gpu.output import AtomicOutput, write_tiff
from exif_util import jpeg_with_exif, tiff_exif


def test_exif_capture_metadata_is_read_and_carried_into_the_tiff(tmp_path, rng):
    img = (rng.random((16, 24, 3)) * 255).astype(np.uint8)
    p = tmp_path / "e.jpg"
    p.write_bytes(jpeg_with_exif(img, tiff_exif(make="LGE", model="Nexus 5X", iso=60, exposure=(1, 99))))
    info = probe(p)
    assert info.exif["make"] == "LGE" and info.exif["model"] == "Nexus 5X"
    assert info.exif["iso"] == 60 and float(info.exif["exposure_time"]) == pytest.approx(1 / 99)
    out = AtomicOutput(tmp_path / "out.tif")
    write_tiff(out, np.zeros((4, 5, 3), np.uint16), exif=info.exif)
    out.commit()
    import tifffile

    with tifffile.TiffFile(tmp_path / "out.tif") as tf:
        tags = tf.pages.first.tags
        assert tags["Make"].value == "LGE" and tags["Model"].value == "Nexus 5X"
        assert tags["DateTime"].value == "2017:01:27 08:58:22"
        assert tags["Software"].value.startswith("superres_gpu")
        xmp = bytes(tags[700].value).decode()
        assert 'exif:ExposureTime="1/99"' in xmp and "<rdf:li>60</rdf:li>" in xmp
        assert tf.pages.first.dtype == np.uint16
    assert is_own_output(tmp_path / "out.tif")


def _png_with_chunks(rng, chunks) -> bytes:
    import cv2

    ok, buf = cv2.imencode(".png", (rng.random((6, 7, 3)) * 255).astype(np.uint8))
    data = buf.tobytes()
    extra = b""
    for ctype, body in chunks:
        extra += struct.pack(">I", len(body)) + ctype + body + struct.pack(">I", zlib.crc32(ctype + body) & 0xFFFFFFFF)
    return data[:33] + extra + data[33:]  # after the IHDR chunk


def test_png_exif_and_text_chunks(tmp_path, rng):
    data = _png_with_chunks(rng, [(b"tEXt", b"Software\x00superres_gpu 9"), (b"eXIf", tiff_exif(orientation=6))])
    types = [t for t, _ in png_chunks(data)]
    assert types[0] == b"IHDR" and b"eXIf" in types and b"IDAT" not in types
    assert png_text(data, b"Software") == b"superres_gpu 9" and png_text(data, b"Author") == b""
    assert parse_tiff_exif(png_exif_block(data))["orientation"] == 6
    p = tmp_path / "o.png"
    p.write_bytes(data)
    info = probe(p)
    assert info.orientation == 6 and (info.width, info.height) == (6, 7)  # stored 7x6, displayed rotated
    assert is_own_output(p)


@pytest.mark.parametrize("bigtiff", [False, True])
def test_tiff_frames_carry_their_exif(tmp_path, rng, bigtiff):
    """A TIFF's own IFD0 and EXIF sub-IFD are read by the same reader as a JPEG's APP1."""
    import tifffile

    p = tmp_path / "f.tif"
    img = (rng.random((12, 20, 3)) * 65535).astype(np.uint16)
    with tifffile.TiffWriter(p, bigtiff=bigtiff) as tw:
        tw.write(img, photometric="rgb", extratags=[(271, "s", 0, "Maker", True), (272, "s", 0, "Cam 2", True),
                                                    (274, "H", 1, 8, True)])
    info = probe(p)
    assert info.exif["make"] == "Maker" and info.exif["model"] == "Cam 2"
    assert info.orientation == 8 and (info.width, info.height) == (12, 20)


def test_malformed_exif_never_raises():
    good = tiff_exif()
    assert parse_tiff_exif(good)["model"] == "Model 1"
    for bad in (b"", b"II", b"II*\x00\xff\xff\xff\xff", good[:20], b"MM\x00*" + good[4:], b"XX" + good[2:]):
        assert isinstance(parse_tiff_exif(bad), dict)


def test_capture_datetime_and_xmp():
    exif = {"datetime_original": "2017:01:27 08:58:22", "iso": 60, "make": 'A&B "cams"'}
    assert capture_datetime(exif).isoformat() == "2017-01-27T08:58:22"
    assert capture_datetime({"datetime": "not a date"}) is None
    xmp = xmp_packet(exif, "tool 1").decode()
    assert 'exif:DateTimeOriginal="2017-01-27T08:58:22"' in xmp and "<rdf:li>60</rdf:li>" in xmp
    assert 'tiff:Make="A&amp;B &quot;cams&quot;"' in xmp and 'xmp:CreatorTool="tool 1"' in xmp


def test_non_ascii_and_malformed_tags_are_written_safely(tmp_path, rng):
    import tifffile

    img = (rng.random((16, 24, 3)) * 255).astype(np.uint8)
    p = tmp_path / "e.jpg"
    p.write_bytes(jpeg_with_exif(img, tiff_exif(make="Caméra", model='A<"&>', iso="AUTO")))
    info = probe(p)
    assert info.exif["make"] == "Caméra" and info.exif["iso"] == "AUTO"
    xmp = xmp_packet({**info.exif, "f_number": "f/2", "focal_length": None, "exposure_time": float("nan")}, "t")
    text = xmp.decode("utf-8")
    assert 'tiff:Make="Caméra"' in text and 'tiff:Model="A&lt;&quot;&amp;&gt;"' in text
    for absent in ("ISOSpeedRatings", "FNumber", "FocalLength", "ExposureTime"):
        assert absent not in text
    out = AtomicOutput(tmp_path / "out.tif")
    write_tiff(out, np.zeros((4, 5, 3), np.uint16), exif=info.exif, description="reference IMG_été_1.jpg")
    out.commit()
    with tifffile.TiffFile(tmp_path / "out.tif") as tf:
        tags = {t.name: t.value for t in tf.pages.first.tags.values()}
    assert "Make" not in tags and tags["Model"] == 'A<"&>'  # ASCII: kept as a baseline tag
    assert tags["ImageDescription"] == "reference IMG_\\xe9t\\xe9_1.jpg"
