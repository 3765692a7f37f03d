"""Superresolution by frame count: the kernel merge and its restoration against
today's merge and one frame, on the resolution chart and on a natural photo.

Each burst is rendered by ``superres_gpu.synth`` (hand-held motion, optics blur
0.5 frame px, mid-ISO noise, JPEG 92, 2x) with known truth; ``superres run``
merges the first N frames (N = 4, 16, 64 by default) with each method.  Figures:
PSNR against the sharp scene and against the scene through the optics, SSIM
against the sharp scene, and on the chart the ISO 12233 slanted-edge MTF50 and
MTF at the output's Nyquist frequency (cycles per output px) and the Siemens
star's resolved radius (output px; smaller is better), plus the merge stage's
seconds per frame.  The natural scenes are the first frame of
``../shared/data/real/pixlsus_bookshelf_nexus5x`` (or ``--photo``): the whole
photo, and its lower right quarter (larger flat areas, a box with print),
skipped when absent.  The summary compares the kernel merge with the robust
merge (sharpen auto) by scene and frame count, and the MTF50 at 32 frames
(when counted) with one frame's.

    python -m benchmarks.bench_reconstruction [--counts 4 16 32 64] [--size 256 192] [--markdown out.md]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

from superres_gpu.backends import get_backend
from superres_gpu.bench.baselines import single_frame
from superres_gpu.bench.measure import ROOT, emit_markdown, environment, environment_line
from superres_gpu.bench.quality import ssim
from superres_gpu.metrics import psnr
from superres_gpu.pipeline import PipelineConfig, run
from superres_gpu.pixels import full_scale
from superres_gpu.resolution import slanted_edge_mtf, star_resolved_radius
from superres_gpu.restore import DEFAULT_OPTICS_SIGMA, deconvolve, residual_noise
from superres_gpu.synth import RECIPES, chart_features, make_burst

PHOTO = ROOT.parent / "shared" / "data" / "real" / "pixlsus_bookshelf_nexus5x" / "IMG_20170127_085822.jpg"
ROBUST = "robust, sharpen auto"
KERNEL = "kernel + deconvolution (--merge kernel)"
RUNS = {  # method -> superres run options
    ROBUST: dict(merge="robust"),
    "robust, no restoration": dict(merge="robust", sharpen="off"),
    "kernel, no restoration": dict(merge="kernel", sharpen="off"),
    "kernel isotropic, no restoration": dict(merge="kernel", kernel_shape="isotropic", sharpen="off"),
    "kernel isotropic + deconvolution": dict(merge="kernel", kernel_shape="isotropic"),
    KERNEL: dict(merge="kernel"),
}
SCENES = {  # name -> region of the photo (fractions x0, y0, x1, y1)
    "natural photo": (0.0, 0.0, 1.0, 1.0),
    "natural photo, lower right": (0.5, 0.5, 1.0, 1.0),
}
ONE_RESTORED = "one frame, Lanczos + deconvolution"


def load_photo(path: Path, width: int, height: int, region=(0.0, 0.0, 1.0, 1.0)) -> np.ndarray:
    """The central crop at the frames' aspect of the photo's ``region``
    (fractions x0, y0, x1, y1), float32 RGB in [0, 1]."""
    from superres_gpu.decode import read_frame

    img = read_frame(path).astype(np.float32) / 255.0
    H, W = img.shape[:2]
    img = img[int(region[1] * H) : int(region[3] * H), int(region[0] * W) : int(region[2] * W)]
    h, w = img.shape[:2]
    ch = min(h, int(w * height / width))
    cw = int(ch * width / height)
    y0, x0 = (h - ch) // 2, (w - cw) // 2
    return img[y0 : y0 + ch, x0 : x0 + cw]


def measure(img, burst, features) -> dict:
    row = {"psnr": psnr(img, burst.truth, margin=8), "psnr_blurred": psnr(img, burst.truth_blurred, margin=8),
           "ssim": ssim(img, burst.truth, margin=8)}
    if features is not None:
        x0, y0, x1, y1 = (int(round(v)) for v in features["edge"])
        e = slanted_edge_mtf(np.asarray(img, np.float64)[y0 + 3 : y1 - 3, x0 + 3 : x1 - 3])
        row["mtf50"], row["mtf_nyquist"] = e.mtf50, e.at(0.5)
        cx, cy, r = features["star"]
        row["star_radius"] = star_resolved_radius(np.asarray(img, np.float64), (cx, cy), r).radius
    return row


def restored_single(burst) -> np.ndarray:
    """One frame upscaled with Lanczos4, then the kernel merge's deconvolution
    (optics, pixels and the Lanczos kernel), as far as its own noise allows."""
    B = get_backend("numpy")
    up = single_frame(burst.frames[0], burst.scale)
    top = float(full_scale(up.dtype))
    img = up.astype(np.float32)
    deconvolve(B, img, burst.scale, None, top, residual_noise(B, burst.frames[0]), DEFAULT_OPTICS_SIGMA)
    return np.clip(np.rint(img), 0, top).astype(up.dtype)


def bench_scene(name, burst, counts, progress=None) -> list[dict]:
    import tifffile

    w, h = burst.params["width"], burst.params["height"]
    features = chart_features(w, h, burst.scale) if name == "chart" else None
    rows = []
    for method, img in (("one frame, Lanczos", single_frame(burst.frames[0], burst.scale)),
                        (ONE_RESTORED, restored_single(burst))):
        rows.append({"scene": name, "frames": 1, "method": method, **measure(img, burst, features)})
    with tempfile.TemporaryDirectory(prefix="superres_kernel_") as tmp:
        tmp = Path(tmp)
        paths = burst.write(tmp / "all")
        for n in counts:
            d = tmp / f"n{n}"
            d.mkdir()
            for p in paths[:n]:
                (d / p.name).symlink_to(p)
            for method, opts in RUNS.items():
                out = tmp / f"{n}_{len(rows)}.tif"
                res = run(PipelineConfig(inputs=[str(d)], output=str(out), backend="numpy", **opts))
                used = res.report["summary"]["used"]
                row = {"scene": name, "frames": n, "method": method, **measure(tifffile.imread(out), burst, features),
                       "merge_s_per_frame": res.report["timings"]["merge"] / max(1, used)}
                rows.append(row)
                if progress:
                    progress(f"{name} {n} {method}: {row['psnr']:.2f} dB")
    return rows


def markdown(rows, env, size) -> str:
    lines = [f"Synthetic bursts of {size[0]}x{size[1]} frames at 2x ({environment_line(env)}).", ""]
    for scene in dict.fromkeys(r["scene"] for r in rows):
        chart = scene == "chart"
        head = "| frames | method | PSNR sharp | PSNR optics | SSIM |" + (" MTF50 | MTF@Nyq | star r |" if chart else "")
        lines += [f"**{scene}**", "", head, "|" + "---|" * (head.count("|") - 1)]
        for r in rows:
            if r["scene"] != scene:
                continue
            cells = [str(r["frames"]), r["method"], f"{r['psnr']:.2f}", f"{r['psnr_blurred']:.2f}", f"{r['ssim']:.4f}"]
            if chart:
                cells += [f"{r['mtf50']:.3f}", f"{r['mtf_nyquist']:.3f}", f"{r['star_radius']:.1f}"]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    lines += summary(rows)
    return "\n".join(lines)


def summary(rows) -> list[str]:
    """The targets' figures: the kernel merge against the robust merge by scene
    and frame count, MTF50 at 32 frames against one restored frame, the merge
    stage's cost per frame against the Lanczos merge's."""
    get = {(r["scene"], r["frames"], r["method"]): r for r in rows}
    out = ["PSNR against the sharp scene, `--merge kernel` minus robust (sharpen auto), dB:", ""]
    counts = sorted({r["frames"] for r in rows if r["frames"] > 1})
    out += ["| scene | " + " | ".join(f"{n} frames" for n in counts) + " |", "|---|" + "---|" * len(counts)]
    for scene in dict.fromkeys(r["scene"] for r in rows):
        cells = []
        for n in counts:
            k, rb = get.get((scene, n, KERNEL)), get.get((scene, n, ROBUST))
            cells.append(f"{k['psnr'] - rb['psnr']:+.2f}" if k and rb else "")
        out.append(f"| {scene} | " + " | ".join(cells) + " |")
    out.append("")
    one, k32 = get.get(("chart", 1, ONE_RESTORED)), get.get(("chart", 32, KERNEL))
    if one and k32:
        out.append(f"MTF50 at 32 frames, `--merge kernel` / one frame Lanczos + deconvolution: "
                   f"{k32['mtf50']:.3f} / {one['mtf50']:.3f} = {k32['mtf50'] / one['mtf50']:.2f}x.")
    robust = [r["merge_s_per_frame"] for r in rows if r["method"] == "robust, no restoration"]
    for label, method in (("anisotropic", "kernel, no restoration"), ("isotropic", "kernel isotropic, no restoration")):
        kernel = [r["merge_s_per_frame"] for r in rows if r["method"] == method]
        if robust and kernel:
            out.append(f"Merge stage, kernel ({label}) / Lanczos (robust), seconds per frame, median over the runs: "
                       f"{np.median(kernel) / np.median(robust):.2f}x.")
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_reconstruction", description=__doc__.split("\n\n")[0])
    p.add_argument("--counts", type=int, nargs="+", default=[4, 16, 32, 64])
    p.add_argument("--size", type=int, nargs=2, default=[256, 192], metavar=("W", "H"))
    p.add_argument("--photo", type=Path, default=PHOTO)
    p.add_argument("--markdown", metavar="PATH")
    a = p.parse_args(argv)
    rec = RECIPES["reconstruction"]
    kw = dict(n_frames=max(a.counts), width=a.size[0], height=a.size[1], scale=2.0, factor=rec.factor,
              motion=rec.motion, camera=rec.camera, seed=rec.seed)
    say = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    rows = bench_scene("chart", make_burst(**kw), a.counts, say)
    if a.photo.is_file():
        for name, region in SCENES.items():
            rows += bench_scene(name, make_burst(**kw, scene=load_photo(a.photo, *a.size, region)), a.counts, say)
    else:
        say(f"no natural photo at {a.photo}: chart only")
    emit_markdown(markdown(rows, environment(), a.size), a.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
