"""``superres demo``: the embedded default works and shows a real gain."""

from __future__ import annotations

import json

import numpy as np

from superres_gpu import cli
from superres_gpu.decode import read_frame
from superres_gpu.demo import CROP_ZOOM, comparison_layout, demo_crops, lanczos_upscale, resolution_figures
from superres_gpu.synth import chart_features
from tolerances import TOL


def _to8(a: np.ndarray) -> np.ndarray:
    return (a.astype(np.float32) / 257.0 + 0.5).astype(np.uint8)


def test_demo_writes_result_comparison_and_figures(tmp_path, capsys):
    import cv2
    import tifffile

    out = tmp_path / "demo"
    rc = cli.main(["demo", "--out", str(out), "--frames", "8", "--backend", "numpy"])
    assert rc == 0
    img = tifffile.imread(out / "result.tif")
    robust = tifffile.imread(out / "result_robust.tif")
    assert img.shape == robust.shape == (720, 960, 3) and img.dtype == robust.dtype == np.uint16
    fig = json.loads((out / "demo.json").read_text())
    # merging alone is judged against the chart through the optics (the robust merge restores only its own
    # resampling blur); the default's restoration undoes the optics too, so it is judged against the sharp chart
    assert fig["psnr_robust_blurred"] > fig["psnr_single_blurred"] + TOL["merge_gain_db"][0]
    assert fig["psnr_merged"] > fig["psnr_single"] + TOL["demo_gain_sharp_db"][0]
    assert fig["psnr_merged"] > fig["psnr_robust"]
    # the default (kernel) merge resolves the star further in than one frame does, and than the robust merge
    assert fig["star_radius_merged"] < fig["star_radius_single"] - TOL["demo_kernel_star_px"][0]
    assert fig["star_radius_merged"] < fig["star_radius_robust"]
    assert fig["psnr_robust"] > fig["psnr_single"]

    # the figures are those of the images written, and the comparison shows those images
    single = lanczos_upscale(read_frame(out / "burst" / "frame_000.jpg"), 960, 720)
    features = chart_features(480, 360, 2.0)
    images = {"single": single, "merged": img, "robust": robust}
    for key, im in images.items():
        for name, value in resolution_figures(im, features).items():
            assert fig[f"{name}_{key}"] == value, (name, key)
    pic = cv2.cvtColor(cv2.imread(str(out / "comparison.png")), cv2.COLOR_BGR2RGB)
    crops = demo_crops(960, 720)
    lay = comparison_layout(960, 720, crops, 3)
    assert pic.shape[:2] == lay["shape"]
    for (vx, vy), im in zip(lay["views"], images.values()):
        assert np.array_equal(pic[vy : vy + 720, vx : vx + 960], _to8(im))
    for row, im in zip(lay["tiles"][1:], images.values()):  # row 0 is the truth's
        assert not (pic[row[0][1] : row[0][1] + 60, :200] == 255).all()  # the name and figures beside the crops
        for (x, y), (cx, cy, size) in zip(row, crops):
            z = size * CROP_ZOOM
            want = np.repeat(np.repeat(_to8(im)[cy : cy + size, cx : cx + size], CROP_ZOOM, 0), CROP_ZOOM, 1)
            assert np.array_equal(pic[y : y + z, x : x + z], want)
    text = capsys.readouterr().out
    assert "PSNR" in text and "MTF50" in text and "result.tif" in text and "result_robust.tif" in text
    assert f"{fig['star_radius_merged']:.1f}" in text

    # running it again replaces the earlier demo only when asked to
    before = (out / "result.tif").read_bytes()
    assert cli.main(["demo", "--out", str(out), "--frames", "4", "--quiet", "--backend", "numpy"]) == 1
    assert "--overwrite" in capsys.readouterr().err
    assert (out / "result.tif").read_bytes() == before and len(list((out / "burst").iterdir())) == 8
    assert cli.main(["demo", "--out", str(out), "--frames", "4", "--quiet", "--backend", "numpy", "--overwrite"]) == 0
    assert len(list((out / "burst").iterdir())) == 4
