"""CUDA kernel sources: location, memoized module factory, NVRTC compile check.

The ``.cu`` files live in the repository's ``kernels/`` folder; a wheel
carries them inside the package as ``superres_gpu/kernels/`` (hatch
force-include).  :func:`kernel_dir` finds them either way.

``common.cuh`` is inlined into each family's source, so a module compiles from
one string (no include paths) with CuPy (``cupy.RawModule``) or with NVRTC
directly (:func:`compile_ptx`, used by the CPU test suite to prove that every
kernel compiles for ``compute_80`` and ``compute_90`` without a GPU).

Modules are compiled once per family and device, on first use.  Importing
this module imports neither CuPy nor NVRTC.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from .errors import KernelError

# family -> template instantiations / kernel names (the name expressions)
KERNELS: dict[str, tuple[str, ...]] = {
    "resample": (
        "resample_accumulate<unsigned char, 1>",
        "resample_accumulate<unsigned char, 3>",
        "resample_accumulate<unsigned short, 1>",
        "resample_accumulate<unsigned short, 3>",
        "resample_accumulate<float, 1>",
        "resample_accumulate<float, 3>",
        "tca_band<unsigned char, 3>",
        "tca_band<unsigned short, 3>",
        "tca_band<float, 3>",  # raw frames, in the camera's own channels (tca.band_corrected)
    ),
    "pyramid": (
        "luma<unsigned char, 1>",
        "luma<unsigned char, 3>",
        "luma<unsigned short, 1>",
        "luma<unsigned short, 3>",
        "downsample2",
        "blur_rows",
        "blur_cols",
        "gradient",
    ),
    "phasecorr": ("window_complex", "cross_power", "peak_fit"),
    "align": ("align_reduce_partial", "align_sum_partials", "align_update", "align_finalize"),
    "normalize": ("normalize_u16<1>", "normalize_u16<3>"),
    "robust": ("robust_residual", "warp_residual", "robust_weight"),
    "kernelreg": (
        "kernel_accumulate<unsigned char, 1>",
        "kernel_accumulate<unsigned char, 3>",
        "kernel_accumulate<unsigned short, 1>",
        "kernel_accumulate<unsigned short, 3>",
        "kernel_accumulate<float, 3>",
    ),
}

COMPILE_OPTIONS = ("-std=c++17",)
ARCHS = ("compute_80", "compute_90")


def kernel_dir() -> Path:
    """Folder holding the .cu sources: inside the installed package, else the checkout's."""
    here = Path(__file__).resolve().parent
    for cand in (here / "kernels", here.parent / "kernels"):
        if (cand / "common.cuh").is_file():
            return cand
    raise KernelError("CUDA kernel sources not found (neither in the package nor in the checkout)")


@lru_cache(maxsize=None)
def kernel_source(family: str) -> str:
    """The family's CUDA source with ``common.cuh`` inlined."""
    if family not in KERNELS:
        raise KernelError(f"unknown kernel family {family!r}")
    d = kernel_dir()
    src = (d / f"{family}.cu").read_text()
    common = (d / "common.cuh").read_text().replace("#pragma once", "")
    return src.replace('#include "common.cuh"', common, 1)


@lru_cache(maxsize=None)
def get_module(family: str, device: int = 0):
    """Compiled ``cupy.RawModule`` of a family for CUDA device ``device``
    (memoized per family and device: a module belongs to one device's context)."""
    import cupy

    with cupy.cuda.Device(device):
        module = cupy.RawModule(code=kernel_source(family), options=COMPILE_OPTIONS, name_expressions=KERNELS[family])
        try:
            module.compile()  # RawModule compiles lazily: compile here, where the error is caught
        except cupy.cuda.compiler.CompileException as e:  # pragma: no cover - needs a GPU
            raise KernelError(f"kernel family {family!r} failed to compile: {e}") from e
    return module


@lru_cache(maxsize=None)
def get_kernel(family: str, name: str, device: int = 0):
    """One kernel function (a name expression listed in KERNELS) on ``device``."""
    if name not in KERNELS[family]:
        raise KernelError(f"{name!r} is not a kernel of family {family!r}")
    return get_module(family, device).get_function(name)


def compile_ptx(family: str, arch: str = "compute_80") -> tuple[str, dict[str, str]]:
    """Compile a family to PTX with NVRTC (no GPU needed).

    Returns (ptx, {name expression: lowered (mangled) name}).  Needs the
    ``nvidia-cuda-nvrtc`` and ``cuda-bindings`` wheels (the ``test`` extra).
    """
    from cuda.bindings import nvrtc

    def check(res, prog=None):
        err = res[0] if isinstance(res, tuple) else res
        if err != nvrtc.nvrtcResult.NVRTC_SUCCESS:
            log = ""
            if prog is not None:
                _, size = nvrtc.nvrtcGetProgramLogSize(prog)
                buf = b" " * size
                nvrtc.nvrtcGetProgramLog(prog, buf)
                log = buf.decode(errors="replace")
            raise KernelError(f"NVRTC failed on {family}.cu for {arch}: {err}\n{log}")
        return res[1:] if isinstance(res, tuple) and len(res) > 1 else None

    src = kernel_source(family).encode()
    (prog,) = check(nvrtc.nvrtcCreateProgram(src, f"{family}.cu".encode(), 0, [], []))
    try:
        for name in KERNELS[family]:
            check(nvrtc.nvrtcAddNameExpression(prog, name.encode()))
        opts = [f"--gpu-architecture={arch}".encode()] + [o.encode() for o in COMPILE_OPTIONS]
        check(nvrtc.nvrtcCompileProgram(prog, len(opts), opts), prog)
        (size,) = check(nvrtc.nvrtcGetPTXSize(prog))
        buf = b" " * size
        check(nvrtc.nvrtcGetPTX(prog, buf))
        lowered = {}
        for name in KERNELS[family]:
            (low,) = check(nvrtc.nvrtcGetLoweredName(prog, name.encode()))
            lowered[name] = low.decode() if isinstance(low, bytes) else str(low)
        return buf.rstrip(b"\x00").decode(), lowered
    finally:
        nvrtc.nvrtcDestroyProgram(prog)
