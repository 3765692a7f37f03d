"""Raw (DNG) frames through rawpy: linear 16-bit with the camera white balance,
the levels in the report, a burst merged in linear light, --gamma srgb."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

pytest.importorskip("rawpy", reason="the raw extra (rawpy) is not installed")

from dng_util import write_dng  # noqa: E402
from superres_gpu import cli  # noqa: E402
from superres_gpu.decode import read_frame, read_half_luma  # noqa: E402
from superres_gpu.discover import list_inputs, probe  # noqa: E402
from superres_gpu.errors import ConfigError, InputError  # noqa: E402
from tolerances import TOL  # noqa: E402


def test_flat_colour_decodes_linear_with_the_camera_white_balance(tmp_path):
    scene = np.zeros((64, 96, 3))
    scene[:] = (0.4, 0.2, 0.1)
    p = write_dng(tmp_path / "a.dng", scene, white_balance=(2.0, 1.0, 1.5), orientation=6)
    info = probe(p)
    assert (info.format, info.width, info.height, info.bits) == ("raw", 64, 96, 16)  # rotated by the file's tag
    assert info.raw["black_level"] == [256] * 4 and info.raw["white_level"] == 16383
    assert info.raw["camera_white_balance"][:3] == pytest.approx([2.0, 1.0, 1.5], rel=1e-5)
    assert info.raw["noise_profile"] == [[2e-4, 1e-6]] * 3
    assert info.exif["make"] == "Acme" and info.exif["orientation"] == 1
    img = read_frame(info)
    assert img.shape == (96, 64, 3) and img.dtype == np.uint16
    # no auto-brightening, no tone curve: the scene's linear values come back
    np.testing.assert_allclose(img.reshape(-1, 3).mean(0) / 65535.0, [0.4, 0.2, 0.1],
                               atol=TOL["dng_flat_roundtrip"][0])
    assert read_half_luma(info).shape == (48, 32)  # culling's half-size read bins the CFA, no demosaicing
    assert list_inputs([tmp_path]) == [p]


def test_missing_rawpy_names_the_extra(tmp_path, monkeypatch):
    p = write_dng(tmp_path / "a.dng", np.full((8, 8, 3), 0.5))
    monkeypatch.setitem(sys.modules, "rawpy", None)
    with pytest.raises(InputError, match=r"a\.dng: raw \(DNG\) input needs rawpy: pip install rawpy \(the raw extra\)"):
        probe(p)
    q = tmp_path / "b.cr2"
    q.write_bytes(p.read_bytes())
    with pytest.raises(InputError, match=r"b\.cr2: raw \(CR2\) input needs rawpy: pip install rawpy \(the raw extra\)"):
        probe(q)


def test_other_raw_extensions_go_to_libraw(tmp_path, small_burst_frames_linear):
    """A burst of .nef/.cr2/.arw/.raf files is listed, probed and decoded
    through rawpy.  LibRaw identifies a file by its content, not its name, and
    the tests cannot carry real camera files: these are valid DNGs written
    under other raw extensions, which proves the routing (the name reaches
    LibRaw), not LibRaw's support of each camera format."""
    from superres_gpu.discover import list_inputs

    d = tmp_path / "burst"
    d.mkdir()
    exts = [".nef", ".cr2", ".arw", ".raf"]
    for k, f in enumerate(small_burst_frames_linear[:4]):
        write_dng(d / f"f{k}{exts[k]}", f)
    files = list_inputs([d])
    assert [p.suffix for p in files] == exts
    info = probe(files[1])
    assert info.format == "raw" and info.raw["white_level"] == 16383 and info.raw["noise_profile"] is not None
    direct = read_frame(probe(write_dng(tmp_path / "same.dng", small_burst_frames_linear[1])))
    np.testing.assert_array_equal(read_frame(info), direct)  # decoded exactly as the DNG it is
    rep = tmp_path / "r.json"
    assert cli.main(["run", str(d), "-o", str(tmp_path / "o.tif"), "--report", str(rep), "--quiet",
                     "--backend", "numpy", "--scale", "1"]) == 0
    r = json.loads(rep.read_text())
    assert r["summary"]["used"] == 4 and r["raw"]["linear"] and r["robust_noise"] == "noise profile"


def test_corrupt_dng_is_one_clear_error(tmp_path):
    p = tmp_path / "bad.dng"
    p.write_bytes(b"II*\x00" + b"\x00" * 64)
    with pytest.raises(InputError, match="bad.dng: cannot read raw file"):
        probe(p)


def test_truncated_dng_in_a_burst_is_one_line_naming_it(tmp_path, capfd, small_burst_frames_linear):
    # LibRaw notices the missing data while unpacking and prints its own line to stderr from C; the
    # user sees one line, ours, which names the file and says what LibRaw found
    d = tmp_path / "burst"
    d.mkdir()
    for k, f in enumerate(small_burst_frames_linear[:3]):
        write_dng(d / f"f{k}.dng", f)
    whole = (d / "f1.dng").read_bytes()
    (d / "f1.dng").write_bytes(whole[: len(whole) // 2])
    capfd.readouterr()
    out = tmp_path / "o.tif"
    assert cli.main(["run", str(d), "-o", str(out), "--backend", "numpy", "--quiet"]) == 1
    err = capfd.readouterr().err.strip().splitlines()
    assert err == [f"superres: error: {d / 'f1.dng'}: truncated or damaged raw file (unexpected end of file)"]
    assert not out.exists() and not list(tmp_path.glob("*.partial*"))


@pytest.mark.parametrize("name", ["f1.dng", "odd\nname.dng"])
def test_libraw_lines_are_collected_and_other_output_passes_through(tmp_path, capfd, name):
    import os

    from superres_gpu.raw import _LibRawStderr

    path = tmp_path / name
    capfd.readouterr()
    with _LibRawStderr(path) as printed:
        os.write(2, b"progress 1/3\n")
        os.write(2, os.fsencode(str(path)) + b": Unexpected end of file\n")
        os.write(2, b"progress 2/3\n")
    assert printed.messages == ["Unexpected end of file"]
    assert capfd.readouterr().err == "progress 1/3\nprogress 2/3\n"
    with pytest.raises(KeyboardInterrupt):  # interrupted inside: descriptor 2 comes back, the lock is free
        with _LibRawStderr(path):
            raise KeyboardInterrupt
    os.write(2, b"after\n")
    assert capfd.readouterr().err == "after\n" and not _LibRawStderr._lock.locked()


@pytest.fixture(scope="module")
def dng_burst(tmp_path_factory, small_burst_frames_linear):
    d = tmp_path_factory.mktemp("dng")
    for k, f in enumerate(small_burst_frames_linear):
        write_dng(d / f"f{k:02d}.dng", f)
    return d


@pytest.fixture(scope="module")
def small_burst_frames_linear():
    from superres_gpu.synth import CameraSpec, recipe_burst

    burst = recipe_burst("test-small", camera=CameraSpec(blur_sigma=0.5, noise_gain=0.001, noise_floor=0.005,
                                                         jpeg_quality=None, bits=16))
    return [f.astype(np.float64) / 65535.0 for f in burst.frames]


def test_a_dng_burst_merges_in_linear_light_and_srgb_is_the_curve_of_it(tmp_path, dng_burst):
    from superres_gpu import superresolve
    from superres_gpu.raw import encode_srgb

    linear, report = superresolve(dng_burst, output=tmp_path / "lin.tif", backend="numpy")
    assert report["summary"]["used"] == 8 and report["gamma"] == "linear"
    assert report["raw"]["white_level"] == 16383 and report["raw"]["noise_profile"] is not None
    assert report["robust_noise"] == "noise profile"
    srgb, report = superresolve(dng_burst, output=tmp_path / "srgb.tif", backend="numpy", gamma="srgb")
    np.testing.assert_array_equal(srgb, encode_srgb(linear))
    assert srgb.mean() > linear.mean()  # the curve lifts the mid-tones


def test_gamma_srgb_on_gamma_encoded_frames_is_refused(tmp_path, burst_dir):
    from superres_gpu import superresolve

    with pytest.raises(ConfigError, match="--gamma srgb applies to raw"):
        superresolve(burst_dir, output=tmp_path / "o.tif", backend="numpy", gamma="srgb")
    assert not (tmp_path / "o.tif").exists()


def test_srgb_curve_known_values():
    from superres_gpu.raw import encode_srgb

    x = np.array([0.0, 0.0031308, 0.18, 1.0], np.float32)
    np.testing.assert_allclose(encode_srgb(x), [0.0, 0.04045, 0.46135, 1.0], atol=TOL["srgb_curve_float32"][0])


def test_bright_frames_keep_the_files_white_level(tmp_path):
    """LibRaw's default takes a frame's own brightest sample as its white level
    when that is above 75 % of the file's; the decode keeps the file's, so a
    bright flat scene comes back at its linear value (and a burst's frames at
    one scale, which the noise profile's units assume)."""
    p = write_dng(tmp_path / "bright.dng", np.full((32, 32, 3), 0.85), white_balance=(1.0, 1.0, 1.0))
    img = read_frame(probe(p))
    np.testing.assert_allclose(img.reshape(-1, 3).mean(0) / 65535.0, [0.85] * 3, atol=TOL["dng_flat_roundtrip"][0])


def test_dng_without_noise_profile_gives_no_noise_model(tmp_path):
    from superres_gpu.robust import NoiseModel

    info = probe(write_dng(tmp_path / "n.dng", np.full((32, 32, 3), 0.3), noise_profile=None))
    assert info.raw["noise_profile"] is None and NoiseModel.from_raw(info.raw) is None
    assert NoiseModel.from_raw(probe(write_dng(tmp_path / "p.dng", np.full((32, 32, 3), 0.3))).raw) is not None


# a camera's colour matrix (white-balanced camera channels -> linear sRGB), about what phones' are
CAMERA_TO_SRGB = np.array([[1.8, -0.7, -0.1], [-0.2, 1.5, -0.3], [0.05, -0.5, 1.45]])


def _aberrated_dng_burst(folder, ca, frames=3, seed=1, camera_to_srgb=None):
    import dataclasses

    from superres_gpu import synth

    cam = dataclasses.replace(synth.RECIPES["test-medium"].camera, lateral_ca=ca, jpeg_quality=None)
    b = synth.recipe_burst("test-medium", frames=frames, camera=cam, seed=seed)
    folder.mkdir()
    for k, f in enumerate(b.frames):
        write_dng(folder / f"f{k:02d}.dng", (f.astype(np.float64) / 255.0) ** 2.2, noise_seed=k,
                  camera_to_srgb=camera_to_srgb)  # the lens displaced the camera's own channels
    return b, cam


def test_a_bayer_mosaic_counts_as_2x2_chroma_for_the_aberration(tmp_path, capsys):
    """Demosaicing rebuilds red's and blue's fine detail from green's, as a 4:2:0 decoder does
    from the luma: the estimate compares the channels' own low bands (without that it finds about
    half the scale) and the correction moves only those (moving whole channels loses more than the
    aberration costs)."""
    from superres_gpu.backends import get_backend
    from superres_gpu.tca import estimate

    b, cam = _aberrated_dng_burst(tmp_path / "b", (0.002, -0.002))
    infos = [probe(p) for p in list_inputs([tmp_path / "b"])]
    assert infos[0].chroma == (2, 2)
    frames = [read_frame(i) for i in infos]
    B = get_backend("numpy")
    est = estimate(B, frames, infos[0].chroma)
    assert est.band_chain() is not None and est.upsampling == "linear"
    tol = TOL["tca_raw_scale_rel"][0]
    assert abs(est.red.scale / 0.002 - 1) < tol and abs(est.blue.scale / -0.002 - 1) < tol, est.report()
    whole = estimate(B, frames)  # as full-resolution chroma: about half
    assert whole.red.scale < 0.7 * 0.002 and whole.blue.scale > 0.7 * -0.002, whole.report()
    assert cli.main(["tca", str(tmp_path / "b"), "--backend", "numpy"]) == 0
    assert "raw Bayer mosaic" in capsys.readouterr().out


def test_aberration_on_a_dng_burst_is_corrected_in_the_low_band(tmp_path):
    import tifffile

    from superres_gpu.metrics import psnr
    from superres_gpu.options import PipelineConfig
    from superres_gpu.pipeline import run

    scores = {}
    for ca, opts in (((0.0, 0.0), ("off",)), ((0.002, -0.002), ("off", "auto"))):
        b, _ = _aberrated_dng_burst(tmp_path / f"b{ca[0]}", ca, frames=8, seed=4)
        for opt in opts:
            out = tmp_path / f"o{ca[0]}{opt}.tif"
            rep = run(PipelineConfig(inputs=[str(tmp_path / f"b{ca[0]}")], output=str(out), backend="numpy",
                                     tca=opt, merge="robust", cull=False)).report
            img = tifffile.imread(out).astype(np.float64) / 65535
            scores[ca[0], opt] = psnr(img, b.truth_blurred.astype(np.float64) ** 2.2)
    assert rep["tca"]["applied"] and rep["tca"]["estimate"]["correction"] == "chroma band", rep["tca"]
    gain, loss = TOL["tca_raw_psnr_db"][0]
    clean, lost, fixed = scores[0.0, "off"], scores[0.002, "off"], scores[0.002, "auto"]
    assert fixed - lost > gain and clean - fixed < loss, (clean, lost, fixed)


def test_the_aberration_is_measured_and_corrected_in_the_cameras_own_channels(tmp_path):
    """A camera's colour matrix mixes its channels into the output's (red about 1.8 R - 0.7 G - 0.1 B):
    the lens displaced R and B, so each output channel holds displaced and undisplaced images at
    once.  Through the inverse of LibRaw's matrix the estimate finds the camera's own displacement
    (in the output's channels, red about 1.7 times it), and the correction, made there and brought
    back, takes out more of the loss."""
    import tifffile

    from superres_gpu.backends import get_backend
    from superres_gpu.metrics import psnr
    from superres_gpu.options import PipelineConfig
    from superres_gpu.pipeline import raw_colour_matrix, run
    from superres_gpu.tca import estimate

    b, _ = _aberrated_dng_burst(tmp_path / "a", (0.002, -0.002), frames=8, seed=4, camera_to_srgb=CAMERA_TO_SRGB)
    infos = [probe(p) for p in list_inputs([tmp_path / "a"])]
    M = raw_colour_matrix(infos[0])
    np.testing.assert_allclose(M, CAMERA_TO_SRGB, atol=2e-3)  # LibRaw's, as the report records it
    frames = [read_frame(i) for i in infos[:3]]
    B = get_backend("numpy")
    est = estimate(B, frames, infos[0].chroma, colour_matrix=M)
    tol = TOL["tca_raw_scale_rel"][0]
    assert abs(est.red.scale / 0.002 - 1) < tol and abs(est.blue.scale / -0.002 - 1) < tol, est.report()
    assert est.report()["camera_channels"] is True
    mixed = estimate(B, frames, infos[0].chroma)  # in the output's channels
    assert mixed.red.scale > 1.4 * 0.002, mixed.report()
    _aberrated_dng_burst(tmp_path / "c", (0.0, 0.0), frames=8, seed=4, camera_to_srgb=CAMERA_TO_SRGB)
    out = {}
    for name, opt in (("c", "off"), ("a", "off"), ("a", "auto")):
        p = tmp_path / f"{name}{opt}.tif"
        rep = run(PipelineConfig(inputs=[str(tmp_path / name)], output=str(p), backend="numpy", tca=opt,
                                 merge="robust", cull=False)).report
        out[name, opt] = tifffile.imread(p).astype(np.float64) / 65535
    assert rep["tca"]["applied"] and rep["tca"]["estimate"]["camera_channels"] is True
    lost, fixed = (psnr(out["a", o], out["c", "off"], margin=8) for o in ("off", "auto"))
    assert fixed - lost > TOL["tca_raw_matrix_gain_db"][0], (lost, fixed)
