"""Frame input and output.

* :func:`list_inputs` turns folders and files into the burst, in name order.
* :func:`probe` reads a frame's header (size, channels, bit depth, EXIF)
  without decoding its pixels, so a whole burst is validated in moments.
* :func:`read_frame` decodes one frame to an RGB (or grey) uint8/uint16 array
  with the EXIF orientation applied.
* :func:`write_tiff` writes the 16-bit result atomically through
  :class:`AtomicOutput`, with the reference's capture metadata.

Inputs are only ever opened for reading.
"""

from __future__ import annotations

import os
import struct
import tempfile
import zlib
from dataclasses import dataclass, field
from datetime import datetime
from fractions import Fraction
from pathlib import Path

import numpy as np

from . import __version__
from .errors import InputError, OutputError
from .exif import jpeg_exif_block, jpeg_segments, parse_tiff_exif, png_exif_block

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".tif", ".tiff"}
SKIP_SUFFIX = ".not_sharp_enough"
MASK_NAME = "mask.png"
SOFTWARE = f"superres_gpu {__version__}"
_SOFTWARE_KEY = b"Software"
_PROBE_BYTES = 512 * 1024


@dataclass
class FrameInfo:
    """What a frame's header says, after EXIF orientation."""

    path: Path
    format: str  # "jpeg" | "png" | "tiff"
    width: int
    height: int
    channels: int  # 1 (grey) or 3 (RGB); an alpha channel is dropped
    bits: int  # 8 or 16
    orientation: int = 1
    exif: dict = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, ...]:
        if self.channels == 1:
            return (self.height, self.width)
        return (self.height, self.width, self.channels)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.uint16 if self.bits == 16 else np.uint8)

    @property
    def max_value(self) -> int:
        return 65535 if self.bits == 16 else 255

    def describe(self) -> str:
        kind = "grey" if self.channels == 1 else "RGB"
        return f"{self.width}x{self.height} {self.bits}-bit {kind}"


# --------------------------------------------------------------------------
# Finding the burst
# --------------------------------------------------------------------------


def _is_image_name(p: Path) -> bool:
    return p.suffix.lower() in IMAGE_EXTS


def list_inputs(inputs: list[str | os.PathLike]) -> list[Path]:
    """Expand folders and files into the list of frames, in name order.

    A folder contributes every image in it (by extension, not recursive),
    skipping hidden files, files ending in ``.not_sharp_enough``, ``mask.png``
    and files this tool wrote.  Files named explicitly are taken as given
    (but must exist).
    """
    frames: list[Path] = []
    seen: set = set()
    for item in inputs:
        p = Path(item)
        if not p.exists():
            raise InputError("no such file or folder", str(p))
        if p.is_dir():
            names = sorted(q for q in p.iterdir() if q.is_file())
            for q in names:
                if q.name.startswith(".") or q.name.endswith(SKIP_SUFFIX):
                    continue
                if q.name.lower() == MASK_NAME or not _is_image_name(q):
                    continue
                if is_own_output(q):
                    continue
                if _key(q) not in seen:
                    seen.add(_key(q))
                    frames.append(q)
        else:
            if p.name.endswith(SKIP_SUFFIX):
                raise InputError(
                    f"file is marked '{SKIP_SUFFIX}'; rename it to use it", str(p)
                )
            if _key(p) not in seen:
                seen.add(_key(p))
                frames.append(p)
    return frames


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
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return _png_text(head, _SOFTWARE_KEY).startswith(b"superres_gpu")
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return b"superres_gpu" in head
    return False


# --------------------------------------------------------------------------
# Header probing
# --------------------------------------------------------------------------


def _orient_size(w: int, h: int, orientation: int) -> tuple[int, int]:
    return (h, w) if orientation in (5, 6, 7, 8) else (w, h)


def probe(path: str | os.PathLike) -> FrameInfo:
    """Read a frame's header without decoding pixels; raise InputError if bad."""
    path = Path(path)
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
    if head[:3] == b"\xff\xd8\xff":
        return _probe_jpeg(path, head, size)
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return _probe_png(path, head)
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return _probe_tiff(path)
    raise InputError("not a JPEG, PNG or TIFF image", str(path))


def _probe_jpeg(path: Path, head: bytes, size: int) -> FrameInfo:
    data = head
    sof = _jpeg_sof(data)
    if sof is None and size > len(head):
        data = path.read_bytes()
        sof = _jpeg_sof(data)
    if sof is None:
        raise InputError("corrupt JPEG: no frame header found", str(path))
    precision, h, w, ncomp = sof
    if w == 0 or h == 0:
        raise InputError("corrupt JPEG: zero image size", str(path))
    exif = parse_tiff_exif(jpeg_exif_block(data) or b"")
    orient = exif.get("orientation", 1)
    w, h = _orient_size(w, h, orient)
    return FrameInfo(path, "jpeg", w, h, 1 if ncomp == 1 else 3, 8, orient, exif)


def _jpeg_sof(data: bytes):
    """(precision, height, width, components) from a JPEG's frame header, or None."""
    for marker, pos, _ in jpeg_segments(data):
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            if pos + 10 > len(data):
                return None
            return struct.unpack(">BHHB", data[pos + 4 : pos + 10])
    return None


def check_jpeg_complete(data: bytes, path) -> None:
    """Raise InputError when a JPEG's entropy-coded data ends before its end
    marker (a truncated file: decoders would silently fill it with grey)."""
    sos = data.find(b"\xff\xda")
    if sos < 0 or data.find(b"\xff\xd9", sos) < 0:
        raise InputError("truncated JPEG: the image data ends early", str(path))


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


def _probe_tiff(path: Path) -> FrameInfo:
    import tifffile

    try:
        with tifffile.TiffFile(path) as tf:
            page = tf.pages.first
            dtype = np.dtype(page.dtype) if page.dtype is not None else None
            shape = page.shape
            axes = page.axes
            tags = page.tags
            meta = {}
            for code, name in ((271, "make"), (272, "model"), (306, "datetime")):
                if code in tags and isinstance(tags[code].value, str):
                    meta[name] = tags[code].value.strip()
            orient = int(tags[274].value) if 274 in tags else 1
            if 34665 in tags and isinstance(tags[34665].value, dict):
                ex = tags[34665].value
                for key, name in (
                    ("ExposureTime", "exposure_time"),
                    ("FNumber", "f_number"),
                    ("ISOSpeedRatings", "iso"),
                    ("DateTimeOriginal", "datetime_original"),
                    ("FocalLength", "focal_length"),
                ):
                    if key in ex:
                        v = ex[key]
                        if isinstance(v, tuple) and len(v) == 2 and v[1]:
                            v = Fraction(v[0], v[1])
                        meta[name] = v
    except Exception as e:  # tifffile raises many types on corrupt files
        raise InputError(f"corrupt TIFF ({e})", str(path)) from None
    if dtype not in (np.dtype(np.uint8), np.dtype(np.uint16)):
        raise InputError(
            f"TIFF sample type {dtype} is not supported (use 8- or 16-bit integers)", str(path)
        )
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
    orient = orient if orient in range(1, 9) else 1
    w2, h2 = _orient_size(w, h, orient)
    meta["orientation"] = orient
    return FrameInfo(path, "tiff", w2, h2, channels, dtype.itemsize * 8, orient, meta)


# --------------------------------------------------------------------------
# Decoding
# --------------------------------------------------------------------------

_CV2_QUIET = False


def _cv2():
    global _CV2_QUIET
    import cv2

    if not _CV2_QUIET:
        try:
            cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
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


def read_frame(info: FrameInfo | str | os.PathLike) -> np.ndarray:
    """Decode a frame: (H, W) grey or (H, W, 3) RGB, uint8 or uint16, upright."""
    if not isinstance(info, FrameInfo):
        info = probe(info)
    path = info.path
    try:
        data = path.read_bytes()
    except OSError as e:
        raise InputError(f"cannot read file ({e.strerror})", str(path)) from None
    if info.format == "tiff":
        img = _decode_tiff(path)
    else:
        if info.format == "jpeg":
            check_jpeg_complete(data, path)
        cv2 = _cv2()
        flags = cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR | cv2.IMREAD_IGNORE_ORIENTATION
        img = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
        if img is None:
            kind = "JPEG" if info.format == "jpeg" else "PNG"
            raise InputError(f"corrupt or truncated {kind}: cannot decode", str(path))
        if img.ndim == 3:
            img = img[..., 2::-1] if img.shape[2] >= 3 else img[..., 0]
    img = apply_orientation(np.ascontiguousarray(img), info.orientation)
    if img.dtype not in (np.uint8, np.uint16):
        raise InputError(f"sample type {img.dtype} is not supported", str(path))
    if img.ndim == 3 and info.channels == 1:
        img = img[..., 0]
    if img.shape != info.shape:
        raise InputError(
            f"decoded size {img.shape[1]}x{img.shape[0]} differs from its header", str(path)
        )
    return np.ascontiguousarray(img)


def _decode_tiff(path: Path) -> np.ndarray:
    import tifffile

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
    cv2 = _cv2()
    data = path.read_bytes()
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise InputError("corrupt mask image: cannot decode", str(path))
    img = apply_orientation(img, info.orientation)
    if img.shape[:2] != tuple(shape):
        raise InputError(
            f"mask is {img.shape[1]}x{img.shape[0]} but the frames are {shape[1]}x{shape[0]}",
            str(path),
        )
    img = img.astype(np.float32) / (65535.0 if img.dtype == np.uint16 else 255.0)
    if img.ndim == 3 and img.shape[2] == 4:
        return img[..., 3] > 0
    if img.ndim == 3 and img.shape[2] == 2:
        return img[..., 1] > 0
    if img.ndim == 3:
        b, g, r = img[..., 0], img[..., 1], img[..., 2]
        return (r >= 0.5) & (g < 0.5 * r) & (b < 0.5 * r)
    return img > 0


# --------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------


class AtomicOutput:
    """An output path written through a temporary file in the same folder.

    The temporary file is created at construction, which proves early that
    the folder is writable.  ``commit()`` renames it over the final path;
    ``discard()`` (also on any exception inside a ``with`` block) removes it,
    so no partial output is ever left behind.
    """

    def __init__(self, path: str | os.PathLike, overwrite: bool = False, protect: list[Path] = ()):
        self.path = Path(path)
        if self.path.is_dir():
            raise OutputError("is a folder; give a file name", str(self.path))
        if self.path.exists():
            for p in protect:
                try:
                    if self.path.samefile(p):
                        raise OutputError("would overwrite an input frame", str(self.path))
                except FileNotFoundError:
                    pass
            if not overwrite:
                raise OutputError("already exists (use --overwrite to replace it)", str(self.path))
        parent = self.path.parent if str(self.path.parent) else Path(".")
        if not parent.is_dir():
            raise OutputError("folder does not exist", str(parent))
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".partial", dir=parent)
        except OSError as e:
            raise OutputError(f"cannot write here ({e.strerror})", str(self.path)) from None
        os.close(fd)
        self.tmp = Path(tmp)
        self.done = False

    def commit(self) -> Path:
        try:
            os.replace(self.tmp, self.path)
        except OSError as e:
            self.discard()
            raise OutputError(f"cannot write ({e.strerror})", str(self.path)) from None
        self.done = True
        return self.path

    def discard(self) -> None:
        if not self.done:
            try:
                self.tmp.unlink()
            except FileNotFoundError:
                pass
            self.done = True

    def __enter__(self):
        return self

    def __exit__(self, et, ev, tb):
        if et is not None:
            self.discard()
        return False


def _xmp_packet(exif: dict) -> bytes:
    def frac(v):
        if isinstance(v, Fraction):
            return f"{v.numerator}/{v.denominator}"
        return str(v)

    def xml_escape(s: str) -> str:
        return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")

    attrs = []
    if "make" in exif:
        attrs.append(f'tiff:Make="{xml_escape(str(exif["make"]))}"')
    if "model" in exif:
        attrs.append(f'tiff:Model="{xml_escape(str(exif["model"]))}"')
    dt = exif.get("datetime_original") or exif.get("datetime")
    if isinstance(dt, str):
        try:
            iso = datetime.strptime(dt, "%Y:%m:%d %H:%M:%S").isoformat()
            attrs.append(f'exif:DateTimeOriginal="{iso}"')
        except ValueError:
            pass
    if "exposure_time" in exif:
        attrs.append(f'exif:ExposureTime="{frac(exif["exposure_time"])}"')
    if "f_number" in exif:
        attrs.append(f'exif:FNumber="{frac(exif["f_number"])}"')
    if "focal_length" in exif:
        attrs.append(f'exif:FocalLength="{frac(exif["focal_length"])}"')
    iso_body = ""
    if "iso" in exif:
        iso_body = (
            f"<exif:ISOSpeedRatings><rdf:Seq><rdf:li>{int(exif['iso'])}</rdf:li>"
            "</rdf:Seq></exif:ISOSpeedRatings>"
        )
    attrs.append(f'xmp:CreatorTool="{SOFTWARE}"')
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


def write_tiff(
    out: AtomicOutput,
    image: np.ndarray,
    exif: dict | None = None,
    description: str | None = None,
    compression: str | None = None,
) -> Path:
    """Write a 16-bit grey or RGB TIFF to ``out``'s temporary file, then commit.

    Carries make, model and date as baseline TIFF tags, and those plus
    exposure time, f-number, focal length and ISO in an XMP packet (tag 700).
    """
    import tifffile

    exif = exif or {}
    if image.dtype != np.uint16 or image.ndim not in (2, 3):
        raise ValueError("write_tiff expects a (H, W) or (H, W, 3) uint16 array")
    extratags = []
    if isinstance(exif.get("make"), str):
        extratags.append((271, "s", 0, exif["make"], True))
    if isinstance(exif.get("model"), str):
        extratags.append((272, "s", 0, exif["model"], True))
    xmp = _xmp_packet(exif)
    extratags.append((700, "B", len(xmp), xmp, True))
    dt = exif.get("datetime_original") or exif.get("datetime")
    try:
        when = datetime.strptime(dt, "%Y:%m:%d %H:%M:%S") if isinstance(dt, str) else None
    except ValueError:
        when = None
    try:
        tifffile.imwrite(
            out.tmp,
            image,
            photometric="rgb" if image.ndim == 3 else "minisblack",
            software=SOFTWARE,
            datetime=when,
            description=description,
            metadata=None,
            compression=compression,
            extratags=extratags,
        )
    except OSError as e:
        out.discard()
        raise OutputError(f"cannot write ({e.strerror or e})", str(out.path)) from None
    except BaseException:
        out.discard()
        raise
    return out.commit()


def _png_text(data: bytes, key: bytes) -> bytes:
    pos = 8
    while pos + 8 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        ctype = data[pos + 4 : pos + 8]
        if ctype == b"tEXt":
            body = data[pos + 8 : pos + 8 + length]
            k, _, v = body.partition(b"\x00")
            if k == key:
                return v
        if ctype in (b"IDAT", b"IEND"):
            break
        pos += 12 + length
    return b""


def encode_png(image: np.ndarray) -> bytes:
    """PNG bytes of an RGB/grey uint8/uint16 image with a Software tEXt chunk."""
    cv2 = _cv2()
    arr = image[..., ::-1] if image.ndim == 3 else image
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(arr))
    if not ok:
        raise ValueError("PNG encoding failed")
    data = buf.tobytes()
    body = _SOFTWARE_KEY + b"\x00" + SOFTWARE.encode("ascii")
    chunk = struct.pack(">I", len(body)) + b"tEXt" + body
    chunk += struct.pack(">I", zlib.crc32(b"tEXt" + body) & 0xFFFFFFFF)
    ihdr_end = 8 + 12 + 13  # signature + IHDR chunk
    return data[:ihdr_end] + chunk + data[ihdr_end:]


def write_png(path: str | os.PathLike, image: np.ndarray, overwrite: bool = True) -> Path:
    """Write a PNG atomically (tagged as this tool's output)."""
    data = encode_png(image)
    out = AtomicOutput(path, overwrite=overwrite)
    with out:
        out.tmp.write_bytes(data)
    return out.commit()


def write_text(path: str | os.PathLike, text: str, overwrite: bool = True) -> Path:
    """Write a text file (the JSON report) atomically."""
    out = AtomicOutput(path, overwrite=overwrite)
    with out:
        out.tmp.write_text(text, encoding="utf-8")
    return out.commit()
