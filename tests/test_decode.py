"""Decoding: every supported format, EXIF orientation, truncation, the mask."""

from __future__ import annotations

import numpy as np
import pytest

from superres_gpu.decode import FrameFeed, apply_orientation, read_frame, read_half_luma, read_mask
from superres_gpu.discover import probe
from superres_gpu.errors import InputError
from tolerances import TOL
from exif_util import jpeg_with_exif, tiff_exif
from exif_util import write_image as _write


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


def test_half_luma_read_matches_the_full_decode(tmp_path, small_burst):
    """The fast half-size JPEG read (scaled IDCT) is the 2x2 mean of the full
    decode's grey, up to the two decoders' own reconstruction."""
    from superres_gpu.backends import get_backend

    B = get_backend("numpy")
    paths = small_burst.write(tmp_path / "b")
    info = probe(paths[0])
    fast = read_half_luma(info)
    full = B.luma(read_frame(info))
    box = 0.25 * (full[0::2, 0::2] + full[1::2, 0::2] + full[0::2, 1::2] + full[1::2, 1::2])
    assert fast.shape == box.shape == (60, 80) and fast.dtype == np.float32
    assert np.abs(fast - box).mean() < TOL["half_decode_vs_box"][0]


def test_frame_feed_yields_every_frame_in_order_with_bounded_lookahead(tmp_path, small_burst):
    paths = small_burst.write(tmp_path / "b")
    infos = [probe(p) for p in paths]
    with FrameFeed(infos, threads=3, prefetch=2) as feed:
        seen = []
        for img, seconds in feed:
            assert len(feed.futures) <= 2 and seconds >= 0
            seen.append(img)
    assert len(seen) == len(paths)
    for img, info in zip(seen, infos):
        np.testing.assert_array_equal(img, read_frame(info))


def test_frame_feed_skips_positions_taken_out_while_it_runs(tmp_path, small_burst):
    paths = small_burst.write(tmp_path / "b")
    infos = [probe(p) for p in paths]
    assert len(infos) >= 5
    made, released = [], []

    def alloc(shape, dtype):
        made.append(np.empty(shape, dtype))
        return made[-1]

    with FrameFeed(infos, threads=2, prefetch=3, alloc=alloc, release=released.append) as feed:
        seen = []
        for pos, (img, _) in feed.numbered():
            if pos == 0:
                feed.skip([1, 3])  # 1 and 3 are queued or decoded already: dropped
            assert len(feed.futures) <= 3
            seen.append(pos)
            np.testing.assert_array_equal(img, read_frame(infos[pos]))
    assert seen == [0, 2] + list(range(4, len(infos)))
    # every buffer a skipped frame was decoded into came back (a queued one was never decoded)
    assert len(made) == len(seen) + len(released) and len(released) <= 2


@pytest.mark.parametrize("ext,kind,orientation", [(".jpg", "rgb8", 1), (".jpg", "rgb8", 6), (".jpg", "grey8", 1),
                                                  (".png", "rgb8", 1), (".png", "rgba8", 1), (".png", "grey16", 1)])
def test_decoding_into_a_given_buffer_gives_the_same_frame(tmp_path, rng, ext, kind, orientation):
    """Frames decoded straight into the backend's buffers (pinned memory on the
    GPU) equal the ordinary decode, whatever path the format takes."""
    ch = {"rgb8": 3, "rgba8": 4, "grey8": 1, "grey16": 1}[kind]
    dtype = np.uint16 if kind.endswith("16") else np.uint8
    shape = (21, 34) if ch == 1 else (21, 34, ch)
    img = (rng.random(shape) * np.iinfo(dtype).max).astype(dtype)
    p = tmp_path / f"f{ext}"
    if ext == ".jpg":
        rgb = img if ch == 3 else np.repeat(img[..., None], 3, axis=2)
        p.write_bytes(jpeg_with_exif(rgb, tiff_exif(orientation=orientation)))
        if ch == 1:
            _write(p, img)
    else:
        _write(p, img)
    info = probe(p)
    given = []

    def alloc(shape, dtype):
        given.append(np.empty(shape, dtype))
        return given[-1]

    out = read_frame(info, alloc)
    np.testing.assert_array_equal(out, read_frame(info))
    assert len(given) == 1 and out is given[0]
def test_damaged_png_is_refused_before_decoding(tmp_path, rng):
    import cv2

    from superres_gpu.decode import check_png

    img = (rng.random((12, 10, 3)) * 255).astype(np.uint8)
    good = cv2.imencode(".png", img)[1].tobytes()
    check_png(good, "g.png")
    idat = good.find(b"IDAT")
    crc = bytearray(good)
    crc[idat + 6] ^= 0xFF
    with pytest.raises(InputError, match=r"b\.png: corrupt PNG: checksum error in its IDAT chunk"):
        check_png(bytes(crc), "b.png")
    with pytest.raises(InputError, match="truncated PNG"):
        check_png(good[: len(good) - 12], "b.png")
    # a row filter byte of 7, with the chunk's CRC made right: only the data check sees it
    import struct
    import zlib

    (length,) = struct.unpack(">I", good[idat - 4 : idat])
    raw = bytearray(zlib.decompress(good[idat + 4 : idat + 4 + length]))
    raw[0] = 7
    body = zlib.compress(bytes(raw))
    chunk = struct.pack(">I", len(body)) + b"IDAT" + body + struct.pack(">I", zlib.crc32(b"IDAT" + body))
    bad = good[: idat - 4] + chunk + good[idat + 8 + length :]
    with pytest.raises(InputError, match="invalid row filter"):
        check_png(bad, "b.png")


def test_jpeg_decoder_warnings_refuse_the_frame(tmp_path, rng):
    import cv2

    from superres_gpu.decode import decode_jpeg

    img = (rng.random((64, 80, 3)) * 255).astype(np.uint8)
    data = cv2.imencode(".jpg", img)[1].tobytes()
    ok = decode_jpeg(data, "g.jpg", grey=False)
    np.testing.assert_array_equal(ok, cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)[..., ::-1])
    with pytest.raises(InputError, match=r"t\.jpg: truncated JPEG: the image data ends early"):
        decode_jpeg(data[: len(data) // 2] + b"\xff\xd9", "t.jpg", grey=False)
    d = bytearray(data)
    d[data.find(b"\xff\xda") + 200] ^= 0x55
    with pytest.raises(InputError, match=r"c\.jpg: corrupt JPEG data \(Corrupt JPEG data"):
        decode_jpeg(bytes(d), "c.jpg", grey=False)
