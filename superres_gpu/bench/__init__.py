"""The benchmark suite behind ``superres bench`` (imported by that command only).

Synthetic bursts with known ground truth (:mod:`superres_gpu.synth`),
baselines measured in the same run (:mod:`.baselines`, :mod:`.aligners`),
quality and estimation metrics (:mod:`.quality`) and timing/memory helpers
(:mod:`.measure`), shared with the scripts in the checkout's ``benchmarks/``.
"""
