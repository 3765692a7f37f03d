"""Pixel value encodings: the full-scale value of 8- and 16-bit samples, and the
chroma subsampling chain of JPEG and HEIC frames (what their decoders rebuild)."""

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


UPSAMPLINGS = ("linear", "nearest")  # how a decoder brings subsampled chroma back up (chroma_low_band)


def chroma_low_band(frame, chroma, xp=np, upsampling: str = "linear", origin=(0, 0)):
    """float32 (h, w, 3): each channel of a decoded chroma-subsampled RGB
    ``frame`` less the luma's fine detail that its decoder put in all three,
    which leaves the channel's own low band; ``chroma`` the subsampling
    (horizontal, vertical), ``upsampling`` how the decoder brought the chroma
    back up (:func:`chroma_upsampling` tells from the frame), ``xp`` the array
    module (NumPy, or CuPy for a frame on the GPU: the same operations in the
    same order).

    A JPEG stores Y = 0.299 R + 0.587 G + 0.114 B at full resolution and the
    colour differences R - Y, B - Y averaged over blocks of ``chroma`` pixels
    (the last row and column replicated to fill a block); the decoder brings
    them back up and adds Y, so each decoded channel is U(c) + (Y - U(Y)), U
    that chain: "linear", interpolation between the blocks' centres with the
    border blocks held (libjpeg's "fancy" upsampling, what OpenCV and Pillow
    decode with), or "nearest", each block's value repeated (what libheif
    gives for HEIC, through pillow-heif).  The second term is the same in
    every channel and holds the luma's detail, which mixes the three channels
    where the lens put each (mostly green's position).  Y is rebuilt from the
    decoded channels (exact to rounding: the colour differences hold no
    luma) and Y - U(Y) taken out, which leaves U(c).  Full-resolution chroma
    gives the frame itself as float32.  ``origin`` (x, y): the pixels of a
    partial block before the first whole one on each axis, where the frame
    was turned upright from a stored picture with odd sides
    (:attr:`superres_gpu.discover.FrameInfo.chroma_origin`)."""
    sx, sy = _factors(chroma)
    if upsampling not in UPSAMPLINGS:
        raise ValueError(f"chroma upsampling must be one of {UPSAMPLINGS}, not {upsampling!r}")
    f = xp.asarray(frame).astype(xp.float32)
    if f.ndim != 3 or f.shape[2] != 3:
        raise ValueError("the chroma's low band needs an RGB frame")
    if sx == 1 and sy == 1:
        return f
    Y = _luma(f)
    Y -= _chain(xp, Y, sx, sy, upsampling, origin)
    f -= Y[..., None]
    return f


def smooth_chroma_band(frame, chroma, xp=np, upsampling: str = "linear", origin=(0, 0), channels=(0, 1, 2)):
    """float32 (h, w, 3): the smooth low band of each channel of a decoded
    chroma-subsampled RGB ``frame``, what the chromatic aberration's
    correction moves: the true channel through the block average and linear
    upsampling, W(c).  For a "linear" decoder that is :func:`chroma_low_band`;
    for a "nearest" one, whose low band is blocks (a pattern of the decoder,
    on the frame's grid, that moving would smear), it is W of the decoded
    channel itself, since the block average of the decoded channel is the
    block average of the true one (the repeated chroma and the luma's detail
    average out over each block, to rounding); ``origin`` as there.
    ``channels``: the planes wanted; for a "nearest" decoder only those are
    made (each is a chain of its own) and the others are left at zero."""
    if upsampling != "nearest":
        return chroma_low_band(frame, chroma, xp, upsampling, origin)
    sx, sy = _factors(chroma)
    f = xp.asarray(frame)
    if f.ndim != 3 or f.shape[2] != 3:
        raise ValueError("the chroma's low band needs an RGB frame")
    h, w = f.shape[:2]
    out = xp.zeros((h, w, 3), dtype=xp.float32)
    for c in channels:  # a channel at a time: the temporaries stay a plane's
        out[..., c] = _chain(xp, f[..., c], sx, sy, "linear", origin)
    return out


def _chain(xp, plane, sx: int, sy: int, upsampling: str, origin):
    """float32: ``plane`` (h, w) averaged over the chroma's blocks (the grid
    starting ``origin`` (x, y) pixels before the plane, the border rows and
    columns replicated to fill the partial blocks) and brought back up."""
    h, w = plane.shape
    ox, oy = int(origin[0]) % sx, int(origin[1]) % sy
    pad = ((oy, -(h + oy) % sy), (ox, -(w + ox) % sx))
    if any(pad[0]) or any(pad[1]):
        plane = xp.pad(plane, pad, mode="edge")
    blocks = plane.reshape(plane.shape[0] // sy, sy, plane.shape[1] // sx, sx).mean(axis=(1, 3), dtype=xp.float32)
    return _upsample(xp, _upsample(xp, blocks, sy, 0, upsampling)[oy : oy + h], sx, 1, upsampling)[:, ox : ox + w]


# chroma_upsampling: blocks whose colour differences change by more than this (of full scale) from a
# neighbouring block take part, and they must be at least this many
_ACTIVE_STEP = 8.0 / 255.0
_MIN_ACTIVE_BLOCKS = 50
# nearest-neighbour upsampling leaves a block's colour differences constant but for rounding (spread 0.00
# of the step to the neighbouring block on HEIC frames through pillow-heif, synthetic chart and photo, quality
# 70-95); linear upsampling spreads about half that step over the block (0.46-0.61 on JPEG frames of the
# same scenes and on the real Nexus 5X burst's)
NEAREST_MAX_SPREAD = 0.2


def chroma_upsampling(frame, chroma, origin=(0, 0)) -> str:
    """How the decoder of a chroma-subsampled RGB ``frame`` (host array)
    brought its chroma back up, told from the frame: "nearest" where the
    colour differences R - Y and B - Y are constant within the chroma's
    blocks (their spread within a block, median over the blocks whose
    colour changes from a neighbour's, at most :data:`NEAREST_MAX_SPREAD`
    of that change), else "linear" (also where too little colour changes to
    tell: JPEG's usual decoding); ``origin`` as for :func:`chroma_low_band`."""
    spread = chroma_block_spread(frame, chroma, origin)
    return "nearest" if spread is not None and spread <= NEAREST_MAX_SPREAD else "linear"


def chroma_block_spread(frame, chroma, origin=(0, 0)) -> float | None:
    """The evidence :func:`chroma_upsampling` weighs: the colour differences'
    spread within a chroma block over their change to the neighbouring
    block, median over the blocks whose colour changes by more than 8 levels
    of 255; None where fewer than 50 such blocks (or full-resolution chroma)."""
    sx, sy = _factors(chroma)
    if sx == 1 and sy == 1:
        return None
    f = np.asarray(frame)
    top = full_scale(f.dtype) if f.dtype in (np.uint8, np.uint16) else 1.0
    f = f.astype(np.float32) / np.float32(top)
    Y = _luma(f)
    y0, x0 = (sy - int(origin[1]) % sy) % sy, (sx - int(origin[0]) % sx) % sx  # the first whole block
    h, w = ((Y.shape[0] - y0) // sy) * sy, ((Y.shape[1] - x0) // sx) * sx
    spread, step = [], []
    for c in (0, 2):
        d = (f[y0 : y0 + h, x0 : x0 + w, c] - Y[y0 : y0 + h, x0 : x0 + w]).reshape(h // sy, sy, w // sx, sx)
        within = d.max(axis=(1, 3)) - d.min(axis=(1, 3))
        m = d.mean(axis=(1, 3))
        for jump, inside in ((np.abs(np.diff(m, axis=1)), within[:, :-1]), (np.abs(np.diff(m, axis=0)), within[:-1])):
            active = jump > _ACTIVE_STEP
            spread.append(inside[active])
            step.append(jump[active])
    spread, step = np.concatenate(spread), np.concatenate(step)
    if spread.size < _MIN_ACTIVE_BLOCKS:
        return None
    return float(np.median(spread / step))


def _factors(chroma) -> tuple[int, int]:
    sx, sy = int(chroma[0]), int(chroma[1])
    if sx < 1 or sy < 1:
        raise ValueError(f"chroma subsampling must be positive, not {chroma}")
    return sx, sy


def _luma(f):
    wr, wg, wb = (np.float32(w) for w in LUMA_WEIGHTS)
    return (wr * f[..., 0] + wg * f[..., 1]) + wb * f[..., 2]


def _upsample(xp, a, s: int, axis: int, upsampling: str):
    """``a`` brought up ``s`` times along ``axis``, float32: "nearest" repeats
    each sample; "linear" interpolates between sample centres (output x reads
    (x + 0.5) / s - 0.5, clamped to the first and last samples: OpenCV's
    INTER_LINEAR upscaling)."""
    if s == 1:
        return a
    m = a.shape[axis]
    # the taps and weights are made where ``a`` lives (no copy from the host per frame on the GPU)
    x = xp.arange(m * s, dtype=xp.int64)
    if upsampling == "nearest":
        return xp.take(a, x // s, axis=axis)
    src = (x.astype(xp.float64) + 0.5) / s - 0.5
    i0 = xp.floor(src)
    frac = xp.where(src < 0, 0.0, src - i0).astype(xp.float32)
    i0 = i0.astype(xp.int64)
    i1 = xp.minimum(i0 + 1, m - 1)
    i0 = xp.maximum(i0, 0)
    shape = [1, 1]
    shape[axis] = -1
    fr = frac.reshape(shape)
    lo = xp.take(a, i0, axis=axis)
    out = xp.take(a, i1, axis=axis)
    out -= lo  # lo + (hi - lo) frac, two arrays at a time
    out *= fr
    out += lo
    return out
