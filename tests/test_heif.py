"""HEIC/HEIF frames through pillow-heif: header, orientation, EXIF, a burst end to end."""

from __future__ import annotations

import sys

import numpy as np
import pytest

pillow_heif = pytest.importorskip("pillow_heif", reason="the heif extra (pillow-heif) is not installed")

from superres_gpu.decode import read_frame  # noqa: E402
from superres_gpu.discover import list_inputs, probe  # noqa: E402
from superres_gpu.errors import InputError  # noqa: E402


def write_heic(path, rgb: np.ndarray, orientation: int | None = None, make: str | None = None, quality: int = 95):
    """Save an RGB uint8/uint16 array as HEIC with pillow-heif (EXIF optional)."""
    from PIL import Image

    h, w = rgb.shape[:2]
    mode = "RGB;16" if rgb.dtype == np.uint16 else "RGB"
    data = np.ascontiguousarray(rgb, dtype=rgb.dtype.newbyteorder("<")).tobytes()
    heif = pillow_heif.from_bytes(mode=mode, size=(w, h), data=data)
    kw = {}
    if orientation or make:
        exif = Image.Exif()
        if orientation:
            exif[0x0112] = orientation
        if make:
            exif[0x010F] = make
        kw["exif"] = exif.tobytes()
    if quality == -1:  # lossless: keep full chroma too
        kw["chroma"] = 444
    heif.save(path, quality=quality, **kw)
    return path


def test_header_orientation_and_exif(tmp_path, rng):
    rgb = (rng.random((40, 64, 3)) * 255).astype(np.uint8)
    p = write_heic(tmp_path / "a.heic", rgb, orientation=6, make="Acme", quality=-1)
    info = probe(p)
    assert (info.format, info.width, info.height, info.channels, info.bits) == ("heif", 40, 64, 3, 8)
    assert info.exif["make"] == "Acme" and info.orientation == 1 and info.exif["orientation"] == 1
    img = read_frame(info)
    # orientation 6 (rotate 90 degrees clockwise to view) is applied once, by the container
    upright = np.ascontiguousarray(np.rot90(rgb, -1))
    assert img.shape == upright.shape
    assert np.abs(img.astype(int) - upright).mean() < 2.0  # lossless HEVC still goes through YCbCr
    assert list_inputs([tmp_path]) == [p]


@pytest.mark.parametrize("chroma,want", [(420, (2, 2)), (422, (2, 1)), (444, (1, 1))])
def test_the_chroma_subsampling_is_read_from_the_file(tmp_path, rng, chroma, want):
    """The stored chroma subsampling as pillow-heif reports it (the chromatic
    aberration's correction depends on it); grey pictures have none."""
    rgb = (rng.random((32, 48, 3)) * 255).astype(np.uint8)
    path = tmp_path / "c.heic"
    pillow_heif.from_bytes(mode="RGB", size=(48, 32), data=rgb.tobytes()).save(path, quality=90, chroma=chroma)
    assert probe(path).chroma == want


def test_ten_bit_heic_reads_as_16_bit(tmp_path, rng):
    rgb = (rng.random((32, 48, 3)) * 65535).astype(np.uint16)
    info = probe(write_heic(tmp_path / "d.heic", rgb, quality=-1))
    assert info.bits == 16
    img = read_frame(info)
    assert img.dtype == np.uint16 and img.shape == (32, 48, 3)


def test_missing_pillow_heif_names_the_extra(tmp_path, rng, monkeypatch):
    p = write_heic(tmp_path / "a.heic", (rng.random((16, 16, 3)) * 255).astype(np.uint8))
    monkeypatch.setitem(sys.modules, "pillow_heif", None)
    with pytest.raises(InputError, match=r"a\.heic: HEIC/HEIF input needs pillow-heif: pip install pillow-heif \(the heif extra\)"):
        probe(p)


def test_corrupt_heic_is_one_clear_error(tmp_path, rng):
    p = write_heic(tmp_path / "a.heic", (rng.random((64, 64, 3)) * 255).astype(np.uint8))
    data = p.read_bytes()
    bad = tmp_path / "bad.heic"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="bad.heic: corrupt"):
        read_frame(probe(bad))


def test_a_heic_burst_merges(tmp_path, small_burst):
    d = tmp_path / "heic"
    d.mkdir()
    for k, f in enumerate(small_burst.frames):
        write_heic(d / f"f{k:02d}.heic", f, make="Acme")
    from superres_gpu import superresolve

    image, report = superresolve(d, output=tmp_path / "o.tif", backend="numpy")
    assert report["summary"]["used"] == len(small_burst.frames)
    assert image.shape == (240, 320, 3)
