"""GPU: every kernel equals its NumPy twin; the pipeline agrees across backends.

On a CUDA device, or, where CuPy is not installed, on the CUDA host emulator
(tests/cuda_emulator); skipped with the reason otherwise, and
SUPERRES_REQUIRE_GPU=1 turns that into a failure (see conftest).  Inputs are seeded random data of
odd, non-square shapes, placed inside larger device buffers filled with NaN
(float) or the maximum value (integers), so an out-of-bounds read shows up in
the result.
"""

from __future__ import annotations

import numpy as np
import pytest

from superres_gpu.backends import base as S
from superres_gpu.backends import get_backend
from superres_gpu.geometry import MODEL_ID, MOTION_MODELS, grid_rms_error, output_size
from superres_gpu.interp import alignment_taps, bspline_prefilter_taps
from superres_gpu.kernelmerge import kernel_reach, kernel_shape
from superres_gpu.metrics import psnr
from superres_gpu.state import transform_state as state_with
from tolerances import TOL, tol

from conftest import require_gpu

pytestmark = pytest.mark.gpu
NB = get_backend("numpy")
SHAPES = [(37, 53), (64, 31), (17, 16)]


@pytest.fixture(scope="module")
def G():
    from superres_gpu.backends import get_backend

    require_gpu()  # module-scoped fixtures run before the autouse gate
    return get_backend("cupy")


def padded(G, host: np.ndarray, pad: int = 4096):
    """Upload ``host`` into the middle of a larger buffer of sentinels; return the view."""
    cp = G.cp
    if host.dtype.kind == "f":
        fill = np.nan
    else:
        fill = np.iinfo(host.dtype).max
    buf = cp.full(host.size + 2 * pad, fill, dtype=host.dtype)
    view = buf[pad : pad + host.size].reshape(host.shape)
    view[...] = cp.asarray(host)
    assert view.flags.c_contiguous
    return view


def random_T(rng):
    a = rng.normal(0, 0.01)
    return np.array([[np.cos(a) * 1.004, -np.sin(a), rng.normal(0, 2)], [np.sin(a), np.cos(a), rng.normal(0, 2)],
                     [rng.normal(0, 1e-4), rng.normal(0, 1e-4), 1.0]])


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype,channels", [(np.uint8, 3), (np.uint8, 1), (np.uint16, 3), (np.uint16, 1)])
def test_luma(G, rng, shape, dtype, channels):
    maxv = np.iinfo(dtype).max
    host = (rng.random(shape + ((3,) if channels == 3 else ())) * maxv).astype(dtype)
    out = G.asnumpy(G.luma(padded(G, host)))
    atol, rtol = tol("gpu_luma")
    np.testing.assert_allclose(out, NB.luma(host), atol=atol, rtol=rtol)


@pytest.mark.parametrize("shape", SHAPES)
def test_downsample_gradient_blur(G, rng, shape):
    host = rng.random(shape).astype(np.float32)
    dev = padded(G, host)
    atol, rtol = tol("gpu_downsample")
    np.testing.assert_allclose(G.asnumpy(G.downsample2(dev)), NB.downsample2(host), atol=atol, rtol=rtol)
    gx, gy = G.gradient(dev)
    tx, ty = NB.gradient(host)
    atol, rtol = tol("gpu_gradient")
    np.testing.assert_allclose(G.asnumpy(gx), tx, atol=atol, rtol=rtol)
    np.testing.assert_allclose(G.asnumpy(gy), ty, atol=atol, rtol=rtol)
    atol, rtol = tol("gpu_sepfilter")
    for taps in alignment_taps(1.5) + (bspline_prefilter_taps(),):
        # outputs reach sum|taps|^2 (the B-spline inverse filter's taps sum to 1 in value but 3 in magnitude)
        scale = float(np.abs(taps).sum()) ** 2
        np.testing.assert_allclose(G.asnumpy(G.sepfilter(dev, taps)), NB.sepfilter(host, taps), atol=atol * scale,
                                   rtol=rtol)


@pytest.mark.parametrize("shape", [(96, 128), (75, 61)])
def test_phase_correlation(G, rng, shape):
    h, w = shape
    big = rng.random((h + 40, w + 40)).astype(np.float32)
    ref = np.ascontiguousarray(big[20 : 20 + h, 20 : 20 + w])
    frame = np.ascontiguousarray(big[27 : 27 + h, 15 : 15 + w])
    win = np.outer(np.hanning(h), np.hanning(w)).astype(np.float32)
    surf_t = NB.phase_correlation(NB.reference_spectrum(ref, win), frame, win)
    dref, dframe, dwin = padded(G, ref), padded(G, frame), padded(G, win)
    surf_g = G.phase_correlation(G.reference_spectrum(dref, dwin), dframe, dwin)
    atol, rtol = tol("gpu_phasecorr_surface")
    np.testing.assert_allclose(G.asnumpy(surf_g), surf_t, atol=atol * float(np.abs(surf_t).max()), rtol=rtol)
    for level in (0, 3):
        st_t = S.identity_state()
        NB.peak_to_state(surf_t, st_t, level)
        st_g = G.asarray(S.identity_state())
        G.peak_to_state(surf_g, st_g, level)
        atol, rtol = tol("gpu_peak_shift")
        np.testing.assert_allclose(G.asnumpy(st_g), st_t, atol=atol * 2**level, rtol=rtol)
        assert st_t[S.S_T][2] == pytest.approx(-5 * 2**level, abs=0.2 * 2**level)


@pytest.mark.parametrize("redescend", [0.0, 1.0])
@pytest.mark.parametrize("model", MOTION_MODELS)
def test_align_reduce_update_finalize(G, rng, model, redescend):
    h, w = 61, 83
    img = rng.random((h, w)).astype(np.float32)
    n = 3001
    pts = np.empty((5, n), np.float32)
    pts[0] = rng.uniform(-5, 2 * w + 5, n)
    pts[1] = rng.uniform(-5, 2 * h + 5, n)
    pts[2] = rng.random(n)
    pts[3] = rng.normal(size=n)
    pts[4] = rng.normal(size=n)
    st = state_with(random_T(rng), S_GAIN=1.05, S_OFFSET=-0.02, S_SIGMA=0.15, S_REDESCEND=redescend)
    norm = (w - 0.5, h - 0.5, float(w))
    mid = MODEL_ID[model]
    sums_t = NB.align_reduce(img, pts, st, mid, 1, norm, 1.0, 0)
    dst = G.asarray(st)
    sums_g = G.align_reduce(padded(G, img), padded(G, pts), dst, mid, 1, norm, 1.0, 0)
    atol, rtol = tol("gpu_reduce")
    np.testing.assert_allclose(G.asnumpy(sums_g), sums_t, atol=atol, rtol=rtol)
    st_t = st.copy()
    NB.align_update(sums_t, st_t, mid, norm, 1e-6, 1e9, 1)  # any step counts: converged
    G.align_update(G.asarray(sums_t), dst, mid, norm, 1e-6, 1e9, 1)
    atol, rtol = tol("gpu_update_T")
    np.testing.assert_allclose(G.asnumpy(dst), st_t, atol=atol, rtol=rtol)
    assert st_t[S.S_CONVERGED] == 1.0
    # converged: the level's next iterations do nothing on the device either
    assert not G.asnumpy(G.align_reduce(padded(G, img), padded(G, pts), dst, mid, 1, norm, 1.0, 2)).any()
    G.align_update(G.asarray(sums_t), dst, mid, norm, 1e-6, 1e9, 2)
    np.testing.assert_allclose(G.asnumpy(dst), st_t, atol=atol, rtol=rtol)
    NB.align_finalize(st_t, 2 * w, 2 * h, 0.0, 0.1)
    G.align_finalize(dst, 2 * w, 2 * h, 0.0, 0.1)
    np.testing.assert_array_equal(G.asnumpy(dst)[[S.S_ACCEPT, S.S_STATUS]], st_t[[S.S_ACCEPT, S.S_STATUS]])


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype,channels,scale", [(np.uint8, 3, 2.0), (np.uint16, 1, 1.5), (np.uint8, 1, 3.0), (np.uint16, 3, 1.0)])
def test_resample_accumulate(G, rng, shape, dtype, channels, scale):
    h, w = shape
    maxv = float(np.iinfo(dtype).max)
    host = (rng.random(shape + ((3,) if channels == 3 else ())) * maxv).astype(dtype)
    st = state_with(random_T(rng), S_GAIN=0.97, S_OFFSET=0.01)
    wo, ho = output_size(w, h, scale)
    num0 = (rng.random((ho, wo, channels)) * maxv).astype(np.float32)
    den0 = rng.integers(0, 3, (ho, wo)).astype(np.float32)
    num_t, den_t = num0.copy(), den0.copy()
    NB.resample_accumulate(host, st, num_t, den_t, scale, maxv)
    num_g, den_g = G.asarray(num0), G.asarray(den0)
    G.resample_accumulate(padded(G, host), G.asarray(st), num_g, den_g, scale, maxv)
    np.testing.assert_array_equal(G.asnumpy(den_g), den_t)
    atol, rtol = tol("gpu_resample")
    np.testing.assert_allclose(G.asnumpy(num_g), num_t, atol=atol * maxv / 255.0, rtol=rtol)
    # a dropped frame adds nothing
    st[S.S_ACCEPT] = 0.0
    G.resample_accumulate(padded(G, host), G.asarray(st), num_g, den_g, scale, maxv)
    np.testing.assert_array_equal(G.asnumpy(den_g), den_t)


@pytest.mark.parametrize("anisotropic", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("dtype,channels,scale,sigma", [(np.uint8, 3, 2.0, 0.6), (np.uint16, 1, 1.5, 0.45),
                                                        (np.uint8, 1, 3.0, 0.9), (np.uint16, 3, 1.0, 0.5)])
def test_kernel_accumulate(G, rng, dtype, channels, scale, sigma, weighted, anisotropic):
    h, w = 45, 61
    maxv = float(np.iinfo(dtype).max)
    host = (rng.random((h, w) + ((3,) if channels == 3 else ())) * maxv).astype(dtype)
    st = state_with(random_T(rng), S_GAIN=0.97, S_OFFSET=0.01)
    wmap = rng.random((h // 2, w // 2)).astype(np.float32) if weighted else None
    wo, ho = output_size(w, h, scale)
    num0 = (rng.random((ho, wo, channels)) * maxv).astype(np.float32)
    den0 = rng.random((ho, wo)).astype(np.float32)
    num_t, den_t = num0.copy(), den0.copy()
    smap = None
    if anisotropic:  # the map kernel_shape makes from a textured luma
        smap = kernel_shape(NB, NB.luma(host), scale, 0.01)
        sigma = kernel_reach(scale)
    NB.kernel_accumulate(host, st, num_t, den_t, scale, maxv, sigma, wmap, 1, smap)
    num_g, den_g = G.asarray(num0), G.asarray(den0)
    G.kernel_accumulate(padded(G, host), G.asarray(st), num_g, den_g, scale, maxv, sigma,
                        None if wmap is None else padded(G, wmap), 1, None if smap is None else G.asarray(smap))
    atol, rtol = tol("gpu_kernel_accumulate")
    np.testing.assert_allclose(G.asnumpy(den_g), den_t, atol=atol, rtol=rtol)
    np.testing.assert_allclose(G.asnumpy(num_g), num_t, atol=atol * maxv, rtol=rtol)
@pytest.mark.parametrize("channels", [1, 3])
def test_resample_with_channel_maps(G, rng, channels):
    h, w = 45, 61
    host = (rng.random((h, w) + ((3,) if channels == 3 else ())) * 255).astype(np.uint8)
    st = state_with(random_T(rng), S_GAIN=1.01, S_OFFSET=0.002)
    cmaps = np.empty((channels, 12))  # each with a cubic radial term of up to 1 px at the far corner
    for c in range(channels):
        k = 1.0 + rng.uniform(-0.01, 0.01)
        k3 = rng.uniform(-1.0, 1.0) / np.hypot(w, h) ** 3
        cmaps[c] = [k, 0.0, 25.0 * (1 - k), 0.0, k, 20.0 * (1 - k), 0.0, 0.0, 1.0, 25.0, 20.0, k3]
    wo, ho = output_size(w, h, 2.0)
    num_t, den_t = np.zeros((ho, wo, channels), np.float32), np.zeros((ho, wo), np.float32)
    NB.resample_accumulate(host, st, num_t, den_t, 2.0, 255.0, None, 1, cmaps)
    num_g, den_g = G.asarray(num_t * 0), G.asarray(den_t * 0)
    G.resample_accumulate(padded(G, host), G.asarray(st), num_g, den_g, 2.0, 255.0, None, 1, cmaps)
    np.testing.assert_array_equal(G.asnumpy(den_g), den_t)
    atol, rtol = tol("gpu_resample")
    np.testing.assert_allclose(G.asnumpy(num_g), num_t, atol=atol, rtol=rtol)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_tca_band_and_float_frames_in_both_merges(G, rng, dtype):
    """The chroma band correction equals its twin, and its float32 frames go
    through both merge kernels as they do on the CPU."""
    h, w = 45, 61
    maxv = float(np.iinfo(dtype).max)
    host = (rng.random((h, w, 3)) * maxv).astype(dtype)
    maps = np.tile(np.concatenate([np.eye(3).ravel(), np.zeros(3)]), (3, 1))
    for c, k, k3 in ((0, 1.008, 0.8), (2, 0.991, -0.6)):  # k3: px of cubic term at the far corner
        maps[c] = [k, 0.0, 0.3 * w * (1 - k), 0.0, k, 0.7 * h * (1 - k), 0.0, 0.0, 1.0, 0.3 * w, 0.7 * h,
                   k3 / np.hypot(w, h) ** 3]
    atol, rtol = tol("gpu_resample")
    for upsampling in ("nearest", "linear"):  # the decoders' chroma chains (HEIC, JPEG): the band it moves
        want = NB.tca_band(host, maps, (2, 2), upsampling)
        got = G.tca_band(padded(G, host), maps, (2, 2), upsampling)
        np.testing.assert_allclose(G.asnumpy(got), want, atol=atol * maxv / 255.0, rtol=rtol)
    # raw frames: moved in the camera's own channels through a colour matrix and back (float32 frames)
    from superres_gpu.tca import ChannelTCA, TCAEstimate, band_corrected

    est = TCAEstimate(ChannelTCA(0.008, 0.3 * w, 0.7 * h, 0.0), ChannelTCA(-0.009, 0.3 * w, 0.7 * h, 0.0), w, h, 1,
                      (2, 2), "linear", (0, 0), ((1.8, -0.7, -0.1), (-0.2, 1.5, -0.3), (0.05, -0.5, 1.45)))
    np.testing.assert_allclose(G.asnumpy(band_corrected(G, G.asarray(host), est)), band_corrected(NB, host, est),
                               atol=3 * atol * maxv / 255.0, rtol=rtol)
    st = state_with(random_T(rng), S_GAIN=1.01, S_OFFSET=0.002)
    wo, ho = output_size(w, h, 2.0)
    num_t, den_t = np.zeros((ho, wo, 3), np.float32), np.zeros((ho, wo), np.float32)
    NB.resample_accumulate(want, st, num_t, den_t, 2.0, maxv)
    num_g, den_g = G.asarray(num_t * 0), G.asarray(den_t * 0)
    G.resample_accumulate(padded(G, want), G.asarray(st), num_g, den_g, 2.0, maxv)
    np.testing.assert_array_equal(G.asnumpy(den_g), den_t)
    np.testing.assert_allclose(G.asnumpy(num_g), num_t, atol=atol * maxv / 255.0, rtol=rtol)
    num_t, den_t = np.zeros((ho, wo, 3), np.float32), np.zeros((ho, wo), np.float32)
    NB.kernel_accumulate(want, st, num_t, den_t, 2.0, maxv, 0.6)
    num_g, den_g = G.asarray(num_t * 0), G.asarray(den_t * 0)
    G.kernel_accumulate(padded(G, want), G.asarray(st), num_g, den_g, 2.0, maxv, 0.6)
    atol, rtol = tol("gpu_kernel_accumulate")
    np.testing.assert_allclose(G.asnumpy(den_g), den_t, atol=atol, rtol=rtol)
    np.testing.assert_allclose(G.asnumpy(num_g), num_t, atol=atol * maxv, rtol=rtol)


def test_weighted_resample_and_robust_weights(G, rng):
    h, w = 45, 61
    host = (rng.random((h, w, 3)) * 255).astype(np.uint8)
    st = state_with(random_T(rng), S_GAIN=1.01, S_OFFSET=0.002)
    wmap = rng.random((h // 2, w // 2)).astype(np.float32)
    wmap[wmap < 0.3] = 0
    wo, ho = output_size(w, h, 2.0)
    num_t, den_t = np.zeros((ho, wo, 3), np.float32), np.zeros((ho, wo), np.float32)
    NB.resample_accumulate(host, st, num_t, den_t, 2.0, 255.0, wmap, 1)
    num_g, den_g = G.asarray(num_t * 0), G.asarray(den_t * 0)
    G.resample_accumulate(padded(G, host), G.asarray(st), num_g, den_g, 2.0, 255.0, padded(G, wmap), 1)
    atol, rtol = tol("gpu_weight_bilinear")
    np.testing.assert_allclose(G.asnumpy(den_g), den_t, atol=atol, rtol=rtol)
    atol, rtol = tol("gpu_resample")
    np.testing.assert_allclose(G.asnumpy(num_g), num_t, atol=atol, rtol=rtol)
    ref = rng.random((h, w)).astype(np.float32)
    coef = rng.random((h, w)).astype(np.float32)
    d2_t, cov_t = NB.robust_residual(coef, ref, st, 1, 2.0)
    d2_g, cov_g = G.robust_residual(padded(G, coef), padded(G, ref), G.asarray(st), 1, 2.0)
    np.testing.assert_array_equal(G.asnumpy(cov_g), cov_t)
    atol, rtol = tol("gpu_robust_residual")
    np.testing.assert_allclose(G.asnumpy(d2_g), d2_t, atol=atol, rtol=rtol)
    e = (rng.random((h, w)) * 0.01).astype(np.float32)
    c = rng.random((h, w)).astype(np.float32)
    g = (rng.random((h, w)) * 0.1).astype(np.float32)
    mask = (rng.random((h, w)) < 0.1).astype(np.float32)
    w_t = NB.robust_weight(e, c, g, np.float32(4e-4), 0.0625, 3.0, 6.0, mask)
    w_g = G.robust_weight(padded(G, e), padded(G, c), padded(G, g), G.cp.float32(4e-4), 0.0625, 3.0, 6.0, padded(G, mask))
    atol, rtol = tol("gpu_robust_weight")
    np.testing.assert_allclose(G.asnumpy(w_g), w_t, atol=atol, rtol=rtol)
    level_t = NB.robust_noise_level(e, c, g, 0.0625)
    level_g = G.robust_noise_level(padded(G, e), padded(G, c), padded(G, g), 0.0625)
    assert float(G.asnumpy(level_g)) == float(level_t)  # the same median of the same float32 values


@pytest.mark.parametrize("channels", [1, 3])
def test_normalize(G, rng, channels):
    num = (rng.random((41, 27, channels)) * 600 - 50).astype(np.float32)
    den = rng.integers(0, 4, (41, 27)).astype(np.float32)
    out_g = G.asnumpy(G.normalize_u16(G.asarray(num), G.asarray(den), 257.0))
    out_t = NB.normalize_u16(num, den, 257.0)
    atol, rtol = tol("gpu_normalize")
    np.testing.assert_allclose(out_g.astype(int), out_t.astype(int), atol=atol, rtol=rtol)


def _runs_agree(tmp_path, burst, **options):
    """``superres run`` of ``burst`` on both backends: the same image, the same frames used, the same
    transforms; returns the GPU run's report."""
    import json

    import tifffile

    from superres_gpu.pipeline import PipelineConfig, run

    d = tmp_path / "b"
    burst.write(d)
    out = {}
    for backend in ("numpy", "cupy"):
        run(PipelineConfig(inputs=[str(d)], output=str(tmp_path / f"{backend}.tif"), backend=backend,
                           report=str(tmp_path / f"{backend}.json"), **options))
        out[backend] = (tifffile.imread(tmp_path / f"{backend}.tif"), json.loads((tmp_path / f"{backend}.json").read_text()))
    img_n, rep_n = out["numpy"]
    img_c, rep_c = out["cupy"]
    assert rep_c["backend"] == "cupy"
    p = psnr(img_c, img_n.astype(np.float64) / 65535.0)
    assert p > TOL["backend_parity_psnr_db"][0], f"backends differ: {p:.1f} dB"
    w, h = burst.params["width"], burst.params["height"]
    for fn, fc in zip(rep_n["frames"], rep_c["frames"]):
        assert fn["used"] == fc["used"]
        err = grid_rms_error(np.array(fc["transform"]), np.array(fn["transform"]), w, h)
        assert err < TOL["backend_parity_transform_px"][0], f"{fn['path']}: {err:.5f} px"
    return rep_c


def test_pipeline_same_image_and_transforms_on_both_backends(tmp_path, medium_burst):
    _runs_agree(tmp_path, medium_burst)


@pytest.mark.parametrize("options", [
    {"merge": "robust", "motion": "homography", "refine": False, "scale": 3.0},
    {"local": "on", "tca": "on"},
], ids=["robust-homography-3x", "local-and-tca"])
def test_pipeline_options_agree_on_both_backends(tmp_path, small_burst, options):
    """The paths the defaults leave out on the medium burst: the robust (Lanczos) merge at 3x without the
    template, and a local field on every frame with the 4:2:0 chroma band's aberration correction."""
    rep = _runs_agree(tmp_path, small_burst, **options)
    if options.get("local") == "on":
        assert rep["tca"]["applied"]
        assert all(f["local"]["applied"] for f in rep["frames"][1:] if f["used"])


def test_running_out_of_device_memory_midway_finishes_on_the_cpu(tmp_path, small_burst, capsys):
    """A device too small for the burst: the pool refuses an allocation partway through the merge (a
    limit below the run's need), the run starts again on the CPU with one warning, and its output is
    the CPU's own."""
    import json

    import cupy
    import tifffile

    from superres_gpu.cli import main

    d = tmp_path / "b"
    small_burst.write(d)
    assert main(["run", str(d), "-o", str(tmp_path / "cpu.tif"), "--backend", "numpy", "-q"]) == 0
    pool = cupy.get_default_memory_pool()
    pool.set_limit(size=4 << 20)
    try:
        rc = main(["run", str(d), "-o", str(tmp_path / "gpu.tif"), "--backend", "cupy", "-q",
                   "--report", str(tmp_path / "r.json")])
    finally:
        pool.set_limit(size=0)
    err = capsys.readouterr().err
    assert rc == 0 and err.count("\n") == 1 and "the GPU ran out of memory (Out of memory allocating" in err
    assert json.loads((tmp_path / "r.json").read_text())["backend"] == "numpy"
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "gpu.tif"), tifffile.imread(tmp_path / "cpu.tif"))


def test_frame_upload_ring_roundtrip(G, rng):
    frames = [(rng.random((1200, 1000, 3)) * 255).astype(np.uint8) for _ in range(4)]
    for k, f in enumerate(frames):  # the ring of two device buffers and the pinned pool are reused
        host = G.host_frame(f.shape, f.dtype) if k % 2 else f  # decoded into pinned memory, or a plain array
        if k % 2:
            host[...] = f
        dev = G.upload_frame(host)
        np.testing.assert_array_equal(G.asnumpy(dev), f)
        G.frame_done(dev)
    with pytest.raises(TypeError):
        G.luma(G.asarray(np.zeros((8, 8), np.float64)))


def test_a_second_backend_in_the_thread_keeps_the_first_ones_uploads_ordered(G, rng):
    """A backend made later in the same thread (another run, another API call) shares its streams: the
    first one's kernels still run on the stream its uploads are ordered before."""
    G2 = get_backend("cupy")
    assert G2.compute_stream is G.compute_stream and G2.upload_stream is G.upload_stream
    f = (rng.random((40, 30, 3)) * 255).astype(np.uint8)
    dev = G.upload_frame(f)
    np.testing.assert_allclose(G.asnumpy(G.luma(dev)), NB.luma(f), atol=1e-6)
    G.frame_done(dev)
    np.testing.assert_array_equal(G2.asnumpy(G2.upload_frame(f)), f)


def test_kernel_shape_matches_the_cpu(G, rng):
    """The anisotropic kernel's map (structure tensor, eigen-analysis, blend by
    the local SNR) is the same on both backends."""
    host = (rng.random((45, 61, 3)) * 200).astype(np.uint8)
    host[:, 30:] += 50
    want = kernel_shape(NB, NB.luma(host), 2.0, 0.02)
    got = G.asnumpy(kernel_shape(G, G.luma(G.asarray(host)), 2.0, 0.02))
    atol, rtol = tol("gpu_kernel_shape")
    np.testing.assert_allclose(got, want, atol=atol, rtol=rtol)


def test_kernel_merge_restoration_matches_the_cpu(G, rng):
    """The kernel merge's deconvolution (noise estimate, Wiener taps, strong-edge
    clamp) gives the same image on both backends."""
    from superres_gpu.restore import deconvolve

    img = (rng.random((60, 80, 3)) * 40 + 100).astype(np.float32)
    img[:, 40:] += 80.0
    host = img.copy()
    info_t = deconvolve(NB, host, 2.0, 0.6, 255.0, 5.0)
    dev = G.asarray(img)
    info_g = deconvolve(G, dev, 2.0, 0.6, 255.0, 5.0)
    assert info_g["noise"] == pytest.approx(info_t["noise"], rel=1e-4)
    atol, rtol = tol("gpu_sepfilter")
    np.testing.assert_allclose(G.asnumpy(dev), host, atol=atol * 255 * 4, rtol=1e-5)


@pytest.mark.parametrize("channels,chromatic", [(1, False), (3, False), (3, True)])
def test_resample_with_a_local_field(G, rng, channels, chromatic):
    """The field moves each output pixel's reference position exactly as the twin does
    (same coverage), and a zero field changes nothing."""
    h, w = 45, 61
    host = (rng.random((h, w) + ((3,) if channels == 3 else ())) * 255).astype(np.uint8)
    st = state_with(random_T(rng), S_GAIN=1.01, S_OFFSET=0.002)
    field = rng.normal(0, 0.7, (5, 7, 2)).astype(np.float32)
    cmaps = np.tile([1.002, 0, -0.05, 0, 1.002, -0.04, 0, 0, 1.0], (channels, 1)) if chromatic else None
    wo, ho = output_size(w, h, 2.0)
    num_t, den_t = np.zeros((ho, wo, channels), np.float32), np.zeros((ho, wo), np.float32)
    NB.resample_accumulate(host, st, num_t, den_t, 2.0, 255.0, None, 1, cmaps, field, 9.5)
    num_g, den_g = G.asarray(num_t * 0), G.asarray(den_t * 0)
    G.resample_accumulate(padded(G, host), G.asarray(st), num_g, den_g, 2.0, 255.0, None, 1, cmaps,
                          padded(G, field), 9.5)
    np.testing.assert_array_equal(G.asnumpy(den_g), den_t)
    atol, rtol = tol("gpu_resample")
    np.testing.assert_allclose(G.asnumpy(num_g), num_t, atol=atol, rtol=rtol)
    num0, den0 = G.asarray(num_t * 0), G.asarray(den_t * 0)
    G.resample_accumulate(padded(G, host), G.asarray(st), num0, den0, 2.0, 255.0, None, 1, cmaps)
    numz, denz = G.asarray(num_t * 0), G.asarray(den_t * 0)
    G.resample_accumulate(padded(G, host), G.asarray(st), numz, denz, 2.0, 255.0, None, 1, cmaps,
                          G.cp.zeros((5, 7, 2), G.cp.float32), 9.5)
    np.testing.assert_array_equal(G.asnumpy(numz), G.asnumpy(num0))
    np.testing.assert_array_equal(G.asnumpy(denz), G.asnumpy(den0))


def test_kernel_accumulate_with_a_local_field(G, rng):
    h, w = 45, 61
    host = (rng.random((h, w, 3)) * 255).astype(np.uint8)
    st = state_with(random_T(rng), S_GAIN=0.97, S_OFFSET=0.01)
    field = rng.normal(0, 0.7, (5, 7, 2)).astype(np.float32)
    wo, ho = output_size(w, h, 2.0)
    num_t, den_t = np.zeros((ho, wo, 3), np.float32), np.zeros((ho, wo), np.float32)
    NB.kernel_accumulate(host, st, num_t, den_t, 2.0, 255.0, 0.6, None, 1, field=field, field_cell=9.5)
    num_g, den_g = G.asarray(num_t * 0), G.asarray(den_t * 0)
    G.kernel_accumulate(padded(G, host), G.asarray(st), num_g, den_g, 2.0, 255.0, 0.6, None, 1,
                        field=padded(G, field), field_cell=9.5)
    atol, rtol = tol("gpu_kernel_accumulate")
    np.testing.assert_allclose(G.asnumpy(den_g), den_t, atol=atol, rtol=rtol)
    np.testing.assert_allclose(G.asnumpy(num_g), num_t, atol=atol * 255.0, rtol=rtol)


@pytest.mark.parametrize("anisotropic", [False, True])
def test_kernel_accumulate_with_channel_maps(G, rng, anisotropic):
    h, w = 45, 61
    host = (rng.random((h, w, 3)) * 255).astype(np.uint8)
    st = state_with(random_T(rng), S_GAIN=0.97, S_OFFSET=0.01)
    field = rng.normal(0, 0.7, (5, 7, 2)).astype(np.float32)
    cmaps = np.empty((3, 12))
    for c, k, k3 in ((0, 1.006, 0.7), (1, 1.0, 0.0), (2, 0.994, -0.9)):  # k3: px of cubic term at the far corner
        cmaps[c] = [k, 0.0, 0.4 * w * (1 - k), 0.0, k, 0.6 * h * (1 - k), 0.0, 0.0, 1.0, 0.4 * w, 0.6 * h,
                    k3 / np.hypot(w, h) ** 3]
    smap = np.empty((3, h, w), np.float32)
    smap[0], smap[1], smap[2] = -1.2, 0.3, -0.8
    smap = smap if anisotropic else None
    sigma = 0.9 if anisotropic else 0.6
    wmap = rng.random((h // 2, w // 2)).astype(np.float32)
    wo, ho = output_size(w, h, 2.0)
    num_t, den_t = np.zeros((ho, wo, 3), np.float32), np.zeros((ho, wo, 3), np.float32)  # a plane per channel
    NB.kernel_accumulate(host, st, num_t, den_t, 2.0, 255.0, sigma, wmap, 1, smap, field, 9.5, cmaps)
    num_g, den_g = G.asarray(num_t * 0), G.asarray(den_t * 0)
    G.kernel_accumulate(padded(G, host), G.asarray(st), num_g, den_g, 2.0, 255.0, sigma, padded(G, wmap), 1,
                        None if smap is None else padded(G, smap), padded(G, field), 9.5, cmaps)
    atol, rtol = tol("gpu_kernel_accumulate")
    np.testing.assert_allclose(G.asnumpy(den_g), den_t, atol=atol, rtol=rtol)
    np.testing.assert_allclose(G.asnumpy(num_g), num_t, atol=atol * 255.0, rtol=rtol)


@pytest.mark.parametrize("level", [0, 1])
def test_residuals_with_a_local_field_and_the_field_median(G, rng, level):
    h, w = 37, 53
    ref = rng.random((h, w)).astype(np.float32)
    coef = rng.random((h, w)).astype(np.float32)
    st = state_with(random_T(rng), S_GAIN=1.02, S_OFFSET=-0.01)
    field = rng.normal(0, 0.7, (4, 6, 2)).astype(np.float32)
    for name in ("robust_residual", "warp_residual"):
        d_t, cov_t = getattr(NB, name)(coef, ref, st, level, 2.0, field, 12.0 * 2**level)
        d_g, cov_g = getattr(G, name)(padded(G, coef), padded(G, ref), G.asarray(st), level, 2.0, padded(G, field),
                                      12.0 * 2**level)
        np.testing.assert_array_equal(G.asnumpy(cov_g), cov_t)
        atol, rtol = tol("gpu_robust_residual")
        np.testing.assert_allclose(G.asnumpy(d_g), d_t, atol=atol, rtol=rtol)
    ok = (rng.random((4, 6)) > 0.3).astype(np.float32)
    np.testing.assert_array_equal(G.asnumpy(G.field_median3(G.asarray(field), G.asarray(ok))),
                                  NB.field_median3(field, ok))


def test_local_extrema_gpu(G, rng):
    img = rng.random((37, 53)).astype(np.float32)
    for r in (1, 2, 4):
        lo, hi = G.local_extrema(G.asarray(img), r)
        tlo, thi = NB.local_extrema(img, r)
        np.testing.assert_array_equal(G.asnumpy(lo), tlo)
        np.testing.assert_array_equal(G.asnumpy(hi), thi)


def test_local_refinement_agrees_across_backends(G):
    """The whole per-frame refinement (the same arithmetic in float32 on both
    sides, matrix products summed in other orders) on a rolling-shutter pair."""
    from superres_gpu.align import AlignConfig, align, frame_levels
    from superres_gpu.local import LocalRefiner, frame_report
    from superres_gpu.reference import Reference
    from superres_gpu.synth import CameraSpec, MotionSpec, make_burst

    burst = make_burst(2, 256, 192, 2.0, 4, MotionSpec(2.0, 0.2, 0.001, rolling_shutter_px=0.4),
                       CameraSpec(jpeg_quality=None), seed=9)
    out = []
    for be in (NB, G):
        ref = Reference(be, be.asarray(burst.frames[0]), AlignConfig(model="similarity"))
        lv = frame_levels(be, ref, be.asarray(burst.frames[1]))
        res = LocalRefiner(be, ref, "on").refine(lv, align(be, ref, lv))
        out.append((be.asnumpy(res.field), frame_report(be.asnumpy(res.stats))))
    atol, _ = tol("gpu_local_field")
    np.testing.assert_allclose(out[1][0], out[0][0], atol=atol)
    assert out[1][1]["applied"] == out[0][1]["applied"]


def test_tile_phase_shifts(G, rng):
    ref = rng.random((90, 130)).astype(np.float32)
    img = np.roll(ref, (2, -3), axis=(0, 1)) + rng.normal(0, 0.05, ref.shape).astype(np.float32)
    x0, y0 = np.array([3, 40, 66]), np.array([5, 26])
    want = NB.tile_phase_shifts(ref, img, x0, y0, 64)
    got = G.tile_phase_shifts(padded(G, ref), padded(G, img), G.asarray(x0), G.asarray(y0), 64)
    atol, _ = tol("gpu_tile_phase_shifts")
    np.testing.assert_allclose(G.asnumpy(got), want, atol=atol)
