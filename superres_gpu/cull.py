"""Blur culling and reference choice, without per-camera calibration.

Sharpness
    The detail energy of a frame is the mean square of its luma filtered by a
    Laplacian of Gaussian (sigma 1 px at half resolution).  White noise of
    standard deviation sigma adds exactly ``sigma^2 * sum(k^2)`` to that mean
    square (k: the filter's taps), so subtracting it leaves the energy of the
    scene's detail.  The noise level is measured on the frame itself: the
    median absolute response of Immerkaer's operator (a difference of two
    Laplacians that cancels smooth image structure; J. Immerkaer, "Fast noise
    variance estimation", CVIU 1996), made robust with the median (Donoho &
    Johnstone 1994) and taken over the half of the image with the least local
    structure so that texture does not pass for noise.  High ISO therefore no
    longer looks sharp.

Flags
    A frame is flagged when its sharpness is below ``threshold`` times the
    burst's median sharpness and also below the median by more than 3.5
    robust standard deviations (MAD) of the burst's log-sharpness: blurred
    relative to the rest of the burst, never because of the burst's natural
    spread.

Frames are read for scoring at half resolution (JPEG decodes straight to a
half-size grey image in the DCT domain, several times faster than a full
decode); the 1/8-size thumbnails made at the same time let ``--reference
sharpest`` prefer a sharp frame that agrees with the others.

:func:`select` applies the scores to a run (which frames are left out, which
is the reference); :func:`cull_files` is the ``superres cull`` command.
"""

from __future__ import annotations

import math
from contextlib import nullcontext
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .decode import cv2_quiet, read_half_luma
from .discover import SKIP_SUFFIX, FrameInfo, check_burst, list_inputs, probe
from .errors import ConfigError, InputError, OutputError
from .interp import gaussian_taps
from .resources import DEFAULT_MAX_MEGAPIXELS

DEFAULT_THRESHOLD = 0.75
MAD_K = 3.5
LOG_SIGMA = 0.5


@dataclass
class FrameScore:
    path: Path
    sharpness: float  # noise-corrected detail energy (luma^2 units, half resolution)
    noise: float  # estimated noise standard deviation (luma, half resolution)
    raw: float  # detail energy before the noise correction
    thumb: np.ndarray = field(repr=False, default=None)  # 1/8-size luma, float32
    flagged: bool = False
    ratio: float = 1.0  # sharpness / burst median

    @property
    def reason(self) -> str | None:
        if not self.flagged:
            return None
        return f"blurred: sharpness {self.ratio:.2f} of the burst's median"


def _log_kernel(sigma: float = LOG_SIGMA) -> tuple[np.ndarray, float]:
    """Separable Gaussian taps and sum(k^2) of the 2-D LoG filter they make
    with the 5-point Laplacian (measured on an impulse)."""
    import cv2

    g = gaussian_taps(sigma)
    r = len(g) // 2 + 2
    imp = np.zeros((2 * r + 1, 2 * r + 1), np.float64)
    imp[r, r] = 1.0
    k = cv2.Laplacian(cv2.sepFilter2D(imp, cv2.CV_64F, g.astype(np.float64), g.astype(np.float64)), cv2.CV_64F, ksize=1)
    return g, float(np.sum(k * k))


def estimate_noise(luma: np.ndarray) -> float:
    """Noise standard deviation of a luma image (see the module docstring)."""
    import cv2

    y = luma.astype(np.float32)
    r = cv2.filter2D(y, cv2.CV_32F, _IMMERKAER, borderType=cv2.BORDER_REFLECT)[1:-1, 1:-1]
    gx = cv2.Sobel(y, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(y, cv2.CV_32F, 0, 1, ksize=3)
    activity = cv2.GaussianBlur(gx * gx + gy * gy, (0, 0), 2.0)[1:-1, 1:-1]
    calm = activity <= np.median(activity)
    if calm.sum() < 16:
        calm = np.ones_like(calm)
    # |N|_2 = 6 for the kernel below; 0.6745: median |x| of a unit normal
    return float(np.median(np.abs(r[calm])) / (0.6745 * 6.0))


# Immerkaer (1996): a difference of two Laplacians, blind to planes and, nearly,
# to smooth curvature, so its output on a photo is mostly the noise.
_IMMERKAER = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)


def sharpness(luma: np.ndarray) -> tuple[float, float, float]:
    """(noise-corrected detail energy, noise sigma, raw energy) of a luma image."""
    import cv2

    g, k2 = _log_kernel()
    y = luma.astype(np.float32)
    resp = cv2.Laplacian(cv2.sepFilter2D(y, cv2.CV_32F, g, g, borderType=cv2.BORDER_REFLECT), cv2.CV_32F, ksize=1)
    m = len(g)
    resp = resp[m:-m, m:-m] if min(resp.shape) > 4 * m else resp
    raw = float(np.mean(resp.astype(np.float64) ** 2))
    sigma = estimate_noise(y)
    return max(raw - sigma * sigma * k2, 1e-12), sigma, raw


def _half_luma_and_thumb(info: FrameInfo) -> tuple[np.ndarray, np.ndarray]:
    """Half-resolution luma in [0,1] and a 1/8-size thumbnail of a frame."""
    cv2 = cv2_quiet()
    half = read_half_luma(info)
    h, w = half.shape
    thumb = cv2.resize(half, (max(1, w // 4), max(1, h // 4)), interpolation=cv2.INTER_AREA)
    return half, thumb


def score_frame(info: FrameInfo | str | Path) -> FrameScore:
    if not isinstance(info, FrameInfo):
        info = probe(info)
    half, thumb = _half_luma_and_thumb(info)
    s, n, raw = sharpness(half)
    return FrameScore(info.path, s, n, raw, thumb)


def score_burst(infos: list[FrameInfo], threads: int = 4, progress=None) -> list[FrameScore]:
    """Score every frame (threads; decoding releases the GIL)."""
    cv2_quiet()  # OpenCV imported here, before the threads (see cv2_quiet)
    out: list = [None] * len(infos)
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        futures = {pool.submit(score_frame, info): i for i, info in enumerate(infos)}
        done = 0
        for fut in futures:
            out[futures[fut]] = fut.result()
            done += 1
            if progress:
                progress("cull", done, len(infos))
    return out


def flag_blurred(scores: list[FrameScore], threshold: float = DEFAULT_THRESHOLD) -> list[FrameScore]:
    """Set ``flagged`` and ``ratio`` on each score (see the module docstring)."""
    s = np.array([max(f.sharpness, 1e-12) for f in scores])
    med = float(np.median(s))
    cut = med * flag_cut_ratio(scores, threshold)
    for f, v in zip(scores, s):
        f.ratio = float(v / med)
        f.flagged = bool(v < cut) and len(scores) >= 3
    return scores


def choose_sharpest(scores: list[FrameScore], near: float = 0.85) -> int:
    """Index of the reference for ``--reference sharpest``.

    Candidates are the unflagged frames whose sharpness is within ``near`` of
    the sharpest; among them, the one whose thumbnail agrees best with the other
    frames' (median over the others of the RMS difference after a phase-
    correlation translation) wins, so a sharp frame with a passer-by in front
    loses to an equally sharp frame without.
    """
    import cv2

    ok = [i for i, f in enumerate(scores) if not f.flagged] or list(range(len(scores)))
    top = max(scores[i].sharpness for i in ok)
    cands = [i for i in ok if scores[i].sharpness >= near * top]
    if len(cands) == 1:
        return cands[0]
    thumbs = [f.thumb.astype(np.float32) for f in scores]
    h, w = thumbs[0].shape
    win = cv2.createHanningWindow((w, h), cv2.CV_32F) if min(h, w) > 1 else None

    def disagreement(i: int) -> float:
        errs = []
        for j in ok:
            if j == i:
                continue
            (dx, dy), _ = cv2.phaseCorrelate(thumbs[i], thumbs[j], win)
            M = np.float32([[1, 0, dx], [0, 1, dy]])
            moved = cv2.warpAffine(thumbs[j], M, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                   borderValue=np.nan)
            d = moved - thumbs[i]
            m = max(1, min(h, w) // 10)
            d = d[m:-m, m:-m]
            d = d[np.isfinite(d)]
            errs.append(float(np.sqrt(np.mean(d * d))) if d.size else math.inf)
        return float(np.median(errs)) if errs else 0.0

    return min(cands, key=lambda i: (disagreement(i), -scores[i].sharpness))


def score_plot(scores: list[FrameScore], threshold: float) -> np.ndarray:
    """An 8-bit RGB bar chart of the burst's sharpness (relative to the median),
    flagged frames in red, the flagging threshold as a dashed line."""
    import cv2

    n = len(scores)
    bar = max(6, min(40, 900 // max(n, 1)))
    left, top, bottom, height = 60, 40, 50, 300
    width = left + n * bar + 20
    img = np.full((top + height + bottom, max(width, 420), 3), 255, np.uint8)
    vmax = max(1.5, max(s.ratio for s in scores) * 1.05)

    def ypos(v):
        return int(top + height - height * min(v, vmax) / vmax)

    for k, s in enumerate(scores):
        x0 = left + k * bar + 1
        colour = (40, 40, 210) if s.flagged else (170, 120, 40)  # BGR: red / blue
        cv2.rectangle(img, (x0, ypos(s.ratio)), (x0 + bar - 3, top + height), colour, -1)
        if n <= 60 and (k % max(1, n // 20) == 0):
            cv2.putText(img, str(k), (x0, top + height + 15), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 0, 0), 1, cv2.LINE_AA)
    for v in (0.5, 1.0, 1.5):
        if v <= vmax:
            cv2.putText(img, f"{v:.1f}", (10, ypos(v) + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    med = flag_cut_ratio(scores, threshold)
    y = ypos(med)
    for x in range(left, left + n * bar, 10):
        cv2.line(img, (x, y), (x + 5, y), (0, 0, 0), 1)
    cv2.line(img, (left, top + height), (left + n * bar, top + height), (0, 0, 0), 1)
    cv2.putText(img, "sharpness / burst median (red: flagged as blurred; dashed: threshold)", (10, 22),
                cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, "frame (name order)", (left, top + height + 38), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1,
                cv2.LINE_AA)
    return np.ascontiguousarray(img[..., ::-1])


def flag_cut_ratio(scores: list[FrameScore], threshold: float = DEFAULT_THRESHOLD) -> float:
    """The flagging threshold of :func:`flag_blurred`, relative to the median."""
    s = np.array([max(f.sharpness, 1e-12) for f in scores])
    med = float(np.median(s))
    mad = 1.4826 * float(np.median(np.abs(np.log(s) - np.log(med))))
    return min(threshold, math.exp(-MAD_K * mad))


def select(scores: list[FrameScore], ref_idx: int, sharpest: bool, cull: bool, warn) -> tuple[int, list[bool]]:
    """Apply flagged ``scores`` to a run: (the reference's index, per frame
    whether it is left out).  ``sharpest`` chooses the reference with
    :func:`choose_sharpest` (else ``ref_idx`` stays); with ``cull`` every
    flagged frame but the reference is left out, with a warning."""
    if sharpest:
        ref_idx = choose_sharpest(scores)
    culled = [bool(cull and s.flagged and i != ref_idx) for i, s in enumerate(scores)]
    if cull:
        for s, c in zip(scores, culled):
            if c:
                warn(f"{s.path.name}: left out, {s.reason}")
        ref = scores[ref_idx]
        if ref.flagged:
            warn(f"the reference {ref.path.name} looks blurred ({ref.reason}); consider --reference sharpest")
    return ref_idx, culled


def cull_files(inputs, threshold: float, rename: bool = False, plot=None, threads: int = 4, progress=None,
               overwrite: bool = False, max_megapixels: float = DEFAULT_MAX_MEGAPIXELS):
    """The ``superres cull`` command: score and flag a burst, optionally save the
    bar chart to ``plot`` (an existing file only with ``overwrite``, never an
    input) and rename the flagged files to NAME.not_sharp_enough.

    Returns (scores, {path: new path} of the renamed files).
    """
    from .options import check_fraction
    from .output import AtomicOutput, committed, committing, encode_png

    check_fraction(threshold, "--threshold")
    paths = list_inputs(inputs)
    if len(paths) < 2:
        where = ", ".join(str(p) for p in inputs)
        raise InputError("culling needs a burst of at least 2 frames", str(paths[0]) if paths else where)
    if plot and not str(plot).lower().endswith(".png"):
        raise ConfigError(f"--plot {plot}: the chart is a PNG; give it a .png name")
    folders = list({p.resolve().parent: None for p in paths})
    plot_out = AtomicOutput(plot, overwrite=overwrite, protect=paths, protect_dirs=folders) if plot else None
    with plot_out if plot_out is not None else nullcontext():
        infos = [probe(p, max_megapixels) for p in paths]
        check_burst(infos, infos[0])  # one burst, as superres run takes it: sharpness is relative to its median
        scores = flag_blurred(score_burst(infos, threads, progress), threshold)
        if plot_out is not None:
            plot_out.write_bytes(encode_png(score_plot(scores, threshold)))
            plot_out.commit(last=not rename)
    targets = {}
    if rename:
        for s in scores:
            if s.flagged:
                t = Path(str(s.path) + SKIP_SUFFIX)
                if t.exists():
                    raise OutputError("cannot rename: the target already exists", str(t))
                targets[s.path] = t
        if targets:
            committing()
        for src, dst in targets.items():
            src.rename(dst)
        committed()
    return scores, targets
