"""Image-quality and estimation metrics of the benchmarks."""

from __future__ import annotations

import math

import numpy as np

from ..backends.base import LUMA_WEIGHTS
from ..pixels import to_unit


def ssim(result: np.ndarray, truth01: np.ndarray, margin: int = 0) -> float:
    """Mean SSIM (Wang, Bovik, Sheikh & Simoncelli 2004) by scikit-image:
    Gaussian window sigma 1.5, K1 = 0.01, K2 = 0.03, data range 1, population
    covariances (the paper's definition); averaged over channels."""
    from skimage.metrics import structural_similarity

    a = to_unit(result)
    b = np.asarray(truth01, dtype=np.float64)
    if margin:
        a = a[margin:-margin, margin:-margin]
        b = b[margin:-margin, margin:-margin]
    return float(structural_similarity(a, b, data_range=1.0, gaussian_weights=True, sigma=1.5,
                                       use_sample_covariance=False, channel_axis=-1 if a.ndim == 3 else None))


def translation_crlb(clean_rgb01: np.ndarray, noise_gain: float, noise_floor: float, bits: int = 8, margin: int = 8) -> float:
    """Cramér-Rao bound on the RMS error (px) of a 2-D translation estimate.

    Both the frame and the reference carry independent Poisson-Gaussian noise
    of variance ``gain * v + floor^2`` per channel (plus 8-bit quantisation,
    1/12 LSB^2); on the BT.601 luma this is sum_c w_c^2 var_c.  The Fisher
    information is F = sum_p grad(p) grad(p)^T / (2 var_Y(p)) with the gradient
    of the noise-free reference (central differences), and the bound on the
    RMS of the 2-D error is sqrt(trace(F^-1)).  JPEG's loss is not modelled,
    so the bound stays a lower bound.
    """
    img = clean_rgb01.astype(np.float64)
    if img.ndim == 2:
        img = img[..., None]
        weights = (1.0,)
    else:
        weights = LUMA_WEIGHTS
    y = sum(w * img[..., c] for c, w in enumerate(weights))
    q = (1.0 / (2**bits - 1)) ** 2 / 12.0
    var = sum(w * w * (noise_gain * np.clip(img[..., c], 0, 1) + noise_floor**2 + q) for c, w in enumerate(weights))
    gy, gx = np.gradient(y)
    sl = (slice(margin, -margin), slice(margin, -margin))
    gx, gy, var = gx[sl], gy[sl], var[sl]
    w = 1.0 / (2.0 * var)
    F = np.array([[np.sum(w * gx * gx), np.sum(w * gx * gy)], [np.sum(w * gx * gy), np.sum(w * gy * gy)]])
    return float(math.sqrt(np.trace(np.linalg.inv(F))))
