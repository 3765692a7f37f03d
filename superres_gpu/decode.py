"""Decoding: frames to pixels, upright, once each.

* :func:`read_frame` decodes one frame to an RGB (or grey) uint8/uint16 array
  with the EXIF orientation applied.
* :func:`read_half_luma` is the fast half-resolution grey read used to score
  sharpness (JPEG decodes straight to half size in the DCT domain).
* :func:`read_mask` reads the user's ``mask.png``.
* :class:`FrameFeed` decodes the frames of a burst ahead of their use, in a
  thread pool (decoders release the GIL).
"""

from __future__ import annotations

import os
import struct
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from .discover import FrameInfo, probe, tifffile_quiet
from .errors import InputError
from .pixels import full_scale

_CV2_QUIET = False
_CV2_LOCK = threading.Lock()


def cv2_quiet():
    """OpenCV, with its own log output limited to errors (once per process).
    Call it before starting threads that use OpenCV: its first import (a
    bootstrap that replaces its own module) deadlocks when two threads make
    it at once."""
    global _CV2_QUIET
    with _CV2_LOCK:  # callers in several threads at once (bursts of a batch): one imports, the others wait
        import cv2

    if not _CV2_QUIET:
        try:  # every decode failure becomes our own line naming the file
            cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
        except AttributeError:  # pragma: no cover - older builds
            pass
        _CV2_QUIET = True
    return cv2


def apply_orientation(img: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation (1..8) so the result is upright."""
    if orientation in (1, None):
        return img
    ops = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.swapaxes(0, 1),
        6: lambda a: a.swapaxes(0, 1)[:, ::-1],
        7: lambda a: a.swapaxes(0, 1)[::-1, ::-1],
        8: lambda a: a.swapaxes(0, 1)[::-1],
    }
    return np.ascontiguousarray(ops[orientation](img))


def _jpeg_problem(message: str) -> str:
    """The user's words for a libjpeg error or warning."""
    m = message.strip().rstrip(".")
    if "(): " in m:  # the TurboJPEG function's name means nothing to the user
        m = m.split("(): ", 1)[1]
    low = m.lower()
    if "premature end" in low:
        return f"truncated JPEG: the image data ends early ({m})"
    return f"corrupt JPEG data ({m})"


def check_png(data: bytes, path) -> None:
    """Raise InputError naming ``path`` when a PNG's structure is damaged: a chunk
    CRC that does not match, IHDR not first, no IEND (cut short), image data
    that does not inflate completely, or rows with an invalid filter byte.

    libpng reports these on stderr in its own words; checked here first, the
    decoder only sees intact files.
    """
    import zlib

    p = str(path)
    if len(data) < 33 or data[12:16] != b"IHDR":
        raise InputError("corrupt PNG: the header chunk is not first", p)
    w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", data[16:29])
    pos, idat, ended = 8, [], False
    while pos + 12 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        ctype_ = data[pos + 4 : pos + 8]
        end = pos + 12 + length
        if end > len(data):
            break
        body = data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[end - 4 : end])
        if zlib.crc32(ctype_ + body) & 0xFFFFFFFF != crc:
            name = ctype_.decode("latin-1") if ctype_.isalpha() else repr(ctype_)
            raise InputError(f"corrupt PNG: checksum error in its {name} chunk", p)
        if ctype_ == b"IDAT":
            idat.append(body)
        elif ctype_ == b"IEND":
            ended = True
            break
        pos = end
    if not ended:
        raise InputError("truncated PNG: the file ends early", p)
    if not idat:
        raise InputError("corrupt PNG: no image data", p)
    try:
        z = zlib.decompressobj()
        raw = b"".join(z.decompress(b) for b in idat) + z.flush()
    except zlib.error as e:
        raise InputError(f"corrupt PNG: the image data does not inflate ({e})", p) from None
    if not z.eof:
        raise InputError("corrupt PNG: the image data ends early", p)
    samples = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}.get(ctype)
    if samples is None or depth not in (1, 2, 4, 8, 16):
        raise InputError(f"PNG colour type {ctype} with depth {depth} is not valid", p)
    if interlace == 0:
        row = (w * samples * depth + 7) // 8 + 1
        if len(raw) < row * h:
            raise InputError("corrupt PNG: the image data is shorter than its size", p)
        filters = np.frombuffer(raw, np.uint8, count=row * h)[::row]
        if filters.size and int(filters.max()) > 4:
            raise InputError("corrupt PNG: invalid row filter in the image data", p)


def decode_jpeg(data: bytes, path, grey: bool, half: bool = False, out: np.ndarray | None = None) -> np.ndarray:
    """Decode a JPEG strictly: libjpeg's warnings (corrupt entropy data,
    premature end, extraneous bytes) are errors naming the file, where
    decoders usually print a line and return a damaged picture.

    Returns (H, W, 3) RGB or (H, W) grey uint8, before orientation; ``half``
    decodes straight to half size in the DCT domain (each side rounded up).
    CMYK/YCCK files are checked here, then converted by OpenCV (libjpeg-turbo
    has no CMYK to RGB conversion).  ``out``: a uint8 array of the full-size
    result's shape to decode into (returned itself when used).
    """
    import simplejpeg

    try:
        h, w, colorspace, _ = simplejpeg.decode_jpeg_header(data)
        cmyk = colorspace in ("CMYK", "YCCK")
        kw = {}
        if half:
            kw = dict(min_factor=2, min_height=(h + 1) // 2, min_width=(w + 1) // 2)
        into = (out is not None and not cmyk and not half and out.dtype == np.uint8 and out.flags.c_contiguous
                and out.shape == ((h, w) if grey else (h, w, 3)))
        if into:
            kw["buffer"] = out
        target = "CMYK" if cmyk else ("GRAY" if grey else "RGB")
        img = simplejpeg.decode_jpeg(data, colorspace=target, fastdct=False, fastupsample=False, strict=True, **kw)
        if into:
            return out
    except ValueError as e:
        raise InputError(_jpeg_problem(str(e)), str(path)) from None
    if cmyk:
        del img
        cv2 = cv2_quiet()
        flags = (cv2.IMREAD_REDUCED_GRAYSCALE_2 if half else cv2.IMREAD_GRAYSCALE) if grey else cv2.IMREAD_COLOR
        if half and not grey:
            flags = cv2.IMREAD_REDUCED_COLOR_2
        img = cv2.imdecode(np.frombuffer(data, np.uint8), flags | cv2.IMREAD_IGNORE_ORIENTATION)
        if img is None:
            raise InputError("corrupt JPEG: cannot decode", str(path))
        return img if img.ndim == 2 else np.ascontiguousarray(img[..., ::-1])
    return img[..., 0] if img.shape[2] == 1 else img


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise InputError(f"cannot read file ({e.strerror})", str(path)) from None


def read_frame(info: FrameInfo | str | os.PathLike, alloc=None) -> np.ndarray:
    """Decode a frame: (H, W) grey or (H, W, 3) RGB, uint8 or uint16, upright.

    ``alloc(shape, dtype)``, when given, makes the array the frame is written
    into (the GPU backend's pinned upload buffers): the colour conversion
    writes straight into it, with no further copy.
    """
    if not isinstance(info, FrameInfo):
        info = probe(info)
    if info.format == "array":  # an in-memory frame (superres_gpu.api), already upright
        return info.pixels
    path = info.path
    if info.format == "tiff":
        img = _decode_tiff(path)
    elif info.format == "jpeg":
        direct = alloc is not None and info.orientation in (1, None)
        out = alloc(info.shape, info.dtype) if direct else None
        img = decode_jpeg(_read_bytes(path), path, grey=info.channels == 1, out=out)
        if out is not None and img is out:
            return out  # decoded straight into the given buffer
    elif info.format == "heif":
        from .heif import decode_heif

        img = decode_heif(info)
    elif info.format == "raw":
        from .raw import decode_raw

        img = decode_raw(info)
    else:
        cv2 = cv2_quiet()
        data = _read_bytes(path)
        check_png(data, path)
        flags = cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR | cv2.IMREAD_IGNORE_ORIENTATION
        img = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
        if img is None:
            raise InputError("corrupt or truncated PNG: cannot decode", str(path))
        if img.ndim == 3 and img.shape[2] < 3:
            img = img[..., 0]
        elif img.ndim == 3:  # BGR(A) -> RGB: cvtColor is several times faster than a reversed-stride copy
            code = cv2.COLOR_BGRA2RGB if img.shape[2] == 4 else cv2.COLOR_BGR2RGB
            direct = info.orientation in (1, None) and img.dtype == info.dtype and img.shape[:2] == info.shape[:2]
            out = alloc(info.shape, info.dtype) if alloc is not None and direct and info.channels == 3 else None
            img = cv2.cvtColor(img, code, dst=out) if out is not None else cv2.cvtColor(img, code)
            if out is not None:
                return out
    img = apply_orientation(np.ascontiguousarray(img), info.orientation)
    if img.dtype not in (np.uint8, np.uint16):
        raise InputError(f"sample type {img.dtype} is not supported", str(path))
    if img.ndim == 3 and info.channels == 1:
        img = img[..., 0]
    if img.shape != info.shape:
        raise InputError(f"decoded size {img.shape[1]}x{img.shape[0]} differs from its header", str(path))
    if alloc is not None:
        out = alloc(img.shape, img.dtype)
        np.copyto(out, img)
        return out
    return np.ascontiguousarray(img)


def _decode_tiff(path: Path) -> np.ndarray:
    tifffile = tifffile_quiet()

    try:
        with tifffile.TiffFile(path) as tf:
            page = tf.pages.first
            img = page.asarray()
            axes = page.axes
    except Exception as e:
        raise InputError(f"corrupt or truncated TIFF ({e})", str(path)) from None
    if img.ndim == 3 and axes.startswith("S"):
        img = np.moveaxis(img, 0, -1)
    if img.ndim == 3:
        s = img.shape[2]
        img = img[..., 0] if s in (1, 2) else img[..., :3]
    return img


def read_half_luma(info: FrameInfo) -> np.ndarray:
    """Half-resolution luma in [0, 1], float32.

    JPEG decodes straight to a half-size grey image in the DCT domain (several
    times faster than a full decode); other formats are decoded in full and
    halved with the alignment pyramid's filter.
    """
    if info.format == "jpeg":
        half = decode_jpeg(_read_bytes(info.path), info.path, grey=True, half=True)
        return apply_orientation(half, info.orientation).astype(np.float32) / 255.0
    if info.format == "raw":
        from .raw import read_half_luma_raw

        return read_half_luma_raw(info)
    from .backends import get_backend

    B = get_backend("numpy")
    return B.downsample2(B.luma(read_frame(info)))


def read_mask(path: str | os.PathLike, shape: tuple[int, int]) -> np.ndarray:
    """Read a mask image: True where pixels are masked (moving objects).

    A PNG with an alpha channel (the usual case: strokes painted on a
    transparent layer) masks every pixel whose alpha is above 0.  Without
    alpha, strongly red pixels (R >= 128, G and B < R/2) are masked in an RGB
    image and non-black pixels in a grey one.  ``shape`` is the reference
    frame's (height, width); a mask of another size is an error.
    """
    path = Path(path)
    info = probe(path)
    if (info.height, info.width) != tuple(shape):  # before decoding: the header may claim anything
        raise InputError(
            f"mask is {info.width}x{info.height} but the frames are {shape[1]}x{shape[0]}", str(path)
        )
    cv2 = cv2_quiet()
    data = _read_bytes(path)
    if info.format == "png":
        check_png(data, path)
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise InputError("corrupt mask image: cannot decode", str(path))
    img = apply_orientation(img, info.orientation)
    if img.shape[:2] != tuple(shape):
        raise InputError(
            f"mask is {img.shape[1]}x{img.shape[0]} but the frames are {shape[1]}x{shape[0]}",
            str(path),
        )
    img = img.astype(np.float32) / np.float32(full_scale(img.dtype))
    if img.ndim == 3 and img.shape[2] == 4:
        return img[..., 3] > 0
    if img.ndim == 3 and img.shape[2] == 2:
        return img[..., 1] > 0
    if img.ndim == 3:
        b, g, r = img[..., 0], img[..., 1], img[..., 2]
        return (r >= 0.5) & (g < 0.5 * r) & (b < 0.5 * r)
    return img > 0


class FrameFeed:
    """Decode frames ahead of their use, in order, in a thread pool.

    Iterating yields ``(host array, decode seconds)`` for each of ``infos`` in
    order (:meth:`numbered`: with its position); at most ``prefetch`` frames
    are decoded ahead of the one being used, so memory stays bounded however
    long the burst.  :meth:`skip` takes positions out while it runs (frames
    culled after the feed started).  ``alloc`` makes the arrays frames are
    decoded into (see :func:`read_frame`); ``release`` takes back those of
    skipped frames.  Use as a context manager: leaving it cancels what is
    still queued.
    """

    def __init__(self, infos: list[FrameInfo], threads: int, prefetch: int, alloc=None, release=None):
        cv2_quiet()  # imported in this thread first: OpenCV's import deadlocks when two threads make it at once
        self.infos = list(infos)
        self.alloc = alloc
        self.release = release
        self.prefetch = max(1, prefetch)
        self.pool = ThreadPoolExecutor(max_workers=max(1, threads), thread_name_prefix="decode")
        self.futures: dict = {}
        self.skipped: set = set()
        self._next = 0  # the next position to submit

    def _timed_read(self, info: FrameInfo):
        t = time.perf_counter()
        img = read_frame(info, self.alloc)
        return img, time.perf_counter() - t

    def _fill(self) -> None:
        while self._next < len(self.infos) and len(self.futures) < self.prefetch:
            if self._next not in self.skipped:
                self.futures[self._next] = self.pool.submit(self._timed_read, self.infos[self._next])
            self._next += 1

    def skip(self, positions) -> None:
        """Leave these positions out: not yielded, their decode cancelled or
        its result dropped."""
        for p in positions:
            self.skipped.add(p)
            f = self.futures.pop(p, None)
            if f is not None and not f.cancel() and self.release is not None:
                f.add_done_callback(self._give_back)

    def _give_back(self, f) -> None:
        if not f.cancelled() and f.exception() is None:
            self.release(f.result()[0])

    def numbered(self):
        """Yields ``(position, (host array, decode seconds))``."""
        self._fill()
        for k in range(len(self.infos)):
            if k in self.skipped:
                continue
            self._fill()
            result = self.futures.pop(k).result()
            self._fill()
            yield k, result

    def __iter__(self):
        for _, result in self.numbered():
            yield result

    def close(self) -> None:
        for f in self.futures.values():
            if not f.cancel() and self.release is not None:  # decoding or decoded: its buffer goes back
                f.add_done_callback(self._give_back)
        self.futures.clear()
        self.pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
