"""Local refinement: the hat matrices, the field's estimate on bursts with known
motion (a constant shift, rolling-shutter wobble, none at all), --local in the
pipeline and its report."""

from __future__ import annotations

import numpy as np
import pytest

from superres_gpu.align import AlignConfig, align, frame_levels
from superres_gpu.api import superresolve
from superres_gpu.backends import base as S
from superres_gpu.backends import get_backend
from superres_gpu.backends.numpy_backend import field_at
from superres_gpu.errors import ConfigError
from superres_gpu.local import STATS, LocalConfig, LocalRefiner, frame_report, hat_matrix
from superres_gpu.metrics import psnr
from superres_gpu.reference import Reference
from superres_gpu.synth import CameraSpec, MotionSpec, dense_map_error, make_burst, recipe_burst
from tolerances import TOL

B = get_backend("numpy")
MID = CameraSpec(blur_sigma=0.5, noise_gain=0.001, noise_floor=0.005, jpeg_quality=92)


def test_hat_matrix_is_the_transposed_interpolation(rng):
    """Row j: node j's hat over one axis's pixels; columns sum to 1; A^T v is
    the field's clamped bilinear interpolation of node values v there (also
    on a coarser level)."""
    for level, n_px, cell in ((0, 100, 32.0), (1, 61, 24.0)):
        nodes = int(np.ceil(n_px * 2**level / cell))
        A = hat_matrix(n_px, level, cell, nodes)
        np.testing.assert_allclose(A.sum(axis=0), 1.0, atol=1e-6)
        v = rng.normal(size=nodes).astype(np.float32)
        field = np.zeros((1, nodes, 2), np.float32)
        field[0, :, 0] = v
        p = 2**level * (np.arange(n_px) + 0.5) - 0.5
        dx, _ = field_at(field, 1.0 / cell, p, np.zeros_like(p))
        np.testing.assert_allclose(A.T @ v, dx, atol=1e-5)


def _measure(burst, option="on", frames=None, **cfg):
    """Per frame: (global map error, map error with the field, the frame's figures)."""
    ref = Reference(B, burst.frames[0], AlignConfig(model="similarity"))
    lr = LocalRefiner(B, ref, option, LocalConfig(**cfg))
    out = []
    for i in frames or range(1, len(burst.frames)):
        lv = frame_levels(B, ref, burst.frames[i])
        st = align(B, ref, lv)
        res = lr.refine(lv, st)
        out.append(dense_map_error(burst, i, st[S.S_TINV], res.field, res.cell) + (frame_report(res.stats),))
    return lr, out


def test_a_constant_shift_is_recovered_by_every_textured_node():
    T1 = np.array([[1, 0, 0.5], [0, 1, -0.25], [0, 0, 1.0]])
    burst = make_burst(2, 256, 192, 2.0, 4, MotionSpec(0, 0, 0), CameraSpec(noise_gain=0, noise_floor=0.0005,
                                                                             jpeg_quality=None),
                       seed=3, transforms=[np.eye(3), T1])
    ref = Reference(B, burst.frames[0], AlignConfig(model="translation"))
    lr = LocalRefiner(B, ref, "on", LocalConfig(cells=(32,)))
    res = lr.refine(frame_levels(B, ref, burst.frames[1]), S.identity_state())  # the global model left out
    fig = frame_report(res.stats)
    assert fig["applied"] and fig["accepted_tiles"] >= 0.7 * fig["tiles"]
    inner = res.field[1:-1, 1:-1].reshape(-1, 2)
    # the frame is read at Tinv (p + D): D = T1^-1 p - p
    np.testing.assert_array_less(np.abs(inner - [-0.5, 0.25]), TOL["local_constant_shift_px"][0])
    assert fig["residual_after"] < 0.5 * fig["residual_before"]


def test_a_large_local_shift_is_found_by_the_tiles_phase_correlation():
    T1 = np.array([[1, 0, 6.3], [0, 1, 4.1], [0, 0, 1.0]])
    burst = make_burst(2, 256, 192, 2.0, 4, MotionSpec(0, 0, 0), CameraSpec(noise_gain=0, noise_floor=0.0005,
                                                                             jpeg_quality=None),
                       seed=3, transforms=[np.eye(3), T1])
    ref = Reference(B, burst.frames[0], AlignConfig(model="translation"))
    lr = LocalRefiner(B, ref, "on", LocalConfig(cells=(32,)))
    res = lr.refine(frame_levels(B, ref, burst.frames[1]), S.identity_state())
    inner = res.field[1:-1, 1:-1].reshape(-1, 2)
    np.testing.assert_allclose(np.median(inner, axis=0), [-6.3, -4.1], atol=TOL["local_large_shift_px"][0])
    assert frame_report(res.stats)["applied"]


def test_rolling_shutter_wobble_is_followed():
    burst = make_burst(4, 384, 288, 2.0, 4, MotionSpec(shift_sigma=2.0, rotation_sigma_deg=0.2, zoom_sigma=0.001,
                                                       rolling_shutter_px=0.3), MID, seed=5)
    lr, rows = _measure(burst)
    glob = np.sqrt(np.mean([r[0] for r in rows]))
    loc = np.sqrt(np.mean([r[1] for r in rows]))
    assert glob > 0.1  # the wobble is there, and the global model cannot follow it
    assert loc < TOL["local_rolling_gain"][0] * glob, (glob, loc)
    for (_, _, fig), (amp, _) in zip(rows, burst.rolling_shutter[1:]):
        if abs(amp) > 0.15:  # a wobble of that size is significant, and auto applies it
            assert fig["applied"] and fig["significance"] > LocalConfig().auto_chi2, (amp, fig)
        assert fig["residual_after"] < fig["residual_before"]
    assert 2 * lr.cell in (64.0, 96.0, 128.0)  # tiles of 64 to 128 px


def test_static_frames_are_left_alone_by_auto():
    burst = recipe_burst("test-small")
    _, rows = _measure(burst, "auto", frames=[1, 2, 3])
    for _, _, fig in rows:
        assert fig["significance"] < TOL["local_static_significance"][0], fig
        assert not fig["applied"] and fig["field_rms_px"] < 0.1  # what was estimated: noise


def test_flat_frames_accept_no_tile_and_get_no_field():
    """Without texture there is nothing to measure: every node is rejected and the field stays 0."""
    rng = np.random.default_rng(4)
    frames = [np.clip(128 + rng.normal(0, 2, (120, 160)), 0, 255).astype(np.uint8) for _ in range(2)]
    ref = Reference(B, frames[0], AlignConfig(model="translation"))
    lr = LocalRefiner(B, ref, "on")
    res = lr.refine(frame_levels(B, ref, frames[1]), S.identity_state())
    fig = frame_report(res.stats)
    assert fig["accepted_tiles"] == 0 and not fig["applied"]
    assert not res.field.any()


def test_figures_layout():
    fig = frame_report(np.arange(len(STATS), dtype=np.float64))
    assert fig["applied"] is False and fig["accepted_tiles"] == 1 and fig["tiles"] == 2


def test_local_in_the_pipeline_and_its_report():
    burst = recipe_burst("test-small", frames=4)
    off, rep_off = superresolve(burst.frames, 2.0, backend="numpy", local="off")
    on, rep_on = superresolve(burst.frames, 2.0, backend="numpy", local="on")
    assert rep_off["local"] == {"option": "off", "active": False}
    assert rep_on["local"]["active"] and rep_on["local"]["tile_px"] == 2 * rep_on["local"]["node_spacing_px"]
    assert rep_on["frames"][0]["local"] is None  # the reference
    for f in rep_on["frames"][1:]:
        assert set(f["local"]) >= {"applied", "accepted_tiles", "field_rms_px", "field_max_px", "residual_before",
                                   "residual_after"}
    # a static burst loses nothing with the field on
    assert psnr(on, burst.truth_blurred, 8) > psnr(off, burst.truth_blurred, 8) - TOL["local_static_db"][0]


def test_auto_stops_refining_a_static_burst_after_its_first_frames():
    burst = recipe_burst("test-small", frames=6)
    _, rep = superresolve(burst.frames, 2.0, backend="numpy")  # --local auto is the default
    assert rep["local"]["option"] == "auto" and rep["local"]["stopped_after"] == 3
    probed = [f["local"] for f in rep["frames"][1:4]]
    assert all(p is not None and not p["applied"] for p in probed)
    assert all(f["local"] is None for f in rep["frames"][4:])


def test_local_with_the_kernel_merge():
    burst = recipe_burst("test-small", frames=3)
    off, _ = superresolve(burst.frames, 2.0, backend="numpy", local="off", merge="kernel")
    on, rep = superresolve(burst.frames, 2.0, backend="numpy", local="on", merge="kernel")
    assert rep["local"]["active"] and all(f["local"]["applied"] for f in rep["frames"][1:])
    assert psnr(on, burst.truth_blurred, 8) > psnr(off, burst.truth_blurred, 8) - TOL["local_static_db"][0]
    with pytest.raises(ConfigError, match="--local value"):
        superresolve(burst.frames, 2.0, backend="numpy", local="sometimes")
