"""Resampling and accumulation: one Lanczos lookup per frame, straight onto the output grid.

Each frame is read from its native pixels (uint8/uint16) at the positions
where the output grid's pixels fall in it (output -> reference by the scale,
reference -> frame by the inverse of the frame's transform), with the
Lanczos4 kernel, and added to a float32 running weighted mean: ``num`` holds
the sum of values, ``den`` the weight (the number of frames, or their robust
weights) that covers each output pixel.  Output pixels a frame does not cover
are simply not counted for it, so borders are never darkened.  Warp and
upscale are one lookup, not two.
"""

from __future__ import annotations

import numpy as np

from .geometry import output_size


class Accumulator:
    """Running weighted mean on the output grid, on the backend's device."""

    def __init__(self, B, width: int, height: int, channels: int, scale: float, max_value: float):
        self.B = B
        self.scale = float(scale)
        self.max_value = float(max_value)
        self.width, self.height = output_size(width, height, scale)
        self.channels = channels
        self.channel_maps = None  # (channels, 9) float64: per-channel sampling maps (chromatic aberration)
        # the TCAEstimate of chroma-subsampled frames: each channel's low band moved by its map before the merge
        # reads the frame (tca.band_corrected: the backend's tca_band); channel_maps stays None then
        self.band = None
        xp = B.xp
        self.num = xp.zeros((self.height, self.width, channels), dtype=xp.float32)
        self.den = xp.zeros((self.height, self.width), dtype=xp.float32)

    def add(self, frame, state, weights=None, weight_level: int = 1, field=None, field_cell: float = 0.0) -> None:
        """Resample ``frame`` (on the device) with ``state``'s transform and add
        it, with per-pixel ``weights`` on the reference's level ``weight_level``
        (and a local displacement ``field``, nodes ``field_cell`` px apart:
        :mod:`superres_gpu.local`)."""
        self.B.resample_accumulate(self.source(frame), state, self.num, self.den, self.scale, self.max_value, weights,
                                   weight_level, self.channel_maps, field, field_cell)

    def correct_chromatic_aberration(self, estimate) -> None:
        """Correct every frame added from now on by a
        :class:`superres_gpu.tca.TCAEstimate`: whole channels read at their maps
        in the merge's one resampling step, or, on chroma-subsampled frames,
        each channel's low band moved first (:meth:`source`)."""
        chain = estimate.band_chain()
        if chain is None:
            self.channel_maps, self.band = estimate.channel_maps(), None
        else:
            self.channel_maps, self.band = None, estimate

    def source(self, frame):
        """What the merge reads of ``frame``: the frame itself, or with
        :attr:`band` set a float32 copy whose channels' low bands are moved."""
        if self.band is None or frame.ndim != 3:
            return frame
        from .tca import band_corrected

        return band_corrected(self.B, frame, self.band)

    def coverage(self) -> np.ndarray:
        """Host copy of the per-pixel frame count."""
        return self.B.asnumpy(self.den)

    def result(self) -> np.ndarray:
        """The merged mean as uint16 on the host (0..65535 for the input's full range)."""
        return self.B.asnumpy(self.B.normalize_u16(self.num, self.den, 65535.0 / self.max_value))

    def take_mean(self):
        """(mean, covered): the mean image in the input's value units, computed in
        place of the sums (no second full-size array; the accumulator is spent),
        and a float32 map that is 1 where any frame covered the pixel."""
        xp = self.B.xp
        mean, self.num = self.num, None
        xp.divide(mean, xp.maximum(self.den, 1e-12)[..., None], out=mean)
        return mean, (self.den > 0).astype(xp.float32)

    def encode(self, mean, covered) -> np.ndarray:
        """uint16 host image of a mean from :meth:`take_mean` (after restoration)."""
        return self.B.asnumpy(self.B.normalize_u16(mean, covered, 65535.0 / self.max_value))

    def to_float(self, mean, covered) -> np.ndarray:
        """float32 host image of a mean from :meth:`take_mean`, in units of the
        input's full scale (1.0 = white; not clipped, so restoration overshoot
        and highlights survive for further editing); uncovered pixels are 0."""
        xp = self.B.xp
        mean *= (covered * xp.float32(1.0 / self.max_value))[..., None]
        out = mean[..., 0] if self.channels == 1 else mean
        return self.B.asnumpy(xp.ascontiguousarray(out))
