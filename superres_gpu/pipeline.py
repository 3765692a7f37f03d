"""The burst pipeline: stages in order, one pass over the frames.

::

    files -> discover: list the burst, probe every header (fail fast)  [discover]
          -> claim the outputs (nothing is written until the end)      [output]
          -> cull: sharpness of every frame from a half-size read;
             leave out the blurred ones, choose the reference          [cull]
             (with a fixed reference, the default, it runs in its own
             threads beside the reference's decode and preparation; the
             merge waits for it before the second frame)
          -> reference: decode, luma pyramid, points, spectrum         [reference]
          -> for each kept frame (the next ones decode meanwhile)      [decode]
               upload once -> align to the reference                   [align]
                           -> robust weights                           [robust]
                           -> place its samples on the output grid (the
                              kernel merge, the default) or resample it
                              once (Lanczos: robust, mean); accumulate [merge]
          -> normalise -> [sharpen: after the kernel merge, deconvolve
             optics + pixels + kernel; after a Lanczos merge, undo its
             resampling blur]                                          [restore]
          -> [sRGB curve, raw input] -> 16-bit TIFF/PNG or float TIFF
             + JSON report [+ weights PNG], committed together
                                                                        [output, report]

The pipeline reports progress through a callback ``progress(stage, done,
total)`` and warnings through ``warn(message)``; it never prints.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import __version__, cull
from .align import AUTO, ModelChoice, align, choose_model, frame_levels
from .backends import get_backend, is_device_oom
from .backends.base import S_ACCEPT, STATUS_DISAGREES
from .decode import FrameFeed, read_mask
from .discover import MASK_NAME, FrameInfo, check_burst, probe, resolve_frames
from .errors import AlignmentError, ConfigError, InputError
from .kernelmerge import KernelAccumulator
from .local import LocalRefiner
from .local import active as local_active
from .local import frame_report as local_frame_report
from .merge import Accumulator
from .options import KERNEL_MERGES, PipelineConfig
from .output import OutputSet, encode_png, write_image
from .reference import Reference
from .report import FrameRecord, build_report
from .resources import check_merge_size, check_run_memory, run_memory
from .restore import deconvolve, residual_noise, restoration_strength, sharpen
from .robust import NoiseModel, RobustWeights
from .state import FrameState
from .tca import TCAEstimate
from .tca import estimate as estimate_tca
from .tca import estimate_frames
from .template import REFINE_FROM_LEVEL, TEMPLATE_FRAMES, TEMPLATE_SCALE, make_template
from .timing import Timings

__all__ = ["PipelineConfig", "RunResult", "run"]


@dataclass
class RunResult:
    output: Path | None  # None when no output file was asked for (the Python API)
    report: dict
    shape: tuple
    image: np.ndarray | None = None  # the merged result, as written


@dataclass
class Merged:
    """What the pass over the frames produced."""

    image: np.ndarray  # uint16 (float32 for the tiff32f format), on the host
    weights_picture: np.ndarray | None
    backend: str
    peak_gpu_mib: float | None
    restoration: dict | None = None  # the kernel merge's deconvolution: residual noise, lambda
    motion: str | None = None  # the motion model used
    motion_choice: ModelChoice | None = None  # its evidence, when chosen by --motion auto
    tca: TCAEstimate | None = None  # the chromatic aberration estimate (--tca auto or on)
    tca_applied: bool = False
    tca_note: str | None = None  # why --tca auto made no estimate, where it could not
    robust_noise: str | None = None  # what the robust weights divided by: "noise profile" or "measured"
    local: dict | None = None  # the local refinement's burst figures (node spacing, level), when estimated
    template_frames: list | None = None  # --refine: the frames the template was made from (names)
    compare: tuple | None = None  # --compare: the reference's crops and their Lanczos upscale (compare.prepare)


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
    protect = [r.path for r in records]
    pending = None
    if cfg.mask not in (None, "none", ""):
        protect.append(Path(cfg.mask))
    folders = list({r.path.resolve().parent: None for r in records})
    with OutputSet(cfg.overwrite, protect=protect, protect_dirs=folders) as outputs, contextlib.ExitStack() as stack:
        out_tif = outputs.claim(cfg.output, "-o")
        out_report = outputs.claim(cfg.report, "--report")
        out_weights = outputs.claim(cfg.weights_png, "--weights-png")
        out_compare = outputs.claim(cfg.compare_png, "--compare")
        if cfg.reference == "sharpest":  # the reference depends on every frame's score
            with clock.stage("cull"):
                ref_idx = cull_burst(cfg, records, ref_idx, progress, warn)
        elif cfg.cull:  # the scores decide only which other frames are merged: scored beside the reference's work
            pending = stack.enter_context(contextlib.closing(BackgroundCull(cfg, records, ref_idx, progress, warn,
                                                                            clock)))
        ref_info = records[ref_idx].info
        if cfg.gamma == "srgb" and ref_info.format != "raw":
            raise ConfigError(f"--gamma srgb applies to raw (linear) frames; {ref_info.path.name} is already "
                              "gamma-encoded")
        mask_path = find_mask(cfg, ref_info)
        mask = read_mask(mask_path, (ref_info.height, ref_info.width)) if mask_path else None
        if pending is None:
            order = merge_order(records, ref_idx)
        else:  # every frame until the scores are in (see merge_frames)
            order = [ref_idx] + [i for i in range(len(records)) if i != ref_idx]
        merged = merge_with_cpu_fallback(cfg, records, order, mask, progress, warn, clock, pending)
        if cfg.gamma == "srgb":
            from .raw import encode_srgb

            merged.image = encode_srgb(merged.image)
        with clock.stage("write"):
            progress("write", 0, 1)
            used = sum(r.used for r in records)
            if out_tif is not None:
                write_image(
                    out_tif,
                    merged.image,
                    cfg.format,
                    exif=ref_info.exif,
                    description=f"superres_gpu {__version__}: {used} frames merged, scale {cfg.scale:g}, "
                    f"reference {ref_info.path.name}",
                    compression=None if cfg.compression == "none" else cfg.compression,
                )
            if out_weights is not None:
                out_weights.write_bytes(encode_png(merged.weights_picture))
            if out_compare is not None:
                out_compare.write_bytes(encode_png(comparison(cfg, records, ref_info, merged.compare, merged.image)))
            progress("write", 1, 1)
        clock.add("total", clock.total())
        report = build_report(cfg, records, ref_idx, mask_path, merged.backend, clock.seconds, merged.peak_gpu_mib,
                              merged.restoration, merged.motion, merged.motion_choice)
        report["tca"] = {"option": cfg.tca, "applied": merged.tca_applied,
                         "estimate": None if merged.tca is None else merged.tca.report(), "note": merged.tca_note}
        report["robust_noise"] = merged.robust_noise
        report["local"] = {"option": cfg.local, **(merged.local or {"active": False})}
        report["template"] = None if merged.template_frames is None else {"frames": merged.template_frames}
        report["comparison"] = None if out_compare is None else {
            "path": str(cfg.compare_png), "crops": [list(c) for c in merged.compare[0]]}
        if out_report is not None:
            out_report.write_text(json.dumps(report, indent=1))
        outputs.commit()
    return RunResult(Path(cfg.output) if cfg.output else None, report, merged.image.shape, merged.image)


def comparison(cfg: PipelineConfig, records, ref_info: FrameInfo, prepared, image: np.ndarray) -> np.ndarray:
    """The ``--compare`` picture (:mod:`superres_gpu.compare`) of the merged
    ``image`` against the reference's crops ``prepared`` (``compare.prepare``)."""
    from .compare import comparison_picture, image_crops

    crops, singles = prepared
    used = sum(r.used for r in records)
    raw = ref_info.format == "raw"
    name = ref_info.path.name
    return comparison_picture(
        image, crops, singles, image_crops(image, crops),
        left=f"one frame, Lanczos {cfg.scale:g}x", right=f"{used} frames merged",
        title=f"{used} of {len(records)} frames merged at {cfg.scale:g}x; left: the reference {name}, upscaled",
        linear_single=raw, linear_result=raw and cfg.gamma == "linear")


def open_burst(cfg: PipelineConfig, progress) -> tuple[list[FrameRecord], int]:
    """The burst's frames, every header probed and checked, and the reference's index.

    ``cfg.inputs`` holds folders and files, or frames already described
    (:class:`FrameInfo` objects, such as the Python API's in-memory frames).
    """
    if cfg.inputs and all(isinstance(i, FrameInfo) for i in cfg.inputs):
        records = [FrameRecord(i.path, i) for i in cfg.inputs]
        if len(records) < 2:
            raise InputError("only one frame given; a burst needs at least 2 frames of the same scene",
                             str(records[0].path))
        check_burst([r.info for r in records], records[0].info)
        check_merge_size(records[0].info.path, records[0].info.width, records[0].info.height, cfg.scale)
        return records, 0
    paths, ref_idx = resolve_frames(cfg.inputs, cfg.reference)
    if len(paths) < 2:
        raise InputError("only one frame found; a burst needs at least 2 frames of the same scene", str(paths[0]))
    records = []
    for k, p in enumerate(paths):
        records.append(FrameRecord(p, probe(p, cfg.max_megapixels)))
        progress("check", k + 1, len(paths))
    ref = records[ref_idx].info
    check_burst([r.info for r in records], ref)
    # small frames: the estimate's host copies of the first frames and the reference's, held for its merge
    want = tca_frames(cfg, ref, min(held_frames(cfg), len(paths) - 1))
    tca_copies = want + 1 if want > 1 else 0
    need = run_memory(ref.width, ref.height, ref.channels, ref.dtype.itemsize, cfg.scale, cfg.prefetch + 2,
                      kernel=cfg.merge in KERNEL_MERGES, held=min(held_frames(cfg), len(paths) - 1) + tca_copies,
                      template_scale=TEMPLATE_SCALE if cfg.refine else None,
                      chroma_band=cfg.tca != "off" and ref.channels == 3 and max(ref.chroma) > 1,
                      culling=max(1, cfg.decode_threads) if cfg.cull and cfg.reference != "sharpest" else 0,
                      den_planes=ref.channels if cfg.merge in KERNEL_MERGES and cfg.tca != "off"
                      and max(ref.chroma) == 1 else 1,  # channel maps (lossless chroma): a weight plane each
                      camera_channels=raw_colour_matrix(ref) is not None)
    check_run_memory(ref.path, need)
    check_merge_size(ref.path, ref.width, ref.height, cfg.scale)
    return records, ref_idx


def cull_burst(cfg: PipelineConfig, records: list[FrameRecord], ref_idx: int, progress, warn) -> int:
    """Score every frame, mark the culled ones; returns the reference's index."""
    return apply_scores(cfg, records, cull.score_burst([r.info for r in records], cfg.decode_threads, progress),
                        ref_idx, warn)


def apply_scores(cfg: PipelineConfig, records: list[FrameRecord], scores: list, ref_idx: int, warn) -> int:
    """Flag the blurred frames among ``scores``, choose the reference (with
    ``--reference sharpest``) and mark the culled records; returns the
    reference's index."""
    scores = cull.flag_blurred(scores, cfg.cull_threshold)
    ref_idx, culled = cull.select(scores, ref_idx, cfg.reference == "sharpest", cfg.cull, warn)
    for r, sc, c in zip(records, scores, culled):
        r.score, r.culled = sc, c
    return ref_idx


class BackgroundCull:
    """The culling pass (:func:`cull_burst`) run in its own threads while the
    reference is read and prepared; :meth:`order` waits for it and gives the
    merge order; :meth:`close` cancels what is still queued."""

    def __init__(self, cfg: PipelineConfig, records: list, ref_idx: int, progress, warn, clock: Timings):
        from concurrent.futures import ThreadPoolExecutor

        from .decode import cv2_quiet

        cv2_quiet()  # OpenCV imported here, before the threads (see cv2_quiet)
        self.cfg, self.records, self.ref_idx, self.warn, self.clock = cfg, records, ref_idx, warn, clock
        self.pool = ThreadPoolExecutor(max_workers=max(1, cfg.decode_threads), thread_name_prefix="cull")
        self.done = 0
        self._order = None
        total = len(records)
        lock = threading.Lock()

        def scored(_):
            with lock:
                self.done += 1
                progress("cull", self.done, total)

        self.futures = [self.pool.submit(cull.score_frame, r.info) for r in records]
        for f in self.futures:
            f.add_done_callback(scored)

    def order(self) -> list[int]:
        """The reference first, then every frame not culled (waits for the scores)."""
        if self._order is None:
            with self.clock.stage("cull"):
                scores = [f.result() for f in self.futures]
            ref_idx = apply_scores(self.cfg, self.records, scores, self.ref_idx, self.warn)
            self._order = merge_order(self.records, ref_idx)
        return self._order

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


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


def merge_with_cpu_fallback(cfg, records, order, mask, progress, warn, clock, pending=None) -> Merged:
    """:func:`merge_frames`; when the GPU runs out of memory, again on the CPU."""
    try:
        return merge_frames(cfg, records, order, mask, progress, warn, clock, pending)
    except Exception as e:
        if not is_device_oom(e):
            raise
        reason = str(e)
    warn(f"the GPU ran out of memory ({reason}); starting again on the CPU backend, which is slower")
    if pending is not None:
        order = pending.order()
    return merge_frames(dataclasses.replace(cfg, backend="numpy"), records, order, mask, progress, warn, clock)


def process_frame(B, ref: Reference, weights: RobustWeights, acc: Accumulator, frame, levels=None, local=None,
                  start=None):
    """The per-frame work of the merge, all on the backend's device: align the
    frame to the reference (and, with a ``local`` :class:`LocalRefiner`, its
    displacement field), weigh it, resample it onto the output grid and
    accumulate (``levels``: the frame's FrameLevels when already made;
    ``start``: its state aligned to the reference the template was made from,
    refined from there on the finer levels only, :data:`REFINE_FROM_LEVEL`); a
    frame whose content disagrees with the reference is dropped
    (:meth:`RobustWeights.check`).  Returns (state, rejected fraction,
    disagreement, (mark after align, mark after the weights), the local
    figures or None); nothing is read back to the host."""
    if levels is None:
        levels = frame_levels(B, ref, frame)
    state = align(B, ref, levels) if start is None else align(B, ref, levels, start=start, coarsest=REFINE_FROM_LEVEL)
    field, cell, figures = None, 0.0, None
    res = None if local is None else local.refine(levels, state)
    if res is not None:
        field, cell, figures = res.field, res.cell, res.stats
    m1 = B.mark()
    residual = weights.residual(levels, state, field, cell)
    disagreement = weights.check(levels, state, residual)
    w, rejected = weights.for_frame(levels, state, residual)
    m2 = B.mark()
    acc.add(frame, state, w, weights.level, field, cell)
    return state, rejected, disagreement, (m1, m2), figures


def lateral_ca(cfg, frames, B, clock, chroma=(1, 1), origin=(0, 0),
               colour_matrix=None) -> tuple[TCAEstimate | None, bool, str | None]:
    """(estimate, applied, note) of the burst's chromatic aberration from host
    ``frames`` (the reference first; :func:`tca_frames` says how many), their
    chroma subsampling ``chroma`` and the blocks' ``origin`` (and for raw frames
    the camera -> frame ``colour_matrix``, :func:`raw_colour_matrix`), under ``cfg.tca``;
    (None, False, None) when off or auto on grey frames.  Where auto (the
    default) can make no estimate (too little colour texture) the burst is
    merged without the correction and ``note`` (the report's) says why; with
    ``on`` that is an error."""
    if cfg.tca == "off" or (cfg.tca == "auto" and frames[0].ndim != 3):
        return None, False, None
    if frames[0].ndim != 3:
        raise InputError("--tca on needs colour frames; these are grey")
    with clock.stage("tca"):
        try:
            est = estimate_tca(B, frames, chroma, origin=origin, colour_matrix=colour_matrix)
        except AlignmentError as e:
            if cfg.tca == "on":
                raise
            return None, False, f"not estimated: {e.message}"
    return est, cfg.tca == "on" or est.matters(), None


def raw_colour_matrix(info: FrameInfo):
    """The camera -> frame colour matrix (3x3) of a raw frame with a Bayer
    mosaic, which the chromatic aberration is estimated and corrected through
    (:func:`superres_gpu.tca.camera_frame`); None for any other frame, and
    where the file's matrix is not a usable one (not finite, or singular):
    the channels are then compared as the decoder gives them."""
    raw = getattr(info, "raw", None)
    if not raw or max(info.chroma) == 1 or not raw.get("color_matrix"):
        return None
    m = np.asarray([row[:3] for row in raw["color_matrix"][:3]], np.float64)
    if m.shape != (3, 3) or not np.isfinite(m).all() or abs(np.linalg.det(m)) < 1e-6:
        return None
    return m.tolist()


def tca_frames(cfg, info: FrameInfo, hold: int) -> int:
    """How many frames the chromatic aberration is estimated on: the reference
    and, on small frames (:func:`superres_gpu.tca.estimate_frames`), some of the
    ``hold`` frames held back after it anyway (the reference's merge then waits
    for them); 1 when the estimate is off or the frames are grey."""
    if cfg.tca == "off" or info.channels != 3:
        return 1
    return estimate_frames(info.width, info.height, 1 + hold)


def held_frames(cfg) -> int:
    """How many frames after the reference :func:`merge_frames` holds back
    until the motion model (``--motion auto``) and the template
    (``--refine``) are settled."""
    return max(cfg.align.select_frames if cfg.align.model == AUTO else 0, TEMPLATE_FRAMES - 1 if cfg.refine else 0)


def merge_frames(cfg, records, order, mask, progress, warn, clock, pending=None) -> Merged:
    """The one pass over the kept frames (``order``, reference first): align,
    weigh, resample and accumulate each; fills each record's state.

    With ``pending`` (a :class:`BackgroundCull`) ``order`` holds every frame
    and the culling pass runs beside the reference's preparation; once the
    reference is ready its :meth:`~BackgroundCull.order` replaces ``order``
    and the culled frames leave the feed (those already decoded ahead are
    dropped).

    The first frames are held back (copies on the backend) until what the
    others are aligned against is settled: with ``--motion auto`` the model
    (chosen on the first ``select_frames``), with ``cfg.refine`` the denoised
    template (:mod:`superres_gpu.template`, made from the reference and the
    first ``TEMPLATE_FRAMES`` - 1 others aligned to it); then the held frames
    are aligned again, against the template, and merged like the rest."""
    B = get_backend(cfg.backend)
    ref_info = records[order[0]].info
    n = len(order)
    dev_states, dev_rejected, dev_disagree, dev_local = {}, {}, {}, {}
    local = None
    marks = []  # per frame: backend marks (start, aligned, weighed, accumulated)
    choice = None  # motion "auto": the model chosen on the first frames, held back until then
    held = []
    template_frames = None
    noise = NoiseModel.from_raw(getattr(ref_info, "raw", None))
    hold = held_frames(cfg)
    settled = hold == 0  # the model and the template are known: frames are aligned as they come
    tca_est, tca_used, tca_note = None, False, None
    tca_want = tca_frames(cfg, ref_info, hold)
    tca_hosts = []  # host copies of the first frames when the estimate reads more than the reference
    compare = None
    deferred = None  # the reference's own merge, waiting for that estimate

    def finish(i, state, m0, m1, m2, merging=None):
        # marks: aligned m0 -> m1, weighed m1 -> m2, merged (from ``merging``, else m2) -> now
        marks.append((m0, m1, m2, m2 if merging is None else merging, B.mark()))
        dev_states[i] = state
        if len(marks) >= 3:  # keep at most two frames of work queued ahead of the device
            B.wait(marks[-3][-1])
        progress("frames", len(marks), n)

    def merge_reference():
        # the estimate on the first frames, then the correction and the reference's merge it waited for
        nonlocal deferred, tca_est, tca_used, tca_note
        i, frame, state, m0, m1, m2 = deferred
        deferred = None
        tca_est, tca_used, tca_note = lateral_ca(cfg, tca_hosts, B, clock, ref_info.chroma, ref_info.chroma_origin,
                                                 raw_colour_matrix(ref_info))
        tca_hosts.clear()
        if tca_used:
            acc.correct_chromatic_aberration(tca_est)
        merging = B.mark()
        acc.add(frame, state, None, weights.level)
        finish(i, state, m0, m1, m2, merging)

    def align_and_merge(i, frame, levels, m0, start=None):
        state, dev_rejected[i], dev_disagree[i], (m1, m2), dev_local[i] = process_frame(
            B, ref, weights, acc, frame, levels, local, start)
        finish(i, state, m0, m1, m2)

    infos = [records[i].info for i in order]
    with FrameFeed(infos, cfg.decode_threads, cfg.prefetch, alloc=B.host_frame, release=B.release_host) as feed:
        speculative = order
        for k, (pos, (host, decode_s)) in enumerate(feed.numbered()):
            i = speculative[pos]
            clock.add("decode", decode_s)
            # read on the host before the upload hands its buffer back to the decoders
            if k == 0 and tca_want == 1:
                tca_est, tca_used, tca_note = lateral_ca(cfg, [host], B, clock, ref_info.chroma,
                                                         ref_info.chroma_origin, raw_colour_matrix(ref_info))
            elif k < tca_want:
                tca_hosts.append(np.array(host))
            if k == 0 and cfg.compare_png:  # --compare: the reference's crops, chosen and upscaled now
                from .compare import prepare

                compare = prepare(host, cfg.scale)
            m0 = B.mark()
            frame = B.upload_frame(host)
            del host
            if k == 0:
                ref = wref = Reference(B, frame, cfg.align, mask)
                m1 = B.mark()
                kind = KernelAccumulator if cfg.merge in KERNEL_MERGES else Accumulator
                acc = kind(B, ref_info.width, ref_info.height, ref_info.channels, cfg.scale, ref_info.max_value)
                if tca_used:
                    acc.correct_chromatic_aberration(tca_est)
                # the robust weights compare frames with the reference frame itself even when they are
                # aligned to the template: a merge brought back to the frame grid is a little softer than a
                # frame at edges, where it would have frames left out that only differ from it there
                weights = RobustWeights(B, wref, robust=cfg.merge in ("robust", "kernel"), noise=noise)
                if local_active(cfg):
                    # against the reference frame itself even with the template: the field maps each frame onto
                    # the reference's own geometry (the output grid's), while the template's rows average the
                    # first frames' rolling-shutter wobble (the dense error 0.067 px against it, 0.044 px here)
                    local = LocalRefiner(B, wref, cfg.local)
                # one frame's residual noise: what steers the anisotropic kernel (and the report shows)
                ref_noise = residual_noise(B, frame) if cfg.merge in KERNEL_MERGES else None
                if cfg.merge in KERNEL_MERGES and cfg.kernel_shape == "anisotropic":
                    acc.steer(wref.pyramid[0], ref_noise / ref_info.max_value)
                m2 = B.mark()
                if tca_want == 1:
                    acc.add(frame, ref.state(), None, weights.level)
                else:  # merged once the estimate has its frames (a copy, as below)
                    deferred = (i, B.xp.array(frame), ref.state(), m0, m1, m2)
                B.frame_done(frame)
                if pending is not None:
                    order = pending.order()
                    kept = set(order)
                    feed.skip([p for p, j in enumerate(speculative) if j not in kept])
                    n = len(order)
                if deferred is None:
                    finish(i, ref.state(), m0, m1, m2)
                continue
            if settled:
                align_and_merge(i, frame, None, m0)
                B.frame_done(frame)
                del frame
                continue
            held.append((i, B.xp.array(frame), frame_levels(B, ref, frame), m0))  # a copy, as above
            B.frame_done(frame)
            del frame
            if len(held) < hold and k < n - 1:
                continue
            if deferred is not None:
                merge_reference()
            if ref.config.model == AUTO:
                with clock.stage("motion"):
                    choice = choose_model(B, ref, [h[2] for h in held[: cfg.align.select_frames]])
                ref.config = dataclasses.replace(cfg.align, model=choice.model)
            if cfg.refine:
                with clock.stage("template"):
                    firsts = [(hlevels, align(B, ref, hlevels)) for _, _, hlevels, _ in held]
                    template = make_template(B, ref, firsts, noise)
                    ref = Reference(B, template, ref.config, mask)
                    # a frame the reference accepted goes on from there against the template
                    ok = B.asnumpy(B.xp.stack([st for _, st in firsts]))[:, S_ACCEPT] != 0.0
                    starts = [st if good else None for (_, st), good in zip(firsts, ok)]
                    del firsts, template
                template_frames = [records[j].path.name for j in [order[0]] + [h[0] for h in held]]
            settled = True
            if not cfg.refine:
                starts = [None] * len(held)
            for (hi, hframe, hlevels, hm0), start in zip(held, starts):  # their alignment starts now, after the choice
                align_and_merge(hi, hframe, hlevels, B.mark(), start)
            held = []
    if deferred is not None:  # no frame followed the reference
        merge_reference()
    with clock.stage("merge"):
        stacked = B.asnumpy(B.xp.stack([dev_states[i] for i in order]))
        for row, i in zip(stacked, order):
            records[i].state = FrameState.from_vector(row)
        for i, v in dev_rejected.items():
            records[i].rejected = None if v is None else float(B.asnumpy(v))
        for i, v in dev_disagree.items():
            records[i].disagreement = float(B.asnumpy(v))
        refined = [i for i in order[1:] if dev_local.get(i) is not None]
        if refined:
            figures = B.asnumpy(B.xp.stack([dev_local[i] for i in refined]))
            for row, i in zip(figures, refined):
                records[i].local = local_frame_report(row)
    for m0, m1, m2, m2b, m3 in marks:
        clock.add("align", B.elapsed(m0, m1))
        clock.add("weights", B.elapsed(m1, m2))
        clock.add("merge", B.elapsed(m2b, m3))
    used = 1 + sum(records[i].used for i in order[1:])
    if used == 1 and all(records[i].state.status == STATUS_DISAGREES for i in order[1:]):
        raise InputError(f"the content of every one of the {n - 1} other frames disagrees with the reference "
                         "beyond what noise explains; is the reference damaged, or not of this scene?",
                         str(records[order[0]].path))
    if used == 1:
        raise AlignmentError(
            f"none of the {n - 1} other frames could be aligned to the reference; "
            "is this a burst of one static scene?",
            str(records[order[0]].path),
        )
    for i in order[1:]:  # after the checks above: a failed run prints one line
        reason = records[i].drop_reason(ref.config)
        if reason:
            warn(f"{records[i].path.name}: dropped, {reason}")
    restoration = None
    if cfg.sharpen != "off":
        amount = 1.0 if cfg.sharpen == "auto" else float(cfg.sharpen)
        with clock.stage("restore"):
            mean, covered = acc.take_mean()
            if cfg.merge in KERNEL_MERGES:
                predicted = weights.profile_noise(ref_info.max_value)  # a raw file's noise profile, if any
                noise = None
                if predicted is not None:
                    noise, ref_noise = predicted
                restoration = deconvolve(B, mean, cfg.scale, acc.sigma, ref_info.max_value, ref_noise,
                                         cfg.optics_sigma, amount, noise=noise)
                restoration["noise_source"] = "measured" if predicted is None else "noise profile"
            else:
                sharpen(B, mean, cfg.scale, used, lam=restoration_strength(used) / amount)
            image = acc.to_float(mean, covered) if cfg.format == "tiff32f" else acc.encode(mean, covered)
    elif cfg.format == "tiff32f":
        with clock.stage("merge"):
            image = acc.to_float(*acc.take_mean())
    else:
        with clock.stage("merge"):
            image = acc.result()
    picture = weights.picture() if cfg.weights_png else None
    return Merged(image, picture, B.name, B.peak_memory_mib(), restoration, ref.config.model, choice, tca_est,
                  tca_used, tca_note, weights.noise_source, None if local is None else local.report(), template_frames,
                  compare)
