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
                       sharpen=False))
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
    run(PipelineConfig(inputs=[str(one)], output=str(tmp_path / "single.tif"), backend="numpy", cull=False,
                       mask="none", sharpen=False))
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
