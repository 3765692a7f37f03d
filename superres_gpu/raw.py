"""Raw frames (DNG, and the other formats LibRaw reads: CR2, CR3, NEF, ARW,
ORF, RW2, RAF, PEF, SRW... see ``discover.RAW_EXTS``), through rawpy (extra
``raw``).

Raw frames are decoded to linear light: 16 bits, the camera's white balance,
no auto-brightening, no tone curve, the linear sRGB primaries, demosaiced
once by LibRaw (the sharpness scores of culling use LibRaw's half-size read,
which bins each 2x2 colour block instead of demosaicing).  The merge then
runs in linear light and the output stays linear unless ``--gamma srgb``
asks for the sRGB curve (:func:`encode_srgb`).

The report records each burst's black and white levels, the camera white
balance, the CFA and colour matrix and, when the DNG carries one, its
NoiseProfile (per colour plane, variance = S * x + O for x in [0, 1]), which
the robust weights then use (:class:`superres_gpu.robust.NoiseModel`).
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .discover import FrameInfo
from .errors import InputError

GAMMAS = ("linear", "srgb")
NOISE_PROFILE_TAG = 51041


@dataclass
class RawFrame(FrameInfo):
    """A raw frame's :class:`FrameInfo` and what the raw decoder reports."""

    raw: dict = field(default_factory=dict)


def _rawpy(path):
    try:
        import rawpy
    except ImportError:
        kind = Path(path).suffix.lstrip(".").upper() or "raw"
        raise InputError(f"raw ({kind}) input needs rawpy: pip install rawpy (the raw extra)", str(path)) from None
    return rawpy


def _imread(path: Path):
    rawpy = _rawpy(path)
    try:
        return rawpy.imread(str(path))
    except Exception as e:  # LibRaw reports unreadable files with several types
        raise InputError(f"cannot read raw file ({_libraw_text(e)})", str(path)) from None


def _libraw_text(error: Exception) -> str:
    """LibRaw's message of an exception (rawpy gives it as bytes); any other
    exception as it states itself."""
    arg = error.args[0] if error.args else None
    text = arg.decode("utf-8", "replace") if isinstance(arg, bytes) else str(error)
    return text.strip() or type(error).__name__


class _LibRawStderr:
    """Collects what LibRaw prints to the process's stderr about one file.

    LibRaw's default handler of damaged data writes ``FILE: Unexpected end of
    file`` (or ``FILE: data corrupted at N``) to file descriptor 2 itself,
    from C; that line would come before, and apart from, the one error line
    a damaged frame gets.  While the file is read, descriptor 2 goes to a
    temporary file: LibRaw's lines about this file end up in ``messages``,
    anything else written meanwhile (another thread's progress display) is
    written on to the real stderr afterwards.  One file at a time (a lock),
    and only around the header read, where a damaged file shows.  Whatever
    interrupts the block (Ctrl-C included), descriptor 2 is put back and the
    lock released.
    """

    _lock = threading.Lock()

    def __init__(self, path: Path):
        self.prefix = os.fsencode(str(path)) + b": "
        self.messages: list[str] = []
        self._saved = None
        self._tmp = None
        self._held = False

    def __enter__(self):
        self._held = self._lock.acquire()  # one statement: no signal handler runs between the two
        try:
            try:
                sys.stderr.flush()
            except (OSError, ValueError, AttributeError):
                pass
            self._tmp = tempfile.TemporaryFile()
            self._saved = os.dup(2)
            os.dup2(self._tmp.fileno(), 2)
        except BaseException as e:
            self._put_back()
            self._held = False
            self._lock.release()
            if not isinstance(e, (OSError, ValueError)):
                raise  # Ctrl-C: descriptor 2 is back, the lock free
            # no descriptor 2 to borrow: LibRaw prints as it would
        return self

    def __exit__(self, *exc):
        try:
            self._put_back()  # descriptor 2 first (what Python still buffers then goes to the real stderr)
        finally:
            if self._held:
                self._held = False
                self._lock.release()
        return False

    def _put_back(self):
        data = b""
        if self._saved is not None:
            os.dup2(self._saved, 2)
            os.close(self._saved)
            self._saved = None
            self._tmp.seek(0)
            data = self._tmp.read()
        if self._tmp is not None:
            self._tmp.close()
            self._tmp = None
        # LibRaw's lines about this file: the name (which may hold a newline itself), ": ", the message
        others, pos = bytearray(), 0
        while (i := data.find(self.prefix, pos)) >= 0:
            others += data[pos:i]
            j = data.find(b"\n", i + len(self.prefix))
            j = len(data) if j < 0 else j
            self.messages.append(data[i + len(self.prefix):j].decode("utf-8", "replace").strip())
            pos = j + 1
        others += data[pos:]
        if others:
            os.write(2, bytes(others))


def noise_profile(path: Path) -> list | None:
    """The DNG NoiseProfile as [[S, O], ...] per colour plane, or None."""
    import tifffile

    try:
        with tifffile.TiffFile(path) as tf:
            for page in [tf.pages.first, *(tf.pages.first.pages or [])]:
                tag = page.tags.get(NOISE_PROFILE_TAG)
                if tag is not None:
                    v = [float(x) for x in np.ravel(tag.value)]
                    return [v[i:i + 2] for i in range(0, len(v) - 1, 2)]
    except Exception:  # not a TIFF-based raw: it has no NoiseProfile tag
        return None
    return None


def probe_raw(path: Path) -> RawFrame:
    """Header of a raw frame: size after the file's rotation, levels, white balance, EXIF."""
    from .discover import _tiff_exif

    path = Path(path)
    rawpy = _rawpy(path)
    # the levels unpack the raw data: a truncated or damaged file shows here, before any work on the burst
    with _LibRawStderr(path) as printed:
        try:
            with _imread(path) as raw:
                s = raw.sizes
                w, h = (s.height, s.width) if s.flip in (5, 6) else (s.width, s.height)
                info = {
                    "black_level": [int(v) for v in raw.black_level_per_channel],
                    "white_level": int(raw.white_level),
                    "camera_white_balance": [round(float(v), 6) for v in raw.camera_whitebalance],
                    "cfa_pattern": raw.color_desc.decode("ascii", "replace"),
                    "cfa_repeat": [int(v) for v in np.shape(raw.raw_pattern)] if raw.raw_pattern is not None else None,
                    "color_matrix": [[round(float(v), 6) for v in row[:3]] for row in raw.color_matrix[:3]],
                    "noise_profile": noise_profile(path),
                    "linear": True,
                }
        except rawpy.LibRawError as e:
            error = e
        else:
            error = None
    if error is not None or printed.messages:
        said = "; ".join(dict.fromkeys(m[0].lower() + m[1:] for m in printed.messages if m))
        said = said or (_libraw_text(error) if error is not None else "LibRaw reports damaged data")
        raise InputError(f"truncated or damaged raw file ({said})", str(path))
    if w == 0 or h == 0:
        raise InputError("raw file has no image", str(path))
    try:
        exif = _tiff_exif(path)
    except (OSError, ValueError):
        exif = {}
    exif["orientation"] = 1  # LibRaw applies the file's rotation while decoding
    # a 2x2 Bayer mosaic samples red and blue on every other row and column, and demosaicing rebuilds their fine
    # detail from green's, as a JPEG decoder rebuilds 4:2:0 chroma's from the luma: for the chromatic aberration
    # such frames are chroma-subsampled 2x2 (on synthetic DNG bursts the estimate finds 46-59 % of the truth
    # otherwise, and moving whole channels loses more than the aberration; see benchmarks/RESULTS.md)
    bayer = info["cfa_repeat"] == [2, 2] and set(info["cfa_pattern"]) == {"R", "G", "B"}  # not a 2x2 CMYG
    chroma = (2, 2) if bayer else (1, 1)
    return RawFrame(path, "raw", w, h, 3, 16, 1, exif, chroma, raw=info)


def _postprocess(info: FrameInfo, half: bool) -> np.ndarray:
    rawpy = _rawpy(info.path)
    with _imread(info.path) as raw:
        try:
            # adjust_maximum_thr=0: LibRaw would otherwise take a frame's own brightest sample as its white
            # level when that is above 75 % of the file's, brightening that frame alone (and its noise)
            return raw.postprocess(gamma=(1, 1), no_auto_bright=True, output_bps=16, use_camera_wb=True,
                                   output_color=rawpy.ColorSpace.sRGB, half_size=half, adjust_maximum_thr=0.0)
        except Exception as e:
            raise InputError(f"cannot decode raw file ({_libraw_text(e)})", str(info.path)) from None


def decode_raw(info: FrameInfo) -> np.ndarray:
    """Linear 16-bit RGB (H, W, 3) of a raw frame, upright."""
    return _postprocess(info, half=False)


def read_half_luma_raw(info: FrameInfo) -> np.ndarray:
    """Half-resolution luma in [0, 1] from LibRaw's half-size read (no demosaicing)."""
    from .backends import get_backend

    return get_backend("numpy").luma(_postprocess(info, half=True))


def encode_srgb(image: np.ndarray) -> np.ndarray:
    """The sRGB curve applied to a linear uint16 or float32 image (same dtype;
    float values above 1 follow the curve's power segment, below 0 are 0)."""
    x = image.astype(np.float32) / np.float32(65535.0) if image.dtype == np.uint16 else np.maximum(image, 0)
    y = np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1 / 2.4, dtype=np.float32) - 0.055)
    if image.dtype == np.uint16:
        return np.clip(np.rint(y * 65535.0), 0, 65535).astype(np.uint16)
    return y.astype(np.float32)
