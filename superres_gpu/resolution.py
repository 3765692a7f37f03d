"""Resolution measured as the field measures it: the slanted-edge MTF and the
Siemens star's resolved radius.

:func:`slanted_edge_mtf` follows ISO 12233's edge method: the edge is located
by a line fitted to the centroids of each row's derivative, every pixel is
projected onto the edge normal, the projections are binned 4x finer than the
pixel pitch into an edge-spread function (ESF), whose derivative (the
line-spread function, LSF) is Hamming-windowed and Fourier transformed.  The
result is the system's MTF along the edge normal in cycles per pixel of the
measured image; :attr:`EdgeMTF.mtf50` is where it first falls to one half.

:func:`star_resolved_radius` reads a Siemens star of ``spokes`` spokes on
circles of decreasing radius: the spoke pattern's fundamental (``spokes``
cycles per turn) is projected onto its phase at a well-resolved outer radius,
so that a pattern that has aliased into spurious resolution (reversed phase)
counts as lost.  The resolved radius is the smallest radius down to which
that modulation stays above ``threshold`` times the outer one; the star's
local frequency there, ``spokes / (2 pi r)`` cycles per pixel, is the limit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

OVERSAMPLE = 4


@dataclass
class EdgeMTF:
    """The result of :func:`slanted_edge_mtf`."""

    freq: np.ndarray  # cycles per pixel (along the edge normal)
    mtf: np.ndarray  # normalised to 1 at f = 0
    angle_deg: float  # the edge's angle from the image's column (or row) axis
    esf: np.ndarray  # the oversampled edge-spread function (bin width 1/OVERSAMPLE px)

    @property
    def mtf50(self) -> float:
        """Lowest frequency where the MTF falls to 0.5 (cycles/px, linear
        interpolation between bins); NaN when it never does in range."""
        return crossing(self.freq, self.mtf, 0.5)

    def at(self, f: float) -> float:
        """The MTF at frequency ``f`` (cycles/px), linearly interpolated."""
        return float(np.interp(f, self.freq, self.mtf))


def crossing(freq: np.ndarray, curve: np.ndarray, level: float) -> float:
    """First frequency where ``curve`` falls to ``level`` (linear interpolation)."""
    below = np.nonzero(curve <= level)[0]
    if below.size == 0:
        return float("nan")
    i = int(below[0])
    if i == 0:
        return float(freq[0])
    f0, f1, c0, c1 = freq[i - 1], freq[i], curve[i - 1], curve[i]
    return float(f0 + (c0 - level) * (f1 - f0) / (c0 - c1))


def _luma(img: np.ndarray) -> np.ndarray:
    a = np.asarray(img, dtype=np.float64)
    if a.ndim == 3:
        a = a[..., 0] * 0.299 + a[..., 1] * 0.587 + a[..., 2] * 0.114
    return a


def slanted_edge_mtf(img: np.ndarray, oversample: int = OVERSAMPLE) -> EdgeMTF:
    """ISO 12233 slanted-edge MTF of a region holding one straight edge.

    ``img`` is the region (grey or RGB, any numeric type; RGB is measured on
    BT.601 luma).  The edge may be near vertical or near horizontal, tilted a
    few degrees (2 to 10 degrees is what the method wants: every phase of the
    pixel grid is then sampled along the edge).  The MTF is corrected for the
    finite-difference derivative and for the bin width, so that it is the
    MTF of the image, not of the measurement.
    """
    a = _luma(img)
    if a.ndim != 2 or min(a.shape) < 8:
        raise ValueError("slanted_edge_mtf needs a 2-D region of at least 8 x 8 pixels")
    gy, gx = np.gradient(a)
    if np.sum(gy * gy) > np.sum(gx * gx):  # a near-horizontal edge: measure it as a near-vertical one
        a = a.T
    h, w = a.shape
    d = np.abs(np.diff(a, axis=1))  # derivative across the edge; sample k sits between pixels k and k+1
    xs = np.arange(w - 1) + 0.5
    win = np.hamming(w - 1)  # ISO: window the rows before the centroid, so far-off noise weighs little
    rows = np.arange(h, dtype=np.float64)
    dw = d * win
    sums = dw.sum(axis=1)
    ok = sums > 1e-12 * max(1.0, float(sums.max()))
    if ok.sum() < 4:
        raise ValueError("no edge found in the region")
    cent = (dw * xs).sum(axis=1)[ok] / sums[ok]
    # refine: re-centre the window on the first fit, as ISO 12233:2014 does
    b, c0 = np.polyfit(rows[ok], cent, 1)
    xx = np.arange(w - 1)[None, :] + 0.5
    wc = np.hamming(2 * (w - 1) + 1)
    idx = np.clip(np.rint(xx - (b * rows[:, None] + c0)).astype(int) + (w - 1), 0, 2 * (w - 1))
    dw = d * wc[idx]
    sums = dw.sum(axis=1)
    ok = sums > 1e-12 * max(1.0, float(sums.max()))
    cent = (dw * xs).sum(axis=1)[ok] / sums[ok]
    b, c0 = np.polyfit(rows[ok], cent, 1)
    cos_t = 1.0 / math.sqrt(1.0 + b * b)
    # signed distance of every pixel centre from the fitted line, along its normal
    X, Y = np.meshgrid(np.arange(w, dtype=np.float64), rows)
    dist = (X - (b * Y + c0)) * cos_t
    q = 1.0 / oversample
    # keep the distances every row reaches on both sides of the edge (symmetric about it)
    xe = b * rows + c0
    reach = min(float(xe.min()), float(w - 1 - xe.max())) * cos_t - q
    nb = int(math.floor(reach / q))
    if nb < 4:
        raise ValueError("the edge region is too small to measure (the edge must lie well inside it)")
    sel = np.abs(dist) < nb * q
    k = (np.floor(dist[sel] / q) + nb).astype(np.int64)
    cnt = np.bincount(k, minlength=2 * nb)
    tot = np.bincount(k, weights=a[sel], minlength=2 * nb)
    esf = np.empty(2 * nb)
    filled = cnt > 0
    esf[filled] = tot[filled] / cnt[filled]
    if not filled.all():  # empty bins (edge angle near 0 or 45 degrees): interpolate
        pos = np.arange(esf.size)
        esf[~filled] = np.interp(pos[~filled], pos[filled], esf[filled])
    lsf = np.zeros_like(esf)
    lsf[1:-1] = 0.5 * (esf[2:] - esf[:-2])
    peak = int(np.argmax(np.abs(lsf)))
    m = lsf.size
    # Hamming window centred on the LSF's peak, wide enough to hold the whole array
    off = np.arange(m) - peak
    span = 2 * max(peak, m - 1 - peak) + 1
    lsf = lsf * (0.54 + 0.46 * np.cos(2.0 * np.pi * off / span))
    spec = np.abs(np.fft.rfft(lsf))
    freq = np.fft.rfftfreq(m, d=q)
    mtf = spec / max(spec[0], 1e-300)
    # the central difference over 2q and the bin of width q blur the ESF: divide their responses out
    corr = np.sinc(2.0 * freq * q) * np.sinc(freq * q)
    keep = freq <= 0.5 / q / 2.0  # below the first zero of the correction, with room
    mtf = mtf[keep] / corr[keep]
    return EdgeMTF(freq[keep], mtf, math.degrees(math.atan(b)), esf)


@dataclass
class StarResolution:
    """The result of :func:`star_resolved_radius`."""

    radius: float  # resolved radius (px of the measured image)
    frequency: float  # the star's local frequency at that radius, cycles/px
    radii: np.ndarray  # radii measured, outer first
    modulation: np.ndarray  # the fundamental's in-phase modulation, relative to the outer radius


def star_modulation(img: np.ndarray, centre, radii, spokes: int = 36, samples: int = 1440) -> np.ndarray:
    """Complex amplitude of the ``spokes``-cycle fundamental on circles of
    ``radii`` around ``centre`` (x, y), sampled bilinearly at ``samples`` angles."""
    import cv2

    a = _luma(img).astype(np.float32)
    th = np.arange(samples) * (2.0 * np.pi / samples)
    r = np.asarray(radii, dtype=np.float64)[:, None]
    mx = (centre[0] + r * np.cos(th)).astype(np.float32)
    my = (centre[1] + r * np.sin(th)).astype(np.float32)
    vals = cv2.remap(a, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE).astype(np.float64)
    return (vals * np.exp(-1j * spokes * th)).sum(axis=1) * (2.0 / samples)


def star_resolved_radius(img: np.ndarray, centre, outer_radius: float, spokes: int = 36,
                         threshold: float = 0.2, reference_at: float = 0.85, step: float = 0.25) -> StarResolution:
    """Resolved radius of a Siemens star of ``spokes`` spokes (see the module's
    docstring); ``centre`` (x, y) and ``outer_radius`` in px of ``img``."""
    if not 0.0 < threshold < 1.0:
        raise ValueError("threshold must be between 0 and 1")
    r_ref = reference_at * outer_radius
    radii = np.arange(r_ref, 1.0, -step)
    c = star_modulation(img, centre, radii, spokes)
    ref = c[0]
    if abs(ref) < 1e-12:
        raise ValueError("no spoke pattern at the star's outer radius")
    m = np.real(c * np.conj(ref)) / (abs(ref) ** 2)
    lost = np.nonzero(m < threshold)[0]
    if lost.size == 0:
        r = float(radii[-1])
    else:
        i = int(lost[0])
        # between the last radius above the threshold and the first below it
        r = float(radii[i - 1] + (m[i - 1] - threshold) * (radii[i] - radii[i - 1]) / (m[i - 1] - m[i])) if i else float(radii[0])
    return StarResolution(r, spokes / (2.0 * math.pi * r), radii, m)
