"""The CLI against a battery of bad and unusual inputs.

Every case builds its own files in a fresh folder and runs ``superres`` on
them.  A case that must fail asserts: the exit code, exactly one line on
stderr that names the file (or option) and the problem, no traceback, nothing
left behind (no output, no temporary file) and every input byte-identical.
A case that must succeed asserts the promised outputs exist, with nothing
else created and the inputs untouched.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import struct
import subprocess
import sys
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from exif_util import jpeg_with_exif, tiff_exif, write_image

from superres_gpu import cli
from superres_gpu.metadata import jpeg_segments

ROOT = Path(__file__).resolve().parent.parent
FAST = ["--backend", "numpy", "--scale", "1", "--no-sharpen", "--quiet"]


def snapshot(root: Path) -> dict:
    """Every file under ``root`` (FIFOs included by name) with its content hash."""
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_symlink() or not p.exists():
            out[str(p.relative_to(root))] = "link"
        elif p.is_file():
            out[str(p.relative_to(root))] = hashlib.sha256(p.read_bytes()).hexdigest()
        elif not p.is_dir():
            out[str(p.relative_to(root))] = "special"
    return out


@pytest.fixture(scope="module")
def frames():
    """Three frames of the small synthetic burst, as JPEG bytes and pixels."""
    from superres_gpu.synth import recipe_burst

    b = recipe_burst("test-small")
    return b.encoded[:4], [f for f in b.frames[:4]]


def write_burst(folder: Path, frames, n: int = 3, names=None) -> list[Path]:
    enc, _ = frames
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        p = folder / (names[i] if names else f"f{i}.jpg")
        p.write_bytes(enc[i])
        paths.append(p)
    return paths


def png_bytes(img: np.ndarray) -> bytes:
    import cv2

    arr = img[..., ::-1] if img.ndim == 3 else img
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(arr))
    assert ok
    return buf.tobytes()


def png_header_claiming(w: int, h: int) -> bytes:
    """A small valid-looking PNG whose IHDR claims w x h (a decompression bomb)."""
    sig = b"\x89PNG\r\n\x1a\n"

    def chunk(t, body):
        return struct.pack(">I", len(body)) + t + body + struct.pack(">I", zlib.crc32(t + body) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    row = b"\x00" + b"\x00" * (3 * w)
    comp = zlib.compressobj(9)
    data = b"".join(comp.compress(row) for _ in range(min(h, 64))) + comp.flush()
    return sig + chunk(b"IHDR", ihdr) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


def jpeg_claiming(data: bytes, w: int, h: int) -> bytes:
    d = bytearray(data)
    for marker, pos, _ in jpeg_segments(data):
        if marker == 0xC0:
            d[pos + 5 : pos + 9] = struct.pack(">HH", h, w)
    return bytes(d)


def phone_jpeg(rgb: np.ndarray) -> bytes:
    """A JPEG with an EXIF thumbnail inside APP1 (its own SOS and EOI come first in the file)."""
    import cv2

    thumb = cv2.imencode(".jpg", np.ascontiguousarray(rgb[::8, ::8, ::-1]))[1].tobytes()
    exif = tiff_exif(make="Phone", model="X")
    return jpeg_with_exif(rgb, exif + thumb)


def entropy_damaged(data: bytes) -> bytes:
    """One changed byte in the entropy-coded data that libjpeg notices (a warning, not an error)."""
    from superres_gpu.decode import decode_jpeg
    from superres_gpu.errors import InputError

    sos = data.find(b"\xff\xda")
    for off in range(40, len(data) - sos - 4, 13):
        d = bytearray(data)
        d[sos + off] ^= 0x10
        try:
            decode_jpeg(bytes(d), "probe", grey=False)
        except InputError as e:
            if "Corrupt JPEG data" in str(e):
                return bytes(d)
    raise AssertionError("no single-byte change that libjpeg reports")


@dataclass
class Case:
    """One battery entry: ``build(tmp, frames)`` returns the arguments after ``superres``."""

    name: str
    build: object
    must_name: str | None = None  # text the error line must contain (a file or an option)
    rc: int = 1
    ok: bool = False  # the run must succeed
    created: tuple = ()  # files (relative to tmp) a successful run creates
    usage: bool = False  # an argparse usage error: the last line names the option
    problem: str | None = None  # words of the problem the line must contain
    extra: object = None  # an extra check of (tmp, stderr) after the run
    subprocess_run: bool = False
    timeout: float = 120.0
    mode: dict = field(default_factory=dict)


def _b(tmp, fr):
    return write_burst(tmp / "burst", fr)


def _run(*args):
    return ["run", *map(str, args)]


def case_list() -> list[Case]:
    C = []

    def add(name, build, **kw):
        C.append(Case(name, build, **kw))

    # --- what makes a burst -------------------------------------------------
    add("empty folder", lambda t, f: ((t / "burst").mkdir(), _run(t / "burst", "-o", t / "o.tif"))[1],
        must_name="burst", problem="no JPEG, PNG or TIFF")
    add("missing input", lambda t, f: _run(t / "nope", "-o", t / "o.tif"), must_name="nope", problem="no such")
    add("single frame", lambda t, f: _run(_b(t, f)[0], "-o", t / "o.tif"), must_name="f0.jpg",
        problem="only one frame")
    add("explicit skipped name", lambda t, f: (
        (t / "x.jpg.not_sharp_enough").write_bytes(f[0][0]), _b(t, f),
        _run(t / "x.jpg.not_sharp_enough", t / "burst" / "f0.jpg", "-o", t / "o.tif"))[2],
        must_name="not_sharp_enough")
    add("fifo named as a frame", lambda t, f: (_b(t, f), os.mkfifo(t / "pipe.jpg"),
                                                _run(t / "pipe.jpg", t / "burst" / "f0.jpg", "-o", t / "o.tif"))[2],
        must_name="pipe.jpg", problem="not a regular file", subprocess_run=True, timeout=60)
    add("fifo in the folder", lambda t, f: (_b(t, f), os.mkfifo(t / "burst" / "zz.jpg"),
                                             _run(t / "burst", "-o", t / "o.tif", *FAST))[2],
        must_name="zz.jpg", problem="not a regular file (a FIFO)", subprocess_run=True, timeout=60)
    add("dangling link in the folder", lambda t, f: (_b(t, f), os.symlink(t / "gone.jpg", t / "burst" / "f9.jpg"),
                                                      _run(t / "burst", "-o", t / "o.tif", *FAST))[2],
        must_name="f9.jpg", problem="link to a missing file")
    add("folder named like a frame in the folder is not a frame", lambda t, f: (
        _b(t, f), (t / "burst" / "sub.jpg").mkdir(), _run(t / "burst", "-o", t / "o.tif", *FAST))[2],
        ok=True, created=("o.tif",))
    add("dangling link named as a frame", lambda t, f: (_b(t, f), os.symlink(t / "gone.jpg", t / "l.jpg"),
                                                         _run(t / "l.jpg", t / "burst" / "f0.jpg", "-o", t / "o.tif"))[2],
        must_name="l.jpg", problem="no such")
    add("reference missing", lambda t, f: _run(_b(t, f)[0].parent, "-o", t / "o.tif", "--reference", t / "r.jpg"),
        must_name="r.jpg", problem="not found")
    add("reference not an image", lambda t, f: (_b(t, f), (t / "r.jpg").write_text("hello"),
                                                 _run(t / "burst", "-o", t / "o.tif", "--reference", t / "r.jpg"))[2],
        must_name="r.jpg", problem="not a JPEG")

    # --- damaged files ------------------------------------------------------
    def damaged(data_fn, name="f1.jpg"):
        def build(t, f):
            _b(t, f)
            p = t / "burst" / name
            p.write_bytes(data_fn(p.read_bytes() if p.exists() else b"", f))
            return _run(t / "burst", "-o", t / "o.tif", *FAST)
        return build

    add("empty file", damaged(lambda d, f: b""), must_name="f1.jpg", problem="empty")
    add("non-image named .jpg", damaged(lambda d, f: b"shopping list\n" * 20), must_name="f1.jpg",
        problem="not a JPEG")
    add("truncated JPEG", damaged(lambda d, f: d[: len(d) // 2]), must_name="f1.jpg", problem="truncated")
    add("truncated JPEG closed with an end marker", damaged(lambda d, f: d[: len(d) // 2] + b"\xff\xd9"),
        must_name="f1.jpg", problem="ends early")
    # cut, then closed with an end marker as repair tools do: the thumbnail's markers come first
    add("truncated phone JPEG (EXIF thumbnail first)", damaged(lambda d, f: phone_jpeg(f[1][1])[:-1500] + b"\xff\xd9"),
        must_name="f1.jpg", problem="ends early")
    add("JPEG cut at the end marker", damaged(lambda d, f: d[:-2]), must_name="f1.jpg", problem="JPEG")
    add("JPEG entropy data damaged", damaged(lambda d, f: entropy_damaged(d)), must_name="f1.jpg",
        problem="corrupt JPEG data")
    add("JPEG Huffman table damaged", damaged(lambda d, f: _dht_damaged(d)), must_name="f1.jpg",
        problem="JPEG")
    add("empty file whose name has two spaces", damaged(lambda d, f: b"", "two  spaces.jpg"), must_name="two  spaces.jpg",
        problem="empty")
    add("empty file whose name has a newline", damaged(lambda d, f: b"", "f\n1.jpg"), must_name="f\\n1.jpg",
        problem="empty")
    add("JPEG zero size", damaged(lambda d, f: jpeg_claiming(d, 0, 0)), must_name="f1.jpg", problem="zero")
    add("JPEG no frame header", damaged(lambda d, f: d[:2] + b"\xff\xd9"), must_name="f1.jpg")
    add("PNG truncated", damaged(lambda d, f: png_bytes(f[1][1])[:500], "f1.png"), must_name="f1.png")
    add("PNG bad header", damaged(lambda d, f: png_bytes(f[1][1])[:10], "f1.png"), must_name="f1.png")
    add("TIFF corrupt", damaged(lambda d, f: b"II*\x00" + b"\xff" * 64, "f1.tif"), must_name="f1.tif")

    # --- bombs ----------------------------------------------------------------
    def bombs(data_fn, names):
        def build(t, f):
            d = t / "burst"
            d.mkdir()
            for n in names:
                (d / n).write_bytes(data_fn(f))
            return _run(d, "-o", t / "o.tif")
        return build

    add("JPEG bomb 65000x65000", bombs(lambda f: jpeg_claiming(f[0][0], 65000, 65000), ["a.jpg", "b.jpg", "c.jpg"]),
        must_name="a.jpg", problem="MP")
    add("PNG bomb 20000x20000", bombs(lambda f: png_header_claiming(20000, 20000), ["a.png", "b.png"]),
        must_name="a.png", problem="MP")
    add("bomb over a raised limit: memory", lambda t, f: (
        bombs(lambda f: jpeg_claiming(f[0][0], 65000, 65000), ["a.jpg", "b.jpg"])(t, f)
        + ["--max-megapixels", "100000", "--scale", "4"]), must_name="a.jpg", problem="memory")
    add("frames too wide for the merge", bombs(lambda f: png_header_claiming(33000, 8), ["a.png", "b.png"]),
        must_name="a.png", problem="px a side")
    add("output too wide for the merge", lambda t, f: (
        bombs(lambda f: png_header_claiming(20000, 8), ["a.png", "b.png"])(t, f) + ["--scale", "2"]),
        must_name="a.png", problem="lower --scale")
    add("bad --max-megapixels", lambda t, f: _run(_b(t, f)[0].parent, "-o", t / "o.tif", "--max-megapixels", "0"),
        must_name="--max-megapixels", rc=2, usage=True)
    add("mask bomb", lambda t, f: (_b(t, f), (t / "m.png").write_bytes(png_header_claiming(20000, 20000)),
                                    _run(t / "burst", "-o", t / "o.tif", "--mask", t / "m.png"))[2],
        must_name="m.png")

    # --- the burst's rules ----------------------------------------------------
    def mixed(second):
        def build(t, f):
            d = t / "burst"
            d.mkdir()
            (d / "a.png").write_bytes(png_bytes(f[1][0]))
            (d / "b.png").write_bytes(second(f))
            return _run(d, "-o", t / "o.tif")
        return build

    add("mixed sizes", mixed(lambda f: png_bytes(f[1][1][:100])), must_name="b.png", problem="same size")
    add("mixed channels", mixed(lambda f: png_bytes(f[1][1][..., 0])), must_name="b.png", problem="grey")
    add("mixed bit depth", mixed(lambda f: png_bytes(f[1][1].astype(np.uint16) * 257)), must_name="b.png",
        problem="16-bit")

    def tiny(w, h):
        def build(t, f):
            d = t / "burst"
            d.mkdir()
            rng = np.random.default_rng(w * 100 + h)
            for i in range(3):
                (d / f"t{i}.png").write_bytes(png_bytes((rng.random((h, w, 3)) * 255).astype(np.uint8)))
            return _run(d, "-o", t / "o.tif")
        return build

    add("1x1 frames", tiny(1, 1), must_name="t0.png", problem="smaller than")
    add("3x2 frames", tiny(3, 2), must_name="t0.png", problem="smaller than")

    # --- masks ----------------------------------------------------------------
    add("mask of the wrong size", lambda t, f: (_b(t, f), (t / "m.png").write_bytes(
        png_bytes(np.zeros((10, 10, 3), np.uint8))), _run(t / "burst", "-o", t / "o.tif", "--mask", t / "m.png"))[2],
        must_name="m.png", problem="mask is 10x10")
    add("mask corrupt", lambda t, f: (_b(t, f), (t / "m.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40),
                                       _run(t / "burst", "-o", t / "o.tif", "--mask", t / "m.png"))[2],
        must_name="m.png")
    add("mask missing", lambda t, f: _run(_b(t, f)[0].parent, "-o", t / "o.tif", "--mask", t / "m.png"),
        must_name="m.png", problem="not found")

    # --- outputs ----------------------------------------------------------------
    add("output exists", lambda t, f: (_b(t, f), (t / "o.tif").write_bytes(b"precious"),
                                        _run(t / "burst", "-o", t / "o.tif"))[2],
        must_name="o.tif", problem="already exists")
    add("output folder missing", lambda t, f: _run(_b(t, f)[0].parent, "-o", t / "no" / "o.tif"), must_name="no")
    add("output is a folder", lambda t, f: (_b(t, f), (t / "o.tif").mkdir(), _run(t / "burst", "-o", t / "o.tif"))[2],
        must_name="o.tif", problem="folder")
    add("output named .jpg", lambda t, f: _run(_b(t, f)[0].parent, "-o", t / "burst" / "merged.jpg"),
        must_name="merged.jpg", problem=".tif")
    add("output over the mask", lambda t, f: (_b(t, f), write_image(t / "burst" / "mask.png",
                                                                     np.zeros((120, 160, 4), np.uint8)),
                                               _run(t / "burst", "-o", t / "o.tif", "--weights-png",
                                                    t / "burst" / "mask.png", "--overwrite"))[2],
        must_name="mask.png", problem="never replaced")
    add("output over a user's file in the burst folder", lambda t, f: (
        _b(t, f), (t / "burst" / "notes.txt").write_bytes(b"mine"),
        _run(t / "burst", "-o", t / "o.tif", "--report", t / "burst" / "notes.txt", "--overwrite"))[2],
        must_name="notes.txt", problem="never replaced")
    add("output over an explicit mask", lambda t, f: (
        _b(t, f), write_image(t / "m.png", np.zeros((120, 160, 4), np.uint8)),
        _run(t / "burst", "-o", t / "o.tif", "--mask", t / "m.png", "--weights-png", t / "m.png", "--overwrite"))[2],
        must_name="m.png", problem="would overwrite an input")
    add("report equal to the output", lambda t, f: _run(_b(t, f)[0].parent, "-o", t / "o.tif", "--report",
                                                         t / "o.tif"), must_name="o.tif", problem="--report")
    add("weights picture equal to the report", lambda t, f: _run(_b(t, f)[0].parent, "-o", t / "o.tif", "--report",
                                                                  t / "w.png", "--weights-png", t / "w.png"),
        must_name="w.png", problem="--weights-png")
    add("weights picture named .jpg", lambda t, f: _run(_b(t, f)[0].parent, "-o", t / "o.tif", "--weights-png",
                                                         t / "w.jpg"), must_name="w.jpg", problem=".png")
    add("comparison picture named .jpg", lambda t, f: _run(_b(t, f)[0].parent, "-o", t / "o.tif", "--compare",
                                                            t / "c.jpg"), must_name="c.jpg", problem=".png")
    add("comparison picture equal to the weights picture", lambda t, f: _run(
        _b(t, f)[0].parent, "-o", t / "o.tif", "--weights-png", t / "w.png", "--compare", t / "w.png"),
        must_name="w.png", problem="--compare")

    # --- options ----------------------------------------------------------------
    for bad in ("0", "5", "nan", "abc", "-1"):
        add(f"--scale {bad}", lambda t, f, bad=bad: _run(_b(t, f)[0].parent, "-o", t / "o.tif", "--scale", bad),
            must_name="--scale", rc=2, usage=True)
    add("--cull-threshold 2", lambda t, f: _run(_b(t, f)[0].parent, "-o", t / "o.tif", "--cull-threshold", "2"),
        must_name="--cull-threshold", rc=2, usage=True)

    # --- unusual inputs that must work ---------------------------------------
    add("non-ASCII reference name", lambda t, f: _run(
        write_burst(t / "burst", f, names=["IMG_été_1.jpg", "IMG_été_2.jpg", "IMG_été_3.jpg"])[0].parent,
        "-o", t / "o.tif", *FAST), ok=True, created=("o.tif",))
    add("non-ASCII folder and output name", lambda t, f: _run(write_burst(t / "rafale été", f)[0].parent,
                                                              "-o", t / "résultat.tif", *FAST),
        ok=True, created=("résultat.tif",))
    add("non-ASCII EXIF make and model, ISO as text", _exif_burst, ok=True, created=("o.tif",), extra=_check_xmp)
    add("names that look like rich markup", lambda t, f: ((t / "a[").mkdir(), _run(
        write_burst(t / "[red]burst[/]", f)[0].parent, "-o", t / "a[" / "]o.tif", *FAST[:-1]))[1],
        ok=True, created=("a[/]o.tif",))  # the summary (not --quiet) names the output "...a[/]o.tif" as it is
    add("240-character output name", lambda t, f: _run(_b(t, f)[0].parent, "-o", t / ("a" * 236 + ".tif"), *FAST),
        ok=True, created=("a" * 236 + ".tif",))
    add("report and picture in the burst folder, then again", _rerun_in_folder, ok=True,
        created=("burst/r.tif", "burst/r.json", "burst/w.png"))
    add("output mode follows the umask", lambda t, f: _run(_b(t, f)[0].parent, "-o", t / "o.tif", "--report",
                                                           t / "r.json", *FAST),
        ok=True, created=("o.tif", "r.json"), subprocess_run=True, mode={"umask": 0o027, "expect": 0o640})
    add("CMYK JPEG frames", lambda t, f: _pil_burst(t, f, "CMYK"), ok=True, created=("o.tif",))
    add("progressive JPEG frames", lambda t, f: _pil_burst(t, f, "RGB", progressive=True), ok=True,
        created=("o.tif",))
    add("JPEG quantisation table changed: decodes cleanly to another picture", lambda t, f: (
        write_burst(t / "burst", f), (t / "burst" / "f1.jpg").write_bytes(dqt_changed(f[0][1])),
        _run(t / "burst", "-o", t / "o.tif", "--report", t / "r.json", *FAST))[2], ok=True,
        created=("o.tif", "r.json"), extra=_check_dropped_f1)
    add("the reference decodes cleanly to another picture", lambda t, f: (
        write_burst(t / "burst", f), (t / "burst" / "f0.jpg").write_bytes(dqt_changed(f[0][0])),
        _run(t / "burst", "-o", t / "o.tif", *FAST))[2], must_name="f0.jpg", problem="reference damaged")
    add("trailing data after the end marker", damaged(lambda d, f: d + b"\x00" * 500, "f1.jpg"), ok=True,
        created=("o.tif",))

    # --- full disk, signals ------------------------------------------------------
    add("disk full writing the report", lambda t, f: ("disk-full", "r.json",
                                                      _run(_b(t, f)[0].parent, "-o", t / "o.tif", "--report",
                                                           t / "r.json", *FAST)),
        must_name="r.json", problem="No space left")
    add("disk full writing a PNG result", lambda t, f: ("disk-full", "o.png",
                                                        _run(_b(t, f)[0].parent, "-o", t / "o.png", *FAST)),
        must_name="o.png", problem="No space left")
    add("disk full writing the weights picture", lambda t, f: ("disk-full", "w.png",
                                                               _run(_b(t, f)[0].parent, "-o", t / "o.tif",
                                                                    "--weights-png", t / "w.png", "--report",
                                                                    t / "r.json", *FAST)),
        must_name="w.png", problem="No space left")
    for sig in ("SIGTERM", "SIGHUP", "SIGQUIT"):
        add(f"{sig} during a run", lambda t, f, sig=sig: ("signal", sig, _run(
            write_burst(t / "burst", f, n=4)[0].parent, "-o", t / "o.tif", "--report", t / "r.json",
            "--backend", "numpy", "--scale", "4", "--quiet")),
            must_name=sig, rc=128 + getattr(signal, sig), subprocess_run=True, problem="no output was written")
    # an impatient user: Ctrl-C again and again (every 3 ms for half a second) through the clean-up and the exit
    add("Ctrl-C again and again during a run", lambda t, f: ("signal", "SIGINT*150", _run(
        write_burst(t / "burst", f, n=4)[0].parent, "-o", t / "o.tif", "--report", t / "r.json",
        "--backend", "numpy", "--scale", "4", "--quiet")),
        must_name="interrupted", rc=130, subprocess_run=True, problem="no output was written")

    # --- demo and cull ----------------------------------------------------------
    add("demo --out an existing file", lambda t, f: ((t / "x").write_text("mine"), ["demo", "--out", str(t / "x")])[1],
        must_name="x", problem="not a folder")
    for n in ("0", "-3", "1"):
        add(f"demo --frames {n}", lambda t, f, n=n: ["demo", "--out", str(t / "d"), "--frames", n],
            must_name="--frames", rc=2, usage=True)
    add("demo --seed -5", lambda t, f: ["demo", "--out", str(t / "d"), "--seed", "-5"], must_name="--seed", rc=2,
        usage=True)
    add("batch --scheduler not an address", lambda t, f: (_b(t, f), ["batch", str(t / "burst"), "-o", str(t / "out"),
                                                                      "--scheduler", "notaurl"])[1],
        must_name="notaurl", problem="not a scheduler address")
    add("demo --out over the user's frames", lambda t, f: (write_burst(t / "d" / "burst", f, n=1,
                                                                       names=["frame_000.jpg"]),
                                                           (t / "d" / "burst" / "holiday.jpg").write_bytes(f[0][1]),
                                                           ["demo", "--out", str(t / "d"), "--overwrite"])[2],
        must_name="burst", problem="holiday.jpg")
    add("demo --out with an earlier result", lambda t, f: ((t / "d").mkdir(), (t / "d" / "result.tif").write_bytes(b"r"),
                                                           ["demo", "--out", str(t / "d")])[2],
        must_name="result.tif", problem="already exists")
    add("demo --out unwritable", lambda t, f: ["demo", "--out", "/proc/superres_demo"], must_name="/proc/superres_demo")
    add("cull on a JPEG bomb", lambda t, f: (bombs(lambda f: jpeg_claiming(f[0][0], 65000, 65000),
                                                   ["a.jpg", "b.jpg"])(t, f), ["cull", str(t / "burst")])[1],
        must_name="a.jpg", problem="--max-megapixels")
    add("cull on frames of different sizes", lambda t, f: (mixed(lambda f: png_bytes(f[1][1][:100]))(t, f),
                                                           ["cull", str(t / "burst")])[1],
        must_name="b.png", problem="same size")
    add("cull --plot over an existing file", lambda t, f: (_b(t, f), (t / "p.png").write_bytes(b"mine"),
                                                           ["cull", str(t / "burst"), "--plot", str(t / "p.png")])[2],
        must_name="p.png", problem="already exists")
    add("cull --plot over a frame", lambda t, f: (
        [(t / "burst").mkdir()] + [(t / "burst" / f"f{i}.png").write_bytes(png_bytes(f[1][i])) for i in range(3)],
        ["cull", str(t / "burst"), "--plot", str(t / "burst" / "f0.png"), "--overwrite"])[1],
        must_name="f0.png", problem="input")
    return C


def _dht_damaged(data: bytes) -> bytes:
    from superres_gpu.decode import decode_jpeg
    from superres_gpu.errors import InputError

    for marker, pos, length in jpeg_segments(data):
        if marker == 0xC4:
            for off in range(5, 2 + length):
                d = bytearray(data)
                d[pos + off] ^= 0x01
                try:
                    decode_jpeg(bytes(d), "probe", grey=False)
                except InputError:
                    return bytes(d)
    raise AssertionError("no Huffman-table change that the decoder reports")


def dqt_changed(data: bytes) -> bytes:
    """One changed byte in the luma quantisation table (its first AC step
    raised by 64): the file decodes without a warning, to a picture whose
    horizontal detail is wrong in every block, that still aligns."""
    from superres_gpu.decode import decode_jpeg

    for marker, pos, _ in jpeg_segments(data):
        if marker == 0xDB:
            d = bytearray(data)
            d[pos + 6] ^= 0x40
            decode_jpeg(bytes(d), "probe", grey=False)  # raises if the decoder notices
            return bytes(d)
    raise AssertionError("no quantisation table")


def _check_dropped_f1(t, err):
    frames = {Path(f["path"]).name: f for f in json.loads((t / "r.json").read_text())["frames"]}
    assert not frames["f1.jpg"]["used"] and frames["f1.jpg"]["reason"].startswith("content disagrees"), frames
    assert frames["f0.jpg"]["used"] and frames["f2.jpg"]["used"]
    lines = [ln for ln in err.splitlines() if "f1.jpg" in ln]
    assert len(lines) == 1 and "content disagrees" in lines[0], err


def _pil_burst(t, f, mode, **save):
    """Frames written by Pillow (matplotlib's dependency): CMYK or progressive JPEG."""
    from PIL import Image

    d = t / "burst"
    d.mkdir()
    for i in range(3):
        rgb = f[1][i]
        arr = np.concatenate([255 - rgb, np.zeros_like(rgb[..., :1])], axis=-1) if mode == "CMYK" else rgb
        Image.fromarray(np.ascontiguousarray(arr), mode).save(d / f"f{i}.jpg", quality=92, **save)
    return _run(d, "-o", t / "o.tif", *FAST)


def _exif_burst(t, f):
    _, pix = f
    d = t / "burst"
    d.mkdir()
    for i in range(3):
        (d / f"f{i}.jpg").write_bytes(jpeg_with_exif(pix[i], tiff_exif(make="Caméra", model="Ünï 5", iso="AUTO")))
    return _run(d, "-o", t / "o.tif", *FAST)


def _check_xmp(t, err):
    import tifffile

    with tifffile.TiffFile(t / "o.tif") as tf:
        tags = tf.pages.first.tags
        xmp = bytes(tags[700].value).decode("utf-8")
        assert 'tiff:Make="Caméra"' in xmp and 'tiff:Model="Ünï 5"' in xmp
        assert "ISOSpeedRatings" not in xmp  # "AUTO" is no ISO value: left out
        assert "Make" not in [tg.name for tg in tags.values()]  # not 7-bit ASCII: XMP only


def _rerun_in_folder(t, f):
    d = t / "burst"
    write_burst(d, f)
    args = _run(d, "-o", d / "r.tif", "--report", d / "r.json", "--weights-png", d / "w.png", *FAST)
    assert cli.main(args) == 0
    return args + ["--overwrite"]  # the second run skips its own outputs and may replace them


CASES = case_list()


def test_the_battery_is_large_enough():
    assert len(CASES) >= 40
    assert len({c.name for c in CASES}) == len(CASES)


def _cli_subprocess(args, tmp, timeout, umask=None, sig=None):
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    pre = (lambda: os.umask(umask)) if umask is not None else None
    p = subprocess.Popen([sys.executable, "-m", "superres_gpu.cli", *args], cwd=tmp, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=pre)
    if sig is not None:
        deadline = time.monotonic() + 60
        while not list(Path(tmp).glob(".*.partial")) and time.monotonic() < deadline and p.poll() is None:
            time.sleep(0.01)  # outputs claimed: the run is under way
        name, _, times = sig.partition("*")
        for k in range(int(times or 1)):
            if k:
                time.sleep(0.003)
            if p.poll() is not None:
                break
            p.send_signal(getattr(signal, name))
    try:
        _, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()
        pytest.fail(f"superres {' '.join(args)} did not finish within {timeout} s")
    return p.returncode, err


def _disk_full(monkeypatch, name):
    """Writes to the temporary file of output ``name`` fail as on a full disk (/dev/full)."""
    from superres_gpu import output

    real = output._open_tmp
    outputs = {}

    real_init = output.AtomicOutput.__init__

    def init(self, path, *a, **kw):
        real_init(self, path, *a, **kw)
        outputs[self.tmp] = Path(path).name

    def opener(path):
        if outputs.get(Path(path)) == name:
            return open("/dev/full", "wb")
        return real(path)

    monkeypatch.setattr(output.AtomicOutput, "__init__", init)
    monkeypatch.setattr(output, "_open_tmp", opener)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_input(case: Case, tmp_path, frames, capsys, monkeypatch):
    work = tmp_path / "w"
    work.mkdir()
    args = case.build(work, frames)
    sig = None
    if args and args[0] == "disk-full":
        if not Path("/dev/full").exists():
            pytest.skip("no /dev/full on this system")
        _disk_full(monkeypatch, args[1])
        args = args[2]
    elif args and args[0] == "signal":
        sig, args = args[1], args[2]
    before = snapshot(work)
    if case.subprocess_run:
        rc, err = _cli_subprocess(args, work, case.timeout, umask=case.mode.get("umask"), sig=sig)
    else:
        capsys.readouterr()
        try:
            rc = cli.main(args)
        except SystemExit as e:  # argparse's usage errors
            rc = e.code
        err = capsys.readouterr().err
    assert "Traceback" not in err, err
    after = snapshot(work)
    if case.ok:
        assert rc == 0, err
        created = {str(Path(c)) for c in case.created}
        assert set(after) - set(before) <= created, f"unexpected files: {set(after) - set(before) - created}"
        assert all(c in after for c in created)
        for k, v in before.items():
            if k not in created:
                assert after.get(k) == v, f"input changed: {k}"
        if "expect" in case.mode:
            for c in case.created:
                assert (os.stat(work / c).st_mode & 0o777) == case.mode["expect"]
        if case.extra:
            case.extra(work, err)
        return
    assert rc == case.rc, err
    lines = err.splitlines()  # blank lines included: a failure prints its one line and nothing else
    if case.usage:  # argparse's refusal: one line too
        assert len(lines) == 1 and lines[0].startswith("superres: error: ") and case.must_name in lines[0], err
    else:
        assert len(lines) == 1, err
        assert lines[0].startswith("superres: "), lines[0]
        assert "internal error" not in lines[0], lines[0]
        assert case.must_name in lines[0], lines[0]
        if case.problem:
            assert case.problem in lines[0], lines[0]
    assert after == before, "a file was created, changed or removed"
