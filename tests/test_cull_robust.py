"""Blur culling, automatic reference and the robust merge, on synthetic bursts
with known blurred frames and known moving objects."""

from __future__ import annotations

import json

import numpy as np
import pytest

from superres_gpu import cli
from superres_gpu.cull import choose_sharpest, flag_blurred, score_burst, sharpness
from superres_gpu.io import probe
from superres_gpu.pipeline import PipelineConfig, run
from superres_gpu.synth import CameraSpec, MotionSpec, Mover, make_burst, mover_mask

from conftest import file_hashes

NOISE = {
    "low": CameraSpec(noise_gain=0.0005, noise_floor=0.002, jpeg_quality=95),
    "mid": CameraSpec(noise_gain=0.002, noise_floor=0.008, jpeg_quality=92),
    "high ISO": CameraSpec(noise_gain=0.008, noise_floor=0.03, jpeg_quality=85),
}


def _masked_psnr(img16, truth, m):
    d = (img16.astype(np.float64) / 65535.0 - truth)[m]
    return 10 * np.log10(1.0 / np.mean(d * d))


@pytest.mark.parametrize("level", list(NOISE))
def test_culling_precision_and_recall(tmp_path, level):
    tp = fp = fn = 0
    for seed in range(3):
        rng = np.random.default_rng(50 + seed)
        idx = rng.choice(np.arange(1, 12), 3, replace=False)
        shake = {int(i): (float(rng.uniform(3, 6)), float(rng.uniform(0, 180))) for i in idx}
        b = make_burst(12, 256, 192, seed=seed, motion=MotionSpec(shift_sigma=2, rotation_sigma_deg=0.2),
                       camera=NOISE[level], shake=shake)
        paths = b.write(tmp_path / f"{level}{seed}")
        for i, s in enumerate(flag_blurred(score_burst([probe(p) for p in paths]))):
            blurred = i in shake
            tp += s.flagged and blurred
            fp += s.flagged and not blurred
            fn += (not s.flagged) and blurred
    precision = tp / max(1, tp + fp)
    recall = tp / max(1, tp + fn)
    assert precision >= 0.9 and recall >= 0.9, f"{level}: precision {precision:.2f}, recall {recall:.2f}"


def test_noise_does_not_pass_for_sharpness(rng):
    """On a low-contrast scene, strong noise dominates the plain Laplacian energy;
    the noise-corrected measure still reports the scene's own detail."""
    import cv2

    from superres_gpu.synth import _pink_noise

    clean = (0.5 + 0.03 * _pink_noise(384, 512, rng, beta=2.0)).astype(np.float32)
    clean = cv2.GaussianBlur(clean, (0, 0), 0.7)
    s_clean, n_clean, raw_clean = sharpness(clean)
    for sigma in (0.005, 0.01, 0.02):  # noise energy 2x to 27x the scene's detail energy
        noisy = clean + rng.normal(0, sigma, clean.shape).astype(np.float32)
        s, n, raw = sharpness(noisy)
        assert abs(n - sigma) < 0.15 * sigma  # the noise level is measured on the frame itself
        assert raw > 1.8 * raw_clean  # noise would pass for sharpness (2x to 30x the plain measure)...
        assert abs(s / s_clean - 1) < 0.3, f"sigma {sigma}: corrected {s:.3g} vs clean {s_clean:.3g}"  # ...but not here


def test_sharpest_reference_avoids_blur_and_passers_by(tmp_path):
    shake = {0: (5.0, 30.0), 1: (4.0, 80.0)}
    movers = [Mover(3, 60, 40, 120, 100, 7)]
    b = make_burst(8, 256, 192, seed=6, camera=NOISE["mid"], shake=shake, movers=movers)
    paths = b.write(tmp_path / "b")
    scores = flag_blurred(score_burst([probe(p) for p in paths]))
    # make the passer-by frame look sharpest: it must still not be chosen
    scores[3].sharpness = 1.05 * max(s.sharpness for s in scores)
    choice = choose_sharpest(scores)
    assert choice not in (0, 1, 3)
    rep = tmp_path / "r.json"
    assert cli.main(["run", str(tmp_path / "b"), "-o", str(tmp_path / "o.tif"), "--reference", "sharpest",
                     "--report", str(rep), "--quiet"]) == 0
    r = json.loads(rep.read_text())
    assert not r["reference"].endswith(("frame_000.jpg", "frame_001.jpg"))


def test_run_leaves_out_blurred_frames_and_reports_them(tmp_path):
    shake = {2: (5.0, 10.0), 5: (6.0, 120.0)}
    b = make_burst(8, 256, 192, seed=9, camera=NOISE["mid"], shake=shake)
    b.write(tmp_path / "b")
    rep = tmp_path / "r.json"
    assert cli.main(["run", str(tmp_path / "b"), "-o", str(tmp_path / "o.tif"), "--report", str(rep), "-q"]) == 0
    r = json.loads(rep.read_text())
    culled = [f["path"][-13:] for f in r["frames"] if f["reason"] and f["reason"].startswith("blurred")]
    assert culled == ["frame_002.jpg", "frame_005.jpg"]
    assert r["summary"]["culled"] == 2 and r["summary"]["used"] == 6
    for f in r["frames"]:
        assert f["sharpness"] is not None and f["sharpness_ratio"] is not None
    rep2 = tmp_path / "r2.json"
    assert cli.main(["run", str(tmp_path / "b"), "-o", str(tmp_path / "o2.tif"), "--no-cull", "--report", str(rep2),
                     "-q"]) == 0
    assert json.loads(rep2.read_text())["summary"]["used"] == 8


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
                       sharpen=False))
    single = tifffile.imread(tmp_path / "single.tif")
    moving = mover_mask(b)
    static = ~moving
    t = b.truth_blurred
    p_robust, p_mean, p_single = (_masked_psnr(x, t, moving) for x in (out["robust"], out["mean"], single))
    assert p_mean < p_single - 1.0, "the plain mean should ghost in moving regions"
    assert p_robust > p_single - 0.5, f"robust {p_robust:.2f} dB vs the reference's own {p_single:.2f} dB"
    s_robust, s_mean = (_masked_psnr(x, t, static) for x in (out["robust"], out["mean"]))
    assert abs(s_robust - s_mean) < 0.2, f"static regions: robust {s_robust:.2f} vs mean {s_mean:.2f} dB"


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
    run(PipelineConfig(inputs=[str(one)], output=str(tmp_path / "single.tif"), backend="numpy", cull=False,
                       mask="none", sharpen=False))
    single = tifffile.imread(tmp_path / "single.tif").astype(int)
    inner = (slice(2 * 50, 2 * 130), slice(2 * 90, 2 * 170))  # well inside the mask, away from its soft edge
    for merge in ("robust", "mean"):
        img = tifffile.imread(tmp_path / f"{merge}.tif").astype(int)
        assert np.abs(img[inner] - single[inner]).max() <= 1, merge


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
    assert rej["frame_002.jpg"] > 0.04  # the mover's frame loses its mover's pixels...
    others = [v for k, v in rej.items() if v is not None and k != "frame_002.jpg"]
    assert max(others) < 0.5 * rej["frame_002.jpg"], rej  # ...far more than any other frame loses
    import cv2

    pic = cv2.imread(str(png))
    assert pic.shape[:2] == (96, 128)
    assert (pic[..., 2].astype(int) - pic[..., 1] > 100).sum() > 200  # red where the mover was rejected


def test_cull_command_table_rename_plot(tmp_path, capsys):
    b = make_burst(8, 256, 192, seed=2, shake={3: (5.0, 20.0), 6: (4.5, 100.0)})
    paths = b.write(tmp_path / "b")
    before = file_hashes(tmp_path / "b")
    assert cli.main(["cull", str(tmp_path / "b"), "--plot", str(tmp_path / "cull.png")]) == 0
    text = capsys.readouterr().out
    assert "2 of 8 frames flagged" in text and "frame_003.jpg" in text
    assert (tmp_path / "cull.png").stat().st_size > 1000
    assert file_hashes(tmp_path / "b") == before  # without --rename nothing changes
    assert cli.main(["cull", str(tmp_path / "b"), "--rename", "-q"]) == 0
    names = sorted(p.name for p in (tmp_path / "b").iterdir())
    assert "frame_003.jpg.not_sharp_enough" in names and "frame_006.jpg.not_sharp_enough" in names
    assert "frame_003.jpg" not in names
    rep = tmp_path / "r.json"
    assert cli.main(["run", str(tmp_path / "b"), "-o", str(tmp_path / "o.tif"), "--report", str(rep), "-q"]) == 0
    assert len(json.loads(rep.read_text())["frames"]) == 6  # the renamed frames are skipped
    del paths


def test_cull_command_bad_input(tmp_path, capsys):
    (tmp_path / "x.jpg").write_bytes(b"not an image at all" * 10)
    (tmp_path / "y.jpg").write_bytes(b"not an image either" * 10)
    rc = cli.main(["cull", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc != 0 and "x.jpg" in err and "Traceback" not in err
