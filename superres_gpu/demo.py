"""``superres demo``: the embedded default.

Renders a hand-held burst of a resolution chart with known motion, optics
blur, decimation, noise and JPEG compression, merges it with the real
pipeline, and writes the result TIFF, a side-by-side comparison PNG (one frame
upscaled with Lanczos vs the merge, with zoomed crops) and the PSNR of both
against the known truth.
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
from .synth import recipe_burst


def demo_burst(frames: int = 16, scale: float = 2.0, seed: int = 7):
    """The demo's synthetic burst (the ``demo`` recipe; seeded, reproducible)."""
    return recipe_burst("demo", frames=frames, scale=scale, seed=seed)


def lanczos_upscale(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    """One frame upscaled to width x height with OpenCV's Lanczos4, as uint16."""
    import cv2

    up = cv2.resize(frame.astype(np.float32), (width, height), interpolation=cv2.INTER_LANCZOS4)
    return np.clip(np.rint(up * (65535.0 / full_scale(frame.dtype))), 0, 65535).astype(np.uint16)


def comparison_image(truth: np.ndarray, single: np.ndarray, merged: np.ndarray, crops, zoom: int = 3) -> np.ndarray:
    """An 8-bit RGB picture: full views side by side, then zoomed crops
    (truth | one frame upscaled | merged) for each (x, y, size) crop."""
    import cv2

    def to8(a):
        if a.dtype == np.uint16:
            return (a.astype(np.float32) / 257.0 + 0.5).astype(np.uint8)
        return np.clip(a * 255.0 + 0.5, 0, 255).astype(np.uint8)

    t8, s8, m8 = to8(truth), to8(single), to8(merged)
    h, w = m8.shape[:2]
    gap = 8
    label_h = 28

    def label(img, text):
        bar = np.full((label_h, img.shape[1], 3), 255, np.uint8)
        cv2.putText(bar, text, (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 1, cv2.LINE_AA)
        return np.vstack([bar, img])

    top = np.hstack(
        [label(s8, "one frame, Lanczos upscale"), np.full((h + label_h, gap, 3), 255, np.uint8), label(m8, "superres merge")]
    )
    rows = [top]
    for x, y, size in crops:
        tiles = []
        for img, name in ((t8, "truth"), (s8, "one frame"), (m8, "merge")):
            c = img[y : y + size, x : x + size]
            c = cv2.resize(c, (size * zoom, size * zoom), interpolation=cv2.INTER_NEAREST)
            tiles.append(label(c, name))
            tiles.append(np.full((c.shape[0] + label_h, gap, 3), 255, np.uint8))
        row = np.hstack(tiles[:-1])
        pad = top.shape[1] - row.shape[1]
        if pad > 0:
            row = np.hstack([row, np.full((row.shape[0], pad, 3), 255, np.uint8)])
        elif pad < 0:
            row = row[:, : top.shape[1]]
        rows.append(np.full((gap, top.shape[1], 3), 255, np.uint8))
        rows.append(row)
    return np.vstack(rows)


DEMO_FILES = ("result.tif", "report.json", "comparison.png", "demo.json")


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
    import tifffile

    merged = tifffile.imread(result_path)
    h, w = merged.shape[:2]
    single = lanczos_upscale(burst.frames[0], w, h)
    truth, truth_b = burst.truth[:h, :w], burst.truth_blurred[:h, :w]
    figures = {
        "frames": frames,
        "scale": scale,
        "backend": res.report["backend"],
        "psnr_single": psnr(single, truth),
        "psnr_merged": psnr(merged, truth),
        "psnr_single_blurred": psnr(single, truth_b),
        "psnr_merged_blurred": psnr(merged, truth_b),
        "output": str(result_path),
        "comparison": str(out / "comparison.png"),
    }
    u = min(w, h) / 100.0
    aspect = w / h
    crops = [
        (int((20 * aspect - 9) * u), int(15 * u), int(18 * u)),  # Siemens star centre
        (int((44 * aspect + 33) * u), int(4 * u), int(18 * u)),  # the finest bar groups
        (int((22 * aspect + 4) * u), int(70 * u), int(16 * u)),  # zone plate rim (above the frames' Nyquist)
        (int((48 * aspect + 20) * u), int(50 * u), int(18 * u)),  # the finest colour lines
    ]
    crops = [(max(0, min(x, w - s)), max(0, min(y, h - s)), s) for x, y, s in crops]
    pic = comparison_image(truth, single, merged, crops)
    write_png(out / "comparison.png", pic)
    write_text(out / "demo.json", json.dumps(figures, indent=1))
    return figures
