"""The options of a run, and the checks of their values (one place for the CLI
and the Python API).

Each ``check_*`` function raises :class:`~superres_gpu.errors.ConfigError`
with a message that names the option; the CLI turns that into a usage error.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

import numpy as np

from .align import DEFAULT_MODEL, MOTION_CHOICES, AlignConfig
from .cull import DEFAULT_THRESHOLD
from .errors import ConfigError
from .kernelmerge import KERNEL_SHAPES
from .resources import DEFAULT_MAX_MEGAPIXELS
from .restore import DEFAULT_OPTICS_SIGMA

MIN_SCALE, MAX_SCALE = 1.0, 4.0
COMPRESSIONS = ("none", "deflate", "lzw", "zstd")
MERGES = ("robust", "mean", "kernel", "kernel-mean")
DEFAULT_MERGE = "kernel"  # chosen by benchmarks/bench_reconstruction.py across scenes and frame counts
KERNEL_MERGES = ("kernel", "kernel-mean")  # kernel regression (kernelmerge.py); "kernel" with the robust weights
TCA_CHOICES = ("off", "auto", "on")
DEFAULT_TCA = "auto"
LOCAL_CHOICES = ("off", "auto", "on")  # local refinement (superres_gpu/local.py)
DEFAULT_REFINE = True  # the alignment benchmark: 1.2-1.4x the Cramer-Rao bound instead of 2.3-2.7x, PSNR unchanged
DEFAULT_LOCAL = "auto"  # the benchmark: static bursts lose nothing, the estimate stops after three frames
# 16-bit TIFF, 16-bit PNG, 32-bit float TIFF (values in units of the input's full scale)
FORMATS = ("tiff16", "png16", "tiff32f")
_FORMAT_OF_SUFFIX = {".png": "png16", ".tif": "tiff16", ".tiff": "tiff16"}


def _number(value, option: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{option} must be a number (got {value!r})") from None


def check_scale(value, option: str = "--scale") -> float:
    """The output scale as a float in [MIN_SCALE, MAX_SCALE]."""
    v = _number(value, option)
    if not (MIN_SCALE <= v <= MAX_SCALE):
        raise ConfigError(f"{option} must be between {MIN_SCALE:g} and {MAX_SCALE:g} (got {value})")
    return v


def check_fraction(value, option: str) -> float:
    """A number strictly between 0 and 1 (the cull threshold)."""
    v = _number(value, option)
    if not (0.0 < v < 1.0):
        raise ConfigError(f"{option} must be between 0 and 1 (got {value})")
    return v


def check_megapixels(value, option: str = "--max-megapixels") -> float:
    """A positive frame-size limit in megapixels."""
    v = _number(value, option)
    if not (v > 0 and v < float("inf")):
        raise ConfigError(f"{option} must be a positive number (got {value})")
    return v


def output_format(output, fmt: str | None) -> str:
    """The output format: from the output's name (``.tif``/``.tiff``: a TIFF,
    ``.png``: png16), or ``fmt`` when given, which must agree with the name
    (``tiff32f`` is a ``.tif`` too).  Any other name is refused: the next run
    on the folder would take a TIFF called ``.jpg`` for a frame.  Without an
    output (the Python API) ``fmt`` or tiff16."""
    if output is None:
        return "tiff16" if fmt is None else check_choice(fmt, FORMATS, "output format")
    suffix = os.path.splitext(str(output))[1].lower()
    named = _FORMAT_OF_SUFFIX.get(suffix)
    if named is None:
        raise ConfigError(f"-o {output}: the output is a TIFF or a PNG; give it a .tif, .tiff or .png name")
    if fmt is None:
        return named
    check_choice(fmt, FORMATS, "output format")
    if (named == "png16") != (fmt == "png16"):
        raise ConfigError(f"--format {fmt} does not match the output name {output} (a {suffix} file)")
    return fmt


def check_sharpen(value, option: str = "--sharpen"):
    """``"auto"``, ``"off"`` or a positive AMOUNT (float; 1 is what auto does, 2
    restores twice as far).  ``True``/``False`` (the Python API's older form)
    mean auto/off."""
    if value is True or value is False:
        return "auto" if value else "off"
    if isinstance(value, str) and value.strip().lower() in ("auto", "off"):
        return value.strip().lower()
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{option} must be off, auto or a positive number (got {value!r})") from None
    if not (v > 0.0 and math.isfinite(v)):
        raise ConfigError(f"{option} must be off, auto or a positive number (got {value!r})")
    return v


def check_optics_sigma(value, option: str = "--optics-sigma") -> float:
    """The lens blur's Gaussian sigma in frame px, 0 to 3."""
    v = _number(value, option)
    if not (0.0 <= v <= 3.0):
        raise ConfigError(f"{option} must be between 0 and 3 frame pixels (got {value})")
    return v


def check_compression(value) -> str:
    """A TIFF compression this installation can write: deflate is built in,
    LZW and Zstandard need the ``imagecodecs`` package (the ``codecs`` extra)."""
    check_choice(value, COMPRESSIONS, "compression")
    if value in ("lzw", "zstd"):
        import importlib.util

        if importlib.util.find_spec("imagecodecs") is None:
            raise ConfigError(f"--compression {value} needs the imagecodecs package: "
                              "pip install imagecodecs (the codecs extra; or use --compression deflate)")
    return value


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
    merge: str = DEFAULT_MERGE  # "kernel" (kernel regression with the robust weights), "kernel-mean", "robust"
    #                             (Lanczos resampling with per-pixel rejection of what moved) or "mean"
    kernel_shape: str = "anisotropic"  # the kernel merge's kernel: steered by the reference's edges, or isotropic
    cull: bool = True  # leave out frames blurred relative to the rest of the burst
    cull_threshold: float = DEFAULT_THRESHOLD
    weights_png: str | None = None  # picture of where frames were left out
    compare_png: str | None = None  # picture of the reference upscaled beside the result (compare.py)
    max_megapixels: float = DEFAULT_MAX_MEGAPIXELS  # largest frame accepted, checked before any decode
    format: str | None = None  # one of FORMATS; None: from the output's name
    gamma: str = "linear"  # tone curve of raw (linear) input's output: "linear" or "srgb"
    sharpen: str | float = "auto"  # "auto", "off" or AMOUNT (restore AMOUNT times as far as auto); see restore.py
    optics_sigma: float = DEFAULT_OPTICS_SIGMA  # lens blur (frame px) the kernel merge's restoration undoes
    tca: str = DEFAULT_TCA  # lateral chromatic aberration: off, auto (correct when it matters), on
    local: str = DEFAULT_LOCAL  # local displacement field after the global model: off, auto (when significant), on
    refine: bool = DEFAULT_REFINE  # align against a denoised template made from the first frames (template.py)
    decode_threads: int = field(default_factory=lambda: max(2, min(16, os.cpu_count() or 2)))
    prefetch: int = 0  # frames decoded ahead of the one being processed; 0: decode_threads + 1
    align: AlignConfig = field(default_factory=AlignConfig)

    def validate(self) -> None:
        if isinstance(self.scale, bool):
            raise ConfigError(f"--scale must be a number (got {self.scale!r})")
        self.scale = check_scale(self.scale)
        check_choice(self.motion, MOTION_CHOICES, "motion model")
        check_compression(self.compression)
        if not self.inputs:
            raise ConfigError("no input given: name a folder of frames or the frame files")
        check_choice(self.merge, MERGES, "merge")
        check_choice(self.kernel_shape, KERNEL_SHAPES, "kernel shape")
        self.format = output_format(self.output, self.format)
        check_choice(self.gamma, ("linear", "srgb"), "gamma")
        check_choice(self.tca, TCA_CHOICES, "--tca value")
        check_choice(self.local, LOCAL_CHOICES, "--local value")
        check_fraction(self.cull_threshold, "the cull threshold")
        for name in ("cull", "refine", "overwrite"):
            value = getattr(self, name)
            if not isinstance(value, (bool, np.bool_)):
                raise ConfigError(f"{name} must be True or False (got {value!r})")
            setattr(self, name, bool(value))
        self.max_megapixels = check_megapixels(self.max_megapixels)
        for option, value in (("--weights-png", self.weights_png), ("--compare", self.compare_png)):
            if value and not str(value).lower().endswith(".png"):
                raise ConfigError(f"{option} {value}: the picture is a PNG; give it a .png name")
        self.sharpen = check_sharpen(self.sharpen)
        self.optics_sigma = check_optics_sigma(self.optics_sigma)
        self.align.model = self.motion
        self.align.validate()
        if self.prefetch <= 0:
            self.prefetch = self.decode_threads + 1
