"""GPU benchmark: 12 MP bursts to 2x on the CuPy backend, against its floor and the CPU.

In one run on one machine, each step's figures written to ``--json`` as soon as
they are measured (a run cut off by a timeout keeps what it measured):

1. the device's copy bandwidth (device-to-device, CUDA events);
2. a burst of ``--frames`` JPEG frames of ``--width`` x ``--height`` (default
   100 x 4000x3000, quality 95) with hand-held motion, written to a temporary
   folder;
3. the per-frame device work of ``superres run`` exactly as the pipeline does it
   (``pipeline.process_frame``: align, robust weights, weighted resample,
   accumulate), with ``--device-frames`` frames resident on the device, as
   throughput over many frames between two CUDA events (no per-frame sync),
   per stage from the pipeline's own marks, and the host's launch time per
   frame (the time to queue one frame's work);
4. the upload per frame (pinned host buffer -> device on the upload stream);
5. the floor: bytes each frame's work must move over the measured bandwidth,
   and measured time over that floor;
6. the whole ``superres run`` (JPEG decode to TIFF written) on the GPU,
   ``--repeat`` runs, and the CPU backend on the first ``--cpu-frames`` frames
   of the same burst beside the GPU on the same frames: times and their ratio.

    python -m benchmarks.bench_gpu [--frames 100] [--repeat 1] [--json out.json] [--markdown out.md]
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
        e0 = G.mark()
        b[...] = a
        e1 = G.mark()
        times.append(G.elapsed(e0, e1))
    del a, b
    return 2 * nbytes / statistics.median(times) / 1e9


def floor_bytes(w: int, h: int, c: int, scale: float, levels: int = 4, kernel: bool = True) -> int:
    """Bytes one frame's work must read and write at least (8-bit frame, float32 maps;
    ``kernel``: the kernel merge, which also reads its anisotropic kernel's map)."""
    wo, ho = int(round(scale * w)), int(round(scale * h))
    frame = h * w * c
    pyramid = 4 * h * w * 4 // 3  # luma and its levels
    return int(
        2 * frame  # the frame, read by the luma kernel and by the merge's kernel
        + (3 * 4 * h * w if kernel else 0)  # the kernel merge's shape map (three float32 planes)
        + 2 * pyramid  # luma pyramid written and read
        + 2 * 4 * h * w  # level-0 B-spline coefficients written, read by the refinement
        + 8 * 4 * (h // 2) * (w // 2)  # level-1 residual, coverage, filtered maps, weights (robust merge)
        + 2 * 4 * wo * ho * c  # the accumulator's sums: read and written
        + 2 * 4 * wo * ho  # its weights: read and written
    )


def device_timing(G, paths: list[Path], scale: float, frames: int, passes: int) -> dict:
    """The pipeline's per-frame work on resident frames, between two events."""
    from superres_gpu.align import AlignConfig
    from superres_gpu.decode import read_frame
    from superres_gpu.kernelmerge import KernelAccumulator
    from superres_gpu.merge import Accumulator
    from superres_gpu.options import DEFAULT_MERGE, KERNEL_MERGES
    from superres_gpu.pipeline import process_frame
    from superres_gpu.reference import Reference
    from superres_gpu.restore import residual_noise
    from superres_gpu.robust import RobustWeights

    hosts = [read_frame(p) for p in paths[:frames]]
    h, w = hosts[0].shape[:2]
    c = 1 if hosts[0].ndim == 2 else hosts[0].shape[2]
    # upload: pinned buffer -> device on the upload stream, one frame at a time
    ups = []
    for host in hosts[: min(8, len(hosts))]:
        pinned = G.host_frame(host.shape, host.dtype)
        pinned[...] = host
        e0 = G.upload_stream.record()
        dev = G.upload_frame(pinned)
        e1 = G.upload_stream.record()
        e1.synchronize()
        ups.append(G.cp.cuda.get_elapsed_time(e0, e1) / 1000.0)
        G.frame_done(dev)
    devs = [G.asarray(x) for x in hosts]  # resident copies (the upload ring holds only two)
    del hosts
    ref = Reference(G, devs[0], AlignConfig())
    weights = RobustWeights(G, ref)
    if DEFAULT_MERGE in KERNEL_MERGES:  # what superres run does by default: the kernel merge, steered
        acc = KernelAccumulator(G, w, h, c, scale, 255.0)
        acc.steer(ref.pyramid[0], residual_noise(G, devs[0]) / 255.0)
    else:
        acc = Accumulator(G, w, h, c, scale, 255.0)
    for d in devs[1:]:  # warm-up: compiles every kernel, fills the memory pool
        process_frame(G, ref, weights, acc, d)
    G.synchronize()
    n = 0
    marks = []
    t0 = time.perf_counter()
    e0 = G.mark()
    for _ in range(passes):
        for d in devs[1:]:
            m0 = G.mark()
            _, _, _, (m1, m2), _ = process_frame(G, ref, weights, acc, d)
            marks.append((m0, m1, m2, G.mark()))
            n += 1
    host_s = time.perf_counter() - t0
    e1 = G.mark()
    device_s = G.elapsed(e0, e1)
    stage = {k: 1000 * statistics.median(G.elapsed(a, b) for a, b in pairs)
             for k, pairs in (("align", [(m[0], m[1]) for m in marks]), ("weights", [(m[1], m[2]) for m in marks]),
                              ("resample", [(m[2], m[3]) for m in marks]))}  # the merge's gather or resample
    return {
        "frame_mp": w * h / 1e6,
        "output_mp": round(scale * w) * round(scale * h) / 1e6,
        "frames_timed": n,
        "device_ms_per_frame": 1000 * device_s / n,
        "host_launch_ms_per_frame": 1000 * host_s / n,
        "stage_ms": stage,
        "upload_ms": 1000 * statistics.median(ups),
        "floor_bytes": floor_bytes(w, h, c, scale, ref.levels, DEFAULT_MERGE in KERNEL_MERGES),
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_gpu", description=__doc__.split("\n\n")[0])
    p.add_argument("--frames", type=int, default=100)
    p.add_argument("--width", type=int, default=4000)
    p.add_argument("--height", type=int, default=3000)
    p.add_argument("--scale", type=float, default=2.0)
    p.add_argument("--repeat", type=int, default=1, help="timed runs of the whole superres run (after none warm)")
    p.add_argument("--device-frames", type=int, default=12, help="frames resident for the device timing")
    p.add_argument("--passes", type=int, default=4, help="passes over the resident frames")
    p.add_argument("--cpu-frames", type=int, default=6)
    p.add_argument("--bandwidth-mib", type=int, default=1024, help="buffer of the copy-bandwidth measurement")
    p.add_argument("--json")
    p.add_argument("--markdown")
    a = p.parse_args(argv)
    start_runner()
    from superres_gpu.backends import cupy_unavailable_reason, get_backend

    reason = cupy_unavailable_reason()
    if reason:
        print(f"bench_gpu: no GPU: {reason}", file=sys.stderr)
        return 2
    from superres_gpu.options import DEFAULT_MERGE

    fig: dict = {"env": environment(), "frames": a.frames, "size": [a.width, a.height], "scale": a.scale,
                 "merge": DEFAULT_MERGE}

    def save(step: str) -> None:
        fig["done"] = fig.get("done", []) + [step]
        print(f"bench_gpu: {step}: " + json.dumps({k: v for k, v in fig.items() if k not in ("env", "done")},
                                                  default=str)[:600], file=sys.stderr)
        if a.json:
            Path(a.json).write_text(json.dumps(fig, indent=1, default=str))

    print(environment_line(fig["env"]), file=sys.stderr)
    G = get_backend("cupy")
    fig["bandwidth_gbs"] = device_bandwidth(G, a.bandwidth_mib << 20)
    save("bandwidth")
    with tempfile.TemporaryDirectory(prefix="superres_gpu_bench_") as tmp:
        tmp = Path(tmp)
        t = time.perf_counter()
        paths = throughput_burst(tmp / "burst", a.frames, a.width, a.height)
        fig["burst_write_s"] = time.perf_counter() - t
        save("burst")
        d = device_timing(G, paths, a.scale, min(a.device_frames, a.frames), a.passes)
        d["floor_ms"] = 1000 * d["floor_bytes"] / (fig["bandwidth_gbs"] * 1e9)
        fig["device"] = d
        save("device")
        G.cp.get_default_memory_pool().free_all_blocks()
        out = tmp / "out.tif"
        gpu_cmd = python_cmd("-m", "superres_gpu", "run", str(tmp / "burst"), "-o", str(out), "--backend", "cupy",
                             "--quiet", "--overwrite", "--scale", str(a.scale), "--report", str(tmp / "gpu.json"))
        gpu = median_runs(gpu_cmd, a.repeat, warmup=0)
        fig["gpu_run_s"], fig["gpu_run_runs"] = gpu["wall"], gpu["walls"]
        fig["gpu_run_timings"] = json.loads((tmp / "gpu.json").read_text())["timings"]
        save("gpu run")
        small = tmp / "small"
        small.mkdir()
        for q in paths[: a.cpu_frames]:
            (small / q.name).symlink_to(q)
        cpu = median_runs(python_cmd("-m", "superres_gpu", "run", str(small), "-o", str(tmp / "cpu.tif"), "--backend",
                                     "numpy", "--quiet", "--overwrite", "--scale", str(a.scale)), 1, warmup=0)
        gpu_small = median_runs(python_cmd("-m", "superres_gpu", "run", str(small), "-o", str(tmp / "g.tif"),
                                           "--backend", "cupy", "--quiet", "--overwrite", "--scale", str(a.scale)),
                                1, warmup=0)
        fig.update(cpu_frames=a.cpu_frames, cpu_run_s=cpu["wall"], gpu_small_run_s=gpu_small["wall"],
                   cpu_over_gpu=cpu["wall"] / gpu_small["wall"])
        save("cpu comparison")
    md = markdown(fig)
    print(md)
    if a.markdown:
        Path(a.markdown).write_text(md + "\n")
    return 0


def markdown(fig: dict) -> str:
    d = fig["device"]
    w, h = fig["size"]
    per = d["device_ms_per_frame"]
    met = "met" if per <= 10 else "NOT met"
    run_met = "met" if fig["gpu_run_s"] <= 8 else "NOT met"
    host_met = "met" if d["host_launch_ms_per_frame"] < per else "NOT met"
    st = d["stage_ms"]
    return "\n".join([
        f"Machine: {environment_line(fig['env'])}; device copy bandwidth {fig['bandwidth_gbs']:.0f} GB/s",
        f"Burst: {fig['frames']} JPEG frames of {w}x{h} ({d['frame_mp']:.1f} MP) -> {d['output_mp']:.1f} MP at "
        f"scale {fig['scale']:g}",
        "",
        "| figure | value | target |",
        "|---|---:|---|",
        f"| device time per frame, the pipeline's per-frame work ({d['frames_timed']} frames between two events) | "
        f"{per:.2f} ms | <= 10 ms ({met}) |",
        f"| of which align / robust weights / merge + accumulate ({fig.get('merge', 'kernel')}; per-frame marks, "
        "median) | "
        f"{st['align']:.2f} / {st['weights']:.2f} / {st['resample']:.2f} ms | |",
        f"| memory-traffic floor ({d['floor_bytes'] / 1e9:.2f} GB per frame over the measured bandwidth) | "
        f"{d['floor_ms']:.2f} ms | |",
        f"| measured / floor | {per / d['floor_ms']:.1f}x | |",
        f"| host launch time per frame | {d['host_launch_ms_per_frame']:.2f} ms | below the device time ({host_met}) |",
        f"| upload per frame (pinned, upload stream) | {d['upload_ms']:.2f} ms | |",
        f"| whole `superres run`, {fig['frames']} frames, decode to TIFF | {fig['gpu_run_s']:.2f} s | <= 8 s ({run_met}) |",
        f"| CPU backend, first {fig['cpu_frames']} frames | {fig['cpu_run_s']:.2f} s | |",
        f"| GPU backend, same {fig['cpu_frames']} frames | {fig['gpu_small_run_s']:.2f} s | |",
        f"| CPU / GPU | {fig['cpu_over_gpu']:.1f}x | |",
        "",
        "Stage times of the GPU run (s): " + ", ".join(f"{k} {v:.2f}" for k, v in fig["gpu_run_timings"].items()),
    ])


if __name__ == "__main__":
    sys.exit(main())
