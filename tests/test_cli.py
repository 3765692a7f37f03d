"""The CLI, in process: a good run, and every kind of bad input."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from superres_gpu import cli
from conftest import file_hashes


def run_cli(*args):
    return cli.main([str(a) for a in args])


def assert_clean_failure(rc, capsys, out_path, inputs_dir, hashes, must_name):
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert rc != 0
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert lines[0].startswith("superres: error:")
    assert must_name in lines[0], lines[0]
    assert not out_path.exists()
    assert not list(out_path.parent.glob(".*.partial")), "a temporary file was left behind"
    if inputs_dir is not None:
        assert file_hashes(inputs_dir) == hashes, "an input was modified"
    return lines[0]


def test_run_writes_tiff_and_report(tmp_path, burst_dir, capsys):
    import tifffile

    out = tmp_path / "out.tif"
    rep = tmp_path / "r.json"
    before = file_hashes(burst_dir)
    rc = run_cli("run", burst_dir, "-o", out, "--report", rep, "--backend", "numpy")
    assert rc == 0
    img = tifffile.imread(out)
    assert img.shape == (240, 320, 3) and img.dtype == np.uint16
    r = json.loads(rep.read_text())
    for key in ("reference", "scale", "backend", "frames", "timings"):
        assert key in r
    assert r["scale"] == 2.0 and r["backend"] == "numpy"
    assert len(r["frames"]) == 8
    for f in r["frames"]:
        assert set(f) >= {"path", "used", "reason", "sharpness", "transform"}
        assert np.array(f["transform"]).shape == (3, 3)
    assert all(f["used"] for f in r["frames"])
    assert r["reference"].endswith("frame_000.jpg")
    assert file_hashes(burst_dir) == before
    summary = capsys.readouterr().out
    assert "8 used, 0 dropped" in summary and "out.tif" in summary


def test_run_options_scale_reference_motion(tmp_path, burst_dir):
    import tifffile

    out = tmp_path / "o.tif"
    ref = burst_dir / "frame_003.jpg"
    rep = tmp_path / "r.json"
    rc = run_cli(
        "run", burst_dir, "-o", out, "--scale", "1.5", "--reference", ref, "--motion", "similarity",
        "--report", rep, "--quiet", "--compression", "deflate",
    )
    assert rc == 0
    assert tifffile.imread(out).shape == (180, 240, 3)
    r = json.loads(rep.read_text())
    assert r["reference"] == str(ref) and r["motion"] == "similarity"
    assert [f["reference"] for f in r["frames"]].count(True) == 1


def test_run_on_explicit_files(tmp_path, burst_dir):
    out = tmp_path / "o.tif"
    files = sorted(burst_dir.glob("*.jpg"))[:3]
    assert run_cli("run", *files, "-o", out, "--quiet") == 0
    assert out.exists()


def test_grey_16bit_png_burst(tmp_path, small_burst):
    import cv2
    import tifffile

    d = tmp_path / "g16"
    d.mkdir()
    for i, f in enumerate(small_burst.frames[:4]):
        grey = cv2.cvtColor(f, cv2.COLOR_RGB2GRAY).astype(np.uint16) * 257
        cv2.imwrite(str(d / f"g{i}.png"), grey)
    out = tmp_path / "g.tif"
    assert run_cli("run", d, "-o", out, "--quiet") == 0
    img = tifffile.imread(out)
    assert img.shape == (240, 320) and img.dtype == np.uint16


def test_empty_folder(tmp_path, capsys):
    d = tmp_path / "empty"
    d.mkdir()
    rc = run_cli("run", d, "-o", tmp_path / "o.tif")
    assert_clean_failure(rc, capsys, tmp_path / "o.tif", d, {}, "no JPEG, PNG or TIFF frames")


def test_one_frame(tmp_path, burst_dir, capsys):
    d = tmp_path / "one"
    d.mkdir()
    shutil.copy(burst_dir / "frame_000.jpg", d)
    rc = run_cli("run", d, "-o", tmp_path / "o.tif")
    assert_clean_failure(rc, capsys, tmp_path / "o.tif", d, file_hashes(d), "frame_000.jpg")


@pytest.mark.parametrize(
    "name,content,expect",
    [
        ("frame_004.jpg", b"this is not a jpeg at all" * 20, "not a JPEG, PNG, TIFF or HEIF"),
        ("frame_004.jpg", "truncate", "truncated JPEG"),
        ("frame_004.jpg", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 64, "corrupt JPEG"),
        ("frame_009.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 30, "corrupt PNG"),
    ],
)
def test_corrupt_frame_in_folder(tmp_path, burst_dir, capsys, name, content, expect):
    p = burst_dir / name
    if content == "truncate":
        data = p.read_bytes()
        p.write_bytes(data[: len(data) // 2])
    else:
        p.write_bytes(content)
    hashes = file_hashes(burst_dir)
    out = tmp_path / "o.tif"
    rc = run_cli("run", burst_dir, "-o", out)
    line = assert_clean_failure(rc, capsys, out, burst_dir, hashes, name)
    assert expect in line


def test_non_image_file_named_explicitly(tmp_path, burst_dir, capsys):
    notes = tmp_path / "notes.txt"
    notes.write_text("shopping list")
    out = tmp_path / "o.tif"
    rc = run_cli("run", burst_dir / "frame_000.jpg", notes, "-o", out)
    assert_clean_failure(rc, capsys, out, burst_dir, file_hashes(burst_dir), "notes.txt")


def test_mixed_sizes(tmp_path, burst_dir, capsys):
    import cv2

    odd = burst_dir / "frame_005.jpg"
    img = cv2.imread(str(odd))
    cv2.imwrite(str(odd), img[:100, :150])
    hashes = file_hashes(burst_dir)
    out = tmp_path / "o.tif"
    rc = run_cli("run", burst_dir, "-o", out)
    assert_clean_failure(rc, capsys, out, burst_dir, hashes, "frame_005.jpg")


def test_existing_output_is_refused_without_overwrite(tmp_path, burst_dir, capsys):
    out = tmp_path / "o.tif"
    out.write_bytes(b"precious")
    rc = run_cli("run", burst_dir, "-o", out)
    err = capsys.readouterr().err
    assert rc != 0 and "already exists" in err and str(out) in err
    assert out.read_bytes() == b"precious"


def test_output_over_an_input_is_refused_even_with_overwrite(tmp_path, burst_dir, capsys):
    import tifffile

    from superres_gpu.decode import read_frame

    target = burst_dir / "frame_002.tif"  # a TIFF frame of the burst
    tifffile.imwrite(target, read_frame(burst_dir / "frame_002.jpg"))
    (burst_dir / "frame_002.jpg").unlink()
    hashes = file_hashes(burst_dir)
    rc = run_cli("run", burst_dir, "-o", target, "--overwrite")
    err = capsys.readouterr().err
    assert rc != 0 and "would overwrite an input" in err
    assert file_hashes(burst_dir) == hashes


def test_unwritable_output(tmp_path, burst_dir, capsys):
    out = tmp_path / "missing_dir" / "o.tif"
    rc = run_cli("run", burst_dir, "-o", out)
    assert_clean_failure(rc, capsys, out, burst_dir, file_hashes(burst_dir), "missing_dir")
    rc = run_cli("run", burst_dir, "-o", "/proc/superres_o.tif")
    err = capsys.readouterr().err
    assert rc != 0 and "cannot write" in err and "Traceback" not in err


def test_mask_of_wrong_size(tmp_path, burst_dir, capsys):
    import cv2

    cv2.imwrite(str(burst_dir / "mask.png"), np.zeros((10, 10, 4), np.uint8))
    hashes = file_hashes(burst_dir)
    out = tmp_path / "o.tif"
    rc = run_cli("run", burst_dir, "-o", out)
    assert_clean_failure(rc, capsys, out, burst_dir, hashes, "mask.png")


def test_mask_png_is_used_by_default(tmp_path, burst_dir):
    import cv2

    m = np.zeros((120, 160, 4), np.uint8)
    m[10:40, 10:60] = (0, 0, 255, 255)
    cv2.imwrite(str(burst_dir / "mask.png"), m)
    rep = tmp_path / "r.json"
    assert run_cli("run", burst_dir, "-o", tmp_path / "o.tif", "--report", rep, "--quiet") == 0
    r = json.loads(rep.read_text())
    assert r["mask"].endswith("mask.png") and len(r["frames"]) == 8


@pytest.mark.parametrize("option,value,message", [
    ("--scale", "5", "between 1 and 4"), ("--scale", "two", "must be a number"),
    ("--cull-threshold", "1.5", "between 0 and 1"),
    ("--sharpen", "strong", "off, auto or a positive number"), ("--sharpen", "-1", "off, auto or a positive number"),
    ("--optics-sigma", "5", "between 0 and 3"),
])
def test_bad_option_values_are_usage_errors(tmp_path, burst_dir, capsys, option, value, message):
    with pytest.raises(SystemExit) as e:
        run_cli("run", burst_dir, "-o", tmp_path / "o.tif", option, value)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert message in err and option in err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("superres: error: "), err  # one line, no usage block


def test_cupy_backend_without_gpu_is_a_clear_error(tmp_path, burst_dir, capsys):
    from superres_gpu.backends import cupy_unavailable_reason

    if cupy_unavailable_reason() is None:
        pytest.skip("a GPU is available here; this test is about machines without one")
    out = tmp_path / "o.tif"
    rc = run_cli("run", burst_dir, "-o", out, "--backend", "cupy")
    err = capsys.readouterr().err
    assert rc != 0 and "cupy backend is unavailable" in err and "Traceback" not in err
    assert not out.exists()


def test_ctrl_c_leaves_no_output(tmp_path, burst_dir, capsys, monkeypatch):
    import superres_gpu.pipeline as pl

    calls = {"n": 0}
    real = pl.align

    def interrupting(*a, **k):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(pl, "align", interrupting)
    hashes = file_hashes(burst_dir)
    out = tmp_path / "o.tif"
    rc = run_cli("run", burst_dir, "-o", out, "--report", tmp_path / "r.json")
    err = capsys.readouterr().err
    assert rc == 130 and "interrupted" in err and "Traceback" not in err
    assert not out.exists() and not (tmp_path / "r.json").exists()
    assert not list(tmp_path.glob(".*.partial"))
    assert file_hashes(burst_dir) == hashes


def test_module_entry_point_and_version():
    res = subprocess.run([sys.executable, "-m", "superres_gpu", "--version"], capture_output=True, text=True)
    assert res.returncode == 0 and res.stdout.startswith("superres_gpu ")


def test_importing_the_package_imports_neither_cupy_nor_rich():
    code = "import sys, superres_gpu, superres_gpu.pipeline, superres_gpu.cli; print('cupy' in sys.modules, 'rich' in sys.modules)"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.stdout.split() == ["False", "False"], res.stderr


def test_run_imports_nothing_of_the_benchmark_suite(burst_dir, tmp_path):
    code = (
        "import sys; from superres_gpu import cli; "
        f"rc = cli.main(['run', {str(burst_dir)!r}, '-o', {str(tmp_path / 'o.tif')!r}, '-q', '--backend', 'numpy']); "
        "print(rc, sorted(m for m in sys.modules if m.startswith(('superres_gpu.bench', 'benchmarks', 'skimage'))))"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.stdout.strip().split(maxsplit=1) == ["0", "[]"], res.stdout + res.stderr


def test_bench_help_lists_the_suite_options(capsys):
    with pytest.raises(SystemExit) as e:
        run_cli("bench", "--help")
    assert e.value.code == 0
    text = capsys.readouterr().out
    assert "--smoke" in text and "--sections" in text and "superres bench" in text


def test_gpu_out_of_memory_falls_back_to_the_cpu_with_a_warning(tmp_path, burst_dir, capsys, monkeypatch):
    import superres_gpu.pipeline as pl

    OutOfMemoryError = type("OutOfMemoryError", (MemoryError,), {"__module__": "cupy.cuda.memory"})
    real = pl.merge_frames
    seen = []

    def first_fails(cfg, *a, **k):
        seen.append(cfg.backend)
        if len(seen) == 1:
            raise OutOfMemoryError("Out of memory allocating 1,234,567,890 bytes")
        return real(cfg, *a, **k)

    monkeypatch.setattr(pl, "merge_frames", first_fails)
    out = tmp_path / "o.tif"
    assert run_cli("run", burst_dir, "-o", out, "-q") == 0
    assert seen[-1] == "numpy" and out.exists()
    assert "ran out of memory" in capsys.readouterr().err


def test_png_output_and_a_format_that_contradicts_the_name(tmp_path, burst_dir, capsys):
    rc = run_cli("run", burst_dir, "-o", tmp_path / "o.tif", "--format", "png16", "-q")
    err = capsys.readouterr().err
    assert rc != 0 and "--format png16 does not match" in err and not list(tmp_path.glob("o.*"))
    assert run_cli("run", burst_dir, "-o", tmp_path / "o.png", "-q", "--backend", "numpy") == 0
    assert (tmp_path / "o.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
@pytest.mark.parametrize("args,expected", [([], "auto"), (["--sharpen"], "auto"), (["--sharpen", "off"], "off"),
                                           (["--no-sharpen"], "off"), (["--sharpen", "1.5"], 1.5)])
def test_sharpen_modes_reach_the_report(tmp_path, burst_dir, args, expected):
    rep = tmp_path / "r.json"
    assert run_cli("run", burst_dir, "-o", tmp_path / "o.tif", "--report", rep, "--quiet", "--no-cull", *args) == 0
    r = json.loads(rep.read_text())
    assert r["sharpen_mode"] == expected and r["sharpen"] == (expected != "off") and ("restore" in r["timings"]) == (expected != "off")


def test_kernel_merge_from_the_command_line(tmp_path, burst_dir):
    rep = tmp_path / "r.json"
    assert run_cli("run", burst_dir, "-o", tmp_path / "o.tif", "--report", rep, "--quiet", "--merge", "kernel",
                   "--optics-sigma", "0.4") == 0
    r = json.loads(rep.read_text())
    assert r["merge"] == "kernel" and r["optics_sigma"] == 0.4 and r["restoration"]["lambda"] > 0


def test_batch_takes_the_chromatic_aberration_option():
    from superres_gpu.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["batch", "root", "-o", "out"]).tca == "auto"
    assert parser.parse_args(["batch", "root", "-o", "out", "--tca", "off"]).tca == "off"


def test_an_interrupted_call_in_this_process_puts_the_signal_handlers_back(tmp_path, burst_dir, monkeypatch, capsys):
    # a real Ctrl-C (SIGINT to this process) in the middle of a run: the call returns 130, and a caller of
    # cli.main finds its own handlers again afterwards (only the console command stays deaf up to its exit)
    import os
    import signal

    from superres_gpu import api

    def interrupted(*a, **kw):
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGTERM)  # the second signal, during the clean-up, is ignored
        for _ in range(100):
            pass
        raise AssertionError("the signal did not interrupt the run")

    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    monkeypatch.setattr(api, "superresolve", interrupted)
    assert cli.main(["run", str(burst_dir), "-o", str(tmp_path / "o.tif"), "-q"]) == cli.EXIT_INTERRUPT
    assert "interrupted; no output was written" in capsys.readouterr().err
    assert {s: signal.getsignal(s) for s in before} == before
    assert cli.main(["run", str(burst_dir), "-o", str(tmp_path / "o.tif"), "-q"]) == cli.EXIT_INTERRUPT
    assert {s: signal.getsignal(s) for s in before} == before


def test_a_ctrl_c_while_the_outputs_are_committed_is_ignored(tmp_path, burst_dir, monkeypatch, capsys):
    # past the point of no return (the first rename of the commit) the run finishes: never half of its outputs,
    # never "no output was written" beside the files
    import os
    import signal

    real_replace = os.replace
    sent = []

    def replace(src, dst):
        if not sent:
            sent.append(dst)
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(1000):  # the handler runs here, between two renames
                pass
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    out, rep = tmp_path / "o.tif", tmp_path / "r.json"
    assert cli.main(["run", str(burst_dir), "-o", str(out), "--report", str(rep), "-q", "--backend", "numpy",
                     "--scale", "1", "--no-sharpen"]) == 0
    assert sent and out.is_file() and rep.is_file() and "interrupted" not in capsys.readouterr().err


def test_a_reader_that_goes_away_does_not_fail_the_run(tmp_path, burst_dir):
    # superres run ... | head -1: the summary meets a closed pipe after the outputs are written
    import os

    from conftest import ROOT

    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    p = subprocess.Popen([sys.executable, "-m", "superres_gpu", "run", str(burst_dir), "-o", str(tmp_path / "o.tif"),
                          "--backend", "numpy", "--scale", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=env)
    p.stdout.close()
    err = p.stderr.read().decode()
    assert p.wait(timeout=300) == 0 and (tmp_path / "o.tif").is_file() and "error" not in err, err


def test_a_ctrl_c_after_the_outputs_are_written_ends_the_command_at_once(tmp_path, burst_dir):
    # printing the summary into a stalled pipe, say: Ctrl-C stops it at once, and says the outputs are there
    import os

    from conftest import ROOT

    code = ("import os, signal, sys, time; from superres_gpu import cli\n"
            "def stalled(*a, **kw):\n"
            "    os.kill(os.getpid(), signal.SIGINT)\n"
            "    time.sleep(60)\n"
            "cli.print_summary = stalled\n"
            "sys.argv = ['superres'] + sys.argv[1:]\n"
            "cli.console_main()\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    out = tmp_path / "o.tif"
    p = subprocess.run([sys.executable, "-c", code, "run", str(burst_dir), "-o", str(out), "--backend", "numpy",
                        "--scale", "1", "--no-sharpen"], capture_output=True, text=True, env=env, timeout=50)
    assert p.returncode == cli.EXIT_INTERRUPT, p.stderr
    assert p.stderr.splitlines()[-1] == "superres: interrupted; the outputs were written" and out.is_file()
