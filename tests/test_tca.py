"""Lateral chromatic aberration: the estimate on synthetic bursts with known radial scaling."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from superres_gpu import cli, synth
from superres_gpu.backends import get_backend
from superres_gpu.errors import AlignmentError
from superres_gpu.tca import ChannelTCA, TCAEstimate, estimate
from tolerances import TOL

B = get_backend("numpy")
TRUE_CA = (0.002, -0.002)  # red +0.2 %, blue -0.2 %


def _burst(ca, frames=4, seed=None, **camera):
    r = synth.RECIPES["test-medium"]
    cam = dataclasses.replace(r.camera, lateral_ca=ca, **camera)
    return synth.recipe_burst("test-medium", frames=frames, camera=cam, **({} if seed is None else {"seed": seed}))


def _corner_error(est, camera, w, h) -> dict:
    """Per channel, the largest distance at the frame's corners between the
    estimate's position of green's corner and the truth's (px)."""
    xs, ys = np.array([0.0, w - 1, w - 1, 0.0]), np.array([0.0, 0.0, h - 1, h - 1])
    out = {}
    for name, ch in (("red", est.red), ("blue", est.blue)):
        u, v = ch.position(xs, ys, est.radius)
        gx, gy = synth.tca_source_position(camera, w, h, name, u, v)  # where green shows what the channel shows there
        out[name] = float(np.max(np.hypot(gx - xs, gy - ys)))
    return out


def test_synthetic_aberration_moves_red_and_blue_only():
    plain, ca = _burst((0.0, 0.0), frames=2, jpeg_quality=None), _burst(TRUE_CA, frames=2, jpeg_quality=None)
    for a, b in zip(plain.frames, ca.frames):
        assert np.array_equal(a[..., 1], b[..., 1])
        assert not np.array_equal(a[..., 0], b[..., 0]) and not np.array_equal(a[..., 2], b[..., 2])


def test_scale_is_estimated_on_lossless_frames():
    est = estimate(B, _burst(TRUE_CA, jpeg_quality=None).frames)
    tol = TOL["tca_scale_rel"][0]
    assert abs(est.red.scale - TRUE_CA[0]) < tol * abs(TRUE_CA[0]), est.report()
    assert abs(est.blue.scale - TRUE_CA[1]) < tol * abs(TRUE_CA[1]), est.report()
    assert est.red.cubic == 0.0 and est.blue.cubic == 0.0  # no cubic term where there is none
    assert est.report()["red"]["cubic_centre"] == [159.5, 119.5]  # the frame's centre, as with a cubic term
    assert est.frames == 4
    # 0.2 % at the corner of a 320x240 frame (200 px from the centre): about 0.4 px
    shift = est.corner_shift_px()
    assert 0.3 < shift["red"] < 0.5 and 0.3 < shift["blue"] < 0.5


def test_no_aberration_estimates_nearly_none():
    est = estimate(B, _burst((0.0, 0.0), jpeg_quality=None).frames)
    assert est.red.cubic == 0.0 and est.blue.cubic == 0.0
    assert abs(est.red.scale) < TOL["tca_scale_rel"][0] * abs(TRUE_CA[0])
    assert abs(est.blue.scale) < TOL["tca_scale_rel"][0] * abs(TRUE_CA[1])


TRUE_CUBIC = (0.003, -0.002)  # red, blue: extra magnification at the corners


def test_cubic_term_is_estimated_from_one_frame():
    """A lens whose aberration grows with the cube of the radius: from one
    lossless frame (what ``superres run`` uses) the cubic term within 20 % and
    the channels within 0.07 px of the truth at the corners, where the
    similarity alone is off by more than 0.2 px."""
    b = _burst(TRUE_CA, frames=1, jpeg_quality=None, lateral_ca_cubic=TRUE_CUBIC)
    camera = dataclasses.replace(synth.RECIPES["test-medium"].camera, lateral_ca=TRUE_CA, lateral_ca_cubic=TRUE_CUBIC)
    h, w = b.frames[0].shape[:2]
    est = estimate(B, b.frames)
    tol = TOL["tca_cubic_rel"][0]
    assert abs(est.red.cubic - TRUE_CUBIC[0]) < tol * abs(TRUE_CUBIC[0]), est.report()
    assert abs(est.blue.cubic - TRUE_CUBIC[1]) < tol * abs(TRUE_CUBIC[1]), est.report()
    err = _corner_error(est, camera, w, h)
    assert max(err.values()) < TOL["tca_corner_px"][0], err
    linear = _corner_error(estimate(B, b.frames, cubic=False), camera, w, h)
    assert min(linear.values()) > 0.2, linear
    # the maps the merge kernels take carry the same model
    maps = est.channel_maps()
    assert maps.shape == (3, 12) and maps[0, 11] == pytest.approx(est.red.cubic / est.radius**2)
    assert np.array_equal(maps[1], np.concatenate([np.eye(3).ravel(), np.zeros(3)]))


def test_cubic_fit_recovers_the_model_exactly():
    """An edge image moved by the model itself (a similarity and a cubic
    term, cubic interpolation): the Gauss-Newton fit gives the cubic back."""
    import cv2

    from superres_gpu.tca import _cubic_fit, edge_strength

    g = edge_strength(_burst((0.0, 0.0), frames=1, jpeg_quality=None).frames[0][..., 1])
    h, w = g.shape
    R, c = 0.5 * np.hypot(w, h), np.array([(w - 1) / 2.0, (h - 1) / 2.0])
    K, s = 0.004, 0.001  # q = c + (p - c)(1 + s)(1 + K |(1 + s)(p - c) / R|^2)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    px, py = x.copy(), y.copy()  # invert the map by fixed-point iteration: other(q) = g(p)
    for _ in range(30):
        r2 = (1 + s) ** 2 * ((px - c[0]) ** 2 + (py - c[1]) ** 2) / R**2
        z = (1 + s) * (1 + K * r2)
        px, py = c[0] + (x - c[0]) / z, c[1] + (y - c[1]) / z
    other = cv2.remap(g, px.astype(np.float32), py.astype(np.float32), cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
    (s_fit, _, _, _, k_fit, _, _), se = _cubic_fit(g, other, np.eye(3), 0.0)
    assert abs(k_fit - K) < TOL["tca_cubic_exact_rel"][0] * K, (k_fit, se)
    assert abs(s_fit - s) < 0.02 * s
    assert 0 < se < 0.1 * K


def test_corner_shift_of_a_known_model():
    ch = ChannelTCA(0.001, 99.5, 49.5, 0.0)
    est = TCAEstimate(ch, ChannelTCA(0.0, 99.5, 49.5, 0.0), 200, 100, 1)
    shift = est.corner_shift_px()
    assert shift["red"] == pytest.approx(0.001 * np.hypot(99.5, 49.5))
    assert shift["blue"] == 0.0


def test_grey_frames_are_refused():
    with pytest.raises(AlignmentError, match="colour"):
        estimate(B, [np.zeros((40, 50), np.uint8)])


def test_the_tca_command_prints_the_estimate(tmp_path, capsys):
    _burst(TRUE_CA, frames=3, jpeg_quality=None).write(tmp_path / "b")
    assert cli.main(["tca", str(tmp_path / "b"), "--backend", "numpy"]) == 0
    text = capsys.readouterr().out
    assert "red" in text and "blue" in text and "corner shift" in text and "3 frames" in text
    assert "--tca auto (the default) would correct it" in text and "+- 0.0" in text
    with pytest.raises(SystemExit) as e:
        cli.main(["tca", str(tmp_path / "b"), "--frames", "0"])
    assert e.value.code == 2 and "--frames must be at least 1" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert cli.main(["tca", str(tmp_path / "empty")]) == 1  # one line naming the folder, not an internal error
    assert f"{tmp_path / 'empty'}: no JPEG, PNG or TIFF frames found" in capsys.readouterr().err


def test_the_tca_command_says_how_subsampled_chroma_was_decoded(tmp_path, capsys):
    """On JPEG 4:2:0 frames the command says the chroma was brought up smoothly; on
    HEIC frames (pillow-heif), in blocks; the report carries the same."""
    b = _burst(TRUE_CA, frames=2, jpeg_quality=92)
    b.write(tmp_path / "jpg")
    assert cli.main(["tca", str(tmp_path / "jpg"), "--backend", "numpy"]) == 0
    assert "chroma subsampled 2x2, brought up smoothly, as JPEG decoders do" in capsys.readouterr().out
    pillow_heif = pytest.importorskip("pillow_heif")
    lossless = _burst(TRUE_CA, frames=2, jpeg_quality=None)
    (tmp_path / "heic").mkdir()
    for i, f in enumerate(lossless.frames):
        h, w = f.shape[:2]
        pillow_heif.from_bytes(mode="RGB", size=(w, h), data=np.ascontiguousarray(f).tobytes()).save(
            tmp_path / "heic" / f"f{i}.heic", quality=90)
    assert cli.main(["tca", str(tmp_path / "heic"), "--backend", "numpy"]) == 0
    assert "chroma subsampled 2x2, brought up in blocks, as HEIC through pillow-heif" in capsys.readouterr().out


@pytest.mark.parametrize("sampling,want", [("420", (2, 2)), ("422", (2, 1)), ("444", (1, 1)), ("grey", (1, 1))])
def test_the_jpeg_chroma_subsampling_is_read_from_the_header(tmp_path, rng, sampling, want):
    import cv2

    from superres_gpu.discover import probe

    img = (rng.random((24, 40, 1 if sampling == "grey" else 3)) * 255).astype(np.uint8)
    params = [] if sampling == "grey" else [
        cv2.IMWRITE_JPEG_SAMPLING_FACTOR,
        {"420": cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420, "422": cv2.IMWRITE_JPEG_SAMPLING_FACTOR_422,
         "444": cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444}[sampling]]
    ok, buf = cv2.imencode(".jpg", img, params)
    path = tmp_path / "f.jpg"
    path.write_bytes(buf.tobytes())
    assert probe(path).chroma == want
    png = tmp_path / "f.png"
    cv2.imwrite(str(png), img)
    assert probe(png).chroma == (1, 1)


def test_the_chroma_band_correction_moves_the_low_band_only(rng):
    """tca_band moves what is smooth in a channel and leaves its fine detail:
    a broad blob in red follows the map, a one-pixel checkerboard (all luma
    detail on 4:2:0 frames: its 2x2 blocks average to one grey) stays."""
    h, w = 60, 80
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    shift = 0.625  # red's map: green position p shows in red at p + (0.625, 0) (20/32 px, no rounding)
    maps = np.tile(np.eye(3).ravel(), (3, 1))
    maps[0, 2] = shift
    blob = lambda dx: 60 + 150 * np.exp(-((x + dx - 40) ** 2 + (y - 30) ** 2) / (2 * 12.0**2))
    frame = np.rint(257 * np.stack([blob(0.0)] * 3, axis=2)).astype(np.uint16)
    out = B.tca_band(frame, maps, (2, 2))
    assert np.array_equal(out[..., 1:], frame[..., 1:].astype(np.float32))  # green and blue copied
    inner = (slice(10, -10), slice(10, -10))
    # moved: within 3 % of the 5 levels the steepest part moves by (the blob's own part above the band stays)
    np.testing.assert_allclose(out[..., 0][inner] / 257, blob(shift)[inner], atol=0.15)
    assert np.abs(out[..., 0] - frame[..., 0])[inner].max() / 257 > 2.0
    checker = (np.indices((h, w)).sum(axis=0) % 2 * 200 + 20).astype(np.uint8)
    fine = np.repeat(checker[..., None], 3, axis=2)
    moved = B.tca_band(fine, maps, (2, 2))
    assert np.abs(moved[..., 0] - fine[..., 0])[inner].max() < 1.0
    # the same with a decoder that repeats the chroma in blocks (HEIC): its smooth band moves
    out = B.tca_band(frame, maps, (2, 2), "nearest")
    np.testing.assert_allclose(out[..., 0][inner] / 257, blob(shift)[inner], atol=0.15)
    assert np.array_equal(out[..., 1:], frame[..., 1:].astype(np.float32))
    moved = B.tca_band(fine, maps, (2, 2), "nearest")
    assert np.abs(moved[..., 0] - fine[..., 0])[inner].max() < 1.0


def test_scale_is_estimated_on_4_2_0_jpeg_frames():
    """On 4:2:0 JPEG frames the channels are compared in their low band: the
    scale within 10 % of the truth where the full-resolution comparison finds
    about 40 % of it (the luma's detail, the same in every channel)."""
    frames = _burst(TRUE_CA, frames=1, jpeg_quality=92).frames
    est = estimate(B, frames, chroma=(2, 2))
    assert est.subsampled and est.report()["correction"] == "chroma band"
    tol = TOL["tca_scale_rel"][0]
    assert abs(est.red.scale - TRUE_CA[0]) < tol * abs(TRUE_CA[0]), est.report()
    assert abs(est.blue.scale - TRUE_CA[1]) < tol * abs(TRUE_CA[1]), est.report()
    full = estimate(B, frames)
    assert full.red.scale < 0.6 * TRUE_CA[0] and full.band_chain() is None


def _decoded(img: np.ndarray, codec: str, quality: int = 100) -> np.ndarray:
    """``img`` (RGB uint8) through a codec (at its highest quality unless
    told): JPEG 4:2:0 or 4:2:2 through OpenCV, HEIC (4:2:0) through pillow-heif."""
    import io

    import cv2

    if codec == "heic":
        pillow_heif = pytest.importorskip("pillow_heif")
        buf = io.BytesIO()
        h, w = img.shape[:2]
        pillow_heif.from_bytes(mode="RGB", size=(w, h), data=np.ascontiguousarray(img).tobytes()).save(
            buf, format="HEIF", quality=quality)
        return np.asarray(pillow_heif.open_heif(io.BytesIO(buf.getvalue())))[..., :3]
    flag = {"jpeg420": cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420, "jpeg422": cv2.IMWRITE_JPEG_SAMPLING_FACTOR_422}[codec]
    ok, buf = cv2.imencode(".jpg", img[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality, cv2.IMWRITE_JPEG_SAMPLING_FACTOR,
                                                    flag])
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1]


@pytest.mark.parametrize("codec,chroma,upsampling", [("jpeg420", (2, 2), "linear"), ("jpeg422", (2, 1), "linear"),
                                                     ("heic", (2, 2), "nearest")])
def test_the_chroma_low_band_leaves_each_channels_own_low_band(rng, codec, chroma, upsampling):
    """A decoded subsampled channel is its own low band (block average, then
    linear upsampling for JPEG, nearest for HEIC through pillow-heif) plus
    the luma's fine detail: the decoder's upsampling is told from the frame,
    and taking the luma's share out leaves the true channel through that
    chain, to the codec's rounding (odd frame sides: the encoder's
    replicated last row and column)."""
    import cv2

    from superres_gpu.pixels import chroma_block_spread, chroma_low_band, chroma_upsampling, smooth_chroma_band

    h, w = 61, 83
    base = cv2.GaussianBlur(rng.random((h, w, 3)).astype(np.float32), (0, 0), 1.0)
    img = np.clip((base - base.min()) / np.ptp(base) * 255, 0, 255).astype(np.uint8)
    decoded = _decoded(img, codec)
    assert decoded.shape == img.shape
    assert chroma_upsampling(decoded, chroma) == upsampling, chroma_block_spread(decoded, chroma)
    sx, sy = chroma
    padded = np.pad(img.astype(np.float64), ((0, -h % sy), (0, -w % sx), (0, 0)), mode="edge")
    blocks = padded.reshape(padded.shape[0] // sy, sy, padded.shape[1] // sx, sx, 3).mean(axis=(1, 3))
    if upsampling == "linear":
        want = cv2.resize(blocks.astype(np.float32), padded.shape[1::-1], interpolation=cv2.INTER_LINEAR)[:h, :w]
    else:
        want = np.repeat(np.repeat(blocks, sy, axis=0), sx, axis=1)[:h, :w]
    out = chroma_low_band(decoded, chroma, upsampling=upsampling)
    assert out.dtype == np.float32 and out.shape == decoded.shape

    def rms(a):
        return float(np.sqrt(np.mean((a - want) ** 2)))
    tol = TOL["tca_luma_chain_levels"][0]
    assert rms(out) < tol and rms(decoded.astype(np.float32)) > 5 * tol, (rms(out), rms(decoded.astype(np.float32)))
    other = chroma_low_band(decoded, chroma, upsampling="nearest" if upsampling == "linear" else "linear")
    assert rms(other) > 5 * tol  # the other decoder's chain does not fit
    # what the correction moves: the true channel through the block average and linear upsampling
    smooth = cv2.resize(blocks.astype(np.float32), padded.shape[1::-1], interpolation=cv2.INTER_LINEAR)[:h, :w]
    moved = smooth_chroma_band(decoded, chroma, upsampling=upsampling)
    assert moved.dtype == np.float32 and float(np.sqrt(np.mean((moved - smooth) ** 2))) < tol
    if upsampling == "linear":
        assert np.array_equal(moved, out)
    assert np.array_equal(decoded, _decoded(img, codec))  # the input is left as it was
    assert np.array_equal(chroma_low_band(decoded, (1, 1)), decoded.astype(np.float32))
    with pytest.raises(ValueError, match="upsampling"):
        chroma_low_band(decoded, chroma, upsampling="cubic")


@pytest.mark.parametrize("orientation", range(1, 9))
def test_the_chroma_chain_follows_the_exif_orientation_of_odd_frames(rng, orientation):
    """The encoder's blocks start at the stored picture's first row and column: a
    frame turned upright with a reversed odd side has its partial block first
    (FrameInfo.chroma_origin), and the chain on the upright frame is the stored
    frame's chain turned upright; the decoder is told apart as on the stored frame."""
    import cv2

    from superres_gpu.decode import apply_orientation
    from superres_gpu.discover import FrameInfo
    from superres_gpu.pixels import chroma_low_band, chroma_upsampling, smooth_chroma_band

    h, w = 61, 83
    base = cv2.GaussianBlur(rng.random((h, w, 3)).astype(np.float32), (0, 0), 1.0)
    img = np.clip((base - base.min()) / np.ptp(base) * 255, 0, 255).astype(np.uint8)
    stored = _decoded(img, "jpeg420")
    uw, uh = (h, w) if orientation >= 5 else (w, h)
    origin = FrameInfo(Path("f.jpg"), "jpeg", uw, uh, 3, 8, orientation, {}, (2, 2)).chroma_origin
    reversed_x, reversed_y = orientation in (2, 3, 6, 7), orientation in (3, 4, 7, 8)
    assert origin == (1 if reversed_x else 0, 1 if reversed_y else 0)
    upright = apply_orientation(stored, orientation)
    want = apply_orientation(chroma_low_band(stored, (2, 2)), orientation)
    np.testing.assert_allclose(chroma_low_band(upright, (2, 2), origin=origin), want, atol=1e-3)
    for up in ("linear", "nearest"):
        np.testing.assert_allclose(smooth_chroma_band(upright, (2, 2), upsampling=up, origin=origin),
                                   apply_orientation(smooth_chroma_band(stored, (2, 2), upsampling=up), orientation),
                                   atol=1e-3)
    assert chroma_upsampling(upright, (2, 2), origin) == "linear"
    if origin != (0, 0):  # the grid assumed at the first pixel misplaces every block
        assert np.abs(chroma_low_band(upright, (2, 2)) - want).max() > 1.0
    heic = _decoded(img, "heic")
    assert chroma_upsampling(apply_orientation(heic, orientation), (2, 2), origin) == "nearest"


def test_too_little_colour_change_says_linear():
    """Grey frames (no colour difference changes anywhere) give no evidence of
    the upsampling: JPEG's usual decoding is assumed."""
    from superres_gpu.pixels import chroma_block_spread, chroma_upsampling

    grey = np.repeat((np.indices((40, 60)).sum(axis=0) % 7 * 30).astype(np.uint8)[..., None], 3, axis=2)
    assert chroma_block_spread(grey, (2, 2)) is None and chroma_upsampling(grey, (2, 2)) == "linear"
    assert chroma_upsampling(grey, (1, 1)) == "linear"


@pytest.mark.parametrize("codec", ["jpeg", "heic"])
def test_the_4_2_0_estimate_on_a_larger_frame_meets_the_corner_target(codec):
    """On 4:2:0 frames of 1280x960 the luma's share left in each channel put the
    scale 7-10 % short on JPEG frames (0.13-0.15 px at the corners) and 4-5 %
    on HEIC ones (0.08 px); taken out through each decoder's chroma chain, the
    channels meet within 0.05 px of the truth at the corners, and a frame
    without aberration still gives next to none."""
    r = synth.RECIPES["test-medium"]
    w, h = 1280, 960
    for ca in (TRUE_CA, (0.0, 0.0)):
        camera = dataclasses.replace(r.camera, lateral_ca=ca, jpeg_quality=85 if codec == "jpeg" else None)
        b = synth.make_burst(1, w, h, 2.0, 2, r.motion, camera, seed=1, truth=False)
        frames = b.frames if codec == "jpeg" else [_decoded(b.frames[0], "heic", quality=90)]
        est = estimate(B, frames, chroma=(2, 2))
        assert est.upsampling == ("linear" if codec == "jpeg" else "nearest")
        assert est.report()["chroma_upsampling"] == est.upsampling
        err = _corner_error(est, camera, w, h)
        assert max(err.values()) < TOL["tca_jpeg_large_corner_px"][0], (err, est.report())
    assert max(est.corner_shift_px().values()) < TOL["tca_jpeg_large_corner_px"][0]


def test_aberration_under_rolling_shutter_is_estimated():
    """The synthetic renderer applies the lens's aberration and a rolling shutter's
    wobble together (the local refinement's benchmark corrects both): green is the
    wobbling burst's, red and blue are moved by the aberration, which the estimate finds."""
    motion = synth.MotionSpec(shift_sigma=2.0, rotation_sigma_deg=0.2, zoom_sigma=0.001, rolling_shutter_px=0.3)
    cam = synth.CameraSpec(blur_sigma=0.5, noise_gain=0.001, noise_floor=0.005, jpeg_quality=None)
    plain = synth.make_burst(2, 320, 240, 2.0, 4, motion, cam, seed=21)
    ca = synth.make_burst(2, 320, 240, 2.0, 4, motion, dataclasses.replace(cam, lateral_ca=TRUE_CA), seed=21)
    wobbled = ca.frames[1]
    assert np.array_equal(plain.frames[1][..., 1], wobbled[..., 1])
    assert not np.array_equal(plain.frames[1][..., 0], wobbled[..., 0])
    est = estimate(B, [wobbled])
    tol = TOL["tca_scale_rel"][0]
    assert abs(est.red.scale - TRUE_CA[0]) < tol * abs(TRUE_CA[0]), est.report()
    assert abs(est.blue.scale - TRUE_CA[1]) < tol * abs(TRUE_CA[1]), est.report()


def test_auto_corrects_subsampled_frames_from_a_larger_shift():
    """--tca auto: 0.1 px at a corner on full-chroma frames, 0.3 px on 4:2:0 ones,
    where only the low band is moved and small corrections gain less than a wrong
    estimate of their size costs."""
    ch = ChannelTCA(0.001, 159.5, 119.5, 0.0)  # 0.2 px at the corners of 320x240
    zero = ChannelTCA(0.0, 159.5, 119.5, 0.0)
    full, sub = TCAEstimate(ch, zero, 320, 240, 1), TCAEstimate(ch, zero, 320, 240, 1, (2, 2))
    assert abs(full.corner_shift_px()["red"] - 0.2) < 1e-3
    assert full.matters() and not sub.matters()
    assert (full.report()["auto_from_px"], sub.report()["auto_from_px"]) == (0.1, 0.3)
    assert TCAEstimate(ChannelTCA(0.002, 159.5, 119.5, 0.0), zero, 320, 240, 1, (2, 2)).matters()


def test_auto_corrects_only_a_significant_shift():
    """--tca auto also asks the corner shift to be three standard errors from zero: an
    estimate from frames with little colour texture is large and meaningless."""
    ch, zero = ChannelTCA(0.002, 159.5, 119.5, 0.0, corner_se=0.05), ChannelTCA(0.0, 159.5, 119.5, 0.0)
    assert TCAEstimate(ch, zero, 320, 240, 1).matters()  # 0.4 px, 8 standard errors
    vague = dataclasses.replace(ch, corner_se=0.2)
    assert not TCAEstimate(vague, zero, 320, 240, 1).matters()  # 0.4 px, 2 standard errors
    assert TCAEstimate(vague, zero, 320, 240, 1).report()["red"]["corner_shift_se_px"] == 0.2


def test_the_corner_shift_standard_error_matches_the_estimates_spread():
    """On lossless 320x240 frames the estimate's corner error is a few hundredths of a pixel
    (0.01-0.04 px, the benchmark's); its standard error says as much, from one frame and
    from several, where it is one frame's (the frames share their scene: ``_shared_error``)."""
    one = estimate(B, _burst(TRUE_CA, frames=1, jpeg_quality=None).frames)
    frames = _burst(TRUE_CA, frames=4, jpeg_quality=None).frames
    four = estimate(B, frames)
    for est in (one, four):
        for ch in (est.red, est.blue):
            assert 0.003 < ch.corner_se < 0.05, est.report()
    each = [estimate(B, [f]).red.corner_se for f in frames]
    assert four.red.corner_se >= min(each) and four.frames == 4 and four.matters()


def test_small_frames_are_estimated_on_more_of_the_burst():
    from superres_gpu.tca import ESTIMATE_PIXELS, estimate_frames

    assert estimate_frames(320, 240, 5) == 5 and estimate_frames(320, 240, 3) == 3
    assert estimate_frames(640, 480, 5) == -(-ESTIMATE_PIXELS // (640 * 480)) == 4
    assert estimate_frames(1280, 960, 5) == estimate_frames(4000, 3000, 5) == 1
    assert estimate_frames(320, 240, 0) == 1  # the reference at least


@pytest.mark.parametrize("jpeg_quality", [None, 92])
def test_the_picture_shows_each_corner_corrected_as_the_run_would(jpeg_quality):
    """superres tca --picture: each corner's crop, corrected (whole channels, or the low band of
    a 4:2:0 JPEG), is nearer the same frame without aberration than as shot."""
    from superres_gpu.tca_picture import CORNERS, TILE, corner_tiles

    b = _burst(TRUE_CA, frames=1, jpeg_quality=jpeg_quality)
    clean = _burst((0.0, 0.0), frames=1, jpeg_quality=jpeg_quality).frames[0].astype(np.float32)
    est = estimate(B, b.frames, chroma=(2, 2) if jpeg_quality else (1, 1))
    tiles = corner_tiles(B, b.frames[0], est)
    assert [t[0] for t in tiles] == list(CORNERS)
    h, w = clean.shape[:2]
    ratios = []
    for k, (name, (x0, y0), shot, fixed) in enumerate(tiles):
        assert shot.shape == fixed.shape == (TILE, TILE, 3)
        assert (x0 < w / 4) == (k in (0, 2)) and (y0 < h / 4) == (k in (0, 1)), (name, x0, y0)  # in its corner
        c = clean[y0 : y0 + TILE, x0 : x0 + TILE]
        ratios.append(np.sqrt(np.mean((fixed - c) ** 2)) / np.sqrt(np.mean((shot - c) ** 2)))
        assert np.array_equal(fixed[..., 1], shot[..., 1])  # green is where it was
    assert max(ratios) < 1.0 and np.mean(ratios) < TOL["tca_picture_rms_ratio"][0][bool(jpeg_quality)], ratios


def test_the_tca_command_saves_the_picture(tmp_path, capsys):
    import cv2

    from superres_gpu.tca_picture import TILE, ZOOM

    _burst(TRUE_CA, frames=2, jpeg_quality=None).write(tmp_path / "b")
    pic = tmp_path / "corners.png"
    assert cli.main(["tca", str(tmp_path / "b"), "--backend", "numpy", "--picture", str(pic)]) == 0
    assert f"picture: {pic}" in capsys.readouterr().out
    img = cv2.imread(str(pic))
    assert img is not None and img.shape[1] > 4 * TILE * ZOOM and img.shape[0] > 2 * TILE * ZOOM
    # an existing picture only with --overwrite; a name that is not .png refused before any work
    assert cli.main(["tca", str(tmp_path / "b"), "--picture", str(pic)]) != 0
    assert "already exists" in capsys.readouterr().err
    assert cli.main(["tca", str(tmp_path / "b"), "--picture", str(pic), "--overwrite"]) == 0
    assert cli.main(["tca", str(tmp_path / "b"), "--picture", str(tmp_path / "c.jpg")]) != 0
    assert "give it a .png name" in capsys.readouterr().err and not (tmp_path / "c.jpg").exists()
    # no estimate (grey frames): no picture either, and nothing left behind
    grey = tmp_path / "grey"
    grey.mkdir()
    for i in range(2):
        cv2.imwrite(str(grey / f"g{i}.png"), np.full((60, 80), 100 + i, np.uint8))
    assert cli.main(["tca", str(grey), "--picture", str(tmp_path / "g.png")]) != 0
    assert "g0.png: chromatic aberration needs colour (RGB) frames" in capsys.readouterr().err  # the file named
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b", "corners.png", "grey"]
    # frames of another size are refused, as by superres run, naming the frame
    odd = tmp_path / "b" / "zz_small.png"
    cv2.imwrite(str(odd), np.zeros((50, 60, 3), np.uint8))
    assert cli.main(["tca", str(tmp_path / "b"), "--picture", str(pic), "--overwrite"]) != 0
    assert "zz_small.png: frame is 60x50" in capsys.readouterr().err
    odd.unlink()
    # frames smaller than a crop: the crops are enlarged more, to the same picture
    small = tmp_path / "small"
    b = _burst(TRUE_CA, frames=2, jpeg_quality=None)
    small.mkdir()
    for i, f in enumerate(b.frames):
        cv2.imwrite(str(small / f"s{i}.png"), np.ascontiguousarray(f[100:140, 140:196, ::-1]))
    assert cli.main(["tca", str(small), "--picture", str(tmp_path / "s.png")]) == 0  # 56x40: crops of 40
    assert cv2.imread(str(tmp_path / "s.png")).shape[1] >= img.shape[1]
