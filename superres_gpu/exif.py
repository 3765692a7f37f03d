"""Minimal, defensive EXIF reader.

Reads the few tags the tool needs (orientation and the capture metadata that
is carried into the output TIFF) from a TIFF-structured EXIF block, as found in
a JPEG APP1 segment or a PNG ``eXIf`` chunk.  Malformed EXIF never raises: it
yields an empty or partial result, because a photo with broken metadata is
still a photo.
"""

from __future__ import annotations

import struct
from fractions import Fraction

# Tags of IFD0 and of the EXIF sub-IFD that we read.
_IFD0_TAGS = {
    0x010F: "make",
    0x0110: "model",
    0x0112: "orientation",
    0x0132: "datetime",
}
_EXIF_IFD_POINTER = 0x8769
_EXIF_TAGS = {
    0x829A: "exposure_time",
    0x829D: "f_number",
    0x8827: "iso",
    0x9003: "datetime_original",
    0x920A: "focal_length",
}

# TIFF field types: size in bytes of one value.
_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 7: 1, 9: 4, 10: 8}


def _read_value(data: bytes, endian: str, ftype: int, count: int, voff: int):
    size = _TYPE_SIZES.get(ftype)
    if size is None or count <= 0 or count > 4096:
        return None
    raw_len = size * count
    if raw_len <= 4:
        raw = data[voff : voff + raw_len]
    else:
        (ptr,) = struct.unpack(endian + "I", data[voff : voff + 4])
        raw = data[ptr : ptr + raw_len]
    if len(raw) < raw_len:
        return None
    if ftype == 2:  # ASCII
        return raw.split(b"\x00", 1)[0].decode("ascii", "replace").strip() or None
    if ftype in (1, 7):
        return raw[0] if count == 1 else bytes(raw)
    if ftype == 3:
        vals = struct.unpack(endian + "H" * count, raw)
    elif ftype == 4:
        vals = struct.unpack(endian + "I" * count, raw)
    elif ftype == 9:
        vals = struct.unpack(endian + "i" * count, raw)
    elif ftype in (5, 10):
        code = "I" if ftype == 5 else "i"
        nums = struct.unpack(endian + code * (2 * count), raw)
        vals = tuple(
            Fraction(nums[2 * i], nums[2 * i + 1]) if nums[2 * i + 1] else None
            for i in range(count)
        )
    else:
        return None
    return vals[0] if count == 1 else vals


def _read_ifd(data: bytes, endian: str, offset: int, wanted: dict) -> tuple[dict, dict]:
    """Return ({name: value} for wanted tags, {tag: raw value} for pointers)."""
    out: dict = {}
    pointers: dict = {}
    if offset <= 0 or offset + 2 > len(data):
        return out, pointers
    (n,) = struct.unpack(endian + "H", data[offset : offset + 2])
    for i in range(min(n, 512)):
        e = offset + 2 + 12 * i
        if e + 12 > len(data):
            break
        tag, ftype, count = struct.unpack(endian + "HHI", data[e : e + 8])
        if tag in wanted or tag == _EXIF_IFD_POINTER:
            val = _read_value(data, endian, ftype, count, e + 8)
            if tag == _EXIF_IFD_POINTER:
                pointers[tag] = val
            elif val is not None:
                out[wanted[tag]] = val
    return out, pointers


def parse_tiff_exif(data: bytes) -> dict:
    """Parse a TIFF-structured EXIF block (starting at the byte-order mark).

    Returns a dict with any of: make, model, orientation (int 1..8), datetime,
    exposure_time (Fraction), f_number, iso (int), datetime_original,
    focal_length.
    """
    try:
        if data[:2] == b"II":
            endian = "<"
        elif data[:2] == b"MM":
            endian = ">"
        else:
            return {}
        magic, ifd0 = struct.unpack(endian + "HI", data[2:8])
        if magic != 42:
            return {}
        out, ptrs = _read_ifd(data, endian, ifd0, _IFD0_TAGS)
        sub = ptrs.get(_EXIF_IFD_POINTER)
        if isinstance(sub, int):
            more, _ = _read_ifd(data, endian, sub, _EXIF_TAGS)
            out.update(more)
        if isinstance(out.get("iso"), tuple):
            out["iso"] = out["iso"][0]
        if out.get("orientation") not in range(1, 9):
            out.pop("orientation", None)
        return out
    except (struct.error, IndexError, ValueError, ZeroDivisionError):
        return {}


def jpeg_segments(data: bytes):
    """Yield (marker, offset, length) of a JPEG's header segments, up to the first
    scan; ``offset`` is the marker's position, ``length`` the segment length field."""
    pos = 2
    n = len(data)
    while pos + 4 <= n:
        if data[pos] != 0xFF:
            return
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # markers without a length
            pos += 2
            continue
        if marker in (0xDA, 0xD9):  # start of scan / end of image: no more headers
            return
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        yield marker, pos, length
        pos += 2 + length


def jpeg_exif_block(data: bytes) -> bytes | None:
    """Return the TIFF-structured payload of a JPEG's APP1 Exif segment."""
    for marker, pos, length in jpeg_segments(data):
        if marker == 0xE1 and data[pos + 4 : pos + 10] == b"Exif\x00\x00":
            return data[pos + 10 : pos + 2 + length]
    return None


def png_exif_block(data: bytes) -> bytes | None:
    """Return the payload of a PNG ``eXIf`` chunk, if any."""
    pos = 8
    n = len(data)
    while pos + 8 <= n:
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        ctype = data[pos + 4 : pos + 8]
        if ctype == b"eXIf":
            return data[pos + 8 : pos + 8 + length]
        if ctype in (b"IDAT", b"IEND"):
            return None
        pos += 12 + length
    return None


def describe(meta: dict) -> dict:
    """JSON-friendly copy of parsed EXIF: fractions become floats."""
    out = {}
    for k, v in meta.items():
        if isinstance(v, Fraction):
            out[k] = float(v)
        elif isinstance(v, (bytes, tuple)) or v is None:
            continue
        else:
            out[k] = v
    return out
