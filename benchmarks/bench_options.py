"""Time per frame of each alignment option on one backend: ``--local``, ``--tca``, ``--refine``.

One ``throughput`` burst (hand-held motion, JPEG 4:2:0 frames as phones write
them, no truth) of ``--frames`` frames of ``--width`` x ``--height`` is written
to a temporary folder (or ``--burst DIR`` is read), and ``superres run`` is
timed on it as a separate process with the defaults and with one option
changed at a time, after one warm-up run of the defaults (on the GPU it
compiles the kernels).  Per option: the wall time, the time per frame merged,
the ratio to the defaults' time, and the run's own stage timings from its
report (``tca``: the chromatic aberration estimate; ``template``: the
denoised template of ``--refine``; the local field is part of ``align``).
The figures are written to ``--json`` after every run (a run cut off by a
timeout keeps what it measured).

    python -m benchmarks.bench_options [--backend numpy|cupy] [--frames 6] [--width 1632 --height 1224]
                                       [--burst DIR] [--json out.json] [--markdown out.md]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from superres_gpu.bench.measure import emit_markdown, environment, environment_line, python_cmd, run_measured

# (label, the options changed from the defaults)
VARIANTS = [
    ("defaults", []),
    ("--local off", ["--local", "off"]),
    ("--local on", ["--local", "on"]),
    ("--tca off", ["--tca", "off"]),
    ("--tca on", ["--tca", "on"]),
    ("--no-refine", ["--no-refine"]),
]
STAGES = ("decode", "tca", "motion", "template", "align", "weights", "merge", "restore")


def measure(burst: Path, backend: str, scale: float, save=None, progress=print) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="superres_options_") as tmp:
        out, rep = Path(tmp) / "out.tif", Path(tmp) / "report.json"

        def cmd(extra):
            return python_cmd("-m", "superres_gpu", "run", str(burst), "-o", str(out), "--backend", backend,
                              "--quiet", "--overwrite", "--scale", str(scale), "--report", str(rep), *extra)

        run_measured(cmd([]))  # warm-up (file cache; kernel compilation on the GPU)
        for label, extra in VARIANTS:
            r = run_measured(cmd(extra))
            report = json.loads(rep.read_text())
            used = report["summary"]["used"]
            rows.append({"option": label, "input_size": report["input_size"], "frames": len(report["frames"]),
                         "wall_s": r["wall"], "cpu_s": r["cpu"], "load": r["load"], "used": used,
                         "s_per_frame": r["wall"] / used, "timings": report["timings"],
                         "tca_applied": report["tca"]["applied"],
                         "local_frames": sum(bool(f.get("local") and f["local"]["applied"]) for f in report["frames"])})
            progress(f"bench_options: {label}: {r['wall']:.2f} s ({r['wall'] / used:.3f} s per frame)")
            if save:
                save(rows)
    return rows


def markdown(fig: dict) -> str:
    rows = fig["rows"]
    base = rows[0]["wall_s"]
    head = ["option", "wall (s)", "s per frame", "x defaults", *STAGES]
    w, h = rows[0]["input_size"]
    what = fig.get("burst") or "synthetic, JPEG 4:2:0"
    out = [f"Burst: {rows[0]['frames']} frames of {w}x{h} ({what}), {fig['scale']:g}x, backend {fig['backend']}.", f"Machine: {environment_line(fig['env'])}", "",
           "| " + " | ".join(head) + " |", "|---" + "|---:" * (len(head) - 1) + "|"]
    for r in rows:
        t = r["timings"]
        cells = [r["option"], f"{r['wall_s']:.2f}", f"{r['s_per_frame']:.3f}", f"{r['wall_s'] / base:.2f}"]
        cells += [f"{t.get(s, 0.0):.2f}" for s in STAGES]
        out.append("| " + " | ".join(cells) + " |")
    out += ["", "Stage times (s) are the runs' own (`timings` in the report); the local field is part of `align`. "
            "Frames with a field: " + ", ".join(f"{r['option']} {r['local_frames']}" for r in rows) + "; "
            "chromatic aberration corrected: " + ", ".join(f"{r['option']} {'yes' if r['tca_applied'] else 'no'}"
                                                            for r in rows) + "."]
    return "\n".join(out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_options", description=__doc__.split("\n\n")[0])
    p.add_argument("--backend", default="numpy")
    p.add_argument("--frames", type=int, default=6)
    p.add_argument("--width", type=int, default=1632)
    p.add_argument("--height", type=int, default=1224)
    p.add_argument("--scale", type=float, default=2.0)
    p.add_argument("--burst", type=Path, help="time this folder of frames instead of a synthetic burst")
    p.add_argument("--json")
    p.add_argument("--markdown")
    a = p.parse_args(argv)
    from superres_gpu.bench.suite import throughput_burst

    fig = {"env": environment(), "backend": a.backend, "frames": a.frames, "size": [a.width, a.height],
           "scale": a.scale}
    print(environment_line(fig["env"]), file=sys.stderr)

    def save(rows):
        fig["rows"] = rows
        if a.json:
            Path(a.json).write_text(json.dumps(fig, indent=1, default=str))

    with tempfile.TemporaryDirectory(prefix="superres_options_burst_") as tmp:
        burst = a.burst
        if burst is None:
            burst = Path(tmp) / "burst"
            throughput_burst(burst, a.frames, a.width, a.height)
        else:
            fig.update(frames=None, size=None, burst=burst.name)
        measure(burst, a.backend, a.scale, save, progress=lambda m: print(m, file=sys.stderr, flush=True))
    emit_markdown(markdown(fig), a.markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
