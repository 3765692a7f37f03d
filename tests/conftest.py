"""Shared fixtures: synthetic bursts, real data location, GPU gating."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
REAL_DATA = Path(os.environ.get("SUPERRES_REAL_DATA", ROOT.parent / "shared" / "data" / "real"))


def real_data(*parts) -> Path:
    """Path inside the real-data folder; skips the test (with the reason) when absent."""
    p = REAL_DATA.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"real test data not available at {p} (set SUPERRES_REAL_DATA)")
    return p


def require_gpu() -> None:
    """Skip (with the reason) when no CUDA device is usable; fail instead under
    SUPERRES_REQUIRE_GPU=1."""
    from superres_gpu.backends import cupy_unavailable_reason

    reason = cupy_unavailable_reason()
    if reason is not None:
        if os.environ.get("SUPERRES_REQUIRE_GPU") == "1":
            pytest.fail(f"SUPERRES_REQUIRE_GPU=1 but no GPU: {reason}")
        pytest.skip(f"no GPU: {reason}")


@pytest.fixture(autouse=True)
def _gpu_gate(request):
    """Tests marked gpu skip with a reason without a device; SUPERRES_REQUIRE_GPU=1 fails them."""
    if request.node.get_closest_marker("gpu") is not None:
        require_gpu()


@pytest.fixture(scope="session")
def small_burst():
    """8 frames of 160x120, known hand-held motion, blur, noise, JPEG."""
    from superres_gpu.synth import CameraSpec, MotionSpec, make_burst

    return make_burst(
        n_frames=8,
        width=160,
        height=120,
        scale=2.0,
        factor=4,
        motion=MotionSpec(shift_sigma=2.5, rotation_sigma_deg=0.3, zoom_sigma=0.001),
        camera=CameraSpec(blur_sigma=0.5, noise_gain=0.001, noise_floor=0.005, jpeg_quality=92),
        seed=3,
    )


@pytest.fixture(scope="session")
def medium_burst():
    """12 frames of 320x240 for accuracy and quality figures."""
    from superres_gpu.synth import CameraSpec, MotionSpec, make_burst

    return make_burst(
        n_frames=12,
        width=320,
        height=240,
        scale=2.0,
        factor=4,
        motion=MotionSpec(shift_sigma=3.0, rotation_sigma_deg=0.3, zoom_sigma=0.001),
        camera=CameraSpec(blur_sigma=0.5, noise_gain=0.002, noise_floor=0.008, jpeg_quality=92),
        seed=5,
    )


@pytest.fixture
def burst_dir(tmp_path, small_burst):
    """The small burst written as JPEG files into a fresh folder."""
    d = tmp_path / "burst"
    small_burst.write(d)
    return d


def file_hashes(folder: Path) -> dict:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(Path(folder).iterdir()) if p.is_file()}


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
