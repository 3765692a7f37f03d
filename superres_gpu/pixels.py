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


LUMA_WEIGHTS = (0.299, 0.587, 0.114)  # JPEG's (ITU-R BT.601) luma of R, G, B


def chroma_low_band(frame, chroma, xp=np):
    """float32 (h, w, 3): each channel of a decoded chroma-subsampled RGB
    ``frame`` less the luma's fine detail that its decoder put in all three,
    which leaves the channel's own low band; ``chroma`` the subsampling
    (horizontal, vertical), ``xp`` the array module (NumPy, or CuPy for a
    frame on the GPU: the same operations in the same order).

    A JPEG stores Y = 0.299 R + 0.587 G + 0.114 B at full resolution and the
    colour differences R - Y, B - Y averaged over blocks of ``chroma`` pixels
    (the last row and column replicated to fill a block); the decoder brings
    them back up by linear interpolation between the blocks' centres
    (libjpeg's "fancy" upsampling, the border blocks held) and adds Y, so
    each decoded channel is U(c) + (Y - U(Y)), U that chain.  The second
    term is the same in every channel and holds the luma's detail, which mixes
    the three channels where the lens put each (mostly green's position).  Y
    is rebuilt from the decoded channels (exact to rounding: the colour
    differences hold no luma) and Y - U(Y) taken out, which leaves U(c).
    HEIC's chroma chain is taken to be the same.  Full-resolution chroma
    gives the frame itself as float32."""
    sx, sy = int(chroma[0]), int(chroma[1])
    if sx < 1 or sy < 1:
        raise ValueError(f"chroma subsampling must be positive, not {chroma}")
    f = xp.asarray(frame).astype(xp.float32)
    if f.ndim != 3 or f.shape[2] != 3:
        raise ValueError("the chroma's low band needs an RGB frame")
    if sx == 1 and sy == 1:
        return f
    wr, wg, wb = (np.float32(w) for w in LUMA_WEIGHTS)
    Y = (wr * f[..., 0] + wg * f[..., 1]) + wb * f[..., 2]
    h, w = Y.shape
    ph, pw = -h % sy, -w % sx
    Yp = xp.pad(Y, ((0, ph), (0, pw)), mode="edge") if ph or pw else Y
    blocks = Yp.reshape(Yp.shape[0] // sy, sy, Yp.shape[1] // sx, sx).mean(axis=(1, 3), dtype=xp.float32)
    up = _linear_up(xp, _linear_up(xp, blocks, sy, 0)[:h], sx, 1)[:, :w]
    Y -= up
    f -= Y[..., None]
    return f


def _linear_up(xp, a, s: int, axis: int):
    """``a`` brought up ``s`` times along ``axis`` by linear interpolation
    between sample centres (output x reads (x + 0.5) / s - 0.5, clamped to
    the first and last samples: OpenCV's INTER_LINEAR upscaling), float32."""
    if s == 1:
        return a
    m = a.shape[axis]
    src = (np.arange(m * s, dtype=np.float64) + 0.5) / s - 0.5
    i0 = np.floor(src).astype(np.int64)
    frac = (src - i0).astype(np.float32)
    i1 = np.minimum(i0 + 1, m - 1)
    i0 = np.maximum(i0, 0)
    frac[src < 0] = 0.0
    shape = [1, 1]
    shape[axis] = -1
    fr = xp.asarray(frac).reshape(shape)
    lo = xp.take(a, xp.asarray(i0), axis=axis)
    out = xp.take(a, xp.asarray(i1), axis=axis)
    out -= lo  # lo + (hi - lo) frac, two arrays at a time
    out *= fr
    out += lo
    return out
