"""Robust weights: per-pixel merge weights that leave out what moved.

In the spirit of Wronski et al. 2019 ("Handheld Multi-Frame
Super-Resolution"): each aligned frame is compared with the reference at half
resolution (pyramid level 1; level 0 for tiny frames).  The squared
difference (with the exposure correction) is averaged locally and divided by
what noise (a robust, burst-wide level: the median over the frame) and small
misalignment at edges (a multiple of the reference's local gradient energy)
explain.  Up to ``k1`` times that, the frame counts in full; from ``k2``
times, not at all; linear between.  Raw frames whose file carries a noise
profile (DNG NoiseProfile) replace the burst-wide level by the one the
profile predicts at each pixel from the reference's own signal
(:class:`NoiseModel`): in linear light noise grows with brightness, so one
level for the whole frame takes static bright detail for motion where the
frame is mostly dark, and misses faint motion in the shadows where it is
mostly bright.  A person crossing the scene in some
frames thus leaves no ghost, while static detail keeps the full noise
reduction.  Pixels under the user's mask come from the reference alone, in
both the robust and the plain-mean merge.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .interp import gaussian_taps

ROBUST_K1 = 3.0  # local RMS residual (in units of what noise and edges explain) kept in full
ROBUST_K2 = 6.0  # ... and from which a frame's pixels are left out entirely
ROBUST_BETA = 0.125  # (0.35 px)^2: residual misalignment/aliasing tolerated at edges (level px^2)
ROBUST_SMOOTH = 1.5  # Gaussian sigma (level px) of the local residual energy


DOWNSAMPLE_TAPS = (0.125, 0.375, 0.375, 0.125)  # B.downsample2's [1, 3, 3, 1]/8 on rows and columns
BAYER_DENSITY = {"R": 0.25, "G": 0.5, "B": 0.25}  # fraction of a 2x2 Bayer CFA's sites per colour


@dataclass(frozen=True)
class NoiseModel:
    """Luma noise of linear raw frames from the file's noise profile.

    The DNG NoiseProfile gives, per CFA colour plane c, the variance
    S_c x + O_c of a raw sample whose signal is x (0..1 of the white level).
    Decoding multiplies plane c by its white-balance gain g_c (normalised to
    the smallest, as LibRaw does), applies the colour matrix M and forms the
    luma with the BT.601 weights w, so the luma reads sum_c k_c x_c with
    k_c = g_c sum_j w_j M_jc.  For neutral content x_c = L / g_c.  Demosaicing
    interpolates each plane from its own sites (a fraction p_c of them), so
    at scales of a CFA block and above a plane's noise acts like white noise
    of variance var_c / p_c on every pixel; each halving of the pyramid
    ([1, 3, 3, 1]/8 per axis) multiplies white-noise variance by
    (sum_i b_i^2)^2.  The luma variance at pyramid level l >= 1 is then
    ``slope * L + floor`` with

        slope = f^l sum_c k_c^2 S_c / (g_c p_c),  floor = f^l sum_c k_c^2 O_c / p_c.

    At level 0 demosaicing's correlations make this a poor estimate, so the
    model serves level 1 and coarser only.  Not modelled: colour (each pixel
    is taken as neutral at its luma), and the interpolation of a frame at
    sub-pixel positions, which lowers its noise a little (there the level is
    a slight overestimate: static content is, if anything, kept more).
    On flat DNG frames with noise drawn from their profile the model's
    level-1 variance is within 10 % of the measured one, dark and bright.
    """

    slope: float  # luma variance per unit of luma, at level 0 as white-noise equivalent
    floor: float  # luma variance at zero signal, likewise

    @classmethod
    def from_raw(cls, raw: dict | None) -> NoiseModel | None:
        """The model of a raw frame's decoder figures (``RawFrame.raw``), or
        None where it has no usable noise profile (no profile, or not a
        2x2 Bayer CFA with one profile entry or one per colour plane)."""
        if not raw or not raw.get("noise_profile"):
            return None
        prof = [tuple(map(float, so)) for so in raw["noise_profile"]]
        cfa = raw.get("cfa_pattern", "")
        bayer = len(cfa) == 4 and sorted(set(cfa)) == ["B", "G", "R"] and raw.get("cfa_repeat") == [2, 2]
        if not bayer or len(prof) not in (1, 3):
            return None
        prof = prof * 3 if len(prof) == 1 else prof
        wb = np.asarray(raw.get("camera_white_balance", [1.0, 1.0, 1.0])[:3], np.float64)
        if not np.all(wb > 0):
            return None
        g = wb / wb.min()
        M = np.asarray(raw.get("color_matrix", np.eye(3)), np.float64)[:3, :3]
        from .backends.base import LUMA_WEIGHTS

        k = g * (np.asarray(LUMA_WEIGHTS) @ M)
        p = np.array([BAYER_DENSITY[c] for c in "RGB"])
        S = np.array([so[0] for so in prof])
        O = np.array([so[1] for so in prof])
        if not (np.all(S >= 0) and np.all(O >= 0) and (S.sum() + O.sum()) > 0):
            return None
        return cls(float(np.sum(k * k * S / (g * p))), float(np.sum(k * k * O / p)))

    @staticmethod
    def level_factor(level: int) -> float:
        """What ``level`` halvings of the pyramid multiply white-noise variance by."""
        b = np.asarray(DOWNSAMPLE_TAPS)
        return float(np.sum(b * b) ** (2 * level))

    def variance(self, luma, level: int):
        """Luma noise variance at pyramid ``level`` (>= 1) of an image whose luma
        there is ``luma`` (backend array; negative values count as 0)."""
        if level < 1:
            raise ValueError("the raw noise model describes pyramid level 1 and coarser only")
        f = self.level_factor(level)
        return (luma * (luma > 0)) * np.float32(self.slope * f) + np.float32(self.floor * f)


class RobustWeights:
    """Per-frame merge weights on the reference's level-1 grid (level 0 for tiny frames).

    ``robust=False`` gives the plain mean, with only the mask applied.
    ``level`` is the pyramid level of the weight maps (the accumulator samples
    them there).  With a ``noise`` model (:class:`NoiseModel`) and weights at
    level 1 or coarser, the residual is divided by the variance the model
    predicts for (frame - reference) at each pixel, twice the reference's
    local noise variance, instead of the burst-wide measured level;
    ``noise_source`` says which was used ("noise profile", "measured", or
    None for the plain mean).
    """

    def __init__(self, B, ref, robust: bool = True, noise: NoiseModel | None = None):
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
        self.noise2 = None  # the model's expected local residual variance, when it applies
        if robust:
            gx, gy = B.gradient(self.ref_img)
            self.g = B.sepfilter(gx * gx + gy * gy, self.taps)
            if noise is not None and self.level >= 1:
                # the local mean of d^2 over the same window as e: the mean of the pixels' variances
                var = B.sepfilter(noise.variance(self.ref_img, self.level), self.taps)
                self.noise2 = xp.maximum(var * np.float32(2.0), np.float32(1e-12))
                # r2 = (e / c) / (noise2 + beta g) = (e / noise2 / c) / (1 + beta g / noise2): the
                # per-pixel level enters robust_weight through e and g, with a unit scale
                self.g_unit = self.g / self.noise2
                self.unit = xp.ones((), dtype=xp.float32)
        self.noise_source = None if not robust else ("noise profile" if self.noise2 is not None else "measured")
        self.rejected_max = xp.zeros((h, w), dtype=xp.float32)  # the most any one frame lost

    def for_frame(self, levels, state, field=None, field_cell: float = 0.0):
        """(weights on the level grid or None, device scalar: fraction of the
        frame's covered pixels left out) for one aligned frame with
        :class:`~superres_gpu.align.FrameLevels` ``levels`` (compared where
        its local displacement ``field`` puts it, when given)."""
        B, xp = self.B, self.B.xp
        if not self.active:
            return None, None
        d2, cov = B.robust_residual(levels.coef[self.level], self.ref_img, state, self.level, self.margin, field,
                                    field_cell)
        if self.robust:
            e = B.sepfilter(d2, self.taps)
            c = B.sepfilter(cov, self.taps)
            if self.noise2 is None:
                scale2 = B.robust_noise_level(e, c, self.g, ROBUST_BETA)
                w = B.robust_weight(e, c, self.g, scale2, ROBUST_BETA, ROBUST_K1, ROBUST_K2, self.mask)
            else:
                w = B.robust_weight(e / self.noise2, c, self.g_unit, self.unit, ROBUST_BETA, ROBUST_K1, ROBUST_K2,
                                    self.mask)
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
