"""Lateral chromatic aberration: the estimate on synthetic bursts with known radial scaling."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from superres_gpu import cli, synth
from superres_gpu.backends import get_backend
from superres_gpu.errors import AlignmentError
from superres_gpu.tca import ChannelTCA, TCAEstimate, estimate
from tolerances import TOL

B = get_backend("numpy")
TRUE_CA = (0.002, -0.002)  # red +0.2 %, blue -0.2 %


def _burst(ca, frames=4, **camera):
    r = synth.RECIPES["test-medium"]
    cam = dataclasses.replace(r.camera, lateral_ca=ca, **camera)
    return synth.recipe_burst("test-medium", frames=frames, camera=cam)


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
    assert est.frames == 4
    # 0.2 % at the corner of a 320x240 frame (200 px from the centre): about 0.4 px
    shift = est.corner_shift_px()
    assert 0.3 < shift["red"] < 0.5 and 0.3 < shift["blue"] < 0.5


def test_no_aberration_estimates_nearly_none():
    est = estimate(B, _burst((0.0, 0.0), jpeg_quality=None).frames)
    assert abs(est.red.scale) < TOL["tca_scale_rel"][0] * abs(TRUE_CA[0])
    assert abs(est.blue.scale) < TOL["tca_scale_rel"][0] * abs(TRUE_CA[1])


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
    assert cli.main(["tca", str(tmp_path / "b"), "--frames", "0"]) != 0
