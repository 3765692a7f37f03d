"""Alignment of every frame to the reference (never frame to frame).

Coarse
    Phase correlation of Hann-windowed luma at the finest pyramid level whose
    larger side is at most ``pc_size`` pixels (512 by default): recovers
    translations of a good fraction of the frame (tens of pixels at full
    resolution) in one FFT, with a parabolic sub-pixel peak fit.

Fine
    Inverse-compositional Gauss-Newton (Lucas-Kanade / Baker-Matthews) on the
    luma pyramid, coarse to fine, for a global motion model (translation,
    euclidean, similarity, affine or homography).  Steepest-descent images come
    from the reference, at a fixed set of informative points per level (the
    strongest gradients in each cell of a 16-wide grid, masked pixels
    excluded); the frame is sampled there by cubic B-spline interpolation at
    exact positions (a prefiltered B-spline: far less interpolation bias than
    cubic convolution).  Residuals carry a lagged photometric gain/offset (exposure
    changes) and Huber weights (movers, noise outliers).  The coarsest level
    refines a similarity (or the simpler requested model) first, so large
    rotations do not start the full model far from the solution.

Every step runs through the backend (``B``), and each frame's state stays
on the device: the decision to drop a frame (too little overlap, low
correlation, implausible transform) is taken on the device too and read back
once, after the whole burst.

References: B. D. Lucas & T. Kanade (1981); S. Baker & I. Matthews,
"Lucas-Kanade 20 Years On: A Unifying Framework", IJCV 56(3), 2004;
C. D. Kuglin & D. C. Hines, phase correlation (1975).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .backends import base as S
from .errors import ConfigError
from .geometry import MODEL_ID, MODEL_NPARAMS, MOTION_MODELS, normalisation
from .resample import BSPLINE_PREFILTER_RADIUS, alignment_taps, bspline_prefilter_taps

DEFAULT_MODEL = "homography"


@dataclass
class AlignConfig:
    """Tuning of the aligner; the defaults are what the benchmarks measured best."""

    model: str = DEFAULT_MODEL
    pc_size: int = 512  # phase correlation where max(w, h) <= pc_size
    points_fine: int = 1 << 17  # informative points at level 0
    points_coarse: int = 1 << 15  # ... at coarser levels
    iters_coarse: int = 10  # Gauss-Newton iterations at the coarsest level
    iters_mid: int = 5
    iters_fine: int = 4
    min_corr: float = 0.3  # drop a frame whose correlation with the reference is lower
    min_overlap: float = 0.5  # ... or that covers less of the reference
    damping: float = 1e-6  # Levenberg-Marquardt damping (relative to diag H)
    prefilter: float = 1.5  # Gaussian sigma (px) on level 0 before refinement: aliasing bias
    converged_px: float = 1e-4  # a level's iterations stop early below this step (CPU backend only)
    border: int = 2  # pixels at each level's border never used (more where prefiltered)
    grid_cells: int = 16  # cells across the frame for point selection

    def validate(self) -> None:
        if self.model not in MOTION_MODELS:
            raise ConfigError(f"unknown motion model {self.model!r}; choose one of {', '.join(MOTION_MODELS)}")
        if self.pc_size < 32:
            raise ConfigError("pc_size must be at least 32")


def coarse_model(model: str) -> str:
    """The model refined first at the coarsest level."""
    return model if MODEL_NPARAMS[model] <= MODEL_NPARAMS["similarity"] else "similarity"


def build_pyramid(B, luma, levels: int) -> list:
    """[level 0, level 1, ...] luma images, each half the previous (B.downsample2)."""
    pyr = [luma]
    for _ in range(levels - 1):
        pyr.append(B.downsample2(pyr[-1]))
    return pyr


def pyramid_shapes(width: int, height: int, levels: int) -> list[tuple[int, int]]:
    shapes = [(height, width)]
    for _ in range(levels - 1):
        h, w = shapes[-1]
        shapes.append((h // 2, w // 2))
    return shapes


def pc_level_for(width: int, height: int, pc_size: int) -> int:
    """Finest level whose larger side is <= pc_size (and both sides >= 16)."""
    level, w, h = 0, width, height
    while max(w, h) > pc_size and min(w // 2, h // 2) >= 16:
        w, h, level = w // 2, h // 2, level + 1
    return level


def hann_window(height: int, width: int) -> np.ndarray:
    wy = np.hanning(height) if height > 1 else np.ones(1)
    wx = np.hanning(width) if width > 1 else np.ones(1)
    return np.outer(wy, wx).astype(np.float32)


def downsample_mask(mask: np.ndarray) -> np.ndarray:
    """Level mask: a pixel is masked if its filter footprint touches the mask."""
    h, w = mask.shape
    m = mask[: h // 2 * 2, : w // 2 * 2]
    m = m[0::2, 0::2] | m[1::2, 0::2] | m[0::2, 1::2] | m[1::2, 1::2]
    p = np.pad(m, 1, mode="edge")
    return p[1:-1, 1:-1] | p[:-2, 1:-1] | p[2:, 1:-1] | p[1:-1, :-2] | p[1:-1, 2:]


def select_points(score: np.ndarray, count: int, cells: int) -> tuple[np.ndarray, np.ndarray]:
    """(ys, xs) of up to ``count`` pixels with the highest score, spread over a
    grid of ``cells`` columns (and as many rows as keep cells square): each
    cell keeps its own best pixels.  Pixels with score <= 0 are never chosen."""
    h, w = score.shape
    valid = score > 0
    if int(valid.sum()) <= count:
        ys, xs = np.nonzero(valid)
        return ys, xs
    nx = max(1, min(cells, w // 4))
    ny = max(1, min(int(round(nx * h / w)), h // 4))
    ch, cw = h // ny, w // nx
    per = max(1, count // (nx * ny))
    blocks = score[: ny * ch, : nx * cw].reshape(ny, ch, nx, cw).transpose(0, 2, 1, 3).reshape(ny * nx, ch * cw)
    if per >= ch * cw:
        idx = np.broadcast_to(np.arange(ch * cw), blocks.shape)
    else:
        idx = np.argpartition(-blocks, per - 1, axis=1)[:, :per]
    picked = np.take_along_axis(blocks, idx, axis=1) > 0
    cell = np.broadcast_to(np.arange(ny * nx)[:, None], idx.shape)
    cy, cx = np.divmod(cell[picked], nx)
    py, px = np.divmod(idx[picked], cw)
    ys = cy * ch + py
    xs = cx * cw + px
    order = np.lexsort((xs, ys))
    return ys[order], xs[order]


class Reference:
    """Everything computed once from the reference frame.

    Holds the reference's luma pyramid, the phase-correlation window and
    spectrum, and per refinement level the (5, N) float32 points array
    (level-0 x, y; luma; gradient per normalised unit x, y) on the backend.
    """

    def __init__(self, B, frame, config: AlignConfig, mask: np.ndarray | None = None):
        config.validate()
        self.B = B
        self.config = config
        h, w = frame.shape[:2]
        self.width, self.height = w, h
        self.norm = normalisation(w, h)
        self.pc_level = pc_level_for(w, h, config.pc_size)
        # at least two levels when the frame allows it: the robust merge works at level 1
        self.levels = max(self.pc_level + 1, 2 if min(w, h) >= 32 else 1)
        luma = B.luma(frame)
        self.pyramid = build_pyramid(B, luma, self.levels)
        pc_img = self.pyramid[self.pc_level]
        ref_taps, self.frame_taps = alignment_taps(config.prefilter)
        # level 0 is refined on the Gaussian-prefiltered luma: aliased detail
        # above the frames' Nyquist frequency differs from frame to frame and
        # biases sub-pixel estimates; a light blur removes most of that bias
        self.level0 = B.sepfilter(luma, ref_taps) if config.prefilter > 0 else luma
        ph, pw = pc_img.shape
        self.window = B.asarray(hann_window(ph, pw))
        self.spectrum = B.reference_spectrum(pc_img, self.window)
        self.points = {}
        level_mask = mask
        for level in range(self.levels):
            if level > 0 and level_mask is not None:
                level_mask = downsample_mask(level_mask)
            self.points[level] = self._points_for_level(level, level_mask)

    def _points_for_level(self, level: int, mask: np.ndarray | None):
        B, cfg = self.B, self.config
        img = self.level0 if level == 0 else self.pyramid[level]
        gx, gy = B.gradient(img)
        img_h, gx_h, gy_h = (B.asnumpy(a) for a in (img, gx, gy))
        score = gx_h.astype(np.float64) ** 2 + gy_h.astype(np.float64) ** 2
        b = self.margin(level) + 1
        score[:b] = 0
        score[-b:] = 0
        score[:, :b] = 0
        score[:, -b:] = 0
        if mask is not None:
            score[mask[: score.shape[0], : score.shape[1]]] = 0
        count = cfg.points_fine if level == 0 else cfg.points_coarse
        ys, xs = select_points(score, count, cfg.grid_cells)
        f = float(2**level)
        _, _, sc = self.norm
        pts = np.empty((5, ys.size), dtype=np.float32)
        pts[S.PT_X] = f * (xs + 0.5) - 0.5
        pts[S.PT_Y] = f * (ys + 0.5) - 0.5
        pts[S.PT_R] = img_h[ys, xs]
        pts[S.PT_GX] = gx_h[ys, xs] * (sc / f)
        pts[S.PT_GY] = gy_h[ys, xs] * (sc / f)
        return B.asarray(pts)

    def margin(self, level: int) -> int:
        """Pixels at a level's border whose filtered values saw replicated edges
        (B-spline prefilter, and the Gaussian at level 0), capped at a fifth of
        the level's smaller side for tiny frames."""
        m = self.config.border + BSPLINE_PREFILTER_RADIUS
        if level == 0 and self.config.prefilter > 0:
            m += int(np.ceil(3.0 * self.config.prefilter))
        h, w = self.pyramid[level].shape
        return max(1, min(m, min(h, w) // 5))

    def frame_coefficients(self, pyr: list) -> list:
        """B-spline coefficients of a frame's refinement levels (level 0 also
        gets the Gaussian prefilter, folded into the same separable filter)."""
        B = self.B
        taps = bspline_prefilter_taps()
        return [B.sepfilter(img, self.frame_taps if level == 0 else taps) for level, img in enumerate(pyr)]

    def schedule(self) -> list[tuple[int, str, int]]:
        """[(level, model, iterations), ...] coarse to fine."""
        cfg = self.config
        coarse = coarse_model(cfg.model)
        steps = []
        levels = list(range(self.pc_level, -1, -1))
        for i, level in enumerate(levels):
            if i == 0:
                steps.append((level, coarse, cfg.iters_coarse))
                if len(levels) == 1:
                    steps.append((level, cfg.model, cfg.iters_fine))
            elif level == 0:
                steps.append((level, cfg.model, cfg.iters_fine))
            else:
                steps.append((level, cfg.model, cfg.iters_mid))
        return steps

    def reference_state(self):
        """State of the reference itself: identity, accepted."""
        return self.B.asarray(S.identity_state())


def align_frame(B, ref: Reference, frame, luma=None):
    """Align one frame (uint8/uint16 on the backend) to the reference.

    Returns the frame's state vector on the backend (``backends.base``
    layout): T, Tinv, photometric gain/offset, diagnostics and the accept flag.
    """
    return align_frame_full(B, ref, frame, luma)[0]


def align_frame_full(B, ref: Reference, frame, luma=None):
    """As :func:`align_frame`, returning (state, the frame's B-spline
    coefficient pyramid) so that the merge can reuse the coefficients."""
    if luma is None:
        luma = B.luma(frame)
    pyr = build_pyramid(B, luma, ref.levels)
    state = B.asarray(S.identity_state())
    surface = B.phase_correlation(ref.spectrum, pyr[ref.pc_level], ref.window)
    B.peak_to_state(surface, state, ref.pc_level)
    coef = ref.frame_coefficients(pyr)
    for level, model, iters in ref.schedule():
        mid = MODEL_ID[model]
        for it in range(iters):
            sums = B.align_reduce(coef[level], ref.points[level], state, mid, level, ref.norm, ref.margin(level))
            B.align_update(sums, state, mid, ref.norm, ref.config.damping)
            # Where reading the state costs nothing (the CPU), stop a level once
            # converged; a GPU runs the fixed count rather than sync every step.
            if B.host_state and it >= 1 and state[S.S_STEP] < ref.config.converged_px:
                break
    B.align_finalize(state, ref.width, ref.height, ref.config.min_corr, ref.config.min_overlap)
    return state, coef


def drop_reason(state: np.ndarray, config: AlignConfig) -> str | None:
    """Human-readable reason a frame was dropped (None if it was merged)."""
    if state[S.S_ACCEPT] != 0.0:
        return None
    status = int(state[S.S_STATUS])
    if status == S.STATUS_SINGULAR:
        return "alignment failed: too little texture or overlap to solve the motion"
    if status == S.STATUS_NONFINITE:
        return "alignment failed: the solution diverged"
    if status == S.STATUS_IMPLAUSIBLE:
        return "alignment failed: implausible motion (diverged)"
    if status == S.STATUS_LOW_OVERLAP:
        return f"alignment failed: covers only {100 * state[S.S_OVERLAP]:.0f}% of the reference (< {100 * config.min_overlap:.0f}%)"
    if status == S.STATUS_LOW_CORR:
        return f"alignment failed: correlation with the reference {state[S.S_CORR]:.2f} < {config.min_corr:.2f}"
    return "alignment failed"
