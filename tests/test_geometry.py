"""Coordinates, motion models and transforms: the conventions others rely on."""

from __future__ import annotations

import numpy as np
import pytest

from superres_gpu.geometry import (
    MODEL_NPARAMS,
    MOTION_MODELS,
    apply,
    decompose,
    grid_rms_error,
    is_plausible,
    model_matrix,
    normalisation,
    output_size,
    output_to_reference,
)


def test_output_size_convention():
    assert output_size(3288, 2480, 2.0) == (6576, 4960)
    assert output_size(101, 57, 1.5) == (152, 86)  # round(151.5) = 152 (half to even), round(85.5) = 86


@pytest.mark.parametrize("scale", [1.0, 1.5, 2.0, 4.0])
def test_output_pixel_centres_sample_the_reference_at_the_documented_positions(scale):
    S = output_to_reference(scale)
    X = np.array([0.0, 1.0, 10.0])
    x, y = apply(S, X, X)
    np.testing.assert_allclose(x, (X + 0.5) / scale - 0.5)
    np.testing.assert_allclose(y, x)
    # the output grid's outer edges coincide with the reference's: -0.5 maps to -0.5
    np.testing.assert_allclose(apply(S, -0.5, -0.5), (-0.5, -0.5))


@pytest.mark.parametrize("model", MOTION_MODELS)
def test_zero_parameters_are_the_identity(model):
    np.testing.assert_array_equal(model_matrix(model, np.zeros(MODEL_NPARAMS[model])), np.eye(3))


def test_decompose_and_plausibility():
    a = np.deg2rad(0.5)
    T = np.array([[1.01 * np.cos(a), -1.01 * np.sin(a), 3.0], [1.01 * np.sin(a), 1.01 * np.cos(a), -2.0], [0, 0, 1]])
    d = decompose(T)
    assert d["dx"] == 3.0 and d["dy"] == -2.0
    assert d["rotation_deg"] == pytest.approx(0.5) and d["scale"] == pytest.approx(1.01)
    assert is_plausible(T, 100, 80)
    assert not is_plausible(np.diag([-1.0, 1.0, 1.0]), 100, 80)  # a mirror image
    assert not is_plausible(np.diag([3.0, 3.0, 1.0]), 100, 80)  # a wild zoom
    assert not is_plausible(np.full((3, 3), np.nan), 100, 80)


def test_grid_error_of_a_pure_shift_is_the_shift():
    T = np.array([[1, 0, 0.3], [0, 1, 0.4], [0, 0, 1.0]])
    assert grid_rms_error(T, np.eye(3), 64, 48) == pytest.approx(0.5)
    assert normalisation(65, 49) == (32.0, 24.0, 32.5)
