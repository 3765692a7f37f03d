"""What one frame asks of the GPU: kernel launches and host waits per frame, counted on the CUDA host emulator.

The GPU's per-frame time has a floor besides its memory traffic: each kernel
launch costs the host a few microseconds to queue, and each time the host waits
for the device (a value read back, a synchronize) the queue drains and the next
frame's work starts from empty.  Both are properties of the code, not of the
device, so they can be counted without one: this runs ``superres run`` with the
CuPy backend on the test suite's CUDA host emulator (``tests/cuda_emulator``)
for bursts of N and 2N frames, and reports the difference per frame (the steady
state, without the burst's fixed work) and the fixed work itself.

    python -m benchmarks.launch_count [--frames 6] [--width 1280] [--height 960] [--markdown out.md]

Times here are the emulator's and mean nothing; the counts are those of the code (the host waits:
every synchronize and every value read back, a device array's repr or str included).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _emulator():
    """The emulator's module (already imported where the test suite put it there)."""
    cupy = sys.modules.get("cupy")
    if cupy is None or not getattr(cupy, "EMULATED", False):
        sys.path.insert(0, str(ROOT / "tests" / "cuda_emulator"))
        sys.modules.pop("cupy", None)
        import cupy
    if not getattr(cupy, "EMULATED", False):
        raise SystemExit(f"launch_count: 'import cupy' found {cupy.__file__}, not the emulator")
    return cupy


def count(cupy, folder: Path, out: Path, options: dict) -> tuple[dict, dict]:
    from superres_gpu.options import PipelineConfig
    from superres_gpu.pipeline import run

    for c in cupy.stats.values():
        c.clear()
    run(PipelineConfig(inputs=[str(folder)], output=str(out), backend="cupy", overwrite=True, **options))
    return dict(cupy.stats["launches"]), dict(cupy.stats["host_waits"])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.launch_count", description=__doc__.split("\n\n")[0])
    p.add_argument("--frames", type=int, default=6, help="N: bursts of N and 2N frames are run (N past the frames a "
                   "burst's fixed work holds back)")
    p.add_argument("--width", type=int, default=1280)
    p.add_argument("--height", type=int, default=960)
    p.add_argument("--markdown")
    a = p.parse_args(argv)
    cupy = _emulator()
    from superres_gpu.bench.measure import environment, environment_line
    from superres_gpu.synth import recipe_burst

    runs = {}
    was = cupy.enabled
    cupy.enabled = True  # the emulated device
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for n in (a.frames, 2 * a.frames):
                d = Path(tmp) / f"b{n}"
                recipe_burst("test-small", frames=n, width=a.width, height=a.height).write(d)
                runs[n] = count(cupy, d, Path(tmp) / "o.tif", {})
                print(f"launch_count: {n} frames: {sum(runs[n][0].values())} launches, "
                      f"{sum(runs[n][1].values())} host waits", file=sys.stderr)
    finally:
        cupy.enabled = was
    (l1, w1), (l2, w2) = runs[a.frames], runs[2 * a.frames]

    def per_frame(c1, c2):
        return {k: (c2.get(k, 0) - c1.get(k, 0)) / a.frames for k in sorted(set(c1) | set(c2))}

    lp, wp = per_frame(l1, l2), per_frame(w1, w2)
    fixed = sum(l1.values()) - a.frames * sum(lp.values())
    lines = [
        f"Machine: {environment_line(environment())} (counts on the CUDA host emulator)",
        f"Bursts of {a.frames} and {2 * a.frames} frames of {a.width}x{a.height} (synthetic, JPEG), `superres run` "
        "defaults, 2x, backend cupy; per frame: the difference over the added frames.",
        "",
        "| per frame | count |",
        "|---|---:|",
        f"| kernel launches | {sum(lp.values()):.2f} |",
    ]
    lines += [f"| &nbsp;&nbsp;{k} | {v:.2f} |" for k, v in lp.items() if v]
    lines += [f"| host waits | {sum(wp.values()):.2f} |"]
    lines += [f"| &nbsp;&nbsp;{k} | {v:.2f} |" for k, v in wp.items() if v]
    lines += ["", f"Fixed per burst: {fixed:.0f} launches; host waits over the {a.frames}-frame run: "
              + (", ".join(f"{k} {v}" for k, v in sorted(w1.items())) or "none") + "."]
    text = "\n".join(lines)
    print(text)
    if a.markdown:
        Path(a.markdown).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
