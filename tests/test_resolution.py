"""Resolution measurement against analytic truth: Gaussian-blurred, pixel-integrated edges and stars."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from superres_gpu.resolution import crossing, slanted_edge_mtf, star_resolved_radius
from tolerances import TOL

_erf = np.vectorize(math.erf)


def render_edge(h: int, w: int, angle_deg: float, sigma: float, ss: int = 16, lo=0.1, hi=0.9) -> np.ndarray:
    """An edge through the centre tilted ``angle_deg`` from the columns, blurred by a
    Gaussian of ``sigma`` px and integrated over each pixel (``ss`` x ``ss`` sub-samples)."""
    t = math.radians(angle_deg)
    nx, ny = math.cos(t), -math.sin(t)
    o = (np.arange(ss) + 0.5) / ss - 0.5
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    d = ((xx[..., None, None] + o[None, None, None, :] - w / 2) * nx
         + (yy[..., None, None] + o[None, None, :, None] - h / 2) * ny)
    acc = 0.5 * (1.0 + _erf(d / (math.sqrt(2.0) * sigma))).mean(axis=(2, 3))
    return lo + (hi - lo) * acc


def analytic_mtf(f, sigma, angle_deg):
    t = math.radians(angle_deg)
    return np.exp(-2 * np.pi**2 * sigma**2 * f**2) * np.sinc(f * math.cos(t)) * np.sinc(f * math.sin(t))


@pytest.mark.parametrize("angle", [5.0, 8.0])
@pytest.mark.parametrize("sigma", [0.5, 1.0])
@pytest.mark.parametrize("transpose", [False, True])
def test_edge_mtf_matches_gaussian_times_pixel_aperture(angle, sigma, transpose):
    img = render_edge(64, 48, angle, sigma)
    if transpose:  # the same edge, near horizontal
        img = img.T
    r = slanted_edge_mtf(img)
    assert abs(abs(r.angle_deg) - angle) < 0.05
    m = r.freq <= 0.5
    truth = analytic_mtf(r.freq, sigma, angle)
    assert np.abs(r.mtf[m] - truth[m]).max() < TOL["edge_mtf_vs_analytic"][0]
    f = np.linspace(0, 1, 2001)
    f50 = crossing(f, analytic_mtf(f, sigma, angle), 0.5)
    assert abs(r.mtf50 / f50 - 1.0) < TOL["edge_mtf50_rel"][0]


def test_edge_mtf_of_a_sharper_edge_is_higher_and_reads_rgb():
    soft = slanted_edge_mtf(render_edge(48, 40, 6.0, 1.2))
    sharp_grey = render_edge(48, 40, 6.0, 0.4)
    sharp = slanted_edge_mtf(np.repeat(sharp_grey[..., None], 3, axis=2))
    assert sharp.mtf50 > 1.5 * soft.mtf50
    assert sharp.at(0.5) > soft.at(0.5)


def test_edge_mtf_refuses_a_region_without_edge():
    with pytest.raises(ValueError):
        slanted_edge_mtf(np.full((32, 32), 0.5))


def render_star(size: int, radius: float, sigma: float, spokes: int = 36, ss: int = 8):
    H = size * ss
    c = size / 2 * ss - 0.5
    yy, xx = np.mgrid[0:H, 0:H].astype(np.float32)
    th = np.arctan2(yy - c, xx - c)
    rr = np.hypot(xx - c, yy - c)
    img = np.where((rr < radius * ss) & (np.sin(spokes * th) > 0), 0.1, 0.9).astype(np.float32)
    img = cv2.GaussianBlur(img, (0, 0), sigma * ss)
    return cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA), (size / 2 - 0.5, size / 2 - 0.5)


@pytest.mark.parametrize("sigma", [1.5, 2.0])
def test_star_radius_matches_the_grating_model(sigma):
    """The spokes' fundamental at radius r is a grating of 36 / (2 pi r) cycles/px; through
    the blur and the pixel aperture its modulation relative to the reference radius is the
    MTF ratio, so the resolved radius is where that ratio falls to the threshold."""
    img, c = render_star(240, 110, sigma)
    res = star_resolved_radius(img, c, 110, threshold=0.2)
    th = np.linspace(0, np.pi / 2, 64)

    def mtf(f):  # averaged over the grating's orientation (the pixel aperture is not isotropic)
        return np.exp(-2 * np.pi**2 * sigma**2 * f**2) * np.mean(np.sinc(f * np.cos(th)) * np.sinc(f * np.sin(th)))

    rr = np.arange(0.85 * 110, 1, -0.01)
    m = np.array([mtf(36 / (2 * np.pi * r)) for r in rr])
    m /= m[0]
    r_true = rr[np.nonzero(m < 0.2)[0][0]]
    assert abs(res.radius / r_true - 1.0) < TOL["star_radius_rel"][0]
    assert res.frequency == pytest.approx(36 / (2 * np.pi * res.radius))


def test_star_radius_shrinks_with_sharpness_and_phase_reversal_counts_as_lost():
    soft, c = render_star(200, 90, 2.0)
    sharp, _ = render_star(200, 90, 0.8)
    assert star_resolved_radius(sharp, c, 90).radius < 0.7 * star_resolved_radius(soft, c, 90).radius
    # a star whose inner part is rotated by half a spoke period: the pattern is there,
    # but in reversed phase (as spurious resolution is), so it is not resolved
    H = 200
    yy, xx = np.mgrid[0:H, 0:H].astype(np.float32)
    th = np.arctan2(yy - c[1], xx - c[0])
    rr = np.hypot(xx - c[0], yy - c[1])
    phase = np.where(rr < 40, np.pi, 0.0)
    rev = np.where((rr < 90) & (np.sin(36 * th + phase) > 0), 0.1, 0.9).astype(np.float32)
    assert star_resolved_radius(rev, c, 90).radius > 39
