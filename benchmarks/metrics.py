"""Image-quality and estimation metrics of the benchmarks (NumPy/OpenCV only)."""

from __future__ import annotations

import math

import numpy as np

from superres_gpu.backends.base import LUMA_WEIGHTS
from superres_gpu.synth import psnr  # noqa: F401  (re-exported for the suite)


def _as01(img: np.ndarray) -> np.ndarray:
    if img.dtype == np.uint16:
        return img.astype(np.float64) / 65535.0
    if img.dtype == np.uint8:
        return img.astype(np.float64) / 255.0
    return img.astype(np.float64)


def ssim(result: np.ndarray, truth01: np.ndarray, margin: int = 0) -> float:
    """Mean SSIM (Wang, Bovik, Sheikh & Simoncelli 2004): Gaussian window
    sigma 1.5, K1 = 0.01, K2 = 0.03, data range 1; averaged over channels."""
    import cv2

    a = _as01(result)
    b = truth01.astype(np.float64)
    if margin:
        a = a[margin:-margin, margin:-margin]
        b = b[margin:-margin, margin:-margin]
    if a.ndim == 2:
        a, b = a[..., None], b[..., None]
    c1, c2 = (0.01) ** 2, (0.03) ** 2
    vals = []
    for ch in range(a.shape[2]):
        x, y = a[..., ch], b[..., ch]

        def g(z):
            return cv2.GaussianBlur(z, (11, 11), 1.5, borderType=cv2.BORDER_REFLECT)

        mx, my = g(x), g(y)
        vx = g(x * x) - mx * mx
        vy = g(y * y) - my * my
        cxy = g(x * y) - mx * my
        s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
        vals.append(float(s.mean()))
    return float(np.mean(vals))


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
