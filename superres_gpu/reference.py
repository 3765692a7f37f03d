"""The reference frame: everything computed once per burst that alignment and
the robust weights compare the other frames with.

* the luma pyramid (each level half the previous, ``B.downsample2``);
* the Hann window and spectrum for phase correlation, at the finest level
  whose larger side is at most ``pc_size`` pixels;
* per refinement level, the informative points (the strongest gradients in
  each cell of a grid, masked pixels excluded) with their luma and gradient;
* the user's mask at every level.

Pyramid level L pixel x has its centre at level-0 position 2^L (x + 0.5) - 0.5.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .backends import base as S
from .geometry import normalisation
from .interp import BSPLINE_PREFILTER_RADIUS, alignment_taps

if TYPE_CHECKING:
    from .align import AlignConfig


def build_pyramid(B, luma, levels: int) -> list:
    """[level 0, level 1, ...] luma images, each half the previous (B.downsample2)."""
    pyr = [luma]
    for _ in range(levels - 1):
        pyr.append(B.downsample2(pyr[-1]))
    return pyr


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


def select_points(score, count: int, cells: int, xp=np):
    """(ys, xs) of up to ``count`` pixels with the highest score, spread over a
    grid of ``cells`` columns (and as many rows as keep cells square): each
    cell keeps its own best pixels.  Pixels with score <= 0 are never chosen.
    ``xp`` is the array module of ``score`` (NumPy, or CuPy on the GPU: the
    backends' ``select_points``)."""
    h, w = score.shape
    valid = score > 0
    if int(valid.sum()) <= count:
        ys, xs = xp.nonzero(valid)
        return ys, xs
    nx = max(1, min(cells, w // 4))
    ny = max(1, min(int(round(nx * h / w)), h // 4))
    ch, cw = h // ny, w // nx
    per = max(1, count // (nx * ny))
    blocks = score[: ny * ch, : nx * cw].reshape(ny, ch, nx, cw).transpose(0, 2, 1, 3).reshape(ny * nx, ch * cw)
    if per >= ch * cw:
        idx = xp.broadcast_to(xp.arange(ch * cw), blocks.shape)
    else:
        idx = xp.argpartition(-blocks, per - 1, axis=1)[:, :per]
    picked = xp.take_along_axis(blocks, idx, axis=1) > 0
    cell = xp.broadcast_to(xp.arange(ny * nx)[:, None], idx.shape)
    cy, cx = xp.divmod(cell[picked], nx)
    py, px = xp.divmod(idx[picked], cw)
    ys = cy * ch + py
    xs = cx * cw + px
    order = xp.lexsort(xp.stack([xs, ys]))
    return ys[order], xs[order]


class Reference:
    """Everything computed once from the reference frame (see the module docstring).

    ``points[level]`` is the (5, N) float32 points array of that refinement
    level on the backend (level-0 x, y; luma; gradient per normalised unit
    x, y); ``masks[level]`` the user's mask at that level (host, bool) or None.
    """

    def __init__(self, B, frame, config: "AlignConfig", mask: np.ndarray | None = None):
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
        self.masks: dict[int, np.ndarray | None] = {}
        self.points = {}
        level_mask = mask
        for level in range(self.levels):
            if level > 0 and level_mask is not None:
                level_mask = downsample_mask(level_mask)
            self.masks[level] = level_mask
            self.points[level] = self._points_for_level(level, level_mask)

    def _points_for_level(self, level: int, mask: np.ndarray | None):
        """The level's informative points, chosen and gathered on the backend's
        device (only the mask goes up; nothing full-size comes down)."""
        B, cfg = self.B, self.config
        xp = B.xp
        img = self.level_image(level)
        gx, gy = B.gradient(img)
        score = gx.astype(xp.float64) ** 2 + gy.astype(xp.float64) ** 2
        b = self.margin(level) + 1
        score[:b] = 0
        score[-b:] = 0
        score[:, :b] = 0
        score[:, -b:] = 0
        if mask is not None:
            score[B.asarray(np.ascontiguousarray(mask[: score.shape[0], : score.shape[1]]))] = 0
        count = cfg.points_fine if level == 0 else cfg.points_coarse
        ys, xs = B.select_points(score, count, cfg.grid_cells)
        f = float(2**level)
        _, _, sc = self.norm
        pts = xp.empty((5, ys.size), dtype=xp.float32)
        pts[S.PT_X] = f * (xs + 0.5) - 0.5
        pts[S.PT_Y] = f * (ys + 0.5) - 0.5
        pts[S.PT_R] = img[ys, xs]
        pts[S.PT_GX] = gx[ys, xs] * (sc / f)
        pts[S.PT_GY] = gy[ys, xs] * (sc / f)
        return pts

    def margin(self, level: int) -> int:
        """Pixels at a level's border whose filtered values saw replicated edges
        (B-spline prefilter, and the Gaussian at level 0), capped at a fifth of
        the level's smaller side for tiny frames."""
        m = self.config.border + BSPLINE_PREFILTER_RADIUS
        if level == 0 and self.config.prefilter > 0:
            m += int(np.ceil(3.0 * self.config.prefilter))
        h, w = self.pyramid[level].shape
        return max(1, min(m, min(h, w) // 5))

    def level_image(self, level: int):
        """The reference's luma at pyramid ``level`` as a frame's coefficients at
        that level interpolate it (level 0 with the alignment prefilter), on the
        backend: what alignment and the robust weights compare frames with."""
        return self.level0 if level == 0 else self.pyramid[level]

    def state(self):
        """Alignment state of the reference itself: identity, accepted (on the backend)."""
        return self.B.asarray(S.identity_state())
