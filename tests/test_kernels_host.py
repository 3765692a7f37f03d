"""The kernels' per-thread math, compiled for the CPU, against the NumPy twins.

``tests/kernel_host_harness.cpp`` includes ``kernels/*.cu`` without their
``__global__`` wrappers and runs each kernel's per-pixel/per-point function
over whole images, as the grid would.  This proves the arithmetic of every
kernel on any machine with a C++ compiler; the GPU tests then prove the
wrappers (indexing, reductions) on a device.
"""

from __future__ import annotations

import ctypes
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from superres_gpu.backends import base as S
from superres_gpu.backends import get_backend
from superres_gpu.backends.numpy_backend import channel_map_rows, cross_power, kernel_window
from superres_gpu.cuda_modules import kernel_dir
from superres_gpu.geometry import MODEL_ID, MOTION_MODELS, output_size, output_to_reference
from superres_gpu.interp import alignment_taps, lanczos4_table
from superres_gpu.kernelmerge import kernel_reach
from superres_gpu.state import transform_state
from tolerances import tol

B = get_backend("numpy")
HERE = Path(__file__).resolve().parent
CXX = shutil.which("g++") or shutil.which("c++") or shutil.which("clang++")

P = ctypes.c_void_p
I = ctypes.c_int
L = ctypes.c_longlong
D = ctypes.c_double
F = ctypes.c_float


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    if CXX is None:
        pytest.skip("no C++ compiler on this machine to build the host harness")
    out = tmp_path_factory.mktemp("harness") / "harness.so"
    cmd = [CXX, "-O2", "-std=c++17", "-ffp-contract=off", "-shared", "-fPIC", f"-I{kernel_dir()}",
           str(HERE / "kernel_host_harness.cpp"), "-o", str(out)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    h = ctypes.CDLL(str(out))
    sigs = {
        "h_resample": [P, I, I, I, I, P, P, P, P, I, I, D, D, F, P, I, I, I, D, P, I, P, I, I, D, I],
        "h_kernel_accumulate": [P, I, I, I, I, P, P, P, I, I, D, D, F, P, I, I, I, D, I, F, P, I, I, I, P, I, I, D, I,
                                P, I],
        "h_tca_band": [P, I, I, I, P, P, P, P],
        "h_robust_residual": [P, I, I, P, I, I, P, I, D, P, I, I, D, I, P, P],
        "h_warp_residual": [P, I, I, P, I, I, P, I, D, P, I, I, D, I, P, P],
        "h_field_at": [P, I, I, F, P, P, L, P, P],
        "h_warp_positions": [P, D, D, I, P, P, L, P, P, P, P, P, P, P, P],
        "h_sample_bspline": [P, I, I, P, P, P, P, L, P],
        "h_field_output": [P, I, I, F, F, F, I, I, P, P],
        "h_robust_weight": [P, P, P, L, F, D, D, D, P, I, P],
        "h_luma": [P, I, I, I, I, F, P],
        "h_downsample2": [P, I, I, P],
        "h_blur": [P, I, I, P, I, P, P],
        "h_gradient": [P, I, I, P, P],
        "h_cross_power": [P, P, L, P],
        "h_peak_fit": [P, I, I, I, P],
        "h_align_reduce": [P, I, I, P, L, P, I, I, D, D, D, D, I, P],
        "h_align_update": [P, P, I, D, D, D, D, D, I],
        "h_align_finalize": [P, I, I, D, D],
        "h_normalize": [P, P, L, I, F, P],
    }
    for name, args in sigs.items():
        getattr(h, name).argtypes = args
        getattr(h, name).restype = None
    return h


def ptr(a: np.ndarray):
    assert a.flags.c_contiguous
    return a.ctypes.data


def frame_kind(dtype) -> int:
    """The harness's frame type code: 0 uint8, 1 uint16, 2 float32."""
    return {np.dtype(np.uint8): 0, np.dtype(np.uint16): 1, np.dtype(np.float32): 2}[np.dtype(dtype)]


def random_field(rng, w, h, cell):
    """A displacement field (reference px) on nodes ``cell`` px apart over a w x h frame."""
    gw, gh = int(np.ceil(w / cell)), int(np.ceil(h / cell))
    return rng.normal(0, 0.7, (gh, gw, 2)).astype(np.float32)


def random_state(rng, homography=True):
    a = rng.normal(0, 0.01)
    T = np.array([[np.cos(a) * 1.01, -np.sin(a), rng.normal(0, 2)], [np.sin(a), np.cos(a) * 0.995, rng.normal(0, 2)],
                  [rng.normal(0, 1e-4) if homography else 0, rng.normal(0, 1e-4) if homography else 0, 1.0]])
    return transform_state(T)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("dtype,channels,shape,scale", [
    (np.uint8, 3, (37, 53), 2.0),
    (np.uint8, 1, (41, 29), 1.7),
    (np.uint16, 3, (23, 31), 3.0),
    (np.uint16, 1, (16, 17), 1.0),
    (np.float32, 3, (29, 41), 2.0),  # a frame from tca_band
    (np.float32, 1, (29, 41), 2.0),  # a luma the template merges
])
@pytest.mark.parametrize("chromatic", [False, True])
@pytest.mark.parametrize("local", [False, True])
def test_resample_kernel_math(lib, rng, dtype, channels, shape, scale, weighted, chromatic, local):
    h, w = shape
    maxv = 65535.0 if dtype == np.uint16 else 255.0
    frame = (rng.random(shape + ((channels,) if channels == 3 else ())) * maxv).astype(dtype)
    st = random_state(rng)
    st[S.S_GAIN], st[S.S_OFFSET] = 1.05, -0.01
    wo, ho = output_size(w, h, scale)
    num0 = rng.random((ho, wo, channels)).astype(np.float32)  # accumulate onto existing sums
    den0 = np.full((ho, wo), 2.0, np.float32)
    num_t, den_t = num0.copy(), den0.copy()
    wmap = rng.random((h // 2, w // 2)).astype(np.float32) if weighted else None
    if weighted:
        wmap[wmap < 0.3] = 0.0  # some pixels rejected outright
    cmaps = random_channel_maps(rng, channels, w, h) if chromatic else None
    field = random_field(rng, w, h, 7.0) if local else None
    B.resample_accumulate(frame, st, num_t, den_t, scale, maxv, wmap, 1, cmaps, field, 7.0)
    num_k, den_k = num0.copy(), den0.copy()
    fk = field if local else np.zeros((1, 1, 2), np.float32)
    S_ = output_to_reference(scale)
    wk = wmap if weighted else np.ones((1, 1), np.float32)
    ck = channel_map_rows(cmaps, channels) if chromatic else np.zeros((1, 12))
    lib.h_resample(ptr(frame), frame_kind(dtype), channels, w, h, ptr(st), ptr(np.ascontiguousarray(lanczos4_table())),
                   ptr(num_k), ptr(den_k), wo, ho, S_[0, 0], S_[0, 2], maxv, ptr(wk), wk.shape[1], wk.shape[0],
                   int(weighted), 0.5, ptr(ck), int(chromatic), ptr(fk), fk.shape[1], fk.shape[0], 1.0 / 7.0,
                   int(local))
    np.testing.assert_array_equal(den_k, den_t)  # identical positions and coverage
    atol, rtol = tol("lanczos_remap_vs_direct")
    np.testing.assert_allclose(num_k, num_t, atol=atol * maxv * 1.1, rtol=rtol)


@pytest.mark.parametrize("dtype,shape", [(np.uint8, (37, 53)), (np.uint16, (23, 31))])
def test_tca_band_kernel_math(lib, rng, dtype, shape):
    """The chroma band correction: the same 1/32 px positions (an exaggerated
    aberration: up to 1 % about an off-centre point, so the taps clamp at the
    borders too) and Lanczos sums within float32 rounding of cv2.remap's."""
    from superres_gpu.pixels import chroma_low_band

    h, w = shape
    maxv = 65535.0 if dtype == np.uint16 else 255.0
    frame = (rng.random(shape + (3,)) * maxv).astype(dtype)
    # green stays; red and blue scaled by -+1 % about off-centre points, red with a cubic radial term too
    maps = np.zeros((3, 12))
    maps[1, :9] = np.eye(3).ravel()
    for c, k in ((0, 1.0 + rng.uniform(0.008, 0.012)), (2, 1.0 - rng.uniform(0.008, 0.012))):
        maps[c, :9] = [k, 0.0, 0.3 * w * (1 - k), 0.0, k, 0.7 * h * (1 - k), 0.0, 0.0, 1.0]
    maps[0, 9:] = [0.3 * w, 0.7 * h, 0.8 / np.hypot(w, h) ** 3]  # about 0.8 px at the far corner
    want = B.tca_band(frame, maps, (2, 2))
    lo = np.ascontiguousarray(chroma_low_band(frame, (2, 2)).transpose(2, 0, 1))
    got = np.empty((h, w, 3), np.float32)
    lib.h_tca_band(ptr(frame), int(dtype == np.uint16), w, h, ptr(lo), ptr(np.ascontiguousarray(maps)),
                   ptr(np.ascontiguousarray(lanczos4_table())), ptr(got))
    np.testing.assert_array_equal(got[..., 1], frame[..., 1].astype(np.float32))
    atol, rtol = tol("lanczos_remap_vs_direct")
    np.testing.assert_allclose(got, want, atol=atol * maxv * 1.1, rtol=rtol)
    for c in (0, 2):  # red and blue did move
        assert not np.array_equal(want[..., c], frame[..., c].astype(np.float32))


def random_channel_maps(rng, channels, w, h):
    """(channels, 12) maps: each channel radially scaled by up to 1 % about a
    centre off the frame's middle, with a cubic radial term of up to 1 px at
    the far corner (lateral chromatic aberration, exaggerated); of three
    channels the middle one has no cubic term (the kernels skip it)."""
    cmaps = np.zeros((channels, 12))
    for c in range(channels):
        k = 1.0 + rng.uniform(-0.01, 0.01)
        k3 = 0.0 if channels == 3 and c == 1 else rng.uniform(-1.0, 1.0) / np.hypot(w, h) ** 3
        cmaps[c] = [k, 0.0, 0.4 * w * (1 - k), 0.0, k, 0.6 * h * (1 - k), 0.0, 0.0, 1.0, 0.4 * w, 0.6 * h, k3]
    return cmaps


def random_kernel_shape(rng, h, w, scale):
    """An anisotropic kernel map as kernel_shape makes them: every pixel's own
    orientation and standard deviations (output px) within the reach."""
    theta = rng.uniform(0, np.pi, (h, w))
    along = rng.uniform(0.5, 1.0, (h, w)) * kernel_reach(scale)
    across = along * rng.uniform(0.3, 1.0, (h, w))
    c, n = np.cos(theta), np.sin(theta)
    ia, ic = 1 / along**2, 1 / across**2
    return np.stack([-0.5 * (c * c * ic + n * n * ia), -(c * n * (ic - ia)),
                     -0.5 * (n * n * ic + c * c * ia)]).astype(np.float32)


@pytest.mark.parametrize("anisotropic", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("dtype,channels,shape,scale,sigma", [
    (np.uint8, 3, (37, 53), 2.0, 0.6),
    (np.uint8, 1, (41, 29), 1.7, 0.9),
    (np.uint16, 3, (23, 31), 3.0, 0.9),
    (np.uint16, 1, (16, 17), 1.0, 0.5),
    (np.float32, 3, (29, 41), 2.0, 0.6),  # a frame from tca_band
])
@pytest.mark.parametrize("local", [False, True])
@pytest.mark.parametrize("chromatic", [False, True])
def test_kernel_accumulate_math(lib, rng, dtype, channels, shape, scale, sigma, weighted, anisotropic, local,
                                chromatic):
    h, w = shape
    maxv = 65535.0 if dtype == np.uint16 else 255.0
    frame = (rng.random(shape + ((channels,) if channels == 3 else ())) * maxv).astype(dtype)
    st = random_state(rng)
    st[S.S_GAIN], st[S.S_OFFSET] = 1.05, -0.01
    wo, ho = output_size(w, h, scale)
    num0 = rng.random((ho, wo, channels)).astype(np.float32)
    den0 = np.full((ho, wo) + ((channels,) if chromatic else ()), 2.0, np.float32)  # a plane per channel with maps
    num_t, den_t = num0.copy(), den0.copy()
    wmap = rng.random((h // 2, w // 2)).astype(np.float32) if weighted else None
    if weighted:
        wmap[wmap < 0.3] = 0.0
    field = random_field(rng, w, h, 6.0) if local else None
    fk = field if local else np.zeros((1, 1, 2), np.float32)
    smap = random_kernel_shape(rng, h, w, scale) if anisotropic else None
    if anisotropic:
        sigma = kernel_reach(scale)
    cmaps = random_channel_maps(rng, channels, w, h) if chromatic else None
    ck = channel_map_rows(cmaps, channels) if chromatic else np.zeros((1, 12))
    B.kernel_accumulate(frame, st, num_t, den_t, scale, maxv, sigma, wmap, 1, smap, field, 6.0, cmaps)
    num_k, den_k = num0.copy(), den0.copy()
    S_ = output_to_reference(scale)
    wk = wmap if weighted else np.ones((1, 1), np.float32)
    sk = smap if anisotropic else np.ones((1, 1, 1), np.float32)
    lib.h_kernel_accumulate(ptr(frame), frame_kind(dtype), channels, w, h, ptr(st), ptr(num_k), ptr(den_k),
                            wo, ho, S_[0, 0], S_[0, 2], maxv, ptr(wk), wk.shape[1], wk.shape[0], int(weighted), 0.5,
                            kernel_window(scale, sigma), np.float32(-1.0 / (2.0 * sigma * sigma)), ptr(sk),
                            sk.shape[2], sk.shape[1], int(anisotropic), ptr(fk), fk.shape[1], fk.shape[0], 1.0 / 6.0,
                            int(local), ptr(ck), int(chromatic))
    assert np.any(den_k != den0)
    atol, rtol = tol("host_kernel_accumulate")
    np.testing.assert_allclose(den_k, den_t, atol=atol, rtol=rtol)
    np.testing.assert_allclose(num_k, num_t, atol=atol * maxv, rtol=rtol)


@pytest.mark.parametrize("dtype,channels", [(np.uint8, 3), (np.uint8, 1), (np.uint16, 3), (np.uint16, 1)])
def test_luma_kernel_math(lib, rng, dtype, channels):
    maxv = 65535 if dtype == np.uint16 else 255
    shape = (19, 27, 3) if channels == 3 else (19, 27)
    frame = (rng.random(shape) * maxv).astype(dtype)
    out = np.empty((19, 27), np.float32)
    lib.h_luma(ptr(frame), int(dtype == np.uint16), channels, 27, 19, np.float32(1.0 / maxv), ptr(out))
    np.testing.assert_array_equal(out, B.luma(frame))


@pytest.mark.parametrize("shape", [(16, 16), (23, 37), (5, 4)])
def test_pyramid_kernel_math(lib, rng, shape):
    h, w = shape
    img = rng.random(shape).astype(np.float32)
    out = np.empty((h // 2, w // 2), np.float32)
    lib.h_downsample2(ptr(img), w, h, ptr(out))
    np.testing.assert_array_equal(out, B.downsample2(img))
    gx, gy = np.empty_like(img), np.empty_like(img)
    lib.h_gradient(ptr(img), w, h, ptr(gx), ptr(gy))
    tx, ty = B.gradient(img)
    np.testing.assert_array_equal(gx, tx)
    np.testing.assert_array_equal(gy, ty)
    for taps in alignment_taps(1.5):
        tmp, blur = np.empty_like(img), np.empty_like(img)
        lib.h_blur(ptr(img), w, h, ptr(taps), len(taps) // 2, ptr(tmp), ptr(blur))
        atol, rtol = tol("gaussian_vs_direct")
        np.testing.assert_allclose(blur, B.sepfilter(img, taps), atol=atol, rtol=rtol)


def test_phase_correlation_kernel_math(lib, rng):
    h, w = 24, 40
    a = rng.random((h, w)).astype(np.float32)
    b = np.roll(a, (3, -5), axis=(0, 1))
    fr = np.fft.fft2(a).astype(np.complex64)
    f = np.fft.fft2(b).astype(np.complex64)
    f[2, 3] = 0  # a zero-magnitude bin
    out = np.empty((h, w), np.complex64)
    lib.h_cross_power(ptr(fr), ptr(f), h * w, ptr(out))
    atol, rtol = tol("host_cross_power")
    np.testing.assert_allclose(out, cross_power(fr, f), atol=atol, rtol=rtol)
    assert out[2, 3] == 0 and out[0, 0] == 0
    surf = np.fft.ifft2(cross_power(fr, f)).real.astype(np.float32)
    for level in (0, 2):
        st_t, st_k = S.identity_state(), S.identity_state()
        B.peak_to_state(surf, st_t, level)
        lib.h_peak_fit(ptr(surf), w, h, level, ptr(st_k))
        np.testing.assert_array_equal(st_k, st_t)


@pytest.mark.parametrize("weight", ["huber", "tukey", "none"])
@pytest.mark.parametrize("model", MOTION_MODELS)
def test_align_kernel_math(lib, rng, model, weight):
    h, w = 40, 50
    img = rng.random((h, w)).astype(np.float32)
    n = 500
    pts = np.empty((5, n), np.float32)
    pts[0] = rng.uniform(-5, 105, n)
    pts[1] = rng.uniform(-5, 85, n)
    pts[2] = rng.random(n)
    pts[3] = rng.normal(size=n)
    pts[4] = rng.normal(size=n)
    st = random_state(rng)
    st[S.S_GAIN], st[S.S_OFFSET], st[S.S_SIGMA] = 1.1, -0.05, (0.0 if weight == "none" else 0.1)
    st[S.S_REDESCEND] = float(weight == "tukey")
    norm = (49.5, 39.5, 50.0)
    mid = MODEL_ID[model]
    sums_t = B.align_reduce(img, pts, st, mid, 1, norm, 1.0, 0)
    sums_k = np.empty(64)
    lib.h_align_reduce(ptr(img), w, h, ptr(pts), n, ptr(st), mid, 1, *norm, 1.0, 0, ptr(sums_k))
    atol, rtol = tol("host_reduce_vs_twin")
    np.testing.assert_allclose(sums_k, sums_t, atol=atol, rtol=rtol)
    # the counts are exact: the same float32 positions decide which points count
    assert sums_k[S.SUM_COUNT] == sums_t[S.SUM_COUNT] and sums_k[S.SUM_N] == sums_t[S.SUM_N]
    assert sums_k[S.SUM_COUNT] > 50
    assert (sums_k[S.SUM_RHO : S.SUM_RHO + S.SCALE_STEPS] > 0).all() == (weight != "none")
    atol, rtol = tol("host_update_vs_twin")
    for iteration, converged_px in ((0, 1e9), (1, 1e9), (1, 0.0)):
        st_t, st_k = st.copy(), st.copy()
        B.align_update(sums_t, st_t, mid, norm, 1e-6, converged_px, iteration)
        lib.h_align_update(ptr(sums_t), ptr(st_k), mid, *norm, 1e-6, converged_px, iteration)
        np.testing.assert_allclose(st_k, st_t, atol=atol, rtol=rtol)
        assert st_t[S.S_CONVERGED] == (1.0 if (iteration, converged_px) == (1, 1e9) else 0.0)
    # a converged state: from the second iteration on, reduce and update do nothing on both
    st_t[S.S_CONVERGED] = 1.0
    st_k = st_t.copy()
    lib.h_align_reduce(ptr(img), w, h, ptr(pts), n, ptr(st_k), mid, 1, *norm, 1.0, 2, ptr(sums_k))
    assert not sums_k.any() and not B.align_reduce(img, pts, st_t, mid, 1, norm, 1.0, 2).any()
    lib.h_align_update(ptr(sums_t), ptr(st_k), mid, *norm, 1e-6, 1e9, 2)
    np.testing.assert_array_equal(st_k, st_t)
    for min_corr in (-1.0, 0.99):
        a, k = st_t.copy(), st_t.copy()
        B.align_finalize(a, 100, 80, min_corr, 0.1)
        lib.h_align_finalize(ptr(k), 100, 80, min_corr, 0.1)
        np.testing.assert_array_equal(k, a)


def test_align_update_failure_paths_match(lib, rng):
    norm = (10.0, 10.0, 10.0)
    for sums in (np.zeros(64), np.full(64, np.nan)):
        sums = sums.copy()
        sums[S.SUM_N] = 100
        sums[S.SUM_COUNT] = 50 if np.isnan(sums[0]) else 3
        st_t, st_k = S.identity_state(), S.identity_state()
        B.align_update(sums, st_t, 4, norm, 1e-6, 1e-4, 1)
        lib.h_align_update(ptr(sums), ptr(st_k), 4, *norm, 1e-6, 1e-4, 1)
        np.testing.assert_array_equal(np.nan_to_num(st_k, nan=-9), np.nan_to_num(st_t, nan=-9))
    bad = S.identity_state()
    bad[S.S_T] = [-1, 0, 0, 0, 1, 0, 0, 0, 1]  # a mirror image: implausible
    a, k = bad.copy(), bad.copy()
    B.align_finalize(a, 50, 40, 0.0, 0.0)
    lib.h_align_finalize(ptr(k), 50, 40, 0.0, 0.0)
    np.testing.assert_array_equal(k, a)
    assert a[S.S_STATUS] == S.STATUS_IMPLAUSIBLE and a[S.S_ACCEPT] == 0


@pytest.mark.parametrize("local", [False, True])
@pytest.mark.parametrize("level", [0, 1])
def test_robust_kernel_math(lib, rng, level, local):
    h, w = 31, 45
    ref = rng.random((h, w)).astype(np.float32)
    coef = rng.random((h, w)).astype(np.float32)
    st = random_state(rng)
    st[S.S_GAIN], st[S.S_OFFSET] = 1.02, -0.01
    field = random_field(rng, w * 2**level, h * 2**level, 9.0) if local else None
    fk = field if local else np.zeros((1, 1, 2), np.float32)
    fargs = (ptr(fk), fk.shape[1], fk.shape[0], 1.0 / 9.0, int(local))
    d2_t, cov_t = B.robust_residual(coef, ref, st, level, 2.0, field, 9.0)
    d2_k, cov_k = np.empty_like(ref), np.empty_like(ref)
    lib.h_robust_residual(ptr(coef), w, h, ptr(ref), w, h, ptr(st), level, 2.0, *fargs, ptr(d2_k), ptr(cov_k))
    np.testing.assert_array_equal(cov_k, cov_t)
    assert 0.2 < cov_t.mean() < 1.0
    np.testing.assert_array_equal(d2_k, d2_t)  # the same float32 operations in the same order
    e_t, cov_t2 = B.warp_residual(coef, ref, st, level, 2.0, field, 9.0)
    e_k, cov_k2 = np.empty_like(ref), np.empty_like(ref)
    lib.h_warp_residual(ptr(coef), w, h, ptr(ref), w, h, ptr(st), level, 2.0, *fargs, ptr(e_k), ptr(cov_k2))
    np.testing.assert_array_equal(cov_k2, cov_t)
    np.testing.assert_array_equal(cov_t2, cov_t)
    np.testing.assert_array_equal(e_k, e_t)
    np.testing.assert_array_equal(e_t * e_t, d2_t)
    assert (e_t < 0).any() and (e_t > 0).any()  # signed
    e = rng.random((h, w)).astype(np.float32) * 0.01
    e[:5] = 1.0  # a mover: far more residual than noise explains
    c = rng.random((h, w)).astype(np.float32)
    g = rng.random((h, w)).astype(np.float32) * 0.1
    mask = (rng.random((h, w)) < 0.1).astype(np.float32)
    for m in (None, mask):
        w_t = B.robust_weight(e, c, g, np.float32(0.0004), 0.0625, 3.0, 6.0, m)
        w_k = np.empty_like(e)
        mk = m if m is not None else np.zeros(1, np.float32)
        lib.h_robust_weight(ptr(e), ptr(c), ptr(g), e.size, np.float32(0.0004), 0.0625, 3.0, 6.0, ptr(mk),
                            int(m is not None), ptr(w_k))
        np.testing.assert_array_equal(w_k, w_t)  # float32, the same operations
        assert 0 < (w_t == 1).mean() < 1 and (w_t == 0).any()


@pytest.mark.parametrize("channels", [1, 3])
def test_normalize_kernel_math(lib, rng, channels):
    num = (rng.random((7, 9, channels)) * 300 - 20).astype(np.float32)
    den = rng.integers(0, 3, (7, 9)).astype(np.float32)
    out = np.empty((7, 9, channels), np.uint16)
    lib.h_normalize(ptr(num), ptr(den), 63, channels, np.float32(257.0), ptr(out))
    expect = B.normalize_u16(num, den, 257.0)
    np.testing.assert_array_equal(out.reshape(expect.shape), expect)


def test_field_sampling_math(lib, rng):
    """The field's float32 bilinear sample and the moved output coordinates:
    bit-identical to the twin's (positions are rounded to 1/32 px afterwards),
    within float32 rounding of the float64 definition (field_at), clamped
    beyond the outer nodes, exact at the nodes."""
    from superres_gpu.backends.numpy_backend import field_at, field_at_f32, field_output_f32

    f32 = np.float32
    field = random_field(rng, 53, 37, 6.5)
    gh, gw = field.shape[:2]
    px = rng.uniform(-10, 63, 500).astype(f32)
    py = rng.uniform(-10, 47, 500).astype(f32)
    dx_k, dy_k = np.empty(500, f32), np.empty(500, f32)
    lib.h_field_at(ptr(field), gw, gh, f32(1 / 6.5), ptr(px), ptr(py), 500, ptr(dx_k), ptr(dy_k))
    dx_t, dy_t = field_at_f32(field, f32(1 / 6.5), px, py)
    np.testing.assert_array_equal(dx_k, dx_t)
    np.testing.assert_array_equal(dy_k, dy_t)
    dx_64, dy_64 = field_at(field, 1 / 6.5, px, py)
    atol, rtol = tol("field_f32_vs_float64")
    np.testing.assert_allclose(dx_t, dx_64, atol=atol, rtol=rtol)
    np.testing.assert_allclose(dy_t, dy_64, atol=atol, rtol=rtol)
    j, i = 3, 2  # node (i, j): exactly its value
    nx, ny = field_at(field, 1 / 6.5, (j + 0.5) * 6.5 - 0.5, (i + 0.5) * 6.5 - 0.5)
    assert float(nx) == pytest.approx(field[i, j, 0], abs=1e-12)
    assert float(ny) == pytest.approx(field[i, j, 1], abs=1e-12)
    far, _ = field_at_f32(field, f32(1 / 6.5), -100.0, -100.0)  # beyond the corner node: its value
    assert float(far) == field[0, 0, 0]
    S_ = output_to_reference(1.7)
    wo, ho = output_size(53, 37, 1.7)
    Xd_k, Yd_k = np.empty((ho, wo), np.float32), np.empty((ho, wo), np.float32)
    lib.h_field_output(ptr(field), gw, gh, f32(1 / 6.5), f32(S_[0, 0]), f32(S_[0, 2]), wo, ho, ptr(Xd_k), ptr(Yd_k))
    Xd_t, Yd_t = field_output_f32(field, f32(1 / 6.5), f32(S_[0, 0]), f32(S_[0, 2]), np.arange(wo, dtype=f32),
                                  np.arange(ho, dtype=f32)[:, None])
    np.testing.assert_array_equal(Xd_k, Xd_t)
    np.testing.assert_array_equal(Yd_k, Yd_t)


@pytest.mark.parametrize("level", [0, 1, 3])
@pytest.mark.parametrize("homography", [False, True])
def test_warp_positions_and_bspline_math(lib, rng, level, homography):
    """The float32 displacement, level taps and fractions on a 4000x3000 frame,
    and the float32 B-spline sample at them: bit-identical to the twin's."""
    from superres_gpu.backends.numpy_backend import level_pos_f32, sample_bspline_f32, warp_coeffs_f32, warp_disp_f32

    f32 = np.float32
    T = random_state(rng, homography)[S.S_TINV].reshape(3, 3).copy()
    n = 4000
    px = rng.uniform(-20, 4020, n).astype(f32)
    py = rng.uniform(-20, 3020, n).astype(f32)
    px[:1000] = np.round(px[:1000])  # whole pixels, as the reference's points
    ox, oy = 1999.5, 1499.5
    out = {k: np.empty(n, f32) for k in ("dx", "dy", "tu", "tv", "u", "v")}
    iu_k, iv_k = np.empty(n, np.int32), np.empty(n, np.int32)
    lib.h_warp_positions(ptr(np.ascontiguousarray(T)), ox, oy, level, ptr(px), ptr(py), n, ptr(out["dx"]),
                         ptr(out["dy"]), ptr(iu_k), ptr(iv_k), ptr(out["tu"]), ptr(out["tv"]), ptr(out["u"]),
                         ptr(out["v"]))
    A = warp_coeffs_f32(T, ox, oy)
    dx, dy = warp_disp_f32(A, px - f32(ox), py - f32(oy))
    iu, tu, u = level_pos_f32(px, dx, level)
    iv, tv, v = level_pos_f32(py, dy, level)
    for k, t in (("dx", dx), ("dy", dy), ("tu", tu), ("tv", tv), ("u", u), ("v", v)):
        np.testing.assert_array_equal(out[k], t, err_msg=k)
    np.testing.assert_array_equal(iu_k, iu)
    np.testing.assert_array_equal(iv_k, iv)
    # the B-spline sample at those taps on a level image (taps clamped at its borders)
    img = rng.random((3000 >> level, 4000 >> level)).astype(f32)
    got = np.empty(n, f32)
    iu32, iv32 = iu.astype(np.int32), iv.astype(np.int32)
    lib.h_sample_bspline(ptr(img), img.shape[1], img.shape[0], ptr(iu32), ptr(iv32), ptr(tu), ptr(tv), n, ptr(got))
    np.testing.assert_array_equal(got, sample_bspline_f32(img, iu, iv, tu, tv))
