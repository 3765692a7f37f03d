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


# ---- the CUDA host emulator (tests/cuda_emulator): GPU-marked tests on a machine without CuPy ----------
# SUPERRES_GPU_EMULATOR: "auto" (default) uses it where CuPy is not installed, "1" even where it is (a
# machine with CuPy but no GPU), "0" never.  SUPERRES_REQUIRE_GPU=1 (a real device demanded) never uses it.
EMULATOR = ROOT / "tests" / "cuda_emulator"


def _install_emulator():
    import importlib.util
    import shutil
    import sys

    mode = os.environ.get("SUPERRES_GPU_EMULATOR", "auto")
    if os.environ.get("SUPERRES_REQUIRE_GPU") == "1" or mode == "0":
        return None
    if mode != "1" and importlib.util.find_spec("cupy") is not None:
        return None
    if not (shutil.which("g++") or shutil.which("c++") or shutil.which("clang++")):
        return None
    sys.modules.pop("cupy", None)
    sys.path.insert(0, str(EMULATOR))
    import cupy

    assert getattr(cupy, "EMULATED", False), cupy.__file__
    sys.modules["cupy"] = None  # until a GPU-marked test runs (see _emulate)
    return cupy


EMULATED_CUPY = _install_emulator()


def pytest_report_header(config):
    if EMULATED_CUPY is not None:
        return "GPU tests: on the CUDA host emulator (tests/cuda_emulator), no GPU"
    return None


def _emulate(on: bool) -> None:
    """GPU-marked tests (their fixtures included) see the emulator and its device; every other test
    sees no CuPy at all (``import cupy`` fails), as where CuPy is not installed."""
    import sys

    EMULATED_CUPY.enabled = on
    sys.modules["cupy"] = EMULATED_CUPY if on else None


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_setup(item):
    if EMULATED_CUPY is not None:
        _emulate(item.get_closest_marker("gpu") is not None)
    yield


@pytest.hookimpl(hookwrapper=True, trylast=True)
def pytest_runtest_teardown(item, nextitem):
    yield
    if EMULATED_CUPY is not None:
        _emulate(False)


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
    """8 frames of 160x120, known hand-held motion, blur, noise, JPEG (the ``test-small`` recipe)."""
    from superres_gpu.synth import recipe_burst

    return recipe_burst("test-small")


@pytest.fixture(scope="session")
def medium_burst():
    """12 frames of 320x240 for accuracy and quality figures (the ``test-medium`` recipe)."""
    from superres_gpu.synth import recipe_burst

    return recipe_burst("test-medium")


@pytest.fixture(scope="session")
def numpy_backend():
    from superres_gpu.backends import get_backend

    return get_backend("numpy")


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
