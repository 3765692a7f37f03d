"""superres batch: burst folders, resuming, failures, local workers and a real
Dask cluster (a scheduler and two worker processes on localhost)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from superres_gpu import batch, cli
from conftest import EMULATED_CUPY, EMULATOR, ROOT


@pytest.fixture(scope="module")
def burst_root(tmp_path_factory):
    """Three small bursts in nested folders, one folder of corrupt frames, one with a single frame."""
    from superres_gpu.synth import recipe_burst

    root = tmp_path_factory.mktemp("bursts")
    for k in range(3):
        recipe_burst("test-small", frames=4, width=96, height=72, seed=k).write(root / "trip" / f"scene{k}")
    broken = root / "broken"
    broken.mkdir()
    for n in ("a.jpg", "b.jpg"):
        (broken / n).write_bytes(b"\xff\xd8\xff not a jpeg")
    single = root / "lonely"
    recipe_burst("test-small", frames=1, width=96, height=72).write(single)
    (root / "notes").mkdir()
    (root / "notes" / "readme.txt").write_text("no frames here")
    return root


def test_every_burst_folder_is_found_and_mirrored(tmp_path, burst_root):
    tasks = batch.plan(burst_root, tmp_path / "out", "png16", {"scale": 1.5})
    rel = [Path(t.folder).relative_to(burst_root).as_posix() for t in tasks]
    assert rel == ["broken", "trip/scene0", "trip/scene1", "trip/scene2"]
    assert tasks[1].output == str(tmp_path / "out" / "trip" / "scene0.png")
    assert tasks[1].options == {"scale": 1.5, "format": "png16"}
    # an output folder inside the root is never taken for a burst
    assert len(batch.plan(burst_root, burst_root / "trip" / "scene0", "tiff16")) == 3


def test_failures_are_reported_and_a_rerun_skips_finished_bursts(tmp_path, burst_root, capsys):
    out = tmp_path / "out"
    rc = cli.main(["batch", burst_root, "-o", out, "--backend", "numpy", "--scale", "1.5"])
    captured = capsys.readouterr()
    assert rc == 1 and "corrupt JPEG" in captured.err and "Traceback" not in captured.err
    rows = json.loads((out / "batch_results.json").read_text())
    assert [r["status"] for r in rows] == ["failed", "done", "done", "done"]
    assert not (out / "broken.tif").exists()
    assert (out / "batch_results.csv").read_text().splitlines()[0].startswith("folder,output,status,error")
    finished = out / "trip" / "scene1.tif"
    stamp = finished.stat().st_mtime_ns
    (out / "trip" / "scene2.tif").unlink()  # as if the batch had been stopped before this burst
    rc = cli.main(["batch", burst_root, "-o", out, "--backend", "numpy", "--scale", "1.5", "-q"])
    rows = json.loads((out / "batch_results.json").read_text())
    assert rc == 1 and [r["status"] for r in rows] == ["failed", "skipped", "skipped", "done"]
    assert finished.stat().st_mtime_ns == stamp and (out / "trip" / "scene2.tif").is_file()


def test_each_burst_gets_its_comparison_picture(tmp_path, burst_root):
    import cv2

    out = tmp_path / "out"
    assert cli.main(["batch", burst_root / "trip", "-o", out, "--backend", "numpy", "--compare", "-q"]) == 0
    for k in range(3):
        assert (out / f"scene{k}.tif").is_file()
        assert cv2.imread(str(out / f"scene{k}_compare.png")) is not None
        assert json.loads((out / f"scene{k}.json").read_text())["comparison"]["path"] == str(
            out / f"scene{k}_compare.png")
    tasks = batch.plan(burst_root / "trip", out, "tiff16", {})
    assert all("compare_png" not in t.options for t in tasks)  # none without --compare


def test_a_plan_whose_bursts_would_write_one_file_is_refused(tmp_path):
    from superres_gpu.errors import ConfigError
    from superres_gpu.synth import recipe_burst

    root = tmp_path / "r"
    for name in ("a", "a_compare"):
        recipe_burst("test-small", frames=2, width=64, height=48).write(root / name)
    assert len(batch.plan(root, tmp_path / "o", "png16", {})) == 2  # without pictures, no two names meet
    assert len(batch.plan(root, tmp_path / "o", "tiff16", {}, compare=True)) == 2  # a_compare.png vs .tif
    with pytest.raises(ConfigError, match="a_compare.png"):
        batch.plan(root, tmp_path / "o", "png16", {}, compare=True)


def test_two_local_workers_give_the_same_outputs(tmp_path, burst_root):
    import tifffile

    one = batch.plan(burst_root / "trip", tmp_path / "one", "tiff16", {"backend": "numpy"})
    two = batch.plan(burst_root / "trip", tmp_path / "two", "tiff16", {"backend": "numpy"})
    assert [r.status for r in batch.run_batch(one)] == ["done"] * 3
    seen = []
    res = batch.run_batch(two, workers=2, progress=lambda stage, done, total: seen.append((stage, done, total)))
    assert [r.status for r in res] == ["done"] * 3 and seen[-1] == ("bursts", 3, 3)
    for a, b in zip(one, two):
        assert (tifffile.imread(a.output) == tifffile.imread(b.output)).all()


def test_batch_usage_errors(tmp_path, burst_root, capsys):
    assert cli.main(["batch", burst_root / "notes", "-o", tmp_path / "o"]) == 1
    assert "no burst folders" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:  # refused when the command line is read: one line, exit status 2
        cli.main(["batch", burst_root, "-o", tmp_path / "o", "--workers", "0"])
    assert e.value.code == 2 and "--workers must be at least 1" in capsys.readouterr().err
    assert cli.main(["batch", burst_root / "notes", "-o", tmp_path / "o", "--motion", "auto", "--sharpen", "0.5",
                     "--local", "off", "--no-refine"]) == 1  # run's options, auto included
    assert "no burst folders" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


# --------------------------------------------------------------------------
# A real Dask cluster on localhost
# --------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(args, log: Path, emulate_gpu: bool = False) -> subprocess.Popen:
    """``python -m ARGS`` from the checkout; ``emulate_gpu``: with the CUDA host emulator's device."""
    path = ([str(EMULATOR)] if emulate_gpu else []) + [str(ROOT)]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(path + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    if emulate_gpu:
        env["SUPERRES_EMULATOR_DEVICE"] = "1"
    return subprocess.Popen([sys.executable, "-m", *args], stdout=log.open("wb"), stderr=subprocess.STDOUT,
                            env=env, cwd=log.parent)


@pytest.fixture(scope="module")
def dask_cluster(tmp_path_factory):
    """``dask scheduler`` and two ``dask worker`` processes (one thread each,
    each declaring one GPU resource) on free localhost ports; where the GPU
    tests run on the CUDA host emulator, the workers have its device."""
    pytest.importorskip("distributed", reason="the batch extra (dask[distributed]) is not installed")
    from distributed import Client

    logs = tmp_path_factory.mktemp("dask")
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    procs = [_start(["distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", str(port),
                     "--dashboard-address", ":0", "--no-show"], logs / "scheduler.log")]
    try:
        for k in range(2):
            procs.append(_start(["distributed.cli.dask_worker", address, "--nworkers", "1", "--nthreads", "1",
                                 "--no-dashboard", "--resources", "GPU=1", "--name", f"w{k}",
                                 "--local-directory", str(logs)], logs / f"worker{k}.log",
                                emulate_gpu=EMULATED_CUPY is not None))
        deadline = time.monotonic() + 60
        client = None
        while client is None:
            try:
                client = Client(address, timeout=5)
            except (OSError, TimeoutError):
                if time.monotonic() > deadline or procs[0].poll() is not None:
                    raise RuntimeError((logs / "scheduler.log").read_text()) from None
                time.sleep(0.5)
        with client:
            client.wait_for_workers(2, timeout=60)
        yield address
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in reversed(procs):
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def test_bursts_run_as_tasks_on_a_dask_cluster(tmp_path, burst_root, dask_cluster):
    out = tmp_path / "out"
    rc = cli.main(["batch", burst_root, "-o", out, "--backend", "numpy", "--scheduler", dask_cluster, "-q"])
    rows = json.loads((out / "batch_results.json").read_text())
    assert rc == 1 and [r["status"] for r in rows] == ["failed", "done", "done", "done"]
    assert "corrupt JPEG" in rows[0]["error"]
    assert all((out / "trip" / f"scene{k}.tif").is_file() for k in range(3))
    rc = cli.main(["batch", burst_root / "trip", "-o", out / "trip", "--scheduler", dask_cluster, "-q",
                   "--backend", "numpy"])
    assert rc == 0 and {r["status"] for r in json.loads((out / "trip" / "batch_results.json").read_text())} == {
        "skipped"}


def test_gpu_tasks_ask_for_a_gpu_resource(tmp_path, burst_root, dask_cluster):
    from superres_gpu.backends import cupy_unavailable_reason

    tasks = batch.plan(burst_root / "trip", tmp_path / "out", "tiff16", {"backend": "cupy"})
    res = batch.run_batch(tasks, scheduler=dask_cluster, gpu=True)
    if EMULATED_CUPY is not None or cupy_unavailable_reason() is None:  # each in a worker's own thread
        assert [r.status for r in res] == ["done"] * 3, [r.error for r in res]
        assert all(Path(r.output).is_file() for r in res)
    else:  # the tasks reached the workers that declare a GPU and failed there, clearly
        assert all(r.status == "failed" and "cupy backend is unavailable" in r.error for r in res)


def test_an_unreachable_scheduler_is_a_clear_error(tmp_path, burst_root):
    pytest.importorskip("distributed", reason="the batch extra (dask[distributed]) is not installed")
    from superres_gpu.errors import ConfigError

    tasks = batch.plan(burst_root / "trip", tmp_path / "o", "tiff16")
    with pytest.raises(ConfigError, match="cannot reach the Dask scheduler tcp://127.0.0.1:"):
        batch.run_batch(tasks, scheduler=f"tcp://127.0.0.1:{_free_port()}", connect_timeout=2)
    assert not (tmp_path / "o").exists()


def test_an_interrupted_batch_says_the_finished_bursts_are_kept(tmp_path, burst_root, capsys, monkeypatch):
    def interrupted(*a, **kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(batch, "run_batch", interrupted)
    rc = cli.main(["batch", burst_root / "trip", "-o", tmp_path / "o", "-q"])
    assert rc == cli.EXIT_INTERRUPT and "run the same command again" in capsys.readouterr().err


def test_batch_takes_runs_alignment_and_merge_options(tmp_path, burst_root, monkeypatch):
    import superres_gpu.batch as batch

    seen = {}

    def plan(root, outdir, fmt, options, compare=False):
        seen.update(options, compare=compare)
        return []

    monkeypatch.setattr(batch, "plan", plan)
    cli.main(["batch", burst_root, "-o", tmp_path / "o", "--motion", "auto", "--sharpen", "0.5", "--local", "on",
              "--no-refine", "--kernel-shape", "isotropic", "--tca", "off", "-q"])
    assert {k: seen[k] for k in ("motion", "sharpen", "local", "refine", "kernel_shape", "tca")} == {
        "motion": "auto", "sharpen": 0.5, "local": "on", "refine": False, "kernel_shape": "isotropic", "tca": "off"}
    assert seen["compare"] is False
    cli.main(["batch", burst_root, "-o", tmp_path / "o", "--no-sharpen", "--compare", "-q"])
    assert seen["sharpen"] == "off" and seen["compare"] is True


def test_gamma_srgb_applies_to_the_raw_bursts_of_a_batch(tmp_path, burst_root):
    raw = tmp_path / "raw"
    raw.mkdir()
    for n in ("a.dng", "b.dng"):
        (raw / n).write_bytes(b"only the names are read here")
    jpeg = batch.BurstTask(str(burst_root / "trip" / "scene0"), "o.tif", "o.json", {"gamma": "srgb", "scale": 2})
    assert batch._burst_options(jpeg) == {"gamma": "linear", "scale": 2}  # `run` would refuse srgb on JPEG frames
    assert batch._burst_options(batch.BurstTask(str(raw), "r.tif", "r.json", {"gamma": "srgb"}))["gamma"] == "srgb"
    res = batch.process_burst(batch.BurstTask(str(burst_root / "trip" / "scene0"), str(tmp_path / "o.tif"),
                                              str(tmp_path / "o.json"), {"gamma": "srgb", "scale": 1.0}))
    assert res.status == "done", res.error


def test_a_burst_with_a_dangling_link_fails_naming_it(tmp_path):
    # a frame not there (a link to a file since moved) is no reason to skip the whole burst in silence
    from superres_gpu.synth import recipe_burst

    root = tmp_path / "root"
    recipe_burst("test-small", frames=2, width=96, height=72).write(root / "scene")
    (root / "scene" / "frame_009.jpg").symlink_to(tmp_path / "gone.jpg")
    tasks = batch.plan(root, tmp_path / "out", "tiff16", {"backend": "numpy", "scale": 1})
    assert [Path(t.folder).name for t in tasks] == ["scene"]
    (result,) = batch.run_batch(tasks)
    assert result.status == "failed" and result.error.endswith("frame_009.jpg: is a link to a missing file; "
                                                               "remove it from the folder or name the frames")


def test_a_stopped_batch_with_workers_stops_now_and_leaves_only_finished_bursts(tmp_path):
    # SIGTERM to the batch (and Ctrl-C to its whole process group) while two workers run: the bursts queued are
    # not started, the running ones unwind (their temporary outputs removed), the batch exits at once with the
    # signal's status
    import signal

    from superres_gpu.synth import recipe_burst

    root = tmp_path / "root"
    for k in range(8):
        recipe_burst("test-small", frames=5, width=256, height=192, seed=k).write(root / f"s{k}")
    for sig, status in ((signal.SIGTERM, 143), (signal.SIGINT, 130)):
        out = tmp_path / f"out{sig}"
        env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        p = subprocess.Popen([sys.executable, "-m", "superres_gpu", "batch", str(root), "-o", str(out), "--workers",
                              "2", "--backend", "numpy", "-q"], stderr=subprocess.PIPE, text=True, env=env,
                             start_new_session=True)
        deadline = time.monotonic() + 120
        while not list(out.glob("*.tif")) and time.monotonic() < deadline:
            time.sleep(0.02)
        os.killpg(p.pid, sig) if sig == signal.SIGINT else p.send_signal(sig)
        t = time.monotonic()
        _, err = p.communicate(timeout=60)
        assert time.monotonic() - t < 10, "the batch did not stop promptly"
        assert p.returncode == status, err
        assert err.strip().splitlines()[-1].endswith("finished bursts are kept: run the same command again to do "
                                                      "the rest") and "Traceback" not in err
        left = sorted(x.name for x in out.rglob("*"))
        done = [n for n in left if n.endswith(".tif")]
        assert 1 <= len(done) < 8 and left == sorted(done + [n[:-4] + ".json" for n in done]), left


@pytest.mark.skipif(sys.platform == "darwin", reason="macOS file systems refuse names that are not UTF-8")
def test_a_folder_name_that_is_not_utf8_reaches_the_results(tmp_path):
    from superres_gpu.synth import recipe_burst

    root = tmp_path / "root"
    folder = Path(os.fsdecode(os.fsencode(str(root)) + b"/bad\xff"))
    recipe_burst("test-small", frames=2, width=96, height=72).write(folder)
    out = tmp_path / "out"
    assert cli.main(["batch", root, "-o", out, "--backend", "numpy", "--scale", "1", "-q"]) == 0
    assert b"bad\xff" in (out / "batch_results.csv").read_bytes()  # the name's own bytes
    rows = json.loads((out / "batch_results.json").read_text())
    assert rows[0]["status"] == "done" and rows[0]["folder"] == str(folder)


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="finds the worker processes through /proc")
def test_a_killed_worker_fails_its_own_burst_and_the_others_are_done(tmp_path):
    # SIGKILL (the out-of-memory killer) on one worker breaks the whole process pool: the burst it was running
    # fails, the others run on a new pool
    import signal

    from superres_gpu.synth import recipe_burst

    root = tmp_path / "root"
    for k in range(6):
        recipe_burst("test-small", frames=5, width=256, height=192, seed=k).write(root / f"s{k}")
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    p = subprocess.Popen([sys.executable, "-m", "superres_gpu", "batch", str(root), "-o", str(out), "--workers", "2",
                          "--backend", "numpy", "-q"], stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 120
    while not list(out.glob("*.tif")) and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.3)
    kids = subprocess.run(["pgrep", "-P", str(p.pid)], capture_output=True, text=True).stdout.split()
    workers = [k for k in kids if b"resource_tracker" not in Path(f"/proc/{k}/cmdline").read_bytes()]
    assert workers, kids
    os.kill(int(workers[-1]), signal.SIGKILL)
    _, err = p.communicate(timeout=300)
    rows = json.loads((out / "batch_results.json").read_text())
    failed = [r for r in rows if r["status"] == "failed"]
    # (killed between two bursts, the worker takes none with it)
    assert len(rows) == 6 and len(failed) <= 1 and p.returncode == (1 if failed else 0), err
    assert all("was killed" in r["error"] for r in failed)
