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

from .backends import base as S
from .interp import gaussian_taps

ROBUST_K1 = 3.0  # local RMS residual (in units of what noise and edges explain) kept in full
ROBUST_K2 = 6.0  # ... and from which a frame's pixels are left out entirely
ROBUST_BETA = 0.125  # (0.35 px)^2: residual misalignment/aliasing tolerated at edges (level px^2)
ROBUST_SMOOTH = 1.5  # Gaussian sigma (level px) of the local residual energy
# A frame whose disagreement (RobustWeights.check) exceeds this is dropped.  Measured
# (benchmarks/RESULTS.md, "Content disagreement"): genuine frames read at most 2.74 over every
# real burst (the MDSP "disk" frames from a coarser video; 2.13 on the phone burst, under 1.0
# on the rest) and 0.34 on synthetic bursts, JPEG, DNG with and without a matching profile;
# mutants whose luma differs over most of the frame read 4 to 92.
DISAGREE_LIMIT = 4.0
CHI2_LOWER_QUARTILE = 0.1015310  # lower quartile of a chi-square variable with 1 degree of freedom
IMMERKAER_TAPS = np.array([1.0, -2.0, 1.0], np.float32)  # outer product: Immerkaer's noise operator
IMMERKAER_NORM = 0.6745 * 6.0  # median |x| of a unit normal times the operator's L2 norm


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


def noise_variance(B, img):
    """White-noise variance of a luma image (backend float32, on a pyramid
    level's grid), measured on the image alone: the median of Immerkaer's
    operator's squared response over the calmer half of the image (the pixels
    whose local gradient energy is at most its median), the estimator of
    :func:`superres_gpu.cull.estimate_noise` on the backend.  A 0-d array."""
    xp = B.xp
    h, w = img.shape
    r = B.sepfilter(img, IMMERKAER_TAPS)
    gx, gy = B.gradient(img)
    activity = B.sepfilter(gx * gx + gy * gy, gaussian_taps(2.0))
    inner = xp.zeros((h, w), dtype=xp.float32)
    inner[1:-1, 1:-1] = 1.0  # the operator's response at the replicated border is not noise
    zero = xp.zeros((h, w), dtype=xp.float32)
    calm = inner * (activity <= B.robust_noise_level(activity, inner, zero, 0.0))
    return B.robust_noise_level(r * r, calm, zero, 0.0) / np.float32(IMMERKAER_NORM**2)


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
        gx, gy = B.gradient(self.ref_img)
        self.g = B.sepfilter(gx * gx + gy * gy, self.taps)  # the local gradient energy
        if robust and noise is not None and self.level >= 1:
            # the local mean of d^2 over the same window as e: the mean of the pixels' variances
            var = B.sepfilter(noise.variance(self.ref_img, self.level), self.taps)
            self.noise2 = xp.maximum(var * np.float32(2.0), np.float32(1e-12))
            # r2 = (e / c) / (noise2 + beta g) = (e / noise2 / c) / (1 + beta g / noise2): the
            # per-pixel level enters robust_weight through e and g, with a unit scale
            self.g_unit = self.g / self.noise2
            self.unit = xp.ones((), dtype=xp.float32)
        self.noise_source = None if not robust else ("noise profile" if self.noise2 is not None else "measured")
        self.rejected_max = xp.zeros((h, w), dtype=xp.float32)  # the most any one frame lost
        self.ref_noise = noise_variance(B, self.ref_img)
        self.zero = xp.zeros((h, w), dtype=xp.float32)
        self.noise_model = noise if self.noise2 is not None else None
        self.kept = xp.ones((h, w), dtype=xp.float32)  # per pixel: the frames merged there (the reference: 1)

    def residual(self, levels, state, field=None, field_cell: float = 0.0):
        """(d^2, coverage) of an aligned frame against the reference on the
        weights' level grid (``B.robust_residual``; compared where its local
        displacement ``field`` puts it, when given), for :meth:`check` and
        :meth:`for_frame`."""
        return self.B.robust_residual(levels.coef[self.level], self.ref_img, state, self.level, self.margin, field,
                                      field_cell)

    def check(self, levels, state, residual):
        """The frame's disagreement with the reference; a frame whose content
        differs beyond what noise explains is dropped.

        Per covered pixel, the squared residual (:meth:`residual`) is divided
        by what explains it in a frame of the same scene: the two frames'
        noise variances, each measured on its own frame (:func:`noise_variance`;
        with a noise profile, the larger of that and twice the profile's
        prediction at the pixel, so that a profile that understates the noise
        cannot make a frame look different), plus the robust weights' allowance
        for small misalignment at edges (``ROBUST_BETA`` times the reference's
        local gradient energy).  The disagreement is the lower quartile of
        that ratio over the overlap, relative to the lower quartile of a
        chi-square variable (1 degree of freedom): the quartile ignores what
        moved, is misaligned or aliased in up to three quarters of the overlap
        (the robust weights handle that locally), while a frame that differs
        almost everywhere (a damaged file that decodes to another picture)
        cannot hide behind its own residual, as it does under the burst-wide
        level the weights divide by.  Genuine frames read well under 1 on
        synthetic bursts (the allowances are generous) and under 3 on real
        ones.  Where it exceeds ``DISAGREE_LIMIT`` the frame's state is set to
        dropped (``STATUS_DISAGREES``) on the device, before it is
        accumulated.  A 0-d array.
        """
        B, xp = self.B, self.B.xp
        d2, cov = residual
        noise = self.ref_noise + noise_variance(B, levels.pyramid[self.level])
        if self.noise2 is not None:
            noise = xp.maximum(self.noise2, noise)
        r = d2 / (noise + np.float32(ROBUST_BETA) * self.g)
        # the lower quartile: the median of the values at or below the median
        below = cov * (r <= B.robust_noise_level(r, cov, self.zero, 0.0))
        q = B.robust_noise_level(r, below, self.zero, 0.0) / np.float32(CHI2_LOWER_QUARTILE)
        bad = (q > np.float32(DISAGREE_LIMIT)) & (state[S.S_ACCEPT] != 0.0)
        state[S.S_STATUS] = xp.where(bad, np.float64(S.STATUS_DISAGREES), state[S.S_STATUS])
        state[S.S_ACCEPT] = xp.where(bad, np.float64(0.0), state[S.S_ACCEPT])
        return q

    def for_frame(self, levels, state, residual=None):
        """(weights on the level grid or None, device scalar: fraction of the
        frame's covered pixels left out) for one aligned frame with
        :class:`~superres_gpu.align.FrameLevels` ``levels`` (``residual``:
        its :meth:`residual` when already computed)."""
        B, xp = self.B, self.B.xp
        if not self.active:
            return None, None
        d2, cov = self.residual(levels, state) if residual is None else residual
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
        self.kept += w * (state[S.S_ACCEPT] != 0.0)  # w is 1 past the residual's margin, where it is merged in full
        frac = lost.sum() / xp.maximum(cov.sum(), 1.0)
        return w, frac

    def profile_noise(self, max_value: float) -> tuple[float, float] | None:
        """(merged, one frame's) noise standard deviation that the noise profile
        predicts, in input value units (``max_value`` = full scale), or None
        without a profile.

        One frame's is the median over the reference of the profile's luma
        variance at each pixel (level 1, brought back to its white-noise
        equivalent at level 0); the merged image's divides each pixel's
        variance by the merge's effective frame count there, the robust
        weights' sum over the merged frames (the reference counts 1), before
        the median: where frames were left out (what moved) more of a frame's
        noise is left, as much as the profile says that pixel's brightness
        carries.  Medians, as :func:`~superres_gpu.restore.residual_noise`
        reads the typical level, not the frame's borders where fewer frames
        reach.  Host floats (one read after the burst)."""
        if self.noise_model is None:
            return None
        B, xp = self.B, self.B.xp
        var = self.noise_model.variance(self.ref_img, self.level) / np.float32(
            self.noise_model.level_factor(self.level))
        every = xp.ones_like(var)
        one = float(B.asnumpy(B.robust_noise_level(var, every, self.zero, 0.0)))
        merged = float(B.asnumpy(B.robust_noise_level(var / xp.maximum(self.kept, np.float32(1.0)), every,
                                                      self.zero, 0.0)))
        return float(np.sqrt(merged) * max_value), float(np.sqrt(one) * max_value)

    def picture(self) -> np.ndarray:
        """8-bit RGB picture: the reference in grey, red where a frame was left out
        (the stronger the red, the more completely some frame was left out)."""
        ref = self.B.asnumpy(self.ref_img)
        grey = np.clip(ref * 0.8 + 0.1, 0, 1)
        rej = np.clip(self.B.asnumpy(self.rejected_max), 0.0, 1.0)
        rgb = np.stack([grey * (1 - rej) + rej, grey * (1 - rej), grey * (1 - rej)], axis=-1)
        return np.clip(rgb * 255 + 0.5, 0, 255).astype(np.uint8)
