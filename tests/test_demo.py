"""``superres demo``: the embedded default works and shows a real gain."""

from __future__ import annotations

import json

import numpy as np

from superres_gpu import cli
from tolerances import TOL


def test_demo_writes_result_comparison_and_figures(tmp_path, capsys):
    import tifffile

    out = tmp_path / "demo"
    rc = cli.main(["demo", "--out", str(out), "--frames", "8", "--backend", "numpy"])
    assert rc == 0
    img = tifffile.imread(out / "result.tif")
    assert img.shape == (720, 960, 3) and img.dtype == np.uint16
    assert (out / "comparison.png").stat().st_size > 10000
    fig = json.loads((out / "demo.json").read_text())
    assert fig["psnr_merged_blurred"] > fig["psnr_single_blurred"] + TOL["merge_gain_db"][0]
    assert fig["psnr_merged"] > fig["psnr_single"] + TOL["demo_gain_sharp_db"][0]
    text = capsys.readouterr().out
    assert "PSNR" in text and "result.tif" in text
    # running it again replaces the earlier demo only when asked to
    before = (out / "result.tif").read_bytes()
    assert cli.main(["demo", "--out", str(out), "--frames", "4", "--quiet", "--backend", "numpy"]) == 1
    assert "--overwrite" in capsys.readouterr().err
    assert (out / "result.tif").read_bytes() == before and len(list((out / "burst").iterdir())) == 8
    assert cli.main(["demo", "--out", str(out), "--frames", "4", "--quiet", "--backend", "numpy", "--overwrite"]) == 0
    assert len(list((out / "burst").iterdir())) == 4
