"""The options of a run, and the checks of their values (one place for the CLI
and the Python API).

Each ``check_*`` function raises :class:`~superres_gpu.errors.ConfigError`
with a message that names the option; the CLI turns that into a usage error.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from .align import DEFAULT_MODEL, MOTION_CHOICES, AlignConfig
from .cull import DEFAULT_THRESHOLD
from .errors import ConfigError

MIN_SCALE, MAX_SCALE = 1.0, 4.0
COMPRESSIONS = ("none", "deflate", "lzw", "zstd")
MERGES = ("robust", "mean")
TCA_CHOICES = ("off", "auto", "on")


def check_scale(value, option: str = "--scale") -> float:
    """The output scale as a float in [MIN_SCALE, MAX_SCALE]."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{option} must be a number (got {value!r})") from None
    if not (MIN_SCALE <= v <= MAX_SCALE):
        raise ConfigError(f"{option} must be between {MIN_SCALE:g} and {MAX_SCALE:g} (got {value})")
    return v


def check_fraction(value, option: str) -> float:
    """A number strictly between 0 and 1 (the cull threshold)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{option} must be a number (got {value!r})") from None
    if not (0.0 < v < 1.0):
        raise ConfigError(f"{option} must be between 0 and 1 (got {value})")
    return v


def check_choice(value, choices, what: str) -> str:
    if value not in choices:
        raise ConfigError(f"unknown {what} {value!r}; choose one of {', '.join(choices)}")
    return value


@dataclass
class PipelineConfig:
    """Everything ``superres run`` needs; the CLI maps its options onto this."""

    inputs: list
    output: str
    scale: float = 2.0
    backend: str = "auto"
    reference: str = "first"  # "first", "sharpest" or a path
    mask: str | None = None  # None: mask.png beside the reference if present; "none": no mask
    motion: str = DEFAULT_MODEL  # a model of geometry.MOTION_MODELS, or "auto": chosen per burst
    report: str | None = None
    overwrite: bool = False
    compression: str = "none"
    merge: str = "robust"  # "robust" (per-pixel rejection of what moved) or "mean"
    cull: bool = True  # leave out frames blurred relative to the rest of the burst
    cull_threshold: float = DEFAULT_THRESHOLD
    weights_png: str | None = None  # picture of where frames were left out
    tca: str = "off"  # lateral chromatic aberration: off, auto (correct when it matters), on
    refine: bool = False  # align again against a denoised template (a first merge), then merge
    sharpen: bool = True  # undo the blur of the merge's own resampling (Wiener, from the frame count)
    decode_threads: int = field(default_factory=lambda: max(2, min(16, os.cpu_count() or 2)))
    prefetch: int = 0  # frames decoded ahead of the one being processed; 0: decode_threads + 1
    align: AlignConfig = field(default_factory=AlignConfig)

    def validate(self) -> None:
        if isinstance(self.scale, bool):
            raise ConfigError(f"--scale must be a number (got {self.scale!r})")
        self.scale = check_scale(self.scale)
        check_choice(self.motion, MOTION_CHOICES, "motion model")
        check_choice(self.compression, COMPRESSIONS, "compression")
        if not self.inputs:
            raise ConfigError("no input given: name a folder of frames or the frame files")
        check_choice(self.merge, MERGES, "merge")
        check_choice(self.tca, TCA_CHOICES, "--tca value")
        check_fraction(self.cull_threshold, "the cull threshold")
        self.align.model = self.motion
        self.align.validate()
        if self.prefetch <= 0:
            self.prefetch = self.decode_threads + 1
