"""Benchmarks of superres_gpu: synthetic bursts with known ground truth
(from :mod:`superres_gpu.synth`), baselines measured in the same run, and
timing/memory measurement helpers.  See ``benchmarks/README.md``."""
