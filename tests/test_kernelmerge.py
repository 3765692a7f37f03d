"""The kernel-regression merge: sums, hole filling, and what it keeps above one frame's Nyquist frequency."""

from __future__ import annotations

import numpy as np
import pytest

from superres_gpu.backends import base as S
from superres_gpu.backends import get_backend
from superres_gpu.kernelmerge import (FLAT_SIGMA_FRAME_PX, HOLE_WEIGHT, KERNEL_SHAPES, KernelAccumulator, kernel_reach,
                                      kernel_shape, kernel_sigma)
from superres_gpu.merge import Accumulator
from superres_gpu.metrics import psnr
from superres_gpu.pipeline import PipelineConfig, run
from superres_gpu.restore import sharpen
from superres_gpu.state import transform_state
from tolerances import TOL, tol

B = get_backend("numpy")


def _state(T):
    return transform_state(np.asarray(T, dtype=np.float64))


def test_kernel_sigma_scales_with_the_output():
    assert kernel_sigma(2.0) == pytest.approx(0.6)
    assert kernel_sigma(4.0) == pytest.approx(2 * kernel_sigma(2.0))
    with pytest.raises(ValueError):
        KernelAccumulator(B, 10, 10, 3, 2.0, 255.0, sigma=0.0)


@pytest.mark.parametrize("scale", [1.0, 2.0, 3.0])
def test_constant_stays_constant_under_motion(scale):
    frame = np.full((24, 30, 3), 120, np.uint8)
    acc = KernelAccumulator(B, 30, 24, 3, scale, 255.0)
    acc.add(frame, S.identity_state())
    acc.add(frame, _state([[np.cos(0.01), -np.sin(0.01), 0.37], [np.sin(0.01), np.cos(0.01), -1.2], [0, 0, 1]]))
    out = acc.result()
    atol, rtol = tol("merge_flat_levels")
    np.testing.assert_allclose(out.astype(np.float64) / 257.0, 120, atol=atol, rtol=rtol)


def test_holes_are_filled_from_the_wider_kernel_never_black():
    """Where the robust weights leave too little kernel weight, the wider kernel fills in."""
    frame = np.full((40, 40, 3), 90, np.uint8)
    frame[:, 20:] = 160
    acc = KernelAccumulator(B, 40, 40, 3, 2.0, 255.0)
    w = np.ones((20, 20), np.float32)
    w[8:12, 3:7] = 0.0  # a rejected patch (level-1 px), in the flat part
    acc.add(frame, S.identity_state(), w, 1)
    hole = acc.den < HOLE_WEIGHT
    assert hole.sum() > 20
    mean, covered = acc.take_mean()
    assert covered.min() == 1.0
    atol, rtol = tol("merge_flat_levels")
    np.testing.assert_allclose(mean[hole], 90.0, atol=atol * 255, rtol=rtol)


def test_identity_channel_maps_give_the_same_merge_holes_included(rng):
    """With channel maps each channel is its own kernel regression (a plane of
    den per channel); identity maps give exactly the merge without them,
    where the wider kernel fills holes too."""
    from superres_gpu.tca import ChannelTCA, TCAEstimate

    frame = (rng.random((40, 40, 3)) * 255).astype(np.uint8)
    w = np.ones((20, 20), np.float32)
    w[8:12, 3:7] = 0.0  # a hole
    none = ChannelTCA(0.0, 19.5, 19.5, 0.0)
    outs = []
    for maps in (False, True):
        acc = KernelAccumulator(B, 40, 40, 3, 2.0, 255.0)
        if maps:
            acc.correct_chromatic_aberration(TCAEstimate(none, none, 40, 40, 1))
            assert acc.den.shape == (80, 80, 3)
        acc.add(frame, S.identity_state(), w, 1)
        assert np.any(acc.coverage() < HOLE_WEIGHT)
        outs.append(acc.take_mean())
    np.testing.assert_array_equal(outs[1][0], outs[0][0])
    np.testing.assert_array_equal(outs[1][1], outs[0][1])


def test_dropped_frames_add_nothing():
    frame = np.full((12, 12), 50, np.uint8)
    acc = KernelAccumulator(B, 12, 12, 1, 2.0, 255.0)
    st = S.identity_state()
    st[S.S_ACCEPT] = 0.0
    acc.add(frame, st)
    assert not acc.coverage().any()


def _merge(kind, burst, sigma=None):
    w, h = burst.params["width"], burst.params["height"]
    acc = kind(B, w, h, 3, burst.scale, 255.0) if sigma is None else kind(B, w, h, 3, burst.scale, 255.0, sigma)
    for f, T in zip(burst.frames, burst.transforms):
        acc.add(f, _state(T))
    return acc


def test_kernel_merge_keeps_detail_beyond_one_frames_nyquist(medium_burst):
    """With the true motion and the same deconvolution of optics, pixels and merge
    kernel, the kernel merge is closer to the sharp scene than the Lanczos mean:
    it has placed the samples where they fell instead of interpolating each frame."""
    b = medium_burst
    optics = b.params["camera"]["blur_sigma"]
    scores = {}
    for name, kind in (("lanczos", Accumulator), ("kernel", KernelAccumulator)):
        acc = _merge(kind, b)
        mean, covered = acc.take_mean()
        sharpen(B, mean, b.scale, len(b.frames), getattr(acc, "sigma", None), optics, lam=0.01)
        scores[name] = psnr(acc.encode(mean, covered), b.truth, margin=8)
    gain = scores["kernel"] - scores["lanczos"]
    assert gain > TOL["kernel_vs_lanczos_sharp_db"][0], f"{scores}"


def test_kernel_merge_through_the_pipeline(tmp_path, burst_dir, small_burst):
    import tifffile

    res = run(PipelineConfig(inputs=[str(burst_dir)], output=str(tmp_path / "raw.tif"), backend="numpy",
                             merge="kernel", cull=False, sharpen="off"))
    assert res.report["merge"] == "kernel" and res.report["kernel_sigma"] == pytest.approx(0.6)
    assert res.report["restoration"] is None and res.shape == (240, 320, 3)
    assert tifffile.imread(tmp_path / "raw.tif").min() > 0  # no holes, not even at the borders
    res = run(PipelineConfig(inputs=[str(burst_dir)], output=str(tmp_path / "k.tif"), backend="numpy",
                             merge="kernel", cull=False))
    rest = res.report["restoration"]
    assert rest["noise"] > 0 and rest["lambda"] > 0 and res.report["optics_sigma"] == pytest.approx(0.5)
    img = tifffile.imread(tmp_path / "k.tif")
    one = Accumulator(B, 160, 120, 3, 2.0, 255.0)
    one.add(small_burst.frames[0], S.identity_state())
    gain = psnr(img, small_burst.truth, margin=8) - psnr(one.result(), small_burst.truth, margin=8)
    assert gain > TOL["kernel_pipeline_gain_db"][0]


def _edge_luma(h=40, w=48, noise=0.0, rng=None):
    """A vertical step (0.2 | 0.8) blurred a little, optionally noisy."""
    import cv2

    img = np.full((h, w), 0.2, np.float32)
    img[:, w // 2:] = 0.8
    img = cv2.GaussianBlur(img, (0, 0), 0.7)
    if noise:
        img += rng.normal(0, noise, img.shape).astype(np.float32)
    return img


def _stds(shape_map, y, x):
    """(smaller, larger) standard deviation of the kernel at (y, x) and the larger one's direction (x, y)."""
    qa, qb, qc = (float(shape_map[k, y, x]) for k in range(3))
    P = -2.0 * np.array([[qa, qb / 2], [qb / 2, qc]])  # Omega^-1
    vals, vecs = np.linalg.eigh(P)  # ascending: the larger std first
    return 1 / np.sqrt(vals[1]), 1 / np.sqrt(vals[0]), vecs[:, 0]


def test_kernel_shape_stretches_along_edges_and_stays_round_where_flat():
    sigma, scale = kernel_sigma(2.0), 2.0
    m = kernel_shape(B, _edge_luma(), scale, 0.01)
    assert m.shape == (3, 40, 48) and m.dtype == np.float32
    across, along, direction = _stds(m, 20, 24)
    assert along > 1.3 * sigma and across < 0.8 * sigma  # A ~ 2 on a clean straight edge
    assert abs(direction[1]) > 0.99  # stretched along the edge: the y axis
    assert along <= kernel_reach(scale) * (1 + 1e-6)
    lo, hi, _ = _stds(m, 20, 4)  # flat: no gradient above the noise's
    atol, rtol = tol("kernel_shape_flat")
    np.testing.assert_allclose([lo, hi], FLAT_SIGMA_FRAME_PX * scale, atol=atol, rtol=rtol)


def test_kernel_shape_is_round_where_noise_hides_the_detail(rng):
    """The same edge with its contrast below the noise's gradient: the local SNR
    is low, so the kernel is the round one that only denoises."""
    faint = 0.2 + (_edge_luma() - 0.2) * 0.002
    m = kernel_shape(B, faint, 2.0, 0.05)
    lo, hi, _ = _stds(m, 20, 24)
    atol, rtol = tol("kernel_shape_flat")
    np.testing.assert_allclose([lo, hi], FLAT_SIGMA_FRAME_PX * 2.0, atol=atol, rtol=rtol)


@pytest.mark.parametrize("scale", [1.0, 2.0, 3.0])
def test_anisotropic_kernel_keeps_a_constant_constant(scale, rng):
    frame = np.full((24, 30, 3), 120, np.uint8)
    acc = KernelAccumulator(B, 30, 24, 3, scale, 255.0)
    acc.steer(rng.random((24, 30)).astype(np.float32), 0.01)  # any orientation, any strength
    acc.add(frame, S.identity_state())
    acc.add(frame, _state([[np.cos(0.01), -np.sin(0.01), 0.37], [np.sin(0.01), np.cos(0.01), -1.2], [0, 0, 1]]))
    atol, rtol = tol("merge_flat_levels")
    np.testing.assert_allclose(acc.result().astype(np.float64) / 257.0, 120, atol=atol, rtol=rtol)


def test_anisotropic_kernel_is_closer_to_the_sharp_scene(medium_burst):
    """True motion, the same restoration after both: steering the kernel by the
    reference's edges brings the merge closer to the sharp chart than the
    isotropic kernel (samples along an edge average, across it stay apart)."""
    from superres_gpu.restore import deconvolve, residual_noise

    b = medium_burst
    w, h = b.params["width"], b.params["height"]
    ref_noise = residual_noise(B, b.frames[0])
    scores = {}
    for shape in KERNEL_SHAPES:
        acc = KernelAccumulator(B, w, h, 3, b.scale, 255.0)
        if shape == "anisotropic":
            acc.steer(B.luma(b.frames[0]), ref_noise / 255.0)
        for f, T in zip(b.frames, b.transforms):
            acc.add(f, _state(T))
        mean, covered = acc.take_mean()
        deconvolve(B, mean, b.scale, acc.sigma, 255.0, ref_noise, b.params["camera"]["blur_sigma"])
        scores[shape] = psnr(acc.encode(mean, covered), b.truth, margin=8)
    assert scores["anisotropic"] - scores["isotropic"] > TOL["anisotropic_vs_isotropic_db"][0], scores


def test_kernel_shape_through_the_pipeline(tmp_path, burst_dir):
    import tifffile

    outs = {}
    for shape in KERNEL_SHAPES:
        res = run(PipelineConfig(inputs=[str(burst_dir)], output=str(tmp_path / f"{shape}.tif"), backend="numpy",
                                 merge="kernel", kernel_shape=shape, cull=False, sharpen="off"))
        assert res.report["kernel_shape"] == shape
        outs[shape] = tifffile.imread(tmp_path / f"{shape}.tif")
        assert outs[shape].min() > 0
    assert np.abs(outs["anisotropic"].astype(np.int64) - outs["isotropic"]).max() > 0
    res = run(PipelineConfig(inputs=[str(burst_dir)], output=str(tmp_path / "r.tif"), backend="numpy", cull=False,
                             merge="robust"))
    assert res.report["kernel_shape"] is None  # not a kernel merge
