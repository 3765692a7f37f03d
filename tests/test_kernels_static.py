"""CPU checks of the GPU backend: launch arithmetic, signatures, layouts,
kernel sources (found, documented, compiling with NVRTC for sm_80/sm_90)."""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
import zipfile

import pytest

from superres_gpu.backends import base as S
from superres_gpu.backends.cupy_backend import CupyBackend
from superres_gpu.backends.launch import PEAK_THREADS, REDUCE_THREADS, ceil_div, grid_1d, grid_2d, reduce_blocks
from superres_gpu.backends.numpy_backend import NumpyBackend
from superres_gpu.geometry import MODEL_ID
from superres_gpu.kernels import ARCHS, KERNELS, compile_ptx, kernel_dir, kernel_source

from conftest import ROOT


@pytest.mark.parametrize("w,h", [(1, 1), (16, 16), (17, 15), (4000, 3000), (6576, 4960), (33, 1)])
def test_grid_2d_covers_every_pixel_exactly_once(w, h):
    gx, gy, gz = grid_2d(w, h)
    assert gz == 1
    assert (gx - 1) * 16 < w <= gx * 16
    assert (gy - 1) * 16 < h <= gy * 16


@pytest.mark.parametrize("n", [1, 255, 256, 257, 12_000_000])
def test_grid_1d(n):
    (g,) = grid_1d(n)
    assert (g - 1) * 256 < n <= g * 256


def test_empty_launches_are_errors():
    with pytest.raises(ValueError):
        grid_2d(0, 5)
    with pytest.raises(ValueError):
        grid_1d(0)


def test_reduce_blocks_bounds():
    assert reduce_blocks(10, 132) == 1
    assert reduce_blocks(1 << 17, 132) == 264
    assert reduce_blocks(300, 132) == ceil_div(300, REDUCE_THREADS)


def _public_methods(cls):
    return {
        n: inspect.signature(f)
        for n, f in inspect.getmembers(cls, predicate=inspect.isfunction)
        if not n.startswith("_") and n not in ("describe",)
    }


def test_twin_and_kernel_signatures_match():
    np_methods = _public_methods(NumpyBackend)
    cp_methods = _public_methods(CupyBackend)
    assert set(np_methods) == set(cp_methods)
    for name, sig in np_methods.items():
        assert list(sig.parameters) == list(cp_methods[name].parameters), name


def test_backend_protocol_lists_every_kernel_method():
    proto = {n for n, _ in inspect.getmembers(S.Backend, predicate=inspect.isfunction) if not n.startswith("_")}
    assert proto <= set(_public_methods(NumpyBackend)) | {"describe"}


def _defines():
    text = (kernel_dir() / "common.cuh").read_text()
    return {m.group(1): m.group(2) for m in re.finditer(r"#define (SR_\w+) (\S+)", text)}


def test_common_header_layouts_match_python():
    d = _defines()
    for name in dir(S):
        if re.fullmatch(r"(S|SUM|STATUS)_[A-Z_]+", name) or name in ("STATE_LEN", "SUMS_LEN"):
            val = getattr(S, name)
            if isinstance(val, slice):
                val = val.start
            assert int(d[f"SR_{name}"]) == val, name
    for model, mid in MODEL_ID.items():
        assert int(d[f"SR_MODEL_{model.upper()}"]) == mid
    assert float(d["SR_HUBER_K"]) == S.HUBER_K
    assert int(d["SR_TAB_SIZE"]) == 32


def test_thread_counts_match_kernels():
    assert f"#define SR_REDUCE_THREADS {REDUCE_THREADS}" in (kernel_dir() / "align.cu").read_text()
    assert f"#define SR_PEAK_THREADS {PEAK_THREADS}" in (kernel_dir() / "phasecorr.cu").read_text()


@pytest.mark.parametrize("family", sorted(KERNELS))
def test_every_kernel_source_is_documented(family):
    text = (kernel_dir() / f"{family}.cu").read_text()
    head = text.split("#include", 1)[0]
    assert head.startswith(f"// {family}.cu:")
    assert "twin" in head.lower() and "Launch" in head
    for name in KERNELS[family]:
        base = name.split("<")[0]
        assert re.search(rf"__global__ void {base}\(", text), f"{name} is not a kernel in {family}.cu"
    assert '#include "common.cuh"' not in kernel_source(family)


def test_kernel_sources_found_from_the_checkout():
    assert kernel_dir() == ROOT / "kernels"


def _nvrtc_reason():
    try:
        from cuda.bindings import nvrtc

        err, major, minor = nvrtc.nvrtcVersion()
        return None
    except Exception as e:  # not installed, or no libnvrtc
        return f"NVRTC not available ({type(e).__name__}: {e}); install the 'test' extra"


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("family", sorted(KERNELS))
def test_every_kernel_compiles_with_nvrtc(family, arch):
    reason = _nvrtc_reason()
    if reason:
        pytest.skip(reason)
    ptx, lowered = compile_ptx(family, arch)
    assert f".target sm_{arch.split('_')[1]}" in ptx
    assert set(lowered) == set(KERNELS[family])
    for mangled in lowered.values():
        assert f".entry {mangled}" in ptx


def test_kernels_are_shipped_in_the_wheel(tmp_path):
    """Build the wheel and check that the .cu sources are inside the package."""
    res = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path), str(ROOT)],
        capture_output=True,
        text=True,
    )
    if res.returncode != 0 and "hatchling" in (res.stderr + res.stdout):
        pytest.skip("hatchling is not installed in this environment (it is in the 'test' extra)")
    assert res.returncode == 0, res.stderr[-2000:]
    (wheel,) = tmp_path.glob("superres_gpu-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for family in KERNELS:
        assert f"superres_gpu/kernels/{family}.cu" in names
    assert "superres_gpu/kernels/common.cuh" in names
    # and the loader finds them there: unpack and import from the unpacked tree
    zipfile.ZipFile(wheel).extractall(tmp_path / "site")
    code = "from superres_gpu.kernels import kernel_dir; print(kernel_dir())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                         env={"PYTHONPATH": str(tmp_path / "site"), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(tmp_path / "site" / "superres_gpu" / "kernels")
