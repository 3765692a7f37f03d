"""superres_gpu: multi-frame superresolution of hand-held photo bursts.

Importing the package is cheap: it imports neither CuPy nor rich.  The main
entry points are :func:`superres_gpu.pipeline.run` and the ``superres`` CLI.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
