"""Writing: every output goes through a temporary file and is renamed at the end.

* :class:`AtomicOutput` is one output path, claimed (its temporary file
  created) before any heavy work, then committed or discarded.
* :class:`OutputSet` holds all of a run's outputs (image, report, pictures) so
  that they are claimed together and committed, or rolled back, together.
* :func:`write_tiff` writes the result (16-bit, or 32-bit float) with the
  reference's capture metadata; :func:`encode_png` makes this tool's PNG
  pictures; :func:`write_image` writes the result in the run's output format.
"""

from __future__ import annotations

import os
import struct
import tempfile
import zlib
from pathlib import Path

import numpy as np

from .discover import SOFTWARE, SOFTWARE_KEY
from .errors import OutputError
from .metadata import capture_datetime, xmp_packet


class _DiscardOnError:
    """Context manager: an exception inside the block calls ``self.discard()``."""

    def __enter__(self):
        return self

    def __exit__(self, et, ev, tb):
        if et is not None:
            self.discard()
        return False


class AtomicOutput(_DiscardOnError):
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


class OutputSet(_DiscardOnError):
    """All outputs of one run: claimed up front, committed or discarded together.

    Use as a context manager: an exception inside discards every claimed
    output that was not committed.
    """

    def __init__(self, overwrite: bool = False, protect: list[Path] = ()):
        self.overwrite = overwrite
        self.protect = list(protect)
        self.items: list[AtomicOutput] = []

    def claim(self, path) -> AtomicOutput | None:
        """Claim ``path`` (None: nothing to claim, returns None)."""
        if not path:
            return None
        out = AtomicOutput(path, overwrite=self.overwrite, protect=self.protect)
        self.items.append(out)
        return out

    def commit(self) -> None:
        for out in self.items:
            out.commit()

    def discard(self) -> None:
        for out in self.items:
            out.discard()


def write_tiff(
    out: AtomicOutput,
    image: np.ndarray,
    exif: dict | None = None,
    description: str | None = None,
    compression: str | None = None,
) -> None:
    """Write a 16-bit (or 32-bit float) grey or RGB TIFF to ``out``'s temporary
    file (commit it after).

    Carries make, model and date as baseline TIFF tags, and those plus
    exposure time, f-number, focal length and ISO in an XMP packet (tag 700).
    """
    import tifffile

    exif = exif or {}
    if image.dtype not in (np.uint16, np.float32) or image.ndim not in (2, 3):
        raise ValueError("write_tiff expects a (H, W) or (H, W, 3) uint16 or float32 array")
    extratags = []
    if isinstance(exif.get("make"), str):
        extratags.append((271, "s", 0, exif["make"], True))
    if isinstance(exif.get("model"), str):
        extratags.append((272, "s", 0, exif["model"], True))
    xmp = xmp_packet(exif, SOFTWARE)
    extratags.append((700, "B", len(xmp), xmp, True))
    try:
        tifffile.imwrite(
            out.tmp,
            image,
            photometric="rgb" if image.ndim == 3 else "minisblack",
            software=SOFTWARE,
            datetime=capture_datetime(exif),
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


def encode_png(image: np.ndarray) -> bytes:
    """PNG bytes of an RGB/grey uint8/uint16 image with a Software tEXt chunk."""
    from .decode import cv2_quiet

    cv2 = cv2_quiet()
    arr = image[..., ::-1] if image.ndim == 3 else image
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(arr))
    if not ok:
        raise ValueError("PNG encoding failed")
    data = buf.tobytes()
    body = SOFTWARE_KEY + b"\x00" + SOFTWARE.encode("ascii")
    chunk = struct.pack(">I", len(body)) + b"tEXt" + body
    chunk += struct.pack(">I", zlib.crc32(b"tEXt" + body) & 0xFFFFFFFF)
    ihdr_end = 8 + 12 + 13  # signature + IHDR chunk
    return data[:ihdr_end] + chunk + data[ihdr_end:]


def write_image(out: AtomicOutput, image: np.ndarray, fmt: str, exif: dict | None = None,
                description: str | None = None, compression: str | None = None) -> None:
    """Write the merged result to ``out``'s temporary file in format ``fmt``
    (one of :data:`superres_gpu.options.FORMATS`; ``tiff32f`` expects float32)."""
    if fmt == "png16":
        try:
            out.tmp.write_bytes(encode_png(image))
        except BaseException:
            out.discard()
            raise
    else:
        write_tiff(out, image, exif=exif, description=description, compression=compression)


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
