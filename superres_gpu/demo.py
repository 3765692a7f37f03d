"""``superres demo``: the embedded default.

Renders a hand-held burst of a resolution chart with known motion, optics
blur, decimation, noise and JPEG compression, merges it with the real
pipeline twice (the default merge, kernel regression with its restoration,
written as ``result.tif``, and ``--merge robust``, the Lanczos-resampling
merge, ``result_robust.tif``), and writes a
comparison PNG: the full views of one frame upscaled with Lanczos and of both
merges, then zoomed crops (Siemens star, finest bars, zone plate, colour
lines) of the truth and of each image, beside each image's PSNR against the
sharp chart, slanted-edge MTF50 and the star's resolved radius.  The same
figures go into ``demo.json``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from .errors import ConfigError, OutputError
from .metrics import psnr
from .options import check_scale
from .output import write_png, write_text
from .pipeline import PipelineConfig, run
from .pixels import full_scale
from .resolution import slanted_edge_mtf, star_resolved_radius
from .synth import chart_features, recipe_burst


def demo_burst(frames: int = 16, scale: float = 2.0, seed: int = 7):
    """The demo's synthetic burst (the ``demo`` recipe; seeded, reproducible)."""
    return recipe_burst("demo", frames=frames, scale=scale, seed=seed)


def lanczos_upscale(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    """One frame upscaled to width x height with OpenCV's Lanczos4, as uint16."""
    import cv2

    up = cv2.resize(frame.astype(np.float32), (width, height), interpolation=cv2.INTER_LANCZOS4)
    return np.clip(np.rint(up * (65535.0 / full_scale(frame.dtype))), 0, 65535).astype(np.uint16)


def _to8(a: np.ndarray) -> np.ndarray:
    if a.dtype == np.uint16:
        return (a.astype(np.float32) / 257.0 + 0.5).astype(np.uint8)
    if a.dtype == np.uint8:
        return a
    return np.clip(a * 255.0 + 0.5, 0, 255).astype(np.uint8)


CROP_ZOOM = 3
GAP = 8
LABEL_H = 28
TEXT_W = 340  # the figures' column left of each row of crops


def comparison_layout(width: int, height: int, crops, rows: int, zoom: int = CROP_ZOOM) -> dict:
    """Where :func:`comparison_image` puts things, in px of the picture.

    ``views``: the (x, y) of each full view's top-left corner (one per image,
    side by side below their labels); ``tiles[r][c]``: the (x, y) of the
    zoomed crop ``c`` of crop row ``r`` (row 0 is the truth, then one row
    per image, in order); ``shape``: the picture's (height, width).
    """
    views = [(k * (width + GAP), LABEL_H) for k in range(rows)]
    y = LABEL_H + height + GAP + LABEL_H  # a line naming the crops above their columns
    tiles = []
    for _ in range(rows + 1):
        x, row_h = TEXT_W + GAP, 0
        row = []
        for _cx, _cy, size in crops:
            row.append((x, y))
            x += size * zoom + GAP
            row_h = max(row_h, size * zoom)
        tiles.append(row)
        y += row_h + GAP
    full_w = rows * width + (rows - 1) * GAP
    crop_w = TEXT_W + GAP + sum(s * zoom + GAP for *_, s in crops) - GAP
    return {"views": views, "tiles": tiles, "shape": (y - GAP, max(full_w, crop_w))}


def comparison_image(truth: np.ndarray, images, crops, zoom: int = CROP_ZOOM, crop_names=()) -> np.ndarray:
    """An 8-bit RGB picture: the full views side by side, then one row of
    zoomed crops per image, the truth's first, each row with its name and
    figures in a column on its left.

    ``images`` is a list of (name, image, figure lines); ``crops`` a list of
    (x, y, size) in px of the images (all of the truth's shape), named by
    ``crop_names`` above their columns; see :func:`comparison_layout` for
    where each piece lands.
    """
    import cv2

    h, w = truth.shape[:2]
    lay = comparison_layout(w, h, crops, len(images), zoom)
    pic = np.full(lay["shape"] + (3,), 255, np.uint8)

    def text(lines, x, y, scale=0.6, step=26):
        for k, line in enumerate(lines):
            cv2.putText(pic, line, (x + 6, y + 20 + k * step), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1,
                        cv2.LINE_AA)

    rows = [("sharp chart (truth)", truth, [])] + list(images)
    for (x, y), (name, img, _) in zip(lay["views"], images):
        pic[y : y + h, x : x + w] = _to8(img)
        text([name], x, 0)
    for (x, y), name in zip(lay["tiles"][0], crop_names):
        text([name], x, y - LABEL_H)
    for row, (name, img, lines) in zip(lay["tiles"], rows):
        a = _to8(img)
        for (x, y), (cx, cy, size) in zip(row, crops):
            c = cv2.resize(a[cy : cy + size, cx : cx + size], (size * zoom, size * zoom),
                           interpolation=cv2.INTER_NEAREST)
            pic[y : y + c.shape[0], x : x + c.shape[1]] = c
        text([name] + list(lines), 0, row[0][1], scale=0.55)
    return pic


CROP_NAMES = ("Siemens star", "finest bar groups", "zone plate rim", "finest colour lines")


def demo_crops(width: int, height: int) -> list:
    """The comparison's crops (x, y, size) on the demo's output grid: the
    Siemens star, the finest bar groups, the zone plate's rim and the finest
    colour lines."""
    u = min(width, height) / 100.0
    aspect = width / height
    crops = [
        (int((20 * aspect - 9) * u), int(15 * u), int(18 * u)),  # Siemens star centre
        (int((44 * aspect + 33) * u), int(4 * u), int(18 * u)),  # the finest bar groups
        (int((22 * aspect + 4) * u), int(70 * u), int(16 * u)),  # zone plate rim (above the frames' Nyquist)
        (int((48 * aspect + 20) * u), int(50 * u), int(18 * u)),  # the finest colour lines
    ]
    return [(max(0, min(x, width - s)), max(0, min(y, height - s)), s) for x, y, s in crops]


def resolution_figures(img: np.ndarray, features: dict) -> dict:
    """MTF50 (cycles per output px) of the chart's slanted edge and the
    Siemens star's resolved radius (output px) of a demo image."""
    a = np.asarray(img, np.float64)
    mtf50 = float("nan")
    if features["edge"] is not None:
        x0, y0, x1, y1 = (int(round(v)) for v in features["edge"])
        # 3 px in from the tile's border keeps the neighbouring tiles out of the edge's region
        mtf50 = slanted_edge_mtf(a[y0 + 3 : y1 - 3, x0 + 3 : x1 - 3]).mtf50
    cx, cy, r = features["star"]
    return {"mtf50": None if not np.isfinite(mtf50) else float(mtf50),
            "star_radius": float(star_resolved_radius(a, (cx, cy), r).radius)}


DEMO_FILES = ("result.tif", "result_robust.tif", "report.json", "comparison.png", "demo.json")


def _demo_folder(out: Path, overwrite: bool) -> Path:
    """Check and make the demo's folder; return its ``burst`` subfolder.

    The folder may be new or empty, or hold an earlier demo's results, which
    are replaced only with ``overwrite``; a ``burst`` subfolder must be new,
    empty or hold only an earlier demo's frames (``frame_NNN.jpg``), so no
    file of the user's is ever removed.
    """
    if out.exists() and not out.is_dir():
        raise OutputError("exists and is not a folder; --out names the demo's folder", str(out))
    burst_dir = out / "burst"
    if burst_dir.exists() and not burst_dir.is_dir():
        raise OutputError("exists and is not a folder", str(burst_dir))
    if burst_dir.is_dir():
        for p in burst_dir.iterdir():
            if not re.fullmatch(r"frame_\d{3,}\.(jpg|png)", p.name) or not p.is_file():
                raise OutputError(f"holds {p.name}, which an earlier demo did not write; give another --out",
                                  str(burst_dir))
        if any(burst_dir.iterdir()) and not overwrite:
            raise OutputError("holds an earlier demo's burst (use --overwrite to replace it)", str(burst_dir))
    for name in DEMO_FILES:
        if (out / name).exists() and not overwrite:
            raise OutputError("already exists (use --overwrite to replace it)", str(out / name))
    try:
        burst_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"cannot create the folder ({e.strerror})", str(burst_dir)) from None
    return burst_dir


def run_demo(out_dir, frames: int = 16, scale: float = 2.0, seed: int = 7, backend: str = "auto", progress=None,
             warn=None, overwrite: bool = False) -> dict:
    """Render, merge, compare; return the figures (also written as demo.json).

    Nothing is left in ``out_dir`` when the demo fails.
    """
    if isinstance(frames, bool) or not isinstance(frames, int) or frames < 2:
        raise ConfigError(f"--frames must be a whole number of at least 2 (got {frames})")
    check_scale(scale)
    out = Path(out_dir)
    existed = out.is_dir()
    burst_dir = _demo_folder(out, overwrite)
    try:
        return _run_demo(out, burst_dir, frames, scale, seed, backend, progress, warn)
    except BaseException:
        # an earlier demo's files were already checked to be the demo's own
        for p in burst_dir.glob("frame_*"):
            p.unlink(missing_ok=True)
        for name in DEMO_FILES:
            (out / name).unlink(missing_ok=True)
        for d in (burst_dir, out) if not existed else (burst_dir,):
            try:
                d.rmdir()
            except OSError:
                pass
        raise


def _run_demo(out: Path, burst_dir: Path, frames, scale, seed, backend, progress, warn) -> dict:
    for old in burst_dir.glob("frame_*"):
        old.unlink()
    if progress:
        progress("render", 0, 1)
    burst = demo_burst(frames, scale, seed)
    burst.write(burst_dir)
    if progress:
        progress("render", 1, 1)
    result_path = out / "result.tif"
    res = run(
        PipelineConfig(
            inputs=[str(burst_dir)],
            output=str(result_path),
            scale=scale,
            backend=backend,
            report=str(out / "report.json"),
            overwrite=True,
        ),
        progress=progress,
        warn=warn,
    )
    robust_path = out / "result_robust.tif"

    def robust_progress(stage, done, total):
        if progress and stage == "frames":
            progress("robust", done, total)

    run(
        PipelineConfig(inputs=[str(burst_dir)], output=str(robust_path), scale=scale, backend=backend,
                       merge="robust", overwrite=True),
        progress=robust_progress,
        warn=warn,
    )
    import tifffile

    merged = tifffile.imread(result_path)
    robust = tifffile.imread(robust_path)
    h, w = merged.shape[:2]
    single = lanczos_upscale(burst.frames[0], w, h)
    truth, truth_b = burst.truth[:h, :w], burst.truth_blurred[:h, :w]
    features = chart_features(burst.params["width"], burst.params["height"], scale)
    figures = {
        "frames": frames,
        "scale": scale,
        "backend": res.report["backend"],
        "output": str(result_path),
        "output_robust": str(robust_path),
        "comparison": str(out / "comparison.png"),
        # the output grid's Nyquist limit on the 36-spoke star: 36 / (2 pi 0.5) px
        "star_radius_nyquist": 36.0 / np.pi,
    }
    images = []
    for key, name, img in (("single", "one frame, Lanczos upscale", single),
                           ("merged", "superres merge (default: kernel)", merged),
                           ("robust", "superres --merge robust", robust)):
        res_fig = resolution_figures(img, features)
        figures[f"psnr_{key}"] = psnr(img, truth)
        figures[f"psnr_{key}_blurred"] = psnr(img, truth_b)
        figures[f"mtf50_{key}"] = res_fig["mtf50"]
        figures[f"star_radius_{key}"] = res_fig["star_radius"]
        mtf = "n/a" if res_fig["mtf50"] is None else f"{res_fig['mtf50']:.3f} cy/px"
        images.append((name, img, [f"PSNR {figures[f'psnr_{key}']:.2f} dB (sharp)", f"MTF50 {mtf}",
                                   f"star radius {res_fig['star_radius']:.1f} px"]))
    pic = comparison_image(truth, images, demo_crops(w, h), crop_names=CROP_NAMES)
    write_png(out / "comparison.png", pic)
    write_text(out / "demo.json", json.dumps(figures, indent=1))
    return figures
