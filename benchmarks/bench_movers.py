"""Alignment with passers-by: map error of a burst with and without movers.

The burst of the suite's moving-objects scenario (12 frames of 320x240,
rotation + shift, mid ISO, a textured object pasted into every other frame;
``superres_gpu.bench.suite.bench_movers``), rendered twice from the same seed:
with the movers and without them (same motion, same noise).  Each is aligned
as the pipeline does (``--motion auto``, then every frame against the
template; ``--no-refine`` against the reference alone), on the CPU backend.
Map error: RMS over a 16x16 grid of the frame -> reference map against the
truth, px, for the frames with a mover, the others, and all.  With
``--static`` also the alignment suite's static and noisy scenarios for the
default aligner (map error and its ratio to the Cramer-Rao bound).

    python -m benchmarks.bench_movers [--frames 12] [--no-refine] [--static] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import math

import numpy as np

from superres_gpu.bench.aligners import ours_auto
from superres_gpu.bench.measure import emit_markdown
from superres_gpu.bench.suite import NOISE_LEVELS, bench_alignment, scenarios
from superres_gpu.geometry import grid_rms_error
from superres_gpu.synth import MotionSpec, Mover, make_burst


def movers_bursts(frames: int, width: int, height: int):
    """(with movers, without movers, indices of the frames with one): the suite's scenario."""
    rng = np.random.default_rng(77)
    movers = []
    for k in range(1, frames, 2):
        w, h = int(width * rng.uniform(0.15, 0.3)), int(height * rng.uniform(0.2, 0.4))
        movers.append(Mover(k, int(rng.uniform(0, width - w)), int(rng.uniform(0, height - h)), w, h, k))
    kw = dict(n_frames=frames, width=width, height=height, scale=2.0, factor=4,
              motion=MotionSpec(shift_sigma=2.5, rotation_sigma_deg=0.25), camera=NOISE_LEVELS["mid ISO"], seed=12)
    return make_burst(movers=movers, **kw), make_burst(**kw), {m.frame for m in movers}


def rms(v) -> float:
    return float(np.sqrt(np.mean(np.square(v)))) if len(v) else float("nan")


def map_errors(burst, refine: bool) -> list[float]:
    ests = ours_auto("numpy", refine).align_burst(burst.frames)
    w, h = burst.params["width"], burst.params["height"]
    return [grid_rms_error(T, Tt, w, h) if T is not None else math.inf for T, Tt in zip(ests, burst.transforms[1:])]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=12)
    ap.add_argument("--size", type=int, nargs=2, default=(320, 240))
    ap.add_argument("--refine", action=argparse.BooleanOptionalAction, default=True,
                    help="align against the template, as superres run does by default (--no-refine: against the "
                    "reference alone)")
    ap.add_argument("--static", action="store_true", help="also the static and noisy alignment scenarios")
    ap.add_argument("--json")
    a = ap.parse_args(argv)
    with_mv, without, mframes = movers_bursts(a.frames, *a.size)
    res = {"frames": a.frames, "size": list(a.size), "refine": a.refine, "mover_frames": sorted(mframes)}
    for name, burst in (("with movers", with_mv), ("without movers", without)):
        e = map_errors(burst, a.refine)
        res[name] = {"per_frame": [round(v, 5) for v in e],
                     "mover_frames": rms([v for i, v in enumerate(e, 1) if i in mframes]),
                     "other_frames": rms([v for i, v in enumerate(e, 1) if i not in mframes]),
                     "all": rms(e)}
    res["ratio_mover_frames"] = res["with movers"]["mover_frames"] / res["without movers"]["mover_frames"]
    res["ratio_all"] = res["with movers"]["all"] / res["without movers"]["all"]
    if a.static:
        res["static"] = {}
        for sc in scenarios(False)[:2]:
            r = bench_alignment(sc, [ours_auto("numpy", a.refine)])
            res["static"][sc.name] = {"rms_px": r["rows"][0]["rms_px"], "crlb_px": r["crlb_px"],
                                      "x_crlb": r["rows"][0]["rms_px"] / r["crlb_px"]}
    emit_markdown(json.dumps(res, indent=1), a.json)  # printed, and written to --json
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
