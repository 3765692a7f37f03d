"""The burst pipeline: stages in order, one pass over the frames.

::

    files -> probe all headers (fail fast on bad input)
          -> [cull: sharpness of every frame from a half-size read; flag the
              blurred ones; choose the reference for --reference sharpest]
          -> reference: decode, luma pyramid, points, phase-correlation spectrum
          -> for each kept frame (decode of the next ones overlaps): decode once,
             upload once, align to the reference, robust weights, resample
             once onto the output grid and accumulate
          -> normalise -> [sharpen: undo the merge's own resampling blur]
          -> 16-bit TIFF (atomic) + JSON report [+ weights PNG]

The pipeline reports progress through a callback ``progress(stage, done,
total)`` and warnings through ``warn(message)``; it never prints.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import __version__
from .align import DEFAULT_MODEL, AlignConfig, Reference, align_frame_full, drop_reason
from .cull import DEFAULT_THRESHOLD, choose_sharpest, flag_blurred, score_burst
from .backends import base as S
from .backends import get_backend
from .errors import AlignmentError, ConfigError, InputError
from .geometry import MOTION_MODELS, decompose, output_size
from .io import (
    MASK_NAME,
    AtomicOutput,
    FrameInfo,
    list_inputs,
    probe,
    read_frame,
    encode_png,
    read_mask,
    write_tiff,
)
from .merge import Accumulator, MergeWeights
from .resample import restoration_strength, restoration_taps

MIN_SCALE, MAX_SCALE = 1.0, 4.0
COMPRESSIONS = ("none", "deflate", "lzw", "zstd")
MERGES = ("robust", "mean")


@dataclass
class PipelineConfig:
    """Everything ``superres run`` needs; the CLI maps its options onto this."""

    inputs: list
    output: str
    scale: float = 2.0
    backend: str = "auto"
    reference: str = "first"  # "first", "sharpest" or a path
    mask: str | None = None  # None: mask.png beside the reference if present; "none": no mask
    motion: str = DEFAULT_MODEL
    report: str | None = None
    overwrite: bool = False
    compression: str = "none"
    merge: str = "robust"  # "robust" (per-pixel rejection of what moved) or "mean"
    cull: bool = True  # leave out frames blurred relative to the rest of the burst
    cull_threshold: float = DEFAULT_THRESHOLD
    weights_png: str | None = None  # picture of where frames were left out
    sharpen: bool = True  # undo the blur of the merge's own resampling (Wiener, from the frame count)
    decode_threads: int = field(default_factory=lambda: max(2, min(16, os.cpu_count() or 2)))
    prefetch: int = 0  # frames decoded ahead of the one being processed; 0: decode_threads + 1
    align: AlignConfig = field(default_factory=AlignConfig)

    def validate(self) -> None:
        if not isinstance(self.scale, (int, float)) or not (MIN_SCALE <= float(self.scale) <= MAX_SCALE):
            raise ConfigError(f"--scale must be between {MIN_SCALE:g} and {MAX_SCALE:g} (got {self.scale})")
        if self.motion not in MOTION_MODELS:
            raise ConfigError(f"unknown motion model {self.motion!r}; choose one of {', '.join(MOTION_MODELS)}")
        if self.compression not in COMPRESSIONS:
            raise ConfigError(f"unknown compression {self.compression!r}; choose one of {', '.join(COMPRESSIONS)}")
        if not self.inputs:
            raise ConfigError("no input given: name a folder of frames or the frame files")
        if self.merge not in MERGES:
            raise ConfigError(f"unknown merge {self.merge!r}; choose one of {', '.join(MERGES)}")
        if not (0.0 < self.cull_threshold < 1.0):
            raise ConfigError(f"the cull threshold must be between 0 and 1 (got {self.cull_threshold})")
        self.align.model = self.motion
        self.align.validate()
        if self.prefetch <= 0:
            self.prefetch = self.decode_threads + 1


@dataclass
class RunResult:
    output: Path
    report: dict
    shape: tuple


def _noop_progress(stage: str, done: int, total: int) -> None:
    pass


def _stderr_warn(message: str) -> None:
    print(f"superres: warning: {message}", file=sys.stderr)


def resolve_frames(cfg: PipelineConfig) -> tuple[list[Path], int]:
    """The burst's files in processing order and the index of the reference."""
    # A previous result in the folder is skipped because this tool tagged it;
    # the output path is deliberately *not* excluded, so that an output named
    # like an input frame is caught (and refused) by AtomicOutput's protect list.
    frames = list_inputs(cfg.inputs)
    if cfg.reference not in (None, "", "first", "sharpest"):
        rp = Path(cfg.reference)
        if not rp.is_file():
            raise InputError("reference frame not found", str(rp))
        for i, f in enumerate(frames):
            if f.samefile(rp):
                return frames, i
        frames.insert(0, rp)
        return frames, 0
    if not frames:
        where = ", ".join(str(p) for p in cfg.inputs)
        raise InputError("no JPEG, PNG or TIFF frames found", where)
    return frames, 0


def check_burst(infos: list[FrameInfo], ref: FrameInfo) -> None:
    """All frames must match the reference's size, channels and bit depth."""
    for info in infos:
        if (info.width, info.height) != (ref.width, ref.height):
            raise InputError(
                f"frame is {info.width}x{info.height} but the reference {ref.path.name} is "
                f"{ref.width}x{ref.height}; all frames of a burst must have the same size",
                str(info.path),
            )
        if (info.channels, info.bits) != (ref.channels, ref.bits):
            raise InputError(
                f"frame is {info.describe()} but the reference {ref.path.name} is {ref.describe()}",
                str(info.path),
            )


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


@dataclass
class FrameRecord:
    """What the pipeline learns about one input frame."""

    path: Path
    info: FrameInfo
    score: object = None  # cull.FrameScore when scored
    state: np.ndarray | None = None  # alignment state (host copy) when processed
    rejected: float | None = None  # fraction of its covered pixels the robust merge left out
    culled: bool = False

    @property
    def used(self) -> bool:
        return bool(self.state is not None and self.state[S.S_ACCEPT] != 0.0)


def run(cfg: PipelineConfig, progress=None, warn=None) -> RunResult:
    """Run the whole pipeline; raise a SuperresError on bad input."""
    progress = progress or _noop_progress
    warn = warn or _stderr_warn
    cfg.validate()
    t_start = time.perf_counter()
    timings: dict[str, float] = {}

    # --- inputs -------------------------------------------------------------
    t0 = time.perf_counter()
    paths, ref_idx = resolve_frames(cfg)
    if len(paths) < 2:
        raise InputError(
            "only one frame found; a burst needs at least 2 frames of the same scene", str(paths[0])
        )
    records = []
    for k, p in enumerate(paths):
        records.append(FrameRecord(p, probe(p)))
        progress("check", k + 1, len(paths))
    check_burst([r.info for r in records], records[ref_idx].info)
    timings["probe"] = time.perf_counter() - t0

    # --- outputs are claimed before any heavy work (fail fast, no partial output)
    side = [x for x in (cfg.report, cfg.weights_png) if x]
    out = AtomicOutput(cfg.output, overwrite=cfg.overwrite, protect=paths)
    claimed = []
    try:
        for x in side:
            claimed.append(AtomicOutput(x, overwrite=cfg.overwrite, protect=paths))
        rep_out = claimed[0] if cfg.report else None
        png_out = claimed[-1] if cfg.weights_png else None

        # --- cull: sharpness of every frame; the reference for "sharpest" -----------
        if cfg.cull or cfg.reference == "sharpest":
            t0 = time.perf_counter()
            scores = flag_blurred(score_burst([r.info for r in records], cfg.decode_threads, progress),
                                  cfg.cull_threshold)
            for r, sc in zip(records, scores):
                r.score = sc
            if cfg.reference == "sharpest":
                ref_idx = choose_sharpest(scores)
            if cfg.cull:
                for i, r in enumerate(records):
                    r.culled = r.score.flagged and i != ref_idx
                    if r.culled:
                        warn(f"{r.path.name}: left out, {r.score.reason}")
                if records[ref_idx].score.flagged:
                    warn(
                        f"the reference {records[ref_idx].path.name} looks blurred ({records[ref_idx].score.reason}); "
                        "consider --reference sharpest"
                    )
            timings["cull"] = time.perf_counter() - t0
        ref_info = records[ref_idx].info
        mask_path = find_mask(cfg, ref_info)
        mask = read_mask(mask_path, (ref_info.height, ref_info.width)) if mask_path else None
        order = [ref_idx] + [i for i, r in enumerate(records) if i != ref_idx and not r.culled]
        if len(order) < 2:
            raise InputError(
                "every frame but the reference was left out as blurred; nothing to merge (try --no-cull)",
                str(records[ref_idx].path),
            )
        try:
            result = _process(cfg, records, order, mask, progress, warn, timings)
        except Exception as e:
            if not _is_device_oom(e):
                raise
            warn(f"the GPU ran out of memory ({e}); starting again on the CPU backend, which is slower")
            cpu_cfg = dataclasses.replace(cfg, backend="numpy")
            result = _process(cpu_cfg, records, order, mask, progress, warn, timings)
        image, weights_picture, backend_name, peak_gpu = result
        t0 = time.perf_counter()
        progress("write", 0, 1)
        used = sum(r.used for r in records)
        desc = f"superres_gpu {__version__}: {used} frames merged, scale {cfg.scale:g}, reference {ref_info.path.name}"
        write_tiff(
            out,
            image,
            exif=ref_info.exif,
            description=desc,
            compression=None if cfg.compression == "none" else cfg.compression,
        )
        if png_out is not None:
            png_out.tmp.write_bytes(encode_png(weights_picture))
            png_out.commit()
        progress("write", 1, 1)
        timings["write"] = time.perf_counter() - t0
        timings["total"] = time.perf_counter() - t_start
        report = build_report(cfg, records, ref_idx, mask_path, backend_name, timings)
        report["peak_gpu_mib"] = peak_gpu
        if rep_out is not None:
            rep_out.tmp.write_text(json.dumps(report, indent=1), encoding="utf-8")
            rep_out.commit()
        return RunResult(Path(cfg.output), report, image.shape)
    except BaseException:
        out.discard()
        for c in claimed:
            c.discard()
        raise


def _is_device_oom(e: BaseException) -> bool:
    """A CUDA out-of-memory error from CuPy (or cuFFT) without importing CuPy."""
    name = type(e).__name__
    mod = type(e).__module__ or ""
    return mod.startswith("cupy") and ("OutOfMemory" in name or "CUFFT_ALLOC_FAILED" in str(e))


def _process(cfg, records, order, mask, progress, warn, timings):
    """The main pass over the kept frames; fills each record's state."""
    B = get_backend(cfg.backend)
    busy = {"decode": 0.0, "align": 0.0, "merge": 0.0}
    ref_info = records[order[0]].info

    def timed_read(info):
        t = time.perf_counter()
        img = read_frame(info)
        return img, time.perf_counter() - t

    n = len(order)
    dev_states, dev_rejected = {}, {}
    marks = []  # per frame: (start, aligned, merged) marks in the backend's work stream
    pool = ThreadPoolExecutor(max_workers=max(1, cfg.decode_threads), thread_name_prefix="decode")
    futures = {}
    try:
        for j in range(min(cfg.prefetch, n)):
            futures[order[j]] = pool.submit(timed_read, records[order[j]].info)
        acc = ref = weights = None
        for k, i in enumerate(order):
            host, dt = futures.pop(i).result()
            busy["decode"] += dt
            if k + cfg.prefetch < n:
                nxt = order[k + cfg.prefetch]
                futures[nxt] = pool.submit(timed_read, records[nxt].info)
            m0 = B.mark()
            frame = B.asarray(host)
            del host
            w = None
            if k == 0:
                ref = Reference(B, frame, cfg.align, mask)
                acc = Accumulator(B, ref_info.width, ref_info.height, ref_info.channels, cfg.scale, ref_info.max_value)
                weights = MergeWeights(B, ref, mask, robust=cfg.merge == "robust")
                state = ref.reference_state()
            else:
                state, coef = align_frame_full(B, ref, frame)
                w, dev_rejected[i] = weights.for_frame(coef[weights.level], state)
                del coef
            m1 = B.mark()
            acc.add(frame, state, w, weights.level)
            marks.append((m0, m1, B.mark()))
            dev_states[i] = state
            del frame, w
            if k >= 2:  # keep at most two frames of work queued ahead of the device
                B.wait(marks[k - 2][2])
            progress("frames", k + 1, n)
        t = time.perf_counter()
        stacked = B.asnumpy(B.xp.stack([dev_states[i] for i in order]))
        for row, i in zip(stacked, order):
            records[i].state = np.array(row, dtype=np.float64)
        for i, v in dev_rejected.items():
            records[i].rejected = None if v is None else float(B.asnumpy(v))
        merged = 1 + sum(records[i].used for i in order[1:])
        taps = restoration_taps(float(cfg.scale), restoration_strength(merged)) if cfg.sharpen else None
        image = acc.result(taps)
        picture = weights.picture() if cfg.weights_png else None
        for m0, m1, m2 in marks:
            busy["align"] += B.elapsed(m0, m1)
            busy["merge"] += B.elapsed(m1, m2)
        busy["merge"] += time.perf_counter() - t
    finally:
        for f in futures.values():
            f.cancel()
        pool.shutdown(wait=True, cancel_futures=True)
    timings.update(busy)
    used = sum(1 for i in order[1:] if records[i].used)
    for i in order[1:]:
        reason = drop_reason(records[i].state, cfg.align)
        if reason:
            warn(f"{records[i].path.name}: dropped, {reason}")
    if used == 0:
        raise AlignmentError(
            f"none of the {n - 1} other frames could be aligned to the reference; "
            "is this a burst of one static scene?",
            str(records[order[0]].path),
        )
    return image, picture, B.name, B.peak_memory_mib()


def build_report(cfg, records, ref_idx, mask_path, backend_name, timings) -> dict:
    """The JSON report (DESIGN.md section 6); extra fields are additions only."""
    ref_info = records[ref_idx].info
    frames = []
    for i, r in enumerate(records):
        sc = r.score
        entry = {
            "path": str(r.path),
            "used": r.used,
            "reason": None,
            "sharpness": None if sc is None else float(sc.sharpness),
            "transform": None,
            "reference": i == ref_idx,
            "sharpness_ratio": None if sc is None else round(float(sc.ratio), 4),
            "noise": None if sc is None else float(sc.noise),
        }
        if r.culled:
            entry["reason"] = sc.reason
        elif r.state is not None:
            st = r.state
            T = st[S.S_T].reshape(3, 3)
            d = decompose(T)
            entry.update(
                {
                    "reason": None if r.used else drop_reason(st, cfg.align),
                    "transform": [[float(v) for v in row] for row in T],
                    "shift_px": [round(d["dx"], 4), round(d["dy"], 4)],
                    "rotation_deg": round(d["rotation_deg"], 5),
                    "zoom": round(d["scale"], 6),
                    "residual_rms": None if i == ref_idx else float(st[S.S_RMS]),
                    "correlation": None if i == ref_idx else float(st[S.S_CORR]),
                    "overlap": None if i == ref_idx else float(st[S.S_OVERLAP]),
                    "phase_correlation_peak": None if i == ref_idx else float(st[S.S_PC_PEAK]),
                    "gain": float(st[S.S_GAIN]),
                    "offset": float(st[S.S_OFFSET]),
                    "rejected_fraction": r.rejected,
                }
            )
        frames.append(entry)
    residuals = [f["residual_rms"] for f in frames if f["used"] and f.get("residual_rms") is not None]
    w, h = output_size(ref_info.width, ref_info.height, cfg.scale)
    return {
        "tool": f"superres_gpu {__version__}",
        "reference": str(records[ref_idx].path),
        "scale": float(cfg.scale),
        "backend": backend_name,
        "motion": cfg.motion,
        "merge": cfg.merge,
        "cull": cfg.cull,
        "sharpen": cfg.sharpen,
        "mask": str(mask_path) if mask_path else None,
        "input_size": [ref_info.width, ref_info.height],
        "output": str(cfg.output),
        "output_size": [w, h],
        "channels": ref_info.channels,
        "bits_in": ref_info.bits,
        "frames": frames,
        "summary": {
            "frames": len(frames),
            "used": sum(f["used"] for f in frames),
            "dropped": sum(not f["used"] for f in frames),
            "culled": sum(r.culled for r in records),
            "residual_rms_median": float(np.median(residuals)) if residuals else None,
            "residual_rms_max": float(np.max(residuals)) if residuals else None,
        },
        "timings": {k: round(v, 4) for k, v in timings.items()},
        "peak_rss_mib": peak_rss_mib(),
    }


def peak_rss_mib() -> float | None:
    """This process's peak resident memory (Linux VmHWM), in MiB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024.0, 1)
    except (OSError, ValueError, IndexError):
        pass
    return None
