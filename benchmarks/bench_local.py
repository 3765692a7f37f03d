"""Local refinement (``--local``): dense map error, PSNR and time per frame.

Scenarios with known truth (``superres_gpu.synth``):

* rolling shutter: the alignment suite's scenario (hand-held motion plus a
  per-row wobble, sigma 0.3 px), and the same scene without the wobble;
* static: the suite's shift-only, low-noise burst (must lose nothing);
* aberration: ``test-medium`` as PNG with red +0.2 % / blue -0.2 % lateral
  chromatic aberration; and the rolling-shutter burst with the same
  aberration, as PNG and as 4:2:0 JPEG (what a phone writes);
* passers-by: textured objects pasted into every other frame.

Every scenario is run with global alignment only (``--local off``), the
field (``on``) and the field where it helps (``auto``), each without and
with the chromatic aberration corrected (``--tca on``), and with both
automatic (``--local auto --tca auto``).

Dense map error: RMS over a grid of reference positions (every 8 px, 16 px
in from the border) of where the global model, or the global model plus the
field, reads the frame, against where the frame truly shows that position
(:func:`superres_gpu.synth.true_frame_positions`), in frame pixels.  PSNR:
``superres run`` (default options otherwise: the kernel merge and its
restoration) against the optics-blurred truth at 2x, 8 px border left out,
and against the sharp truth (``psnr_sharp``: what the restoration aims at,
the measure of the default merge).  Time per frame: the whole run's wall time
(the frames read from files) over the frames merged, CPU backend, same run
for every option.

    python -m benchmarks.bench_local [--frames 12] [--json out.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time

import numpy as np

from superres_gpu.align import AlignConfig, align, frame_levels
from superres_gpu.api import superresolve
from superres_gpu.backends import base as S
from superres_gpu.backends import get_backend
from superres_gpu.bench.measure import emit_markdown
from superres_gpu.local import LocalRefiner, frame_report
from superres_gpu.metrics import psnr
from superres_gpu.reference import Reference
from superres_gpu.synth import CameraSpec, MotionSpec, Mover, dense_map_error, make_burst, mover_mask, recipe_burst

MID = CameraSpec(blur_sigma=0.5, noise_gain=0.001, noise_floor=0.005, jpeg_quality=92)
LOW = CameraSpec(blur_sigma=0.5, noise_gain=0.0005, noise_floor=0.002, jpeg_quality=95)
ROLLING = MotionSpec(shift_sigma=2.0, rotation_sigma_deg=0.2, zoom_sigma=0.001, rolling_shutter_px=0.3)
STILL = MotionSpec(shift_sigma=2.0, rotation_sigma_deg=0.2, zoom_sigma=0.001)
CA = (0.002, -0.002)  # lateral chromatic aberration: red +0.2 %, blue -0.2 % against green
# column -> (--local, --tca): global only, the field, the field where it helps; each with the chromatic
# aberration corrected; and both automatic
OPTIONS = {"off": ("off", "off"), "on": ("on", "off"), "auto": ("auto", "off"), "off + tca": ("off", "on"),
           "on + tca": ("on", "on"), "auto + tca": ("auto", "on"), "auto + tca auto": ("auto", "auto")}


def map_errors(burst, model: str, option: str = "on") -> dict:
    """Dense map error (px) of the global model and of the global model plus the field."""
    B = get_backend("numpy")
    ref = Reference(B, burst.frames[0], AlignConfig(model=model))
    lr = LocalRefiner(B, ref, option)
    eg, el, applied = [], [], 0
    for i in range(1, len(burst.frames)):
        lv = frame_levels(B, ref, burst.frames[i])
        st = align(B, ref, lv)
        res = lr.refine(lv, st)
        if res is None:  # auto stopped refining this burst: the global model alone
            g, loc = dense_map_error(burst, i, st[S.S_TINV])
        else:
            g, loc = dense_map_error(burst, i, st[S.S_TINV], res.field, res.cell)
            applied += frame_report(res.stats)["applied"]
        eg.append(g)
        el.append(loc)
    return {"global_px": float(np.sqrt(np.mean(eg))), "local_px": float(np.sqrt(np.mean(el))),
            "applied": applied, "frames": len(burst.frames) - 1, "tile_px": 2 * lr.cell}


def run_psnr(burst, folder, mask=None, **opts) -> dict:
    """``superres run`` on the burst's files in ``folder`` (JPEG frames carry
    their chroma subsampling in their headers, which ``--tca`` reads)."""
    t = time.perf_counter()
    img, rep = superresolve(folder, 2.0, backend="numpy", cull=False, mask="none", **opts)
    dt = time.perf_counter() - t
    used = rep["summary"]["used"]
    out = {"psnr": psnr(img, burst.truth_blurred, 8), "psnr_sharp": psnr(img, burst.truth, 8),
           "s_per_frame": dt / used, "motion": rep["motion"],
           "applied": sum(bool(f.get("local") and f["local"]["applied"]) for f in rep["frames"])}
    if mask is not None:
        out["psnr_moving"] = psnr(img, burst.truth_blurred, mask=mask)
        out["psnr_static"] = psnr(img, burst.truth_blurred, mask=~mask)
    return out


def progress(name: str, row: dict) -> None:
    print(f"{name}: " + ", ".join(f"{k} {v['psnr']:.2f} / {v['psnr_sharp']:.2f} dB" for k, v in row.items()),
          file=sys.stderr, flush=True)


def table(rows: dict) -> str:
    """Markdown: a row per scenario, a column per option, PSNR against the
    blurred / the sharp truth (dB) and how many frames the field was applied to."""
    cols = list(OPTIONS)
    out = ["| scenario | " + " | ".join(f"`{c}`" for c in cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for name, row in rows.items():
        cells = []
        for c in cols:
            v = row[c]
            cell = f"{v['psnr']:.2f} / {v['psnr_sharp']:.2f}"
            if v["applied"]:
                cell += f" ({v['applied']})"
            cells.append(cell)
        out.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def movers_burst(frames: int, width: int, height: int):
    rng = np.random.default_rng(77)
    movers = []
    for k in range(1, frames, 2):
        w, h = int(width * rng.uniform(0.15, 0.3)), int(height * rng.uniform(0.2, 0.4))
        movers.append(Mover(k, int(rng.uniform(0, width - w)), int(rng.uniform(0, height - h)), w, h, k))
    return make_burst(frames, width, height, 2.0, 4, MotionSpec(shift_sigma=2.5, rotation_sigma_deg=0.25), MID,
                      seed=12, movers=movers)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=12)
    ap.add_argument("--size", type=int, nargs=2, default=(512, 384))
    ap.add_argument("--json")
    a = ap.parse_args(argv)
    n, (w, h) = a.frames, a.size
    res = {"frames": n, "size": [w, h]}
    rolling = make_burst(n, w, h, 2.0, 4, ROLLING, MID, seed=21)
    still = make_burst(n, w, h, 2.0, 4, STILL, MID, seed=21)
    static = make_burst(n, w, h, 2.0, 4, MotionSpec(shift_sigma=2.0, rotation_sigma_deg=0.0, zoom_sigma=0.0), LOW,
                        seed=21)
    res["map"] = {"rolling shutter": map_errors(rolling, "similarity"),
                  "same scene, no wobble": map_errors(still, "similarity", "auto"),
                  "static (shifts, low noise)": map_errors(static, "translation", "auto")}
    ca = recipe_burst("test-medium", camera=CameraSpec(blur_sigma=0.5, noise_gain=0.002, noise_floor=0.008,
                                                       jpeg_quality=None, lateral_ca=CA))
    rolling_ca = make_burst(n, w, h, 2.0, 4, ROLLING, dataclasses.replace(MID, jpeg_quality=None, lateral_ca=CA),
                            seed=21)
    rolling_ca_jpeg = make_burst(n, w, h, 2.0, 4, ROLLING, dataclasses.replace(MID, lateral_ca=CA), seed=21)
    res["map"]["rolling shutter + aberration (PNG)"] = map_errors(rolling_ca, "similarity")
    mv = movers_burst(n, 320, 240)
    moving = mover_mask(mv)
    scenarios = [("rolling shutter", rolling, None), ("same scene, no wobble", still, None),
                 ("static (shifts, low noise)", static, None), ("aberration (PNG, +-0.2 %)", ca, None),
                 ("rolling shutter + aberration (PNG)", rolling_ca, None),
                 ("rolling shutter + aberration (JPEG 92 4:2:0)", rolling_ca_jpeg, None),
                 ("passers-by", mv, moving)]
    rows = {}
    for name, burst, mask in scenarios:
        with tempfile.TemporaryDirectory() as tmp:  # the burst's files, written once for every option
            burst.write(tmp)
            rows[name] = {label: run_psnr(burst, tmp, mask, local=local, tca=tca)
                          for label, (local, tca) in OPTIONS.items()}
        progress(name, rows[name])
    res["psnr"] = rows
    emit_markdown(json.dumps(res, indent=1), a.json)  # printed, and written to --json
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
