"""Kernel-regression merge: every native sample of every frame lands at its
exact position on the output grid.

Where :mod:`superres_gpu.merge` interpolates each frame with a Lanczos kernel
sized for the frame's own pixel grid (so the mean carries little above one
frame's Nyquist frequency), this merge keeps each frame's samples where they
fell: output pixel (X, Y) gathers the samples of each frame that lie within
three kernel widths of it, each weighted by a Gaussian of its offset on the
output grid, times the robust merge's per-pixel weight.  The sums ``num`` and
``den`` run over all frames; their ratio is the kernel-regression estimate
(Wronski et al. 2019, "Handheld Multi-Frame Super-Resolution").

The Gaussian is anisotropic by default (``--kernel-shape anisotropic``),
steered by the reference frame's structure tensor (:func:`kernel_shape`, once
per burst): stretched along an edge, so that the samples of many frames along
it average, and narrow across it, so that the edge stays sharp; where the
local gradient is not above the noise's it is the round one.
``--kernel-shape isotropic`` keeps the round Gaussian of ``sigma`` output px
(by default :data:`KERNEL_SIGMA_FRAME_PX` frame px, so the reach scales with
the output scale) everywhere.

Output pixels that too little weight reaches (``den`` below
:data:`HOLE_WEIGHT`: few frames, or most of them left out by the robust
weights) are filled from a wider kernel: the same sums filtered with a Gaussian
of :data:`FILL_SIGMA_FRAME_PX` frame px, then divided.  Only what no frame
covers at all stays 0.
"""

from __future__ import annotations

import numpy as np

from .interp import gaussian_taps
from .merge import Accumulator

KERNEL_SIGMA_FRAME_PX = 0.3  # Gaussian sigma in frame px: 0.6 output px at 2x
HOLE_WEIGHT = 0.1  # kernel weight below which an output pixel is filled from the wider kernel (1 = one sample on it)
FILL_SIGMA_FRAME_PX = 1.0
KERNEL_SHAPES = ("anisotropic", "isotropic")

# The anisotropic kernel (kernel_shape).  Its largest standard deviation sets how
# many samples each output pixel visits (3x3 per frame at these values, 2x2 for the
# isotropic kernel), hence the merge's cost.
STRUCTURE_SIGMA_FRAME_PX = 1.0  # Gaussian window of the structure tensor, frame px
STRETCH = 0.5  # along an edge: sigma * (1 + STRETCH (A - 1)), A = 1 + sqrt((l1 - l2) / (l1 + l2)) in [1, 2]
SHRINK = 1.0  # across it: sigma / (1 + SHRINK (A - 1))
FLAT_SIGMA_FRAME_PX = 0.3  # flat or noisy areas: a round Gaussian this wide (frame px); wider (0.4 to 0.6) denoises
#                            more but cost 0.3 to 2 dB against the sharp chart and photo after the restoration
SNR_LOW, SNR_HIGH = 2.0, 6.0  # local gradient / the gradient of noise alone: below LOW flat, above HIGH detail


def kernel_sigma(scale: float) -> float:
    """The kernel's sigma in output px at ``scale``."""
    return KERNEL_SIGMA_FRAME_PX * float(scale)


def kernel_reach(scale: float) -> float:
    """The largest standard deviation (output px) of any anisotropic kernel at ``scale``."""
    s = float(scale)
    return max(KERNEL_SIGMA_FRAME_PX * s * (1.0 + STRETCH), FLAT_SIGMA_FRAME_PX * s)


def kernel_shape(B, luma, scale: float, noise: float):
    """The anisotropic kernel of every reference pixel: (3, H, W) float32 on
    the backend, the exponent's coefficients (qa, qb, qc) of
    k(d) = exp(qa dX^2 + qb dX dY + qc dY^2) = exp(-d^T Omega^-1 d / 2) for an
    offset d on the output grid (output px), as
    :meth:`~superres_gpu.backends.numpy_backend.NumpyBackend.kernel_accumulate`
    reads them.

    ``luma`` is the reference frame's luma ((H, W) float32 on the backend) and
    ``noise`` the standard deviation of its noise, in the same units.  After
    Wronski et al. 2019: the structure tensor (the luma's
    central-difference gradients, their products smoothed by a Gaussian of
    :data:`STRUCTURE_SIGMA_FRAME_PX`) has eigenvalues l1 >= l2, e1 across the
    edge; the anisotropy A = 1 + sqrt((l1 - l2) / (l1 + l2)) stretches the
    kernel along the edge (e2) and narrows it across (e1), from the isotropic
    sigma.  The local SNR, sqrt(l1) over the gradient that the noise alone
    gives (noise / sqrt(2) per axis), blends between that kernel (SNR above
    :data:`SNR_HIGH`) and a round one of :data:`FLAT_SIGMA_FRAME_PX` (below
    :data:`SNR_LOW`): where there is no detail to keep, only noise to remove.
    Standard deviations never exceed :func:`kernel_reach`.
    """
    xp = B.xp
    s = float(scale)
    gx, gy = B.gradient(xp.ascontiguousarray(luma, dtype=xp.float32))
    taps = gaussian_taps(STRUCTURE_SIGMA_FRAME_PX)
    txx = B.sepfilter(xp.ascontiguousarray(gx * gx), taps)
    txy = B.sepfilter(xp.ascontiguousarray(gx * gy), taps)
    tyy = B.sepfilter(xp.ascontiguousarray(gy * gy), taps)
    del gx, gy
    half = 0.5 * (txx - tyy)
    theta = 0.5 * xp.arctan2(txy, half)  # e1 = (cos, sin): the gradient's direction, the eigenvector of l1
    diff = xp.sqrt(half * half + txy * txy)  # (l1 - l2) / 2
    del half, txy
    tr = 0.5 * (txx + tyy)  # (l1 + l2) / 2
    del txx, tyy
    aniso = diff / xp.maximum(tr, 1e-20)
    aniso = 1.0 + xp.sqrt(aniso)
    grad_noise2 = max(float(noise), 1e-6) ** 2 * 0.5  # E[gx^2] for white noise and central differences
    snr = xp.sqrt((tr + diff) / grad_noise2)  # sqrt(l1) over the noise's gradient
    del tr, diff
    detail = xp.clip((snr - SNR_LOW) / (SNR_HIGH - SNR_LOW), 0.0, 1.0)
    del snr
    sigma = KERNEL_SIGMA_FRAME_PX * s
    flat = FLAT_SIGMA_FRAME_PX * s
    along = detail * (sigma * (1.0 + STRETCH * (aniso - 1.0))) + (1.0 - detail) * flat
    across = detail * (sigma / (1.0 + SHRINK * (aniso - 1.0))) + (1.0 - detail) * flat
    del detail, aniso
    ia, ic = 1.0 / (along * along), 1.0 / (across * across)
    del along, across
    c, n = xp.cos(theta), xp.sin(theta)
    del theta
    out = xp.empty((3,) + luma.shape, dtype=xp.float32)
    out[0] = -0.5 * (c * c * ic + n * n * ia)
    out[1] = -(c * n * (ic - ia))
    out[2] = -0.5 * (n * n * ic + c * c * ia)
    return out


class KernelAccumulator(Accumulator):
    """Kernel-regression sums on the output grid, on the backend's device (the
    interface of :class:`superres_gpu.merge.Accumulator`, whose encoders it shares)."""

    def __init__(self, B, width: int, height: int, channels: int, scale: float, max_value: float,
                 sigma: float | None = None):
        super().__init__(B, width, height, channels, scale, max_value)
        self.sigma = kernel_sigma(scale) if sigma is None else float(sigma)
        if not self.sigma > 0.0:
            raise ValueError("the kernel's sigma must be positive")
        self.shape = None  # the anisotropic kernel's map (steer); None: isotropic of sigma

    def correct_chromatic_aberration(self, estimate) -> None:
        """As :meth:`superres_gpu.merge.Accumulator.correct_chromatic_aberration`;
        with channel maps ``den`` gets a plane per channel (each channel is its
        own kernel regression); before the first :meth:`add`."""
        if self.B.asnumpy(self.den.any()):
            raise RuntimeError("correct_chromatic_aberration must come before the first frame is added")
        super().correct_chromatic_aberration(estimate)
        if self.channel_maps is not None:
            xp = self.B.xp
            self.den = xp.zeros((self.height, self.width, self.channels), dtype=xp.float32)

    def steer(self, luma, noise: float) -> None:
        """Make the kernel anisotropic, steered by the reference frame's ``luma``
        whose noise is ``noise`` (:func:`kernel_shape`); before the first :meth:`add`."""
        self.shape = kernel_shape(self.B, luma, self.scale, noise)

    def add(self, frame, state, weights=None, weight_level: int = 1, field=None, field_cell: float = 0.0) -> None:
        """Add ``frame``'s samples (on the device) at ``state``'s transform, with
        per-pixel ``weights`` on the reference's level ``weight_level`` (and a
        local displacement ``field``: :mod:`superres_gpu.local`); with
        ``channel_maps`` set (chromatic aberration) each channel is gathered at
        its own position with its own kernel weight in ``den``'s plane for it
        (on chroma-subsampled frames the low bands are moved first: :meth:`source`)."""
        reach = self.sigma if self.shape is None else kernel_reach(self.scale)
        self.B.kernel_accumulate(self.source(frame), state, self.num, self.den, self.scale, self.max_value, reach,
                                 weights, weight_level, self.shape, field, field_cell, self.channel_maps)

    def coverage(self) -> np.ndarray:
        """Host copy of the per-pixel kernel weight (the sum over frames; with
        channel maps the least-covered channel's)."""
        return self.B.asnumpy(self.den if self.den.ndim == 2 else self.den.min(axis=2))

    def take_mean(self):
        """(mean, covered) as :meth:`superres_gpu.merge.Accumulator.take_mean`,
        holes filled from the wider kernel; the accumulator is spent."""
        B, xp = self.B, self.B.xp
        taps = gaussian_taps(FILL_SIGMA_FRAME_PX * self.scale)
        planes = self.den.ndim == 3  # channel maps: a weight plane per channel
        least = self.den.min(axis=2) if planes else self.den
        hole = least < HOLE_WEIGHT
        any_hole = bool(B.asnumpy(hole.any()))
        least_w = B.sepfilter(least, taps) if any_hole else None
        mean, self.num = self.num, None
        if not any_hole:  # the kernel-regression estimate everywhere
            xp.divide(mean, xp.maximum(self.den if planes else self.den[..., None], xp.float32(1e-12)), out=mean)
        else:
            for ch in range(mean.shape[2]):
                den = xp.ascontiguousarray(self.den[..., ch]) if planes else self.den
                den_w = B.sepfilter(den, taps) if planes else least_w
                plane = xp.ascontiguousarray(mean[..., ch])
                wide = B.sepfilter(plane, taps)
                mean[..., ch] = xp.where(hole, wide / xp.maximum(den_w, 1e-12), plane / xp.maximum(den, 1e-12))
                del den, den_w, plane, wide
        covered = ((least > 0) | (least_w > 1e-6)) if any_hole else (least > 0)
        return mean, covered.astype(xp.float32)

    def result(self) -> np.ndarray:
        """The merged estimate as uint16 on the host (0..65535 for the input's full range)."""
        mean, covered = self.take_mean()
        return self.encode(mean, covered)
