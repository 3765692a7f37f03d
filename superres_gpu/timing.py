"""Seconds per stage, for the report.

Host work is timed with :meth:`Timings.stage`; device work is timed between
backend marks (CUDA events on the GPU) and added with :meth:`Timings.add`,
read back once after the burst, so timing never stalls the device.
"""

from __future__ import annotations

import time
from contextlib import contextmanager


class Timings:
    def __init__(self):
        self.seconds: dict[str, float] = {}
        self.start = time.perf_counter()

    def add(self, stage: str, seconds: float) -> None:
        self.seconds[stage] = self.seconds.get(stage, 0.0) + float(seconds)

    @contextmanager
    def stage(self, name: str):
        t = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - t)

    def total(self) -> float:
        return time.perf_counter() - self.start
