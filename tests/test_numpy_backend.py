"""The NumPy twins (the specification of every kernel) against independent,
direct implementations and known facts."""

from __future__ import annotations

import math

import numpy as np
import pytest

from superres_gpu.backends import base as S
from superres_gpu.backends import get_backend
from superres_gpu.backends.numpy_backend import compose_map, model_jacobian, output_map, sample_bspline
from superres_gpu.geometry import MODEL_ID, MOTION_MODELS, model_matrix
from superres_gpu.interp import alignment_taps, bspline_prefilter_taps, gaussian_taps, lanczos4_table
from superres_gpu.state import transform_state
from tolerances import TOL, tol

B = get_backend("numpy")


def direct_lanczos(src, u, v):
    """Direct Lanczos4 interpolation at positions rounded to 1/32, clamped taps."""
    tab = lanczos4_table()
    h, w = src.shape[:2]
    X = np.rint(u * 32).astype(np.int64)
    Y = np.rint(v * 32).astype(np.int64)
    ix, iy, fx, fy = X >> 5, Y >> 5, X & 31, Y & 31
    out = np.zeros(u.shape + src.shape[2:], np.float64)
    for r in range(8):
        for c in range(8):
            yy = np.clip(iy - 3 + r, 0, h - 1)
            xx = np.clip(ix - 3 + c, 0, w - 1)
            wgt = (tab[fy, r] * tab[fx, c]).astype(np.float64)
            val = src[yy, xx].astype(np.float64)
            out += (wgt[..., None] * val) if src.ndim == 3 else wgt * val
    return out


def float32_positions(M64, ho, wo):
    """Frame positions (u, v) of every output pixel as resample.cu computes
    them: the map rounded to float32, then float32 arithmetic in its order."""
    M = M64.astype(np.float32)
    Y, X = np.mgrid[0:ho, 0:wo].astype(np.float32)
    wq = M[2, 0] * X + (M[2, 1] * Y + M[2, 2])
    return (M[0, 0] * X + (M[0, 1] * Y + M[0, 2])) / wq, (M[1, 0] * X + (M[1, 1] * Y + M[1, 2])) / wq


@pytest.mark.parametrize("shape", [(37, 53), (29, 31, 3)])
def test_resample_accumulate_equals_direct_lanczos(shape, rng):
    frame = (rng.random(shape) * 255).astype(np.uint8)
    h, w = shape[:2]
    scale = 1.7
    T = np.array([[1.01, 0.02, 1.3], [-0.015, 0.99, -0.7], [2e-4, -1e-4, 1.0]])
    st = transform_state(T)
    ho, wo = round(h * scale), round(w * scale)
    c = shape[2] if len(shape) == 3 else 1
    num = np.zeros((ho, wo, c), np.float32)
    den = np.zeros((ho, wo), np.float32)
    B.resample_accumulate(frame, st, num, den, scale, 255.0)
    u, v = float32_positions(output_map(st[S.S_TINV].reshape(3, 3), scale), ho, wo)
    valid = (u >= -0.5) & (u <= w - 0.5) & (v >= -0.5) & (v <= h - 0.5)
    assert 0.3 < valid.mean() < 1.0  # the test exercises both covered and uncovered pixels
    np.testing.assert_array_equal(den, valid.astype(np.float32))
    ref = direct_lanczos(frame.astype(np.float32), u, v)
    if ref.ndim == 2:
        ref = ref[..., None]
    ref = ref * valid[..., None]
    atol, rtol = tol("lanczos_remap_vs_direct")
    np.testing.assert_allclose(num, ref, atol=atol * 255, rtol=rtol)


def test_channel_maps_move_each_channel_against_direct_lanczos(rng):
    frame = (rng.random((29, 31, 3)) * 255).astype(np.uint8)
    h, w = 29, 31
    T = np.array([[1.01, 0.02, 1.3], [-0.015, 0.99, -0.7], [0.0, 0.0, 1.0]])
    st = transform_state(T)
    cmaps = np.array([[1.004, 0, 15 * -0.004, 0, 1.004, 14 * -0.004, 0, 0, 1], np.eye(3).ravel(),
                      [0.996, 0, 15 * 0.004, 0, 0.996, 14 * 0.004, 0, 0, 1]])
    ho, wo = 2 * h, 2 * w
    num, den = np.zeros((ho, wo, 3), np.float32), np.zeros((ho, wo), np.float32)
    B.resample_accumulate(frame, st, num, den, 2.0, 255.0, None, 1, cmaps)
    plain, pden = np.zeros_like(num), np.zeros_like(den)
    B.resample_accumulate(frame, st, plain, pden, 2.0, 255.0)
    np.testing.assert_array_equal(den, pden)  # coverage is that of the unmoved position
    np.testing.assert_array_equal(num[..., 1], plain[..., 1])  # an identity map changes nothing
    M = output_map(st[S.S_TINV].reshape(3, 3), 2.0)
    valid = den > 0
    for c in (0, 2):
        u, v = float32_positions(compose_map(cmaps[c].reshape(3, 3), M), ho, wo)
        ref = direct_lanczos(np.ascontiguousarray(frame[..., c]).astype(np.float32), u, v) * valid
        atol, rtol = tol("lanczos_remap_vs_direct")
        np.testing.assert_allclose(num[..., c], ref, atol=atol * 255, rtol=rtol)
    assert not np.array_equal(num[..., 0], plain[..., 0])


_CMAPS = np.array([[1.004, 0, -0.1, 0, 1.004, -0.1, 0, 0, 1], np.eye(3).ravel(), [0.996, 0, 0.1, 0, 0.996, 0.1, 0, 0, 1]])


def _one_thread_and_many_strips(monkeypatch, strip_attr: str, channels: int, accumulate, den_planes: bool = False):
    """``accumulate(num, den)`` on 140x100 sums, once as one strip on one
    thread and once as 20 strips of 7 rows on three threads; asserts that
    some rows lie outside the frame and that every bit agrees."""
    import cv2

    from superres_gpu.backends import numpy_backend

    out = []
    before = cv2.getNumThreads()
    try:
        for threads, strip in ((1, 1 << 20), (3, 700)):
            cv2.setNumThreads(threads)
            monkeypatch.setattr(numpy_backend, strip_attr, strip)
            num = np.full((140, 100, channels), 0.5, np.float32)
            den = np.full((140, 100) + ((channels,) if den_planes else ()), 0.25, np.float32)
            accumulate(num, den)
            out.append((num, den))
    finally:
        cv2.setNumThreads(before)
    assert 0.2 < (out[0][1] == 0.25).mean() < 0.9  # rows and strips outside the frame too
    np.testing.assert_array_equal(out[0][0], out[1][0])
    np.testing.assert_array_equal(out[0][1], out[1][1])


@pytest.mark.parametrize("channel_maps", [False, True])
def test_resample_accumulate_on_threads_equals_one_thread(monkeypatch, rng, channel_maps):
    """The strips of a resample run on a thread pool: with many small strips
    (some outside the frame), weights and a homography, every bit of num and
    den is that of the whole output done as one strip on one thread."""
    frame = (rng.random((70, 50, 3)) * 255).astype(np.uint8)
    T = np.array([[1.01, 0.02, 4.3], [-0.015, 0.99, 9.7], [2e-4, -1e-4, 1.0]])
    st = transform_state(T)
    st[S.S_GAIN], st[S.S_OFFSET] = 1.02, 0.01
    wmap = rng.random((35, 25)).astype(np.float32)
    cmaps = _CMAPS if channel_maps else None
    _one_thread_and_many_strips(monkeypatch, "_RESAMPLE_STRIP_PIXELS", 3, lambda num, den: B.resample_accumulate(
        frame, st, num, den, 2.0, 255.0, wmap, 1, cmaps))


@pytest.mark.parametrize("channels,homography,channel_maps", [(3, False, False), (3, True, False), (1, False, False),
                                                             (3, False, True)])
def test_kernel_accumulate_on_threads_equals_one_thread(monkeypatch, rng, channels, homography, channel_maps):
    """The kernel merge's strips run on the thread pool too: with many small
    strips (some wholly or partly outside the frame, some far outside, where
    the window's corner is clamped), an anisotropic kernel, weights, gain and
    offset, every bit of num and den is that of one strip on one thread."""
    from superres_gpu.kernelmerge import kernel_reach

    shape = (70, 50, 3) if channels == 3 else (70, 50)
    frame = (rng.random(shape) * 255).astype(np.uint8)
    p = 2e-4 if homography else 0.0
    st = transform_state(np.array([[1.01, 0.02, 4.3], [-0.015, 0.99, 29.7], [p, -0.5 * p, 1.0]]))
    st[S.S_GAIN], st[S.S_OFFSET] = 1.02, 0.01
    wmap = rng.random((35, 25)).astype(np.float32)
    smap = np.stack([-rng.uniform(0.8, 3, (70, 50)), rng.uniform(-0.5, 0.5, (70, 50)),
                     -rng.uniform(0.8, 3, (70, 50))]).astype(np.float32)
    cmaps = _CMAPS if channel_maps else None
    _one_thread_and_many_strips(monkeypatch, "_KERNEL_STRIP_PIXELS", channels, lambda num, den: B.kernel_accumulate(
        frame, st, num, den, 2.0, 255.0, kernel_reach(2.0), wmap, 1, smap, None, 0.0, cmaps), channel_maps)


def test_bspline_sampling_and_robust_residual_on_threads_equal_one_thread(monkeypatch, rng):
    """Chunks of B-spline samples (some with taps outside the image, some not)
    and strips of the robust residual run on the thread pool: each value is
    bit for bit that of one call on one thread."""
    import cv2

    from superres_gpu.backends import numpy_backend

    coef = rng.normal(size=(60, 80)).astype(np.float32)
    u = np.concatenate([rng.uniform(5, 70, 3000), rng.uniform(-2, 81, 1000)])
    v = np.concatenate([rng.uniform(5, 50, 3000), rng.uniform(-2, 61, 1000)])
    ref_img = rng.random((60, 80)).astype(np.float32)
    st = transform_state(np.array([[1.0, 0.01, 2.5], [-0.01, 1.0, -1.5], [1e-4, 0.0, 1.0]]))
    st[S.S_GAIN], st[S.S_OFFSET] = 0.98, 0.01
    out = []
    before = cv2.getNumThreads()
    try:
        for threads, chunk, strip in ((1, 1 << 20, 1 << 20), (3, 256, 160)):  # one call; 16 chunks, 30 strips
            cv2.setNumThreads(threads)
            monkeypatch.setattr(numpy_backend, "_SAMPLE_CHUNK", chunk)
            monkeypatch.setattr(numpy_backend, "_RESAMPLE_STRIP_PIXELS", strip)
            out.append((sample_bspline(coef, u, v), *B.robust_residual(coef, ref_img, st, 0, 1.0)))
    finally:
        cv2.setNumThreads(before)
    for a, b in zip(*out):
        np.testing.assert_array_equal(a, b)
    assert 0.5 < out[0][2].mean() < 1.0  # the residual's coverage has both covered and uncovered pixels


def test_resample_accumulate_skips_dropped_frames_and_applies_gain(rng):
    frame = (rng.random((20, 24)) * 255).astype(np.uint8)
    st = S.identity_state()
    num = np.zeros((20, 24, 1), np.float32)
    den = np.zeros((20, 24), np.float32)
    st[S.S_ACCEPT] = 0.0
    B.resample_accumulate(frame, st, num, den, 1.0, 255.0)
    assert not num.any() and not den.any()
    st[S.S_ACCEPT] = 1.0
    st[S.S_GAIN] = 2.0
    st[S.S_OFFSET] = 0.1
    B.resample_accumulate(frame, st, num, den, 1.0, 255.0)
    atol, rtol = tol("gain_offset_float32")
    np.testing.assert_allclose(num[..., 0], frame * 2.0 + 25.5, atol=atol, rtol=rtol)


def test_scale_one_identity_reproduces_the_frame_exactly(rng):
    frame = (rng.random((31, 17, 3)) * 65535).astype(np.uint16)
    num = np.zeros((31, 17, 3), np.float32)
    den = np.zeros((31, 17), np.float32)
    B.resample_accumulate(frame, S.identity_state(), num, den, 1.0, 65535.0)
    out = B.normalize_u16(num, den, 1.0)
    np.testing.assert_array_equal(out, frame)


def test_luma_weights_and_range():
    f = np.zeros((2, 3, 3), np.uint8)
    f[0, 0] = (255, 0, 0)
    f[0, 1] = (0, 255, 0)
    f[0, 2] = (0, 0, 255)
    f[1] = 255
    y = B.luma(f)
    atol, rtol = tol("luma_float32")
    np.testing.assert_allclose(y[0], [0.299, 0.587, 0.114], atol=atol, rtol=rtol)
    np.testing.assert_allclose(y[1], 1.0, atol=atol, rtol=rtol)
    g = np.full((4, 5), 65535, np.uint16)
    np.testing.assert_allclose(B.luma(g), 1.0)


@pytest.mark.parametrize("shape", [(16, 16), (23, 37), (5, 4)])
def test_downsample2_equals_direct_filter(shape, rng):
    img = rng.random(shape).astype(np.float32)
    out = B.downsample2(img)
    h, w = shape
    assert out.shape == (h // 2, w // 2)
    b = np.array([1, 3, 3, 1]) / 8.0
    ref = np.zeros(out.shape)
    for y in range(h // 2):
        for x in range(w // 2):
            for i in range(4):
                for j in range(4):
                    yy = min(max(2 * y - 1 + i, 0), h - 1)
                    xx = min(max(2 * x - 1 + j, 0), w - 1)
                    ref[y, x] += b[i] * b[j] * img[yy, xx]
    atol, rtol = tol("downsample_vs_direct")
    np.testing.assert_allclose(out, ref, atol=atol, rtol=rtol)


def test_downsample2_preserves_a_linear_ramp_at_half_pixel_centres():
    # level-1 pixel x is centred at level-0 position 2x + 0.5 (the pyramid convention)
    x = np.arange(40, dtype=np.float32)
    img = np.tile(x, (10, 1))
    out = B.downsample2(img)
    atol, rtol = tol("downsample_ramp")
    np.testing.assert_allclose(out[3, 1:-1], 2 * np.arange(1, 19) + 0.5, atol=atol, rtol=rtol)


def test_gradient_of_linear_ramp():
    y, x = np.mgrid[0:9, 0:11].astype(np.float32)
    gx, gy = B.gradient(3 * x - 2 * y)
    np.testing.assert_allclose(gx[:, 1:-1], 3.0)
    np.testing.assert_allclose(gy[1:-1], -2.0)


@pytest.mark.parametrize("taps", ["gauss", "bspline", "combined"])
def test_sepfilter_equals_direct(rng, taps):
    img = rng.random((19, 23)).astype(np.float32)
    k = {"gauss": gaussian_taps(1.3), "bspline": bspline_prefilter_taps(), "combined": alignment_taps(1.5)[1]}[taps]
    out = B.sepfilter(img, k)
    k = k.astype(np.float64)
    r = len(k) // 2
    p = np.pad(img.astype(np.float64), r, mode="edge")
    tmp = sum(k[i] * p[:, i : i + 23] for i in range(len(k)))
    ref = sum(k[i] * tmp[i : i + 19] for i in range(len(k)))
    atol, rtol = tol("gaussian_vs_direct")
    np.testing.assert_allclose(out, ref, atol=atol, rtol=rtol)


def test_bspline_interpolates_samples_after_prefilter(rng):
    img = B.sepfilter(rng.random((40, 50)).astype(np.float32), gaussian_taps(1.0))
    coef = B.sepfilter(img, bspline_prefilter_taps())
    ys, xs = np.mgrid[10:30, 10:40]
    got = sample_bspline(coef, xs.ravel().astype(float), ys.ravel().astype(float))
    atol, rtol = tol("bspline_prefilter_roundtrip")
    np.testing.assert_allclose(got, img[10:30, 10:40].ravel(), atol=atol, rtol=rtol)


def _beta3(s):
    s = abs(s)
    if s < 1:
        return 2.0 / 3.0 - s * s + s**3 / 2.0
    if s < 2:
        return (2 - s) ** 3 / 6.0
    return 0.0


def direct_bspline(img, u, v):
    """Cubic B-spline interpolation at float64 (u, v), point by point in float64, taps clamped."""
    h, w = img.shape
    x0, y0 = math.floor(u), math.floor(v)
    acc = 0.0
    for j in range(y0 - 1, y0 + 3):
        for i in range(x0 - 1, x0 + 3):
            acc += _beta3(u - i) * _beta3(v - j) * float(img[min(max(j, 0), h - 1), min(max(i, 0), w - 1)])
    return acc


def test_bspline_sampling_equals_direct(rng):
    """The float32 sampler (the kernels' arithmetic) against the float64 definition."""
    img = rng.random((13, 17)).astype(np.float32)
    u = rng.uniform(-1, 17, 500)
    v = rng.uniform(-1, 13, 500)
    got = sample_bspline(img, u, v)
    assert got.dtype == np.float32
    ref = [direct_bspline(img, uu, vv) for uu, vv in zip(u, v)]
    atol, rtol = tol("bspline_f32_vs_direct")
    np.testing.assert_allclose(got, ref, atol=atol, rtol=rtol)


@pytest.mark.parametrize("level", [0, 2])
@pytest.mark.parametrize("homography", [False, True])
def test_float32_displacement_at_large_coordinates(rng, level, homography):
    """A 4000x3000 frame under a hand-held motion (rotation ~0.6 deg, zoom
    1 %, shifts of tens of px, perspective): the float32 level positions
    (tap + fraction) from the float32 displacement agree with float64
    Tinv p to a small fraction of the float32 spacing at 4000 px (2.4e-4),
    with and without a level; the position carried absolutely in float32
    would not."""
    from superres_gpu.backends.numpy_backend import level_pos_f32, warp_coeffs_f32, warp_disp_f32

    f32 = np.float32
    a = 0.01
    T = np.array([[1.01 * np.cos(a), -np.sin(a), 35.3], [np.sin(a), 0.995 * np.cos(a), -21.7],
                  [2e-6 if homography else 0.0, -1.5e-6 if homography else 0.0, 1.0]])
    Ti = np.linalg.inv(T)
    px = np.concatenate([rng.integers(0, 4000, 3000), rng.uniform(0, 4000, 1000)]).astype(f32)
    py = np.concatenate([rng.integers(0, 3000, 3000), rng.uniform(0, 3000, 1000)]).astype(f32)
    ox, oy = 1999.5, 1499.5
    A = warp_coeffs_f32(Ti, ox, oy)
    dx, dy = warp_disp_f32(A, px - f32(ox), py - f32(oy))
    iu, tu, _ = level_pos_f32(px, dx, level)
    iv, tv, _ = level_pos_f32(py, dy, level)
    P = Ti @ np.stack([px.astype(np.float64), py.astype(np.float64), np.ones(px.size)])
    f = 2.0**level
    u64 = (P[0] / P[2] + 0.5) / f - 0.5
    v64 = (P[1] / P[2] + 0.5) / f - 0.5
    err = max(np.abs(iu + tu.astype(np.float64) - u64).max(), np.abs(iv + tv.astype(np.float64) - v64).max()) * f
    bound = TOL["displacement_f32_px"][0]
    assert err < bound, err
    absolute = np.abs((P[0] / P[2]).astype(f32).astype(np.float64) - P[0] / P[2]).max()
    assert absolute > 5 * bound  # what float32 positions (not displacements) would lose


@pytest.mark.parametrize("local", [False, True])
def test_warp_residual_float32_equals_direct(rng, local):
    """The float32 level residual (positions through the float32 displacement,
    the field read in float32) against the float64 definition pixel by pixel:
    level-0 position p, p + D(p), Tinv, the B-spline, gain and offset."""
    from superres_gpu.backends.numpy_backend import field_at

    h, w, level = 30, 40, 1
    coef = rng.random((h, w)).astype(np.float32)
    ref = rng.random((h, w)).astype(np.float32)
    T = np.array([[1.003, 0.01, 1.7], [-0.01, 0.998, -1.2], [1e-4, -5e-5, 1.0]])
    st = transform_state(T, S_GAIN=1.03, S_OFFSET=-0.02)
    field = rng.normal(0, 0.7, (5, 7, 2)).astype(np.float32) if local else None
    e, cov = B.warp_residual(coef, ref, st, level, 2.0, field, 12.0)
    Ti = np.linalg.inv(T)
    f = 2.0**level
    worst, n = 0.0, 0
    for y in range(h):
        for x in range(w):
            p = np.array([f * (x + 0.5) - 0.5, f * (y + 0.5) - 0.5])
            if local:
                p = p + np.array([float(d) for d in field_at(field, 1 / 12.0, p[0], p[1])])
            q = Ti @ [p[0], p[1], 1.0]
            u, v = (q[0] / q[2] + 0.5) / f - 0.5, (q[1] / q[2] + 0.5) / f - 0.5
            inside = 2.0 <= u <= w - 3.0 and 2.0 <= v <= h - 3.0
            if min(abs(u - 2.0), abs(u - w + 3.0), abs(v - 2.0), abs(v - h + 3.0)) < 1e-4:
                continue  # on the coverage border: float32 may decide either way
            assert bool(cov[y, x]) == inside
            if inside:
                d = 1.03 * direct_bspline(coef, u, v) - 0.02 - float(ref[y, x])
                worst = max(worst, abs(float(e[y, x]) - d))
                n += 1
    assert n > 300
    assert worst < TOL["robust_residual_f32_vs_direct"][0], worst


@pytest.mark.parametrize("model", MOTION_MODELS)
def test_model_jacobian_matches_finite_differences(model, rng):
    n = {"translation": 2, "euclidean": 3, "similarity": 4, "affine": 6, "homography": 8}[model]
    xn, yn = rng.uniform(-1, 1, 5), rng.uniform(-1, 1, 5)
    gx, gy = rng.normal(size=5), rng.normal(size=5)
    J = model_jacobian(MODEL_ID[model], xn, yn, gx, gy)
    assert J.shape == (5, n)
    eps = 1e-7
    for k in range(n):
        p = np.zeros(n)
        p[k] = eps
        W = model_matrix(model, p)
        w = W[2, 0] * xn + W[2, 1] * yn + W[2, 2]
        dx = ((W[0, 0] * xn + W[0, 1] * yn + W[0, 2]) / w - xn) / eps
        dy = ((W[1, 0] * xn + W[1, 1] * yn + W[1, 2]) / w - yn) / eps
        atol, rtol = tol("jacobian_vs_finite_differences")
        np.testing.assert_allclose(J[:, k], gx * dx + gy * dy, atol=atol, rtol=rtol)


@pytest.mark.parametrize("redescend", [False, True])
def test_align_reduce_equals_direct_sums(rng, redescend):
    img = rng.random((40, 50)).astype(np.float32)
    n = 300
    pts = np.empty((5, n), np.float32)
    pts[S.PT_X] = rng.uniform(-5, 105, n)  # level-0 coords, some outside the frame
    pts[S.PT_Y] = rng.uniform(-5, 85, n)
    pts[S.PT_R] = rng.random(n)
    pts[S.PT_GX] = rng.normal(size=n)
    pts[S.PT_GY] = rng.normal(size=n)
    sig = 0.1
    T = np.array([[1.0, 0.01, 0.7], [-0.01, 1.0, -0.4], [0, 0, 1.0]])
    st = transform_state(T, S_GAIN=1.1, S_OFFSET=-0.05, S_SIGMA=sig, S_REDESCEND=float(redescend))
    norm = (49.5, 39.5, 50.0)
    level = 1
    sums = B.align_reduce(img, pts, st, MODEL_ID["homography"], level, norm)
    rho = np.zeros(S.SCALE_STEPS)
    moments = np.zeros(4)  # sum w s, w s^2, w R, w R^2
    zero = 0
    # direct, point by point
    Ti = np.linalg.inv(T)
    H = np.zeros((8, 8))
    g = np.zeros(8)
    cnt = sw = 0.0
    for i in range(n):
        x, y = float(pts[0, i]), float(pts[1, i])
        q = Ti @ [x, y, 1.0]
        u, v = (q[0] / q[2] + 0.5) / 2 - 0.5, (q[1] / q[2] + 0.5) / 2 - 0.5
        if not (0 <= u <= 49 and 0 <= v <= 39):
            continue
        s = direct_bspline(img, u, v)
        e = 1.1 * s - 0.05 - float(pts[2, i])
        if redescend:  # Tukey's biweight
            wgt = (1 - (e / (S.TUKEY_C * sig)) ** 2) ** 2 if abs(e) < S.TUKEY_C * sig else 0.0
        else:
            wgt = min(1.0, S.HUBER_K * sig / abs(e)) if e != 0 else 1.0
        for k in range(S.SCALE_STEPS):
            u = e / (S.SCALE_C * sig * 2.0 ** ((k - S.SCALE_STEPS // 2) / 2))
            rho[k] += 1.0 - (1.0 - u * u) ** 3 if abs(u) < 1 else 1.0
        r = float(pts[2, i])
        moments += wgt * np.array([s, s * s, r, r * r])
        zero += wgt == 0
        J = model_jacobian(MODEL_ID["homography"], np.array([(x - 49.5) / 50]), np.array([(y - 39.5) / 50]),
                           np.array([float(pts[3, i])]), np.array([float(pts[4, i])]))[0]
        H += wgt * np.outer(J, J)
        g += wgt * J * e
        cnt += 1
        sw += wgt
    atol, rtol = tol("reduce_f32_vs_direct")
    assert sums[S.SUM_COUNT] == cnt and sums[S.SUM_N] == n
    np.testing.assert_allclose(sums[S.SUM_W], sw, atol=atol, rtol=rtol)
    np.testing.assert_allclose(sums[S.SUM_G : S.SUM_G + 8], g, atol=atol, rtol=rtol)
    np.testing.assert_allclose(sums[S.SUM_RHO : S.SUM_RHO + S.SCALE_STEPS], rho, atol=atol, rtol=rtol)
    np.testing.assert_allclose(sums[[S.SUM_WS, S.SUM_WSS, S.SUM_WR, S.SUM_WRR]], moments, atol=atol, rtol=rtol)
    assert (zero > 0) == redescend  # residuals beyond 4.685 scales weigh nothing with Tukey's, something with Huber's
    for i in range(8):
        for j in range(i, 8):
            np.testing.assert_allclose(sums[S.SUM_H + S.upper_index(i, j)], H[i, j], atol=atol, rtol=rtol)


def test_phase_correlation_recovers_integer_shift_exactly(rng):
    big = rng.random((160, 200)).astype(np.float32)
    ref = big[20:148, 30:158]
    for dx, dy in ((3, -5), (-17, 9), (0, 0)):
        frame = big[20 + dy : 148 + dy, 30 + dx : 158 + dx]  # frame(x) = ref(x + d)
        win = np.outer(np.hanning(128), np.hanning(128)).astype(np.float32)
        surf = B.phase_correlation(B.reference_spectrum(ref, win), frame, win)
        st = S.identity_state()
        B.peak_to_state(surf, st, level=0)
        T = st[S.S_T].reshape(3, 3).copy()
        assert abs(T[0, 2] - dx) < TOL["phase_correlation_integer_px"][0]
        assert abs(T[1, 2] - dy) < TOL["phase_correlation_integer_px"][0]
        B.peak_to_state(surf, st, level=2)  # level-2 peak scales by 4 to level 0
        assert st[S.S_T][2] == 4 * T[0, 2]  # a power of two: exact


def test_normalize_u16_rounds_and_clips():
    num = np.array([[[10.0], [300.0], [-3.0]]], np.float32)
    den = np.array([[2.0, 1.0, 0.0]], np.float32)
    out = B.normalize_u16(num, den, 257.0)
    assert out.dtype == np.uint16 and out.shape == (1, 3)
    assert out.tolist() == [[1285, 65535, 0]]


def test_a_converged_level_skips_its_remaining_iterations(rng):
    """Convergence is decided inside the state: from a level's second iteration
    on, a state whose last step was below converged_px does no more work, and
    the next level (iteration 0) starts afresh."""
    img = B.sepfilter(rng.random((60, 80)).astype(np.float32), gaussian_taps(2.0))
    coef = B.sepfilter(img, bspline_prefilter_taps())
    ys, xs = np.mgrid[8:52:2, 8:72:2]
    gx, gy = B.gradient(img)
    norm = (39.5, 29.5, 40.0)
    pts = np.stack([xs.ravel(), ys.ravel(), img[ys, xs].ravel(), gx[ys, xs].ravel() * 40, gy[ys, xs].ravel() * 40])
    pts = pts.astype(np.float32)
    st = transform_state(np.array([[1, 0, 0.3], [0, 1, -0.2], [0, 0, 1.0]]))
    mid = MODEL_ID["translation"]
    for it in range(2):
        sums = B.align_reduce(coef, pts, st, mid, 0, norm, 2.0, it)
        B.align_update(sums, st, mid, norm, 1e-6, 1e9, it)  # any step counts as converged
    assert st[S.S_CONVERGED] == 1.0 and st[S.S_ITERS] == 2
    frozen = st.copy()
    sums = B.align_reduce(coef, pts, st, mid, 0, norm, 2.0, 2)
    assert not sums.any()
    B.align_update(sums, st, mid, norm, 1e-6, 1e9, 2)
    np.testing.assert_array_equal(st, frozen)  # iteration 2: nothing done
    sums = B.align_reduce(coef, pts, st, mid, 0, norm, 2.0, 0)  # a new level
    assert sums[S.SUM_COUNT] > 0
    B.align_update(sums, st, mid, norm, 1e-6, 1e9, 0)
    assert st[S.S_CONVERGED] == 0.0 and st[S.S_ITERS] == 3  # iteration 0 never counts as converged


def test_robust_noise_level_is_the_median_of_explained_residuals():
    e = np.array([[0.0, 4.0, 9.0, 100.0]], np.float32)
    c = np.array([[1.0, 1.0, 1.0, 0.2]], np.float32)  # the last pixel is not covered
    g = np.array([[0.0, 8.0, 16.0, 0.0]], np.float32)
    level = B.robust_noise_level(e, c, g, 0.25)  # e/c - g/4 over covered: 0, 2, 5
    assert float(level) == 2.0
    assert float(B.robust_noise_level(e, np.zeros_like(c), g, 0.25)) == 1.0  # nothing covered
    assert float(B.robust_noise_level(np.zeros_like(e), c, np.zeros_like(g), 0.25)) == pytest.approx(1e-12)


def direct_kernel_regression(frame, T, scale, sigma, wo, ho):
    """Every sample of the frame mapped exactly (frame -> reference by T, then
    onto the output grid), weighed by the Gaussian of its distance to each output
    pixel, ramped to 0 at 3 sigma (min(g, 16 (g - g(3 sigma)))): (num, den) by brute force in float64."""
    fh, fw = frame.shape[:2]
    jj, ii = np.mgrid[0:fh, 0:fw].astype(np.float64)
    w = T[2, 0] * ii + T[2, 1] * jj + T[2, 2]
    xr = (T[0, 0] * ii + T[0, 1] * jj + T[0, 2]) / w
    yr = (T[1, 0] * ii + T[1, 1] * jj + T[1, 2]) / w
    Xs, Ys = (scale * (xr + 0.5) - 0.5).ravel(), (scale * (yr + 0.5) - 0.5).ravel()
    vals = frame.reshape(fh * fw, -1).astype(np.float64)
    num = np.zeros((ho, wo, vals.shape[1]))
    den = np.zeros((ho, wo))
    for Y in range(ho):
        for X in range(wo):
            d2 = (Xs - X) ** 2 + (Ys - Y) ** 2
            g = np.exp(-d2 / (2 * sigma * sigma))
            k = np.maximum(np.minimum(g, 16.0 * (g - math.exp(-4.5))), 0.0)
            num[Y, X] = k @ vals
            den[Y, X] = k.sum()
    return num, den


@pytest.mark.parametrize("homography", [False, True])
@pytest.mark.parametrize("scale,sigma", [(2.0, 0.6), (1.5, 0.45), (3.0, 1.2)])
def test_kernel_accumulate_equals_direct_kernel_regression(rng, homography, scale, sigma):
    h, w = 14, 19
    frame = (rng.random((h, w, 3)) * 255).astype(np.uint8)
    a = 0.02
    T = np.array([[math.cos(a) * 1.01, -math.sin(a), 0.7], [math.sin(a), math.cos(a) * 0.99, -0.4],
                  [3e-5 if homography else 0.0, -2e-5 if homography else 0.0, 1.0]])
    st = transform_state(T)
    wo, ho = int(round(w * scale)), int(round(h * scale))
    num, den = np.zeros((ho, wo, 3), np.float32), np.zeros((ho, wo), np.float32)
    B.kernel_accumulate(frame, st, num, den, scale, 255.0, sigma)
    num_d, den_d = direct_kernel_regression(frame, T, scale, sigma, wo, ho)
    atol, rtol = tol("kernel_regression_affine" if not homography else "kernel_regression_homography")
    np.testing.assert_allclose(den, den_d, atol=atol, rtol=rtol)
    np.testing.assert_allclose(num, num_d, atol=atol * 255, rtol=rtol)


def test_kernel_accumulate_applies_gain_weights_and_skips_dropped_frames(rng):
    frame = np.full((10, 12, 3), 100, np.uint8)
    st = transform_state(np.array([[1, 0, 0.3], [0, 1, -0.2], [0, 0, 1.0]]))
    st[S.S_GAIN], st[S.S_OFFSET] = 1.5, 0.1
    num, den = np.zeros((20, 24, 3), np.float32), np.zeros((20, 24), np.float32)
    wmap = np.full((5, 6), 0.5, np.float32)
    B.kernel_accumulate(frame, st, num, den, 2.0, 255.0, 0.6, wmap, 1)
    ok = den > 1e-3
    np.testing.assert_allclose(num[ok] / den[ok, None], 100 * 1.5 + 25.5, rtol=1e-5)
    num1, den1 = np.zeros_like(num), np.zeros_like(den)
    B.kernel_accumulate(frame, st, num1, den1, 2.0, 255.0, 0.6)
    np.testing.assert_allclose(den, 0.5 * den1, rtol=1e-6)
    st[S.S_ACCEPT] = 0.0
    B.kernel_accumulate(frame, st, num1, den1, 2.0, 255.0, 0.6)
    np.testing.assert_allclose(den, 0.5 * den1, rtol=1e-6)


# ---- the local displacement field in the merge and the residuals -------------------------------------


def _field_case(rng, channels=3):
    h, w = 41, 57
    frame = (rng.random((h, w, channels) if channels == 3 else (h, w)) * 255).astype(np.uint8)
    T = np.array([[math.cos(0.01), -math.sin(0.01), 1.3], [math.sin(0.01), math.cos(0.01), -0.7], [0, 0, 1.0]])
    st = transform_state(T)
    st[S.S_GAIN], st[S.S_OFFSET] = 1.03, -0.01
    return frame, st


@pytest.mark.parametrize("chromatic", [False, True])
def test_a_zero_field_gives_exactly_the_result_without_one(rng, chromatic):
    frame, st = _field_case(rng)
    wmap = rng.random((20, 28)).astype(np.float32)
    cmaps = np.tile([1.001, 0, -0.02, 0, 1.001, -0.02, 0, 0, 1.0], (3, 1)) if chromatic else None
    num0, den0 = np.zeros((82, 114, 3), np.float32), np.zeros((82, 114), np.float32)
    B.resample_accumulate(frame, st, num0, den0, 2.0, 255.0, wmap, 1, cmaps)
    num1, den1 = np.zeros_like(num0), np.zeros_like(den0)
    B.resample_accumulate(frame, st, num1, den1, 2.0, 255.0, wmap, 1, cmaps, np.zeros((5, 7, 2), np.float32), 9.0)
    np.testing.assert_array_equal(num1, num0)
    np.testing.assert_array_equal(den1, den0)
    num2, den2 = np.zeros_like(num0), np.zeros_like(den0)
    B.kernel_accumulate(frame, st, num2, den2, 2.0, 255.0, 0.6, wmap, 1)
    num3, den3 = np.zeros_like(num0), np.zeros_like(den0)
    B.kernel_accumulate(frame, st, num3, den3, 2.0, 255.0, 0.6, wmap, 1, field=np.zeros((5, 7, 2), np.float32),
                        field_cell=9.0)
    np.testing.assert_array_equal(num3, num2)
    np.testing.assert_array_equal(den3, den2)
    coef, ref = rng.random((20, 28)).astype(np.float32), rng.random((20, 28)).astype(np.float32)
    for method in (B.robust_residual, B.warp_residual):
        a = method(coef, ref, st, 1, 2.0)
        b = method(coef, ref, st, 1, 2.0, np.zeros((3, 4, 2), np.float32), 16.0)
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])


def test_a_constant_field_is_a_shift_in_reference_coordinates(rng):
    """Reading at Tinv (p + D) for a constant D is the transform Tinv T_D: the
    field lives in the reference's coordinates, whatever the frame's rotation."""
    frame, st = _field_case(rng, channels=1)
    D = np.array([0.37, -0.61])
    field = np.tile(D.astype(np.float32), (4, 6, 1))
    num_f, den_f = np.zeros((82, 114, 1), np.float32), np.zeros((82, 114), np.float32)
    B.resample_accumulate(frame, st, num_f, den_f, 2.0, 255.0, None, 1, None, field, 10.0)
    Ti = st[S.S_TINV].reshape(3, 3) @ np.array([[1, 0, D[0]], [0, 1, D[1]], [0, 0, 1.0]])
    st2 = transform_state(np.linalg.inv(Ti))
    st2[S.S_GAIN], st2[S.S_OFFSET] = st[S.S_GAIN], st[S.S_OFFSET]
    num_m, den_m = np.zeros_like(num_f), np.zeros_like(den_f)
    B.resample_accumulate(frame, st2, num_m, den_m, 2.0, 255.0)
    same = den_f == den_m
    assert same.mean() > 0.99  # coverage: only pixels at the very border may differ
    atol, _ = tol("field_constant_vs_matrix")
    close = np.abs(num_f - num_m)[same] <= atol * 255.0
    assert close.mean() > 0.99
    assert np.abs(num_f - num_m)[same].max() < 255.0 / 32.0 * 2
    coef, ref = rng.random((20, 28)).astype(np.float32), rng.random((20, 28)).astype(np.float32)
    e_f, c_f = B.warp_residual(coef, ref, st, 1, 2.0, field, 10.0)
    e_m, c_m = B.warp_residual(coef, ref, st2, 1, 2.0)
    np.testing.assert_array_equal(c_f, c_m)
    np.testing.assert_allclose(e_f, e_m, atol=1e-5)


@pytest.mark.parametrize("shape,r", [((37, 53), 1), ((37, 53), 3), ((5, 4), 3), ((20, 30), 0)])
def test_local_extrema_are_window_min_and_max(rng, shape, r):
    """cv2.erode / dilate with replicated edges equal the running min and max
    written for any array module, and the brute-force window over the padded image."""
    from superres_gpu.backends.numpy_backend import local_extrema

    img = rng.random(shape).astype(np.float32)
    lo, hi = B.local_extrema(img, r)
    if r:
        xlo, xhi = local_extrema(np, img, r)
        np.testing.assert_array_equal(lo, xlo)
        np.testing.assert_array_equal(hi, xhi)
    p = np.pad(img, r, mode="edge")
    h, w = shape
    win = np.stack([p[i : i + h, j : j + w] for i in range(2 * r + 1) for j in range(2 * r + 1)])
    np.testing.assert_array_equal(lo, win.min(axis=0))
    np.testing.assert_array_equal(hi, win.max(axis=0))


def test_field_median3_takes_accepted_neighbours_only():
    field = np.zeros((3, 4, 2), np.float32)
    field[..., 0] = np.arange(12).reshape(3, 4)
    ok = np.ones((3, 4), np.float32)
    ok[1, 1] = 0  # left out of every median, its own included
    med = B.field_median3(field, ok)
    assert med[0, 0, 0] == np.median([0, 1, 4])
    assert med[1, 1, 0] == np.median([0, 1, 2, 4, 6, 8, 9, 10])
    none = B.field_median3(field, np.zeros_like(ok))
    assert np.isnan(none).all()


def test_tile_phase_shifts_find_each_tiles_offset(rng):
    """img(x) = ref(x + s) with s = (2.3, -1.6) everywhere: every tile finds s
    (the parabolic peak fit is biased by up to ~0.2 px at these fractions)."""
    import cv2

    ref = cv2.GaussianBlur(rng.random((200, 260)).astype(np.float32), (0, 0), 1.5)
    M = np.float32([[1, 0, 2.3], [0, 1, -1.6]])
    img = cv2.warpAffine(ref, M, (260, 200), flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP,
                         borderMode=cv2.BORDER_REFLECT)
    out = B.tile_phase_shifts(ref, img, np.array([20, 84, 148]), np.array([20, 100]), 64)
    assert out.shape == (2, 3, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out[..., 0], 2.3, atol=TOL["tile_phase_shift_px"][0])
    np.testing.assert_allclose(out[..., 1], -1.6, atol=TOL["tile_phase_shift_px"][0])
    assert (out[..., 2] > 0.5).all()
    same = B.tile_phase_shifts(ref, ref, np.array([20]), np.array([20]), 64)
    np.testing.assert_allclose(same[0, 0, :2], 0.0, atol=1e-6)


# ---- per-channel positions (chromatic aberration) in the kernel merge ---------------------------


def _kernel_tca_case(rng):
    frame, st = _field_case(rng)
    wmap = rng.random((20, 28)).astype(np.float32)
    smap = np.empty((3, 41, 57), np.float32)  # a mildly anisotropic kernel everywhere, within the reach 0.9
    smap[0], smap[1], smap[2] = -1.2, 0.3, -0.8
    field = rng.normal(0, 0.4, (5, 7, 2)).astype(np.float32)
    return frame, st, wmap, smap, field


def test_identity_channel_maps_give_exactly_the_kernel_sums_without_maps(rng):
    frame, st, wmap, smap, field = _kernel_tca_case(rng)
    eye = np.tile(np.eye(3).ravel(), (3, 1))
    num0, den0 = np.zeros((82, 114, 3), np.float32), np.zeros((82, 114), np.float32)
    B.kernel_accumulate(frame, st, num0, den0, 2.0, 255.0, 0.9, wmap, 1, smap, field, 9.0)
    num1, den1 = np.zeros_like(num0), np.zeros((82, 114, 3), np.float32)  # with maps, a plane per channel
    B.kernel_accumulate(frame, st, num1, den1, 2.0, 255.0, 0.9, wmap, 1, smap, field, 9.0, eye)
    assert np.any(den0 > 0)
    np.testing.assert_array_equal(num1, num0)
    for c in range(3):
        np.testing.assert_array_equal(den1[..., c], den0)
    with pytest.raises(ValueError, match="den must be"):  # a shared den with maps would mix the channels' sums
        B.kernel_accumulate(frame, st, num1, den0, 2.0, 255.0, 0.9, wmap, 1, smap, field, 9.0, eye)


def test_a_channel_map_reads_each_channel_where_its_image_is(rng):
    # blue's image is green's moved one frame pixel right and down: with the map that says so, blue's
    # kernel sums are green's inside the frame (the same samples and kernels, at fractional positions that
    # agree to the float32 rounding of the per-pixel positions: a few ulp)
    frame, st = _field_case(rng)
    frame[:, :, 2] = 0
    frame[1:, 1:, 2] = frame[:-1, :-1, 1]
    maps = np.tile(np.eye(3).ravel(), (3, 1))
    maps[2] = [1, 0, 1.0, 0, 1, 1.0, 0, 0, 1]
    num, den = np.zeros((82, 114, 3), np.float32), np.zeros((82, 114, 3), np.float32)
    B.kernel_accumulate(frame, st, num, den, 2.0, 255.0, 0.6, channel_maps=maps)
    inner = (slice(8, -8), slice(8, -8))
    assert np.all(den[inner] > 0)
    np.testing.assert_allclose(num[inner][..., 2], num[inner][..., 1], rtol=2e-5, atol=1e-3)
    plain, dplain = np.zeros_like(num), np.zeros((82, 114), np.float32)
    B.kernel_accumulate(frame, st, plain, dplain, 2.0, 255.0, 0.6)
    assert np.abs(plain[inner][..., 2] - plain[inner][..., 1]).max() > 20  # without the map blue is elsewhere
    for c in range(3):  # green's and blue's kernel sums agree, and red's (identity map) is the plain one
        np.testing.assert_allclose(den[inner][..., c], dplain[inner], rtol=2e-5)


def test_channel_maps_make_each_channel_its_own_kernel_regression(rng):
    # each channel gathered alone, its map folded into the frame's transform (Mc = Cc Tinv S), gives that
    # channel's sums A_c, Ks_c; with the maps channel c's plane of den adds Ks_c and num_c adds its own sum
    frame, st, wmap, smap, field = _kernel_tca_case(rng)
    maps = np.empty((3, 9))
    for c, k in enumerate((1.004, 1.0, 0.996)):
        maps[c] = [k, 0.0, 20 * (1 - k), 0.0, k, 30 * (1 - k), 0.0, 0.0, 1.0]
    num, den = np.zeros((82, 114, 3), np.float32), np.zeros((82, 114, 3), np.float32)
    B.kernel_accumulate(frame, st, num, den, 2.0, 255.0, 0.9, None, 1, smap, field, 9.0, maps)
    Ti = st[S.S_TINV].reshape(3, 3)
    sums = []
    for c in range(3):
        sc = st.copy()
        sc[S.S_TINV] = (maps[c].reshape(3, 3) @ Ti).ravel()
        n1, d1 = np.zeros((82, 114, 1), np.float32), np.zeros((82, 114), np.float32)
        B.kernel_accumulate(np.ascontiguousarray(frame[..., c : c + 1]), sc, n1, d1, 2.0, 255.0, 0.9, None, 1, smap,
                            field, 9.0)
        sums.append((n1[..., 0].astype(np.float64), d1.astype(np.float64)))
    atol, rtol = tol("kernel_channel_maps_vs_per_channel")
    assert np.mean(np.minimum.reduce([d for _, d in sums]) > 1e-3) > 0.9
    for c, (n1, d1) in enumerate(sums):
        np.testing.assert_allclose(den[..., c], d1, atol=atol, rtol=rtol)
        np.testing.assert_allclose(num[..., c], n1, atol=atol * 255.0, rtol=rtol)
    assert np.any(np.abs(sums[0][1] - sums[2][1]) > 0.05)  # the channels' kernel sums do differ


def test_m_scale_is_robust_to_outliers_and_consistent_at_the_normal(rng):
    from superres_gpu.backends.numpy_backend import m_scale, scale_rho

    n, sd = 20000, 0.01
    for frac in (0.0, 0.2):
        e = rng.normal(0, sd, n)
        k = int(frac * n)
        e[:k] = rng.uniform(10 * sd, 50 * sd, k) * rng.choice([-1, 1], k)  # passers-by: far off the template
        sigma = rms = float(np.sqrt(np.mean(e * e)))
        for _ in range(8):  # as over a level's iterations, started from the RMS
            sigma = m_scale(np.array([scale_rho(e / (S.SCALE_C * s)).sum() for s in S.scale_trials(sigma)]), n, sigma)
        limit = TOL["m_scale_normal_rel" if frac == 0 else "m_scale_outliers_rel"][0]
        assert abs(sigma / sd - 1) < limit, (frac, sigma / sd)
        assert frac == 0 or rms > 10 * sd  # what the scale was before: the RMS, inflated 14x


def test_m_scale_outside_the_trials_goes_to_the_outermost():
    from superres_gpu.backends.numpy_backend import m_scale

    trials = S.scale_trials(0.1)
    assert m_scale(np.zeros(S.SCALE_STEPS), 10.0, 0.1) == trials[0]  # every residual tiny: scale down
    assert m_scale(np.full(S.SCALE_STEPS, 10.0), 10.0, 0.1) == trials[-1]  # every residual huge: scale up
    rho = np.array([9.0, 8.0, 5.0, 2.0, 1.0])  # mean rho crosses 0.5 exactly at the middle trial
    assert m_scale(rho, 10.0, 0.1) == pytest.approx(0.1)


def test_tile_phase_shifts_spans_and_threads_agree(rng):
    """The CPU's one-row spans on the worker threads, the GPU's large spans in
    turn (the same code on NumPy) and a full-spectrum reference agree."""
    import math

    from superres_gpu.backends.numpy_backend import _run_strips, tile_phase_shifts

    ref = rng.random((150, 230)).astype(np.float32)
    img = np.roll(ref, (3, -2), axis=(0, 1)) + rng.normal(0, 0.05, ref.shape).astype(np.float32)
    x0, y0 = np.array([0, 50, 100, 166]), np.array([0, 40, 86])
    small = tile_phase_shifts(np, ref, img, x0, y0, 64, run=_run_strips, span_pixels=1)
    large = tile_phase_shifts(np, ref, img, x0, y0, 64, span_pixels=1 << 22)
    np.testing.assert_array_equal(small, large)
    # the integer peak of the full spectrum's surface, tile by tile
    k = np.arange(64)
    w1 = 0.5 - 0.5 * np.cos(2.0 * math.pi * (k + 0.5) / 64)
    win = w1[:, None] * w1[None, :]
    for i, y in enumerate(y0):
        for j, x in enumerate(x0):
            a, b = ref[y : y + 64, x : x + 64], img[y : y + 64, x : x + 64]
            fa, fb = np.fft.fft2((a - a.mean()) * win), np.fft.fft2((b - b.mean()) * win)
            c = fa * np.conj(fb)
            c = c / np.maximum(np.abs(c), 1e-30)
            c[0, 0] = 0
            surf = np.fft.ifft2(c).real
            py, px = np.unravel_index(np.argmax(surf), surf.shape)
            sx, sy = (px - 64 if px >= 32 else px), (py - 64 if py >= 32 else py)
            assert abs(small[i, j, 0] - sx) <= 0.5 and abs(small[i, j, 1] - sy) <= 0.5
            assert abs(small[i, j, 2] - surf.max()) < 1e-4
