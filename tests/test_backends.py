"""The backend seam: both backends implement exactly the protocol, and only
``get_backend`` makes them."""

from __future__ import annotations

import inspect
import re

import pytest

from superres_gpu.backends import BACKENDS, base, cupy_unavailable_reason, get_backend, is_device_oom
from superres_gpu.backends.cupy_backend import CupyBackend
from superres_gpu.backends.numpy_backend import NumpyBackend
from superres_gpu.errors import BackendUnavailableError, ConfigError

from conftest import ROOT


def _public_methods(cls):
    return {n: inspect.signature(f) for n, f in inspect.getmembers(cls, predicate=inspect.isfunction)
            if not n.startswith("_")}


def _protocol_methods():
    return {n: inspect.signature(f) for n, f in vars(base.Backend).items()
            if inspect.isfunction(f) and not n.startswith("_")}


@pytest.mark.parametrize("cls", [NumpyBackend, CupyBackend])
def test_backends_implement_exactly_the_protocol(cls):
    proto = _protocol_methods()
    methods = _public_methods(cls)
    assert set(methods) == set(proto), f"{cls.__name__}: extra {set(methods) - set(proto)}, missing {set(proto) - set(methods)}"
    for name, sig in proto.items():
        assert list(methods[name].parameters) == list(sig.parameters), name
        for pname, p in sig.parameters.items():  # the same defaults as the protocol
            assert methods[name].parameters[pname].default == p.default, f"{cls.__name__}.{name}({pname})"
    attrs = {n for n in base.Backend.__annotations__}
    assert attrs == {"name", "xp"}
    assert cls.name in BACKENDS


def test_get_backend_names_and_errors():
    B = get_backend("numpy")
    assert B.name == "numpy" and B.xp.__name__ == "numpy"
    assert get_backend("auto").name in ("numpy", "cupy")
    with pytest.raises(ConfigError, match="unknown backend"):
        get_backend("opencl")
    if cupy_unavailable_reason() is not None:
        with pytest.raises(BackendUnavailableError, match="cupy backend is unavailable"):
            get_backend("cupy")


def test_only_get_backend_constructs_backends():
    pattern = re.compile(r"\b(NumpyBackend|CupyBackend)\(")
    offenders = []
    for folder in ("superres_gpu", "benchmarks", "tests"):
        for p in (ROOT / folder).rglob("*.py"):
            if p.name == "test_backends.py" or p.parent.name == "backends" and p.name == "__init__.py":
                continue
            for k, line in enumerate(p.read_text().splitlines(), 1):
                if pattern.search(line) and not line.lstrip().startswith(("class ", "#")):
                    offenders.append(f"{p.relative_to(ROOT)}:{k}")
    assert not offenders, offenders


def test_device_out_of_memory_is_recognised_without_cupy():
    OOM = type("OutOfMemoryError", (MemoryError,), {"__module__": "cupy.cuda.memory"})
    cufft = type("CuFFTError", (RuntimeError,), {"__module__": "cupy.cuda.cufft"})
    assert is_device_oom(OOM("out of memory")) and is_device_oom(cufft("CUFFT_ALLOC_FAILED"))
    assert not is_device_oom(MemoryError("host")) and not is_device_oom(cufft("CUFFT_INVALID_PLAN"))
