"""Small valid DNG files for the tests and benchmarks: a 16-bit RGGB CFA
written with tifffile and the DNG tags LibRaw needs."""

from __future__ import annotations

import numpy as np

# XYZ (D65) -> linear sRGB: with this ColorMatrix1 the camera's space is linear sRGB
XYZ_TO_SRGB = np.array([[3.2406, -1.5372, -0.4986], [-0.9689, 1.8758, 0.0415], [0.0557, -0.2040, 1.0570]])


def _rationals(values, den: int) -> list:
    out = []
    for v in values:
        out += [int(round(v * den)), den]
    return out


def mosaic(rgb_linear: np.ndarray, white_balance=(2.0, 1.0, 1.5)) -> np.ndarray:
    """RGGB CFA (float, [0, 1]) of a linear RGB scene seen by a camera whose
    raw channels are the scene divided by ``white_balance``."""
    cam = np.asarray(rgb_linear, np.float64) / np.asarray(white_balance)[None, None, :]
    h, w = cam.shape[:2]
    cfa = np.empty((h, w))
    cfa[0::2, 0::2] = cam[0::2, 0::2, 0]
    cfa[0::2, 1::2] = cam[0::2, 1::2, 1]
    cfa[1::2, 0::2] = cam[1::2, 0::2, 1]
    cfa[1::2, 1::2] = cam[1::2, 1::2, 2]
    return cfa


def write_dng(path, rgb_linear: np.ndarray, white_balance=(2.0, 1.0, 1.5), black: int = 256, white: int = 16383,
              noise_profile=(2e-4, 1e-6), orientation: int = 1, make: str = "Acme", model: str = "Synth",
              noise_seed: int | None = None, camera_to_srgb=None):
    """Write a linear RGB scene ((H, W, 3) in [0, 1], H and W even) as a DNG.

    With ``noise_seed``, every raw sample x gets Gaussian noise of the variance
    the file's NoiseProfile states, S x + O (x in [0, 1] of the white level).
    ``camera_to_srgb`` (3x3): the colour matrix a decoder is to apply to the
    (white-balanced) camera channels, which ``rgb_linear`` then holds; by
    default the identity (the camera's channels are linear sRGB)."""
    import tifffile

    xyz_to_camera = XYZ_TO_SRGB if camera_to_srgb is None else np.linalg.inv(camera_to_srgb) @ XYZ_TO_SRGB
    cfa = mosaic(rgb_linear, white_balance)
    if noise_seed is not None:
        S, O = noise_profile
        cfa = cfa + np.random.default_rng(noise_seed).standard_normal(cfa.shape) * np.sqrt(S * np.maximum(cfa, 0) + O)
    data = np.clip(np.rint(black + cfa * (white - black)), 0, 65535).astype(np.uint16)
    tags = [
        (50706, "B", 4, (1, 4, 0, 0), True),  # DNGVersion
        (50707, "B", 4, (1, 1, 0, 0), True),  # DNGBackwardVersion
        (50708, "s", 0, f"{make} {model}", True),  # UniqueCameraModel
        (33421, "H", 2, (2, 2), True),  # CFARepeatPatternDim
        (33422, "B", 4, (0, 1, 1, 2), True),  # CFAPattern: RGGB
        (50714, "I", 1, (black,), True),  # BlackLevel
        (50717, "I", 1, (white,), True),  # WhiteLevel
        (50721, "2i", 9, _rationals(xyz_to_camera.ravel(), 10000), True),  # ColorMatrix1
        (50778, "H", 1, (21,), True),  # CalibrationIlluminant1: D65
        (50728, "2I", 3, _rationals([1.0 / g for g in white_balance], 1000000), True),  # AsShotNeutral
        (274, "H", 1, (orientation,), True),
        (271, "s", 0, make, True),
        (272, "s", 0, model, True),
    ]
    if noise_profile is not None:
        tags.append((51041, "d", 6, tuple(noise_profile) * 3, True))  # NoiseProfile, per plane
    tifffile.imwrite(path, data, photometric=32803, subfiletype=0, extratags=tags, metadata=None)
    return path
