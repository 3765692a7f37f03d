"""Frame reading, EXIF, folder listing, atomic TIFF writing with metadata."""

from __future__ import annotations

import os

import numpy as np
import pytest

from superres_gpu.errors import InputError, OutputError, SuperresError
from superres_gpu.io import (
    AtomicOutput,
    apply_orientation,
    is_own_output,
    list_inputs,
    probe,
    read_frame,
    read_mask,
    write_png,
    write_tiff,
)
from exif_util import jpeg_with_exif, tiff_exif


def _write(path, img):
    import cv2

    arr = img[..., ::-1] if img.ndim == 3 and img.shape[2] in (3, 4) else img
    if img.ndim == 3 and img.shape[2] == 4:
        arr = img[..., [2, 1, 0, 3]]
    assert cv2.imwrite(str(path), np.ascontiguousarray(arr))


FORMATS = [(e, k) for e in (".png", ".tif") for k in ("grey8", "rgb8", "rgba8", "grey16", "rgb16")]
FORMATS += [(".jpg", "grey8"), (".jpg", "rgb8")]  # JPEG: 8-bit, no alpha


@pytest.mark.parametrize("ext,kind", FORMATS)
def test_read_formats(tmp_path, rng, ext, kind):
    bits = 16 if "16" in kind else 8
    ch = {"grey": 1, "rgb": 3, "rgba": 4}[kind[:-1] if kind[-1] == "8" else kind[:-2]]
    maxv = 65535 if bits == 16 else 255
    shape = (21, 34) if ch == 1 else (21, 34, ch)
    img = (rng.random(shape) * maxv).astype(np.uint16 if bits == 16 else np.uint8)
    p = tmp_path / f"f{ext}"
    if ext == ".tif":
        import tifffile

        tifffile.imwrite(p, img, photometric="minisblack" if ch == 1 else "rgb", extrasamples=[2] if ch == 4 else None)
    else:
        _write(p, img)
    info = probe(p)
    assert (info.width, info.height, info.bits) == (34, 21, bits)
    assert info.channels == (1 if ch == 1 else 3)
    out = read_frame(info)
    assert out.shape == info.shape and out.dtype == img.dtype
    if ext != ".jpg":
        expect = img[..., :3] if ch == 4 else img
        np.testing.assert_array_equal(out, expect)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied(tmp_path, orientation):
    img = np.zeros((40, 60, 3), np.uint8)
    img[:10, :20] = (250, 10, 10)  # a red block in the top-left corner of the stored pixels
    p = tmp_path / "o.jpg"
    p.write_bytes(jpeg_with_exif(img, tiff_exif(orientation=orientation)))
    info = probe(p)
    assert info.orientation == orientation
    out = read_frame(info)
    expect = apply_orientation(img, orientation)
    assert out.shape == expect.shape == info.shape
    red = out[..., 0] > 128
    assert np.array_equal(red, expect[..., 0] > 128)
    if orientation in (5, 6, 7, 8):
        assert (info.width, info.height) == (40, 60)


def test_apply_orientation_is_exif_spec():
    a = np.arange(6).reshape(2, 3)  # [[0,1,2],[3,4,5]]
    assert apply_orientation(a, 6).tolist() == [[3, 0], [4, 1], [5, 2]]  # rotate 90 CW to display
    assert apply_orientation(a, 8).tolist() == [[2, 5], [1, 4], [0, 3]]  # rotate 90 CCW
    assert apply_orientation(a, 3).tolist() == [[5, 4, 3], [2, 1, 0]]


def test_exif_capture_metadata_is_read_and_carried_into_the_tiff(tmp_path, rng):
    img = (rng.random((16, 24, 3)) * 255).astype(np.uint8)
    p = tmp_path / "e.jpg"
    p.write_bytes(jpeg_with_exif(img, tiff_exif(make="LGE", model="Nexus 5X", iso=60, exposure=(1, 99))))
    info = probe(p)
    assert info.exif["make"] == "LGE" and info.exif["model"] == "Nexus 5X"
    assert info.exif["iso"] == 60 and float(info.exif["exposure_time"]) == pytest.approx(1 / 99)
    out = AtomicOutput(tmp_path / "out.tif")
    write_tiff(out, np.zeros((4, 5, 3), np.uint16), exif=info.exif)
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


def test_list_inputs_skips_marked_mask_hidden_and_own_outputs(tmp_path, rng):
    img = (rng.random((8, 8, 3)) * 255).astype(np.uint8)
    for name in ("b.jpg", "a.png", "c.JPG", "mask.png", ".hidden.jpg", "x.jpg.not_sharp_enough", "notes.txt"):
        p = tmp_path / name
        if name.endswith(".txt"):
            p.write_text("hi")
        else:
            _write(p, img) if not name.endswith("not_sharp_enough") else p.write_bytes(b"x")
    write_png(tmp_path / "weights.png", img)
    out = AtomicOutput(tmp_path / "result.tif")
    write_tiff(out, np.zeros((8, 8, 3), np.uint16))
    names = [p.name for p in list_inputs([tmp_path])]
    assert names == ["a.png", "b.jpg", "c.JPG"]


def test_list_inputs_errors(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        list_inputs([tmp_path / "missing"])
    (tmp_path / "x.jpg.not_sharp_enough").write_bytes(b"x")
    with pytest.raises(InputError, match="not_sharp_enough"):
        list_inputs([tmp_path / "x.jpg.not_sharp_enough"])


@pytest.mark.parametrize(
    "content,match",
    [
        (b"", "empty"),
        (b"hello, I am not an image" * 10, "not a JPEG, PNG or TIFF"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 40, "corrupt JPEG"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 10, "corrupt PNG"),
    ],
)
def test_probe_rejects_bad_files(tmp_path, content, match):
    p = tmp_path / "bad.jpg"
    p.write_bytes(content)
    with pytest.raises(InputError, match=match) as e:
        probe(p)
    assert isinstance(e.value, SuperresError) and isinstance(e.value, ValueError)
    assert str(p) in str(e.value)


def test_truncated_jpeg_is_an_error(tmp_path, rng):
    img = (rng.random((64, 64, 3)) * 255).astype(np.uint8)
    p = tmp_path / "t.jpg"
    _write(p, img)
    data = p.read_bytes()
    p.write_bytes(data[: len(data) * 2 // 3])
    info = probe(p)  # the header is intact
    with pytest.raises(InputError, match="truncated"):
        read_frame(info)


def test_mask_reading(tmp_path):
    m = np.zeros((10, 12, 4), np.uint8)
    m[2:5, 3:7] = (255, 0, 0, 255)  # red, opaque
    p = tmp_path / "mask.png"
    _write(p, m)
    mask = read_mask(p, (10, 12))
    assert mask.sum() == 12 and mask[3, 4]
    with pytest.raises(InputError, match="mask is 12x10 but the frames are 20x10"):
        read_mask(p, (10, 20))


def test_atomic_output_rules(tmp_path):
    target = tmp_path / "o.tif"
    target.write_bytes(b"old")
    with pytest.raises(OutputError, match="already exists"):
        AtomicOutput(target)
    out = AtomicOutput(target, overwrite=True)
    assert out.tmp.exists() and out.tmp.parent == tmp_path
    out.discard()
    assert not out.tmp.exists() and target.read_bytes() == b"old"
    with pytest.raises(OutputError, match="would overwrite an input"):
        AtomicOutput(target, overwrite=True, protect=[target])
    with pytest.raises(OutputError, match="folder does not exist"):
        AtomicOutput(tmp_path / "nope" / "o.tif")


def test_atomic_output_unwritable_folder_even_for_root():
    with pytest.raises(OutputError, match="cannot write here"):
        AtomicOutput("/proc/superres_out.tif")


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere; permissions cannot be tested")
def test_atomic_output_read_only_folder(tmp_path):
    d = tmp_path / "ro"
    d.mkdir()
    d.chmod(0o500)
    try:
        with pytest.raises(OutputError, match="cannot write"):
            AtomicOutput(d / "o.tif")
    finally:
        d.chmod(0o700)
