"""Restoration after the merge: undo the blur the merge itself adds.

Every frame is seen through its pixel aperture (a box one input pixel wide)
and resampled with the Lanczos4 kernel; on the output grid the merged mean is
therefore blurred by both, relative to the output's own pixel aperture.
:func:`restoration_taps` designs a separable Wiener-type filter that undoes
that blur, regularised by the noise left after merging (:func:`restoration_strength`:
the more frames, the further it may go); :func:`sharpen` applies it to the
merged mean per channel, on the backend's device.

After the kernel-regression merge, :func:`deconvolve` goes further: it undoes
the optics too (a Gaussian of ``--optics-sigma`` frame px), with a strength
set by the merge's measured residual noise against the detail it holds
(:func:`detail_strength`), and it clamps strong edges so that they do not
ring (thin lines keep their contrast).  It acts only where the
merge holds detail above its own noise (:func:`detail_mask`, against a
brightness-dependent :func:`noise_floor`); flat areas are smoothed a little
instead.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from .backends.numpy_backend import NOISE_SAMPLES
from .interp import gaussian_taps

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
def restoration_taps(scale: float, lam: float, kernel_sigma: float | None = None,
                     optics_sigma: float = 0.0) -> np.ndarray:
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
    With ``optics_sigma`` (frame px) G also carries the lens's Gaussian blur,
    exp(-2 pi^2 (optics_sigma s)^2 f^2).
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


# ----------------------------------------------------------------------------
# The kernel merge's restoration: optics + pixels + merge kernel, noise-aware
# ----------------------------------------------------------------------------

DEFAULT_OPTICS_SIGMA = 0.5  # Gaussian sigma of a phone lens's blur, frame px (what the synthetic camera uses)
DETAIL_TO_LAMBDA = 0.0588  # Wiener regularisation per unit of (merged noise on the frames' grid, full scale) over
#                           (its detail power there, full scale^2) (benchmark: the best lambda on the chart and
#                           a natural photo, 4 and 16 frames, low to very high ISO, at 2x and 4x: within 0.04 dB
#                           of each burst's best on average, 0.19 dB at worst; one frame's noise as the yardstick
#                           instead lost 0.86 / 0.45 dB on average, 4.2 dB at very high ISO, sharpening the noise)
PROFILE_NOISE_TO_LAMBDA = 0.4  # Wiener regularisation per unit of the merged noise sigma (fraction of full scale)
PROFILE_LAMBDA_FLOOR = 0.007  # known from a noise profile, on top of this floor (benchmark: the best lambda at
#                               three noise levels of synthetic DNG bursts, after the detail mask: about 0.009,
#                               0.012 and 0.017 for sigma 0.004, 0.012 and 0.025)
MIN_LAMBDA = 0.001  # below this the FIR's ripple and the kernel merge's irregular sampling dominate
STRONG_EDGE = 0.4  # local range (of full scale) from which an edge counts as strong and is clamped
CLAMP_RADIUS = 2.0  # frame px: the window of the clamp reaches past a blurred step, so it never limits its slope
OVERSHOOT = 0.04  # ... where a restored pixel may leave the merged image's local range by this fraction of it
LINE_RADIUS = 1.0  # frame px: a pixel below (above) both pixels this far away along a direction ...
LINE_DEPTH = 0.05  # ... by more than this (of full scale) is a thin dark (bright) line or dot, not a step's shoulder:
LINE_GAIN = 1.0  # ... its clamp reaches this many times that depth past it (benchmark: on the charts +0.15 to
#                    0.6 dB against the sharp truth, photos +0.02; 2 gains 0.02 more and rings more)
DETAIL_SIGMA_FRAME_PX = 1.0  # window (frame px) of the local energy that tells detail from flat areas
DETAIL_LOW, DETAIL_HIGH = 1.3, 2.0  # sqrt(local gradient energy / the noise's): below LOW nothing is restored (noise
#                                      alone reads 1 +- 0.2 in this window), above HIGH fully (benchmark: lower costs
#                                      a flat patch its flatness, higher the chart and the photo up to 0.15 dB)
FLAT_SMOOTH_FRAME_PX = 0.25  # flat areas are smoothed by a Gaussian this wide (frame px) instead of restored
NOISE_BINS = 8  # brightness bins of the noise floor
MIN_BIN_FRACTION = 0.01  # ... each to hold at least this fraction of the pixels
FLOOR_OUTLIER = 2.0  # a bin's level above this times the fitted line is left out of the fit
_CHI2_1_MEDIAN = 0.4549  # median of chi-square(1) over its mean: Immerkaer's r^2 of Gaussian noise
_CHI2_2_MEDIAN = math.log(2.0)  # median of chi-square(2) over its mean: gx^2 + gy^2 of Gaussian noise
_SECOND_DIFF = np.array([1.0, -2.0, 1.0], np.float32)
_MAD_TO_SIGMA = 1.0 / (0.6745 * 6.0)  # median |N * noise| = 0.6745 * 6 sigma for N = [1,-2,1] x [1,-2,1]


def residual_noise(B, mean) -> float:
    """Standard deviation of the noise left in a merged image or a frame
    ((H, W, C) or (H, W), any units): Immerkaer's 3x3 second-difference mask (separable: [1, -2, 1] on
    rows and columns), read robustly as the median of its square over the
    luma so that edges and texture count little.  A host float."""
    xp = B.xp
    img = mean.astype(xp.float32) if mean.ndim == 2 else mean.astype(xp.float32).mean(axis=2)
    luma = xp.ascontiguousarray(img)
    r = B.sepfilter(luma, _SECOND_DIFF)[1:-1, 1:-1]
    r2 = xp.ascontiguousarray(r * r)
    # the median of r^2 over every pixel: robust_noise_level with full coverage and no edge term
    med = float(B.asnumpy(B.robust_noise_level(r2, xp.ones_like(r2), xp.zeros_like(r2), 0.0)))
    return float(np.sqrt(max(med, 0.0)) * _MAD_TO_SIGMA)


def frame_grid_luma(B, mean, scale: float):
    """A merged image's channel mean read on the frames' grid (float32 on
    the backend): blurred by a Gaussian of 0.5 frame px and sampled at the
    reference pixels' centres (nearest output pixel); at scale 1 the luma itself."""
    xp = B.xp
    luma = xp.ascontiguousarray(mean.mean(axis=2) if mean.ndim == 3 else mean, dtype=xp.float32)
    if scale == 1.0:
        return luma
    h, w = luma.shape
    blurred = B.sepfilter(luma, gaussian_taps(0.5 * scale))
    del luma
    cols = xp.asarray(np.clip(np.floor((np.arange(int(round(w / scale))) + 0.5) * scale), 0, w - 1).astype(np.int64))
    rows = xp.asarray(np.clip(np.floor((np.arange(int(round(h / scale))) + 0.5) * scale), 0, h - 1).astype(np.int64))
    return xp.ascontiguousarray(xp.take(xp.take(blurred, rows, axis=0), cols, axis=1))


def frame_grid_noise(B, mean, scale: float) -> float:
    """:func:`residual_noise` of a merged image read on the frames' grid
    (:func:`frame_grid_luma`).  On the output grid the merge's noise is
    band-limited to about the frames' Nyquist frequency, so the second
    difference reads less of it the larger the scale (at 4x about a seventh
    of what it reads at 2x); on the frames' grid it reads the same at every
    scale from 1.5 to 4."""
    return residual_noise(B, frame_grid_luma(B, mean, scale))


def detail_power(B, luma) -> float:
    """The mean squared gradient (forward differences, x and y) of a luma
    read on the frames' grid (:func:`frame_grid_luma`), in its units squared:
    how much detail the scene holds at the scales the restoration lifts.  A
    host float."""
    xp = B.xp
    gx = luma[:-1, 1:] - luma[:-1, :-1]
    gy = luma[1:, :-1] - luma[:-1, :-1]
    if gx.size == 0:
        return 0.0
    return float(B.asnumpy((gx * gx + gy * gy).mean(dtype=xp.float64)))


def detail_strength(noise: float, power: float, max_value: float, amount: float = 1.0) -> float:
    """Wiener regularisation for a merged image whose residual noise on the
    frames' grid is ``noise`` and whose detail power there is ``power``
    (:func:`frame_grid_noise`, :func:`detail_power`; input units, full scale
    ``max_value``): lambda = DETAIL_TO_LAMBDA * (noise / max_value) /
    (power / max_value^2), the noise against the scene's own detail, so that
    a noisier burst, or one with less detail, is restored less far.
    ``amount`` > 1 restores further (less regularisation), < 1 less far."""
    if not noise > 1e-6 * max_value:  # no noise left (float rounding at most): nothing holds the restoration back
        return float(MIN_LAMBDA / max(amount, 1e-6))
    if not power > 0.0:  # noise and no detail: nothing to restore
        return float(1.0 / max(amount, 1e-6))
    lam = DETAIL_TO_LAMBDA * (noise / max_value) / (power / (max_value * max_value))
    return float(max(MIN_LAMBDA, lam) / max(amount, 1e-6))


def profile_strength(noise: float, amount: float = 1.0) -> float:
    """Wiener regularisation for a merged image whose noise standard deviation
    is known in absolute terms (``noise``, fraction of full scale; from a raw
    file's noise profile): lambda = PROFILE_LAMBDA_FLOOR + PROFILE_NOISE_TO_LAMBDA
    * noise.  Unlike a ratio to one frame's noise it follows how noisy the
    result really is (the best lambda grows with the noise, from a floor that
    the restoration's own ripple and the detail mask's decisions set:
    synthetic DNG bursts, RESULTS.md)."""
    return float(max(MIN_LAMBDA, PROFILE_LAMBDA_FLOOR + PROFILE_NOISE_TO_LAMBDA * noise) / max(amount, 1e-6))


def noise_floor(B, luma, g2, max_value: float):
    """The local mean of the squared gradient ``g2`` (gx^2 + gy^2) that noise
    alone gives at each pixel ((H, W) float32 on the backend), as a function
    of brightness: noise power grows with the signal (shot noise), so it is
    modelled as a + b ``luma`` (a, b >= 0).

    ``luma``'s range 0..``max_value`` is cut into :data:`NOISE_BINS` bins;
    each bin holding at least :data:`MIN_BIN_FRACTION` of the pixels gives two
    robust levels: the median of Immerkaer's squared residual (as
    :func:`residual_noise`; it sees little of edges and smooth texture) and
    the median of ``g2`` (which sees texture too).  The line is fitted to the
    Immerkaer levels (:func:`fit_noise_line`), and scaled to gradient energy
    by the smallest ratio of the two levels over the bins (the flattest bin:
    the ratio that noise alone has, set by how the merge correlated it)."""
    xp = B.xp
    top = float(max_value)
    r = B.sepfilter(luma, _SECOND_DIFF)
    # the levels are medians over bins: every k-th pixel is plenty, and keeps the bins' masks small
    step = max(1, luma.size // (16 * NOISE_SAMPLES))
    r2 = xp.ascontiguousarray((r * r).ravel()[::step])
    del r
    g2 = xp.ascontiguousarray(g2.ravel()[::step])
    lum = luma.ravel()[::step]
    n = lum.size
    idx = xp.clip((lum * (NOISE_BINS / top)).astype(xp.int32), 0, NOISE_BINS - 1)
    del lum
    counts = B.asnumpy(xp.bincount(idx, minlength=NOISE_BINS)).astype(np.float64)
    zero = xp.zeros_like(g2)
    centres, levels, ratios, weights = [], [], [], []
    for k in range(NOISE_BINS):
        if counts[k] < MIN_BIN_FRACTION * n:
            continue
        inside = (idx == k).astype(xp.float32)
        imm = float(B.asnumpy(B.robust_noise_level(r2, inside, zero, 0.0))) / _CHI2_1_MEDIAN
        grad = float(B.asnumpy(B.robust_noise_level(g2, inside, zero, 0.0))) / _CHI2_2_MEDIAN
        centres.append((k + 0.5) * top / NOISE_BINS)
        levels.append(imm)
        ratios.append(grad / max(imm, 1e-30))
        weights.append(counts[k])
    if not levels:  # no bin is populated enough: one level for the whole image
        grad = float(B.asnumpy(B.robust_noise_level(g2, xp.ones_like(g2), zero, 0.0))) / _CHI2_2_MEDIAN
        return xp.full(luma.shape, grad, dtype=xp.float32)
    del r2, g2, idx, zero
    a, b = fit_noise_line(np.array(centres), np.array(levels), np.array(weights))
    kappa = min(ratios)
    return (kappa * (a + b * luma)).astype(xp.float32)


def fit_noise_line(x: np.ndarray, level: np.ndarray, weight: np.ndarray) -> tuple[float, float]:
    """(a, b), a, b >= 0: the weighted least-squares line level ~ a + b x,
    refitted without the points above :data:`FLOOR_OUTLIER` times it until
    none is left out (at most three times)."""
    keep = np.ones(x.size, bool)
    a, b = float(np.average(level, weights=weight)), 0.0
    for _ in range(4):
        xs, ls, ws = x[keep], level[keep], weight[keep]
        a, b = float(np.average(ls, weights=ws)), 0.0
        if xs.size >= 2 and np.ptp(xs) > 0:
            b_fit, a_fit = np.polyfit(xs, ls, 1, w=np.sqrt(ws))
            if b_fit >= 0.0 and a_fit >= 0.0:
                a, b = float(a_fit), float(b_fit)
            elif b_fit >= 0.0:  # through the origin
                a, b = 0.0, float(np.sum(ws * xs * ls) / np.sum(ws * xs * xs))
        new = keep & (level <= FLOOR_OUTLIER * (a + b * x))
        if new.sum() == keep.sum() or not new.any():
            break
        keep = new
    return a, b


def detail_mask(B, mean, scale: float, max_value: float):
    """Where the restoration may act: (H, W) float32 on the backend, 0 in flat
    areas, 1 on edges and texture.  The merged ``mean``'s local gradient
    energy (central differences of its channel mean, gx^2 + gy^2, smoothed by
    a Gaussian of :data:`DETAIL_SIGMA_FRAME_PX` frame px) against what noise
    alone gives there (:func:`noise_floor`, brightness-dependent): the square
    root of their ratio ramps from :data:`DETAIL_LOW` (pure noise reads about
    1) to :data:`DETAIL_HIGH`."""
    xp = B.xp
    luma = xp.ascontiguousarray(mean.mean(axis=2) if mean.ndim == 3 else mean, dtype=xp.float32)
    gx, gy = B.gradient(luma)
    g2 = xp.ascontiguousarray(gx * gx + gy * gy)
    del gx, gy
    energy = B.sepfilter(g2, gaussian_taps(DETAIL_SIGMA_FRAME_PX * scale))
    floor = noise_floor(B, luma, g2, max_value)
    del g2, luma
    energy = xp.maximum(energy, 0.0)
    energy /= xp.maximum(floor, 1e-20)
    del floor
    ratio = xp.sqrt(energy)
    del energy
    return xp.clip((ratio - DETAIL_LOW) / (DETAIL_HIGH - DETAIL_LOW), 0.0, 1.0).astype(xp.float32)


def deconvolve(B, mean, scale: float, kernel_sigma: float | None, max_value: float, reference_noise: float,
               optics_sigma: float = DEFAULT_OPTICS_SIGMA, amount: float = 1.0, noise: float | None = None) -> dict:
    """Restore a kernel-merged mean ``mean`` ((H, W, C) float32 on the backend,
    input value units) in place.

    1. A separable Wiener-type filter (:func:`restoration_taps`) for the whole
       blur the output carries: the optics (Gaussian, ``optics_sigma`` frame
       px), each frame's pixel aperture and the merge's Gaussian kernel
       (``kernel_sigma`` output px; None: the Lanczos4 resampling of the
       mean merge or of one upscaled frame, for comparison), regularised by the merged image's measured
       residual noise on the frames' grid against its detail power there
       (:func:`frame_grid_noise`, :func:`detail_power`,
       :func:`detail_strength`): the less noise is left against the scene's
       own detail, the further it goes, alike at every scale and ISO.
       (``reference_noise``, one frame's, is reported beside it.)
    2. Only where there is detail to restore: :func:`detail_mask` blends the
       restored image with the merge smoothed by a Gaussian of
       :data:`FLAT_SMOOTH_FRAME_PX` frame px, so that a flat area's noise is
       lowered instead of sharpened into texture (a flat patch comes out no
       noisier than the merge).
    3. No halos at strong edges: where the merged image's range over the
       (2 ceil(CLAMP_RADIUS s) + 1)^2 window around a pixel exceeds ``STRONG_EDGE`` of full
       scale, the restored pixel is clamped to that range widened by
       ``OVERSHOOT`` of it, so a step edge rings by at most that much.  Thin
       lines are not held to it (:func:`_widen_at_lines`): the blur has
       filled a thin dark line in, so the merged image's minimum there lies
       above the line's true level, and clamping to it took the line's
       restored contrast away, in part (a line crossing the edge of a strong
       edge's window came out darker where the window missed the edge).  At
       a valley or ridge ``LINE_DEPTH`` deep the bound reaches that depth past
       the pixel.

    ``noise`` is the merged image's noise standard deviation (input units)
    where it is known, from a raw file's noise profile
    (:meth:`RobustWeights.profile_noise
    <superres_gpu.robust.RobustWeights.profile_noise>`): the strength then
    follows it (:func:`profile_strength`); None measures the noise and the
    detail power on the frames' grid (:func:`detail_strength`).

    Returns the figures used: ``noise`` (input units, on the frames' grid), ``reference_noise``,
    ``lambda``, ``detail`` (the fraction of the image restored, the mean of the mask) and
    ``detail_power`` (full scale squared; None with a known ``noise``).
    """
    xp = B.xp
    power = None
    if noise is None:
        luma = frame_grid_luma(B, mean, scale)
        noise, power = residual_noise(B, luma), detail_power(B, luma)
        del luma
        lam = detail_strength(noise, power, max_value, amount)
    else:
        noise = float(noise)
        lam = profile_strength(noise / max_value, amount)
    taps = restoration_taps(float(scale), lam, None if kernel_sigma is None else float(kernel_sigma),
                            float(optics_sigma))
    mask = detail_mask(B, mean, scale, max_value)
    smooth = gaussian_taps(FLAT_SMOOTH_FRAME_PX * scale) if FLAT_SMOOTH_FRAME_PX > 0 else None
    r = int(np.ceil(CLAMP_RADIUS * scale))
    strong = xp.float32(STRONG_EDGE * max_value)
    for ch in range(mean.shape[2]):
        plane = xp.ascontiguousarray(mean[..., ch])
        out = B.sepfilter(plane, taps)
        flat = B.sepfilter(plane, smooth) if smooth is not None else plane.copy()
        out -= flat  # out = flat + mask (out - flat)
        out *= mask
        out += flat
        del flat
        lo, hi = B.local_extrema(plane, r)
        room = hi - lo  # the span; where it exceeds STRONG_EDGE, OVERSHOOT of it, else no clamp
        room = xp.where(room > strong, room * xp.float32(OVERSHOOT), xp.float32(max_value))
        lo -= room
        hi += room
        del room
        if LINE_DEPTH > 0:
            lo, hi = _widen_at_lines(xp, plane, lo, hi, max(1, int(round(LINE_RADIUS * scale))),
                                     xp.float32(LINE_DEPTH * max_value))
        xp.maximum(out, lo, out=out)
        xp.minimum(out, hi, out=out)
        del plane
        mean[..., ch] = out
    return {"noise": noise, "reference_noise": float(reference_noise), "lambda": lam,
            "detail": float(B.asnumpy(mask.mean())),
            "detail_power": None if power is None else power / (max_value * max_value)}


def _widen_at_lines(xp, plane, lo, hi, d: int, deep):
    """The clamp's bounds (``lo``, ``hi``) widened at thin lines of ``plane``:
    a pixel lower than both pixels ``d`` px away along a row or a column by
    more than ``deep`` lies in a valley (a dark line or dot the blur has
    filled in; a line at any angle is crossed by a row or a column), one
    higher than both in a ridge; there the bound may reach as far past the
    pixel as the valley is deep (``LINE_GAIN`` times that), so the
    restoration brings back the line's contrast (a step's shoulders are no
    valley: one side is flat)."""
    h, w = plane.shape
    valley = xp.zeros((h, w), dtype=xp.float32)
    ridge = xp.zeros((h, w), dtype=xp.float32)
    for dy, dx in ((0, d), (d, 0)):
        if h <= 2 * dy or w <= 2 * dx:
            continue
        inner = (slice(dy, h - dy), slice(dx, w - dx))
        c = plane[inner]
        a = plane[: h - 2 * dy, : w - 2 * dx]
        b = plane[2 * dy :, 2 * dx :]
        t = xp.minimum(a, b)
        t -= c
        xp.maximum(valley[inner], t, out=valley[inner])
        xp.maximum(a, b, out=t)
        xp.subtract(c, t, out=t)
        xp.maximum(ridge[inner], t, out=ridge[inner])
        del t
    gain = xp.float32(LINE_GAIN)
    out = []
    for depth, bound, sign in ((valley, lo, -1.0), (ridge, hi, 1.0)):
        line = depth > deep
        depth *= gain * xp.float32(sign)
        depth += plane  # the valley's floor (the ridge's top): the pixel less (plus) its depth
        if sign < 0:
            xp.minimum(bound, depth, out=depth)
        else:
            xp.maximum(bound, depth, out=depth)
        out.append(xp.where(line, depth, bound))
        del line
    return out[0], out[1]
