"""Interpolation tables and filter taps: known facts."""

from __future__ import annotations

import numpy as np

from superres_gpu.backends.numpy_backend import sample_bspline
from superres_gpu.interp import (
    alignment_taps,
    bspline_prefilter_taps,
    bspline_weights_f32,
    gaussian_taps,
    lanczos4_table,
)
from tolerances import TOL, tol


def test_lanczos_table_rows_sum_to_one_and_fraction_zero_is_identity():
    tab = lanczos4_table()
    assert tab.shape == (32, 8) and tab.dtype == np.float32
    atol, rtol = tol("taps_sum_float32")
    np.testing.assert_allclose(tab.sum(axis=1), 1.0, atol=atol, rtol=rtol)
    assert tab[0, 3] == 1.0 and np.all(np.abs(np.delete(tab[0], 3)) < 1e-20)
    # symmetric: fraction k/32 mirrors 1 - k/32
    atol, rtol = tol("lanczos_table_symmetry")
    np.testing.assert_allclose(tab[8], tab[24][::-1], atol=atol, rtol=rtol)


def test_bspline_weights_partition_of_unity_and_reproduce_linear():
    t = np.linspace(0, 1, 17).astype(np.float32)
    w = bspline_weights_f32(t)
    assert all(wi.dtype == np.float32 for wi in w)
    atol, rtol = tol("bspline_f32_vs_direct")
    np.testing.assert_allclose(sum(wi.astype(np.float64) for wi in w), 1.0, atol=atol, rtol=rtol)
    assert all(np.all(wi >= 0) for wi in w)
    img = np.tile(np.arange(12, dtype=np.float32) * 0.5, (8, 1))  # linear: its own coefficients
    u = np.array([2.25, 5.5, 7.9])
    v = np.array([3.0, 4.6, 2.2])
    atol, rtol = tol("bspline_linear_float32")
    np.testing.assert_allclose(sample_bspline(img, u, v), 0.5 * u, atol=atol, rtol=rtol)


def test_prefilter_taps_invert_the_bspline_sampling_filter():
    """Convolving the inverse-filter taps with the sampling filter (1, 4, 1)/6
    gives a unit impulse up to the truncation (|pole|^10)."""
    h = bspline_prefilter_taps().astype(np.float64)
    r = np.convolve(h, [1 / 6, 4 / 6, 1 / 6])
    c = len(r) // 2
    atol, rtol = tol("bspline_prefilter_truncation")
    assert abs(r[c] - 1.0) < atol
    np.testing.assert_allclose(np.delete(r, c), 0.0, atol=atol, rtol=rtol)


def test_gaussian_taps_and_alignment_taps():
    for sigma in (0.7, 1.5, 3.0):
        g = gaussian_taps(sigma)
        atol, rtol = tol("taps_sum_float32")
        np.testing.assert_allclose(g.sum(), 1.0, atol=atol, rtol=rtol)
        assert len(g) == 2 * max(1, int(np.ceil(3 * sigma))) + 1
        x = np.arange(len(g)) - len(g) // 2
        var = float(np.sum(g * x * x))
        assert abs(var - sigma**2) < TOL["gaussian_truncated_variance"][0] * sigma**2
    ref_taps, frame_taps = alignment_taps(1.5)
    np.testing.assert_array_equal(ref_taps, gaussian_taps(1.5))
    assert len(frame_taps) == len(ref_taps) + len(bspline_prefilter_taps()) - 1
    ident, only_bspline = alignment_taps(0.0)
    assert ident.tolist() == [1.0] and len(only_bspline) == len(bspline_prefilter_taps())
