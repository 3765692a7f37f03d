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


def _burst(n, width, height, shift, gain, floor, seed):
    from superres_gpu.synth import CameraSpec, MotionSpec, make_burst

    return make_burst(
        n_frames=n,
        width=width,
        height=height,
        scale=2.0,
        factor=4,
        motion=MotionSpec(shift_sigma=shift, rotation_sigma_deg=0.3, zoom_sigma=0.001),
        camera=CameraSpec(blur_sigma=0.5, noise_gain=gain, noise_floor=floor, jpeg_quality=92),
        seed=seed,
    )


@pytest.fixture(scope="session")
def small_burst():
    """8 frames of 160x120, known hand-held motion, blur, noise, JPEG."""
    return _burst(8, 160, 120, 2.5, 0.001, 0.005, seed=3)


@pytest.fixture(scope="session")
def medium_burst():
    """12 frames of 320x240 for accuracy and quality figures."""
    return _burst(12, 320, 240, 3.0, 0.002, 0.008, seed=5)


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
