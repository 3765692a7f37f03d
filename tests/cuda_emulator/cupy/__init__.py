"""A CUDA host emulator with CuPy's interface: the GPU tests on a machine without a GPU.

This package stands in for ``cupy`` when the test suite runs where CuPy is not
installed (``tests/conftest.py`` puts it on ``sys.path``; see
``SUPERRES_GPU_EMULATOR`` there).  It is test infrastructure, not a backend:

- **Device arrays** (:class:`ndarray`) hold host memory but behave as CuPy's
  do where that matters to a first run on a GPU: ``np.asarray(device_array)``
  raises (CuPy forbids implicit device-to-host copies), a CuPy function given a
  NumPy array raises ``TypeError`` (CuPy accepts host arrays only in
  ``asarray``/``array``/``asnumpy`` and assignments), reductions return 0-d
  device arrays, and ``.get()``/``.set()``/``asnumpy`` copy.
- **Kernels**: ``RawModule`` compiles a kernel family's CUDA source with the
  host C++ compiler against ``_runtime.h``, which runs every launch as CUDA's
  execution model does it: blocks of cooperative threads, ``__syncthreads``
  and warp shuffles as rendezvous points, ``__shared__`` memory per block.
  So the ``__global__`` wrappers (indexing, bounds, block reductions, shared
  memory) run, not only the per-thread math.
- **Launch arguments** are checked against each kernel's parameter list, which
  the compiled module exports: their number, a device array (C-contiguous, of
  the pointee's type) for every pointer and a scalar of the parameter's kind
  and width for every value.  The driver would silently misread a mismatch.
- **Streams and events**: work runs when it is queued (the order checks below
  stand for the device's asynchrony); ``cupy.fft`` is NumPy's (float32 in,
  complex64 out, as cuFFT).
- **Memory**: arrays one of which is written may not overlap (every pointer
  of the project's kernels is ``__restrict__``); each array argument is copied
  to end at an inaccessible page, so a read or write past its end fails the
  launch naming the argument (a write before its start fails it too, a read
  there reads the poison, NaN).
- **Races**: a kernel with barriers or shuffles runs its first launches twice,
  a block's threads from the highest index down and then up; results that
  differ fail the launch.
- **Stream order**: every access to a device buffer is recorded with the
  stream that queued it (views queue no work; ``out=`` and ``copyto`` write);
  an access that no event (waited for, transitively) or host wait orders
  after another stream's conflicting access raises.  An event is not done
  the first time it is asked, and a pinned host buffer the host changes while
  its copy is in flight fails the run when the copy becomes known done.

What it cannot show: timings, the device's own rounding (its ``expf``, FMA
contraction where NVRTC chooses it, the order of a reduction's partial sums),
and races the two thread orders do not expose.  Those need a GPU.  Its
functions are NumPy's, so one that CuPy lacks (or whose arguments CuPy takes
differently) is not refused here; the names the project uses are all CuPy's.  Type
promotion is NumPy 2's (NEP 50, as CuPy 14's); ``SUPERRES_EMULATOR_PROMOTION=legacy``
approximates CuPy 13's value-based casting of 0-d operands beside arrays.

The device (and, in the test suite, ``cupy`` itself) exists only while
``enabled`` is true: the suite's GPU-marked tests switch it on.
"""

from __future__ import annotations

import collections
import ctypes
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import types
import warnings
import zlib
from pathlib import Path

import numpy as _np
from numpy.lib.mixins import NDArrayOperatorsMixin

__version__ = "13.0.0+host-emulator"
EMULATED = True
# the suite's GPU gate switches the device on for GPU-marked tests; a script run under the emulator
# (benchmarks/device_check.sh --emulate) sets SUPERRES_EMULATOR_DEVICE=1
enabled = os.environ.get("SUPERRES_EMULATOR_DEVICE") == "1"
DEVICE_NAME = "CUDA host emulator (no GPU)"
SM_COUNT = 4  # few blocks for the grid-stride reductions: every block is run thread by thread

HERE = Path(__file__).resolve().parent
# NumPy 2's promotion (NEP 50, as CuPy 14), or with SUPERRES_EMULATOR_PROMOTION=legacy roughly CuPy 13's
_LEGACY_PROMOTION = os.environ.get("SUPERRES_EMULATOR_PROMOTION") == "legacy"
_HOST_OK = frozenset({"asarray", "array", "asanyarray", "asnumpy"})


# ---- device arrays -------------------------------------------------------------------------
class ndarray(NDArrayOperatorsMixin):
    """A device array: host memory that refuses implicit host conversion."""

    __slots__ = ("_a",)
    __array_priority__ = 100

    def __init__(self, shape, dtype=float, memptr=None, strides=None, order="C"):
        _require_device()
        if isinstance(shape, _np.ndarray):  # internal: wrap without copying
            _pool.account(shape)
            self._a = shape
            return
        if memptr is not None or strides is not None:
            raise NotImplementedError("the emulator's ndarray takes a shape and a dtype only")
        self._a = _np.empty(shape, dtype=dtype, order=order)
        _pool.account(self._a)

    # the host-side guard CuPy has
    def __array__(self, *args, **kwargs):
        raise TypeError("Implicit conversion to a NumPy array is not allowed. "
                        "Please use `.get()` to construct a NumPy array explicitly.")

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        where = f"cupy.{ufunc.__name__}" + ("" if method == "__call__" else f".{method}")
        out = kwargs.get("out")
        args = _unwrap(inputs, where)
        if _LEGACY_PROMOTION and any(getattr(a, "ndim", 0) for a in args):
            # CuPy 13's value-based casting: a 0-d operand beside arrays counts by its value, not its dtype
            args = tuple(a.item() if isinstance(a, (_np.ndarray, _np.generic)) and a.ndim == 0 else a for a in args)
        kw = {k: _unwrap(v, where) for k, v in kwargs.items()}
        with _np.errstate(all="ignore"):  # CuPy never warns about floating-point errors
            res = getattr(ufunc, method)(*args, **kw)
        written = _device_arrays(out) + (_device_arrays(inputs[:1]) if method == "at" else [])
        if out is not None:
            _record(where, _device_arrays((inputs, kwargs.get("where"))), [], written)
            return out[0] if isinstance(out, tuple) and len(out) == 1 else out
        res = _wrap(res)
        _record(where, _device_arrays(inputs), _device_arrays(res), written)
        return res

    def __array_function__(self, func, types_, args, kwargs):
        return _function(func, getattr(func, "__name__", "function"))(*args, **kwargs)

    # attributes and methods: those of the host array, results kept on the device
    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    size = property(lambda self: self._a.size)
    ndim = property(lambda self: self._a.ndim)
    nbytes = property(lambda self: self._a.nbytes)
    itemsize = property(lambda self: self._a.itemsize)
    strides = property(lambda self: self._a.strides)
    flags = property(lambda self: self._a.flags)
    T = property(lambda self: ndarray(self._a.T))
    real = property(lambda self: ndarray(self._a.real))
    imag = property(lambda self: ndarray(self._a.imag))

    @property
    def data(self):
        return types.SimpleNamespace(ptr=self._a.__array_interface__["data"][0])

    def __getattr__(self, name):
        if name.startswith("__"):  # no __array_interface__ & co.: NumPy must not read device memory
            raise AttributeError(name)
        attr = getattr(self._a, name)
        if not callable(attr):
            return _wrap(attr)

        def method(*args, **kwargs):
            where = f"cupy.ndarray.{name}"
            with _np.errstate(all="ignore"):
                res = _wrap(attr(*_unwrap(args, where), **_unwrap(kwargs, where)))
            written = ([self] if name in _MUTATING else []) + _device_arrays(kwargs.get("out"))
            _record(where, [self] + _device_arrays((args, kwargs)), _device_arrays(res), written)
            if name in _TO_HOST:
                _host_sync(_current(), f"read back ({where})")
            return res

        return method

    def __getitem__(self, key):
        res = _wrap(self._a[_unwrap(key, "indexing", host_ok=True)])
        _record("indexing", [self] + _device_arrays(key), _device_arrays(res))
        return res

    def __setitem__(self, key, value):
        self._a[_unwrap(key, "indexing", host_ok=True)] = _unwrap(value, "assignment", host_ok=True)
        _record("assignment", _device_arrays((key, value)), [], [self])

    def __len__(self):
        return len(self._a)

    def __iter__(self):
        for v in self._a:
            yield _wrap(v)

    def _to_host(self, where):  # a value the host reads: the stream's work so far is waited for
        _access(where, [self], [])
        _host_sync(_current(), f"read back ({where})")
        return self._a

    def __float__(self):
        return float(self._to_host("float()"))

    def __int__(self):
        return int(self._to_host("int()"))

    def __index__(self):
        return self._to_host("index").__index__()

    def __bool__(self):
        return bool(self._to_host("bool()"))

    def __complex__(self):
        return complex(self._to_host("complex()"))

    def __repr__(self):
        return repr(self._to_host("repr()")).replace("array(", "device_array(", 1)

    def __str__(self):
        return str(self._to_host("str()"))

    def __format__(self, spec):
        return format(self._to_host("format()").item() if self._a.ndim == 0 else self._a, spec)

    def __copy__(self):
        return ndarray(self._a.copy())

    def __deepcopy__(self, memo):
        return ndarray(self._a.copy())

    def __reduce__(self):
        raise TypeError("device arrays are not pickled (CuPy would copy them to the host)")

    def get(self, stream=None, order="C", out=None, blocking=True):
        if out is not None:  # as CuPy: the host array must match exactly
            if not isinstance(out, _np.ndarray):
                raise TypeError(f"get: out must be a numpy.ndarray, not {type(out).__name__}")
            if out.dtype != self._a.dtype or out.shape != self._a.shape or not out.flags.c_contiguous:
                raise ValueError(f"get: out is {out.dtype}{out.shape} (C-contiguous: {out.flags.c_contiguous}), "
                                 f"not a contiguous {self._a.dtype}{self._a.shape}")
        _access("cupy.ndarray.get", [self], [], stream)
        _host_sync(stream or _current(), "read back (get/asnumpy)")
        if out is not None:
            _np.copyto(out, self._a)
            return out
        return self._a.copy(order=order)

    def set(self, arr, stream=None):
        if not isinstance(arr, _np.ndarray):  # as CuPy
            raise TypeError(f"set: only numpy.ndarray can be set, not {type(arr).__name__}")
        if not self._a.flags.c_contiguous:
            raise RuntimeError("set: cannot set to a non-contiguous array")
        if arr.dtype != self._a.dtype:
            raise TypeError(f"set: a {arr.dtype} array cannot be set to a {self._a.dtype} array")
        if arr.shape != self._a.shape:
            raise ValueError(f"set: shape mismatch, {arr.shape} into {self._a.shape}")
        stream = stream or _current()
        _access("cupy.ndarray.set", [], [self], stream)
        _np.copyto(self._a, arr)
        _pinned_copy(arr, stream)

    def astype(self, dtype, order="K", casting=None, subok=None, copy=True):
        res = ndarray(self._a.astype(dtype, order=order, copy=copy))
        _record("cupy.ndarray.astype", [self], [res])
        return res

    def toDlpack(self):  # pragma: no cover - not used
        raise NotImplementedError


def _wrap(x):
    if isinstance(x, _np.ndarray):
        return ndarray(x)
    if isinstance(x, _np.generic):  # CuPy's reductions and element reads give 0-d device arrays
        return ndarray(_np.asarray(x))
    if isinstance(x, tuple):
        return tuple(_wrap(v) for v in x)
    if isinstance(x, list):
        return [_wrap(v) for v in x]
    if isinstance(x, _np.random.Generator):  # cupy.random.default_rng(): draws are device arrays
        return _Proxy(x)
    return x


class _Proxy:
    """An object whose methods give device arrays (a random generator)."""

    def __init__(self, obj):
        self._obj = obj

    def __getattr__(self, name):
        attr = getattr(self._obj, name)
        return _function(attr, f"{type(self._obj).__name__}.{name}") if callable(attr) else attr


def _unwrap(x, where: str, host_ok: bool = False):
    if isinstance(x, ndarray):
        return x._a
    if isinstance(x, _np.ndarray):
        if host_ok:
            return x
        raise TypeError(f"{where}: Unsupported type {type(x)} (a host array where CuPy needs a device array)")
    if isinstance(x, tuple):
        return tuple(_unwrap(v, where, host_ok) for v in x)
    if isinstance(x, list):
        return [_unwrap(v, where, host_ok) for v in x]
    if isinstance(x, dict):
        return {k: _unwrap(v, where, host_ok) for k, v in x.items()}
    return x


def _function(func, name: str):
    host_ok = name in _HOST_OK

    def f(*args, **kwargs):
        where = f"cupy.{name}"
        with _np.errstate(all="ignore"), warnings.catch_warnings():  # CuPy warns of neither
            warnings.simplefilter("ignore", RuntimeWarning)  # ("All-NaN slice" from nanmedian, ...)
            res = _wrap(func(*_unwrap(args, where, host_ok), **_unwrap(kwargs, where, host_ok)))
        if name not in _ALLOCATE:  # an allocation queues no work: its memory has none pending (a synchronize
            # came first where it was in use)
            written = _device_arrays(kwargs.get("out")) + (_device_arrays(args[:1]) if name in _WRITES_FIRST else [])
            _record(where, _device_arrays((args, kwargs)), _device_arrays(res), written)
        return res

    f.__name__ = name
    f.__doc__ = f"{name} (NumPy's, on the emulator's device arrays)"
    return f


class _Namespace(types.ModuleType):
    """A module whose functions are NumPy's (or a NumPy submodule's) on device arrays."""

    def __init__(self, name, source, prefix=""):
        super().__init__(name)
        self._source = source
        self._prefix = prefix

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        obj = getattr(self._source, name)
        if isinstance(obj, type) or not callable(obj):
            return obj
        f = _function(obj, self._prefix + name)
        setattr(self, name, f)
        return f


def asarray(a, dtype=None, order=None, *, blocking=False):
    if isinstance(a, ndarray):
        return a if dtype is None or a.dtype == dtype else a.astype(dtype)
    res = ndarray(_np.array(_unwrap(a, "cupy.asarray", True), dtype=dtype, order=order or "K", copy=True))
    _access("cupy.asarray", _device_arrays(a), [res])
    return res


def array(a, dtype=None, copy=True, order="K", ndmin=0, *, blocking=False):
    res = ndarray(_np.array(_unwrap(a, "cupy.array", True), dtype=dtype, copy=True, order=order, ndmin=ndmin))
    _access("cupy.array", _device_arrays(a), [res])
    return res


def asnumpy(a, stream=None, order="C", out=None, blocking=True):
    if isinstance(a, ndarray):
        return a.get(stream=stream, out=out)
    return _np.asarray(a, order=order)


def get_array_module(*args):
    return sys.modules[__name__] if any(isinstance(a, ndarray) for a in args) else _np


fft = _Namespace(__name__ + ".fft", _np.fft, "fft.")
random = _Namespace(__name__ + ".random", _np.random, "random.")


def __getattr__(name):  # the rest of NumPy's namespace, on device arrays
    if name.startswith("__"):
        raise AttributeError(name)
    obj = getattr(_np, name)
    if isinstance(obj, (type, _np.dtype)) or not callable(obj):
        return obj
    f = _function(obj, name)
    globals()[name] = f
    return f


# ---- memory pools, streams, events, devices --------------------------------------------------
class OutOfMemoryError(MemoryError):
    """CuPy's error when the pool cannot allocate (raised under a limit set with ``set_limit``)."""


OutOfMemoryError.__module__ = "cupy.cuda.memory"


class _MemoryPool:
    """Counts the device buffers alive (their roots) and refuses one past ``set_limit(size=...)``, as
    CuPy's pool does when the device is full."""

    def __init__(self):
        self.limit = None
        self.live: dict = {}  # id(root) -> bytes

    def account(self, a: _np.ndarray) -> None:
        if self.limit is None:
            return
        root = _root(a)
        key = id(root)
        if key in self.live:
            return
        used = sum(self.live.values())
        if used + root.nbytes > self.limit:
            raise OutOfMemoryError(f"Out of memory allocating {root.nbytes:,} bytes (allocated so far: {used:,} "
                                   f"bytes, limit set to: {self.limit:,} bytes).")
        import weakref

        self.live[key] = root.nbytes
        weakref.finalize(root, self.live.pop, key, None)

    def used_bytes(self):
        return sum(self.live.values())

    def total_bytes(self):
        return sum(self.live.values())

    def free_all_blocks(self):
        pass

    def set_limit(self, size=None, fraction=None):
        if fraction is not None:
            size = int(fraction * _properties()["totalGlobalMem"])
        self.limit = None if not size else int(size)
        if self.limit is None:
            self.live.clear()


_pool, _pinned_pool = _MemoryPool(), _MemoryPool()


def get_default_memory_pool():
    return _pool


def get_default_pinned_memory_pool():
    return _pinned_pool


class _CUDARuntimeError(RuntimeError):
    pass


class _CUDADriverError(RuntimeError):
    pass


class _CompileException(Exception):
    pass


def _require_device():
    if not enabled:
        raise _CUDARuntimeError("cudaErrorNoDevice: no CUDA-capable device is detected")


# CuPy's current stream is the calling thread's (work from a thread that chose none goes to the legacy
# default stream, which the stream-order check below tells apart from a non-blocking one)
_thread = threading.local()


# ---- the order of device work ------------------------------------------------------------------
# Work runs when it is queued, but every access to a device buffer is recorded with the stream that
# queued it and its place there; an access on one stream that another stream's access conflicts with
# (either writes) must be ordered after it: by an event the stream waited for (transitively), or by
# the host having waited for it (a synchronize, a done event, a value read back).  Otherwise the
# launch raises, naming both: on a device the two could run in either order.
_MUTATING = frozenset({"fill", "sort", "put", "partition", "resize", "itemset"})
_TO_HOST = frozenset({"item", "tolist", "tobytes"})
_ALLOCATE = frozenset({"empty", "empty_like"})
_WRITES_FIRST = frozenset({"copyto", "put", "place", "putmask", "fill_diagonal", "put_along_axis"})
_host_known: dict = {}  # stream id -> the last op the host knows complete
# what a run asked of the device: kernel launches by name, and the host's waits for it by kind
stats = {"launches": collections.Counter(), "host_waits": collections.Counter()}
_touches: dict = {}  # id(root buffer) -> {stream id: [last read, last write, stream name]}
_stream_ids = iter(range(1, 1 << 62))


def _merge(into: dict, known: dict) -> None:
    for k, v in known.items():
        if into.get(k, 0) < v:
            into[k] = v


def _device_arrays(x) -> list:
    if isinstance(x, ndarray):
        return [x]
    if isinstance(x, (tuple, list)):
        return [a for v in x for a in _device_arrays(v)]
    if isinstance(x, dict):
        return [a for v in x.values() for a in _device_arrays(v)]
    return []


def _root(a: _np.ndarray) -> _np.ndarray:
    while isinstance(a.base, _np.ndarray):
        a = a.base
    return a


def _ordered(stream, sid: int, seq: int) -> bool:
    if sid == stream.sid or stream.known.get(sid, 0) >= seq or _host_known.get(sid, 0) >= seq:
        return True
    other = _streams.get(sid)  # the legacy default stream and a blocking stream order each other
    return other is not None and (stream.legacy and not other.non_blocking or other.legacy and not stream.non_blocking)


def _access(where: str, reads, writes, stream=None) -> None:
    if not enabled:
        return
    stream = stream or _current()
    stream.seq += 1
    seq = stream.seq
    for arrays, write in ((reads, False), (writes, True)):
        for arr in arrays:
            root = _root(arr._a)
            key = id(root)
            t = _touches.get(key)
            if t is None:
                t = _touches[key] = {}
                import weakref

                weakref.finalize(root, _touches.pop, key, None)
            for sid, (r, w, name, r_at, w_at) in t.items():
                if sid == stream.sid:
                    continue
                if w and not _ordered(stream, sid, w):
                    raise RuntimeError(f"stream order: {where} on {stream.name} {'writes' if write else 'reads'} a "
                                       f"{root.dtype}{root.shape} device buffer that {w_at} on {name} wrote, with no "
                                       "event or host wait ordering the two")
                if write and r and not _ordered(stream, sid, r):
                    raise RuntimeError(f"stream order: {where} on {stream.name} writes a {root.dtype}{root.shape} "
                                       f"device buffer that {r_at} on {name} reads, with no event or host wait "
                                       "ordering the two")
            entry = t.setdefault(stream.sid, [0, 0, stream.name, "", ""])
            entry[1 if write else 0] = seq
            entry[4 if write else 3] = where


def _record(where: str, inputs, results, written=(), stream=None) -> None:
    """One operation: it reads its device inputs and writes its results that are new buffers, and
    ``written``; an operation whose results are only views of its inputs queues no work."""
    in_roots = {id(_root(a._a)) for a in inputs}
    fresh = [r for r in results if id(_root(r._a)) not in in_roots]
    if fresh or written:
        _access(where, inputs, fresh + list(written), stream)


def _learn(known: dict) -> None:
    """The host now knows the work in ``known`` complete: the host buffers of copies that finished
    must still hold what they held when the copies were queued."""
    _merge(_host_known, known)
    keep, changed = [], []
    for sid, seq, arr, crc, name in _pending_copies:
        if _host_known.get(sid, 0) < seq:
            keep.append((sid, seq, arr, crc, name))
        elif zlib.crc32(arr) != crc:
            changed.append((arr, name))
    _pending_copies[:] = keep
    if changed:
        arr, name = changed[0]
        raise RuntimeError(f"stream order: the host changed a pinned {arr.dtype}{arr.shape} buffer while its copy "
                           f"to the device on {name} was in flight (its event not yet done)")


_pending_copies: list = []  # host-to-device copies from pinned memory, asynchronous for the host


class _Pinned(bytearray):
    """Pinned host memory: copies from it run asynchronously, so the host must not change it until the
    copy is known done."""


def _pinned_copy(arr: _np.ndarray, stream) -> None:
    base = arr
    while isinstance(base, _np.ndarray):
        base = base.base
    if isinstance(base, (_Pinned, memoryview)) and (not isinstance(base, memoryview) or isinstance(base.obj, _Pinned)):
        _pending_copies.append((stream.sid, stream.seq, arr, zlib.crc32(arr), stream.name))


def _host_sync(stream, wait: str | None = None) -> None:
    """The host knows ``stream``'s work so far complete; ``wait``: it waited for it (counted in ``stats``)."""
    _learn({**stream.known, stream.sid: stream.seq})
    if wait is not None and enabled:
        stats["host_waits"][wait] += 1


class Event:
    def __init__(self, block=False, disable_timing=False, interprocess=False):
        self.t = None
        self.known = {}
        self._polled = False

    def record(self, stream=None):
        stream = stream or _current()
        self.t = time.perf_counter()
        self.known = {**stream.known, stream.sid: stream.seq}
        self._polled = False
        if stream.legacy:  # the legacy default stream's work follows every blocking stream's
            for st in list(_streams.values()):
                if not st.non_blocking and not st.legacy:
                    self.known[st.sid] = max(self.known.get(st.sid, 0), st.seq)

    def synchronize(self):
        _learn(self.known)
        if enabled:
            stats["host_waits"]["Event.synchronize"] += 1

    @property
    def done(self):
        """Not yet, the first time it is asked of work the host does not know complete (the device is
        asynchronous); then done, and a caller that saw it done may rely on that."""
        if all(_host_known.get(k, 0) >= v for k, v in self.known.items()):
            return True
        if not self._polled:
            self._polled = True
            return False
        _learn(self.known)
        return True


class Stream:
    def __init__(self, null=False, non_blocking=False, ptds=False):
        if not null:
            _require_device()
        self.sid = next(_stream_ids)
        self.seq = 0
        self.known = {}
        self.legacy = bool(null)
        self.non_blocking = bool(non_blocking)
        self.name = "the default stream" if null else f"stream {self.sid}{' (non-blocking)' if non_blocking else ''}"
        _streams[self.sid] = self

    def use(self):
        _thread.stream = self
        return self

    def __enter__(self):  # the thread's own stack of streams
        if not hasattr(_thread, "outer"):
            _thread.outer = []
        _thread.outer.append(getattr(_thread, "stream", None))
        return self.use()

    def __exit__(self, *exc):
        _thread.stream = _thread.outer.pop()

    def synchronize(self):
        _host_sync(self, "Stream.synchronize")

    def record(self, event=None):
        event = event or Event()
        event.record(self)
        return event

    def wait_event(self, event):
        _merge(self.known, event.known)

    @property
    def done(self):
        return self.record().done


_streams: dict = {}
_NULL = Stream(null=True)


def _current():
    return getattr(_thread, "stream", None) or _NULL


class Device:
    def __init__(self, device=None):
        self.id = 0 if device is None else int(device)
        if self.id != 0:
            raise _CUDARuntimeError(f"cudaErrorInvalidDevice: device {self.id} (the emulator has one)")

    def use(self):
        _require_device()

    def synchronize(self):
        for st in list(_streams.values()):
            _host_sync(st)
        if enabled:
            stats["host_waits"]["Device.synchronize"] += 1

    def __enter__(self):
        _require_device()
        return self

    def __exit__(self, *exc):
        pass

    @property
    def compute_capability(self):
        return "90"


def _properties(device=0):
    _require_device()
    return {"name": DEVICE_NAME.encode(), "multiProcessorCount": SM_COUNT, "totalGlobalMem": 16 << 30,
            "major": 9, "minor": 0}


def _device_count():
    _require_device()
    return 1


def _mem_info():
    _require_device()
    return (15 << 30, 16 << 30)


def _alloc_pinned_memory(nbytes):
    return _Pinned(int(nbytes))


def _elapsed_ms(a, b):
    return (b.t - a.t) * 1000.0


_runtime = types.SimpleNamespace(
    getDeviceProperties=_properties, getDeviceCount=_device_count, memGetInfo=_mem_info,
    runtimeGetVersion=lambda: 13000, driverGetVersion=lambda: 13000, CUDARuntimeError=_CUDARuntimeError,
)
_cuda = types.SimpleNamespace(
    is_available=lambda: enabled, runtime=_runtime, Device=Device, Stream=Stream, Event=Event,
    get_elapsed_time=_elapsed_ms, alloc_pinned_memory=_alloc_pinned_memory,
    compiler=types.SimpleNamespace(CompileException=_CompileException),
    driver=types.SimpleNamespace(CUDADriverError=_CUDADriverError),
    memory=types.SimpleNamespace(OutOfMemoryError=OutOfMemoryError),
    get_current_stream=_current,
)
cuda = _cuda


# ---- kernels -----------------------------------------------------------------------------------
_ORDER_FIRST = 16  # launches of each kernel run both ways (SUPERRES_EMULATOR_ORDER=0: none)
_LAUNCH_LOCK = threading.Lock()  # one launch at a time, as on one stream (and __shared__ is per module)
_KIND = {0: "pointer", 1: "signed integer", 2: "unsigned integer", 3: "floating point", 4: "bool", 5: "other"}
_MAXP = 64


def _compiler() -> str | None:
    return shutil.which("g++") or shutil.which("c++") or shutil.which("clang++")


def _fma_flags() -> list[str]:
    """FMA contraction on, as NVRTC compiles by default (where the CPU has FMA)."""
    if os.environ.get("SUPERRES_EMULATOR_FMA", "1") == "0":
        return ["-ffp-contract=off"]
    try:
        has_fma = " fma " in Path("/proc/cpuinfo").read_text()
    except OSError:
        has_fma = False
    return ["-ffp-contract=fast"] + (["-mfma"] if has_fma else [])


def _cache_dir() -> Path:
    d = Path(os.environ.get("SUPERRES_EMULATOR_CACHE", Path(tempfile.gettempdir()) / f"superres-cuda-emulator-{os.getuid()}"))
    d.mkdir(parents=True, exist_ok=True)
    return d


class RawModule:
    """A kernel family built for the host emulator; ``name_expressions`` are its kernels."""

    def __init__(self, code: str = None, path=None, options=(), backend="nvrtc", translate_cucomplex=False,
                 enable_cooperative_groups=False, name_expressions=None, jitify=False):
        if code is None:
            raise NotImplementedError("the emulator compiles from code only")
        self.code = code
        self.options = tuple(options)
        self.names = tuple(name_expressions or ())
        self._lib = None
        self._kernels: dict[str, RawKernel] = {}

    def _source(self) -> str:
        out = ['#include "_runtime.h"', self.code, 'extern "C" {']
        for i, name in enumerate(self.names):
            out.append(f"int emu_launch_{i}(const unsigned* g, const unsigned* b, void** p, int n, const uintptr_t* gd, "
                       f"int ng, char* err, int len) {{ return emu::launch(&{name}, g, b, p, n, gd, ng, err, len); }}")
            out.append(f"int emu_params_{i}(int* out, int max) {{ return emu::params(&{name}, out, max); }}")
        out.append("}")
        return "\n".join(out) + "\n"

    def compile(self, log_stream=None):
        if self._lib is not None:
            return
        cxx = _compiler()
        if cxx is None:
            raise _CompileException("the CUDA host emulator needs a C++ compiler (g++, c++ or clang++)")
        src = self._source()
        passed = [o for o in self.options if o.startswith(("-D", "-U", "-I", "-std="))]  # what the host compiler
        flags = ["-O2", "-std=c++17", "-fPIC", "-shared", "-D__CUDACC__", "-fno-strict-aliasing", *_fma_flags(),
                 f"-I{HERE}", *passed]  # means as NVRTC does
        runtime = (HERE / "_runtime.h").read_bytes()
        key = hashlib.sha256(src.encode() + runtime + " ".join([cxx, *flags]).encode()).hexdigest()[:24]
        cache = _cache_dir()
        lib = cache / f"family-{key}.so"
        if not lib.exists():
            cpp = cache / f"family-{key}.{os.getpid()}.cpp"
            cpp.write_text(src)
            tmp = cache / f"family-{key}.{os.getpid()}.so"
            res = subprocess.run([cxx, *flags, str(cpp), "-o", str(tmp)], capture_output=True, text=True)
            cpp.unlink(missing_ok=True)
            if res.returncode != 0:
                tmp.unlink(missing_ok=True)
                raise _CompileException(res.stderr[-4000:])
            os.replace(tmp, lib)
        self._lib = ctypes.CDLL(str(lib))
        self._lib.emu_set_ascending.argtypes = [ctypes.c_int]
        self._lib.emu_synced.restype = ctypes.c_int
        for i, name in enumerate(self.names):
            launch = getattr(self._lib, f"emu_launch_{i}")
            launch.restype = ctypes.c_int
            launch.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p,
                               ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
            info = getattr(self._lib, f"emu_params_{i}")
            info.restype = ctypes.c_int
            buf = (ctypes.c_int * (5 * _MAXP))()
            n = info(buf, _MAXP)
            params = [tuple(buf[5 * k : 5 * k + 5]) for k in range(n)]
            self._kernels[name] = RawKernel(name, launch, params, self._lib)

    def get_function(self, name: str):
        self.compile()
        if name not in self._kernels:
            raise _CUDADriverError(f"CUDA_ERROR_NOT_FOUND: {name!r} is not among the module's name expressions")
        return self._kernels[name]


def _dtype_kind(dt: _np.dtype) -> tuple[int, int]:
    """(kind, element size) as the kernel's pointee sees the array: complex as its float components."""
    if dt.kind == "c":
        return 3, dt.itemsize // 2
    return {"f": 3, "i": 1, "u": 2, "b": 4}.get(dt.kind, 5), dt.itemsize


class RawKernel:
    """One kernel of a :class:`RawModule`: ``kernel(grid, block, args)`` as CuPy's."""

    def __init__(self, name, launch, params, module):
        self.name = name
        self._launch = launch
        self._module = module
        self.params = params  # (size, kind, pointee size, pointee kind, pointee const) per parameter
        self.syncs = None  # whether it has barriers or shuffles (known after its first launch)
        self.order_checked = 0

    def _marshal(self, k: int, arg, param):
        size, kind, psize, pkind, _ = param
        what = f"{self.name}: argument {k}"
        if kind == 0:
            if arg is None:
                return ctypes.c_void_p(None)
            if not isinstance(arg, ndarray):
                raise TypeError(f"{what} is a pointer parameter; got {type(arg).__name__} (a device array is needed)")
            a = arg._a
            akind, asize = _dtype_kind(a.dtype)
            if akind == 4 and pkind in (1, 2) and psize == 1:  # a bool array is read as bytes
                akind = pkind
            if (akind, asize) != (pkind, psize):
                raise TypeError(f"{what}: a {a.dtype} array for a pointer to {psize}-byte {_KIND[pkind]} values")
            if not a.flags.c_contiguous:
                raise ValueError(f"{what}: a non-contiguous {a.dtype}{a.shape} array (the kernel reads it as contiguous)")
            return ctypes.c_void_p(a.__array_interface__["data"][0])
        if isinstance(arg, ndarray):
            raise TypeError(f"{what} is a {size}-byte {_KIND[kind]} parameter; got a device array")
        if isinstance(arg, _np.bool_):
            akind, value = 4, arg
        elif isinstance(arg, int):  # bool included, as in CuPy
            akind, value = 1, _np.int64(arg)  # CuPy: Python int -> long long
        elif isinstance(arg, float):
            akind, value = 3, _np.float64(arg)  # Python float -> double
        elif isinstance(arg, _np.generic):
            akind, value = _dtype_kind(arg.dtype)[0], arg
        else:
            raise TypeError(f"{what}: unsupported type {type(arg).__name__}")
        vsize = value.dtype.itemsize
        ints = (1, 2)
        if kind in ints and akind in ints:
            if vsize < size:
                raise TypeError(f"{what}: a {vsize}-byte {value.dtype} for a {size}-byte integer parameter "
                                "(the driver would read past it)")
            if vsize > size:  # the driver reads the low bytes: right only when the value fits
                lo, hi = (-(1 << (8 * size - 1)), (1 << (8 * size - 1)) - 1) if kind == 1 else (0, (1 << 8 * size) - 1)
                if not lo <= int(value) <= hi:
                    raise OverflowError(f"{what}: {int(value)} does not fit the {size}-byte parameter")
        elif kind != akind or vsize != size:
            raise TypeError(f"{what}: a {value.dtype} for a {size}-byte {_KIND[kind]} parameter")
        buf = ctypes.create_string_buffer(_np.asarray(value).tobytes(), max(vsize, 8))
        return buf

    def __call__(self, grid, block, args, shared_mem=0, stream=None, enable_cooperative_groups=False):
        _require_device()
        if not isinstance(args, (tuple, list)):
            raise TypeError(f"{self.name}: kernel arguments must be a tuple, not {type(args).__name__}")
        args = tuple(args)
        if len(args) != len(self.params):
            raise TypeError(f"{self.name}: the kernel takes {len(self.params)} arguments, {len(args)} given")
        if shared_mem:
            raise NotImplementedError(f"{self.name}: dynamic shared memory is not emulated")
        stats["launches"][self.name] += 1
        dims = []
        for d in (grid, block):
            t = (d,) if isinstance(d, (int, _np.integer)) else tuple(d)
            if not 1 <= len(t) <= 3 or any(not isinstance(v, (int, _np.integer)) for v in t):
                raise TypeError(f"{self.name}: grid and block are 1 to 3 integers, not {d!r}")
            dims.append((ctypes.c_uint * 3)(*(int(v) for v in t), *([1] * (3 - len(t)))))
        if any(int(v) < 0 or int(v) >= 1 << 31 for v in dims[0]):
            raise ValueError(f"{self.name}: grid {tuple(dims[0])} out of range")
        keep = [self._marshal(k, a, p) for k, (a, p) in enumerate(zip(args, self.params))]
        ptr_args = [(a, p[4]) for a, p in zip(args, self.params) if p[1] == 0 and a is not None]
        _check_restrict(self.name, args, self.params)
        _access(self.name, [a for a, const in ptr_args if const], [a for a, const in ptr_args if not const], stream)
        guarded = []
        try:
            _guard_arrays(args, self.params, keep, guarded)
            ptrs = (ctypes.c_void_p * max(1, len(keep)))(*[
                ctypes.cast(ctypes.pointer(b), ctypes.c_void_p) if isinstance(b, ctypes.c_void_p)
                else ctypes.cast(b, ctypes.c_void_p) for b in keep])
            pages = (ctypes.c_size_t * max(1, 3 * len(guarded)))(*[v for g in guarded for v in g.triple])
            err = ctypes.create_string_buffer(512)
            written = [(k, b) for k, b in enumerate(keep) if self.params[k][1] == 0 and not self.params[k][4]
                       and isinstance(args[k], ndarray) and args[k]._a.nbytes]
            # each kernel's first launches run the other way round too (a race is in the code, not the data:
            # the suite's kernel tests launch every kernel first, on small odd shapes)
            order_check = (self.syncs is not False and os.environ.get("SUPERRES_EMULATOR_ORDER", "1") != "0"
                           and self.order_checked < _ORDER_FIRST)
            self.order_checked += order_check
            before = [ctypes.string_at(b.value, args[k]._a.nbytes) for k, b in written] if order_check else []
            with _LAUNCH_LOCK:
                self._module.emu_set_ascending(0)
                rc = self._launch(dims[0], dims[1], ptrs, len(keep), pages, len(guarded), err, len(err))
                syncs = bool(self._module.emu_synced())
                if not rc and order_check and syncs:  # again with the threads the other way round
                    first = [ctypes.string_at(b.value, args[k]._a.nbytes) for k, b in written]
                    for (k, b), data in zip(written, before):
                        ctypes.memmove(b.value, data, len(data))
                    self._module.emu_set_ascending(1)
                    rc = self._launch(dims[0], dims[1], ptrs, len(keep), pages, len(guarded), err, len(err))
                    self._module.emu_set_ascending(0)
                    if not rc:
                        for (k, b), data in zip(written, first):
                            if ctypes.string_at(b.value, len(data)) != data:
                                raise _CUDADriverError(
                                    f"emulated launch of {self.name}: argument {k} differs when a block's threads "
                                    "run in the other order (a race on shared memory, or a barrier missing)")
            if rc:
                raise _CUDADriverError(f"emulated launch of {self.name} failed: {err.value.decode()}")
            self.syncs = syncs
            for g in guarded:
                g.check()
                g.copy_back()
        finally:
            for g in guarded:
                g.free()


# ---- guard pages: each array argument ends at an inaccessible page ---------------------------------
_libc = ctypes.CDLL(None, use_errno=True)
_libc.mmap.restype = ctypes.c_void_p
_libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
_libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
_libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
_PAGE = os.sysconf("SC_PAGESIZE")
_PROT_NONE, _PROT_RW, _MAP_PRIVATE_ANON = 0, 3, 0x02 | 0x20


class _Guarded:
    """A copy of one array argument in fresh pages, its last byte just before a PROT_NONE page; the
    bytes in front of it hold the poison (all bits set: NaN, -1).  Written arguments are copied back."""

    def __init__(self, index: int, arr: _np.ndarray, written: bool):
        self.arr, self.written = arr, written
        n = arr.nbytes
        data_pages = -(-(n + _PAGE) // _PAGE)  # a page of poison in front, at least
        self.size = (data_pages + 1) * _PAGE
        base = _libc.mmap(None, self.size, _PROT_RW, _MAP_PRIVATE_ANON, -1, 0)
        if base in (None, ctypes.c_void_p(-1).value):
            raise MemoryError("the emulator could not map a guarded copy of an argument")
        self.base = base
        guard = base + data_pages * _PAGE
        ctypes.memset(base, 0xFF, guard - base)
        _libc.mprotect(guard, _PAGE, _PROT_NONE)
        self.start = guard - n
        ctypes.memmove(self.start, arr.__array_interface__["data"][0], n)
        self.triple = (guard, guard + _PAGE, index)

    def check(self):
        front = ctypes.string_at(self.base, self.start - self.base)
        if front.count(0xFF) != len(front):
            raise _CUDADriverError(f"emulated launch: argument {self.triple[2]} was written before its start "
                                   "(out of bounds)")

    def copy_back(self):
        if self.written:
            ctypes.memmove(self.arr.__array_interface__["data"][0], self.start, self.arr.nbytes)

    def free(self):
        if self.base is not None:
            _libc.munmap(self.base, self.size)
            self.base = None


def _guard_arrays(args, params, keep, out: list) -> None:
    """Guarded copies of the array arguments into ``out`` (``keep`` gets their addresses; arguments
    that overlap are all read-only here, see _check_restrict); SUPERRES_EMULATOR_GUARD=0 turns this off."""
    if os.environ.get("SUPERRES_EMULATOR_GUARD", "1") == "0":
        return
    for k, (a, p) in enumerate(zip(args, params)):
        if p[1] == 0 and isinstance(a, ndarray) and a._a.nbytes:
            g = _Guarded(k, a._a, not p[4])
            out.append(g)
            keep[k] = ctypes.c_void_p(g.start)


def _check_restrict(name: str, args, params) -> None:
    """Two array arguments whose memory overlaps, one of them written: the kernels declare every pointer
    ``__restrict__``, so the compiler may keep either's values in registers (or read a const one through
    the non-coherent cache) and miss the other's writes."""
    spans = []
    for k, (a, p) in enumerate(zip(args, params)):
        if p[1] == 0 and isinstance(a, ndarray) and a._a.nbytes:
            lo = a._a.__array_interface__["data"][0]
            spans.append((lo, lo + a._a.nbytes, k, not p[4]))
    for i, (lo, hi, k, w) in enumerate(spans):
        for lo2, hi2, k2, w2 in spans[i + 1 :]:
            if lo < hi2 and lo2 < hi and (w or w2):
                raise ValueError(f"{name}: arguments {k} and {k2} overlap in memory and one of them is written "
                                 "(every pointer parameter of the kernels is __restrict__)")
