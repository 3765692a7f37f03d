"""Coordinates, motion models and 3x3 transforms.

Conventions, used everywhere in the package (and by the report's readers):

* Pixel coordinates: x right, y down, pixel centres at integer coordinates.
* A frame's transform ``T`` is a 3x3 matrix mapping the frame's pixel
  coordinates to the reference's pixel coordinates, at input resolution.
* Output pixel (X, Y) at scale s samples the reference position
  ((X + 0.5)/s - 0.5, (Y + 0.5)/s - 0.5); the output is round(s W) x round(s H).
* Pyramid level L pixel x has its centre at level-0 position 2^L (x + 0.5) - 0.5.

Motion models are parametrised in *normalised* reference coordinates
``xn = (x - cx)/sc`` with ``cx = (W-1)/2``, ``cy = (H-1)/2`` and
``sc = max(W, H)/2`` so that all parameters have similar magnitudes.
"""

from __future__ import annotations

import math

import numpy as np

MOTION_MODELS = ("translation", "euclidean", "similarity", "affine", "homography")
MODEL_ID = {name: i for i, name in enumerate(MOTION_MODELS)}
MODEL_NPARAMS = {"translation": 2, "euclidean": 3, "similarity": 4, "affine": 6, "homography": 8}
MAX_PARAMS = 8


def output_size(width: int, height: int, scale: float) -> tuple[int, int]:
    """(width, height) of the output grid: round(s*W) x round(s*H)."""
    return int(round(scale * width)), int(round(scale * height))


def output_to_reference(scale: float) -> np.ndarray:
    """3x3 matrix mapping output pixel coordinates to reference coordinates."""
    a = 1.0 / scale
    b = 0.5 / scale - 0.5
    return np.array([[a, 0.0, b], [0.0, a, b], [0.0, 0.0, 1.0]])


def normalisation(width: int, height: int) -> tuple[float, float, float]:
    """(cx, cy, sc) of the normalised coordinates for a width x height frame."""
    return (width - 1) / 2.0, (height - 1) / 2.0, max(width, height) / 2.0


def model_matrix(model: str | int, p) -> np.ndarray:
    """3x3 warp W(p) in normalised coordinates for a model's parameter vector.

    translation (tx, ty); euclidean (tx, ty, angle); similarity (tx, ty, a, b)
    with [[1+a, -b], [b, 1+a]]; affine (a00-1, a01, tx, a10, a11-1, ty);
    homography as affine plus (h20, h21).  p = 0 is the identity.
    """
    m = MOTION_MODELS[model] if isinstance(model, (int, np.integer)) else model
    p = [float(v) for v in p]
    if m == "translation":
        return np.array([[1, 0, p[0]], [0, 1, p[1]], [0, 0, 1.0]])
    if m == "euclidean":
        c, s = math.cos(p[2]), math.sin(p[2])
        return np.array([[c, -s, p[0]], [s, c, p[1]], [0, 0, 1.0]])
    if m == "similarity":
        return np.array([[1 + p[2], -p[3], p[0]], [p[3], 1 + p[2], p[1]], [0, 0, 1.0]])
    if m == "affine":
        return np.array([[1 + p[0], p[1], p[2]], [p[3], 1 + p[4], p[5]], [0, 0, 1.0]])
    if m == "homography":
        return np.array([[1 + p[0], p[1], p[2]], [p[3], 1 + p[4], p[5]], [p[6], p[7], 1.0]])
    raise ValueError(f"unknown motion model {model!r}")


def apply(T: np.ndarray, x, y):
    """Apply a 3x3 projective transform to coordinate arrays."""
    T = np.asarray(T, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    w = T[2, 0] * x + T[2, 1] * y + T[2, 2]
    return (T[0, 0] * x + T[0, 1] * y + T[0, 2]) / w, (T[1, 0] * x + T[1, 1] * y + T[1, 2]) / w


def grid_points(width: int, height: int, n: int = 16, margin: float = 0.05):
    """An n x n grid of points spanning the frame (with a small margin)."""
    xs = np.linspace(margin * (width - 1), (1 - margin) * (width - 1), n)
    ys = np.linspace(margin * (height - 1), (1 - margin) * (height - 1), n)
    gx, gy = np.meshgrid(xs, ys)
    return gx.ravel(), gy.ravel()


def grid_rms_error(T_est, T_true, width: int, height: int, n: int = 16) -> float:
    """RMS distance (reference px) between two frame->reference maps over a grid."""
    x, y = grid_points(width, height, n)
    xa, ya = apply(T_est, x, y)
    xb, yb = apply(T_true, x, y)
    return float(np.sqrt(np.mean((xa - xb) ** 2 + (ya - yb) ** 2)))


def decompose(T: np.ndarray) -> dict:
    """Human-readable summary of a transform: shift, rotation (deg), scale."""
    T = np.asarray(T, dtype=np.float64)
    T = T / T[2, 2]
    a, b, c, d = T[0, 0], T[0, 1], T[1, 0], T[1, 1]
    scale = math.sqrt(abs(a * d - b * c))
    angle = math.degrees(math.atan2(c - b, a + d))
    return {"dx": float(T[0, 2]), "dy": float(T[1, 2]), "rotation_deg": angle, "scale": scale}


def is_plausible(T: np.ndarray, width: int, height: int) -> bool:
    """Reject transforms no hand-held burst produces (flips, wild zoom/shear)."""
    T = np.asarray(T, dtype=np.float64)
    if not np.all(np.isfinite(T)) or abs(T[2, 2]) < 1e-12:
        return False
    T = T / T[2, 2]
    x = np.array([0, width - 1, width - 1, 0], dtype=np.float64)
    y = np.array([0, 0, height - 1, height - 1], dtype=np.float64)
    w = T[2, 0] * x + T[2, 1] * y + T[2, 2]
    if np.any(w <= 0):
        return False
    det = T[0, 0] * T[1, 1] - T[0, 1] * T[1, 0]
    return 0.5 < det < 2.0
