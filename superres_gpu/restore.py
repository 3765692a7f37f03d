"""Restoration after the merge: undo the blur the merge itself adds.

Every frame is seen through its pixel aperture (a box one input pixel wide)
and resampled with the Lanczos4 kernel; on the output grid the merged mean is
therefore blurred by both, relative to the output's own pixel aperture.
:func:`restoration_taps` designs a separable Wiener-type filter that undoes
that blur, regularised by the noise left after merging (:func:`restoration_strength`:
the more frames, the further it may go); :func:`sharpen` applies it to the
merged mean per channel, on the backend's device.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

@lru_cache(maxsize=None)
def lanczos4_response(n: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """(f, H(f)): frequency response of the continuous Lanczos4 kernel,
    normalised to H(0) = 1, for f in cycles per pixel on [0, 2]."""
    x = np.linspace(-4.0, 4.0, 1601)
    k = np.sinc(x) * np.sinc(x / 4.0)
    dx = x[1] - x[0]
    f = np.linspace(0.0, 2.0, n + 1)
    H = (np.cos(2.0 * np.pi * np.outer(f, x)) @ k) * dx
    return f, H / H[0]


@lru_cache(maxsize=None)
def restoration_taps(scale: float, lam: float, kernel_sigma: float | None = None, optics_sigma: float = 0.0) -> np.ndarray:
    """Odd-length float32 taps (sum 1) that undo, on the output grid, the blur the
    merge itself adds: each frame's pixel aperture (a box one input pixel wide)
    and the Lanczos4 resampling, relative to the output's own pixel aperture.

    Per axis the merge's transfer function is G(f) = sinc(s f) H_L4(s f) / sinc(f)
    (f in cycles per output pixel, s the scale); the Wiener-type restoration is
    R = G / (G^2 + lam), normalised to R(0) = 1, made into a Hann-windowed FIR of
    radius ceil(4 s).  ``lam`` is the noise-to-signal regularisation.

    With ``kernel_sigma`` (output px) the merge is the kernel regression of
    :mod:`superres_gpu.kernelmerge`: its samples are placed exactly and spread by
    a Gaussian, so G(f) = sinc(s f) exp(-2 pi^2 sigma^2 f^2) / sinc(f) instead.
    """
    n = 4096
    fo = np.arange(n // 2 + 1) / n
    fl, HL = lanczos4_response()
    if kernel_sigma is None:
        G = np.sinc(scale * fo) * np.interp(scale * fo, fl, HL, right=0.0) / np.sinc(fo)
    else:
        G = np.sinc(scale * fo) * np.exp(-2.0 * np.pi**2 * kernel_sigma**2 * fo**2) / np.sinc(fo)
    if optics_sigma > 0.0:
        G = G * np.exp(-2.0 * np.pi**2 * (optics_sigma * scale) ** 2 * fo**2)
    R = G / (G * G + lam)
    R = R / R[0]
    h = np.real(np.fft.ifft(np.concatenate([R, R[-2:0:-1]])))
    r = int(math.ceil(4 * scale))
    h = np.roll(h, r)[: 2 * r + 1] * np.hanning(2 * r + 3)[1:-1]
    h = (h / h.sum()).astype(np.float32)
    h.setflags(write=False)
    return h


def restoration_strength(frames_merged: int) -> float:
    """Regularisation for :func:`restoration_taps`: the merge's noise power falls
    as 1/N with N frames, so the restoration may go further with more frames."""
    return float(min(0.3, max(0.02, 0.4 / max(1, frames_merged))))


def sharpen(B, mean, scale: float, frames_merged: int, kernel_sigma: float | None = None,
            optics_sigma: float = 0.0, lam: float | None = None) -> None:
    """Restore the merged mean ``mean`` ((H, W, C) float32 on the backend) in
    place with :func:`restoration_taps` for ``scale`` (and the kernel merge's
    ``kernel_sigma``) and the strength that ``frames_merged`` frames allow."""
    lam = restoration_strength(frames_merged) if lam is None else float(lam)
    taps = restoration_taps(float(scale), lam, None if kernel_sigma is None else float(kernel_sigma),
                            float(optics_sigma))
    xp = B.xp
    for ch in range(mean.shape[2]):
        mean[..., ch] = B.sepfilter(xp.ascontiguousarray(mean[..., ch]), taps)
