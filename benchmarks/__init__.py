"""Benchmark scripts of superres_gpu (run from a checkout: ``python -m benchmarks.NAME``).

They use the suite's helpers in :mod:`superres_gpu.bench`; their figures, with
machine, commit and date, are in ``benchmarks/RESULTS.md``.
"""
