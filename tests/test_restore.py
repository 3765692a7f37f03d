"""Restoration: the filter undoes the merge's own blur, regularised by the frame count."""

from __future__ import annotations

import numpy as np
import pytest

from superres_gpu.backends import get_backend
from superres_gpu.restore import lanczos4_response, restoration_strength, restoration_taps, sharpen
from tolerances import TOL, tol

B = get_backend("numpy")


def test_lanczos4_response_is_flat_then_cuts_off():
    f, H = lanczos4_response()
    assert H[0] == 1.0
    assert np.all(H[f <= 0.3] > 0.95)  # nearly flat well below the input Nyquist frequency
    assert np.all(np.abs(H[f >= 0.75]) < 0.05)  # stops well above it


@pytest.mark.parametrize("scale", [1.0, 2.0, 3.0])
def test_restoration_undoes_the_merge_blur_at_low_frequencies(scale):
    """The filter's response times the merge's transfer function G is about 1
    below half the frames' Nyquist frequency (where G is strong and the FIR
    window does not bite), and never amplifies beyond what the regularisation
    allows."""
    lam = restoration_strength(64)
    h = restoration_taps(scale, lam).astype(np.float64)
    assert len(h) % 2 == 1 and abs(h.sum() - 1.0) < TOL["taps_sum_float32"][0]
    r = len(h) // 2
    fo = np.linspace(0, 0.5, 101)
    R = np.real(np.exp(-2j * np.pi * np.outer(fo, np.arange(-r, r + 1))) @ h)
    fl, HL = lanczos4_response()
    G = np.sinc(scale * fo) * np.interp(scale * fo, fl, HL, right=0.0) / np.sinc(fo)
    low = fo < 0.25 / scale
    atol, _ = tol("restoration_flat_response")
    np.testing.assert_allclose((R * G)[low], 1.0, atol=atol)
    assert R.max() < 1.0 / (2.0 * np.sqrt(lam)) * 1.2  # G / (G^2 + lam) <= 1 / (2 sqrt(lam)), plus the FIR ripple


def test_strength_follows_the_frame_count():
    assert restoration_strength(1) == 0.3 and restoration_strength(1000) == 0.02
    assert restoration_strength(8) > restoration_strength(16) > restoration_strength(32)


def test_sharpen_keeps_a_flat_image_flat_and_per_channel(rng):
    mean = np.full((30, 40, 3), 100.0, np.float32)
    mean[..., 1] = 7.0
    sharpen(B, mean, 2.0, 16)
    atol, rtol = tol("sharpen_flat_float32")
    np.testing.assert_allclose(mean[..., 0], 100.0, atol=atol * 100, rtol=rtol)
    np.testing.assert_allclose(mean[..., 1], 7.0, atol=atol * 7, rtol=rtol)
