"""Resampling and accumulation: known facts and quality on synthetic bursts."""

from __future__ import annotations

import numpy as np
import pytest

from superres_gpu.align import AlignConfig, align_frame
from superres_gpu.backends import base as S
from superres_gpu.backends import get_backend
from superres_gpu.merge import Accumulator
from superres_gpu.metrics import psnr
from superres_gpu.reference import Reference
from superres_gpu.state import transform_state as _state
from tolerances import TOL, tol

B = get_backend("numpy")


@pytest.mark.parametrize("scale", [1.0, 2.0, 2.5])
def test_identical_frames_give_that_frame(scale, rng):
    frame = (rng.random((30, 41, 3)) * 255).astype(np.uint8)
    one = Accumulator(B, 41, 30, 3, scale, 255)
    one.add(frame, S.identity_state())
    many = Accumulator(B, 41, 30, 3, scale, 255)
    for _ in range(5):
        many.add(frame, S.identity_state())
    atol, rtol = tol("merge_identical_codes")
    np.testing.assert_allclose(many.result().astype(int), one.result().astype(int), atol=atol, rtol=rtol)
    if scale == 1.0:
        np.testing.assert_array_equal(one.result(), frame.astype(np.uint16) * 257)


def test_constant_image_stays_constant_under_motion(rng):
    frame = np.full((40, 50), 1234, np.uint16)
    acc = Accumulator(B, 50, 40, 1, 2.0, 65535)
    for k in range(6):
        a = rng.normal(0, 0.01)
        T = np.array([[np.cos(a), -np.sin(a), rng.normal(0, 3)], [np.sin(a), np.cos(a), rng.normal(0, 3)], [0, 0, 1]])
        acc.add(frame, _state(T) if k else S.identity_state())
    out = acc.result()
    assert out.shape == (80, 100)
    assert np.all(out == 1234)


def test_pixels_outside_a_frame_do_not_count():
    ref = np.full((20, 20), 100, np.uint8)
    other = np.full((20, 20), 200, np.uint8)
    acc = Accumulator(B, 20, 20, 1, 1.0, 255)
    acc.add(ref, S.identity_state())
    acc.add(other, _state(np.array([[1, 0, 10.0], [0, 1, 0], [0, 0, 1]])))  # covers x >= 10 only
    out = acc.result() / 257.0
    cov = acc.coverage()
    assert np.all(cov[:, :9] == 1) and np.all(cov[:, 10:] == 2)
    atol, rtol = tol("merge_flat_levels")
    np.testing.assert_allclose(out[:, :9], 100, atol=atol, rtol=rtol)  # no darkening by the shifted frame
    np.testing.assert_allclose(out[:, 11:], 150, atol=atol, rtol=rtol)


def test_merged_burst_beats_single_frame_lanczos(medium_burst):
    b = medium_burst
    w, h = b.params["width"], b.params["height"]
    r = Reference(B, b.frames[0], AlignConfig())
    acc = Accumulator(B, w, h, 3, 2.0, 255)
    acc.add(b.frames[0], r.state())
    single = Accumulator(B, w, h, 3, 2.0, 255)
    single.add(b.frames[0], r.state())
    for f in b.frames[1:]:
        acc.add(f, align_frame(B, r, f))
    merged, one = acc.result(), single.result()
    gain_blur = psnr(merged, b.truth_blurred) - psnr(one, b.truth_blurred)
    gain_sharp = psnr(merged, b.truth) - psnr(one, b.truth)
    assert gain_blur > TOL["merge_gain_db"][0], f"only {gain_blur:.2f} dB better than one frame"
    assert gain_sharp > TOL["merge_gain_sharp_db"][0], f"only {gain_sharp:.2f} dB better against the sharp scene"


def test_true_transforms_merge_is_at_least_as_good_as_estimated(medium_burst):
    """Sanity of the conventions: merging with the *true* transforms works as well."""
    b = medium_burst
    w, h = b.params["width"], b.params["height"]
    r = Reference(B, b.frames[0], AlignConfig())
    est = Accumulator(B, w, h, 3, 2.0, 255)
    true = Accumulator(B, w, h, 3, 2.0, 255)
    for i, (f, T) in enumerate(zip(b.frames, b.transforms)):
        est.add(f, align_frame(B, r, f) if i else r.state())
        true.add(f, _state(T))
    p_est, p_true = psnr(est.result(), b.truth_blurred), psnr(true.result(), b.truth_blurred)
    assert abs(p_est - p_true) < TOL["estimated_vs_true_motion_db"][0]


def test_mean_after_restoration_is_encoded_where_covered(rng):
    frame = (rng.random((20, 30, 3)) * 255).astype(np.uint8)
    acc = Accumulator(B, 30, 20, 3, 1.0, 255)
    acc.add(frame, S.identity_state())
    acc.add(frame, _state(np.array([[1, 0, 12.0], [0, 1, 0], [0, 0, 1]])))  # covers x >= 12
    mean, covered = acc.take_mean()
    assert acc.num is None and covered.dtype == np.float32 and covered.min() == 1.0
    atol, rtol = tol("merge_identical_codes")
    np.testing.assert_allclose(acc.encode(mean, covered)[:, :11].astype(int), frame[:, :11].astype(int) * 257,
                               atol=atol * 257, rtol=rtol)
