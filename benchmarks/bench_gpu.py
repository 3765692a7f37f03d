"""GPU benchmark: 12 MP bursts to 2x on the CuPy backend, against its floor and the CPU.

In one run on one machine:

1. the device's copy bandwidth (device-to-device, CUDA events);
2. a burst of ``--frames`` JPEG frames of ``--width`` x ``--height`` (default
   100 x 4000x3000, quality 95) with hand-held motion, written to a temporary folder;
3. GPU compute per frame (align + resample + accumulate; frames already on the
   device, CUDA events, median over frames after a warm-up) and the upload
   time per frame (pinned), separately;
4. the floor: bytes each frame must move (frame reads, accumulator read+write)
   over the measured bandwidth, and measured time over that floor;
5. the whole ``superres run`` (JPEG decode to TIFF written) on the GPU, median of
   ``--repeat`` runs after a warm-up, and the CPU backend on the first
   ``--cpu-frames`` frames of the same burst: per-frame times and their ratio.

    python -m benchmarks.bench_gpu [--frames 100] [--json out.json] [--markdown out.md]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path


from superres_gpu.bench.measure import environment, environment_line, median_runs, python_cmd, start_runner
from superres_gpu.bench.suite import throughput_burst


def device_bandwidth(G, nbytes: int = 1 << 30) -> float:
    """Device-to-device copy bandwidth in GB/s (bytes read + written)."""
    cp = G.cp
    a = cp.ones(nbytes // 4, dtype=cp.float32)
    b = cp.empty_like(a)
    for _ in range(2):
        b[...] = a
    times = []
    for _ in range(10):
        e0 = cp.cuda.get_current_stream().record()
        b[...] = a
        e1 = cp.cuda.get_current_stream().record()
        e1.synchronize()
        times.append(cp.cuda.get_elapsed_time(e0, e1) / 1000.0)
    return 2 * nbytes / statistics.median(times) / 1e9


def kernel_timing(G, paths: list[Path], scale: float, frames: int = 12) -> dict:
    """Per-frame device times with the frames already uploaded (CUDA events)."""
    from superres_gpu.align import AlignConfig, align_frame
    from superres_gpu.decode import read_frame
    from superres_gpu.discover import probe
    from superres_gpu.merge import Accumulator
    from superres_gpu.reference import Reference

    cp = G.cp
    hosts = [read_frame(probe(p)) for p in paths[:frames]]
    h, w = hosts[0].shape[:2]
    ups = []
    devs = []
    for host in hosts:
        e0 = cp.cuda.get_current_stream().record()
        d = G.asarray(host)
        e1 = cp.cuda.get_current_stream().record()
        e1.synchronize()
        ups.append(cp.cuda.get_elapsed_time(e0, e1) / 1000.0)
        devs.append(d)
    ref = Reference(G, devs[0], AlignConfig())
    acc = Accumulator(G, w, h, 3, scale, 255)
    acc.add(devs[0], ref.state())
    align_t, merge_t = [], []
    for d in devs[1:] * 2:  # the first pass warms up (compiles kernels)
        e0 = cp.cuda.get_current_stream().record()
        st = align_frame(G, ref, d)
        e1 = cp.cuda.get_current_stream().record()
        acc.add(d, st)
        e2 = cp.cuda.get_current_stream().record()
        e2.synchronize()
        align_t.append(cp.cuda.get_elapsed_time(e0, e1) / 1000.0)
        merge_t.append(cp.cuda.get_elapsed_time(e1, e2) / 1000.0)
    k = len(devs) - 1
    align_t, merge_t = align_t[k:], merge_t[k:]
    c = 3
    wo, ho = int(round(scale * w)), int(round(scale * h))
    frame_bytes = h * w * c  # uint8
    floor_bytes = (
        2 * frame_bytes  # read by the luma kernel and by the resample kernel
        + 4 * h * w * 3  # luma write, blur read+write (float32)
        + 2 * 4 * wo * ho * c  # accumulator num: read + write
        + 2 * 4 * wo * ho  # den: read + write
    )
    return {
        "frame_mp": w * h / 1e6,
        "output_mp": wo * ho / 1e6,
        "upload_ms": 1000 * statistics.median(ups[1:] or ups),
        "align_ms": 1000 * statistics.median(align_t),
        "merge_ms": 1000 * statistics.median(merge_t),
        "compute_ms": 1000 * statistics.median([a + m for a, m in zip(align_t, merge_t)]),
        "floor_bytes": floor_bytes,
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_gpu", description=__doc__.split("\n\n")[0])
    p.add_argument("--frames", type=int, default=100)
    p.add_argument("--width", type=int, default=4000)
    p.add_argument("--height", type=int, default=3000)
    p.add_argument("--scale", type=float, default=2.0)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--cpu-frames", type=int, default=6)
    p.add_argument("--json")
    p.add_argument("--markdown")
    a = p.parse_args(argv)
    start_runner()
    from superres_gpu.backends import cupy_unavailable_reason, get_backend

    reason = cupy_unavailable_reason()
    if reason:
        print(f"bench_gpu: no GPU: {reason}", file=sys.stderr)
        return 2
    env = environment()
    print(environment_line(env), file=sys.stderr)
    G = get_backend("cupy")
    bw = device_bandwidth(G)
    print(f"device copy bandwidth: {bw:.0f} GB/s", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="superres_gpu_bench_") as tmp:
        tmp = Path(tmp)
        t = time.perf_counter()
        paths = throughput_burst(tmp / "burst", a.frames, a.width, a.height)
        print(f"burst of {a.frames} frames written in {time.perf_counter() - t:.1f}s", file=sys.stderr)
        kt = kernel_timing(G, paths, a.scale)
        kt["floor_ms"] = 1000 * kt["floor_bytes"] / (bw * 1e9)
        print(f"device: {kt}", file=sys.stderr)
        out = tmp / "out.tif"
        gpu_cmd = python_cmd("-m", "superres_gpu", "run", str(tmp / "burst"), "-o", str(out), "--backend", "cupy",
                             "--quiet", "--overwrite", "--scale", str(a.scale), "--report", str(tmp / "gpu.json"))
        gpu = median_runs(gpu_cmd, a.repeat, warmup=1)
        gpu_rep = json.loads((tmp / "gpu.json").read_text())
        cpu_dir = tmp / "cpu_burst"
        cpu_dir.mkdir()
        for q in paths[: a.cpu_frames]:
            (cpu_dir / q.name).symlink_to(q)
        cpu_cmd = python_cmd("-m", "superres_gpu", "run", str(cpu_dir), "-o", str(tmp / "cpu.tif"), "--backend",
                             "numpy", "--quiet", "--overwrite", "--scale", str(a.scale))
        cpu = median_runs(cpu_cmd, 1, warmup=0)
        gpu_small_cmd = python_cmd("-m", "superres_gpu", "run", str(cpu_dir), "-o", str(tmp / "gpu_small.tif"),
                                   "--backend", "cupy", "--quiet", "--overwrite", "--scale", str(a.scale))
        gpu_small = median_runs(gpu_small_cmd, a.repeat, warmup=1)
    fig = {
        "env": env,
        "bandwidth_gbs": bw,
        "frames": a.frames,
        "size": [a.width, a.height],
        "scale": a.scale,
        "device": kt,
        "gpu_run_s": gpu["wall"],
        "gpu_run_runs": gpu["walls"],
        "gpu_run_timings": gpu_rep["timings"],
        "cpu_frames": a.cpu_frames,
        "cpu_run_s": cpu["wall"],
        "gpu_small_run_s": gpu_small["wall"],
    }
    fig["cpu_over_gpu"] = fig["cpu_run_s"] / fig["gpu_small_run_s"]
    md = markdown(fig)
    print(md)
    if a.json:
        Path(a.json).write_text(json.dumps(fig, indent=1))
    if a.markdown:
        Path(a.markdown).write_text(md + "\n")
    return 0


def markdown(fig: dict) -> str:
    d = fig["device"]
    w, h = fig["size"]
    ok_frame = "met" if d["compute_ms"] <= 10 else "NOT met"
    ok_run = "met" if fig["gpu_run_s"] <= 8 else "NOT met"
    return "\n".join(
        [
            f"Machine: {environment_line(fig['env'])}; device copy bandwidth {fig['bandwidth_gbs']:.0f} GB/s",
            f"Burst: {fig['frames']} JPEG frames of {w}x{h} ({d['frame_mp']:.1f} MP) -> {d['output_mp']:.1f} MP at scale {fig['scale']:g}",
            "",
            "| figure | value | target |",
            "|---|---:|---|",
            f"| GPU compute per frame (align + resample + accumulate) | {d['compute_ms']:.2f} ms | <= 10 ms ({ok_frame}) |",
            f"| of which align / merge | {d['align_ms']:.2f} / {d['merge_ms']:.2f} ms | |",
            f"| floor (bytes per frame over measured bandwidth) | {d['floor_ms']:.2f} ms ({d['floor_bytes'] / 1e9:.2f} GB) | |",
            f"| measured / floor | {d['compute_ms'] / d['floor_ms']:.1f}x | |",
            f"| upload per frame (pinned, separate) | {d['upload_ms']:.2f} ms | |",
            f"| whole `superres run`, {fig['frames']} frames, decode to TIFF | {fig['gpu_run_s']:.2f} s | <= 8 s ({ok_run}) |",
            f"| CPU backend, first {fig['cpu_frames']} frames | {fig['cpu_run_s']:.2f} s | |",
            f"| GPU backend, same {fig['cpu_frames']} frames | {fig['gpu_small_run_s']:.2f} s | |",
            f"| CPU / GPU | {fig['cpu_over_gpu']:.1f}x | |",
            "",
            "Stage times of the GPU run (s): " + ", ".join(f"{k} {v:.2f}" for k, v in fig["gpu_run_timings"].items()),
        ]
    )


if __name__ == "__main__":
    sys.exit(main())
