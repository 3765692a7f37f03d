"""The Python API: :func:`superresolve`, one call from frames to the merged image.

The command line's ``superres run`` is a thin layer over the same function,
so both run exactly the same pipeline (:func:`superres_gpu.pipeline.run`).
"""

from __future__ import annotations

import dataclasses

import os
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .discover import FrameInfo
from .errors import InputError


@dataclass
class ArrayFrame(FrameInfo):
    """A frame held in memory: its :class:`FrameInfo` plus its pixels (upright,
    (H, W) grey or (H, W, 3) RGB, uint8 or uint16).  ``decode.read_frame``
    hands the pixels over as they are."""

    pixels: np.ndarray | None = None


class SuperresResult(NamedTuple):
    """What :func:`superresolve` returns; unpacks as ``image, report``."""

    image: np.ndarray
    report: dict


def as_frames(arrays, chroma=(1, 1)) -> list[ArrayFrame]:
    """Turn a stack ((N, H, W) or (N, H, W, 3)) or a sequence of arrays into
    in-memory frames.  uint8 and uint16 are taken as they are; floating-point
    frames must lie in [0, 1] and are quantised to uint16.  ``chroma``: the
    (horizontal, vertical) chroma subsampling of the files the colour arrays
    were decoded from ((2, 2) for 4:2:0 JPEG or HEIC), as a file's header
    would give it."""
    chroma = _chroma(chroma)
    if isinstance(arrays, np.ndarray) and (arrays.ndim == 2 or (arrays.ndim == 3 and arrays.shape[2] in (3, 4))):
        # one grey or colour frame (frames 3 or 4 px wide, the other reading, could not be aligned anyway)
        raise InputError(f"an array of shape {arrays.shape} is one frame; a burst needs at least 2 frames of the "
                         "same scene: a list of such arrays, or an (N, H, W) or (N, H, W, 3) stack", "array")
    frames = []
    for k, a in enumerate(arrays):
        name = f"array[{k}]"
        a = np.asarray(a)
        if a.ndim == 3 and a.shape[2] == 1:
            a = a[..., 0]
        if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (3, 4)):
            raise InputError(f"frame has shape {a.shape}; expected (H, W) grey or (H, W, 3) RGB", name)
        if a.ndim == 3:
            a = a[..., :3]  # alpha is ignored, as in files
        if a.dtype.kind == "f":
            if not np.all(np.isfinite(a)) or a.min() < 0.0 or a.max() > 1.0:
                raise InputError("floating-point frame has values outside [0, 1] (or NaN)", name)
            a = np.rint(a * 65535.0).astype(np.uint16)
        elif a.dtype not in (np.uint8, np.uint16):
            raise InputError(f"frame has dtype {a.dtype}; use uint8, uint16 or floats in [0, 1]", name)
        if min(a.shape[:2]) < 1:
            raise InputError("frame is empty", name)
        a = np.ascontiguousarray(a)
        h, w = a.shape[:2]
        channels = 1 if a.ndim == 2 else 3
        frames.append(ArrayFrame(Path(name), "array", w, h, channels, a.dtype.itemsize * 8,
                                 chroma=chroma if channels == 3 else (1, 1), pixels=a))
    return frames


def _chroma(chroma) -> tuple[int, int]:
    try:
        if isinstance(chroma, (str, bytes)) or any(isinstance(c, (bool, np.bool_)) for c in chroma):
            raise TypeError
        h, v = (int(c) for c in chroma)
        ok = all(float(c) == int(c) for c in chroma) and 1 <= h <= 4 and 1 <= v <= 4
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok:
        raise InputError(f"chroma_subsampling {chroma!r}: expected (horizontal, vertical) factors of 1 to 4, "
                         "e.g. (2, 2) for frames decoded from 4:2:0 JPEG")
    return h, v


def _is_array_input(frames) -> bool:
    if isinstance(frames, np.ndarray):
        return True
    if isinstance(frames, (str, os.PathLike)):
        return False
    return len(frames) > 0 and all(isinstance(f, np.ndarray) for f in frames)


def superresolve(
    frames,
    scale: float = 2.0,
    *,
    output: str | os.PathLike | None = None,
    format: str | None = None,
    report: str | os.PathLike | None = None,
    backend: str = "auto",
    reference: str = "first",
    mask: str | os.PathLike | None = None,
    motion: str | None = None,
    merge: str = "kernel",  # options.DEFAULT_MERGE, written out so that importing the API stays light (a test)
    cull: bool = True,
    cull_threshold: float | None = None,
    sharpen: bool | str | float = "auto",
    weights_png: str | os.PathLike | None = None,
    compare_png: str | os.PathLike | None = None,
    compression: str = "none",
    gamma: str = "linear",
    overwrite: bool = False,
    decode_threads: int | None = None,
    chroma_subsampling=None,
    progress=None,
    warn=None,
    **options,
) -> SuperresResult:
    """Merge a hand-held burst into one image at ``scale`` times its resolution.

    Parameters
    ----------
    frames : path, sequence of paths, ndarray or sequence of ndarrays
        A folder of frames, frame files (JPEG, PNG, TIFF and, with the extras,
        HEIC and DNG), a stack of shape (N, H, W) or (N, H, W, 3), or a list
        of (H, W) / (H, W, 3) arrays.  Arrays are uint8, uint16, or floats in
        [0, 1]; they are taken as upright and are never modified.
    scale : float, optional
        Output scale, 1 to 4 (default 2).
    output : path, optional
        Also write the result here (16-bit TIFF, 16-bit PNG or 32-bit float
        TIFF, see ``format``); nothing is written when omitted.
    format : {"tiff16", "png16", "tiff32f"}, optional
        Output format; by default chosen from ``output``'s name.  ``tiff32f``
        also makes the returned image float32.
    report : path, optional
        Write the JSON report here as well.
    backend : {"auto", "numpy", "cupy"}, optional
        Compute backend.
    reference : {"first", "sharpest"} or path, optional
        The frame everything is aligned to.
    mask : path or "none", optional
        Mask of moving objects.  For files the default is ``mask.png`` beside
        the frames; for arrays there is no mask unless one is given.
    motion : str, optional
        Global motion model (see ``superres run --help``).
    merge : {"kernel", "kernel-mean", "robust", "mean"}, optional
        The kernel-regression merge ``"kernel"`` (the default: every frame's
        samples where they fell on the output grid, leaving out, per pixel,
        what moved, then restored) or ``"kernel-mean"`` (without leaving
        anything out); the Lanczos-resampling merges ``"robust"`` (leaving out
        what moved) and ``"mean"`` (a plain mean).
    cull : bool, optional
        Leave out frames blurred relative to the rest of the burst.
    cull_threshold : float, optional
        Sharpness ratio below which a frame is culled.
    sharpen : {"auto", "off"} or float, optional
        Restoration after the merge: ``"auto"`` (the default; True also means
        it), ``"off"`` (or False), or an AMOUNT (restore AMOUNT times as far).
    weights_png : path, optional
        Save a picture of where frames were left out.
    compare_png : path, optional
        Save a picture of the reference frame upscaled with Lanczos beside
        the result, 1:1 at the most detailed places (``superres run --compare``).
    compression : {"none", "deflate", "lzw", "zstd"}, optional
        TIFF compression.
    gamma : {"linear", "srgb"}, optional
        Raw (DNG) frames are merged in linear light and the result stays
        linear; ``"srgb"`` applies the sRGB curve to it (raw input only).
    overwrite : bool, optional
        Replace existing outputs.
    decode_threads : int, optional
        Threads that decode frames ahead of their use (default: one per core, 2 to 16).
    chroma_subsampling : (int, int), optional
        For colour arrays decoded from files that store their chroma at a lower
        resolution: the (horizontal, vertical) factors, (2, 2) for 4:2:0 JPEG
        or HEIC (what phones write).  Files carry this in their headers;
        arrays do not, and the chromatic aberration correction (``tca``)
        measures and moves such frames' channels differently (see ``superres
        run --help``).  Default (1, 1): full-resolution chroma.
    progress : callable, optional
        ``progress(stage, done, total)``, called as the work advances; the
        culling pass (``stage`` "cull") calls it from its own threads, one
        call at a time, while the run's thread may be reporting another stage.
    warn : callable, optional
        ``warn(message)`` for dropped frames and similar (default: stderr).
    **options
        Any other option of :class:`~superres_gpu.options.PipelineConfig` by
        its name, as ``superres run`` has it (``superres run --help`` says
        what each does): ``kernel_shape`` ("anisotropic" or "isotropic"),
        ``optics_sigma`` (frame px, 0 to 3), ``tca`` and ``local`` ("off",
        "auto" or "on"), ``refine`` (bool), ``max_megapixels``.

    Returns
    -------
    image : ndarray
        (H*scale, W*scale) or (H*scale, W*scale, 3): uint16 (0..65535 for the
        input's full range) or, for ``format="tiff32f"``, float32 (1.0 = the
        input's full scale).
    report : dict
        The JSON report (per frame: used, reason, transform, ...).

    Raises
    ------
    superres_gpu.errors.SuperresError
        On bad input or options, with a message naming the file or option.

    Examples
    --------
    >>> import superres_gpu
    >>> image, report = superres_gpu.superresolve("my_burst/", scale=2)  # doctest: +SKIP
    >>> image.shape, report["summary"]["used"]  # doctest: +SKIP
    ((6048, 8064, 3), 24)

    Arrays work the same way:

    >>> from superres_gpu.synth import recipe_burst
    >>> burst = recipe_burst("test-small")  # 8 frames of 160x120, known motion
    >>> image, report = superres_gpu.superresolve(burst.frames, scale=2, backend="numpy", warn=print)
    >>> image.shape, image.dtype
    ((240, 320, 3), dtype('uint16'))
    """
    from .align import DEFAULT_MODEL
    from .cull import DEFAULT_THRESHOLD
    from .pipeline import PipelineConfig, run

    if _is_array_input(frames):
        inputs = as_frames(frames, (1, 1) if chroma_subsampling is None else chroma_subsampling)
        if reference not in ("first", "sharpest"):
            raise InputError(f"reference {reference!r}: for arrays use 'first' or 'sharpest'")
        if mask is None:
            mask = "none"
    else:
        if chroma_subsampling is not None:
            raise InputError("chroma_subsampling is for arrays: files give their own in their headers")
        inputs = [frames] if isinstance(frames, (str, os.PathLike)) else list(frames)
    cfg = PipelineConfig(
        inputs=inputs,
        output=None if output is None else str(output),
        scale=scale,
        backend=backend,
        reference=reference,
        mask=None if mask is None else str(mask),
        motion=motion or DEFAULT_MODEL,
        report=None if report is None else str(report),
        overwrite=overwrite,
        compression=compression,
        merge=merge,
        cull=cull,
        cull_threshold=DEFAULT_THRESHOLD if cull_threshold is None else cull_threshold,
        weights_png=None if weights_png is None else str(weights_png),
        compare_png=None if compare_png is None else str(compare_png),
        sharpen=sharpen,
        format=format,
        gamma=gamma,
    )
    if decode_threads is not None:
        cfg.decode_threads = max(1, int(decode_threads))
    known = {f.name for f in dataclasses.fields(PipelineConfig)} - {"inputs", "output", "align"}
    unknown = sorted(set(options) - known)
    if unknown:
        raise TypeError(f"superresolve() got an unexpected keyword argument {unknown[0]!r}")
    for name, value in options.items():  # the rest of PipelineConfig's options, e.g. max_megapixels
        setattr(cfg, name, value)
    result = run(cfg, progress=progress, warn=warn)
    return SuperresResult(result.image, result.report)
