"""Kernel-regression merge: every native sample of every frame lands at its
exact position on the output grid.

Where :mod:`superres_gpu.merge` interpolates each frame with a Lanczos kernel
sized for the frame's own pixel grid (so the mean carries little above one
frame's Nyquist frequency), this merge keeps each frame's samples where they
fell: output pixel (X, Y) gathers the samples of each frame that lie within
three kernel widths of it, each weighted by an isotropic Gaussian of its
distance on the output grid (``sigma`` output px, by default
:data:`KERNEL_SIGMA_FRAME_PX` frame px, so the reach scales with the output
scale), times the robust merge's per-pixel weight.  The sums ``num`` and
``den`` run over all frames; their ratio is the kernel-regression estimate
(Wronski et al. 2019, "Handheld Multi-Frame Super-Resolution", with an
isotropic kernel).

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


def kernel_sigma(scale: float) -> float:
    """The kernel's sigma in output px at ``scale``."""
    return KERNEL_SIGMA_FRAME_PX * float(scale)


class KernelAccumulator(Accumulator):
    """Kernel-regression sums on the output grid, on the backend's device (the
    interface of :class:`superres_gpu.merge.Accumulator`, whose encoders it shares)."""

    def __init__(self, B, width: int, height: int, channels: int, scale: float, max_value: float,
                 sigma: float | None = None):
        super().__init__(B, width, height, channels, scale, max_value)
        self.sigma = kernel_sigma(scale) if sigma is None else float(sigma)
        if not self.sigma > 0.0:
            raise ValueError("the kernel's sigma must be positive")

    def add(self, frame, state, weights=None, weight_level: int = 1, field=None, field_cell: float = 0.0) -> None:
        """Add ``frame``'s samples (on the device) at ``state``'s transform, with
        per-pixel ``weights`` on the reference's level ``weight_level`` (and a
        local displacement ``field``: :mod:`superres_gpu.local`)."""
        self.B.kernel_accumulate(frame, state, self.num, self.den, self.scale, self.max_value, self.sigma, weights,
                                 weight_level, field, field_cell)

    def coverage(self) -> np.ndarray:
        """Host copy of the per-pixel kernel weight (the sum over frames)."""
        return self.B.asnumpy(self.den)

    def take_mean(self):
        """(mean, covered) as :meth:`superres_gpu.merge.Accumulator.take_mean`,
        holes filled from the wider kernel; the accumulator is spent."""
        B, xp = self.B, self.B.xp
        taps = gaussian_taps(FILL_SIGMA_FRAME_PX * self.scale)
        den_w = B.sepfilter(self.den, taps)
        hole = self.den < HOLE_WEIGHT
        mean, self.num = self.num, None
        for ch in range(mean.shape[2]):
            plane = xp.ascontiguousarray(mean[..., ch])
            wide = B.sepfilter(plane, taps)
            mean[..., ch] = xp.where(hole, wide / xp.maximum(den_w, 1e-12), plane / xp.maximum(self.den, 1e-12))
        covered = ((self.den > 0) | (den_w > 1e-6)).astype(xp.float32)
        return mean, covered

    def result(self) -> np.ndarray:
        """The merged estimate as uint16 on the host (0..65535 for the input's full range)."""
        mean, covered = self.take_mean()
        return self.encode(mean, covered)
