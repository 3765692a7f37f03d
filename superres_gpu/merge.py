"""Merge: one Lanczos resampling per frame, straight onto the output grid.

Each frame is read from its native pixels (uint8/uint16) at the positions
where the output grid's pixels fall in it (output -> reference by the scale,
reference -> frame by the inverse of the frame's transform), with the
Lanczos4 kernel, and added to a float32 running weighted mean: ``num`` holds
the sum of values, ``den`` the number of frames that cover each output pixel.
Output pixels a frame does not cover are simply not counted for it, so
borders are never darkened.  Warp and upscale are one lookup, not two.
"""

from __future__ import annotations

import numpy as np

from .geometry import output_size


class Accumulator:
    """Running weighted mean on the output grid, on the backend's device."""

    def __init__(self, B, width: int, height: int, channels: int, scale: float, max_value: int):
        self.B = B
        self.scale = float(scale)
        self.max_value = float(max_value)
        self.width, self.height = output_size(width, height, scale)
        self.channels = channels
        xp = B.xp
        self.num = xp.zeros((self.height, self.width, channels), dtype=xp.float32)
        self.den = xp.zeros((self.height, self.width), dtype=xp.float32)

    def add(self, frame, state) -> None:
        """Resample ``frame`` (on the device) with ``state``'s transform and add it."""
        self.B.resample_accumulate(frame, state, self.num, self.den, self.scale, self.max_value)

    def coverage(self) -> np.ndarray:
        """Host copy of the per-pixel frame count."""
        return self.B.asnumpy(self.den)

    def result(self) -> np.ndarray:
        """The merged image as uint16 on the host (0..65535 for the input's full range)."""
        out = self.B.normalize_u16(self.num, self.den, 65535.0 / self.max_value)
        return self.B.asnumpy(out)
