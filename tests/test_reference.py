"""The reference: pyramid levels, point selection, masks, phase-correlation level."""

from __future__ import annotations

import numpy as np

from superres_gpu.align import AlignConfig
from superres_gpu.backends import base as S
from superres_gpu.backends import get_backend
from superres_gpu.reference import Reference, downsample_mask, hann_window, pc_level_for, select_points

B = get_backend("numpy")


def test_mask_keeps_points_out_of_masked_region(small_burst):
    h, w = small_burst.frames[0].shape[:2]
    mask = np.zeros((h, w), bool)
    mask[:, : w // 2] = True
    r = Reference(B, small_burst.frames[0], AlignConfig(), mask=mask)
    for level, pts in r.points.items():
        x0 = pts[S.PT_X]
        assert pts.shape[1] > 0
        assert np.all(x0 >= w // 2 - 2 ** (level + 1)), f"level {level} uses masked pixels"
        m = r.masks[level]
        assert m.shape == r.level_image(level).shape and m[:, : m.shape[1] // 2 - 1].all()


def test_select_points_spreads_over_cells(rng):
    score = rng.random((100, 160))
    score[:, :80] *= 0.01  # the left half is much weaker...
    ys, xs = select_points(score, 400, 16)
    assert 0.7 * 400 <= ys.size <= 400
    assert (xs < 80).sum() > 150  # ...but still gets its share of points
    ys2, xs2 = select_points(score, 10**6, 16)
    assert ys2.size == score.size
    score[:50] = 0  # never a pixel without score
    ys3, _ = select_points(score, 400, 16)
    assert ys3.min() >= 50


def test_downsample_mask_covers_the_filter_footprint():
    m = np.zeros((16, 16), bool)
    m[7, 7] = True
    d = downsample_mask(m)
    assert d.shape == (8, 8)
    # level-1 pixel (3, 3) holds level-0 pixel 7 in its 2x2 cell; its 4-neighbours see it through the filter
    assert d[3, 3] and d[2, 3] and d[4, 3] and d[3, 2] and d[3, 4]
    assert d.sum() == 5


def test_phase_correlation_level_and_levels():
    assert pc_level_for(512, 384, 512) == 0
    assert pc_level_for(4000, 3000, 512) == 3  # 500 x 375
    assert pc_level_for(40, 4000, 512) == 1  # stops when a side would drop below 16
    w = hann_window(5, 4)
    assert w.shape == (5, 4) and w.max() <= 1.0 and w[0].max() == 0.0


def test_reference_levels_and_images(small_burst):
    r = Reference(B, small_burst.frames[0], AlignConfig())
    assert r.levels >= 2  # the robust merge works at level 1
    assert [r.pyramid[k].shape for k in range(r.levels)][:2] == [(120, 160), (60, 80)]
    assert r.level_image(0) is r.level0 and r.level_image(1) is r.pyramid[1]
    assert r.margin(0) > r.margin(1)  # level 0 also carries the prefilter
    st = r.state()
    assert st[S.S_ACCEPT] == 1.0 and np.array_equal(st[S.S_T], np.eye(3).ravel())
