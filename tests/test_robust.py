"""The robust merge and the mask: no ghosts where things moved, full noise
reduction where nothing did, masked pixels from the reference alone."""

from __future__ import annotations

import json

import numpy as np
import pytest

from superres_gpu import cli
from superres_gpu.metrics import psnr
from superres_gpu.pipeline import PipelineConfig, run
from superres_gpu.synth import CameraSpec, MotionSpec, Mover, make_burst, mover_mask
from tolerances import TOL

NOISE = {
    "low": CameraSpec(noise_gain=0.0005, noise_floor=0.002, jpeg_quality=95),
    "mid": CameraSpec(noise_gain=0.002, noise_floor=0.008, jpeg_quality=92),
}


@pytest.mark.parametrize("level", ["low", "mid"])
def test_robust_merge_leaves_no_ghosts_and_keeps_static_detail(tmp_path, level):
    import tifffile

    movers = [Mover(2, 40, 60, 70, 60, 1), Mover(5, 150, 100, 80, 70, 2), Mover(7, 200, 30, 60, 90, 3),
              Mover(9, 90, 140, 90, 60, 4)]
    b = make_burst(12, 320, 240, seed=8, motion=MotionSpec(shift_sigma=2.5, rotation_sigma_deg=0.25),
                   camera=NOISE[level], movers=movers)
    b.write(tmp_path / "b")
    out = {}
    for merge in ("robust", "mean"):
        run(PipelineConfig(inputs=[str(tmp_path / "b")], output=str(tmp_path / f"{merge}.tif"), merge=merge,
                           backend="numpy", cull=False, sharpen=False))  # the merge alone is under test
        out[merge] = tifffile.imread(tmp_path / f"{merge}.tif")
    one = tmp_path / "one"
    one.mkdir()
    (one / "a.jpg").write_bytes(b.encoded[0])
    (one / "b.jpg").write_bytes(b.encoded[0])  # the reference twice: the reference's own merge
    run(PipelineConfig(inputs=[str(one)], output=str(tmp_path / "single.tif"), backend="numpy", cull=False,
                       sharpen=False, merge="robust"))
    single = tifffile.imread(tmp_path / "single.tif")
    moving = mover_mask(b)
    static = ~moving
    t = b.truth_blurred
    p_robust, p_mean, p_single = (psnr(x, t, mask=moving) for x in (out["robust"], out["mean"], single))
    assert p_mean < p_single - TOL["mean_ghost_db"][0], "the plain mean should ghost in moving regions"
    assert p_robust > p_single - TOL["robust_vs_reference_db"][0], \
        f"robust {p_robust:.2f} dB vs the reference's own {p_single:.2f} dB"
    s_robust, s_mean = (psnr(x, t, mask=static) for x in (out["robust"], out["mean"]))
    assert abs(s_robust - s_mean) < TOL["robust_static_db"][0], \
        f"static regions: robust {s_robust:.2f} vs mean {s_mean:.2f} dB"


def test_masked_region_comes_from_the_reference_alone(tmp_path):
    import cv2
    import tifffile

    b = make_burst(6, 256, 192, seed=2, camera=NOISE["mid"], movers=[Mover(3, 100, 60, 60, 60, 5)])
    b.write(tmp_path / "b")
    m = np.zeros((192, 256, 4), np.uint8)
    m[40:140, 80:180] = (0, 0, 255, 255)  # red strokes over where the mover passes
    cv2.imwrite(str(tmp_path / "b" / "mask.png"), m)
    for merge in ("robust", "mean"):
        run(PipelineConfig(inputs=[str(tmp_path / "b")], output=str(tmp_path / f"{merge}.tif"), merge=merge,
                           backend="numpy", cull=False, sharpen=False))
    one = tmp_path / "one"
    one.mkdir()
    (one / "a.jpg").write_bytes(b.encoded[0])
    (one / "b.jpg").write_bytes(b.encoded[0])
    # the reference resampled alone: its copy aligns to it exactly (against a template, the two merged and
    # smoothed, it lands a little off the identity)
    run(PipelineConfig(inputs=[str(one)], output=str(tmp_path / "single.tif"), backend="numpy", cull=False,
                       mask="none", sharpen=False, merge="robust", refine=False))
    single = tifffile.imread(tmp_path / "single.tif").astype(int)
    inner = (slice(2 * 50, 2 * 130), slice(2 * 90, 2 * 170))  # well inside the mask, away from its soft edge
    for merge in ("robust", "mean"):
        img = tifffile.imread(tmp_path / f"{merge}.tif").astype(int)
        assert np.abs(img[inner] - single[inner]).max() <= TOL["merge_identical_codes"][0], merge


def test_weights_png_and_rejection_in_the_report(tmp_path):
    movers = [Mover(2, 40, 60, 70, 60, 1)]
    b = make_burst(6, 256, 192, seed=3, camera=NOISE["mid"], movers=movers)
    b.write(tmp_path / "b")
    rep = tmp_path / "r.json"
    png = tmp_path / "w.png"
    assert cli.main(["run", str(tmp_path / "b"), "-o", str(tmp_path / "o.tif"), "--report", str(rep),
                     "--weights-png", str(png), "-q", "--no-cull"]) == 0
    r = json.loads(rep.read_text())
    rej = {f["path"][-13:]: f["rejected_fraction"] for f in r["frames"]}
    assert rej["frame_002.jpg"] > TOL["mover_rejected_fraction"][0]  # the mover's frame loses its mover's pixels...
    others = [v for k, v in rej.items() if v is not None and k != "frame_002.jpg"]
    assert max(others) < 0.5 * rej["frame_002.jpg"], rej  # ...far more than any other frame loses
    import cv2

    pic = cv2.imread(str(png))
    assert pic.shape[:2] == (96, 128)
    assert (pic[..., 2].astype(int) - pic[..., 1] > 100).sum() > 200  # red where the mover was rejected


# ---- raw frames: the DNG noise profile instead of the burst-wide level --------------------------------------

def _two_tone_scene(h=128, w=192, dark_thirds=2):
    """Linear scene: the left ``dark_thirds`` thirds dark (0.01), the rest bright
    (0.8), flat apart from a gentle ramp, so that edges explain nothing."""
    y, x = np.mgrid[0:h, 0:w]
    v = np.where(x < dark_thirds * w // 3, 0.01, 0.8) * (1.0 + 0.1 * y / h)
    return np.repeat(v[..., None], 3, axis=2)


def _raw_weights(tmp_path, frames, profile=(2e-4, 1e-6), use_profile=True):
    """Per-frame (weights, d^2 / c, expected) of DNG frames written from the
    linear ``frames`` with noise drawn from ``profile``, against the first
    frame, all at identity alignment (the frames are static)."""
    from dng_util import write_dng

    from superres_gpu.align import frame_levels
    from superres_gpu.backends import get_backend
    from superres_gpu.decode import read_frame
    from superres_gpu.discover import probe
    from superres_gpu.options import AlignConfig
    from superres_gpu.reference import Reference
    from superres_gpu.robust import NoiseModel, RobustWeights

    B = get_backend("numpy")
    tmp_path.mkdir(exist_ok=True)
    infos = [probe(write_dng(tmp_path / f"f{k}.dng", f, noise_profile=profile, noise_seed=k))
             for k, f in enumerate(frames)]
    model = NoiseModel.from_raw(infos[0].raw) if use_profile else None
    hosts = [read_frame(i) for i in infos]
    ref = Reference(B, B.upload_frame(hosts[0]), AlignConfig(), None)
    weights = RobustWeights(B, ref, noise=model)
    out = []
    for host in hosts[1:]:
        w, _ = weights.for_frame(frame_levels(B, ref, B.upload_frame(host)), ref.state())
        out.append(w)
    return out, weights


def _regions(shape, dark_thirds=2):
    h, w = shape
    dark = (slice(8, h - 8), slice(8, dark_thirds * w // 3 - 8))
    bright = (slice(8, h - 8), slice(dark_thirds * w // 3 + 8, w - 8))
    return dark, bright


def test_noise_profile_maps_to_the_level_residual_variance(tmp_path):
    """The model's expected (frame - reference) variance at level 1 is what
    flat static DNG frames with noise drawn from the profile show, dark and bright."""
    pytest.importorskip("rawpy", reason="the raw extra (rawpy) is not installed")
    from superres_gpu.backends import get_backend
    from superres_gpu.decode import read_frame
    from superres_gpu.discover import probe

    scene = _two_tone_scene()
    _, weights = _raw_weights(tmp_path, [scene, scene])
    B = get_backend("numpy")
    a, b = (B.downsample2(B.luma(read_frame(probe(tmp_path / f"f{k}.dng")))) for k in (0, 1))
    measured, expected = (a - b) ** 2, weights.noise2
    for reg in _regions(a.shape):
        ratio = measured[reg].mean() / expected[reg].mean()
        assert abs(ratio - 1.0) < TOL["raw_noise_model_ratio"][0], f"measured / modelled variance {ratio:.3f}"


def test_noise_profile_keeps_static_bright_detail_and_still_rejects_a_mover(tmp_path):
    """Mostly dark frame: the burst-wide median is the shadows' noise, so static
    bright content looks like motion to the measured level; with the profile
    neither region of the static scene is left out, and a faint mover in the
    shadows still is."""
    pytest.importorskip("rawpy", reason="the raw extra (rawpy) is not installed")
    scene = _two_tone_scene()
    mover = scene.copy()
    box = (slice(40, 80), slice(40, 80))  # level-0 px, in the dark part
    mover[box] += 0.01  # one stop over the shadows: faint, but ~14 sigma of their level-1 noise
    frames = [scene, scene, scene, mover]
    rej = {}
    for use in (False, True):
        ws, weights = _raw_weights(tmp_path / str(use), frames, use_profile=use)
        assert weights.noise_source == ("noise profile" if use else "measured")
        dark, bright = _regions(ws[0].shape)
        static = ws[:2]
        rej[use] = {name: float(np.mean([1.0 - w[reg] for w in static])) for name, reg in
                    (("dark", dark), ("bright", bright))}
        inner = (slice(40 // 2 + 3, 80 // 2 - 3), slice(40 // 2 + 3, 80 // 2 - 3))
        rej[use]["mover"] = float(np.mean(1.0 - ws[2][inner]))
    assert rej[False]["bright"] > TOL["raw_static_rejection"][0] * 4, rej  # the failure the profile fixes
    for name in ("dark", "bright"):
        assert rej[True][name] <= TOL["raw_static_rejection"][0], (name, rej)
        assert rej[True][name] <= rej[False][name] + 1e-6, (name, rej)
    assert rej[True]["mover"] >= TOL["raw_mover_rejection"][0], rej


def test_noise_profile_sees_faint_motion_in_the_shadows_of_a_bright_frame(tmp_path):
    """Mostly bright frame: the burst-wide median is the highlights' noise, so
    the shadows look noisier than they are and a faint mover there passes as
    noise; the profile knows the shadows' own level and leaves it out."""
    pytest.importorskip("rawpy", reason="the raw extra (rawpy) is not installed")
    scene = _two_tone_scene(dark_thirds=1)
    mover = scene.copy()
    box = (slice(40, 80), slice(24, 52))  # level-0 px: in the dark third, inside the weights' margin, off the edge
    mover[box] += 0.01
    rej = {}
    for use in (False, True):
        ws, _ = _raw_weights(tmp_path / str(use), [scene, scene, mover], use_profile=use)
        dark, bright = _regions(ws[0].shape, dark_thirds=1)
        inner = (slice(40 // 2 + 3, 80 // 2 - 3), slice(24 // 2 + 3, 52 // 2 - 3))
        rej[use] = {"mover": float(np.mean(1.0 - ws[1][inner])),
                    "static": max(float(np.mean(1.0 - ws[0][reg])) for reg in (dark, bright))}
    assert rej[False]["mover"] < 0.5, rej  # the failure the profile fixes
    assert rej[True]["mover"] >= TOL["raw_mover_rejection"][0], rej
    assert rej[True]["static"] <= TOL["raw_static_rejection"][0], rej


def test_noise_model_figures():
    """The level factor from the [1, 3, 3, 1]/8 taps, the Bayer mapping, and what
    carries no usable profile."""
    from superres_gpu.robust import NoiseModel

    assert NoiseModel.level_factor(1) == pytest.approx((20 / 64) ** 2)
    raw = {"noise_profile": [[2e-4, 1e-6]] * 3, "cfa_pattern": "RGBG", "cfa_repeat": [2, 2],
           "camera_white_balance": [1.0, 1.0, 1.0, 0.0], "color_matrix": np.eye(3).tolist()}
    m = NoiseModel.from_raw(raw)
    w = np.array([0.299, 0.587, 0.114])
    p = np.array([0.25, 0.5, 0.25])
    assert m.slope == pytest.approx(2e-4 * np.sum(w * w / p)) and m.floor == pytest.approx(1e-6 * np.sum(w * w / p))
    assert NoiseModel.from_raw({**raw, "noise_profile": None}) is None
    assert NoiseModel.from_raw({**raw, "cfa_repeat": [6, 6]}) is None  # X-Trans: not a Bayer CFA
    assert NoiseModel.from_raw(None) is None
    with pytest.raises(ValueError, match="level 1"):
        m.variance(np.zeros((2, 2), np.float32), 0)


@pytest.mark.gpu
def test_noise_profile_weights_agree_on_both_backends(tmp_path):
    pytest.importorskip("rawpy", reason="the raw extra (rawpy) is not installed")
    from conftest import require_gpu

    require_gpu()
    from dng_util import write_dng

    from superres_gpu.align import frame_levels
    from superres_gpu.backends import get_backend
    from superres_gpu.decode import read_frame
    from superres_gpu.discover import probe
    from superres_gpu.options import AlignConfig
    from superres_gpu.reference import Reference
    from superres_gpu.robust import NoiseModel, RobustWeights

    scene = _two_tone_scene()
    infos = [probe(write_dng(tmp_path / f"f{k}.dng", scene, noise_seed=k)) for k in range(2)]
    hosts = [read_frame(i) for i in infos]
    model = NoiseModel.from_raw(infos[0].raw)
    out = []
    for name in ("numpy", "cupy"):
        B = get_backend(name)
        ref = Reference(B, B.upload_frame(hosts[0]), AlignConfig(), None)
        weights = RobustWeights(B, ref, noise=model)
        w, _ = weights.for_frame(frame_levels(B, ref, B.upload_frame(hosts[1])), ref.state())
        out.append(B.asnumpy(w))
    np.testing.assert_allclose(out[1], out[0], atol=TOL["gpu_robust_weight"][0])


def _aligned(B, ref, host):
    from superres_gpu.align import align, frame_levels

    levels = frame_levels(B, ref, B.upload_frame(host))
    return levels, align(B, ref, levels)


def test_noise_variance_reads_the_noise_of_a_textured_frame(rng):
    from superres_gpu.backends import get_backend
    from superres_gpu.cull import estimate_noise
    from superres_gpu.robust import noise_variance

    B = get_backend("numpy")
    y, x = np.mgrid[0:240, 0:320]
    scene = (0.5 + 0.3 * np.sin(x / 7.0) * np.cos(y / 11.0)).astype(np.float32)
    scene[:, 160:] = 0.4 + 0.1 * y[:, 160:] / 240.0  # a calm half
    for sigma in (0.005, 0.02):
        img = (scene + rng.standard_normal(scene.shape) * sigma).astype(np.float32)
        got = float(np.sqrt(noise_variance(B, img)))
        assert abs(got / sigma - 1) < TOL["noise_estimate_rel"][0], (got, sigma)
        np.testing.assert_allclose(got, estimate_noise(img), rtol=TOL["noise_variance_vs_frame_estimator"][1])


def test_check_keeps_frames_of_the_scene_and_drops_a_frame_of_other_content(small_burst):
    from superres_gpu.align import AlignConfig
    from superres_gpu.backends import base as S
    from superres_gpu.backends import get_backend
    from superres_gpu.reference import Reference
    from superres_gpu.robust import DISAGREE_LIMIT, RobustWeights

    B = get_backend("numpy")
    frames = small_burst.frames
    ref = Reference(B, B.upload_frame(frames[0]), AlignConfig(), None)
    weights = RobustWeights(B, ref)
    for host in frames[1:]:
        levels, state = _aligned(B, ref, host)
        q = float(weights.check(levels, state, weights.residual(levels, state)))
        assert q < TOL["disagreement_genuine"][0] and state[S.S_ACCEPT] == 1.0, q
    # the same frame with its detail inverted within 8x8 blocks (the blocks' means kept, as a
    # damaged JPEG table's may be): it still aligns, but differs from the reference almost everywhere
    changed = frames[1].astype(np.float64)
    mean = changed.reshape(15, 8, 20, 8, 3).mean(axis=(1, 3), keepdims=True)
    changed = mean - (changed.reshape(15, 8, 20, 8, 3) - mean)
    changed = np.clip(changed.reshape(frames[1].shape), 0, np.iinfo(frames[1].dtype).max).astype(frames[1].dtype)
    levels, state = _aligned(B, ref, changed)
    assert state[S.S_ACCEPT] == 1.0  # aligned
    q = float(weights.check(levels, state, weights.residual(levels, state)))
    assert q > DISAGREE_LIMIT
    assert state[S.S_ACCEPT] == 0.0 and state[S.S_STATUS] == S.STATUS_DISAGREES


def test_check_leaves_a_frame_alignment_dropped_as_it_was(small_burst):
    from superres_gpu.align import AlignConfig
    from superres_gpu.backends import base as S
    from superres_gpu.backends import get_backend
    from superres_gpu.reference import Reference
    from superres_gpu.robust import RobustWeights

    B = get_backend("numpy")
    ref = Reference(B, B.upload_frame(small_burst.frames[0]), AlignConfig(), None)
    weights = RobustWeights(B, ref)
    levels, state = _aligned(B, ref, small_burst.frames[1])
    state[S.S_ACCEPT], state[S.S_STATUS] = 0.0, S.STATUS_LOW_CORR
    weights.check(levels, state, weights.residual(levels, state))
    assert state[S.S_STATUS] == S.STATUS_LOW_CORR
