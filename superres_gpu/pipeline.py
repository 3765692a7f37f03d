"""The burst pipeline: stages in order, one pass over the frames.

::

    files -> discover: list the burst, probe every header (fail fast)  [discover]
          -> claim the outputs (nothing is written until the end)      [output]
          -> cull: sharpness of every frame from a half-size read;
             leave out the blurred ones, choose the reference          [cull]
          -> reference: decode, luma pyramid, points, spectrum         [reference]
          -> for each kept frame (the next ones decode meanwhile)      [decode]
               upload once -> align to the reference                   [align]
                           -> robust weights                           [robust]
                           -> resample once onto the output grid,
                              accumulate                               [merge]
          -> normalise -> [sharpen: undo the merge's resampling blur;
             after the kernel merge, deconvolve optics + pixels + kernel]  [restore]
          -> 16-bit TIFF + JSON report [+ weights PNG], committed together
                                                                        [output, report]

The pipeline reports progress through a callback ``progress(stage, done,
total)`` and warnings through ``warn(message)``; it never prints.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import __version__, cull
from .align import align, drop_reason, frame_levels
from .backends import get_backend, is_device_oom
from .decode import FrameFeed, read_mask
from .discover import MASK_NAME, FrameInfo, check_burst, probe, resolve_frames
from .errors import AlignmentError, InputError
from .kernelmerge import KernelAccumulator
from .merge import Accumulator
from .options import KERNEL_MERGES, PipelineConfig
from .output import OutputSet, encode_png, write_tiff
from .reference import Reference
from .report import FrameRecord, build_report
from .restore import deconvolve, residual_noise, restoration_strength, sharpen
from .robust import RobustWeights
from .state import FrameState
from .timing import Timings

__all__ = ["PipelineConfig", "RunResult", "run"]


@dataclass
class RunResult:
    output: Path
    report: dict
    shape: tuple


@dataclass
class Merged:
    """What the pass over the frames produced."""

    image: np.ndarray  # uint16, on the host
    weights_picture: np.ndarray | None
    backend: str
    peak_gpu_mib: float | None
    restoration: dict | None = None  # the kernel merge's deconvolution: residual noise, lambda


def _noop_progress(stage: str, done: int, total: int) -> None:
    pass


def _stderr_warn(message: str) -> None:
    print(f"superres: warning: {message}", file=sys.stderr)


def run(cfg: PipelineConfig, progress=None, warn=None) -> RunResult:
    """Run the whole pipeline; raise a SuperresError on bad input."""
    progress = progress or _noop_progress
    warn = warn or _stderr_warn
    cfg.validate()
    clock = Timings()
    with clock.stage("probe"):
        records, ref_idx = open_burst(cfg, progress)
    with OutputSet(cfg.overwrite, protect=[r.path for r in records]) as outputs:
        out_tif = outputs.claim(cfg.output)
        out_report = outputs.claim(cfg.report)
        out_weights = outputs.claim(cfg.weights_png)
        if cfg.cull or cfg.reference == "sharpest":
            with clock.stage("cull"):
                ref_idx = cull_burst(cfg, records, ref_idx, progress, warn)
        ref_info = records[ref_idx].info
        mask_path = find_mask(cfg, ref_info)
        mask = read_mask(mask_path, (ref_info.height, ref_info.width)) if mask_path else None
        order = merge_order(records, ref_idx)
        merged = merge_with_cpu_fallback(cfg, records, order, mask, progress, warn, clock)
        with clock.stage("write"):
            progress("write", 0, 1)
            used = sum(r.used for r in records)
            write_tiff(
                out_tif,
                merged.image,
                exif=ref_info.exif,
                description=f"superres_gpu {__version__}: {used} frames merged, scale {cfg.scale:g}, "
                f"reference {ref_info.path.name}",
                compression=None if cfg.compression == "none" else cfg.compression,
            )
            if out_weights is not None:
                out_weights.tmp.write_bytes(encode_png(merged.weights_picture))
            progress("write", 1, 1)
        clock.add("total", clock.total())
        report = build_report(cfg, records, ref_idx, mask_path, merged.backend, clock.seconds, merged.peak_gpu_mib,
                              merged.restoration)
        if out_report is not None:
            out_report.tmp.write_text(json.dumps(report, indent=1), encoding="utf-8")
        outputs.commit()
    return RunResult(Path(cfg.output), report, merged.image.shape)


def open_burst(cfg: PipelineConfig, progress) -> tuple[list[FrameRecord], int]:
    """The burst's frames, every header probed and checked, and the reference's index."""
    paths, ref_idx = resolve_frames(cfg.inputs, cfg.reference)
    if len(paths) < 2:
        raise InputError("only one frame found; a burst needs at least 2 frames of the same scene", str(paths[0]))
    records = []
    for k, p in enumerate(paths):
        records.append(FrameRecord(p, probe(p)))
        progress("check", k + 1, len(paths))
    check_burst([r.info for r in records], records[ref_idx].info)
    return records, ref_idx


def cull_burst(cfg: PipelineConfig, records: list[FrameRecord], ref_idx: int, progress, warn) -> int:
    """Score every frame, mark the culled ones; returns the reference's index."""
    scores = cull.flag_blurred(cull.score_burst([r.info for r in records], cfg.decode_threads, progress),
                               cfg.cull_threshold)
    ref_idx, culled = cull.select(scores, ref_idx, cfg.reference == "sharpest", cfg.cull, warn)
    for r, sc, c in zip(records, scores, culled):
        r.score, r.culled = sc, c
    return ref_idx


def find_mask(cfg: PipelineConfig, ref: FrameInfo) -> Path | None:
    if cfg.mask in ("none", ""):
        return None
    if cfg.mask is not None:
        p = Path(cfg.mask)
        if not p.is_file():
            raise InputError("mask file not found", str(p))
        return p
    p = ref.path.parent / MASK_NAME
    return p if p.is_file() else None


def merge_order(records: list[FrameRecord], ref_idx: int) -> list[int]:
    """The reference first, then every frame not culled."""
    order = [ref_idx] + [i for i, r in enumerate(records) if i != ref_idx and not r.culled]
    if len(order) < 2:
        raise InputError(
            "every frame but the reference was left out as blurred; nothing to merge (try --no-cull)",
            str(records[ref_idx].path),
        )
    return order


def merge_with_cpu_fallback(cfg, records, order, mask, progress, warn, clock) -> Merged:
    """:func:`merge_frames`; when the GPU runs out of memory, again on the CPU."""
    try:
        return merge_frames(cfg, records, order, mask, progress, warn, clock)
    except Exception as e:
        if not is_device_oom(e):
            raise
        reason = str(e)
    warn(f"the GPU ran out of memory ({reason}); starting again on the CPU backend, which is slower")
    return merge_frames(dataclasses.replace(cfg, backend="numpy"), records, order, mask, progress, warn, clock)


def merge_frames(cfg, records, order, mask, progress, warn, clock) -> Merged:
    """The one pass over the kept frames (``order``, reference first): align,
    weigh, resample and accumulate each; fills each record's state."""
    B = get_backend(cfg.backend)
    ref_info = records[order[0]].info
    n = len(order)
    dev_states, dev_rejected = {}, {}
    marks = []  # per frame: backend marks (start, aligned, weighed, accumulated)
    with FrameFeed([records[i].info for i in order], cfg.decode_threads, cfg.prefetch) as feed:
        for k, (i, (host, decode_s)) in enumerate(zip(order, feed)):
            clock.add("decode", decode_s)
            m0 = B.mark()
            frame = B.asarray(host)
            del host
            w = None
            if k == 0:
                ref = Reference(B, frame, cfg.align, mask)
                state = ref.state()
                m1 = B.mark()
                kind = KernelAccumulator if cfg.merge in KERNEL_MERGES else Accumulator
                acc = kind(B, ref_info.width, ref_info.height, ref_info.channels, cfg.scale, ref_info.max_value)
                weights = RobustWeights(B, ref, robust=cfg.merge in ("robust", "kernel"))
                # the deconvolution's strength: the merge's residual noise relative to one frame's
                ref_noise = residual_noise(B, frame) if cfg.merge in KERNEL_MERGES else None
            else:
                levels = frame_levels(B, ref, frame)
                state = align(B, ref, levels)
                m1 = B.mark()
                w, dev_rejected[i] = weights.for_frame(levels, state)
                del levels
            m2 = B.mark()
            acc.add(frame, state, w, weights.level)
            marks.append((m0, m1, m2, B.mark()))
            dev_states[i] = state
            del frame, w
            if k >= 2:  # keep at most two frames of work queued ahead of the device
                B.wait(marks[k - 2][3])
            progress("frames", k + 1, n)
    with clock.stage("merge"):
        stacked = B.asnumpy(B.xp.stack([dev_states[i] for i in order]))
        for row, i in zip(stacked, order):
            records[i].state = FrameState.from_vector(row)
        for i, v in dev_rejected.items():
            records[i].rejected = None if v is None else float(B.asnumpy(v))
    for m0, m1, m2, m3 in marks:
        clock.add("align", B.elapsed(m0, m1))
        clock.add("weights", B.elapsed(m1, m2))
        clock.add("merge", B.elapsed(m2, m3))
    for i in order[1:]:
        reason = drop_reason(records[i].state, cfg.align)
        if reason:
            warn(f"{records[i].path.name}: dropped, {reason}")
    used = 1 + sum(records[i].used for i in order[1:])
    if used == 1:
        raise AlignmentError(
            f"none of the {n - 1} other frames could be aligned to the reference; "
            "is this a burst of one static scene?",
            str(records[order[0]].path),
        )
    restoration = None
    if cfg.sharpen != "off":
        amount = 1.0 if cfg.sharpen == "auto" else float(cfg.sharpen)
        with clock.stage("restore"):
            mean, covered = acc.take_mean()
            if cfg.merge in KERNEL_MERGES:
                restoration = deconvolve(B, mean, cfg.scale, acc.sigma, ref_info.max_value, ref_noise,
                                         cfg.optics_sigma, amount)
            else:
                sharpen(B, mean, cfg.scale, used, lam=restoration_strength(used) / amount)
            image = acc.encode(mean, covered)
    else:
        with clock.stage("merge"):
            image = acc.result()
    picture = weights.picture() if cfg.weights_png else None
    return Merged(image, picture, B.name, B.peak_memory_mib(), restoration)
