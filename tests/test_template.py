"""The denoised template: area weights, and a merge brought back to the frames' grid."""

from __future__ import annotations

import numpy as np
import pytest

from superres_gpu.backends import get_backend
from superres_gpu.geometry import output_size
from superres_gpu.template import area_weights, template_frame

B = get_backend("numpy")


@pytest.mark.parametrize("scale", [1.0, 1.5, 2.0, 2.5, 4.0])
@pytest.mark.parametrize("n", [7, 64, 101])
def test_area_weights_cover_each_pixel_once(scale, n):
    n_out = output_size(n, n, scale)[0]
    idx, w = area_weights(n_out, n, scale)
    assert np.allclose(w.sum(axis=0), 1.0, atol=1e-6)
    assert idx.min() >= 0 and idx.max() < n_out
    # each weight is the overlap of the output pixel with the reference pixel
    x = np.arange(n)[None, :]
    overlap = np.clip(np.minimum((idx + 1) / scale - 0.5, x + 0.5) - np.maximum(idx / scale - 0.5, x - 0.5), 0, None)
    inner = slice(1, n - 1)  # at the borders the output grid may stop short of the pixel's edge
    first_seen = np.ones_like(idx, dtype=bool)
    first_seen[1:] = idx[1:] != idx[:-1]  # an index clipped at the border repeats
    assert np.allclose((w * first_seen)[:, inner], (overlap * first_seen)[:, inner], atol=1e-6)


def test_template_of_a_pixel_replicated_image_is_the_image():
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (30, 40, 3)).astype(np.uint8)
    mean = np.repeat(np.repeat(frame.astype(np.float32), 2, axis=0), 2, axis=1)
    t = template_frame(B, mean, 2.0, 40, 30, 255.0)
    assert t.dtype == np.uint16 and t.shape == frame.shape
    assert np.array_equal(t, frame.astype(np.uint16) * 257)


def test_template_of_grey_input_is_grey_and_keeps_a_ramp():
    w, h, s = 33, 21, 2.0
    ow, oh = output_size(w, h, s)
    X = (np.arange(ow) + 0.5) / s - 0.5  # reference position of each output pixel
    mean = np.broadcast_to((100.0 + 3.0 * X)[None, :, None], (oh, ow, 1)).astype(np.float32)
    t = template_frame(B, mean, s, w, h, 255.0)
    assert t.shape == (h, w)
    expect = (100.0 + 3.0 * np.arange(w)) * 257.0
    assert np.abs(t.astype(np.float64) - expect[None, :]).max() <= 0.5
