"""Robust weights: per-pixel merge weights that leave out what moved.

In the spirit of Wronski et al. 2019 ("Handheld Multi-Frame
Super-Resolution"): each aligned frame is compared with the reference at half
resolution (pyramid level 1; level 0 for tiny frames).  The squared
difference (with the exposure correction) is averaged locally and divided by
what noise (a robust, burst-wide level: the median over the frame) and small
misalignment at edges (a multiple of the reference's local gradient energy)
explain.  Up to ``k1`` times that, the frame counts in full; from ``k2``
times, not at all; linear between.  A person crossing the scene in some
frames thus leaves no ghost, while static detail keeps the full noise
reduction.  Pixels under the user's mask come from the reference alone, in
both the robust and the plain-mean merge.
"""

from __future__ import annotations

import numpy as np

from .interp import gaussian_taps

ROBUST_K1 = 3.0  # local RMS residual (in units of what noise and edges explain) kept in full
ROBUST_K2 = 6.0  # ... and from which a frame's pixels are left out entirely
ROBUST_BETA = 0.125  # (0.35 px)^2: residual misalignment/aliasing tolerated at edges (level px^2)
ROBUST_SMOOTH = 1.5  # Gaussian sigma (level px) of the local residual energy


class RobustWeights:
    """Per-frame merge weights on the reference's level-1 grid (level 0 for tiny frames).

    ``robust=False`` gives the plain mean, with only the mask applied.
    ``level`` is the pyramid level of the weight maps (the accumulator samples
    them there).
    """

    def __init__(self, B, ref, robust: bool = True):
        self.B = B
        self.robust = robust
        self.level = 1 if ref.levels >= 2 else 0
        self.ref_img = ref.level_image(self.level)
        self.margin = ref.margin(self.level)
        self.taps = gaussian_taps(ROBUST_SMOOTH)
        xp = B.xp
        h, w = self.ref_img.shape
        m = ref.masks[self.level]
        self.mask = None if m is None else B.asarray(np.ascontiguousarray(m[:h, :w], dtype=np.float32))
        self.active = robust or self.mask is not None
        if robust:
            gx, gy = B.gradient(self.ref_img)
            self.g = B.sepfilter(gx * gx + gy * gy, self.taps)
        self.rejected_max = xp.zeros((h, w), dtype=xp.float32)  # the most any one frame lost

    def for_frame(self, levels, state):
        """(weights on the level grid or None, device scalar: fraction of the
        frame's covered pixels left out) for one aligned frame with
        :class:`~superres_gpu.align.FrameLevels` ``levels``."""
        B, xp = self.B, self.B.xp
        if not self.active:
            return None, None
        d2, cov = B.robust_residual(levels.coef[self.level], self.ref_img, state, self.level, self.margin)
        if self.robust:
            e = B.sepfilter(d2, self.taps)
            c = B.sepfilter(cov, self.taps)
            scale2 = B.robust_noise_level(e, c, self.g, ROBUST_BETA)
            w = B.robust_weight(e, c, self.g, scale2, ROBUST_BETA, ROBUST_K1, ROBUST_K2, self.mask)
        else:
            w = 1.0 - self.mask
        lost = (1.0 - w) * cov
        xp.maximum(self.rejected_max, lost, out=self.rejected_max)
        frac = lost.sum() / xp.maximum(cov.sum(), 1.0)
        return w, frac

    def picture(self) -> np.ndarray:
        """8-bit RGB picture: the reference in grey, red where a frame was left out
        (the stronger the red, the more completely some frame was left out)."""
        ref = self.B.asnumpy(self.ref_img)
        grey = np.clip(ref * 0.8 + 0.1, 0, 1)
        rej = np.clip(self.B.asnumpy(self.rejected_max), 0.0, 1.0)
        rgb = np.stack([grey * (1 - rej) + rej, grey * (1 - rej), grey * (1 - rej)], axis=-1)
        return np.clip(rgb * 255 + 0.5, 0, 255).astype(np.uint8)
