"""NumPy (+OpenCV) backend: the specification every CUDA kernel is tested against.

Each public kernel method is the twin of one kernel in ``kernels/*.cu`` and has
the same signature as the ``CupyBackend`` method.  Where OpenCV does the heavy
lifting (``cv2.remap`` for Lanczos4), the exact arithmetic it performs is
spelled out in :mod:`superres_gpu.interp` and checked against a direct
implementation in the tests.
"""

from __future__ import annotations

import math
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor, wait

import numpy as np

from ..geometry import MODEL_NPARAMS, MOTION_MODELS, is_plausible, model_matrix, output_to_reference
from ..interp import TAB_BITS, TAB_SIZE, bspline_weights_f32
from ..pixels import full_scale
from . import base as S

_STRIP_PIXELS = 1 << 20  # output pixels per strip (bounded temporaries on large frames)
_RESAMPLE_STRIP_PIXELS = 1 << 16  # resample_accumulate: temporaries stay in cache, one thread per strip
_KERNEL_STRIP_PIXELS = 1 << 17  # ... in kernel_accumulate: fewer calls and set-ups (8-11 % faster than 1 << 16)
TILE_SPAN_PIXELS = 1 << 19  # tile_phase_shifts: the tile pixels of one span of rows (on 8 MP: 4x faster than one span of 4 M px, unthreaded)
_SAMPLE_CHUNK = 1 << 13  # B-spline samples per chunk on the worker threads
NOISE_SAMPLES = 1 << 16  # pixels the robust noise level's median is taken over (at most about)


def model_jacobian(model_id: int, xn, yn, gxn, gyn) -> np.ndarray:
    """(N, n) steepest-descent images: gradient times dW/dp at p = 0.

    ``xn, yn`` are normalised coordinates, ``gxn, gyn`` the reference's
    gradient per normalised unit.  Column order matches ``model_matrix``.
    """
    m = MOTION_MODELS[model_id]
    if m == "translation":
        cols = [gxn, gyn]
    elif m == "euclidean":
        cols = [gxn, gyn, -yn * gxn + xn * gyn]
    elif m == "similarity":
        cols = [gxn, gyn, xn * gxn + yn * gyn, -yn * gxn + xn * gyn]
    elif m == "affine":
        cols = [xn * gxn, yn * gxn, gxn, xn * gyn, yn * gyn, gyn]
    else:
        r = xn * gxn + yn * gyn
        cols = [xn * gxn, yn * gxn, gxn, xn * gyn, yn * gyn, gyn, -xn * r, -yn * r]
    return np.stack(cols, axis=1)


def sample_bspline_f32(coef: np.ndarray, iu, iv, tu, tv) -> np.ndarray:
    """Cubic B-spline interpolation of a coefficient image (float32) at taps
    (iu, iv) (integers: floor of the position) and fractions (tu, tv)
    (float32, :func:`level_pos_f32`), taps clamped, in float32 in the order of
    common.cuh's ``sr_sample_bspline_f``: each row's four products summed, then
    the rows.  Many positions are sampled in chunks on the worker threads (each
    position's value is the same whatever chunk it falls in)."""
    iu, iv = np.asarray(iu), np.asarray(iv)
    tu, tv = np.asarray(tu, np.float32), np.asarray(tv, np.float32)
    if iu.size < 2 * _SAMPLE_CHUNK:
        return _sample_bspline_f32(coef, iu, iv, tu, tv)
    out = np.empty(iu.size, dtype=np.float32)
    a, b, c, d = iu.ravel(), iv.ravel(), tu.ravel(), tv.ravel()

    def work(i0, i1):
        out[i0:i1] = _sample_bspline_f32(coef, a[i0:i1], b[i0:i1], c[i0:i1], d[i0:i1])

    _run_strips(work, iu.size, _SAMPLE_CHUNK)
    return out.reshape(iu.shape)


def sample_bspline(coef: np.ndarray, u, v) -> np.ndarray:
    """:func:`sample_bspline_f32` at positions (u, v) (any float): taps
    floor(u), floor(v), fractions rounded to float32 (a convenience for
    tests and tools; the kernels' twins form taps and fractions with
    :func:`level_pos_f32`)."""
    u, v = np.asarray(u, np.float64), np.asarray(v, np.float64)
    iu, iv = np.floor(u), np.floor(v)
    return sample_bspline_f32(coef, iu.astype(np.int64), iv.astype(np.int64), (u - iu).astype(np.float32),
                              (v - iv).astype(np.float32))


def _sample_bspline_f32(coef, iu, iv, tu, tv) -> np.ndarray:
    h, w = coef.shape
    out = np.zeros(iu.shape, dtype=np.float32)
    if iu.size == 0:
        return out
    wx = bspline_weights_f32(tu)
    wy = bspline_weights_f32(tv)
    iu = iu.astype(np.int64, copy=False)
    iv = iv.astype(np.int64, copy=False)
    flat = coef.ravel()
    if iu.min() >= 1 and iu.max() <= w - 3 and iv.min() >= 1 and iv.max() <= h - 3:
        # every tap inside (the usual case: points keep a margin): no clamping, one index per row
        corner = (iv - 1) * w + (iu - 1)
        rows = [corner + r * w for r in range(4)]
        cols = None
    else:
        rows = [np.clip(iv + (r - 1), 0, h - 1) * w for r in range(4)]
        cols = [np.clip(iu + (c - 1), 0, w - 1) for c in range(4)]
    for r in range(4):  # 0 + x = x: starting each sum from its first product changes no value
        acc = None
        for c in range(4):
            idx = rows[r] + c if cols is None else rows[r] + cols[c]
            term = wx[c] * np.take(flat, idx)
            acc = term if acc is None else acc + term
        out += wy[r] * acc
    return out


def warp_coeffs_f32(Ti: np.ndarray, ox: float, oy: float) -> np.ndarray:
    """float32[9]: the displacement's coefficients A = Tc / Tc[2, 2] - I of
    the inverse warp ``Ti`` (3x3, reference -> frame, level-0 px) conjugated
    to the origin o, Tc = C(-o) Ti C(o), formed in float64 in the order of
    common.cuh's ``sr_warp_f_init`` and rounded to float32."""
    T = [float(x) for x in np.asarray(Ti, np.float64).ravel()]
    M = [0.0] * 9
    for r in range(3):
        M[3 * r] = T[3 * r]
        M[3 * r + 1] = T[3 * r + 1]
        M[3 * r + 2] = (T[3 * r] * ox + T[3 * r + 1] * oy) + T[3 * r + 2]
    Tc = [0.0] * 9
    for k in range(3):
        Tc[k] = M[k] + -(ox * M[6 + k])
        Tc[3 + k] = M[3 + k] + -(oy * M[6 + k])
        Tc[6 + k] = M[6 + k]
    z = Tc[8]
    return np.array([Tc[k] / z + (-1.0 if k % 4 == 0 else 0.0) for k in range(9)], dtype=np.float32)


def warp_disp_f32(A: np.ndarray, qx, qy):
    """(dx, dy) float32: the displacement Tinv p - p at centred positions q = p - o
    (float32, broadcast together) from :func:`warp_coeffs_f32`'s A, in float32 in
    the order of common.cuh's ``sr_warp_disp_f``: m = (A6 qx + A7 qy) + A8,
    dx = ((A0 qx + A1 qy) + A2 - qx m) / (1 + m), dy alike.  Where the warp is
    affine (m = 0) dx is the numerator itself, as the kernel's arithmetic gives."""
    nx = A[0] * qx + A[1] * qy + A[2]
    ny = A[3] * qx + A[4] * qy + A[5]
    if A[6] == 0 and A[7] == 0 and A[8] == 0:
        return np.broadcast_arrays(nx, ny)
    m = A[6] * qx + A[7] * qy + A[8]
    den = np.float32(1.0) + m
    return (nx - qx * m) / den, (ny - qy * m) / den


def level_pos_f32(p, d, level: int):
    """(tap, fraction, u) of level-0 positions ``p`` moved by displacements
    ``d`` (float32, broadcast together) on pyramid level ``level``: u = (p + d
    + 0.5) / 2^L - 0.5, its floor as int64, its fraction float32 and u itself
    rounded to float32 (for the coverage test); p's integer part is kept out
    of the float32 sum (common.cuh's ``sr_level_pos_f``, the same operations)."""
    f32 = np.float32
    f = f32(2**level)
    inv_f = f32(1.0 / 2**level)
    p = np.asarray(p, f32)
    ip = np.floor(p)
    fp = p - ip
    q = np.floor(ip * inv_f)
    r = ip - q * f
    c = r + f32(0.5) * (f32(1.0) - f)
    s = (c + (fp + d)) * inv_f
    fl = np.floor(s)
    t = s - fl
    i = q.astype(np.int64) + fl.astype(np.int64)
    return i, t, q + s


class _AlignConsts:
    """common.cuh's ``SrAlignK``: what every point of a reduction shares,
    formed in float64 from the state and rounded to float32 as
    ``sr_align_consts`` does once per thread block."""

    def __init__(self, state, w: int, h: int, level: int, norm, margin: float):
        f32 = np.float32
        cx, cy, sc = (float(v) for v in norm)
        self.A = warp_coeffs_f32(state[S.S_TINV].reshape(3, 3), cx, cy)
        self.ox, self.oy = f32(cx), f32(cy)
        self.lo = f32(margin)
        self.hi_u, self.hi_v = f32(w - 1.0 - margin), f32(h - 1.0 - margin)
        self.gain, self.offset = f32(state[S.S_GAIN]), f32(state[S.S_OFFSET])
        self.inv_sc = f32(1.0 / sc)
        self.sigma = float(state[S.S_SIGMA])
        self.redescend = state[S.S_REDESCEND] != 0.0
        trials = S.scale_trials(self.sigma) if self.sigma > 0.0 else []
        self.rinv = [f32(1.0 / (S.SCALE_C * float(t))) for t in trials]


class NumpyBackend:
    """The CPU backend; also the reference implementation of every kernel."""

    name = "numpy"

    def __init__(self):
        self.xp = np

    # --- memory -------------------------------------------------------------
    def asarray(self, a, dtype=None):
        return np.asarray(a, dtype=dtype)

    def asnumpy(self, a) -> np.ndarray:
        return np.asarray(a)

    def host_frame(self, shape, dtype) -> np.ndarray:
        """A host buffer for one decoded frame (the GPU backend's is pinned memory)."""
        return np.empty(shape, dtype=dtype)

    def release_host(self, host) -> None:
        """A host_frame buffer that will not be uploaded (nothing to do on the CPU)."""

    def upload_frame(self, host):
        """The frame as the kernels read it: on the CPU, the host array itself."""
        return host

    def frame_done(self, frame) -> None:
        """The last use of ``frame`` is queued (the GPU backend recycles its buffer)."""

    def synchronize(self) -> None:
        pass

    # --- stage timing (the CuPy backend records CUDA events instead) -------------
    def mark(self) -> float:
        return time.perf_counter()

    def elapsed(self, m0: float, m1: float) -> float:
        return m1 - m0

    def wait(self, mark) -> None:
        pass

    def peak_memory_mib(self) -> float | None:
        """Device memory high-water mark (None: host memory only)."""
        return None

    def describe(self) -> str:
        import cv2

        return f"NumPy {np.__version__} + OpenCV {cv2.__version__} ({cv2.getNumThreads()} threads)"

    # --- kernel 2: luma and pyramid ---------------------------------------------
    def luma(self, frame: np.ndarray) -> np.ndarray:
        """float32 luma in [0, 1]: BT.601 weights on RGB, or the grey value.

        ``frame`` is (H, W) or (H, W, 3) uint8/uint16.  Arithmetic in float32:
        ``(0.299 r + 0.587 g + 0.114 b) * (1 / max_value)``.
        """
        inv = np.float32(1.0 / full_scale(frame.dtype))
        if frame.ndim == 2:
            return frame.astype(np.float32) * inv
        wr, wg, wb = (np.float32(w) for w in S.LUMA_WEIGHTS)
        f = frame.astype(np.float32)
        y = f[..., 0] * wr
        y += f[..., 1] * wg
        y += f[..., 2] * wb
        y *= inv
        return y

    def downsample2(self, img: np.ndarray) -> np.ndarray:
        """Halve an image with the separable [1, 3, 3, 1]/8 filter.

        out[y, x] = sum_ij b_i b_j img[clamp(2y-1+i), clamp(2x-1+j)]; the output is
        (H//2, W//2) and its pixel x is centred at input position 2x + 0.5.
        """
        h, w = img.shape
        ho, wo = h // 2, w // 2
        p = np.pad(img, 1, mode="edge")
        b = np.float32(0.125), np.float32(0.375)
        # rows: padded row 2y + i holds input row 2y - 1 + i
        t = (p[0 : 2 * ho : 2] + p[3 : 2 * ho + 3 : 2]) * b[0] + (p[1 : 2 * ho + 1 : 2] + p[2 : 2 * ho + 2 : 2]) * b[1]
        out = (t[:, 0 : 2 * wo : 2] + t[:, 3 : 2 * wo + 3 : 2]) * b[0] + (
            t[:, 1 : 2 * wo + 1 : 2] + t[:, 2 : 2 * wo + 2 : 2]
        ) * b[1]
        return np.ascontiguousarray(out, dtype=np.float32)

    def sepfilter(self, img: np.ndarray, taps: np.ndarray) -> np.ndarray:
        """Separable filter with the same odd-length float32 ``taps`` on rows,
        then on columns (centred, edges replicated), float32."""
        import cv2

        k = np.asarray(taps, dtype=np.float32)
        return cv2.sepFilter2D(img, cv2.CV_32F, k, k, borderType=cv2.BORDER_REPLICATE)

    # --- kernel 4 (part): gradients ------------------------------------------------
    def gradient(self, img: np.ndarray):
        """Central differences (per pixel), one-sided-by-clamping at the borders."""
        p = np.pad(img, 1, mode="edge")
        half = np.float32(0.5)
        gx = (p[1:-1, 2:] - p[1:-1, :-2]) * half
        gy = (p[2:, 1:-1] - p[:-2, 1:-1]) * half
        return np.ascontiguousarray(gx), np.ascontiguousarray(gy)

    # --- kernel 3: phase correlation -------------------------------------------------
    def reference_spectrum(self, img: np.ndarray, window: np.ndarray) -> np.ndarray:
        """FFT of the windowed reference (complex64), computed once per burst."""
        return np.fft.fft2(img * window).astype(np.complex64)

    def phase_correlation(self, ref_spectrum: np.ndarray, img: np.ndarray, window: np.ndarray) -> np.ndarray:
        """Real phase-correlation surface; its peak sits at the offset p for which
        frame(x) ~ reference(x + p) (cyclic indices), i.e. T's translation.

        cross = ref * conj(frame) / |ref * conj(frame)| in complex64, zero where
        the magnitude is <= 1e-20 and at the mean (index 0)."""
        f = np.fft.fft2(img * window).astype(np.complex64)
        return np.fft.ifft2(cross_power(ref_spectrum, f)).real.astype(np.float32)

    def peak_to_state(self, surface: np.ndarray, state: np.ndarray, level: int) -> None:
        """Find the correlation peak (first index on ties), fit a parabola per axis
        through it and its cyclic neighbours, and set T = translation by the peak
        offset (times 2^level, in level-0 px), Tinv = its inverse, and the peak height."""
        h, w = surface.shape
        idx = int(np.argmax(surface))
        py, px = divmod(idx, w)
        c = float(surface[py, px])

        def fit(m, z, p):  # vertex of the parabola through (-1, m), (0, z), (1, p)
            den = m - 2.0 * z + p
            if den >= 0.0:  # not a maximum: keep the integer peak
                return 0.0
            off = 0.5 * (m - p) / den
            return min(0.5, max(-0.5, off))

        dx = px + fit(float(surface[py, (px - 1) % w]), c, float(surface[py, (px + 1) % w]))
        dy = py + fit(float(surface[(py - 1) % h, px]), c, float(surface[(py + 1) % h, px]))
        if dx >= w / 2.0:
            dx -= w
        if dy >= h / 2.0:
            dy -= h
        f = float(2**level)
        state[S.S_T] = [1.0, 0.0, dx * f, 0.0, 1.0, dy * f, 0.0, 0.0, 1.0]
        state[S.S_TINV] = [1.0, 0.0, -(dx * f), 0.0, 1.0, -(dy * f), 0.0, 0.0, 1.0]
        state[S.S_PC_PEAK] = c

    # --- kernel 4: refinement reductions and update ------------------------------
    def align_reduce(self, img, points, state, model_id: int, level: int, norm, margin: float = 0.0,
                     iteration: int = 0) -> np.ndarray:
        """One Gauss-Newton pass: sample the frame at the reference's points.

        Every per-point value is float32 in the kernel's order (the
        displacement Tinv p - p, never the transformed position, then the
        level position, B-spline sample, residual, weight and Jacobian row:
        :func:`warp_disp_f32`, :func:`level_pos_f32`, :func:`sample_bspline_f32`);
        the sums are float64.  ``img`` is the frame's level-``level`` luma as cubic B-spline
        coefficients (float32), ``points`` the
        (5, N) float32 reference data (level-0 x, y; value; gradient per
        normalised unit x, y), ``norm`` = (cx, cy, sc).  A point counts when its
        position in ``img`` lies at least ``margin`` pixels inside the border
        (where filtering saw no replicated edge pixels).  Returns float64[64]
        sums laid out as ``SUM_*`` in ``backends.base``.  Each point weighs
        :func:`align_weight` of its residual at the state's scale (Tukey's
        biweight where ``S_REDESCEND`` is set); with a scale, the sums also
        hold the rho sums of the scale estimate (``SUM_RHO``, see
        :func:`m_scale`).  From the second ``iteration`` of a level on, a state marked converged (``S_CONVERGED``)
        skips the work and returns zeros (its update is skipped too).
        """
        out = np.zeros(S.SUMS_LEN, dtype=np.float64)
        if iteration > 0 and state[S.S_CONVERGED] != 0.0:
            return out
        f64 = np.float64
        x0 = np.asarray(points[S.PT_X], np.float32)
        y0 = np.asarray(points[S.PT_Y], np.float32)
        out[S.SUM_N] = x0.size
        h, w = img.shape
        K = _AlignConsts(state, w, h, level, norm, margin)
        qx, qy = x0 - K.ox, y0 - K.oy
        dx, dy = warp_disp_f32(K.A, qx, qy)
        iu, tu, u = level_pos_f32(x0, dx, level)
        iv, tv, v = level_pos_f32(y0, dy, level)
        valid = (u >= K.lo) & (u <= K.hi_u) & (v >= K.lo) & (v <= K.hi_v)
        if not valid.any():
            return out
        if valid.all():  # the usual case: the same arrays without copying them through the mask
            valid = slice(None)
        s = sample_bspline_f32(img, iu[valid], iv[valid], tu[valid], tv[valid])
        R = np.asarray(points[S.PT_R][valid], np.float32)
        e = K.gain * s + K.offset - R
        wts = align_weight(e, K.sigma, K.redescend)
        for k, ri in enumerate(K.rinv):
            out[S.SUM_RHO + k] = scale_rho(e * ri).sum(dtype=f64)
        J = model_jacobian(model_id, qx[valid] * K.inv_sc, qy[valid] * K.inv_sc,
                           np.asarray(points[S.PT_GX][valid], np.float32), np.asarray(points[S.PT_GY][valid], np.float32))
        n = J.shape[1]
        # sums of products of two float32 values: their float64 products are exact, as the kernel's
        J64 = J.astype(f64)
        Hm = (J * wts[:, None]).astype(f64).T @ J64
        e64, s64, R64 = e.astype(f64), s.astype(f64), R.astype(f64)
        we, ws, wr = (wts * e).astype(f64), wts * s, wts * R
        for i in range(n):
            for j in range(i, n):
                out[S.SUM_H + S.upper_index(i, j)] = Hm[i, j]
        out[S.SUM_G : S.SUM_G + n] = J64.T @ we
        out[S.SUM_COUNT] = e.size
        out[S.SUM_W] = wts.sum(dtype=f64)
        out[S.SUM_WEE] = we @ e64
        out[S.SUM_EE] = e64 @ e64
        out[S.SUM_S] = s64.sum()
        out[S.SUM_SS] = s64 @ s64
        out[S.SUM_SR] = s64 @ R64
        out[S.SUM_R] = R64.sum()
        out[S.SUM_RR] = R64 @ R64
        out[S.SUM_WS] = ws.sum(dtype=f64)
        out[S.SUM_WSS] = ws.astype(f64) @ s64
        out[S.SUM_WR] = wr.sum(dtype=f64)
        out[S.SUM_WRR] = wr.astype(f64) @ R64
        return out

    def align_update(self, sums, state, model_id: int, norm, damping: float, converged_px: float = 0.0,
                     iteration: int = 0) -> None:
        """Solve (H + damping diag H) dp = g, compose T <- W(dp) T, update stats.

        Also refreshes the photometric gain/offset (matching the standard
        deviations of frame and reference over the valid points, with the
        points' robust weights), the robust
        scale (:func:`m_scale` from the reduction's rho sums; the RMS residual
        when there was no scale yet), correlation, overlap and step size.  Convergence
        of a level: from its second ``iteration`` on, nothing is done once the
        state is marked converged; after an update, the state is marked
        converged when ``iteration`` >= 1 and the step is below ``converged_px``
        (and unmarked otherwise, so each level starts afresh).
        """
        if iteration > 0 and state[S.S_CONVERGED] != 0.0:
            return
        align_update_math(np.asarray(sums, dtype=np.float64), state, model_id, norm, damping)
        state[S.S_CONVERGED] = 1.0 if iteration >= 1 and state[S.S_STEP] < converged_px else 0.0

    def align_finalize(self, state, width: int, height: int, min_corr: float, min_overlap: float) -> None:
        """Decide whether the frame is merged: sets S_ACCEPT and S_STATUS."""
        align_finalize_math(state, width, height, min_corr, min_overlap)

    # --- kernel 6: robust merge weights ----------------------------------------------
    def robust_residual(self, coef, ref_img, state, level: int, margin: float, field=None, field_cell: float = 0.0):
        """Squared residual and coverage of a frame on the reference's level grid.

        For each pixel (x, y) of ``ref_img`` (the reference's level-``level``
        luma): its level-0 position p = 2^L (x + 0.5) - 0.5 (moved to p + D(p)
        by a local displacement ``field``, see :func:`field_at_f32`, when given) is
        mapped into the frame by Tinv and back to level coordinates; where that
        lies at least ``margin`` px inside, the frame (cubic B-spline
        coefficients ``coef``) is sampled there and d = gain * s + offset - ref;
        returns float32 (d^2, coverage) maps, both 0 where the frame does not cover.
        """
        return _level_residual(coef, ref_img, state, level, margin, field, field_cell, square=True)

    def warp_residual(self, coef, ref_img, state, level: int, margin: float, field=None, field_cell: float = 0.0):
        """(e, coverage): the signed residual d of :meth:`robust_residual`
        (float32, 0 where the frame does not cover), what the local refinement
        (:mod:`superres_gpu.local`) solves for its displacement field from."""
        return _level_residual(coef, ref_img, state, level, margin, field, field_cell)

    def tile_phase_shifts(self, ref_img, img, x0, y0, size: int):
        """Phase correlation of square tiles: for tile (i, j), the ``size`` x
        ``size`` windows of ``ref_img`` and ``img`` (float32, same shape) at
        columns ``x0[j]`` and rows ``y0[i]`` onwards (int arrays; the tiles lie
        inside).  Each tile's mean is removed and a Hann window applied; the
        normalised cross-power spectrum (zero where its magnitude is <= 1e-20
        and at the mean) is inverted and its peak fitted by a parabola per
        axis (cyclic neighbours; a non-maximum keeps the integer peak; the
        fraction within +-0.5).  Returns float32 (gh, gw, 3): the offset
        (sx, sy) for which img(x) ~ ref_img(x + s), wrapped to [-size/2,
        size/2), and the peak height.  Tiles are processed in groups of rows
        (bounded memory)."""
        return tile_phase_shifts(np, ref_img, img, x0, y0, size, run=_run_strips)

    def local_extrema(self, img, r: int):
        """(min, max) float32 of ``img`` ((H, W) float32) over the (2r + 1)^2
        window around each pixel, edges replicated (``cv2.erode`` and
        ``cv2.dilate``: exact, as :func:`local_extrema` written for any array
        module)."""
        import cv2

        img = np.ascontiguousarray(img, dtype=np.float32)
        if r <= 0:
            return img.copy(), img.copy()
        k = np.ones((2 * r + 1, 2 * r + 1), np.uint8)
        return (cv2.erode(img, k, borderType=cv2.BORDER_REPLICATE),
                cv2.dilate(img, k, borderType=cv2.BORDER_REPLICATE))

    def field_median3(self, field, ok):
        """Per node of a (gh, gw, 2) field: the median of each component over
        the accepted nodes (``ok`` > 0) of its 3x3 neighbourhood, itself
        included (NaN where none is accepted); float32.  Even counts take the
        mean of the two middle values (``np.nanmedian``)."""
        gh, gw = ok.shape
        f = np.where((ok > 0)[..., None], field.astype(np.float32), np.float32(np.nan))
        p = np.pad(f, ((1, 1), (1, 1), (0, 0)), constant_values=np.nan)
        stack = np.stack([p[i : i + gh, j : j + gw] for i in range(3) for j in range(3)])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.nanmedian(stack, axis=0).astype(np.float32)

    def select_points(self, score, count: int, cells: int):
        """(ys, xs) of the reference's informative points: up to ``count``
        pixels of highest ``score`` per cell of a ``cells``-wide grid
        (:func:`superres_gpu.reference.select_points`), in row-major order."""
        from ..reference import select_points

        return select_points(score, count, cells, np)

    def robust_noise_level(self, e, c, g, beta: float):
        """The burst-wide residual level the robust weights divide by: the
        median over covered pixels (``c`` > 0.5) of e / c - beta * g (local mean
        square residual less what edges explain), 1 when there is none, at
        least 1e-12.  The median is taken over every k-th pixel (row-major, k
        = size // NOISE_SAMPLES, at least 1): the level is a smooth burst-wide
        statistic, and this keeps the sort small on the GPU.  A 0-d array (a
        device scalar on the GPU: no host read)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            level = np.where(c > 0.5, e / c - beta * g, np.nan)
        step = max(1, level.size // NOISE_SAMPLES)
        with warnings.catch_warnings():  # nothing covered: an all-NaN median, which counts as 1
            warnings.simplefilter("ignore", RuntimeWarning)
            median = np.nanmedian(level.ravel()[::step])
        return np.maximum(np.nan_to_num(median, nan=1.0), 1e-12)

    def robust_weight(self, e, c, g, scale2, beta: float, k1: float, k2: float, mask=None):
        """Per-pixel merge weight from the local residual energy.

        r2 = (e / c) / (scale2 + beta * g) is the local mean square residual
        (``e``: filtered d^2, ``c``: filtered coverage) over what noise
        (``scale2``, a robust burst-wide level) and small misalignment at
        edges (``beta`` times the reference's local gradient energy ``g``)
        explain; w = clip((k2^2 - r2) / (k2^2 - k1^2), 0, 1): 1 up to k1, 0 from k2.
        Where c <= 0.5 (not covered) w = 1; where ``mask`` > 0, w = 0.  In float32
        (``beta``, ``k1``, ``k2`` rounded to float32), as robust.cu.
        """
        f32 = np.float32
        s2 = f32(np.asarray(scale2))
        k1, k2 = f32(k1), f32(k2)
        e, c, g = (np.asarray(a, f32) for a in (e, c, g))
        with np.errstate(divide="ignore", invalid="ignore"):
            r2 = (e / c) / (s2 + f32(beta) * g)
        k2s = k2 * k2
        w = np.clip((k2s - r2) / (k2s - k1 * k1), f32(0.0), f32(1.0))
        w = np.where(c > f32(0.5), w, f32(1.0))
        if mask is not None:
            w = np.where(mask > 0, f32(0.0), w)
        return w.astype(np.float32, copy=False)

    # --- kernel 1: fused resample-and-accumulate ---------------------------------
    def resample_accumulate(self, frame, state, num, den, scale: float, max_value: float, weights=None,
                            weight_level: int = 1, channel_maps=None, field=None, field_cell: float = 0.0) -> None:
        """Add one frame, resampled onto the output grid, to num and den.

        For output pixel (X, Y): reference position p = S (X, Y) with S the
        output->reference map at ``scale``; frame position (u, v) = Tinv p
        (from ``state``), computed as resample.cu does, in float32 per pixel
        from M = Tinv S (:func:`output_map`, float64) rounded to float32
        (:class:`_Positions`; weights and field in float32 likewise); the
        pixel counts when -0.5 <= u <= W - 0.5 and
        -0.5 <= v <= H - 0.5.  Its value is the Lanczos4 interpolation (see
        :mod:`superres_gpu.interp`) times the photometric gain plus
        offset * ``max_value``.  With a weight w (1, or ``weights`` sampled
        bilinearly, see :func:`weight_at`), num += w * value and den += w.
        Nothing is added when ``state[S_ACCEPT]`` is 0.  ``weights`` is a
        float32 map on the reference's pyramid level ``weight_level``.
        ``channel_maps`` (float64 (C, 12) per channel: a row-major 3x3 Cc, then
        a cubic radial term (cx, cy, k3); (C, 9) rows have none, see
        :func:`channel_map_rows`) moves each channel's sampling position:
        channel c is read at ``Cc (u, v)`` moved by :func:`radial_f32` (lateral
        chromatic aberration, see :mod:`superres_gpu.tca`); coverage stays that
        of (u, v).  Each channel is still interpolated once.
        ``field`` (float32 (gh, gw, 2), reference px; node spacing
        ``field_cell``) is a local displacement field: the output pixel's
        reference position p is read at Tinv (p + D(p)) (:func:`field_output_f32`),
        for coverage and every channel; the weight stays sampled at p.
        """
        import cv2

        if state[S.S_ACCEPT] == 0.0:
            return
        fh, fw = frame.shape[:2]
        ho, wo = den.shape
        f32 = np.float32
        M64 = output_map(state[S.S_TINV].reshape(3, 3), scale)
        M = M64.astype(f32)
        gain = np.float32(state[S.S_GAIN])
        offset = np.float32(state[S.S_OFFSET] * max_value)
        src = frame.astype(np.float32, copy=False)  # read only: a float32 frame from tca_band is not copied
        X = np.arange(wo, dtype=f32)
        S_ = output_to_reference(scale)
        a, b = f32(S_[0, 0]), f32(S_[0, 2])
        if weights is not None:
            wx0, wx1, fx = _bilinear_axis_f32(X, a, b, weight_level, weights.shape[1])
            fx0 = f32(1.0) - fx
        where = _Positions(M, X) if field is None else _FieldPositions(M, X, field, field_cell, a, b)
        if channel_maps is None:
            planes = None
        else:
            rows = channel_map_rows(channel_maps, src.shape[2] if src.ndim == 3 else 1)
            planes = []
            for c, row in enumerate(rows):
                Mc = compose_map(row[:9].reshape(3, 3), M64).astype(f32)
                pos = _Positions(Mc, X) if field is None else _FieldPositions(Mc, X, field, field_cell, a, b)
                planes.append((_RadialPositions(pos, row[9:]) if row[11] != 0.0 else pos,
                               np.ascontiguousarray(src[..., c]) if src.ndim == 3 else src))

        def strip(y_start, y_end):
            Y = np.arange(y_start, y_end, dtype=f32)
            uq, vq = where.at(Y)
            valid = (uq >= -0.5 * TAB_SIZE) & (uq <= (fw - 0.5) * TAB_SIZE)
            valid &= vq >= -0.5 * TAB_SIZE
            valid &= vq <= (fh - 0.5) * TAB_SIZE
            if not valid.any():
                return
            if planes is None:
                vals = cv2.remap(src, *_fixed_point_maps_q(uq, vq, fw, fh), cv2.INTER_LANCZOS4,
                                 borderMode=cv2.BORDER_REPLICATE)
            else:
                chans = [cv2.remap(plane, *_fixed_point_maps_q(*pos.at(Y), fw, fh), cv2.INTER_LANCZOS4,
                                   borderMode=cv2.BORDER_REPLICATE) for pos, plane in planes]
                vals = np.stack(chans, axis=2) if src.ndim == 3 else chans[0]
            del uq, vq
            if gain != 1.0 or offset != 0.0:
                vals *= gain
                vals += offset
            vf = valid.astype(np.float32)
            if weights is not None:  # bilinear in float32: mix the two rows, then the two columns
                wy0, wy1, fy = _bilinear_axis_f32(Y, a, b, weight_level, weights.shape[0])
                rows = weights[wy0] * (f32(1.0) - fy)[:, None] + weights[wy1] * fy[:, None]
                w0 = np.take(rows, wx0, axis=1)
                w0 *= fx0
                w1 = np.take(rows, wx1, axis=1)
                w1 *= fx
                w0 += w1
                vf *= w0
                del w0, w1
            if vals.ndim == 2:
                vals = vals[..., None]
            vals *= vf[..., None]
            num[y_start:y_end] += vals
            den[y_start:y_end] += vf

        rows_per = max(1, _RESAMPLE_STRIP_PIXELS // max(wo, 1))
        _run_strips(strip, ho, rows_per)

    # --- kernel 1 (part): chromatic aberration in the chroma band -----------------
    def tca_band(self, frame, channel_maps, chroma, upsampling: str = "linear", origin=(0, 0)) -> np.ndarray:
        """The RGB frame (h, w, 3) as float32 with each channel's low band moved
        by its map: for channel c whose ``channel_maps`` row (row-major 3x3, green
        positions -> the channel's, affine, then the radial term cx, cy, k3 as in
        :meth:`resample_accumulate`) is not the identity,
        out[y, x, c] = frame[y, x, c] + (L_c(Pc (x, y)) - L_c[y, x]), with L_c
        the channel's smooth low band under the chroma subsampling ``chroma`` and
        the decoder's ``upsampling``, its blocks starting ``origin`` pixels before
        the frame (:func:`superres_gpu.pixels.smooth_chroma_band`:
        the channel without the luma's detail), read with the merge's Lanczos4
        (replicated border); other channels are copied.  The displacement in
        float32, one rounding per operation, coefficients rounded from float64:
        d = ((C00 - 1) x + C01 y) + C02 (rows:
        (C10 x + (C11 - 1) y) + C12), and with k3 != 0, e = (x - cx) + dx
        (rows: (y - cy) + dy), d += (k3 (ex ex + ey ey)) e (the radial term at
        Cc (x, y), :func:`radial_f32`'s); the position in 1/32 px is
        32 x + rint(32 d), exact at any frame size.  This moves what a 4:2:0
        JPEG or HEIC stores of each channel's own position (its chroma band)
        and leaves the fine detail, which all three channels take from the
        luma, where it is (:mod:`superres_gpu.tca`)."""
        import cv2

        from ..pixels import smooth_chroma_band

        maps = band_maps(frame, channel_maps)
        h, w, C = frame.shape
        out = frame.astype(np.float32)
        band = smooth_chroma_band(frame, chroma, upsampling=upsampling, origin=origin,
                                  channels=[c for c in range(C) if band_moves(maps[c])])  # green stays
        f32 = np.float32
        xs = np.arange(w, dtype=np.float32)[None, :]
        for c in range(C):
            m = maps[c]
            if not band_moves(m):
                continue
            lo = np.ascontiguousarray(band[..., c])
            k = (f32(m[0] - 1.0), f32(m[1]), f32(m[2]), f32(m[3]), f32(m[4] - 1.0), f32(m[5]))
            r = (f32(m[9]), f32(m[10]), f32(m[11]))

            def strip(y0, y1, lo=lo, k=k, r=r, c=c):
                ys = np.arange(y0, y1, dtype=np.float32)[:, None]
                dx = (k[0] * xs + k[1] * ys) + k[2]
                dy = (k[3] * xs + k[4] * ys) + k[5]
                if r[2] != 0.0:
                    ex = (xs - r[0]) + dx
                    ey = (ys - r[1]) + dy
                    f = r[2] * (ex * ex + ey * ey)
                    dx = dx + f * ex
                    dy = dy + f * ey
                uq = np.rint(dx * f32(TAB_SIZE)).astype(np.float64) + TAB_SIZE * xs.astype(np.float64)
                vq = np.rint(dy * f32(TAB_SIZE)).astype(np.float64) + TAB_SIZE * ys.astype(np.float64)
                moved = cv2.remap(lo, *_fixed_point_maps_q(uq, vq, w, h), cv2.INTER_LANCZOS4,
                                  borderMode=cv2.BORDER_REPLICATE)
                moved -= lo[y0:y1]
                out[y0:y1, :, c] += moved

            _run_strips(strip, h, max(1, _RESAMPLE_STRIP_PIXELS // max(w, 1)))
        return out

    # --- kernel 7: kernel-regression accumulate ------------------------------------
    def kernel_accumulate(self, frame, state, num, den, scale: float, max_value: float, sigma: float,
                          weights=None, weight_level: int = 1, shape=None, field=None,
                          field_cell: float = 0.0, channel_maps=None) -> None:
        """Add one frame's native samples to num and den with a Gaussian kernel
        centred at each sample's exact position on the output grid (a gather).

        Per pixel everything is float32, one rounding per operation (GPUs
        photographers own run float64 at 1/32 to 1/64 of float32): M = Tinv S
        (:func:`output_map`, in float64 once per frame) rounded to float32, and
        for output pixel (X, Y) (float32; a = 1/s and b rounded to float32) its
        frame position (u, v) = M (X, Y) and J, the Jacobian of M there,
        J = [[M00 - u M20, M01 - u M21], [M10 - v M20, M11 - v M21]] / w, and
        its inverse (for affine M, constant).  A sample's offset on the
        output grid is d = J^-1 (du, dv) for its frame offset (du, dv) (below;
        exact for affine motion, first order for a homography); the Gaussian's
        exponent is e = qa dX^2 + qb dX dY + qc dY^2.  The kernel's
        (qa, qb, qc) are (c2, 0, c2), c2 = -1 / (2 ``sigma``^2) (isotropic,
        ``sigma`` in output px), or, with ``shape`` ((3, H, W) float32 on the
        reference frame's grid, level 0; :func:`superres_gpu.kernelmerge.kernel_shape`),
        its three planes sampled bilinearly at the output pixel like
        ``weights`` (an anisotropic kernel; ``sigma`` is then the largest
        standard deviation of any pixel's kernel and only sets the reach).
        Per pixel, (pa, pb, pc) = :func:`kernel_form` (q, J^-1), so
        that e = ((pa du) du + (pc dv) dv) + (pb du) dv per sample in float32
        (the last product and sum may be fused).

        The samples visited are a window of n x n, n = :func:`kernel_window`
        (``scale``, ``sigma``), rows outer: with s = 0.5 for odd n (the window
        centred on the nearest sample) and 0 for even n (on the four around
        the position), (i, j) = (floor(u + s) + kx, floor(v + s) + ky) for
        kx, ky in [-((n - 1) // 2), n // 2], and (du, dv) = (kx + s - fu,
        ky + s - fv) with fu = u + s - floor(u + s) (float32; likewise fv); the
        window holds every sample nearer than n / 2 frame px on each axis.
        A sample inside the frame weighs k = max(min(g, R (g - :data:`KERNEL_KMIN`)), 0),
        g = exp(e), R = :data:`KERNEL_RAMP`: the Gaussian to three standard
        deviations out (g = KMIN), ramped steeply down to 0 just inside that
        (from g = KMIN R / (R - 1)), so that the weight is continuous at the
        cut-off and no rounding difference moves a sample in or out.  All float32: A = sum k value,
        Ks = sum k in the visiting order; with the robust weight w (1, or
        ``weights`` sampled bilinearly at the output pixel, as in
        :meth:`resample_accumulate`): num += w (gain A + offset * ``max_value``
        Ks) and den += w Ks.  Nothing is added when ``state[S_ACCEPT]`` is 0.
        A local displacement ``field`` moves (X, Y) first, as in
        :meth:`resample_accumulate` (:func:`field_output_f32`); J is then M's at the
        moved position (the field's gradient neglected).

        ``channel_maps`` (float64 (C, 12) or (C, 9), as in
        :meth:`resample_accumulate`) gathers each channel c on its own: at
        Mc (X, Y) with Mc = :func:`compose_map` (Cc, M) (after the field's move),
        moved by the channel's radial term (:func:`radial_f32`), with the
        Jacobian of Mc (the radial term's own is left out: it differs from the
        identity by k3 |d|^2, a few 1e-3 at most), so its own offsets and kernel
        sum Ks_c; ``den`` then has a plane per channel ((ho, wo, C)):
        num_c += w (gain A_c + offset Ks_c), den_c += w Ks_c, each channel its
        own kernel regression over the frames.  Identity maps give in every
        plane exactly the sums without maps.

        The sums are computed in strips of output rows on the worker threads
        (:func:`_run_strips`); each window tap is one nearest-sample
        ``cv2.remap`` of each padded channel plane (:class:`_KernelSource`).
        """

        if state[S.S_ACCEPT] == 0.0:
            return
        ho, wo = den.shape[:2]
        C = num.shape[2]
        if den.shape != ((ho, wo, C) if channel_maps is not None else (ho, wo)):
            raise ValueError(f"den must be (ho, wo{', channels' if channel_maps is not None else ''}) here, "
                             f"not {den.shape}")
        M64 = output_map(state[S.S_TINV].reshape(3, 3), scale)
        gain = np.float32(state[S.S_GAIN])
        offset = np.float32(state[S.S_OFFSET] * max_value)
        n = kernel_window(scale, sigma)
        c2 = np.float32(-1.0 / (2.0 * sigma * sigma))
        f32 = np.float32
        X = np.arange(wo, dtype=f32)
        S_ = output_to_reference(scale)
        a, b = f32(S_[0, 0]), f32(S_[0, 2])
        if channel_maps is None:
            gathers = [(M64.astype(f32), _KernelSource(frame, n), None)]
        else:
            rows = channel_map_rows(channel_maps, C)
            gathers = [(compose_map(rows[c, :9].reshape(3, 3), M64).astype(f32), _KernelSource(frame, n, c),
                        rows[c, 9:].astype(f32) if rows[c, 11] != 0.0 else None) for c in range(C)]
        if weights is not None:
            wx = _bilinear_axis_f32(X, a, b, weight_level, weights.shape[1])
            wplanes = weights[None]
        if shape is not None:
            sx = _bilinear_axis_f32(X, a, b, 0, shape.shape[2])

        def strip(y_start, y_end):
            Y = np.arange(y_start, y_end, dtype=f32)[:, None]
            Xd, Yd = (X, Y) if field is None else field_output_f32(field, f32(1.0 / field_cell), a, b, X, Y)
            if shape is None:
                q = (c2, f32(0.0), c2)
            else:
                q = tuple(_bilinear_planes(shape, _bilinear_axis_f32(Y[:, 0], a, b, 0, shape.shape[1]), sx))
            sums = [_kernel_sums(src, Mg, Xd, Yd, q, (y_end - y_start, wo), r) for Mg, src, r in gathers]
            if channel_maps is None:
                acc, ksum = sums[0]
            else:  # each channel its own sums: ksum (rows, wo, C)
                acc = np.stack([a_c[..., 0] for a_c, _ in sums], axis=2)
                ksum = np.stack([ks for _, ks in sums], axis=2)
                del sums
            acc *= gain  # g + o, then times w, in kernelreg.cu's order
            if offset != 0.0:
                acc += ksum * offset if ksum.ndim == 3 else _channels(ksum * offset, C)
            if weights is not None:
                wt = _bilinear_planes(wplanes, _bilinear_axis_f32(Y[:, 0], a, b, weight_level, weights.shape[0]),
                                      wx)[0]
                acc *= _channels(wt, C)
                ksum *= wt[..., None] if ksum.ndim == 3 else wt
            num[y_start:y_end] += acc
            den[y_start:y_end] += ksum

        _run_strips(strip, ho, max(1, _KERNEL_STRIP_PIXELS // max(wo, 1)))

    # --- kernel 5: normalisation ---------------------------------------------------
    def normalize_u16(self, num, den, value_scale: float) -> np.ndarray:
        """uint16 image rint(num / den * value_scale) clipped to 0..65535; 0 where den == 0.

        Float32 arithmetic, processed in row strips so that no full-size
        temporary is made (the accumulator is the largest thing in memory).
        """
        ho, wo, c = num.shape
        out = np.empty((ho, wo, c), dtype=np.uint16)
        scale = np.float32(value_scale)
        rows = max(1, _STRIP_PIXELS // max(wo, 1))
        for y0 in range(0, ho, rows):
            y1 = min(ho, y0 + rows)
            d = den[y0:y1, :, None]
            with np.errstate(divide="ignore", invalid="ignore"):
                v = num[y0:y1] / d
            v *= scale
            v[np.broadcast_to(~(d > 0), v.shape)] = 0
            np.rint(v, out=v)
            np.clip(v, 0, 65535, out=v)
            out[y0:y1] = v
        return out[..., 0] if c == 1 else out


KERNEL_KMIN = np.float32(0.011108996538242306)  # exp(-4.5), the Gaussian 3 sigma out: kernelreg.cu's SR_KERNEL_KMIN
KERNEL_RAMP = 16.0  # the weight's slope to 0 at the cut-off, in units of the Gaussian's (SR_KERNEL_RAMP)


def kernel_form(qa, qb, qc, i00, i01, i10, i11):
    """(pa, pb, pc) float32: the Gaussian exponent qa dX^2 + qb dX dY + qc dY^2 in
    output offsets d = J^-1 (du, dv) rewritten in frame offsets,
    pa du^2 + pb du dv + pc dv^2, i.e. J^-T Q J^-1; in float32, one rounding
    per operation, in the order of kernelreg.cu's ``sr_kernel_form``
    (scalars or arrays alike)."""
    f32 = np.float32
    qa, qb, qc, i00, i01, i10, i11 = (np.asarray(t, f32) for t in (qa, qb, qc, i00, i01, i10, i11))
    pa = ((qa * i00) * i00 + (qb * i00) * i10) + (qc * i10) * i10
    pb = (((f32(2.0) * qa) * i00) * i01 + qb * (i00 * i11 + i01 * i10)) + ((f32(2.0) * qc) * i10) * i11
    pc = ((qa * i01) * i01 + (qb * i01) * i11) + (qc * i11) * i11
    return pa, pb, pc


def _channels(plane, C: int):
    """A (..., C) float32 array holding ``plane`` in every channel (no broadcasting
    in the arithmetic that follows: a broadcast inner axis of 3 is slow)."""
    import cv2

    if C == 1:
        return plane[..., None]
    if C == 3:
        return cv2.cvtColor(plane, cv2.COLOR_GRAY2BGR)
    return cv2.merge([plane] * C)


CHMAP_LEN = 12  # a channel map row: row-major 3x3, then the radial term (cx, cy, k3); common.cuh's SR_CHMAP_LEN


def channel_map_rows(channel_maps, C: int) -> np.ndarray:
    """Per-channel maps as the kernels take them: (C, :data:`CHMAP_LEN`)
    float64 rows, a row-major 3x3 (green positions -> the channel's) then the
    cubic radial term (cx, cy, k3) of :func:`radial_f32`; (C, 9) rows (3x3
    only) get k3 = 0.  ValueError for any other shape or a non-finite entry."""
    maps = np.asarray(channel_maps, np.float64)
    if maps.ndim != 2 or maps.shape[0] != C or maps.shape[1] not in (9, CHMAP_LEN):
        raise ValueError(f"channel_maps must be ({C}, 9) or ({C}, {CHMAP_LEN}) float64: a row-major 3x3 per "
                         "channel, then optionally its radial term (cx, cy, k3)")
    if not np.isfinite(maps).all():
        raise ValueError("channel_maps must be finite")
    if maps.shape[1] == 9:
        maps = np.concatenate([maps, np.zeros((C, CHMAP_LEN - 9))], axis=1)
    return np.ascontiguousarray(maps)


def radial_f32(u, v, r):
    """(u, v) moved by a channel's cubic radial term r = (cx, cy, k3): with
    d = (u - cx, v - cy), (u, v) + (k3 |d|^2) d, float32, one rounding per
    operation, in common.cuh's ``sr_radial_f`` order."""
    f32 = np.float32
    cx, cy, k3 = f32(r[0]), f32(r[1]), f32(r[2])
    dx = u - cx
    dy = v - cy
    f = k3 * (dx * dx + dy * dy)
    return u + f * dx, v + f * dy


class _RadialPositions:
    """Positions (times TAB_SIZE, as :class:`_Positions` gives them) moved by
    a channel's radial term (:func:`radial_f32`, in pixels: dividing and
    multiplying by TAB_SIZE, a power of two, is exact)."""

    def __init__(self, pos, r):
        self.pos, self.r = pos, r

    def at(self, Y):
        uq, vq = self.pos.at(Y)
        inv = np.float32(1.0 / TAB_SIZE)
        u, v = radial_f32(uq * inv, vq * inv, self.r)
        return u * np.float32(TAB_SIZE), v * np.float32(TAB_SIZE)


def band_maps(frame, channel_maps) -> np.ndarray:
    """``channel_maps`` as (C, :data:`CHMAP_LEN`) float64 (:func:`channel_map_rows`)
    for :meth:`NumpyBackend.tca_band` of a colour ``frame`` (either backend's),
    or ValueError."""
    if frame.ndim != 3:
        raise ValueError("the chroma band correction needs colour frames")
    return channel_map_rows(channel_maps, frame.shape[2])


def band_moves(m) -> bool:
    """Whether a channel's map row (:func:`channel_map_rows`) moves it: not
    the identity in its affine part, or a radial term (what
    :meth:`NumpyBackend.tca_band` and its kernel test)."""
    return not (m[0] == 1.0 and m[1] == 0.0 and m[2] == 0.0 and m[3] == 0.0 and m[4] == 1.0 and m[5] == 0.0
                and m[11] == 0.0)


class _KernelSource:
    """A frame as :func:`_kernel_sums` reads it: its Cs channels (or channel
    ``channel`` alone) as separate float32 planes, each padded by 2 n pixels
    of zeros on every side (n: the window), so that every tap of a window whose
    corner was clamped (:meth:`corner_map`) lies inside it: each tap is then,
    per plane, one nearest-sample ``cv2.remap`` of a shifted view through the
    same map (planes: a third less time than one interleaved remap and a
    broadcast of the weight to the channels)."""

    def __init__(self, frame, n: int, channel: int | None = None):
        self.fh, self.fw = frame.shape[:2]
        self.n = n
        self.pad = p = 2 * n
        self.lo = -((n - 1) // 2)  # the window's first tap offset
        self.shift = 0.5 if n % 2 else 0.0  # s: odd windows centre on the nearest sample
        pix = frame.reshape(self.fh, self.fw, -1)
        if channel is not None:
            pix = pix[..., channel : channel + 1]
        if max(self.fh, self.fw) + 2 * p >= 32767:
            raise ValueError("the kernel merge reads frames below 32767 px a side")
        self.channels = pix.shape[2]
        self.planes = []
        for c in range(self.channels):
            plane = np.zeros((self.fh + 2 * p, self.fw + 2 * p), np.float32)
            plane[p : p + self.fh, p : p + self.fw] = pix[..., c]
            self.planes.append(plane)

    def view(self, ky: int, kx: int, c: int):
        """Plane ``c`` of the padded frame seen from tap (kx, ky) of the window (a view)."""
        return self.planes[c][ky - self.lo :, kx - self.lo :]

    def corner_map(self, iu, iv):
        """int16 (..., 2) map of the window's first tap, in the padded frame, for
        window bases (iu, iv), clamped so that all n x n taps lie inside it; a
        base clamped this far has every tap outside the frame."""
        n, o = self.n, self.pad + self.lo
        out = np.empty(iu.shape + (2,), np.int16)
        for c, (i, size) in enumerate(((iu, self.fw), (iv, self.fh))):
            if not (i.min() >= -n and i.max() <= size - 1 + n):  # clamping needed (far outside the frame)
                i = np.minimum(np.maximum(i, -n), size - 1 + n)
            np.add(i, o, out=out[..., c], casting="unsafe")
        return out


def _kernel_sums(src: _KernelSource, M, Xd, Yd, q, shp, radial=None):
    """(A, Ks) float32 of :meth:`NumpyBackend.kernel_accumulate` at one set of
    positions (a strip of ``shp`` output pixels): ``src`` (a
    :class:`_KernelSource`) read at M (Xd, Yd) (float32 map and positions, the
    position, Jacobian and its inverse in float32; the position then moved by
    ``radial``, :func:`radial_f32`, when given) with the kernel ``q`` =
    (qa, qb, qc); A (..., Cs) = sum k value, Ks = sum k, in the visiting order."""
    import cv2

    f32 = np.float32
    fw, fh, n, lo, s = src.fw, src.fh, src.n, src.lo, src.shift
    Cs = src.channels
    affine = M[2, 0] == 0.0 and M[2, 1] == 0.0 and M[2, 2] == 1.0
    if affine:  # w = 1 exactly, J = M's 2x2 block everywhere (what the kernel's float32 arithmetic gives too)
        u = M[0, 0] * Xd + (M[0, 1] * Yd + M[0, 2])
        v = M[1, 0] * Xd + (M[1, 1] * Yd + M[1, 2])
        j00, j01, j10, j11 = M[0, 0], M[0, 1], M[1, 0], M[1, 1]
    else:
        wq = M[2, 0] * Xd + (M[2, 1] * Yd + M[2, 2])
        u = (M[0, 0] * Xd + (M[0, 1] * Yd + M[0, 2])) / wq
        v = (M[1, 0] * Xd + (M[1, 1] * Yd + M[1, 2])) / wq
        j00 = (M[0, 0] - u * M[2, 0]) / wq
        j01 = (M[0, 1] - u * M[2, 1]) / wq
        j10 = (M[1, 0] - v * M[2, 0]) / wq
        j11 = (M[1, 1] - v * M[2, 1]) / wq
    u, v = np.broadcast_to(u, shp), np.broadcast_to(v, shp)
    if radial is not None:
        u, v = radial_f32(u, v, radial)
    det = j00 * j11 - j01 * j10
    pa, pb, pc = (np.broadcast_to(t, shp) for t in kernel_form(*q, j11 / det, -j01 / det, -j10 / det, j00 / det))
    if s:
        u = u + f32(s)
        v = v + f32(s)
    iu, iv = np.floor(u), np.floor(v)
    fu = np.subtract(u, iu, dtype=f32)  # (u + s) - floor(u + s)
    fv = np.subtract(v, iv, dtype=f32)
    del u, v
    corner = src.corner_map(iu, iv)
    ksum = np.zeros(shp, f32)
    e = np.empty(shp, f32)
    acc = [np.zeros(shp, f32) for _ in range(Cs)]
    vals = np.empty(shp, f32)
    kmin = KERNEL_KMIN
    ramp = np.empty(shp, f32)

    def outside(i0, size, lo_, n_):  # -inf where base i0 + offset leaves [0, size): exp(-inf) = 0, k = 0
        if i0.min() + lo_ >= 0 and i0.max() + lo_ + n_ - 1 < size:
            return lambda arr, off: arr  # the whole strip's window inside the frame (the usual case)

        def mark(arr, off):
            arr[(i0 < -off) | (i0 >= size - off)] = f32(-np.inf)
            return arr
        return mark

    col_out, row_out = outside(iu, fw, lo, n), outside(iv, fh, lo, n)
    cols = []
    for kx in range(lo, lo + n):  # (pa du) du (-inf where the column is outside the frame) and pb du
        du = f32(kx + s) - fu
        a_ = pa * du
        a_ *= du
        cols.append((kx, col_out(a_, kx), pb * du))
    for ky in range(lo, lo + n):
        dv = f32(ky + s) - fv
        c_ = pc * dv
        c_ *= dv
        c_ = row_out(c_, ky)
        for kx, a_, b_ in cols:
            cv2.add(a_, c_, dst=e)  # e = ((pa du) du + (pc dv) dv) + (pb du) dv
            cv2.accumulateProduct(b_, dv, e)
            cv2.exp(e, dst=e)  # k = max(min(g, R (g - kmin)), 0), g = exp(e)
            cv2.min(e, cv2.addWeighted(e, KERNEL_RAMP, e, 0.0, -KERNEL_RAMP * float(kmin), dst=ramp), dst=e)
            cv2.threshold(e, 0.0, 0.0, cv2.THRESH_TOZERO, dst=e)
            ksum += e
            for c in range(Cs):
                cv2.remap(src.view(ky, kx, c), corner, None, cv2.INTER_NEAREST, dst=vals)
                cv2.accumulateProduct(vals, e, acc[c])
    return (acc[0][..., None] if Cs == 1 else cv2.merge(acc)), ksum


def kernel_window(scale: float, sigma: float) -> int:
    """n of :meth:`NumpyBackend.kernel_accumulate`: samples within 3 ``sigma``
    output px of an output pixel lie within r = 3 sigma / scale frame px of
    its frame position (10 % spare for zoom and rotation); a window of
    n = ceil(2 r) samples per axis holds every sample nearer than n / 2."""
    return max(1, int(math.ceil(2.0 * 3.0 * sigma / scale * 1.1)))


def cross_power(ref_spectrum: np.ndarray, f: np.ndarray) -> np.ndarray:
    """Normalised cross-power spectrum (complex64): c / |c| for c = ref * conj(f);
    zero where |c| <= 1e-20 and at index 0 (the mean)."""
    cross = ref_spectrum * np.conj(f)
    mag = np.abs(cross)
    ok = mag > np.float32(1e-20)
    out = np.where(ok, cross / np.where(ok, mag, np.float32(1)), np.complex64(0)).astype(np.complex64)
    out.flat[0] = 0
    return out


def output_map(Ti: np.ndarray, scale: float) -> np.ndarray:
    """M = Ti @ S (S: output -> reference at ``scale``), elementwise in the fixed
    order the CUDA kernel uses, so both round positions identically."""
    S = output_to_reference(scale)
    a, b = S[0, 0], S[0, 2]
    M = np.empty((3, 3))
    for r in range(3):
        M[r, 0] = Ti[r, 0] * a
        M[r, 1] = Ti[r, 1] * a
        M[r, 2] = (Ti[r, 0] * b + Ti[r, 1] * b) + Ti[r, 2]
    return M


def _bilinear_planes(planes, ys, xs) -> np.ndarray:
    """float32 (P, rows, cols): bilinear samples of ``planes`` (P, H, W) float32
    at the rows ``ys`` and columns ``xs`` of :func:`_bilinear_axis_f32` (rows
    mixed first, in float32, as common.cuh's ``sr_weight_at_f``)."""
    y0, y1, fy = ys
    x0, x1, fx = xs
    fy = fy.astype(np.float32)[:, None]
    fx = fx.astype(np.float32)
    rows = planes[:, y0] * (np.float32(1.0) - fy)
    rows += planes[:, y1] * fy
    out = np.take(rows, x0, axis=2)
    out *= np.float32(1.0) - fx
    out += np.take(rows, x1, axis=2) * fx
    return out


def _grid_axis_f32(p, inv, n: int):
    """(first tap, second tap, fraction) of a bilinear read at float32
    positions ``p`` on an axis of n nodes, q = (p + 0.5) inv - 0.5 clamped to
    [0, n - 1], one rounding per operation (common.cuh's ``sr_grid_axis_f``):
    the robust weights' level grid and the local field's nodes alike."""
    f32 = np.float32
    q = (p + f32(0.5)) * f32(inv) - f32(0.5)
    q = np.minimum(np.maximum(q, f32(0.0)), f32(n - 1))
    i0 = np.floor(q)
    f = (q - i0).astype(f32)
    i0 = i0.astype(np.int64)
    return i0, np.minimum(i0 + 1, n - 1), f


def _bilinear_axis_f32(X: np.ndarray, a, b, level: int, n: int):
    """Taps and fraction of output coordinates X (float32) on a level-``level``
    grid of n pixels: :func:`_grid_axis_f32` at a X + b, inv = 1 / 2^level."""
    return _grid_axis_f32(X * a + b, 1.0 / float(2**level), n)


def compose_map(C: np.ndarray, M: np.ndarray) -> np.ndarray:
    """C @ M for 3x3 matrices, elementwise in the CUDA kernel's fixed order
    (``sr_compose_map``): ((C[r,0] M[0,k] + C[r,1] M[1,k]) + C[r,2] M[2,k])."""
    out = np.empty((3, 3))
    for r in range(3):
        for k in range(3):
            out[r, k] = (C[r, 0] * M[0, k] + C[r, 1] * M[1, k]) + C[r, 2] * M[2, k]
    return out


def local_extrema(xp, img, r: int):
    """:meth:`NumpyBackend.local_extrema` for any array module ``xp``: a running
    min and max over rows, then over columns, edges replicated."""
    p = xp.pad(img, r, mode="edge")
    h, w = img.shape
    lo = p[r : r + h, 0:w].copy()
    hi = lo.copy()
    for dx in range(1, 2 * r + 1):
        xp.minimum(lo, p[r : r + h, dx : dx + w], out=lo)
        xp.maximum(hi, p[r : r + h, dx : dx + w], out=hi)
    lo_p, hi_p = xp.pad(lo, ((r, r), (0, 0)), mode="edge"), xp.pad(hi, ((r, r), (0, 0)), mode="edge")
    lo, hi = lo_p[0:h].copy(), hi_p[0:h].copy()
    for dy in range(1, 2 * r + 1):
        xp.minimum(lo, lo_p[dy : dy + h], out=lo)
        xp.maximum(hi, hi_p[dy : dy + h], out=hi)
    return lo, hi


def tile_phase_shifts(xp, ref_img, img, x0, y0, size: int, run=None, span_pixels: int = TILE_SPAN_PIXELS):
    """:meth:`NumpyBackend.tile_phase_shifts` written once for NumPy and CuPy
    (``xp``).  The tiles are taken in spans of rows of about ``span_pixels``
    tile pixels, each span's spectra at once; ``run(work, n, per)`` (:func:`_run_strips`) runs ``work(r0, r1)``
    over the spans (on the NumPy backend's worker threads), else they run in
    turn.  The tiles are real, so their spectra are the half spectra of
    ``rfft2`` (the cross-power spectrum keeps the Hermitian symmetry, and
    ``irfft2`` gives the full transform's real surface)."""
    gh, gw = int(y0.shape[0]), int(x0.shape[0])
    t = int(size)
    k = xp.arange(t)
    win1 = (0.5 - 0.5 * xp.cos(2.0 * math.pi * (k + 0.5) / t)).astype(xp.float32)
    win = win1[:, None] * win1[None, :]
    cols = xp.asarray(x0)[:, None] + k[None, :]  # (gw, t)
    out = xp.empty((gh, gw, 3), dtype=xp.float32)

    def span(r0, r1):
        rows = xp.asarray(y0[r0:r1])[:, None] + k[None, :]  # (g, t)
        idx = (rows[:, None, :, None], cols[None, :, None, :])
        spectra = []
        for im in (ref_img, img):
            tiles = im[idx].astype(xp.float32)  # (g, gw, t, t)
            tiles = tiles - tiles.mean(axis=(2, 3), keepdims=True)
            spectra.append(xp.fft.rfft2(tiles * win, axes=(2, 3)).astype(xp.complex64))
        cross = spectra[0] * xp.conj(spectra[1])
        del spectra
        mag = xp.abs(cross)
        ok = mag > xp.float32(1e-20)
        cross = xp.where(ok, cross / xp.where(ok, mag, xp.float32(1.0)), xp.complex64(0))
        cross[..., 0, 0] = 0
        surf = xp.fft.irfft2(cross, s=(t, t), axes=(2, 3)).astype(xp.float32)
        flat = surf.reshape(surf.shape[0], gw, t * t)
        best = xp.argmax(flat, axis=2)
        py, px = best // t, best % t
        peak = xp.take_along_axis(flat, best[..., None], axis=2)[..., 0]

        def at(dy, dx):
            j = ((py + dy) % t) * t + (px + dx) % t
            return xp.take_along_axis(flat, j[..., None], axis=2)[..., 0].astype(xp.float64)

        def vertex(m, z, p):
            den = m - 2.0 * z + p
            off = xp.where(den < 0.0, 0.5 * (m - p) / xp.where(den < 0.0, den, -1.0), 0.0)
            return xp.clip(off, -0.5, 0.5)

        z = peak.astype(xp.float64)
        sx = px + vertex(at(0, -1), z, at(0, 1))
        sy = py + vertex(at(-1, 0), z, at(1, 0))
        sx = xp.where(sx >= t / 2.0, sx - t, sx)
        sy = xp.where(sy >= t / 2.0, sy - t, sy)
        out[r0:r1, :, 0] = sx
        out[r0:r1, :, 1] = sy
        out[r0:r1, :, 2] = peak

    per = max(1, int(span_pixels) // max(1, gw * t * t))
    if run is None:
        for r0 in range(0, gh, per):
            span(r0, min(gh, r0 + per))
    else:
        run(span, gh, per)
    return out


def _field_axis(p, finv: float, n: int):
    """Node indices and fraction of reference positions p on a field axis of
    n nodes (float64, :func:`field_at`): q = (p + 0.5) finv - 0.5, clamped to [0, n-1]."""
    q = (p + 0.5) * finv - 0.5
    q = np.minimum(np.maximum(q, 0.0), n - 1.0)
    i0 = np.floor(q)
    f = q - i0
    i0 = i0.astype(np.int64)
    return i0, np.minimum(i0 + 1, n - 1), f


def field_at(field: np.ndarray, finv: float, px, py):
    """(dx, dy), float64: the displacement field (gh, gw, 2) bilinear at
    reference positions (px, py) (broadcast together), node (i, j) at
    ((j + 0.5) / finv - 0.5, (i + 0.5) / finv - 0.5), clamped beyond the outer
    nodes; the two rows mixed first, then the columns.  The field's definition
    in float64 (synthetic truth, tests); the kernels and their twins read it in
    float32 (:func:`field_at_f32`)."""
    gh, gw = field.shape[:2]
    px, py = np.broadcast_arrays(np.asarray(px, np.float64), np.asarray(py, np.float64))
    x0, x1, fx = _field_axis(px, finv, gw)
    y0, y1, fy = _field_axis(py, finv, gh)
    gy, gx = 1.0 - fy, 1.0 - fx
    out = []
    for k in (0, 1):
        f = field[..., k]
        c0 = gy * f[y0, x0].astype(np.float64) + fy * f[y1, x0].astype(np.float64)
        c1 = gy * f[y0, x1].astype(np.float64) + fy * f[y1, x1].astype(np.float64)
        out.append(gx * c0 + fx * c1)
    return out[0], out[1]


def field_at_f32(field: np.ndarray, finv, px, py):
    """(dx, dy), float32: the displacement field (gh, gw, 2) bilinear at float32
    reference positions (px, py) (broadcast together), as :func:`field_at` but
    in float32, one rounding per operation, the two rows mixed first
    (common.cuh's ``sr_field_at_f``, what the kernels read)."""
    f32 = np.float32
    px, py = np.asarray(px, f32), np.asarray(py, f32)
    gh, gw = field.shape[:2]
    if 1 <= px.ndim <= 2 and px.size == px.shape[-1] and py.ndim == 2 and py.shape[1] == 1:
        # a grid (a row of x, a column of y): each output row's mix of the two node rows at every node
        # column, then taken at each x (the same operations on the same values, without a 2-D gather)
        x0, x1, fx = _grid_axis_f32(px.reshape(-1), finv, gw)
        y0, y1, fy = _grid_axis_f32(py, finv, gh)
        gy, gx = f32(1.0) - fy, f32(1.0) - fx
        d = []
        for k in (0, 1):
            fk = field[..., k]
            rows = gy * fk[y0[:, 0]] + fy * fk[y1[:, 0]]  # (len(py), gw)
            d.append(gx * np.take(rows, x0, axis=1) + fx * np.take(rows, x1, axis=1))
        return d[0], d[1]
    px, py = np.broadcast_arrays(px, py)
    x0, x1, fx = _grid_axis_f32(px, finv, gw)
    y0, y1, fy = _grid_axis_f32(py, finv, gh)
    gy, gx = f32(1.0) - fy, f32(1.0) - fx
    d = []
    for k in (0, 1):
        fk = field[..., k]
        c0 = gy * fk[y0, x0] + fy * fk[y1, x0]
        c1 = gy * fk[y0, x1] + fy * fk[y1, x1]
        d.append(gx * c0 + fx * c1)
    return d[0], d[1]


def field_output_f32(field: np.ndarray, finv, a, b, X, Y):
    """Output coordinates (X, Y) (float32) moved by the field sampled at their
    reference position p = (a X + b, a Y + b): (X + dx / a, Y + dy / a), so
    that the output map reads the frame at Tinv (p + D(p)); in float32, one
    rounding per operation (common.cuh's ``sr_field_output_f``; D from
    :func:`field_at_f32`)."""
    f32 = np.float32
    X, Y = np.asarray(X, f32), np.asarray(Y, f32)
    dx, dy = field_at_f32(field, finv, X * a + b, Y * a + b)  # a row of X and a column of Y: a grid's fast path
    return X + dx / a, Y + dy / a


def _level_residual(coef, ref_img, state, level: int, margin: float, field=None, field_cell: float = 0.0,
                    square: bool = False):
    """(d, coverage) float32 of :meth:`NumpyBackend.warp_residual` (``square``:
    d^2 of :meth:`NumpyBackend.robust_residual`).  In float32 as robust.cu's
    ``sr_level_residual``: a pixel's level-0 position p (exact) moves by the
    field D(p) and the warp's displacement at p + D about the image centre
    (:func:`warp_disp_f32`); only displacements are rounded."""
    f32 = np.float32
    h, w = ref_img.shape
    f = float(2**level)
    ch, cw = coef.shape
    A = warp_coeffs_f32(state[S.S_TINV].reshape(3, 3), 0.5 * (f * w) - 0.5, 0.5 * (f * h) - 0.5)
    ox, oy = f32(0.5 * (f * w) - 0.5), f32(0.5 * (f * h) - 0.5)
    lo, hi_u, hi_v = f32(margin), f32(cw - 1.0 - margin), f32(ch - 1.0 - margin)
    gain, offset = f32(state[S.S_GAIN]), f32(state[S.S_OFFSET])
    finv = f32(1.0 / field_cell) if field is not None else None
    d_out = np.zeros((h, w), np.float32)
    cov = np.zeros((h, w), np.float32)
    xs = f32(f) * (np.arange(w, dtype=f32) + f32(0.5)) - f32(0.5)
    qx = xs - ox

    def strip(r0, r1):  # bounded temporaries on large frames; strips on the worker threads
        ys = (f32(f) * (np.arange(r0, r1, dtype=f32) + f32(0.5)) - f32(0.5))[:, None]
        qy = ys - oy
        if field is not None:
            Dx, Dy = field_at_f32(field, finv, xs[None, :], ys)
            dx, dy = warp_disp_f32(A, qx + Dx, qy + Dy)
            dx, dy = Dx + dx, Dy + dy
        else:
            dx, dy = warp_disp_f32(A, qx[None, :], qy)
        iu, tu, u = level_pos_f32(xs[None, :], dx, level)
        iv, tv, v = level_pos_f32(ys, dy, level)
        ok = (u >= lo) & (u <= hi_u) & (v >= lo) & (v <= hi_v)
        s = _sample_bspline_f32(coef, iu[ok], iv[ok], tu[ok], tv[ok])
        d = gain * s + offset - ref_img[r0:r1][ok]
        d_out[r0:r1][ok] = d * d if square else d
        cov[r0:r1][ok] = 1.0

    _run_strips(strip, h, max(1, _RESAMPLE_STRIP_PIXELS // max(w, 1)))
    return d_out, cov


class _Positions:
    """Frame positions of output pixels under the map M (float32), in
    1/``TAB_SIZE`` px: (u, v) * TAB_SIZE with
    u = (M00 X + (M01 Y + M02)) / (M20 X + (M21 Y + M22)) and v alike, in
    float32 as resample.cu computes them.  Scaling M's first two rows by
    TAB_SIZE (a power of two) gives bit for bit the positions times TAB_SIZE;
    the per-column products are made once per frame, and where M is affine
    (last row 0, 0, 1: the divisor is exactly 1) the division is left out."""

    def __init__(self, M, X):
        Mq = np.array(M, dtype=np.float32)
        Mq[:2] *= TAB_SIZE
        self.M = Mq
        self.affine = M[2, 0] == 0.0 and M[2, 1] == 0.0 and M[2, 2] == 1.0
        self.cu = Mq[0, 0] * X
        self.cv = Mq[1, 0] * X
        self.cw = None if self.affine else Mq[2, 0] * X

    def at(self, Y):
        """(uq, vq), float32 (len(Y), len(X)), for the output rows ``Y`` (1-D, float32)."""
        M = self.M
        uq = self.cu + (M[0, 1] * Y + M[0, 2])[:, None]
        vq = self.cv + (M[1, 1] * Y + M[1, 2])[:, None]
        if not self.affine:
            wq = self.cw + (M[2, 1] * Y + M[2, 2])[:, None]
            uq /= wq
            vq /= wq
        return uq, vq


class _FieldPositions:
    """:class:`_Positions` with a local displacement field: each output pixel
    (X, Y) first moves by the field (:func:`field_output_f32`), then M (float32)
    maps it; the same positions, times TAB_SIZE, as resample.cu's float32
    arithmetic gives there."""

    def __init__(self, M, X, field, field_cell: float, a, b):
        self.Mq = np.array(M, dtype=np.float32)
        self.Mq[:2] *= TAB_SIZE
        self.X, self.field, self.finv, self.a, self.b = X, field, np.float32(1.0 / field_cell), a, b

    def at(self, Y):
        """(uq, vq), float32 (len(Y), len(X)), for the output rows ``Y`` (1-D, float32)."""
        Xd, Yd = field_output_f32(self.field, self.finv, self.a, self.b, self.X, Y[:, None])
        M = self.Mq
        wq = M[2, 0] * Xd + (M[2, 1] * Yd + M[2, 2])
        uq = (M[0, 0] * Xd + (M[0, 1] * Yd + M[0, 2])) / wq
        vq = (M[1, 0] * Xd + (M[1, 1] * Yd + M[1, 2])) / wq
        return uq, vq


def _fixed_point_maps_q(uq, vq, fw, fh):
    """OpenCV fixed-point maps from positions in 1/``TAB_SIZE`` px (``_Positions``;
    overwritten): (int16 x, y) >> TAB_BITS and the fraction index, positions
    rounded to the nearest 1/TAB_SIZE after clipping to 64 px outside the frame."""
    np.clip(uq, -64.0 * TAB_SIZE, (fw + 64.0) * TAB_SIZE, out=uq)
    np.clip(vq, -64.0 * TAB_SIZE, (fh + 64.0) * TAB_SIZE, out=vq)
    Xq = np.rint(uq, out=uq).astype(np.int32)
    Yq = np.rint(vq, out=vq).astype(np.int32)
    map1 = np.empty(uq.shape + (2,), dtype=np.int16)
    map1[..., 0] = Xq >> TAB_BITS
    map1[..., 1] = Yq >> TAB_BITS
    Yq &= TAB_SIZE - 1
    Yq *= TAB_SIZE
    Xq &= TAB_SIZE - 1
    Yq += Xq
    return map1, Yq.astype(np.uint16)


def _run_strips(work, n: int, per: int) -> None:
    """``work(i0, i1)`` over the spans [i0, i1) of ``per`` items covering
    range(n), on as many threads as OpenCV uses (``cv2.setNumThreads``, which
    ``superres batch`` sizes to a worker's share of the cores).  The spans
    must write disjoint parts of their outputs: each item's result is then
    the same whatever thread computed it.  Strips of a resample are small
    enough that their ``cv2.remap`` runs in one thread, so the NumPy work
    around it runs in parallel too.  Inside a worker the spans run in turn."""
    import cv2

    spans = [(i0, min(n, i0 + per)) for i0 in range(0, n, per)]
    threads = min(len(spans), max(1, cv2.getNumThreads()))
    if threads <= 1 or threading.current_thread().name.startswith(_POOL_PREFIX):
        for i0, i1 in spans:
            work(i0, i1)
        return
    futures = [_worker_pool(threads).submit(work, i0, i1) for i0, i1 in spans]
    try:
        for f in futures:
            f.result()
    finally:  # on an error or an interrupt, no span keeps writing after we return
        for f in futures:
            f.cancel()
        wait(futures)


_POOL_PREFIX = "superres-numpy"
_POOL = None
_POOL_THREADS = 0
_POOL_LOCK = threading.Lock()


def _worker_pool(threads: int) -> ThreadPoolExecutor:
    global _POOL, _POOL_THREADS
    with _POOL_LOCK:
        if _POOL is None or _POOL_THREADS != threads:
            if _POOL is not None:
                _POOL.shutdown(wait=False)
            _POOL = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=_POOL_PREFIX)
            _POOL_THREADS = threads
        return _POOL


# ----------------------------------------------------------------------------
# Small host-side math shared by the twin and by tests (float64 throughout).
# ----------------------------------------------------------------------------


def _cholesky_solve(A: np.ndarray, b: np.ndarray):
    """Solve A x = b for symmetric positive definite A; None if not SPD."""
    n = A.shape[0]
    L = np.zeros_like(A)
    for j in range(n):
        d = A[j, j] - np.dot(L[j, :j], L[j, :j])
        if not d > 0.0:
            return None
        L[j, j] = math.sqrt(d)
        for i in range(j + 1, n):
            L[i, j] = (A[i, j] - np.dot(L[i, :j], L[j, :j])) / L[j, j]
    y = np.zeros(n)
    for i in range(n):
        y[i] = (b[i] - np.dot(L[i, :i], y[:i])) / L[i, i]
    x = np.zeros(n)
    for i in range(n - 1, -1, -1):
        x[i] = (y[i] - np.dot(L[i + 1 :, i], x[i + 1 :])) / L[i, i]
    return x


def align_update_math(sums: np.ndarray, state: np.ndarray, model_id: int, norm, damping: float) -> None:
    n = MODEL_NPARAMS[MOTION_MODELS[model_id]]
    cnt = sums[S.SUM_COUNT]
    total = sums[S.SUM_N]
    state[S.S_NVALID] = cnt
    state[S.S_OVERLAP] = cnt / total if total > 0 else 0.0
    state[S.S_ITERS] += 1
    state[S.S_STATUS] = S.STATUS_OK
    if cnt < max(8 * n, 16):
        state[S.S_STATUS] = S.STATUS_SINGULAR
        state[S.S_STEP] = 0.0
        return
    ms = sums[S.SUM_S] / cnt
    mr = sums[S.SUM_R] / cnt
    vs = max(sums[S.SUM_SS] / cnt - ms * ms, 0.0)
    vr = max(sums[S.SUM_RR] / cnt - mr * mr, 0.0)
    cov = sums[S.SUM_SR] / cnt - ms * mr
    state[S.S_CORR] = cov / math.sqrt(vs * vr) if vs > 0 and vr > 0 else 0.0
    state[S.S_RMS] = math.sqrt(sums[S.SUM_EE] / cnt)
    H = np.zeros((n, n))
    for i in range(n):
        for j in range(i, n):
            H[i, j] = H[j, i] = sums[S.SUM_H + S.upper_index(i, j)]
    g = sums[S.SUM_G : S.SUM_G + n].copy()
    A = H + damping * np.diag(np.diag(H))
    dp = _cholesky_solve(A, g)
    if dp is None:
        state[S.S_STATUS] = S.STATUS_SINGULAR
        state[S.S_STEP] = 0.0
        return
    if not np.all(np.isfinite(dp)):
        state[S.S_STATUS] = S.STATUS_NONFINITE
        return
    cx, cy, sc = norm
    Wn = model_matrix(model_id, dp)
    N = np.array([[1 / sc, 0, -cx / sc], [0, 1 / sc, -cy / sc], [0, 0, 1.0]])
    Ninv = np.array([[sc, 0, cx], [0, sc, cy], [0, 0, 1.0]])
    T = state[S.S_T].reshape(3, 3)
    Tn = Ninv @ Wn @ N @ T
    Tn = Tn / Tn[2, 2]
    state[S.S_T] = Tn.ravel()
    state[S.S_TINV] = _inv3(Tn).ravel()
    # step: largest displacement of the normalised corners under W(dp), in px
    step = 0.0
    for xc, yc in ((-1.0, -1.0), (1.0, -1.0), (1.0, 1.0), (-1.0, 1.0)):
        w = Wn[2, 0] * xc + Wn[2, 1] * yc + Wn[2, 2]
        dx = (Wn[0, 0] * xc + Wn[0, 1] * yc + Wn[0, 2]) / w - xc
        dy = (Wn[1, 0] * xc + Wn[1, 1] * yc + Wn[1, 2]) / w - yc
        step = max(step, math.hypot(dx, dy) * sc)
    state[S.S_STEP] = step
    # the gain/offset from the robustly weighted moments: what the weights reject does not bend them
    sw = sums[S.SUM_W]
    if sw > 0:
        ms = sums[S.SUM_WS] / sw
        mr = sums[S.SUM_WR] / sw
        vs = sums[S.SUM_WSS] / sw - ms * ms
        vr = sums[S.SUM_WRR] / sw - mr * mr
    else:
        vs = vr = 0.0
    if vs > 0 and vr > 0:
        a = min(2.0, max(0.5, math.sqrt(vr / vs)))
        state[S.S_GAIN] = a
        state[S.S_OFFSET] = mr - a * ms
    sigma = state[S.S_SIGMA]
    state[S.S_SIGMA] = m_scale(sums[S.SUM_RHO : S.SUM_RHO + S.SCALE_STEPS], cnt, sigma) if sigma > 0 else state[S.S_RMS]


def align_weight(e: np.ndarray, sigma: float, redescend: bool) -> np.ndarray:
    """Robust weights (float32) of float32 residuals ``e`` at scale ``sigma``
    (none when it is 0): Huber's at ``HUBER_K`` scales, k sigma / |e| beyond,
    or Tukey's biweight (1 - r^2)^2, r = |e| * float32(1 / (TUKEY_C sigma)),
    0 from r = 1; in float32 as common.cuh's ``sr_align_weight_f``."""
    f32 = np.float32
    e = np.asarray(e, f32)
    if not sigma > 0.0:
        return np.ones_like(e)
    ae = np.abs(e)
    if redescend:
        r = ae * f32(1.0 / (S.TUKEY_C * sigma))
        t = f32(1.0) - r * r
        return np.where(r >= f32(1.0), f32(0.0), t * t)
    thr = f32(S.HUBER_K * sigma)
    w = np.ones_like(e)
    far = ae > thr
    w[far] = thr / ae[far]
    return w


def scale_rho(u: np.ndarray) -> np.ndarray:
    """The biweight rho of the scale estimate: 1 - (1 - u^2)^3, 1 beyond |u| = 1
    (t = 1 - u^2 cubed as (t t) t, as ``sr_scale_rho_f``; in u's precision:
    float32 in the reduction)."""
    t = u * u
    np.subtract(1.0, t, out=t)
    np.maximum(t, 0.0, out=t)  # |u| >= 1: t = 0, rho = 1
    r = t * t
    r *= t
    np.subtract(1.0, r, out=r)
    return r


def m_scale(rho: np.ndarray, cnt: float, sigma: float) -> float:
    """The M-estimate of scale from ``align_reduce``'s rho sums at the trial
    scales around ``sigma`` (``base.scale_trials``) over ``cnt`` points: where
    the mean rho crosses ``SCALE_DELTA``, interpolated in log scale between
    the bracketing trials; beyond them, the outermost trial (the next
    reduction brackets afresh)."""
    m = np.asarray(rho, np.float64) / cnt
    trials = S.scale_trials(sigma)
    if m[0] <= S.SCALE_DELTA:
        return float(trials[0])
    for k in range(1, S.SCALE_STEPS):
        if m[k] <= S.SCALE_DELTA:
            t = (m[k - 1] - S.SCALE_DELTA) / (m[k - 1] - m[k])
            return float(sigma * 2.0 ** (((k - 1 - S.SCALE_STEPS // 2) + t) * 0.5))
    return float(trials[-1])


def _inv3(T: np.ndarray) -> np.ndarray:
    """Inverse of a 3x3 matrix by the adjugate (the kernel uses the same formula)."""
    a, b, c = T[0]
    d, e, f = T[1]
    g, h, i = T[2]
    A = e * i - f * h
    Bc = -(d * i - f * g)
    C = d * h - e * g
    det = a * A + b * Bc + c * C
    adj = np.array(
        [
            [A, -(b * i - c * h), b * f - c * e],
            [Bc, a * i - c * g, -(a * f - c * d)],
            [C, -(a * h - b * g), a * e - b * d],
        ]
    )
    return adj / det


def align_finalize_math(state, width: int, height: int, min_corr: float, min_overlap: float) -> None:
    status = int(state[S.S_STATUS])
    T = state[S.S_T].reshape(3, 3)
    if status == S.STATUS_OK:
        if not np.all(np.isfinite(T)):
            status = S.STATUS_NONFINITE
        elif not is_plausible(T, width, height):
            status = S.STATUS_IMPLAUSIBLE
        elif state[S.S_OVERLAP] < min_overlap:
            status = S.STATUS_LOW_OVERLAP
        elif not state[S.S_CORR] >= min_corr:
            status = S.STATUS_LOW_CORR
    state[S.S_STATUS] = status
    state[S.S_ACCEPT] = 1.0 if status == S.STATUS_OK else 0.0
