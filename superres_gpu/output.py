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
import secrets
import struct
import threading
import zlib
from pathlib import Path

import numpy as np

from .discover import SOFTWARE, SOFTWARE_KEY
from .errors import OutputError
from .metadata import ascii_text, capture_datetime, exif_block, xmp_packet


class _DiscardOnError:
    """Context manager: an exception inside the block calls ``self.discard()``."""

    def __enter__(self):
        return self

    def __exit__(self, et, ev, tb):
        if et is not None:
            self.discard()
        return False


def _is_own_report(path: Path) -> bool:
    """True for a JSON report this tool wrote (its "tool" field names it)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(4096)
    except OSError:
        return False
    return head.lstrip().startswith(b"{") and b'"tool": "superres_gpu' in head


def _replaceable(path: Path) -> bool:
    """May an existing file in a burst folder be replaced?  Only what this tool wrote."""
    from .discover import is_own_output

    return is_own_output(path) or _is_own_report(path)


_commit_hooks: list = []


def committing() -> None:
    """The point of no return of a command's outputs, just before the first
    rename of a commit (and before ``superres cull`` renames frames): the
    hooks this thread set with :func:`commit_hook` run (the CLI stops
    listening to Ctrl-C there, so that an interruption never leaves half of a
    commit, nor reports no output where there is some)."""
    me = threading.get_ident()
    for thread, hook, _ in tuple(_commit_hooks):
        if thread == me:
            hook()


def committed() -> None:
    """A command's outputs are all in place (the end of a commit, or of the
    renames of ``superres cull``): this thread's ``after`` hooks of
    :func:`commit_hook` run (the CLI then stops at once on a signal)."""
    me = threading.get_ident()
    for thread, _, after in tuple(_commit_hooks):
        if thread == me and after is not None:
            after()


class commit_hook:
    """Within the block, ``hook()`` runs at each :func:`committing` of this
    thread, and ``after()`` at each :func:`committed`."""

    def __init__(self, hook, after=None):
        self.entry = (threading.get_ident(), hook, after)

    def __enter__(self):
        _commit_hooks.append(self.entry)
        return self

    def __exit__(self, *exc):
        _commit_hooks.remove(self.entry)
        return False


_STALE = None  # compiled on first use: .superres-TAG-PID-TOKEN.partial


_TAG = None


def _host_tag() -> str:
    """Eight hex digits naming, in temporary names, where their process ids
    mean something: this machine (its name), this boot and this process-id
    namespace (a container sharing the machine's name counts its processes
    apart); a shared folder may hold another's."""
    global _TAG
    if _TAG is None:
        import socket

        parts = [socket.gethostname()]
        try:
            with open("/proc/sys/kernel/random/boot_id") as fh:
                parts.append(fh.read().strip())
        except OSError:
            pass
        try:
            parts.append(str(os.stat("/proc/self/ns/pid").st_ino))
        except OSError:
            pass
        _TAG = f"{zlib.crc32(chr(0).join(parts).encode('utf-8', 'replace')) & 0xFFFFFFFF:08x}"
    return _TAG


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # POSIX only: signal 0 checks that the process exists
    except ProcessLookupError:
        return False
    except OSError:  # it exists under another user, or cannot be asked: kept
        return True
    return True


def remove_stale_temporaries(folder) -> list[Path]:
    """Remove the temporary outputs in ``folder`` that a ``superres`` process
    of this machine left when it was killed outright (SIGKILL, out of memory,
    a power cut), where no clean-up could run: those whose process is gone.
    Another machine's (a shared folder), a live process's and the backups of
    replaced outputs (``*.old.partial``) are left alone.  Returns the removed."""
    global _STALE
    if os.name != "posix":  # no cheap check that a process exists
        return []
    import re

    if _STALE is None:
        _STALE = re.compile(r"\.superres-([0-9a-f]{8})-([0-9]+)-[0-9a-f]{12}\.partial")
    host, removed = _host_tag(), []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        m = _STALE.fullmatch(entry.name)
        if m is None or m.group(1) != host or int(m.group(2)) == os.getpid() or _process_alive(int(m.group(2))):
            continue
        try:
            os.unlink(entry.path)
            removed.append(Path(entry.path))
        except OSError:
            pass
    return removed


class AtomicOutput(_DiscardOnError):
    """An output path written through a temporary file in the same folder.

    The temporary file is created at construction, which proves early that
    the folder is writable; with ``owner`` (a list) the output is appended
    to it before the file exists, so an interruption at any moment leaves
    no file its owner would not discard.  ``commit()`` renames it over the final path;
    ``discard()`` (also on any exception inside a ``with`` block) removes it,
    so no partial output is ever left behind.

    A killed process (SIGKILL, out of memory) cannot remove its temporary
    file; its name holds the machine and the process, and the next output
    written to that folder removes it (:func:`remove_stale_temporaries`).

    ``protect`` lists inputs that are never replaced, even with
    ``overwrite``; ``protect_dirs`` lists the burst's folders, where only a
    file this tool wrote may be replaced.  The temporary name does not grow
    with the output's name, so any name the file system takes is accepted;
    the final file's mode follows the umask.
    """

    def __init__(self, path: str | os.PathLike, overwrite: bool = False, protect: list[Path] = (),
                 protect_dirs: list[Path] = (), owner: list | None = None):
        self.path = Path(path)
        if self.path.is_dir():
            raise OutputError("is a folder; give a file name", str(self.path))
        if self.path.exists() or self.path.is_symlink():
            for p in protect:
                try:
                    if self.path.samefile(p):
                        raise OutputError("would overwrite an input", str(self.path))
                except FileNotFoundError:
                    pass
            if not overwrite:
                raise OutputError("already exists (use --overwrite to replace it)", str(self.path))
            if not self.path.is_file():
                raise OutputError("exists and is not a regular file; it is not replaced", str(self.path))
            folder = self.path.resolve().parent
            for d in protect_dirs:
                try:
                    inside = folder.samefile(d)
                except OSError:
                    inside = False
                if inside and not _replaceable(self.path):
                    raise OutputError(
                        "is in the burst's folder and was not written by superres; it is never replaced",
                        str(self.path),
                    )
        parent = self.path.parent if str(self.path.parent) else Path(".")
        if not parent.is_dir():
            raise OutputError("folder does not exist", str(parent))
        # the temporary file's name is known, and this output handed to ``owner``, before the file
        # exists: a signal at any point leaves nothing that discard() would not remove
        self.done = self.committed = False
        self.tmp = None
        if owner is not None:
            owner.append(self)
        remove_stale_temporaries(parent)
        stem = f".superres-{_host_tag()}-{os.getpid()}"
        for _ in range(100):
            name = parent / f"{stem}-{secrets.token_hex(6)}.partial"
            self.tmp = name
            try:
                fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies
            except FileExistsError:
                self.tmp = None  # not ours
                continue
            except OSError as e:
                self.tmp, self.done = None, True
                raise OutputError(f"cannot write here ({e.strerror})", str(self.path)) from None
            os.close(fd)
            break
        else:
            self.done = True
            raise OutputError("cannot find a free temporary name here", str(self.path))

    def write_bytes(self, data: bytes) -> None:
        """Fill the temporary file (flushed to disk, so a full disk shows here, naming the output)."""
        try:
            with _open_tmp(self.tmp) as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as e:
            self.discard()
            raise OutputError(f"cannot write ({e.strerror or e})", str(self.path)) from None

    def write_text(self, text: str) -> None:
        # a file name that is not UTF-8 (its bytes held as surrogates) is written back as those bytes
        self.write_bytes(text.encode("utf-8", "surrogateescape"))

    def commit(self, last: bool = True) -> Path:
        """Rename the temporary file over the final path; ``last``: no other
        output of the command follows (see :func:`committed`)."""
        committing()
        try:
            os.replace(self.tmp, self.path)
        except OSError as e:
            self.discard()
            raise OutputError(f"cannot write ({e.strerror})", str(self.path)) from None
        self.done = self.committed = True
        if last:
            committed()
        return self.path

    def discard(self) -> None:
        if not self.done:
            self.done = True
            if self.tmp is not None:
                try:
                    self.tmp.unlink()
                except FileNotFoundError:
                    pass


def _open_tmp(path: Path):
    return open(path, "wb")


def _same_place(a: Path, b: Path) -> bool:
    """Whether two paths name the same file, existing or not: the same name
    in the same folder once the folders' links are followed (two outputs of
    a run through a linked folder and its target are one file)."""
    if os.path.normpath(Path(a).absolute()) == os.path.normpath(Path(b).absolute()):
        return True
    try:
        return Path(a).name == Path(b).name and Path(a).absolute().parent.resolve() == \
            Path(b).absolute().parent.resolve()
    except (OSError, RuntimeError):  # a folder that cannot be resolved: only the spelling counts
        return False


class OutputSet(_DiscardOnError):
    """All outputs of one run: claimed up front, committed or discarded together.

    Use as a context manager: an exception inside discards every claimed
    output that was not committed.  ``commit`` is all or nothing: a file
    that an output replaces is set aside first and put back if a later
    output cannot be committed.
    """

    def __init__(self, overwrite: bool = False, protect: list[Path] = (), protect_dirs: list[Path] = ()):
        self.overwrite = overwrite
        self.protect = list(protect)
        self.protect_dirs = list(protect_dirs)
        self.items: list[AtomicOutput] = []

    def claim(self, path, option: str = "") -> AtomicOutput | None:
        """Claim ``path`` (None: nothing to claim, returns None); ``option``
        names it in the error when two outputs are the same file."""
        if not path:
            return None
        target = Path(path).absolute()
        for other in self.items:
            if _same_place(other.path, target) or (
                target.exists() and other.path.exists() and target.samefile(other.path)
            ):
                what = f"{option} " if option else ""
                raise OutputError(f"{what}names a file that is already another output of this run", str(path))
        # the output joins self.items before its temporary file exists (see AtomicOutput)
        return AtomicOutput(path, overwrite=self.overwrite, protect=self.protect, protect_dirs=self.protect_dirs,
                            owner=self.items)

    def commit(self) -> None:
        committing()
        done: list[tuple[AtomicOutput, Path | None]] = []
        try:
            for out in self.items:
                backup = None
                if out.path.exists():
                    backup = out.tmp.with_name(out.tmp.name[: -len(".partial")] + ".old.partial")
                    os.replace(out.path, backup)
                done.append((out, backup))
                out.commit(last=False)
        except BaseException:
            for out, backup in reversed(done):
                if out.committed:
                    try:
                        out.path.unlink()
                    except OSError:
                        pass
                if backup is not None:
                    try:
                        os.replace(backup, out.path)
                    except OSError:
                        pass
            self.discard()
            raise
        for _, backup in done:
            if backup is not None:
                try:
                    backup.unlink()
                except OSError:
                    pass
        committed()

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
    # baseline TIFF text tags are 7-bit ASCII: other text is carried by the XMP packet alone
    for tag, key in ((271, "make"), (272, "model")):
        text = ascii_text(exif.get(key))
        if text is not None:
            extratags.append((tag, "s", 0, text, True))
    if description is not None:
        description = description.encode("ascii", "backslashreplace").decode("ascii")
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
        with open(out.tmp, "rb+") as fh:  # a full disk shows now, not after the rename
            os.fsync(fh.fileno())
    except OSError as e:
        out.discard()
        raise OutputError(f"cannot write ({e.strerror or e})", str(out.path)) from None
    except BaseException:
        out.discard()
        raise


def _png_chunk(ctype: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + ctype + body + struct.pack(">I", zlib.crc32(ctype + body) & 0xFFFFFFFF)


def encode_png(image: np.ndarray, exif: dict | None = None) -> bytes:
    """PNG bytes of an RGB/grey uint8/uint16 image with a Software tEXt chunk;
    with ``exif`` (the reference's capture metadata), also an ``eXIf`` chunk
    (:func:`~superres_gpu.metadata.exif_block`) and the XMP packet the TIFF
    output carries, in an iTXt chunk (UTF-8: any text), both before the image
    data as the PNG specification asks."""
    from .decode import cv2_quiet

    cv2 = cv2_quiet()
    arr = image[..., ::-1] if image.ndim == 3 else image
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(arr))
    if not ok:
        raise ValueError("PNG encoding failed")
    data = buf.tobytes()
    chunks = _png_chunk(b"tEXt", SOFTWARE_KEY + b"\x00" + SOFTWARE.encode("ascii"))
    if exif is not None:
        chunks += _png_chunk(b"eXIf", exif_block(exif, SOFTWARE))
        # iTXt: keyword, NUL, compression flag and method (none), empty language tag and translated keyword
        chunks += _png_chunk(b"iTXt", b"XML:com.adobe.xmp\x00\x00\x00\x00\x00" + xmp_packet(exif, SOFTWARE))
    ihdr_end = 8 + 12 + 13  # signature + IHDR chunk
    return data[:ihdr_end] + chunks + data[ihdr_end:]


def write_image(out: AtomicOutput, image: np.ndarray, fmt: str, exif: dict | None = None,
                description: str | None = None, compression: str | None = None) -> None:
    """Write the merged result to ``out``'s temporary file in format ``fmt``
    (one of :data:`superres_gpu.options.FORMATS`; ``tiff32f`` expects float32)."""
    if fmt == "png16":
        try:
            out.write_bytes(encode_png(image, exif=exif or {}))  # a full disk names the output
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
        out.write_bytes(data)
    return out.commit()


def write_text(path: str | os.PathLike, text: str, overwrite: bool = True) -> Path:
    """Write a text file (the JSON report) atomically."""
    out = AtomicOutput(path, overwrite=overwrite)
    with out:
        out.write_text(text)
    return out.commit()
