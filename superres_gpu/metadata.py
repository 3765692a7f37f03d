"""Capture metadata: one defensive EXIF reader for every input format, and the
XMP packet carried into the output.

EXIF is a TIFF structure (a byte-order mark, IFD0, an EXIF sub-IFD) wherever
it is found: in a JPEG's APP1 segment, in a PNG ``eXIf`` chunk, or as the TIFF
file itself (classic or BigTIFF).  :func:`parse_tiff_exif` reads the few tags
the tool needs (orientation and the capture metadata carried into the output)
from any of them.  Malformed EXIF never raises: it yields an empty or partial
result, because a photo with broken metadata is still a photo.

The container walkers (:func:`jpeg_segments`, :func:`png_chunks`) are shared
with the header probe.
"""

from __future__ import annotations

import math
import struct
from datetime import datetime
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

# TIFF field types: size in bytes of one value (16: LONG8/SLONG8/IFD8 of BigTIFF).
_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 7: 1, 9: 4, 10: 8, 13: 4, 16: 8, 17: 8, 18: 8}
_EXIF_DATE = "%Y:%m:%d %H:%M:%S"


class _Layout:
    """Classic TIFF (magic 42) or BigTIFF (magic 43) field sizes."""

    def __init__(self, endian: str, big: bool):
        self.endian = endian
        self.entry = 20 if big else 12  # bytes per IFD entry
        self.count = "Q" if big else "I"  # the value count field
        self.offset = "Q" if big else "I"  # offsets to IFDs and values
        self.inline = 8 if big else 4  # bytes of a value stored in the entry itself
        self.nentries = "Q" if big else "H"


def _read_value(data, lay: _Layout, ftype: int, count: int, voff: int):
    size = _TYPE_SIZES.get(ftype)
    if size is None or count <= 0 or count > 4096:
        return None
    e = lay.endian
    raw_len = size * count
    if raw_len <= lay.inline:
        raw = data[voff : voff + raw_len]
    else:
        osz = struct.calcsize(lay.offset)
        (ptr,) = struct.unpack(e + lay.offset, data[voff : voff + osz])
        raw = data[ptr : ptr + raw_len]
    if len(raw) < raw_len:
        return None
    if ftype == 2:  # ASCII, though many cameras write UTF-8; bytes that are neither become U+FFFD
        return bytes(raw).split(b"\x00", 1)[0].decode("utf-8", "replace").strip() or None
    if ftype in (1, 7):
        return raw[0] if count == 1 else bytes(raw)
    codes = {3: "H", 4: "I", 9: "i", 13: "I", 16: "Q", 17: "q", 18: "Q"}
    if ftype in codes:
        vals = struct.unpack(e + codes[ftype] * count, raw)
    elif ftype in (5, 10):
        code = "I" if ftype == 5 else "i"
        nums = struct.unpack(e + code * (2 * count), raw)
        vals = tuple(
            Fraction(nums[2 * i], nums[2 * i + 1]) if nums[2 * i + 1] else None for i in range(count)
        )
    else:  # pragma: no cover - every type in _TYPE_SIZES is handled above
        return None
    return vals[0] if count == 1 else vals


def _read_ifd(data, lay: _Layout, offset: int, wanted: dict) -> tuple[dict, dict]:
    """Return ({name: value} for wanted tags, {tag: raw value} for pointers)."""
    out: dict = {}
    pointers: dict = {}
    nsz = struct.calcsize(lay.nentries)
    if offset <= 0 or offset + nsz > len(data):
        return out, pointers
    (n,) = struct.unpack(lay.endian + lay.nentries, data[offset : offset + nsz])
    head = struct.calcsize(lay.endian + "HH" + lay.count)
    for i in range(min(n, 512)):
        e = offset + nsz + lay.entry * i
        if e + lay.entry > len(data):
            break
        tag, ftype, count = struct.unpack(lay.endian + "HH" + lay.count, data[e : e + head])
        if tag in wanted or tag == _EXIF_IFD_POINTER:
            val = _read_value(data, lay, ftype, count, e + head)
            if tag == _EXIF_IFD_POINTER:
                pointers[tag] = val
            elif val is not None:
                out[wanted[tag]] = val
    return out, pointers


def parse_tiff_exif(data) -> dict:
    """Parse a TIFF-structured EXIF block (starting at the byte-order mark).

    ``data`` is bytes or any buffer that slices to bytes (an ``mmap`` of a
    whole TIFF file).  Returns a dict with any of: make, model, orientation
    (int 1..8), datetime, exposure_time (Fraction), f_number, iso (int),
    datetime_original, focal_length.
    """
    try:
        if data[:2] == b"II":
            endian = "<"
        elif data[:2] == b"MM":
            endian = ">"
        else:
            return {}
        (magic,) = struct.unpack(endian + "H", data[2:4])
        if magic == 42:
            lay = _Layout(endian, big=False)
            (ifd0,) = struct.unpack(endian + "I", data[4:8])
        elif magic == 43:
            lay = _Layout(endian, big=True)
            (ifd0,) = struct.unpack(endian + "Q", data[8:16])
        else:
            return {}
        out, ptrs = _read_ifd(data, lay, ifd0, _IFD0_TAGS)
        sub = ptrs.get(_EXIF_IFD_POINTER)
        if isinstance(sub, int):
            more, _ = _read_ifd(data, lay, sub, _EXIF_TAGS)
            out.update(more)
        if isinstance(out.get("iso"), tuple):
            out["iso"] = out["iso"][0]
        if out.get("orientation") not in range(1, 9):
            out.pop("orientation", None)
        return out
    except (struct.error, IndexError, ValueError, ZeroDivisionError, TypeError):
        return {}


# --------------------------------------------------------------------------
# Containers
# --------------------------------------------------------------------------


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


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_chunks(data: bytes):
    """Yield (type, body) of a PNG's chunks before the image data (IDAT/IEND stop it)."""
    pos = 8
    while pos + 8 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        ctype = data[pos + 4 : pos + 8]
        if ctype in (b"IDAT", b"IEND"):
            return
        yield ctype, data[pos + 8 : pos + 8 + length]
        pos += 12 + length


def png_exif_block(data: bytes) -> bytes | None:
    """Return the payload of a PNG ``eXIf`` chunk, if any."""
    for ctype, body in png_chunks(data):
        if ctype == b"eXIf":
            return body
    return None


def png_text(data: bytes, key: bytes) -> bytes:
    """The value of a PNG ``tEXt`` chunk with keyword ``key`` (b"" if absent)."""
    for ctype, body in png_chunks(data):
        if ctype == b"tEXt":
            k, _, v = body.partition(b"\x00")
            if k == key:
                return v
    return b""


# --------------------------------------------------------------------------
# Output metadata
# --------------------------------------------------------------------------


def capture_datetime(exif: dict) -> datetime | None:
    """When the frame was taken (DateTimeOriginal, else DateTime), or None."""
    dt = exif.get("datetime_original") or exif.get("datetime")
    if not isinstance(dt, str):
        return None
    try:
        return datetime.strptime(dt, _EXIF_DATE)
    except ValueError:
        return None


def _xmp_number(v) -> str | None:
    """A rational or number as XMP text, or None when the tag holds something else."""
    if isinstance(v, bool):
        return None
    if isinstance(v, Fraction):
        return f"{v.numerator}/{v.denominator}" if v.denominator else None
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float) and math.isfinite(v):
        return repr(v)
    return None


def _xml_text(v) -> str | None:
    """A text tag made safe for an XML attribute, or None (not text, or empty)."""
    if not isinstance(v, str):
        return None
    # XML 1.0 forbids most control characters; U+FFFD stands for bytes that were not text
    v = "".join(c for c in v if c >= " " or c in "\t\n\r").strip()
    if not v:
        return None
    return v.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def ascii_text(v) -> str | None:
    """``v`` when it is printable 7-bit ASCII text (what a baseline TIFF ASCII tag
    may hold), else None: such a tag is left out rather than mangled."""
    if isinstance(v, str) and v and v.isascii() and v.isprintable():
        return v
    return None


def _rational(v) -> tuple[int, int] | None:
    """An unsigned EXIF RATIONAL (numerator, denominator) of a number, or None."""
    if isinstance(v, bool) or not isinstance(v, (Fraction, int, float)):
        return None
    if isinstance(v, float) and not math.isfinite(v):
        return None
    f = Fraction(v).limit_denominator(1_000_000)
    if f < 0 or f.numerator > 0xFFFFFFFF:
        return None
    return f.numerator, f.denominator


def _ifd(entries: list, start: int, next_ifd: int = 0) -> tuple[bytes, bytes]:
    """(directory, its data area) of a little-endian classic TIFF IFD written at
    byte ``start``; ``entries`` are (tag, type, count, value bytes), sorted."""
    dir_len = 2 + 12 * len(entries) + 4
    data = b""
    out = struct.pack("<H", len(entries))
    for tag, ftype, count, value in entries:
        if len(value) <= 4:
            out += struct.pack("<HHI", tag, ftype, count) + value.ljust(4, b"\x00")
        else:
            out += struct.pack("<HHII", tag, ftype, count, start + dir_len + len(data))
            data += value + (b"\x00" if len(value) % 2 else b"")  # values start on a word boundary
    return out + struct.pack("<I", next_ifd), data


def exif_block(exif: dict, software: str) -> bytes:
    """A TIFF-structured EXIF block (what a PNG ``eXIf`` chunk or a JPEG's APP1
    holds) with the capture metadata :func:`parse_tiff_exif` reads: make and
    model (7-bit ASCII only; other text is left to the XMP packet), orientation
    1 (the output is upright), the capture date (as DateTime and
    DateTimeOriginal), exposure time, f-number, ISO and focal length, plus
    ``software``.  A tag whose value is not of its kind is left out."""

    def ascii(tag, v):
        text = ascii_text(v)
        return None if text is None else (tag, 2, len(text) + 1, text.encode("ascii") + b"\x00")

    def rational(tag, v):
        r = _rational(v)
        return None if r is None else (tag, 5, 1, struct.pack("<II", *r))

    when = capture_datetime(exif)
    stamp = None if when is None else when.strftime(_EXIF_DATE)
    iso = exif.get("iso")
    iso_ok = isinstance(iso, int) and not isinstance(iso, bool) and 0 < iso <= 0xFFFF
    sub = [e for e in (
        rational(0x829A, exif.get("exposure_time")),
        rational(0x829D, exif.get("f_number")),
        (0x8827, 3, 1, struct.pack("<H", iso)) if iso_ok else None,
        ascii(0x9003, stamp),
        rational(0x920A, exif.get("focal_length")),
    ) if e is not None]
    ifd0 = [e for e in (
        ascii(0x010F, exif.get("make")),
        ascii(0x0110, exif.get("model")),
        (0x0112, 3, 1, struct.pack("<H", 1)),
        ascii(0x0131, software),
        ascii(0x0132, stamp),
    ) if e is not None]
    if not sub:
        head, data = _ifd(ifd0, 8)
        return b"II*\x00" + struct.pack("<I", 8) + head + data
    n0 = len(ifd0) + 1  # with the EXIF sub-IFD pointer
    size0 = 2 + 12 * n0 + 4 + sum(len(v) + len(v) % 2 for _, _, _, v in ifd0 if len(v) > 4)
    pointer = (_EXIF_IFD_POINTER, 4, 1, struct.pack("<I", 8 + size0))
    head0, data0 = _ifd(sorted(ifd0 + [pointer]), 8)
    head1, data1 = _ifd(sub, 8 + size0)
    return b"II*\x00" + struct.pack("<I", 8) + head0 + data0 + head1 + data1


def xmp_packet(exif: dict, creator: str) -> bytes:
    """An XMP packet with the capture metadata (make, model, date, exposure time,
    f-number, focal length, ISO) and ``creator`` as the creator tool.

    XMP is UTF-8, so text tags keep any characters; a tag whose value is not
    of its expected kind (an ISO stored as text, a rational with a zero
    denominator) is left out.
    """
    attrs = []
    for key, name in (("make", "tiff:Make"), ("model", "tiff:Model")):
        text = _xml_text(exif.get(key))
        if text is not None:
            attrs.append(f'{name}="{text}"')
    when = capture_datetime(exif)
    if when is not None:
        attrs.append(f'exif:DateTimeOriginal="{when.isoformat()}"')
    for key, name in (("exposure_time", "exif:ExposureTime"), ("f_number", "exif:FNumber"),
                      ("focal_length", "exif:FocalLength")):
        num = _xmp_number(exif.get(key))
        if num is not None:
            attrs.append(f'{name}="{num}"')
    iso_body = ""
    iso = exif.get("iso")
    if isinstance(iso, int) and not isinstance(iso, bool) and iso > 0:
        iso_body = f"<exif:ISOSpeedRatings><rdf:Seq><rdf:li>{iso}</rdf:li></rdf:Seq></exif:ISOSpeedRatings>"
    attrs.append(f'xmp:CreatorTool="{_xml_text(creator)}"')
    body = (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
        'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description rdf:about="" xmlns:tiff="http://ns.adobe.com/tiff/1.0/" '
        'xmlns:exif="http://ns.adobe.com/exif/1.0/" xmlns:xmp="http://ns.adobe.com/xap/1.0/" '
        + " ".join(attrs)
        + ">"
        + iso_body
        + "</rdf:Description></rdf:RDF></x:xmpmeta>"
        '<?xpacket end="w"?>'
    )
    return body.encode("utf-8")
