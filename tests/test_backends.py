"""The backend seam: both backends implement exactly the protocol, and only
``get_backend`` makes them."""

from __future__ import annotations

import inspect
import re
import threading
import types

import numpy as np
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


class _Event:
    def __init__(self, log, stream):
        self.done, self.stream = True, stream
        log.append((stream, "record", self))

    def synchronize(self):
        pass


class _Stream:
    def __init__(self, name, log):
        self.name, self.log = name, log

    def record(self):
        return _Event(self.log, self.name)

    def wait_event(self, event):
        self.log.append((self.name, "wait", event))

    def synchronize(self):
        pass


class _DeviceArray:
    def __init__(self, shape, dtype, log):
        self.data, self.log = np.zeros(shape, dtype), log
        self.shape, self.dtype = self.data.shape, self.data.dtype

    def set(self, host, stream):
        self.log.append((stream.name, "copy", self))
        self.data[...] = host


def _upload_backend():
    log = []
    fake = types.SimpleNamespace()
    fake.ndarray = _DeviceArray
    fake.empty = lambda shape, dtype: _DeviceArray(shape, dtype, log)
    fake.cuda = types.SimpleNamespace(alloc_pinned_memory=lambda n: bytearray(n))
    G = object.__new__(CupyBackend)
    G.cp = fake
    G.compute_stream, G.upload_stream = _Stream("compute", log), _Stream("upload", log)
    G._pinned_lock = threading.Lock()
    G._pinned_free, G._pinned_owner, G._ring, G._ring_next = [], {}, [], 0
    return G, log


def test_frame_uploads_overlap_compute_without_overwriting_a_buffer_in_use(rng):
    """The upload ring's ordering, checked on the CPU with recording streams:
    the compute stream waits for each frame's copy; a device buffer is refilled
    only after the frame that used it was marked done; pinned buffers are
    decoded into directly and reused only once their copy has finished."""
    G, log = _upload_backend()
    frames = [(rng.random((6, 5, 3)) * 255).astype(np.uint8) for _ in range(4)]
    devs, done = [], []
    for k, f in enumerate(frames):
        host = G.host_frame(f.shape, f.dtype)
        assert host.ctypes.data in G._pinned_owner  # pinned: decoded into directly
        host[...] = f
        dev = G.upload_frame(host)
        np.testing.assert_array_equal(dev.data, f)
        k_copy = max(j for j, e in enumerate(log) if e[1] == "copy")
        assert log[k_copy + 1][:2] == ("upload", "record") and log[k_copy + 2] == ("compute", "wait", log[k_copy + 1][2])
        if k >= 2:  # this buffer held frame k-2: the copy waited for that frame's frame_done
            assert ("upload", "wait", done[k - 2]) in log[:k_copy]
            assert dev is devs[k - 2]
        G.frame_done(dev)
        done.append([e for e in log if e[:2] == ("compute", "record")][-1][2])
        devs.append(dev)
    assert devs[0] is not devs[1]
    # a pinned buffer whose copy has not finished is not handed out again
    for _, _, event in G._pinned_free:
        event.done = False
    before = len(G._pinned_free)
    G.host_frame((6, 5, 3), np.uint8)
    assert len(G._pinned_free) == before
    with pytest.raises(TypeError, match="uint8 or uint16"):
        G.upload_frame(np.zeros((6, 5, 3), np.float32))


def test_a_pinned_buffer_that_is_not_uploaded_goes_back_to_the_pool():
    """A frame culled after it was decoded into pinned memory: its buffer
    is handed out again, not kept."""
    G, _ = _upload_backend()
    host = G.host_frame((6, 5, 3), np.uint8)
    G.release_host(host)
    assert host.ctypes.data not in G._pinned_owner and len(G._pinned_free) == 1
    again = G.host_frame((6, 5, 3), np.uint8)
    assert again.ctypes.data == host.ctypes.data and not G._pinned_free
    G.release_host(np.zeros((6, 5, 3), np.uint8))  # not from the pool: nothing happens
    assert not G._pinned_free


def test_the_merge_kernels_check_den_against_the_channel_maps():
    """The kernel merge with channel maps sums each channel's weights in its
    own plane of den: the GPU backend refuses a den of the other shape
    before launching (checked on the CPU: the argument checks need no device)."""
    G = object.__new__(CupyBackend)
    G.cp = types.SimpleNamespace(ascontiguousarray=np.ascontiguousarray)
    G._one = np.ones((1, 1), np.float32)
    frame = np.zeros((9, 11, 3), np.uint8)
    num = np.zeros((18, 22, 3), np.float32)
    plane, planes = np.zeros((18, 22), np.float32), np.zeros((18, 22, 3), np.float32)
    assert G._accumulate_args(frame, num, plane, None)[3:6] == (3, 22, 18)
    assert G._accumulate_args(frame, num, planes, None, den_planes=True)[3:6] == (3, 22, 18)
    with pytest.raises(ValueError, match=r"den must be \(ho, wo, channels\)"):
        G._accumulate_args(frame, num, plane, None, den_planes=True)
    with pytest.raises(ValueError, match=r"den must be \(ho, wo\)"):
        G._accumulate_args(frame, num, planes, None)


def test_outside_the_gpu_tests_cupy_is_not_importable_where_it_is_emulated():
    """Where the GPU tests run on the CUDA host emulator, every other test sees a machine without
    CuPy: code that needs CuPy outside the GPU backend fails here as it would there."""
    from conftest import EMULATED_CUPY

    if EMULATED_CUPY is None:
        pytest.skip("the CUDA host emulator is not in use here")
    assert "CuPy is not installed" in cupy_unavailable_reason()
    with pytest.raises(ImportError):
        import cupy  # noqa: F401
