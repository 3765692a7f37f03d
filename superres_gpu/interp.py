"""Interpolation tables and filter taps shared by both backends.

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

Cubic B-spline (alignment)
    The alignment samples frames by cubic B-spline interpolation at the exact
    (unrounded) position: the frame is first turned into B-spline
    coefficients by the separable inverse filter of (1, 4, 1)/6
    (:func:`bspline_prefilter_taps`, a truncated exact inverse), then read
    with the four positive B-spline weights per axis (:func:`bspline_weights_f32`,
    float32 like the whole per-point work), taps clamped to the image.  Its phase error is far smaller than that of
    the Keys cubic convolution kernel, whose fraction-dependent shift biased
    sub-pixel estimates by ~0.005 px even on smooth images.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

TAB_BITS = 5
TAB_SIZE = 1 << TAB_BITS  # 32 sub-pixel positions
BSPLINE_POLE = math.sqrt(3.0) - 2.0  # pole of the cubic B-spline's inverse filter
BSPLINE_PREFILTER_RADIUS = 9  # |pole|^10 < 2e-6: a frame aligns to itself within 1e-5 px


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


def bspline_weights_f32(t):
    """Cubic B-spline weights for taps at offsets -1, 0, 1, 2 of fraction t
    (float32 array), in float32, one rounding per operation in the order of
    common.cuh's ``sr_bspline_weights_f``: (1 - t)^3 / 6, (3 t^3 - 6 t^2 + 4) / 6,
    (-3 t^3 + 3 t^2 + 3 t + 1) / 6, t^3 / 6, each /6 a product with float32(1/6)."""
    f32 = np.float32
    t = np.asarray(t, dtype=f32)
    sixth = f32(1.0 / 6.0)
    u = f32(1.0) - t
    t2 = t * t
    t3 = t2 * t
    return (
        u * u * u * sixth,
        (f32(3.0) * t3 + f32(-6.0) * t2 + f32(4.0)) * sixth,
        (f32(-3.0) * t3 + f32(3.0) * t2 + f32(3.0) * t + f32(1.0)) * sixth,
        t3 * sixth,
    )


@lru_cache(maxsize=None)
def bspline_prefilter_taps(radius: int = BSPLINE_PREFILTER_RADIUS) -> np.ndarray:
    """float32 FIR taps of the inverse of (1, 4, 1)/6 (B-spline coefficients from
    samples): h[k] = -6 z / (1 - z^2) z^|k|, z = sqrt(3) - 2, truncated to
    |k| <= radius and renormalised to sum 1."""
    z = BSPLINE_POLE
    k = np.arange(-radius, radius + 1)
    h = (-6.0 * z / (1.0 - z * z)) * z ** np.abs(k)
    h = (h / h.sum()).astype(np.float32)
    h.setflags(write=False)
    return h


@lru_cache(maxsize=None)
def alignment_taps(sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """(reference taps, frame taps) of the finest refinement level: the
    Gaussian prefilter for the reference (values and gradients at pixel
    centres), the same Gaussian followed by the B-spline inverse filter for the
    frame (coefficients for interpolation).  sigma 0: no Gaussian."""
    g = gaussian_taps(sigma) if sigma > 0 else np.ones(1, np.float32)
    f = np.convolve(g.astype(np.float64), bspline_prefilter_taps().astype(np.float64)).astype(np.float32)
    g.setflags(write=False)
    f.setflags(write=False)
    return g, f


def gaussian_taps(sigma: float) -> np.ndarray:
    """Normalised float32 1-D Gaussian taps, radius ceil(3 sigma) (at least 1)."""
    radius = max(1, int(math.ceil(3.0 * sigma)))
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    k = np.exp(-0.5 * (x / sigma) ** 2)
    return (k / k.sum()).astype(np.float32)
