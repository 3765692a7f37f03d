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


def test_chart_features_locate_the_slanted_edge_and_the_star(small_burst):
    """The measurable tiles sit where chart_features says on the output grid: the
    edge measures at its drawn tilt, and the sharp truth resolves the star down to
    about the output's Nyquist radius (36 / pi px)."""
    from superres_gpu.resolution import slanted_edge_mtf, star_resolved_radius
    from superres_gpu.synth import EDGE_ANGLE_DEG, chart_edge_tile, chart_features

    b = small_burst
    f = chart_features(b.params["width"], b.params["height"], b.scale)
    x0, y0, x1, y1 = (int(round(v)) for v in f["edge"])
    e = slanted_edge_mtf(b.truth[y0 + 2 : y1 - 2, x0 + 2 : x1 - 2])
    assert abs(abs(e.angle_deg) - EDGE_ANGLE_DEG) < 0.2
    cx, cy, r = f["star"]
    sharp = star_resolved_radius(b.truth, (cx, cy), r).radius
    blurred = star_resolved_radius(b.truth_blurred, (cx, cy), r).radius
    assert 0.7 * 36 / np.pi < sharp < 1.5 * 36 / np.pi and blurred > 1.3 * sharp
    assert chart_edge_tile(100, 100) is None  # no room beside the other tiles on a square chart
