"""The CUDA kernels checked on the CPU: layouts shared with Python, every
launch's argument types against the kernel's C signature, the twins named in
the sources, NVRTC compilation for sm_80/sm_90, and the wheel's contents."""

from __future__ import annotations

import re
import subprocess
import sys
import types
import zipfile

import numpy as np
import pytest

from superres_gpu.backends import base as S
from superres_gpu.backends.cupy_backend import CupyBackend
from superres_gpu.backends.numpy_backend import NumpyBackend
from superres_gpu.cuda_modules import ARCHS, KERNELS, compile_ptx, kernel_dir, kernel_source
from superres_gpu.geometry import MODEL_ID, output_size
from superres_gpu.interp import bspline_prefilter_taps, lanczos4_table
from superres_gpu.state import transform_state

from conftest import ROOT


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
    for name in ("TUKEY_C", "SCALE_C", "SCALE_DELTA"):
        assert float(d[f"SR_{name}"]) == getattr(S, name), name
    assert int(d["SR_SCALE_STEPS"]) == S.SCALE_STEPS
    assert S.SUM_RHO + S.SCALE_STEPS <= S.SUM_WS and int(d["SR_SUM_USED"]) == S.SUM_WRR + 1 <= S.SUMS_LEN
    assert int(d["SR_TAB_SIZE"]) == 32


def test_kernel_merge_cut_off_matches_the_twin():
    """kernelreg.cu's weight ramp at the cut-off uses the twin's constants."""
    import math

    import numpy as np

    from superres_gpu.backends.numpy_backend import KERNEL_KMIN, KERNEL_RAMP

    text = (kernel_dir() / "kernelreg.cu").read_text()
    d = {m.group(1): m.group(2) for m in re.finditer(r"#define (SR_\w+) (\S+)", text)}
    assert np.float32(float(d["SR_KERNEL_KMIN"].rstrip("f"))) == KERNEL_KMIN == np.float32(math.exp(-4.5))
    assert float(d["SR_KERNEL_RAMP"].rstrip("f")) == KERNEL_RAMP


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
    # the wheel ships the suite (superres bench) but no benchmark results, pictures or scripts
    assert any(n.startswith("superres_gpu/bench/suite.py") for n in names)
    stray = [n for n in names if n.endswith((".png", ".sh", ".md")) and not n.endswith("METADATA")]
    stray += [n for n in names if n.startswith(("benchmarks/", "superres_gpu/_benchmarks"))]
    assert not stray, stray
    # and the loader finds them there: unpack and import from the unpacked tree
    zipfile.ZipFile(wheel).extractall(tmp_path / "site")
    code = "from superres_gpu.cuda_modules import kernel_dir; print(kernel_dir())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                         env={"PYTHONPATH": str(tmp_path / "site"), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(tmp_path / "site" / "superres_gpu" / "kernels")


# --------------------------------------------------------------------------
# Every launch of the CuPy backend against the kernel's C signature
# --------------------------------------------------------------------------

_C_SCALARS = {"int": np.int32, "long long": np.int64, "float": np.float32, "double": np.float64}
_C_POINTEES = {"unsigned char": (np.uint8,), "unsigned short": (np.uint16,), "float": (np.float32, np.complex64),
               "double": (np.float64,)}


def kernel_signatures() -> dict:
    """{(family, name expression): [C parameter types]} parsed from the sources."""
    out = {}
    for family, names in KERNELS.items():
        text = (kernel_dir() / f"{family}.cu").read_text()
        for expr in names:
            base_name = expr.split("<")[0]
            m = re.search(r"(template\s*<([^>]*)>\s*)?__global__\s+void\s+" + base_name + r"\(([^)]*)\)", text)
            assert m, f"no kernel {base_name} in {family}.cu"
            subst = {}
            if m.group(2):
                tparams = [p.split()[-1] for p in m.group(2).split(",")]
                targs = [a.strip() for a in expr[len(base_name) + 1 : -1].split(",")]
                subst = dict(zip(tparams, targs))
            types_ = []
            for param in m.group(3).split(","):
                words = param.replace("__restrict__", "").replace("const", "").replace("*", " * ").split()[:-1]
                ctype = " ".join(subst.get(w, w) for w in words)
                types_.append(ctype)
            out[(family, expr)] = types_
    return out


def _fake_cupy():
    """NumPy standing in for CuPy: enough for the backend's host-side code."""
    fake = types.SimpleNamespace(ndarray=np.ndarray, fft=np.fft, empty=np.zeros, empty_like=np.zeros_like)
    for name in ("zeros", "ones", "full", "asarray", "ascontiguousarray", "where", "maximum", "pad", "take", "arange",
                 "floor", "minimum", "int64", "nan_to_num", "nanmedian", "stack", "float32", "float64", "uint8", "uint16", "complex64", "nan"):
        setattr(fake, name, getattr(np, name))
    return fake


class LaunchChecker:
    def __init__(self):
        self.signatures = kernel_signatures()
        self.launched = set()

    def __call__(self, family, name):
        ctypes_ = self.signatures[(family, name)]

        def launch(grid, block, args):
            self.launched.add((family, name))
            assert len(args) == len(ctypes_), f"{name}: {len(args)} arguments for {len(ctypes_)} parameters"
            assert all(isinstance(g, (int, np.integer)) and g >= 1 for g in grid), (name, grid)
            assert int(np.prod(block)) <= 1024, (name, block)
            for k, (ctype, a) in enumerate(zip(ctypes_, args)):
                where = f"{name} argument {k} ({ctype})"
                if ctype.endswith("*"):
                    assert isinstance(a, np.ndarray), where
                    assert a.dtype.type in _C_POINTEES[ctype[:-1].strip()], f"{where}: {a.dtype}"
                    assert a.flags.c_contiguous, f"{where}: not contiguous"
                else:
                    assert type(a) is _C_SCALARS[ctype], f"{where}: {type(a).__name__}"

        return launch


@pytest.fixture
def checked_gpu_backend():
    G = object.__new__(CupyBackend)
    G.cp = G.xp = _fake_cupy()
    G.device = types.SimpleNamespace(id=0)
    G.sm_count = 4
    G._tab = np.asarray(lanczos4_table())
    G._one = np.ones((1, 1), np.float32)
    G._eye9 = np.tile(np.eye(3).ravel(), (3, 1))
    G._field0 = np.zeros((1, 1, 2), np.float32)
    G._taps = {}
    G._pinned, G._pin_next = [None, None], 0
    checker = LaunchChecker()
    G._kernel = checker
    return G, checker


def test_every_launch_matches_its_kernel_signature(checked_gpu_backend, rng):
    """Argument count, C types (np.int32 for int, np.float64 for double, ...),
    pointee dtypes, contiguity and launch shapes of every kernel the CuPy
    backend launches: the mistakes that would otherwise only show on a GPU."""
    G, checker = checked_gpu_backend
    st = transform_state(np.array([[1.0, 0.01, 0.5], [-0.01, 1.0, -0.3], [0, 0, 1.0]]))
    field = (rng.random((3, 5, 2)) - 0.5).astype(np.float32)
    for dtype in (np.uint8, np.uint16):
        for shape in ((21, 34), (21, 34, 3)):
            frame = (rng.random(shape) * 200).astype(dtype)
            G.luma(frame)
            wo, ho = output_size(34, 21, 2.0)
            c = 1 if len(shape) == 2 else 3
            num, den = np.zeros((ho, wo, c), np.float32), np.zeros((ho, wo), np.float32)
            G.resample_accumulate(frame, st, num, den, 2.0, 255.0)
            G.resample_accumulate(frame, st, num, den, 2.0, 255.0, np.ones((10, 17), np.float32), 1)
            G.kernel_accumulate(frame, st, num, den, 2.0, 255.0, 0.6)
            G.kernel_accumulate(frame, st, num, den, 2.0, 255.0, 0.6, np.ones((10, 17), np.float32), 1)
            G.kernel_accumulate(frame, st, num, den, 2.0, 255.0, 0.6, None, 1, field=field, field_cell=8.0)
            G.kernel_accumulate(frame, st, num, den, 2.0, 255.0, 0.9, None, 1, np.full((3, 21, 34), -0.5, np.float32))
            cmaps = np.tile(np.eye(3).ravel(), (c, 1))
            den_c = np.zeros((ho, wo, c), np.float32)  # with channel maps, a plane per channel
            G.kernel_accumulate(frame, st, num, den_c, 2.0, 255.0, 0.6, None, 1, channel_maps=cmaps)
            G.kernel_accumulate(frame, st, num, den_c, 2.0, 255.0, 0.9, np.ones((10, 17), np.float32), 1,
                                np.full((3, 21, 34), -0.5, np.float32), field, 8.0, cmaps)
            G.resample_accumulate(frame, st, num, den, 2.0, 255.0, None, 1, np.tile(np.eye(3).ravel(), (c, 1)))
            G.resample_accumulate(frame, st, num, den, 2.0, 255.0, np.ones((10, 17), np.float32), 1, None, field, 8.0)
            G.resample_accumulate(frame, st, num, den, 2.0, 255.0, None, 1, np.tile(np.eye(3).ravel(), (c, 1)), field,
                                  8.0)
            G.normalize_u16(num, den, 257.0)
            if c == 1:  # the template merges the frames' lumas (float32)
                G.resample_accumulate(frame.astype(np.float32) / 255, st, num, den, 2.0, 1.0)
            if c == 3:  # chroma-subsampled colour frames: the low band moved, then float32 frames merged
                moved = np.tile(np.eye(3).ravel(), (3, 1))
                moved[0, [0, 2, 4, 5]] = [1.002, -0.03, 1.002, -0.02]
                G.tca_band(frame, moved, (2, 2), "nearest")
                G.tca_band(frame.astype(np.float32), moved, (2, 2))  # raw frames, in the camera's channels
                fl = G.tca_band(frame, moved, (2, 2))
                G.resample_accumulate(fl, st, num, den, 2.0, 255.0)
                G.kernel_accumulate(fl, st, num, den, 2.0, 255.0, 0.6)
    img = rng.random((21, 34)).astype(np.float32)
    G.downsample2(img)
    G.sepfilter(img, bspline_prefilter_taps())
    G.gradient(img)
    win = np.ones_like(img)
    spec = G.reference_spectrum(img, win)
    surf = G.phase_correlation(spec, img, win)
    G.peak_to_state(surf, st, 1)
    pts = rng.random((5, 300)).astype(np.float32)
    sums = G.align_reduce(img, pts, st, MODEL_ID["homography"], 1, (16.5, 10.0, 17.0), 2.0, 1)
    G.align_update(sums, st, MODEL_ID["homography"], (16.5, 10.0, 17.0), 1e-6, 1e-4, 1)
    G.align_finalize(st, 68, 42, 0.3, 0.5)
    d2, cov = G.robust_residual(img, img, st, 1, 2.0)
    G.robust_residual(img, img, st, 1, 2.0, field, 8.0)
    G.warp_residual(img, img, st, 1, 2.0)
    G.warp_residual(img, img, st, 0, 2.0, field, 8.0)
    G.robust_weight(d2, cov, img, np.float32(1e-3), 0.125, 3.0, 6.0, None)
    G.robust_weight(d2, cov, img, np.float32(1e-3), 0.125, 3.0, 6.0, (img > 0.5).astype(np.float32))
    every = {(f, n) for f, names in KERNELS.items() for n in names}
    assert checker.launched == every, f"never launched: {sorted(every - checker.launched)}"


@pytest.mark.parametrize("family", sorted(KERNELS))
def test_kernel_sources_name_their_twins_and_kernels(family):
    """Each source's header names its NumPy twin (which must exist) and every
    listed name expression is a kernel there; common.cuh is inlined."""
    text = (kernel_dir() / f"{family}.cu").read_text()
    head = text.split("#include", 1)[0]
    twins = re.findall(r"NumpyBackend\.(\w+)|^//\s+\.(\w+)|, \.(\w+)", head, flags=re.M)
    named = {t for group in twins for t in group if t}
    assert named, f"{family}.cu names no NumPy twin"
    for twin in named:
        assert hasattr(NumpyBackend, twin), f"{family}.cu names NumpyBackend.{twin}, which does not exist"
    for name in KERNELS[family]:
        base_name = name.split("<")[0]
        assert re.search(rf"__global__ void {base_name}\(", text), f"{name} is not a kernel in {family}.cu"
    assert '#include "common.cuh"' not in kernel_source(family)


def test_a_compile_error_becomes_a_kernel_error(monkeypatch):
    """cupy.RawModule compiles lazily: the factory compiles at once, inside the
    try, so a compile error surfaces as KernelError naming the family."""
    from superres_gpu import cuda_modules
    from superres_gpu.errors import KernelError

    class CompileException(Exception):
        pass

    class Device:
        def __init__(self, i):
            self.id = i

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    class RawModule:
        def __init__(self, code, options, name_expressions):
            assert "__global__" in code and options == cuda_modules.COMPILE_OPTIONS

        def compile(self):
            raise CompileException("error: identifier 'oops' is undefined")

    fake = types.ModuleType("cupy")
    fake.RawModule = RawModule
    fake.cuda = types.SimpleNamespace(Device=Device, compiler=types.SimpleNamespace(CompileException=CompileException))
    monkeypatch.setitem(sys.modules, "cupy", fake)
    cuda_modules.get_module.cache_clear()
    cuda_modules.get_kernel.cache_clear()
    try:
        with pytest.raises(KernelError, match="'pyramid' failed to compile.*oops"):
            cuda_modules.get_kernel("pyramid", "gradient", 0)
    finally:
        cuda_modules.get_module.cache_clear()
        cuda_modules.get_kernel.cache_clear()
