"""Time per frame of the NumPy kernel merge (``kernel_accumulate``) by strip size.

The CPU kernel merge computes its sums in strips of output rows, each tap of
the window one OpenCV pass over the strip; the strip's size trades the
per-call and per-strip set-up cost (fewer, larger strips) against cache
traffic (smaller ones).  One smooth random colour frame of ``--width`` x
``--height`` is added at ``--scale`` with a rotation + zoom + shift (and,
with ``--homography``, a slight perspective term), with the anisotropic
kernel steered by its luma as the pipeline does, ``--repeat`` times per
strip size after one warm-up; the sizes are measured in turn, twice over
(ABAB), so that a drift of the machine's speed shows as a disagreement
between the two rounds.  The sums do not depend on the strip size (each
output pixel's arithmetic is the same); the benchmark checks that too.

    python -m benchmarks.bench_kernel_strips [--width 1632 --height 1224] [--sizes 65536 131072]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from superres_gpu.bench.measure import emit_markdown, environment, environment_line


def _frame_and_state(width: int, height: int, homography: bool):
    import cv2

    from superres_gpu.backends import base as S

    rng = np.random.default_rng(0)
    frame = cv2.GaussianBlur(rng.random((height, width, 3), dtype=np.float32), (0, 0), 1.5)
    th = 0.01
    T = np.array([[np.cos(th) * 1.002, -np.sin(th), 3.3], [np.sin(th), np.cos(th) * 1.001, -2.7], [0.0, 0.0, 1.0]])
    if homography:
        T[2, 0] = 1e-6
    state = S.identity_state()
    state[S.S_T] = T.ravel()
    state[S.S_TINV] = np.linalg.inv(T).ravel()
    return frame, state


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--width", type=_positive, default=1632)
    p.add_argument("--height", type=_positive, default=1224)
    p.add_argument("--scale", type=float, default=2.0)
    p.add_argument("--sizes", type=_positive, nargs="+", default=[1 << 16, 1 << 17])
    p.add_argument("--repeat", type=_positive, default=3)
    p.add_argument("--homography", action="store_true")
    p.add_argument("--markdown")
    a = p.parse_args(argv)

    from superres_gpu import kernelmerge as km
    from superres_gpu.backends import get_backend
    from superres_gpu.backends import numpy_backend as nb

    B = get_backend("numpy")
    frame, state = _frame_and_state(a.width, a.height, a.homography)
    acc = km.KernelAccumulator(B, a.width, a.height, 3, a.scale, 1.0)
    acc.steer(frame.mean(axis=2), 0.01)
    saved = nb._KERNEL_STRIP_PIXELS
    times = {s: [] for s in a.sizes}
    sums = {}
    try:
        acc.add(frame, state)  # warm-up
        for _round in range(2):
            for size in a.sizes:
                nb._KERNEL_STRIP_PIXELS = size
                for _ in range(a.repeat):
                    acc.num[...] = 0
                    acc.den[...] = 0
                    t = time.perf_counter()
                    acc.add(frame, state)
                    times[size].append(time.perf_counter() - t)
                sums.setdefault(size, (acc.num.copy(), acc.den.copy()))
    finally:
        nb._KERNEL_STRIP_PIXELS = saved
    first = sums[a.sizes[0]]
    same = all(np.array_equal(first[0], n) and np.array_equal(first[1], d) for n, d in sums.values())
    base = statistics.median(times[a.sizes[0]])
    motion = "rotation + zoom + shift" + (" + perspective" if a.homography else "")
    lines = [
        (f"Frame {a.width}x{a.height} RGB, {a.scale:g}x, anisotropic kernel, {motion}; "
         f"{2 * a.repeat} timed adds per size (two rounds, sizes in turn)."),
        f"Machine: {environment_line(environment())}",
        "",
        "| strip (output px) | median (s per frame) | round 1 | round 2 | vs the first size |",
        "|---:|---:|---:|---:|---:|",
    ]
    for size in a.sizes:
        t = times[size]
        lines.append(f"| {size} | {statistics.median(t):.3f} | {statistics.median(t[:a.repeat]):.3f} | "
                     f"{statistics.median(t[a.repeat:]):.3f} | {statistics.median(t) / base:.2f}x |")
    lines += ["", f"Sums identical for every strip size: {'yes' if same else 'NO'}."]
    emit_markdown("\n".join(lines), a.markdown)
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
