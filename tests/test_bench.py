"""``superres bench --smoke``: the suite runs end to end and checks its own output."""

from __future__ import annotations

import json

import pytest

from superres_gpu import cli


def test_bench_smoke_runs_and_checks_itself(tmp_path, capsys):
    js, md, png = tmp_path / "b.json", tmp_path / "b.md", tmp_path / "b.png"
    rc = cli.main(["bench", "--smoke", "--json", str(js), "--markdown", str(md), "--plot", str(png), "-q"])
    err = capsys.readouterr().err
    assert rc == 0, err  # the smoke run's self-check passed: every aligner row, finite errors, CRLB below all
    res = json.loads(js.read_text())
    assert {"alignment", "reconstruction", "culling", "movers", "throughput"} <= set(res)
    names = {r["aligner"] for r in res["alignment"][0]["rows"]}
    assert any(n.startswith("superres_gpu") for n in names)
    assert any(n.startswith("OpenCV findTransformECC") for n in names)
    assert any(n.startswith("scikit-image") for n in names) and any(n.startswith("original") for n in names)
    crlb = res["alignment"][0]["crlb_px"]
    assert all(r["rms_px"] > crlb for r in res["alignment"][0]["rows"])
    assert "Cramér-Rao" in md.read_text()
    assert png.stat().st_size > 10000


def test_bench_self_check_catches_problems():
    from superres_gpu.bench.suite import check

    res = {
        "backends": ["numpy"],
        "alignment": [{"scenario": "x", "crlb_px": 0.01, "rows": [
            {"aligner": "superres_gpu translation", "rms_px": 0.001, "ms_per_frame": 1.0},
        ]}],
    }
    problems = check(res)
    assert any("below the CRLB" in p for p in problems)
    assert any("rows missing" in p for p in problems)


def test_a_rolling_shutter_section_shows_the_dense_error_with_and_without_the_field():
    """The dense error (the per-row wobble included) is a column of its own
    where a scenario has rolling shutter, '-' for a row without one."""
    from superres_gpu.bench.measure import environment
    from superres_gpu.bench.suite import markdown

    sec = {"scenario": "rolling shutter", "description": "wobble", "frames": 12, "bursts": 3, "size": [512, 384],
           "crlb_px": 0.0007, "rows": [
               {"aligner": "superres_gpu auto + template", "backend": "numpy", "rms_px": 0.15, "dense_px": 0.221,
                "failure_rate": 0.0, "ms_per_frame": 700.0},
               {"aligner": "superres_gpu auto + template + local auto", "backend": "numpy", "rms_px": 0.15,
                "dense_px": 0.0666, "failure_rate": 0.0, "ms_per_frame": 1077.0},
               {"aligner": "other", "backend": "cpu", "rms_px": 0.1, "dense_px": None, "failure_rate": 0.0,
                "ms_per_frame": 5.0}]}
    md = markdown({"env": environment(), "smoke": False, "alignment": [sec]})
    assert "| dense error (px) |" in md
    assert "| 0.0666 |" in md and "| - |" in md
    rows = [line for line in md.splitlines() if line.startswith("| ")]
    assert len({line.count("|") for line in rows}) == 1  # every row has the header's columns


def test_the_options_benchmark_times_each_option_against_the_defaults(tmp_path):
    """benchmarks/bench_options.py (what the GPU device check runs for the time per frame of
    each alignment option): one run per option, the figures kept after every run."""
    import json

    from benchmarks import bench_options

    js, md = tmp_path / "o.json", tmp_path / "o.md"
    assert bench_options.main(["--frames", "3", "--width", "192", "--height", "144", "--json", str(js),
                               "--markdown", str(md)]) == 0
    fig = json.loads(js.read_text())
    rows = {r["option"]: r for r in fig["rows"]}
    assert list(rows) == [label for label, _ in bench_options.VARIANTS]
    assert rows["--tca off"]["timings"].get("tca", 0.0) == 0.0 and rows["defaults"]["timings"]["tca"] > 0.0
    assert rows["--tca on"]["tca_applied"] is True
    assert rows["--no-refine"]["timings"].get("template", 0.0) == 0.0 < rows["defaults"]["timings"]["template"]
    assert all(r["used"] == 3 and r["s_per_frame"] > 0 and r["input_size"] == [192, 144] for r in rows.values())
    text = md.read_text()
    assert "| --local on |" in text and "3 frames of 192x144" in text


def test_the_kernel_strip_benchmark_times_each_size_and_checks_the_sums_agree(tmp_path):
    """benchmarks/bench_kernel_strips.py: a row per strip size (one of them a single output
    row) and the sums identical whatever the size; the module's strip size restored after."""
    from benchmarks import bench_kernel_strips
    from superres_gpu.backends import numpy_backend as nb

    before = nb._KERNEL_STRIP_PIXELS
    md = tmp_path / "k.md"
    assert bench_kernel_strips.main(["--width", "120", "--height", "90", "--repeat", "1", "--homography",
                                     "--sizes", "240", "4096", "--markdown", str(md)]) == 0
    assert nb._KERNEL_STRIP_PIXELS == before
    text = md.read_text()
    assert "| 240 |" in text and "| 4096 |" in text and "identical for every strip size: yes" in text


def test_the_aberration_benchmark_runs_jpeg_and_heic_bursts_at_a_chosen_size(tmp_path):
    """benchmarks/bench_tca.py on small JPEG and HEIC bursts of a chosen size: every run
    of every burst, the estimate's chroma chain as each decoder has it, the estimate
    restored after the runs that replace it."""
    import pytest

    pytest.importorskip("pillow_heif")
    from benchmarks import bench_tca
    from superres_gpu import pipeline

    before = pipeline.estimate_tca
    js = tmp_path / "t.json"
    assert bench_tca.main(["--frames", "2", "--merges", "robust", "--no-png", "--jpeg", "92", "--heic", "90",
                           "--size", "240x180", "--json", str(js)]) == 0
    assert pipeline.estimate_tca is before
    rows = json.loads(js.read_text())
    runs = {(r["frames"], r["aberration"], r["tca"]) for r in rows}
    for fmt in ("JPEG 92 4:2:0", "HEIC 90 4:2:0"):
        assert {(fmt, False, "off"), (fmt, False, "on"), (fmt, True, "off"), (fmt, True, "on"),
                (fmt, True, "on (channels)")} == {k for k in runs if k[0] == fmt}
    assert all(r["size"] == [240, 180] for r in rows)
    chains = {r["frames"]: r["chroma_upsampling"] for r in rows if r["tca"] == "on"}
    assert chains == {"JPEG 92 4:2:0": "linear", "HEIC 90 4:2:0": "nearest"}
    with pytest.raises(SystemExit):
        bench_tca.main(["--size", "12x"])


@pytest.mark.gpu
def test_the_gpu_benchmark_runs_through_every_step(tmp_path, monkeypatch):
    """benchmarks/bench_gpu.py (the device check's benchmark) on a tiny burst: every step measured and
    written, the table made; on the CUDA host emulator where there is no GPU, whose device the
    benchmark's own `superres run` subprocesses get too (a small copy-bandwidth buffer: the emulated
    device's memory is this process's, whose peak later subprocesses would inherit)."""
    import os

    from benchmarks import bench_gpu

    from conftest import EMULATED_CUPY, EMULATOR

    if EMULATED_CUPY is not None:
        monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(EMULATOR)] + os.environ.get("PYTHONPATH", "").split(
            os.pathsep)).rstrip(os.pathsep))
        monkeypatch.setenv("SUPERRES_EMULATOR_DEVICE", "1")
    js, md = tmp_path / "g.json", tmp_path / "g.md"
    assert bench_gpu.main(["--frames", "3", "--width", "96", "--height", "72", "--device-frames", "2", "--passes", "1",
                           "--cpu-frames", "2", "--bandwidth-mib", "16", "--json", str(js), "--markdown", str(md)]) == 0
    fig = json.loads(js.read_text())
    assert fig["device"]["frames_timed"] == 1 and fig["device"]["device_ms_per_frame"] > 0
    assert fig["gpu_run_s"] > 0 and "| device time per frame" in md.read_text()


@pytest.mark.gpu
def test_the_launch_count_counts_one_frames_launches_and_host_waits(tmp_path):
    """benchmarks/launch_count.py on the emulator: per frame, the refinement's three launches per
    iteration, one merge, and no more than the queue bound's wait inside the frame loop."""
    from conftest import EMULATED_CUPY

    if EMULATED_CUPY is None:
        pytest.skip("the CUDA host emulator is not in use here")
    from benchmarks import launch_count

    md = tmp_path / "l.md"
    assert launch_count.main(["--frames", "6", "--width", "96", "--height", "72", "--markdown", str(md)]) == 0
    rows = {line.split("|")[1].replace("&nbsp;", "").strip(): float(line.split("|")[2])
            for line in md.read_text().splitlines() if line.startswith("| ") and line.split("|")[2].strip()[:1].isdigit()}
    it = rows["align_reduce_partial"]
    assert it >= 1 and rows["align_sum_partials"] == it and rows["align_update"] == it
    assert rows["kernel_accumulate<unsigned char, 3>"] == 1.0 and rows["kernel launches"] > 3 * it
    assert rows.get("Event.synchronize", 0) <= 4 and rows["host waits"] <= 6
    assert EMULATED_CUPY.enabled  # as it was: the GPU test's emulated device
