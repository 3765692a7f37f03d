"""Blur culling and the automatic reference, on synthetic bursts with known
blurred frames and known passers-by."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile

from superres_gpu import cli
from superres_gpu.cull import choose_sharpest, flag_blurred, score_burst, sharpness
from superres_gpu.discover import probe
from superres_gpu.synth import CameraSpec, MotionSpec, Mover, make_burst
from tolerances import TOL

from conftest import file_hashes

NOISE = {
    "low": CameraSpec(noise_gain=0.0005, noise_floor=0.002, jpeg_quality=95),
    "mid": CameraSpec(noise_gain=0.002, noise_floor=0.008, jpeg_quality=92),
    "high ISO": CameraSpec(noise_gain=0.008, noise_floor=0.03, jpeg_quality=85),
}


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
    ok = TOL["cull_precision_recall"][0]
    assert precision >= ok and recall >= ok, f"{level}: precision {precision:.2f}, recall {recall:.2f}"


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
        assert abs(n - sigma) < TOL["noise_estimate_rel"][0] * sigma  # the noise level is measured on the frame itself
        assert raw > 1.8 * raw_clean  # noise would pass for sharpness (2x to 30x the plain measure)...
        assert abs(s / s_clean - 1) < TOL["sharpness_noise_corrected_rel"][0], \
            f"sigma {sigma}: corrected {s:.3g} vs clean {s_clean:.3g}"  # ...but not here


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
    # the culling pass runs beside the reference's preparation: the result is the merge of the kept
    # frames alone, exactly
    kept = tmp_path / "kept"
    kept.mkdir()
    for p in sorted((tmp_path / "b").iterdir()):
        if p.name not in ("frame_002.jpg", "frame_005.jpg"):
            (kept / p.name).write_bytes(p.read_bytes())
    assert cli.main(["run", str(kept), "-o", str(tmp_path / "o3.tif"), "--no-cull", "-q"]) == 0
    assert np.array_equal(tifffile.imread(tmp_path / "o.tif"), tifffile.imread(tmp_path / "o3.tif"))


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
