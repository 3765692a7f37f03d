"""Memory of a CPU run does not grow with the number of frames (streaming).

Writes bursts of 12 MP JPEG frames (4000x3000) and measures the peak RSS of
``superres run --backend numpy`` on the first N frames for two values of N.
A pipeline that kept every decoded or resampled frame would grow by ~36 MB
(decoded) or ~576 MB (resampled at 2x) per frame; ours holds the float32
accumulator (num + den, 16 bytes per output pixel) and a few frames in flight.

    python -m benchmarks.bench_memory [--frames 4 16] [--markdown out.md]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from superres_gpu.bench.measure import emit_markdown, environment, environment_line, python_cmd, run_measured, start_runner
from superres_gpu.bench.suite import throughput_burst


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_memory", description=__doc__.split("\n\n")[0])
    p.add_argument("--frames", type=int, nargs="+", default=[4, 16])
    p.add_argument("--width", type=int, default=4000)
    p.add_argument("--height", type=int, default=3000)
    p.add_argument("--backend", default="numpy")
    p.add_argument("--markdown")
    a = p.parse_args(argv)
    start_runner()
    env = environment()
    n_max = max(a.frames)
    rows = []
    with tempfile.TemporaryDirectory(prefix="superres_mem_") as tmp:
        tmp = Path(tmp)
        paths = throughput_burst(tmp / "all", n_max, a.width, a.height)
        for n in a.frames:
            d = tmp / f"n{n}"
            d.mkdir()
            for q in paths[:n]:
                (d / q.name).symlink_to(q)
            r = run_measured(python_cmd("-m", "superres_gpu", "run", str(d), "-o", str(tmp / f"o{n}.tif"),
                                        "--backend", a.backend, "--quiet"))
            rows.append((n, r["wall"], r["rss_mib"]))
            print(f"{n} frames: {r['wall']:.1f}s, peak RSS {r['rss_mib']:.0f} MiB", file=sys.stderr)
    out_px = 4 * a.width * a.height
    lines = [
        f"Machine: {environment_line(env)}; backend {a.backend}",
        f"Frames of {a.width}x{a.height} JPEG, scale 2 ({out_px / 1e6:.0f} MP output; the float32 accumulator alone is "
        f"{out_px * 16 / 2**20:.0f} MiB).",
        "",
        "| frames | wall (s) | peak RSS (MiB) |",
        "|---:|---:|---:|",
    ] + [f"| {n} | {w:.1f} | {rss:.0f} |" for n, w, rss in rows]
    (n0, _, r0), (n1, _, r1) = rows[0], rows[-1]
    lines += ["", f"Peak RSS grows by {(r1 - r0) / max(1, n1 - n0):.1f} MiB per extra frame "
                  f"(a decoded frame is {a.width * a.height * 3 / 2**20:.0f} MiB)."]
    emit_markdown("\n".join(lines), a.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
