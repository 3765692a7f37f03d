"""superres_gpu: multi-frame superresolution of hand-held photo bursts.

Importing the package is cheap: it imports neither OpenCV, CuPy nor rich.
The main entry points are :func:`superres_gpu.superresolve` (the Python API,
loaded on first use) and the ``superres`` CLI.
"""

__version__ = "0.1.0"

__all__ = ["__version__", "superresolve", "SuperresResult"]


def __getattr__(name):
    # The API pulls in NumPy-heavy modules; load them only when asked for.
    if name in ("superresolve", "SuperresResult"):
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'superres_gpu' has no attribute {name!r}")
