"""The burst simulator and its named recipes."""

from __future__ import annotations

import numpy as np
import pytest

from superres_gpu.geometry import output_size
from superres_gpu.synth import RECIPES, recipe_burst


def test_recipes_render_what_they_describe():
    b = recipe_burst("test-small", frames=3)
    r = RECIPES["test-small"]
    assert len(b.frames) == len(b.encoded) == len(b.transforms) == 3
    assert b.frames[0].shape == (r.height, r.width, 3) and b.frames[0].dtype == np.uint8
    assert b.truth.shape[:2] == b.truth_blurred.shape[:2] == output_size(r.width, r.height, r.scale)[::-1]
    np.testing.assert_array_equal(b.transforms[0], np.eye(3))
    assert b.ext == ".jpg" and b.params["seed"] == r.seed


def test_a_burst_is_reproducible_from_its_seed():
    a, b = recipe_burst("test-small", frames=2), recipe_burst("test-small", frames=2)
    assert a.encoded == b.encoded
    c = recipe_burst("test-small", frames=2, seed=99)
    assert c.encoded != a.encoded


@pytest.mark.parametrize("workers", [1, 3])
def test_large_burst_mode_keeps_only_the_files(workers):
    b = recipe_burst("throughput", frames=3, width=96, height=64, truth=False, decoded=False, workers=workers)
    assert b.frames == [] and b.truth is None and len(b.encoded) == 3
    import cv2

    img = cv2.imdecode(np.frombuffer(b.encoded[1], np.uint8), cv2.IMREAD_COLOR)
    assert img.shape == (64, 96, 3) and img.std() > 5  # a real, textured frame
