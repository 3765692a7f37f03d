"""Compute backends: ``get_backend("auto" | "numpy" | "cupy")``.

``auto`` picks CuPy only when ``import cupy`` works *and* a CUDA device is
usable (importing CuPy succeeds on machines without a driver); otherwise the
NumPy backend.  Asking for ``cupy`` explicitly when it cannot be used raises
:class:`~superres_gpu.errors.BackendUnavailableError` saying why.
"""

from __future__ import annotations

from ..errors import BackendUnavailableError, ConfigError

BACKENDS = ("auto", "numpy", "cupy")


def cupy_unavailable_reason() -> str | None:
    """None when CuPy and a CUDA device are usable, else why not (one line)."""
    try:
        import cupy
    except Exception as e:  # ImportError, or a broken CUDA install
        return f"CuPy is not installed or fails to import ({type(e).__name__}: {e}); install the 'gpu' extra"
    try:
        if not cupy.cuda.is_available():
            return "CuPy found no usable CUDA device (no GPU, or no driver)"
        cupy.cuda.runtime.getDeviceCount()
    except Exception as e:
        return f"CUDA is not usable ({type(e).__name__}: {e})"
    return None


def get_backend(name: str = "auto"):
    """Return a backend instance by name."""
    if name not in BACKENDS:
        raise ConfigError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    if name == "numpy":
        from .numpy_backend import NumpyBackend

        return NumpyBackend()
    reason = cupy_unavailable_reason()
    if reason is None:
        from .cupy_backend import CupyBackend

        return CupyBackend()
    if name == "cupy":
        raise BackendUnavailableError(f"the cupy backend is unavailable: {reason}")
    from .numpy_backend import NumpyBackend

    return NumpyBackend()


def is_device_oom(e: BaseException) -> bool:
    """True for a CUDA out-of-memory error from CuPy (or cuFFT), told without importing CuPy."""
    name = type(e).__name__
    mod = type(e).__module__ or ""
    return mod.startswith("cupy") and ("OutOfMemory" in name or "CUFFT_ALLOC_FAILED" in str(e))
