"""Interpolation kernels shared by both backends.

Lanczos4 resampling (merge)
    The merge reads 8x8 taps around each source position with the Lanczos
    kernel of order 4, exactly as OpenCV's ``remap(..., INTER_LANCZOS4)``
    does for float images: the position is rounded to 1/32 pixel
    (``X = rint(32 u)``, integer part ``X >> 5``, fraction ``X & 31``), the
    eight 1-D weights for that fraction come from :func:`lanczos4_table`
    (normalised to sum 1 in float32), the 2-D weight is their product and
    taps outside the frame are clamped to the nearest edge pixel.  The table is
    computed here once and handed to the CUDA kernel as an argument, so both
    backends use the very same weights.

Keys cubic (alignment)
    The alignment samples frames with the Keys cubic convolution kernel
    (a = -0.5) at the exact (unrounded) position, taps clamped to the frame;
    exact positions matter there because the refinement resolves 1/100 px.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

TAB_BITS = 5
TAB_SIZE = 1 << TAB_BITS  # 32 sub-pixel positions
LANCZOS_TAPS = 8
KEYS_A = -0.5


def _lanczos4_coeffs(x: float) -> np.ndarray:
    """OpenCV's ``interpolateLanczos4`` for one fractional offset ``x``."""
    s45 = 0.70710678118654752440084436210485
    cs = ((1, 0), (-s45, -s45), (0, 1), (s45, -s45), (-1, 0), (s45, s45), (0, -1), (-s45, s45))
    xf = np.float32(x)
    y0 = -(float(xf) + 3) * math.pi * 0.25
    s0, c0 = math.sin(y0), math.cos(y0)
    coeffs = np.zeros(8, dtype=np.float32)
    total = np.float32(0.0)
    for i in range(8):
        d = np.float32(xf + np.float32(3 - i))
        if abs(float(d)) >= float(np.finfo(np.float32).eps):
            y = -float(d) * math.pi * 0.25
            coeffs[i] = np.float32((cs[i][0] * s0 + cs[i][1] * c0) / (y * y))
        else:
            coeffs[i] = np.float32(1e30)
        total = np.float32(total + coeffs[i])
    inv = np.float32(np.float32(1.0) / total)
    return (coeffs * inv).astype(np.float32)


@lru_cache(maxsize=1)
def lanczos4_table() -> np.ndarray:
    """(32, 8) float32: 1-D Lanczos4 weights for fractions k/32, taps -3..+4."""
    tab = np.stack([_lanczos4_coeffs(k / TAB_SIZE) for k in range(TAB_SIZE)])
    tab.setflags(write=False)
    return tab


def keys_weights(t, a: float = KEYS_A):
    """Keys cubic weights for taps at offsets -1, 0, 1, 2 of fraction t (array)."""
    t = np.asarray(t)

    def near(s):  # |s| <= 1
        return ((a + 2) * s - (a + 3)) * s * s + 1

    def far(s):  # 1 < |s| < 2
        return ((a * s - 5 * a) * s + 8 * a) * s - 4 * a

    return far(t + 1), near(t), near(1 - t), far(2 - t)


def gaussian_taps(sigma: float) -> np.ndarray:
    """Normalised float32 1-D Gaussian taps, radius ceil(3 sigma) (at least 1)."""
    radius = max(1, int(math.ceil(3.0 * sigma)))
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    k = np.exp(-0.5 * (x / sigma) ** 2)
    return (k / k.sum()).astype(np.float32)
