"""Test files built independently of the reader: EXIF blocks, JPEGs carrying them, images."""

from __future__ import annotations

import struct

import numpy as np


def tiff_exif(make="TestCam", model="Model 1", orientation=1, exposure=(1, 99), iso=60,
              datetime_original="2017:01:27 08:58:22", fnumber=(2, 1)) -> bytes:
    """Little-endian TIFF-structured EXIF with IFD0 and an EXIF sub-IFD."""
    entries0 = []  # (tag, type, count, value_bytes)
    sub = []

    def ascii_(s):
        b = s.encode() + b"\x00"
        return (2, len(b), b)

    entries0.append((0x010F,) + ascii_(make))
    entries0.append((0x0110,) + ascii_(model))
    entries0.append((0x0112, 3, 1, struct.pack("<H", orientation)))
    sub.append((0x829A, 5, 1, struct.pack("<II", *exposure)))
    sub.append((0x829D, 5, 1, struct.pack("<II", *fnumber)))
    if isinstance(iso, str):  # a malformed ISO stored as text
        sub.append((0x8827,) + ascii_(iso))
    else:
        sub.append((0x8827, 3, 1, struct.pack("<H", iso)))
    sub.append((0x9003,) + ascii_(datetime_original))

    def layout(entries, start, extra_entries=0):
        n = len(entries) + extra_entries
        ifd_size = 2 + 12 * n + 4
        data_off = start + ifd_size
        table = b""
        blob = b""
        for tag, typ, cnt, val in entries:
            if len(val) <= 4:
                table += struct.pack("<HHI", tag, typ, cnt) + val.ljust(4, b"\x00")
            else:
                table += struct.pack("<HHII", tag, typ, cnt, data_off + len(blob))
                blob += val
                if len(blob) % 2:
                    blob += b"\x00"
        return n, table, blob, ifd_size

    # IFD0 at 8, with one extra entry (the EXIF pointer) appended
    n0, table0, blob0, size0 = layout(entries0, 8, extra_entries=1)
    sub_start = 8 + size0 + len(blob0)
    table0 += struct.pack("<HHII", 0x8769, 4, 1, sub_start)
    ifd0 = struct.pack("<H", n0) + table0 + struct.pack("<I", 0) + blob0
    n1, table1, blob1, _ = layout(sub, sub_start)
    ifd1 = struct.pack("<H", n1) + table1 + struct.pack("<I", 0) + blob1
    return b"II*\x00" + struct.pack("<I", 8) + ifd0 + ifd1


def jpeg_with_exif(rgb: np.ndarray, exif: bytes, quality: int = 95) -> bytes:
    import cv2

    bgr = rgb[..., ::-1] if rgb.ndim == 3 else rgb
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(bgr), [cv2.IMWRITE_JPEG_QUALITY, quality])
    data = buf.tobytes()
    payload = b"Exif\x00\x00" + exif
    app1 = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    return data[:2] + app1 + data[2:]


def write_image(path, img: np.ndarray) -> None:
    """Write an RGB/RGBA/grey array with OpenCV (which stores BGR/BGRA)."""
    import cv2

    arr = img[..., ::-1] if img.ndim == 3 and img.shape[2] in (3, 4) else img
    if img.ndim == 3 and img.shape[2] == 4:
        arr = img[..., [2, 1, 0, 3]]
    assert cv2.imwrite(str(path), np.ascontiguousarray(arr))
