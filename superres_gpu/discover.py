"""Discovery and probing: which files make the burst, and what their headers say.

* :func:`list_inputs` turns folders and files into the burst, in name order.
* :func:`probe` reads a frame's header (size, channels, bit depth, EXIF)
  without decoding its pixels, so a whole burst is validated in moments.
* :func:`resolve_frames` and :func:`check_burst` apply the burst's rules (the
  reference, at least two frames, one size and sample format).

Inputs are only ever opened for reading.
"""

from __future__ import annotations

import mmap
import os
import stat
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import __version__
from .errors import InputError
from .metadata import PNG_SIGNATURE, jpeg_exif_block, jpeg_segments, parse_tiff_exif, png_exif_block, png_text
from .pixels import full_scale
from .resources import DEFAULT_MAX_MEGAPIXELS, check_frame_pixels

# raw formats LibRaw reads (it identifies a file by its content; the name routes it to rawpy)
RAW_EXTS = {".dng", ".cr2", ".cr3", ".crw", ".nef", ".nrw", ".arw", ".srf", ".sr2", ".orf", ".rw2", ".raf",
            ".pef", ".srw", ".rwl", ".3fr", ".fff", ".iiq", ".erf", ".kdc", ".dcr", ".mrw", ".mos", ".mef", ".x3f"}
IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".heic", ".heif", ".hif"} | RAW_EXTS
SKIP_SUFFIX = ".not_sharp_enough"
MASK_NAME = "mask.png"
SOFTWARE = f"superres_gpu {__version__}"
SOFTWARE_KEY = b"Software"
_PROBE_BYTES = 512 * 1024


@dataclass
class FrameInfo:
    """What a frame's header says, after EXIF orientation."""

    path: Path
    format: str  # "jpeg" | "png" | "tiff" | "heif" | "raw" | "array" (in memory)
    width: int
    height: int
    channels: int  # 1 (grey) or 3 (RGB); an alpha channel is dropped
    bits: int  # 8 or 16
    orientation: int = 1
    exif: dict = field(default_factory=dict)
    # chroma subsampling (horizontal, vertical) of the stored picture, after orientation: (2, 2) for a
    # 4:2:0 JPEG or HEIC and for a raw 2x2 Bayer mosaic (red and blue on every other row and column, their
    # detail demosaiced from green's), (1, 1) where every channel has full resolution
    chroma: tuple = (1, 1)

    @property
    def chroma_origin(self) -> tuple[int, int]:
        """(x, y): the pixels of a partial chroma block before the first whole
        one on each axis of the upright frame.  The encoder's blocks start at
        the stored picture's first row and column; where the EXIF orientation
        reverses an axis whose length the factor does not divide, the partial
        block at its end comes first."""
        sx, sy = int(self.chroma[0]), int(self.chroma[1])
        x_reversed, y_reversed = self.orientation in (2, 3, 6, 7), self.orientation in (3, 4, 7, 8)
        return (-self.width % sx if x_reversed else 0, -self.height % sy if y_reversed else 0)

    @property
    def shape(self) -> tuple[int, ...]:
        if self.channels == 1:
            return (self.height, self.width)
        return (self.height, self.width, self.channels)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.uint16 if self.bits == 16 else np.uint8)

    @property
    def max_value(self) -> float:
        return full_scale(self.dtype)

    def describe(self) -> str:
        kind = "grey" if self.channels == 1 else "RGB"
        return f"{self.width}x{self.height} {self.bits}-bit {kind}"


# --------------------------------------------------------------------------
# Finding the burst
# --------------------------------------------------------------------------


def _is_image_name(p: Path) -> bool:
    return p.suffix.lower() in IMAGE_EXTS


def list_inputs(inputs: list[str | os.PathLike], strict: bool = True) -> list[Path]:
    """Expand folders and files into the list of frames, in name order.

    A folder contributes every image in it (by extension, not recursive),
    skipping hidden files, files ending in ``.not_sharp_enough``, ``mask.png``,
    folders and files this tool wrote.  An entry with an image's name that is
    no regular file (a link to a missing file, a FIFO, a device) is refused
    by name, as a frame that cannot be read; with ``strict=False`` it is
    listed instead, to fail where the burst is read (a batch counting its
    bursts' frames).  Files named explicitly are taken as given (but must
    exist).
    """
    frames: list[Path] = []
    seen: set = set()
    for item in inputs:
        p = Path(item)
        if not p.exists():
            raise InputError("no such file or folder", str(p))
        if p.is_dir():
            for q in sorted(p.iterdir()):
                if q.name.startswith(".") or q.name.endswith(SKIP_SUFFIX):
                    continue
                if q.name.lower() == MASK_NAME or not _is_image_name(q) or q.is_dir():
                    continue
                if not q.is_file():
                    if strict:
                        raise InputError(_not_regular(q) + "; remove it from the folder or name the frames", str(q))
                    frames.append(q)
                    continue
                if is_own_output(q):
                    continue
                if _key(q) not in seen:
                    seen.add(_key(q))
                    frames.append(q)
        else:
            if not p.is_file():  # a FIFO or device would block or never end
                raise InputError(_not_regular(p), str(p))
            if p.name.endswith(SKIP_SUFFIX):
                raise InputError(f"file is marked '{SKIP_SUFFIX}'; rename it to use it", str(p))
            if _key(p) not in seen:
                seen.add(_key(p))
                frames.append(p)
    return frames


def _not_regular(p: Path) -> str:
    if p.is_symlink() and not p.exists():
        return "is a link to a missing file"
    import stat

    mode = p.stat().st_mode
    kind = "a FIFO" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "a device"
    return f"is not a regular file ({kind})"


def _key(p: Path):
    st = Path(p).stat()
    return (st.st_dev, st.st_ino)


def is_own_output(path: Path) -> bool:
    """True for TIFF/PNG files whose Software tag/chunk says this tool wrote them."""
    if Path(path).suffix.lower() in (".jpg", ".jpeg"):  # this tool never writes JPEG
        return False
    try:
        with open(path, "rb") as fh:
            head = fh.read(64 * 1024)
    except OSError:
        return False
    if head[:8] == PNG_SIGNATURE:
        return png_text(head, SOFTWARE_KEY).startswith(b"superres_gpu")
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return b"superres_gpu" in head
    return False


def resolve_frames(inputs: list, reference: str | None) -> tuple[list[Path], int]:
    """The burst's files in processing order and the index of the reference.

    ``reference`` is "first", "sharpest" (both: index 0 for now; culling picks
    the sharpest later) or the path of a frame, which is added in front when
    it is not among the inputs.
    """
    # A previous result in the folder is skipped because this tool tagged it;
    # the output path is deliberately *not* excluded, so that an output named
    # like an input frame is caught (and refused) by AtomicOutput's protect list.
    frames = list_inputs(inputs)
    if reference not in (None, "", "first", "sharpest"):
        rp = Path(reference)
        if not rp.is_file():
            raise InputError("reference frame not found", str(rp))
        for i, f in enumerate(frames):
            if f.samefile(rp):
                return frames, i
        frames.insert(0, rp)
        return frames, 0
    if not frames:
        where = ", ".join(str(p) for p in inputs)
        raise InputError("no JPEG, PNG or TIFF frames found", where)
    return frames, 0


def check_burst(infos: list[FrameInfo], ref: FrameInfo) -> None:
    """All frames must match the reference's size, channels and bit depth."""
    if min(ref.width, ref.height) < MIN_SIDE:
        raise InputError(
            f"frame is {ref.width}x{ref.height}; frames smaller than {MIN_SIDE}x{MIN_SIDE} cannot be aligned",
            str(ref.path),
        )
    for info in infos:
        if (info.width, info.height) != (ref.width, ref.height):
            raise InputError(
                f"frame is {info.width}x{info.height} but the reference {ref.path.name} is "
                f"{ref.width}x{ref.height}; all frames of a burst must have the same size",
                str(info.path),
            )
        if (info.channels, info.bits) != (ref.channels, ref.bits):
            raise InputError(
                f"frame is {info.describe()} but the reference {ref.path.name} is {ref.describe()}",
                str(info.path),
            )


# --------------------------------------------------------------------------
# Header probing
# --------------------------------------------------------------------------


def _orient_size(w: int, h: int, orientation: int) -> tuple[int, int]:
    return (h, w) if orientation in (5, 6, 7, 8) else (w, h)


MIN_SIDE = 8  # smaller frames cannot be aligned (the pyramid and phase correlation need room)


def probe(path: str | os.PathLike, max_megapixels: float = DEFAULT_MAX_MEGAPIXELS) -> FrameInfo:
    """Read a frame's header without decoding pixels; raise InputError if bad.

    A frame whose header claims more than ``max_megapixels`` is refused here,
    before any decoder allocates it.
    """
    info = _probe(Path(path))
    check_frame_pixels(info.path, info.width, info.height, max_megapixels)
    return info


def _probe(path: Path) -> FrameInfo:
    try:
        st = os.stat(path)
    except OSError as e:
        raise InputError(f"cannot read file ({e.strerror})", str(path)) from None
    if stat.S_ISDIR(st.st_mode):
        raise InputError("is a folder, not an image", str(path))
    if not stat.S_ISREG(st.st_mode):  # opening a FIFO would block forever
        raise InputError("is not a regular file", str(path))
    try:
        with open(path, "rb") as fh:
            head = fh.read(_PROBE_BYTES)
            size = os.fstat(fh.fileno()).st_size
    except IsADirectoryError:
        raise InputError("is a folder, not an image", str(path)) from None
    except OSError as e:
        raise InputError(f"cannot read file ({e.strerror})", str(path)) from None
    if size == 0:
        raise InputError("file is empty", str(path))
    if path.suffix.lower() in RAW_EXTS:  # DNG, NEF, CR2...: often a TIFF structure, but raw CFA data for LibRaw
        from .raw import probe_raw

        return probe_raw(path)
    if head[:3] == b"\xff\xd8\xff":
        return _probe_jpeg(path, head, size)
    if head[:8] == PNG_SIGNATURE:
        return _probe_png(path, head)
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return _probe_tiff(path)
    from .heif import is_heif, probe_heif

    if is_heif(head):
        return probe_heif(path)
    raise InputError("not a JPEG, PNG, TIFF or HEIF image", str(path))


def _probe_jpeg(path: Path, head: bytes, size: int) -> FrameInfo:
    data = head
    sof = _jpeg_sof(data)
    if sof is None and size > len(head):
        data = path.read_bytes()
        sof = _jpeg_sof(data)
    if sof is None:
        raise InputError("corrupt JPEG: no frame header found", str(path))
    precision, h, w, ncomp, chroma = sof
    if w == 0 or h == 0:
        raise InputError("corrupt JPEG: zero image size", str(path))
    exif = parse_tiff_exif(jpeg_exif_block(data) or b"")
    orient = exif.get("orientation", 1)
    w, h = _orient_size(w, h, orient)
    chroma = _orient_size(*chroma, orient)
    return FrameInfo(path, "jpeg", w, h, 1 if ncomp == 1 else 3, 8, orient, exif, chroma)


def _jpeg_sof(data: bytes):
    """(precision, height, width, components, (horizontal, vertical) chroma
    subsampling) from a JPEG's frame header, or None."""
    for marker, pos, _ in jpeg_segments(data):
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            if pos + 10 > len(data):
                return None
            precision, h, w, ncomp = struct.unpack(">BHHB", data[pos + 4 : pos + 10])
            return precision, h, w, ncomp, _jpeg_subsampling(data[pos + 10 : pos + 10 + 3 * ncomp], ncomp)
    return None


def _jpeg_subsampling(comps: bytes, ncomp: int) -> tuple[int, int]:
    """The chroma subsampling of a frame header's component list (3 bytes
    each: id, H << 4 | V, table): the largest factor by which a colour
    component's sampling is below the densest one's; (1, 1) for grey or
    unreadable lists (the decoder then reports the damage)."""
    if ncomp < 3 or len(comps) < 3 * ncomp:
        return (1, 1)
    hv = [(comps[3 * i + 1] >> 4, comps[3 * i + 1] & 15) for i in range(ncomp)]
    if any(hh == 0 or vv == 0 for hh, vv in hv):
        return (1, 1)
    hmax, vmax = max(hh for hh, _ in hv), max(vv for _, vv in hv)
    return (max(hmax // hh for hh, _ in hv[1:3]), max(vmax // vv for _, vv in hv[1:3]))


def _probe_png(path: Path, head: bytes) -> FrameInfo:
    if len(head) < 33 or head[12:16] != b"IHDR":
        raise InputError("corrupt PNG: no header", str(path))
    w, h, depth, ctype = struct.unpack(">IIBB", head[16:26])
    if w == 0 or h == 0:
        raise InputError("corrupt PNG: zero image size", str(path))
    channels = 1 if ctype in (0, 4) else 3
    exif = parse_tiff_exif(png_exif_block(head) or b"")
    orient = exif.get("orientation", 1)
    w, h = _orient_size(w, h, orient)
    return FrameInfo(path, "png", w, h, channels, 16 if depth == 16 else 8, orient, exif)


def _tiff_exif(path: Path) -> dict:
    """EXIF of a TIFF file, read from the file's own IFDs (memory-mapped: the
    IFDs may sit anywhere in the file)."""
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        return parse_tiff_exif(mm)


def tifffile_quiet():
    """tifffile, with its log warnings about damaged files kept off stderr (the
    error that follows names the file in one line)."""
    import logging

    import tifffile

    log = logging.getLogger("tifffile")
    if not any(isinstance(h, logging.NullHandler) for h in log.handlers):
        log.addHandler(logging.NullHandler())
        log.propagate = False
    return tifffile


def _probe_tiff(path: Path) -> FrameInfo:
    tifffile = tifffile_quiet()

    try:
        with tifffile.TiffFile(path) as tf:
            page = tf.pages.first
            dtype = np.dtype(page.dtype) if page.dtype is not None else None
            shape = page.shape
            axes = page.axes
        meta = _tiff_exif(path)
    except Exception as e:  # tifffile raises many types on corrupt files
        raise InputError(f"corrupt TIFF ({e})", str(path)) from None
    if dtype not in (np.dtype(np.uint8), np.dtype(np.uint16)):
        raise InputError(f"TIFF sample type {dtype} is not supported (use 8- or 16-bit integers)", str(path))
    if "S" in axes and axes.index("S") == 0 and len(shape) == 3:  # planar RGB
        h, w, s = shape[1], shape[2], shape[0]
    elif len(shape) == 3:
        h, w, s = shape
    elif len(shape) == 2:
        h, w, s = shape[0], shape[1], 1
    else:
        raise InputError(f"TIFF layout {axes} {shape} is not supported", str(path))
    if s not in (1, 2, 3, 4):
        raise InputError(f"TIFF with {s} samples per pixel is not supported", str(path))
    channels = 1 if s in (1, 2) else 3
    orient = meta.get("orientation", 1)
    meta["orientation"] = orient
    w2, h2 = _orient_size(w, h, orient)
    return FrameInfo(path, "tiff", w2, h2, channels, dtype.itemsize * 8, orient, meta)
