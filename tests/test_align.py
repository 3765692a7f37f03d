"""Alignment: known shifts, synthetic hand-held bursts, real bursts, failures."""

from __future__ import annotations

import numpy as np
import pytest

from superres_gpu.align import AlignConfig, Reference, align_frame, drop_reason, select_points
from superres_gpu.backends import base as S
from superres_gpu.backends.numpy_backend import NumpyBackend
from superres_gpu.geometry import MOTION_MODELS, grid_rms_error
from superres_gpu.synth import draw_chart
from tolerances import TOL

from conftest import real_data

B = NumpyBackend()


def _scene(h=300, w=400, seed=0):
    import cv2

    chart = draw_chart(w, h, seed=seed)
    return (cv2.GaussianBlur(chart, (0, 0), 1.0) * 255).astype(np.uint8)


@pytest.mark.parametrize("model", ["translation", "homography"])
@pytest.mark.parametrize("dx,dy", [(7, -4), (-23, 15), (1, 0)])
def test_integer_shifts_recovered(model, dx, dy):
    big = _scene()
    ref = big[40:232, 60:316]
    frame = big[40 + dy : 232 + dy, 60 + dx : 316 + dx]  # frame(x) = ref(x + d): T = +d
    r = Reference(B, ref, AlignConfig(model=model))
    st = align_frame(B, r, frame)
    T = st[S.S_T].reshape(3, 3)
    truth = np.array([[1, 0, dx], [0, 1, dy], [0, 0, 1.0]])
    assert st[S.S_ACCEPT] == 1.0
    assert grid_rms_error(T, truth, 256, 192) < TOL["integer_shift_px"][0]


def _fourier_shift(img, dx, dy):
    h, w = img.shape
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.fftfreq(w)[None, :]
    return np.fft.ifft2(np.fft.fft2(img) * np.exp(-2j * np.pi * (fx * dx + fy * dy))).real


@pytest.mark.parametrize("dx,dy", [(0.3, -0.45), (2.71, 1.18), (-0.5, 0.5)])
def test_subpixel_fourier_shifts_recovered(dx, dy, rng):
    # a band-limited random texture, periodic so the Fourier shift is exact
    h, w = 192, 256
    spec = np.fft.fft2(rng.standard_normal((h, w)))
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.fftfreq(w)[None, :]
    spec *= np.exp(-((fx**2 + fy**2) / (2 * 0.12**2)))
    base = np.fft.ifft2(spec).real
    base = (base - base.min()) / (base.max() - base.min())
    shifted = _fourier_shift(base, -dx, -dy)  # shifted(x) = base(x + d)
    to16 = lambda a: np.clip(a * 65535, 0, 65535).astype(np.uint16)  # noqa: E731
    r = Reference(B, to16(base), AlignConfig(model="translation"))
    st = align_frame(B, r, to16(shifted))
    T = st[S.S_T].reshape(3, 3)
    assert abs(T[0, 2] - dx) < TOL["fourier_shift_px"][0]
    assert abs(T[1, 2] - dy) < TOL["fourier_shift_px"][0]


@pytest.mark.parametrize("model", ["similarity", "affine", "homography"])
def test_synthetic_handheld_burst_aligns_within_tolerance(model, medium_burst):
    b = medium_burst
    r = Reference(B, b.frames[0], AlignConfig(model=model))
    errs = []
    for f, T in zip(b.frames[1:], b.transforms[1:]):
        st = align_frame(B, r, f)
        assert st[S.S_ACCEPT] == 1.0, drop_reason(st, r.config)
        errs.append(grid_rms_error(st[S.S_T].reshape(3, 3), T, b.params["width"], b.params["height"]))
    rms = float(np.sqrt(np.mean(np.square(errs))))
    assert rms < TOL["align_rms_synthetic_px"][0], f"{model}: RMS {rms:.4f} px"


def test_translation_model_keeps_pure_translation(small_burst):
    r = Reference(B, small_burst.frames[0], AlignConfig(model="translation"))
    st = align_frame(B, r, small_burst.frames[1])
    T = st[S.S_T].reshape(3, 3)
    np.testing.assert_allclose(T[:2, :2], np.eye(2), atol=1e-12)
    np.testing.assert_allclose(T[2], [0, 0, 1], atol=1e-12)


def test_unrelated_frame_is_dropped_with_a_reason(small_burst, rng):
    r = Reference(B, small_burst.frames[0], AlignConfig())
    noise = (rng.random(small_burst.frames[0].shape) * 255).astype(np.uint8)
    st = align_frame(B, r, noise)
    assert st[S.S_ACCEPT] == 0.0
    reason = drop_reason(st, r.config)
    assert reason and reason.startswith("alignment failed")


def test_mask_keeps_points_out_of_masked_region(small_burst):
    h, w = small_burst.frames[0].shape[:2]
    mask = np.zeros((h, w), bool)
    mask[:, : w // 2] = True
    r = Reference(B, small_burst.frames[0], AlignConfig(), mask=mask)
    for level, pts in r.points.items():
        x0 = pts[S.PT_X]
        assert pts.shape[1] > 0
        assert np.all(x0 >= w // 2 - 2 ** (level + 1)), f"level {level} uses masked pixels"
    st = align_frame(B, r, small_burst.frames[2])
    assert st[S.S_ACCEPT] == 1.0
    err = grid_rms_error(st[S.S_T].reshape(3, 3), small_burst.transforms[2], w, h)
    assert err < 0.1


def test_mask_ignores_a_moving_object(medium_burst):
    """A textured patch pasted at different places in the frame: masked, alignment is unaffected."""
    b = medium_burst
    ref = b.frames[0].copy()
    frame = b.frames[3].copy()
    rng = np.random.default_rng(9)
    patch = (rng.random((60, 80, 3)) * 255).astype(np.uint8)
    ref[20:80, 20:100] = patch
    frame[30:90, 40:120] = patch
    mask = np.zeros(ref.shape[:2], bool)
    mask[10:100, 10:130] = True
    w, h = b.params["width"], b.params["height"]
    r = Reference(B, ref, AlignConfig(), mask=mask)
    st = align_frame(B, r, frame)
    assert grid_rms_error(st[S.S_T].reshape(3, 3), b.transforms[3], w, h) < 0.05


def test_select_points_spreads_over_cells(rng):
    score = rng.random((100, 160))
    score[:, :80] *= 0.01  # the left half is much weaker...
    ys, xs = select_points(score, 400, 16)
    assert 0.7 * 400 <= ys.size <= 400
    assert (xs < 80).sum() > 150  # ...but still gets its share of points
    ys2, xs2 = select_points(score, 10**6, 16)
    assert ys2.size == score.size


def test_reference_aligns_to_itself_exactly(small_burst):
    r = Reference(B, small_burst.frames[0], AlignConfig())
    st = align_frame(B, r, small_burst.frames[0])
    # only the truncation of the B-spline inverse filter (radius 9) is left
    assert grid_rms_error(st[S.S_T].reshape(3, 3), np.eye(3), 160, 120) < 1e-5


@pytest.mark.parametrize("model", MOTION_MODELS)
def test_every_model_runs_and_accepts(model, small_burst):
    r = Reference(B, small_burst.frames[0], AlignConfig(model=model))
    st = align_frame(B, r, small_burst.frames[4])
    assert st[S.S_ACCEPT] == 1.0


def _bookshelf_crops(size=512):
    from superres_gpu.io import read_frame

    folder = real_data("pixlsus_bookshelf_nexus5x")
    files = sorted(folder.glob("*.jpg"))
    assert len(files) == 10
    out = []
    for f in files:
        img = read_frame(f)
        h, w = img.shape[:2]
        y0, x0 = (h - size) // 2, (w - size) // 2
        out.append(np.ascontiguousarray(img[y0 : y0 + size, x0 : x0 + size]))
    return out


def test_real_bookshelf_crops_all_align():
    crops = _bookshelf_crops()
    r = Reference(B, crops[0], AlignConfig())
    for c in crops[1:]:
        st = align_frame(B, r, c)
        assert st[S.S_ACCEPT] == 1.0, drop_reason(st, r.config)
        assert st[S.S_CORR] > 0.9
        assert st[S.S_RMS] < 0.06  # RMS luma residual after alignment (of 1.0 full scale)
