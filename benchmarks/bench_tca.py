"""Lateral chromatic aberration in each merge: PSNR without aberration, with it
uncorrected (``--tca off``) and corrected (``--tca on``).

Synth ``test-medium`` as PNG frames, without aberration and with red +0.2 % /
blue -0.2 % radial scaling against green; ``superres run`` at 2x with default
options but ``--merge`` and ``--tca``, CPU backend; PSNR against the
optics-blurred truth and the sharp truth, 8 px border left out, and the
estimate the run reports.

    python -m benchmarks.bench_tca [--frames 12] [--merges kernel robust] [--json out.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from superres_gpu import synth
from superres_gpu.metrics import psnr
from superres_gpu.options import PipelineConfig
from superres_gpu.pipeline import run

ABERRATION = (0.002, -0.002)  # red, blue


def measure(frames: int, merges, progress=print) -> list[dict]:
    import tifffile

    r = synth.RECIPES["test-medium"]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for ca in ((0.0, 0.0), ABERRATION):
            b = synth.recipe_burst("test-medium", frames=frames,
                                   camera=dataclasses.replace(r.camera, lateral_ca=ca, jpeg_quality=None))
            d = tmp / f"burst{ca[0]}"
            b.write(d)
            for merge in merges:
                for opt in ("off", "on"):
                    out = tmp / f"{merge}{ca[0]}{opt}.tif"
                    t0 = time.perf_counter()
                    rep = run(PipelineConfig(inputs=[str(d)], output=str(out), backend="numpy", tca=opt,
                                             merge=merge, cull=False)).report
                    secs = time.perf_counter() - t0
                    img = tifffile.imread(out).astype(np.float32) / 65535
                    est = rep["tca"]["estimate"]
                    row = {"merge": merge, "aberration": ca != (0.0, 0.0), "tca": opt,
                           "psnr_blurred": psnr(img, b.truth_blurred, margin=8),
                           "psnr_sharp": psnr(img, b.truth, margin=8), "seconds": secs,
                           "estimate": None if est is None else {k: est[k]["scale"] for k in ("red", "blue")}}
                    rows.append(row)
                    progress(f"{merge} aberration={row['aberration']} --tca {opt}: "
                             f"{row['psnr_blurred']:.2f} / {row['psnr_sharp']:.2f} dB ({secs:.1f} s)")
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=12)
    ap.add_argument("--merges", nargs="+", default=["kernel", "robust"])
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    rows = measure(args.frames, args.merges)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
