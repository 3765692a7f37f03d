"""Merge: one Lanczos resampling per frame, straight onto the output grid.

Each frame is read from its native pixels (uint8/uint16) at the positions
where the output grid's pixels fall in it (output -> reference by the scale,
reference -> frame by the inverse of the frame's transform), with the
Lanczos4 kernel, and added to a float32 running weighted mean: ``num`` holds
the sum of values, ``den`` the number of frames that cover each output pixel.
Output pixels a frame does not cover are simply not counted for it, so
borders are never darkened.  Warp and upscale are one lookup, not two.
"""

from __future__ import annotations

import numpy as np

from .geometry import output_size


class Accumulator:
    """Running weighted mean on the output grid, on the backend's device."""

    def __init__(self, B, width: int, height: int, channels: int, scale: float, max_value: int):
        self.B = B
        self.scale = float(scale)
        self.max_value = float(max_value)
        self.width, self.height = output_size(width, height, scale)
        self.channels = channels
        xp = B.xp
        self.num = xp.zeros((self.height, self.width, channels), dtype=xp.float32)
        self.den = xp.zeros((self.height, self.width), dtype=xp.float32)

    def add(self, frame, state, weights=None, weight_level: int = 1) -> None:
        """Resample ``frame`` (on the device) with ``state``'s transform and add
        it, with per-pixel ``weights`` on the reference's level ``weight_level``."""
        self.B.resample_accumulate(frame, state, self.num, self.den, self.scale, self.max_value, weights, weight_level)

    def coverage(self) -> np.ndarray:
        """Host copy of the per-pixel frame count."""
        return self.B.asnumpy(self.den)

    def result(self, sharpen_taps: np.ndarray | None = None) -> np.ndarray:
        """The merged image as uint16 on the host (0..65535 for the input's full range).

        With ``sharpen_taps`` (see ``resample.restoration_taps``) the mean is
        first filtered per channel with that separable filter, which undoes
        the blur of the merge's own resampling.
        """
        B, xp = self.B, self.B.xp
        if sharpen_taps is None:
            out = B.normalize_u16(self.num, self.den, 65535.0 / self.max_value)
            return B.asnumpy(out)
        den = self.den
        mean = self.num  # the mean replaces the sums in place (no second full-size array)
        xp.divide(mean, xp.maximum(den, 1e-12)[..., None], out=mean)
        self.num = None
        for ch in range(self.channels):
            mean[..., ch] = B.sepfilter(xp.ascontiguousarray(mean[..., ch]), sharpen_taps)
        covered = (den > 0).astype(xp.float32)
        out = B.normalize_u16(mean, covered, 65535.0 / self.max_value)
        return B.asnumpy(out)


# --------------------------------------------------------------------------
# Robust merge: per-pixel weights that leave out what moved
# --------------------------------------------------------------------------

ROBUST_K1 = 3.0  # local RMS residual (in units of what noise and edges explain) kept in full
ROBUST_K2 = 6.0  # ... and from which a frame's pixels are left out entirely
ROBUST_BETA = 0.125  # (0.35 px)^2: residual misalignment/aliasing tolerated at edges (level px^2)
ROBUST_SMOOTH = 1.5  # Gaussian sigma (level px) of the local residual energy


class MergeWeights:
    """Per-frame merge weights on the reference's level-1 grid (level 0 for tiny frames).

    Robust mode (in the spirit of Wronski et al. 2019, "Handheld Multi-Frame
    Super-Resolution"): the frame, aligned, is compared with the reference at
    half resolution; the squared difference (with the exposure correction) is
    averaged locally and divided by what noise (a robust, burst-wide level:
    the median over the frame) and small misalignment at edges (a multiple of
    the reference's local gradient energy) explain.  Up to ``k1`` times that,
    the frame counts in full; from ``k2`` times, not at all; linear between.
    A person crossing the scene in some frames thus leaves no ghost, while
    static detail keeps the full noise reduction.  Pixels under the user's
    mask come from the reference alone, in both modes.
    """

    def __init__(self, B, ref, mask: np.ndarray | None = None, robust: bool = True):
        from .align import downsample_mask
        from .resample import gaussian_taps

        self.B = B
        self.robust = robust
        self.level = 1 if ref.levels >= 2 else 0
        self.ref_img = ref.pyramid[1] if self.level == 1 else ref.level0
        self.margin = ref.margin(self.level)
        self.taps = gaussian_taps(ROBUST_SMOOTH)
        xp = B.xp
        h, w = self.ref_img.shape
        self.mask = None
        if mask is not None:
            m = downsample_mask(mask) if self.level == 1 else mask
            self.mask = B.asarray(np.ascontiguousarray(m[:h, :w], dtype=np.float32))
        self.active = robust or self.mask is not None
        if robust:
            gx, gy = B.gradient(self.ref_img)
            self.g = B.sepfilter(gx * gx + gy * gy, self.taps)
        self.rejected_max = xp.zeros((h, w), dtype=xp.float32)  # the most any one frame lost

    def for_frame(self, coef, state):
        """(weights on the level grid or None, device scalar: fraction of the
        frame's covered pixels left out) for one aligned frame; ``coef`` is the
        frame's B-spline coefficient image at ``self.level``."""
        B, xp = self.B, self.B.xp
        if not self.active:
            return None, None
        d2, cov = B.robust_residual(coef, self.ref_img, state, self.level, self.margin)
        if self.robust:
            e = B.sepfilter(d2, self.taps)
            c = B.sepfilter(cov, self.taps)
            with np.errstate(divide="ignore", invalid="ignore"):
                level = xp.where(c > 0.5, e / c - ROBUST_BETA * self.g, xp.nan)
            scale2 = xp.maximum(xp.nan_to_num(xp.nanmedian(level), nan=1.0), 1e-12)
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
