"""HEIC/HEIF frames (iPhone's default format), through pillow-heif (extra ``heif``).

:func:`probe_heif` reads the header (size after the container's rotation and
mirroring, bit depth, EXIF) without decoding; :func:`decode_heif` decodes the
primary image to upright RGB/grey uint8 (uint16 for 10/12-bit files).

Orientation: a HEIF file stores it as the container's ``irot``/``imir``
transforms, which libheif applies while decoding; the EXIF orientation tag
that cameras also write describes the same rotation, so it is recorded as 1
(upright) rather than applied a second time.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import InputError
from .metadata import parse_tiff_exif

HEIF_EXTS = {".heic", ".heif", ".hif"}
_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1", b"mif2"}


def is_heif(head: bytes) -> bool:
    """True when ``head`` starts an ISO-BMFF file of a HEIF brand."""
    if len(head) < 16 or head[4:8] != b"ftyp":
        return False
    size = int.from_bytes(head[:4], "big")
    brands = [head[8:12]] + [head[i:i + 4] for i in range(16, min(size, len(head)), 4)]
    return any(b in _BRANDS for b in brands)


def _pillow_heif(path):
    try:
        import pillow_heif
    except ImportError:
        raise InputError("HEIC/HEIF input needs pillow-heif: pip install pillow-heif (the heif extra)", str(path)) from None
    return pillow_heif


def _open(path: Path):
    pillow_heif = _pillow_heif(path)
    try:
        return pillow_heif.open_heif(path, convert_hdr_to_8bit=False)
    except Exception as e:  # libheif reports corrupt files with several types
        raise InputError(f"corrupt HEIF ({e})", str(path)) from None


def _exif(heif) -> dict:
    raw = heif.info.get("exif") or b""
    if raw[:6] == b"Exif\x00\x00":
        raw = raw[6:]
    exif = parse_tiff_exif(raw)
    exif["orientation"] = 1  # the container's transforms already made the pixels upright
    return exif


def probe_heif(path: Path):
    """:class:`~superres_gpu.discover.FrameInfo` of a HEIF file's primary image."""
    from .discover import FrameInfo

    heif = _open(path)
    w, h = heif.size
    if w == 0 or h == 0:
        raise InputError("corrupt HEIF: zero image size", str(path))
    channels = 1 if heif.mode.startswith("L") else 3
    bits = 8 if int(heif.info.get("bit_depth", 8)) <= 8 else 16
    chroma = _chroma(heif) if channels == 3 else (1, 1)
    return FrameInfo(Path(path), "heif", w, h, channels, bits, 1, _exif(heif), chroma)


_CHROMA = {420: (2, 2), 422: (2, 1), 444: (1, 1)}


def _chroma(heif) -> tuple[int, int]:
    """The stored chroma subsampling (horizontal, vertical) that pillow-heif
    reports (``info["chroma"]``: 420, 422 or 444); 4:2:0, what phones write,
    where it reports none.  (A 4:2:2 picture that the container rotates by a
    quarter turn has its factors the other way round upright: not seen from
    here, and not written by phones.)"""
    return _CHROMA.get(heif.info.get("chroma"), (2, 2))


def decode_heif(info) -> np.ndarray:
    """Upright pixels of a HEIF frame: (H, W) or (H, W, 3), uint8 or uint16."""
    heif = _open(info.path)
    try:
        img = np.asarray(heif)
    except Exception as e:
        raise InputError(f"corrupt or truncated HEIF: cannot decode ({e})", str(info.path)) from None
    if img.ndim == 3:
        img = img[..., 0] if info.channels == 1 else img[..., :3]
    return np.ascontiguousarray(img)
