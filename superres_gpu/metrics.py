"""Image quality against a known truth (synthetic bursts)."""

from __future__ import annotations

import math

import numpy as np

from .pixels import to_unit


def psnr(result: np.ndarray, truth01: np.ndarray, margin: int = 0, mask: np.ndarray | None = None) -> float:
    """PSNR (dB) of a uint8/uint16/float image against a [0,1] truth.

    ``margin`` pixels at each border are left out; with ``mask`` (bool, the
    image's height x width) only the pixels where it is True count.
    """
    r = to_unit(result)
    t = np.asarray(truth01, dtype=np.float64)
    if margin:
        r = r[margin:-margin, margin:-margin]
        t = t[margin:-margin, margin:-margin]
        if mask is not None:
            mask = mask[margin:-margin, margin:-margin]
    d = r - t
    if mask is not None:
        d = d[mask]
    mse = float(np.mean(d * d))
    return float("inf") if mse == 0 else 10.0 * math.log10(1.0 / mse)
