"""Writing: atomic outputs, claimed together and committed or rolled back together."""

from __future__ import annotations

import os
from fractions import Fraction

import numpy as np
import pytest

from superres_gpu.errors import OutputError
from superres_gpu.output import AtomicOutput, OutputSet, encode_png, write_tiff


def test_atomic_output_rules(tmp_path):
    target = tmp_path / "o.tif"
    target.write_bytes(b"old")
    with pytest.raises(OutputError, match="already exists"):
        AtomicOutput(target)
    out = AtomicOutput(target, overwrite=True)
    assert out.tmp.exists() and out.tmp.parent == tmp_path
    out.discard()
    assert not out.tmp.exists() and target.read_bytes() == b"old"
    with pytest.raises(OutputError, match="would overwrite an input"):
        AtomicOutput(target, overwrite=True, protect=[target])
    with pytest.raises(OutputError, match="folder does not exist"):
        AtomicOutput(tmp_path / "nope" / "o.tif")


def test_atomic_output_unwritable_folder_even_for_root():
    with pytest.raises(OutputError, match="cannot write here"):
        AtomicOutput("/proc/superres_out.tif")


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere; permissions cannot be tested")
def test_atomic_output_read_only_folder(tmp_path):
    d = tmp_path / "ro"
    d.mkdir()
    d.chmod(0o500)
    try:
        with pytest.raises(OutputError, match="cannot write"):
            AtomicOutput(d / "o.tif")
    finally:
        d.chmod(0o700)


def test_output_set_commits_everything_or_nothing(tmp_path):
    with OutputSet() as outs:
        a = outs.claim(tmp_path / "a.tif")
        b = outs.claim(tmp_path / "b.json")
        assert outs.claim(None) is None
        a.tmp.write_bytes(b"A")
        b.tmp.write_bytes(b"B")
        outs.commit()
    assert (tmp_path / "a.tif").read_bytes() == b"A" and (tmp_path / "b.json").read_bytes() == b"B"
    with pytest.raises(RuntimeError):
        with OutputSet(overwrite=True) as outs:
            c = outs.claim(tmp_path / "c.tif")
            outs.claim(tmp_path / "a.tif")
            c.tmp.write_bytes(b"C")
            raise RuntimeError("the run failed")
    assert not (tmp_path / "c.tif").exists() and (tmp_path / "a.tif").read_bytes() == b"A"
    assert not list(tmp_path.glob(".*.partial"))


def test_tiff_is_written_16_bit_grey_or_rgb(tmp_path):
    import tifffile

    for shape in ((5, 7), (5, 7, 3)):
        out = AtomicOutput(tmp_path / f"o{len(shape)}.tif")
        img = np.arange(np.prod(shape), dtype=np.uint16).reshape(shape) * 300
        write_tiff(out, img, compression="deflate")
        out.commit()
        np.testing.assert_array_equal(tifffile.imread(out.path), img)
    with pytest.raises(ValueError):
        write_tiff(AtomicOutput(tmp_path / "bad.tif"), np.zeros((4, 4), np.uint8))


def test_png_pictures_are_tagged_as_ours():
    import cv2

    img = np.zeros((4, 6, 3), np.uint8)
    img[..., 0] = 200  # red in RGB
    data = encode_png(img)
    assert b"tEXtSoftware\x00superres_gpu" in data
    back = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    assert back[0, 0].tolist() == [0, 0, 200]  # BGR on disk: the red survived


def test_output_format_from_the_name_or_the_option():
    from superres_gpu.errors import ConfigError
    from superres_gpu.options import output_format

    assert output_format("a/b.PNG", None) == "png16"
    assert output_format("b.tif", None) == output_format("b.tiff", None) == "tiff16"
    assert output_format("b.tif", "tiff32f") == "tiff32f"
    assert output_format(None, None) == "tiff16" and output_format(None, "png16") == "png16"  # the API, no file
    with pytest.raises(ConfigError, match=r"give it a \.tif, \.tiff or \.png name"):
        output_format("b.jpg", None)  # the next run on the folder would take it for a frame
    with pytest.raises(ConfigError, match=r"\.png name"):
        output_format("b.out", "png16")
    with pytest.raises(ConfigError, match="does not match"):
        output_format("b.tif", "png16")
    with pytest.raises(ConfigError, match="does not match"):
        output_format("b.png", "tiff32f")
    with pytest.raises(ConfigError, match="unknown output format"):
        output_format("b.tif", "jpeg")


def test_the_three_formats_hold_the_same_result(tmp_path, small_burst):
    import cv2
    import tifffile

    from superres_gpu import superresolve
    from superres_gpu.discover import is_own_output
    from tolerances import TOL

    ref, _ = superresolve(small_burst.frames, output=tmp_path / "a.tif", backend="numpy")
    png, _ = superresolve(small_burst.frames, output=tmp_path / "a.png", backend="numpy")
    flt, rep = superresolve(small_burst.frames, output=tmp_path / "f.tif", format="tiff32f", backend="numpy")
    assert rep["format"] == "tiff32f"
    read = cv2.imread(str(tmp_path / "a.png"), cv2.IMREAD_UNCHANGED)[..., ::-1]
    assert read.dtype == np.uint16
    np.testing.assert_array_equal(read, ref)
    np.testing.assert_array_equal(png, ref)
    on_disk = tifffile.imread(tmp_path / "f.tif")
    assert on_disk.dtype == np.float32
    np.testing.assert_array_equal(on_disk, flt)
    inside = (ref > 0) & (ref < 65535)
    assert np.abs(flt * 65535.0 - ref)[inside].max() <= TOL["float_vs_u16_output"][0]
    assert all(is_own_output(tmp_path / n) for n in ("a.tif", "a.png", "f.tif"))
def test_commit_is_all_or_nothing_when_a_rename_fails(tmp_path, monkeypatch):
    (tmp_path / "a.tif").write_bytes(b"old A")
    outs = OutputSet(overwrite=True)
    a = outs.claim(tmp_path / "a.tif")
    b = outs.claim(tmp_path / "b.json")
    a.write_bytes(b"new A")
    b.write_bytes(b"new B")
    real = os.replace

    def failing(src, dst):
        if str(dst).endswith("b.json"):
            raise OSError(28, "No space left on device")
        return real(src, dst)

    monkeypatch.setattr(os, "replace", failing)
    with pytest.raises(OutputError, match="b.json"):
        outs.commit()
    monkeypatch.setattr(os, "replace", real)
    assert (tmp_path / "a.tif").read_bytes() == b"old A"  # the replaced file is back
    assert not (tmp_path / "b.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.tif"]


def test_two_outputs_naming_one_file_are_refused(tmp_path):
    outs = OutputSet()
    outs.claim(tmp_path / "o.tif", "-o")
    with pytest.raises(OutputError, match="--report names a file that is already another output"):
        outs.claim(tmp_path / "sub" / ".." / "o.tif", "--report")
    outs.discard()


def test_two_outputs_naming_one_file_through_a_linked_folder_are_refused(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    outs = OutputSet()
    outs.claim(tmp_path / "link" / "x.png", "-o")
    with pytest.raises(OutputError, match="--compare names a file that is already another output"):
        outs.claim(tmp_path / "real" / "x.png", "--compare")
    outs.claim(tmp_path / "real" / "y.png", "--weights-png")  # another name in the same folder is fine
    outs.discard()


def test_only_own_files_in_a_burst_folder_are_replaced(tmp_path):
    (tmp_path / "notes.json").write_text("{}")
    (tmp_path / "old.json").write_text('{\n "tool": "superres_gpu 0.1",\n "frames": []}')
    with pytest.raises(OutputError, match="never replaced"):
        AtomicOutput(tmp_path / "notes.json", overwrite=True, protect_dirs=[tmp_path])
    AtomicOutput(tmp_path / "old.json", overwrite=True, protect_dirs=[tmp_path]).discard()
    AtomicOutput(tmp_path / "notes.json", overwrite=True, protect_dirs=[tmp_path / "elsewhere"]).discard()


def test_temporary_name_does_not_grow_and_mode_follows_umask(tmp_path):
    name = "a" * 250 + ".tif"
    old = os.umask(0o027)
    try:
        out = AtomicOutput(tmp_path / name)
    finally:
        os.umask(old)
    assert len(out.tmp.name) < 64
    out.write_bytes(b"x")
    out.commit()
    assert (tmp_path / name).stat().st_mode & 0o777 == 0o640


def test_write_error_names_the_output(tmp_path, monkeypatch):
    import superres_gpu.output as output

    out = AtomicOutput(tmp_path / "r.json")
    monkeypatch.setattr(output, "_open_tmp", lambda p: open("/dev/full", "wb"))
    with pytest.raises(OutputError, match=r"r\.json: cannot write \(No space left on device\)"):
        out.write_text("{}")
    assert not out.tmp.exists()


@pytest.mark.parametrize("compression", ["none", "deflate", "lzw", "zstd"])
def test_every_compression_writes_the_same_pixels(tmp_path, small_burst, compression):
    import tifffile

    from superres_gpu import superresolve

    img, rep = superresolve(small_burst.frames[:3], output=tmp_path / f"{compression}.tif", compression=compression,
                            backend="numpy", cull=False)
    np.testing.assert_array_equal(tifffile.imread(tmp_path / f"{compression}.tif"), img)


def test_a_compression_whose_codec_is_missing_is_a_clear_error(monkeypatch):
    import importlib.util

    from superres_gpu.errors import ConfigError
    from superres_gpu.options import check_compression

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "imagecodecs" else real(name, *a))
    with pytest.raises(ConfigError, match=r"--compression lzw needs the imagecodecs package.*codecs"):
        check_compression("lzw")
    assert check_compression("deflate") == "deflate"


def test_png_output_carries_the_reference_exif(tmp_path, small_burst):
    """``-o out.png`` carries the capture metadata in an eXIf chunk (read back by
    Pillow and by our reader) and the XMP packet in iTXt, as the TIFF does."""
    import io

    from exif_util import jpeg_with_exif, tiff_exif
    from PIL import Image

    from superres_gpu import cli
    from superres_gpu.metadata import parse_tiff_exif, png_chunks, png_exif_block

    d = tmp_path / "burst"
    d.mkdir()
    for i in range(3):
        make = "Acme" if i == 0 else "Other"
        (d / f"f{i}.jpg").write_bytes(jpeg_with_exif(small_burst.frames[i], tiff_exif(
            make=make, model="Zoom 5", exposure=(1, 125), iso=400, datetime_original="2026:11:30 10:11:12",
            fnumber=(18, 10))))
    out = tmp_path / "o.png"
    assert cli.main(["run", str(d), "-o", str(out), "--backend", "numpy", "--scale", "1", "--quiet"]) == 0
    data = out.read_bytes()
    before_image = [c[0] for c in png_chunks(data)]  # the chunks before the image data
    assert b"eXIf" in before_image and b"iTXt" in before_image
    ours = parse_tiff_exif(png_exif_block(data))
    assert ours["make"] == "Acme" and ours["model"] == "Zoom 5" and ours["iso"] == 400
    assert ours["exposure_time"] == Fraction(1, 125) and ours["f_number"] == Fraction(9, 5)
    assert ours["datetime_original"] == "2026:11:30 10:11:12" and ours["orientation"] == 1
    with Image.open(io.BytesIO(data)) as im:
        ex = im.getexif()
        assert ex[271] == "Acme" and ex[272] == "Zoom 5" and ex[274] == 1
        sub = ex.get_ifd(0x8769)
        assert sub[0x8827] == 400 and float(sub[0x829A]) == 1 / 125 and sub[0x9003] == "2026:11:30 10:11:12"
    assert b'tiff:Make="Acme"' in data  # the XMP packet


def test_exif_block_leaves_out_what_it_cannot_encode():
    from superres_gpu.metadata import exif_block, parse_tiff_exif

    got = parse_tiff_exif(exif_block({"make": "Caméra", "model": "M", "iso": "AUTO", "exposure_time": -1.0,
                                      "f_number": float("nan")}, "sw"))
    assert got == {"model": "M", "orientation": 1}  # non-ASCII make and malformed values left out
    assert parse_tiff_exif(exif_block({}, "sw")) == {"orientation": 1}


def test_an_interruption_while_an_output_is_claimed_leaves_no_temporary_file(tmp_path, monkeypatch):
    """The output joins its set before its temporary file exists: a signal
    (here: Ctrl-C) right after the file is created still has it removed."""
    import os

    from superres_gpu import output

    real = os.open

    def open_then_interrupt(*a, **k):
        fd = real(*a, **k)
        os.close(fd)
        raise KeyboardInterrupt

    monkeypatch.setattr(output.os, "open", open_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        with output.OutputSet() as outs:
            outs.claim(tmp_path / "o.tif", "-o")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(os.name != "posix", reason="the stale check asks POSIX whether a process exists")
def test_a_killed_process_temporary_file_goes_with_the_next_output_there(tmp_path):
    # SIGKILL leaves no chance to clean up: the next output written to the folder removes what the dead process
    # left, and nothing of a live process, of another machine, or a replaced output's backup
    import signal
    import subprocess
    import sys

    from superres_gpu.output import _host_tag

    code = ("import os, signal, sys; from superres_gpu.output import AtomicOutput; "
            "o = AtomicOutput(sys.argv[1]); print(o.tmp.name, flush=True); os.kill(os.getpid(), signal.SIGKILL)")
    p = subprocess.run([sys.executable, "-c", code, str(tmp_path / "killed.tif")], capture_output=True, text=True)
    assert p.returncode == -signal.SIGKILL
    stale = tmp_path / p.stdout.strip()
    assert stale.is_file()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        kept = [tmp_path / f".superres-{_host_tag()}-{live.pid}-0123456789ab.partial",
                tmp_path / f".superres-{'0' * 8 if _host_tag() != '0' * 8 else '1' * 8}-1-0123456789ab.partial",
                stale.with_name(stale.name[: -len(".partial")] + ".old.partial")]
        for k in kept:
            k.write_bytes(b"k")
        out = AtomicOutput(tmp_path / "next.tif")
        out.write_bytes(b"x")
        out.commit()
    finally:
        live.kill()
        live.wait()
    assert not stale.exists() and all(k.is_file() for k in kept)
