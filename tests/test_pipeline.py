"""The pipeline's orchestration: stage timings, frame order, the outputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from superres_gpu.errors import InputError
from superres_gpu.pipeline import PipelineConfig, merge_order, run
from superres_gpu.report import FrameRecord


def test_timings_are_attributed_to_the_stage_that_spent_them(tmp_path, burst_dir):
    res = run(PipelineConfig(inputs=[str(burst_dir)], output=str(tmp_path / "o.tif"), backend="numpy"))
    t = res.report["timings"]
    for stage in ("probe", "cull", "decode", "align", "weights", "merge", "restore", "write", "total"):
        assert stage in t and t[stage] >= 0, stage
    assert t["total"] >= t["probe"] + t["cull"] + t["write"]
    res = run(PipelineConfig(inputs=[str(burst_dir)], output=str(tmp_path / "p.tif"), backend="numpy",
                             sharpen=False, cull=False, merge="mean"))
    t = res.report["timings"]
    assert "restore" not in t and "cull" not in t and "merge" in t
    assert res.report["robust_noise"] is None  # the plain mean divides by nothing


def test_the_reference_goes_first_and_culled_frames_are_left_out(tmp_path):
    recs = [FrameRecord(tmp_path / f"{i}.jpg", None, culled=c) for i, c in enumerate([False, True, False, True])]
    assert merge_order(recs, 2) == [2, 0]
    with pytest.raises(InputError, match="nothing to merge"):
        merge_order(recs[1:2] + recs[3:], 0)


def test_result_shape_and_report_agree(tmp_path, burst_dir):
    rep = tmp_path / "r.json"
    res = run(PipelineConfig(inputs=[str(burst_dir)], output=str(tmp_path / "o.tif"), backend="numpy", scale=1.5,
                             report=str(rep)))
    on_disk = json.loads(rep.read_text())
    assert on_disk == json.loads(json.dumps(res.report))
    ow, oh = on_disk["output_size"]
    assert res.shape == (oh, ow, 3) == (180, 240, 3)
    assert np.array(on_disk["frames"][0]["transform"]).shape == (3, 3)
    assert on_disk["robust_noise"] == "measured"  # no noise profile outside raw files


def test_auto_motion_is_chosen_once_and_reported(tmp_path, burst_dir):
    from superres_gpu.geometry import MOTION_MODELS

    res = run(PipelineConfig(inputs=[str(burst_dir)], output=str(tmp_path / "o.tif"), backend="numpy"))
    r = res.report
    assert r["motion_option"] == "auto" and r["motion"] in MOTION_MODELS
    sel = r["motion_selection"]
    assert sel["model"] == r["motion"] and sel["frames"] == 3
    assert set(sel["heldout_residual"]) == set(MOTION_MODELS) and min(sel["heldout_residual"].values()) == 1.0
    assert r["timings"]["motion"] > 0
    assert r["summary"]["used"] == len(r["frames"])
    res = run(PipelineConfig(inputs=[str(burst_dir)], output=str(tmp_path / "p.tif"), backend="numpy",
                             motion="affine"))
    assert res.report["motion"] == res.report["motion_option"] == "affine"
    assert res.report["motion_selection"] is None and "motion" not in res.report["timings"]


def test_refine_aligns_closer_against_the_template(tmp_path):
    from superres_gpu.geometry import grid_rms_error
    from superres_gpu.synth import CameraSpec, MotionSpec, make_burst
    from tolerances import TOL

    b = make_burst(8, 240, 180, 2.0, 4, MotionSpec(shift_sigma=2.0, rotation_sigma_deg=0.0, zoom_sigma=0.0),
                   CameraSpec(blur_sigma=0.5, noise_gain=0.004, noise_floor=0.02, jpeg_quality=85), seed=4)
    b.write(tmp_path / "b")
    err = {}
    for refine in (False, True):
        r = run(PipelineConfig(inputs=[str(tmp_path / "b")], output=str(tmp_path / f"o{refine}.tif"),
                               backend="numpy", refine=refine, cull=False)).report
        assert r["refine"] is refine and r["summary"]["used"] == 8
        assert ("template" in r["timings"]) is refine
        if refine:  # the reference and the first four others
            names = r["template"]["frames"]
            assert len(set(names)) == 5 and names[0] == Path(r["reference"]).name
            assert set(names) <= {Path(f["path"]).name for f in r["frames"]}
        else:
            assert r["template"] is None
        assert r["motion"] == "translation" and r["motion_selection"]["model"] == "translation"
        e = [grid_rms_error(np.array(f["transform"]), T, 240, 180) for f, T in zip(r["frames"][1:], b.transforms[1:])]
        err[refine] = float(np.sqrt(np.mean(np.square(e))))
    assert err[True] < TOL["refine_error_ratio"][0] * err[False], err


def _tca_runs(tmp_path, frames: int, merge: str, sharp: bool, options: dict, jpeg_quality=None) -> dict:
    """{(red scale, --tca): (PSNR, report["tca"])} for test-medium PNG (or
    ``jpeg_quality`` JPEG 4:2:0) bursts without and with +-0.2 % red/blue
    aberration; ``options`` maps each red scale to the --tca values run; PSNR
    against the sharp truth (8 px border left out) or the truth through the
    optics."""
    import dataclasses

    import tifffile

    from superres_gpu import synth
    from superres_gpu.metrics import psnr

    r = synth.RECIPES["test-medium"]
    result = {}
    for ca in ((0.0, 0.0), (0.002, -0.002)):
        b = synth.recipe_burst("test-medium", frames=frames,
                               camera=dataclasses.replace(r.camera, lateral_ca=ca, jpeg_quality=jpeg_quality))
        d = tmp_path / f"b{ca[0]}"
        b.write(d)
        for opt in options[ca[0]]:
            out = tmp_path / f"o{ca[0]}{opt}.tif"
            rep = run(PipelineConfig(inputs=[str(d)], output=str(out), backend="numpy", tca=opt, cull=False,
                                     merge=merge)).report
            img = tifffile.imread(out).astype(np.float32) / 65535
            score = psnr(img, b.truth, margin=8) if sharp else psnr(img, b.truth_blurred)
            result[ca[0], opt] = (score, rep["tca"])
    return result


def test_tca_is_corrected_inside_the_merge(tmp_path):
    from tolerances import TOL

    result = _tca_runs(tmp_path, 8, "robust", False, {0.0: ("off", "auto"), 0.002: ("off", "auto")})
    assert result[0.0, "off"][1] == {"option": "off", "applied": False, "estimate": None, "note": None}
    assert result[0.0, "auto"][1]["applied"] is False  # nothing to correct: the estimate says so
    assert result[0.0, "auto"][1]["estimate"]["auto_from_px"] == 0.1
    assert result[0.002, "auto"][1]["applied"] is True
    est = result[0.002, "auto"][1]["estimate"]
    assert est["red"]["scale"] > 0 > est["blue"]["scale"] and est["red"]["corner_shift_px"] > 0.3
    clean, lost, fixed = result[0.0, "off"][0], result[0.002, "off"][0], result[0.002, "auto"][0]
    assert clean - lost > 3.0  # what the aberration costs uncorrected
    assert clean - fixed < TOL["tca_psnr_loss_db"][0], (clean, lost, fixed)


def test_tca_on_4_2_0_jpeg_moves_the_chroma_band(tmp_path):
    """JPEG frames with 4:2:0 chroma: the estimate is made in the channels' low
    band and only that band is moved (moving whole channels, the lossless
    frames' correction, moves the luma's detail too and loses more than the
    aberration does)."""
    from tolerances import TOL

    result = _tca_runs(tmp_path, 8, "robust", False, {0.0: ("off",), 0.002: ("off", "auto")}, jpeg_quality=92)
    rep = result[0.002, "auto"][1]
    assert rep["applied"] is True
    assert rep["estimate"]["correction"] == "chroma band" and rep["estimate"]["chroma_subsampling"] == [2, 2]
    assert rep["estimate"]["auto_from_px"] == 0.3  # the low band's correction pays from a larger shift
    clean, lost, fixed = result[0.0, "off"][0], result[0.002, "off"][0], result[0.002, "auto"][0]
    assert clean - lost > 0.8, (clean, lost)  # what the aberration costs uncorrected
    assert clean - fixed < TOL["tca_jpeg_psnr_loss_db"][0], (clean, lost, fixed)
    assert fixed - lost > 0.6 * (clean - lost), (clean, lost, fixed)


def test_tca_auto_is_the_default_and_merges_without_it_where_no_estimate_can_be_made(tmp_path, burst_dir,
                                                                                   monkeypatch):
    from superres_gpu import pipeline
    from superres_gpu.errors import AlignmentError

    assert PipelineConfig(inputs=[], output="o.tif").tca == "auto"

    def fails(B, frames, chroma=(1, 1), origin=(0, 0), colour_matrix=None):
        raise AlignmentError("no frame's red and blue channels could be aligned to its green channel")

    monkeypatch.setattr(pipeline, "estimate_tca", fails)
    warnings = []
    rep = run(PipelineConfig(inputs=[str(burst_dir)], output=str(tmp_path / "o.tif"), backend="numpy"),
              warn=warnings.append).report
    assert rep["tca"] == {"option": "auto", "applied": False, "estimate": None,
                          "note": "not estimated: no frame's red and blue channels could be aligned to its green "
                                  "channel"}
    assert not [w for w in warnings if "aberration" in w]  # the default says nothing the user did not ask about
    with pytest.raises(AlignmentError, match="red and blue"):
        run(PipelineConfig(inputs=[str(burst_dir)], output=str(tmp_path / "p.tif"), backend="numpy", tca="on"))
    assert not (tmp_path / "p.tif").exists()


def test_tca_is_corrected_inside_the_kernel_merge(tmp_path):
    from tolerances import TOL

    result = _tca_runs(tmp_path, 6, "kernel", True, {0.0: ("off",), 0.002: ("off", "on")})
    assert result[0.002, "on"][1]["applied"] is True
    clean, lost, fixed = result[0.0, "off"][0], result[0.002, "off"][0], result[0.002, "on"][0]
    assert clean - lost > 0.5  # what the aberration costs uncorrected
    assert clean - fixed < TOL["tca_kernel_psnr_loss_db"][0], (clean, lost, fixed)
    assert fixed - lost > 0.5 * (clean - lost)


def test_a_burst_shorter_than_the_template_makes_it_from_every_frame(tmp_path):
    from superres_gpu.synth import make_burst

    b = make_burst(3, 160, 120, seed=9)
    b.write(tmp_path / "b")
    r = run(PipelineConfig(inputs=[str(tmp_path / "b")], output=str(tmp_path / "o.tif"), backend="numpy",
                           cull=False)).report
    assert r["refine"] is True and r["summary"]["used"] == 3  # on by default
    names = r["template"]["frames"]  # the reference and both others: fewer than the four it asks for
    assert names[0] == Path(r["reference"]).name and sorted(names) == sorted(Path(f["path"]).name for f in r["frames"])
    assert "template" in r["timings"] and "motion" in r["timings"]


def test_narrow_colour_frames_merge_under_the_default_tca():
    """Frames too narrow for the chromatic aberration's fit (14 px high): --tca auto, the
    default, merges without the correction instead of failing."""
    import superres_gpu
    from superres_gpu.synth import recipe_burst

    frames = [np.ascontiguousarray(f[100:114, :300]) for f in recipe_burst("test-medium", frames=3).frames]
    image, rep = superres_gpu.superresolve(frames, backend="numpy", cull=False)
    assert image.shape == (28, 600, 3)
    assert rep["tca"]["option"] == "auto" and rep["tca"]["applied"] is False


def test_tca_is_estimated_on_the_first_frames_of_small_bursts(tmp_path, monkeypatch):
    """On small frames the estimate reads the reference and the frames held back after it
    (the template's); the reference's merge waits for it and comes out as it would at once."""
    import dataclasses

    import tifffile

    from superres_gpu import pipeline, synth, tca
    from superres_gpu.template import TEMPLATE_FRAMES

    r = synth.RECIPES["test-medium"]
    d = tmp_path / "b"
    synth.recipe_burst("test-medium", frames=7, camera=dataclasses.replace(r.camera, lateral_ca=(0.002, -0.002),
                                                                           jpeg_quality=None)).write(d)
    seen, read = [], []
    estimate = pipeline.estimate_tca

    def first_only(B, frames, chroma=(1, 1), origin=(0, 0), colour_matrix=None):  # the same estimate, any frames
        seen.append(len(frames))
        read.append([np.array(f) for f in frames])
        return estimate(B, frames[:1], chroma, origin=origin, colour_matrix=colour_matrix)

    monkeypatch.setattr(pipeline, "estimate_tca", first_only)

    def go(name, **kw):
        out = tmp_path / f"{name}.tif"
        rep = run(PipelineConfig(inputs=[str(d)], output=str(out), backend="numpy", tca="on", cull=False,
                                 **kw)).report
        return tifffile.imread(out), rep

    many, rep = go("many")
    assert seen == [TEMPLATE_FRAMES]  # 320x240: the reference and the four held back
    from superres_gpu.decode import read_frame

    files = sorted(d.iterdir())
    for f, got in zip(files, read[0]):  # those frames, in the burst's order
        np.testing.assert_array_equal(got, read_frame(f))
    assert rep["tca"]["applied"] and rep["frames"][0]["used"] and rep["summary"]["used"] == 7
    monkeypatch.setattr(tca, "ESTIMATE_PIXELS", 1)  # one frame's worth: the reference merged at once
    one, _ = go("one")
    assert seen[-1] == 1
    np.testing.assert_array_equal(many, one)
    monkeypatch.setattr(tca, "ESTIMATE_PIXELS", 10**9)
    go("nothing_held", refine=False, motion="similarity")  # no frame is held back: the reference alone
    assert seen[-1] == 1
    import shutil

    two = tmp_path / "two"
    two.mkdir()
    for f in sorted(d.iterdir())[:2]:
        shutil.copy(f, two)
    d = two
    go("two")  # fewer frames than the estimate would read: those there are
    assert seen[-1] == 2
