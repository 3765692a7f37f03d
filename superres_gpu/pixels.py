"""Pixel value encodings: the full-scale value of 8- and 16-bit samples."""

from __future__ import annotations

import numpy as np


def full_scale(dtype) -> float:
    """The value that stands for full brightness: 65535 for 16-bit samples, 255
    for 8-bit ones (``dtype`` is a NumPy dtype or anything ``np.dtype`` takes)."""
    return 65535.0 if np.dtype(dtype) == np.uint16 else 255.0


def to_unit(img) -> np.ndarray:
    """float64 copy of an image in 0..1: integer samples divided by their full
    scale, float images taken as already in 0..1."""
    a = np.asarray(img)
    if a.dtype in (np.uint8, np.uint16):
        return a.astype(np.float64) / full_scale(a.dtype)
    return a.astype(np.float64)
