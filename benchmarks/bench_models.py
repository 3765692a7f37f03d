"""Which global motion model fits real hand-held bursts best?

For each real burst under ``../shared/data/real`` (or ``--data``) and each
motion model, every frame is aligned to the first; the aligned frame is then
warped onto the reference grid with the estimated transform (OpenCV Lanczos4,
independent of the aligner) and the RMS luma difference to the reference is
measured over the common area (8 px margin).  Lower is better; the model with
the lowest median residual on the hand-held phone burst is the CLI default.

    python -m benchmarks.bench_models [--data DIR] [--markdown out.md]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from superres_gpu.align import AlignConfig, align_frame
from superres_gpu.backends import get_backend
from superres_gpu.bench.measure import ROOT, emit_markdown, environment, environment_line
from superres_gpu.decode import read_frame
from superres_gpu.discover import list_inputs
from superres_gpu.geometry import MOTION_MODELS
from superres_gpu.reference import Reference
from superres_gpu.state import FrameState

DATASETS = [
    ("pixlsus_bookshelf_nexus5x", "pixlsus_bookshelf_nexus5x"),
    ("mdsp text", "mdsp_milanfar/text"),
    ("mdsp disk", "mdsp_milanfar/disk"),
    ("mdsp Book_case1_small", "mdsp_milanfar/Book_case1_small"),
    ("mdsp Adyoron_small", "mdsp_milanfar/Adyoron_small"),
]


def residual_rms(ref_luma: np.ndarray, frame_luma: np.ndarray, T: np.ndarray, margin: int = 8) -> float:
    import cv2

    h, w = ref_luma.shape
    warped = cv2.warpPerspective(frame_luma, T, (w, h), flags=cv2.INTER_LANCZOS4, borderValue=np.nan)
    valid = np.isfinite(warped)
    valid[:margin] = valid[-margin:] = False
    valid[:, :margin] = valid[:, -margin:] = False
    d = warped[valid] - ref_luma[valid]
    return float(np.sqrt(np.mean(d * d))) if d.size else float("nan")


def run_dataset(B, folder: Path, models) -> dict:
    frames = [read_frame(p) for p in list_inputs([folder])]
    lumas = [B.asnumpy(B.luma(B.asarray(f))) for f in frames]
    out = {}
    for model in models:
        ref = Reference(B, B.asarray(frames[0]), AlignConfig(model=model))
        res, dropped, t = [], 0, 0.0
        for f, lum in zip(frames[1:], lumas[1:]):
            t0 = time.perf_counter()
            st = FrameState.from_vector(B.asnumpy(align_frame(B, ref, B.asarray(f))))
            t += time.perf_counter() - t0
            if not st.accepted:
                dropped += 1
                continue
            res.append(residual_rms(lumas[0], lum, st.T))
        out[model] = {
            "median": statistics.median(res) if res else float("nan"),
            "max": max(res) if res else float("nan"),
            "dropped": dropped,
            "ms_per_frame": 1000 * t / max(1, len(frames) - 1),
            "frames": len(frames),
        }
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_models", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "real"))
    p.add_argument("--backend", default="numpy")
    p.add_argument("--markdown")
    a = p.parse_args(argv)
    data = Path(a.data)
    if not data.is_dir():
        print(f"bench_models: no real data at {data}", file=sys.stderr)
        return 2
    env = environment()
    B = get_backend(a.backend)
    lines = [
        f"Machine: {environment_line(env)}; backend {B.name}",
        "",
        "RMS luma residual (0..1) after alignment, Lanczos4 re-warp, 8 px margin; median / max over frames; dropped frames.",
        "",
        "| burst | frames | " + " | ".join(MOTION_MODELS) + " |",
        "|---|---:|" + "---|" * len(MOTION_MODELS),
    ]
    for label, sub in DATASETS:
        folder = data / sub
        if not folder.is_dir():
            continue
        print(f"{label} ...", file=sys.stderr)
        r = run_dataset(B, folder, MOTION_MODELS)
        best = min(MOTION_MODELS, key=lambda m: r[m]["median"])
        cells = []
        for m in MOTION_MODELS:
            c = f"{r[m]['median']:.4f} / {r[m]['max']:.4f}"
            if r[m]["dropped"]:
                c += f" ({r[m]['dropped']} dropped)"
            cells.append(f"**{c}**" if m == best else c)
        lines.append(f"| {label} | {r[MOTION_MODELS[0]]['frames']} | " + " | ".join(cells) + " |")
    emit_markdown("\n".join(lines), a.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
