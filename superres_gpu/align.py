"""Alignment of every frame to the reference (never frame to frame).

Coarse
    Phase correlation of Hann-windowed luma at the finest pyramid level whose
    larger side is at most ``pc_size`` pixels (512 by default): recovers
    translations of a good fraction of the frame (tens of pixels at full
    resolution) in one FFT, with a parabolic sub-pixel peak fit.

Fine
    Inverse-compositional Gauss-Newton (Lucas-Kanade / Baker-Matthews) on the
    luma pyramid, coarse to fine, for a global motion model (translation,
    euclidean, similarity, affine or homography).  Steepest-descent images come
    from the reference (:mod:`superres_gpu.reference`), at a fixed set of
    informative points per level; the frame is sampled there by cubic
    B-spline interpolation at exact positions (a prefiltered B-spline: far
    less interpolation bias than cubic convolution).  Residuals carry a lagged
    photometric gain/offset (exposure changes) and robust weights at a robust
    scale (the biweight M-estimate, which outliers do not inflate): Huber's
    at the coarsest step, then Tukey's biweight, which gives points far off
    the reference (passers-by, noise outliers) no weight at all.  The coarsest level refines a similarity (or the simpler
    requested model) first, so large rotations do not start the full model
    far from the solution.  A level's iterations stop once a step is below
    ``converged_px``; the decision is taken on the device, inside the state.

Every step runs through the backend (``B``), and each frame's state stays
on the device: the decision to drop a frame (too little overlap, low
correlation, implausible transform) is taken on the device too and read back
once, after the whole burst.

References: B. D. Lucas & T. Kanade (1981); S. Baker & I. Matthews,
"Lucas-Kanade 20 Years On: A Unifying Framework", IJCV 56(3), 2004;
C. D. Kuglin & D. C. Hines, phase correlation (1975).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .backends import base as S
from .errors import AlignmentError, ConfigError
from .geometry import MODEL_ID, MODEL_NPARAMS, MOTION_MODELS, grid_rms_error
from .interp import bspline_prefilter_taps
from .reference import build_pyramid

AUTO = "auto"
MOTION_CHOICES = (AUTO,) + MOTION_MODELS  # what ``--motion`` accepts
DEFAULT_MODEL = AUTO


@dataclass
class AlignConfig:
    """Tuning of the aligner; the defaults are what the benchmarks measured best."""

    # the pipeline's default is DEFAULT_MODEL ("auto", resolved by choose_model
    # on the burst); aligning frames directly needs a concrete model
    model: str = "homography"
    pc_size: int = 512  # phase correlation where max(w, h) <= pc_size
    points_fine: int = 1 << 17  # informative points at level 0
    points_coarse: int = 1 << 15  # ... at coarser levels
    iters_coarse: int = 10  # Gauss-Newton iterations at the coarsest level
    iters_mid: int = 5
    iters_fine: int = 4
    min_corr: float = 0.3  # drop a frame whose correlation with the reference is lower
    min_overlap: float = 0.5  # ... or that covers less of the reference
    damping: float = 1e-6  # Levenberg-Marquardt damping (relative to diag H)
    prefilter: float = 1.5  # Gaussian sigma (px) on level 0 before refinement: aliasing bias
    converged_px: float = 1e-4  # a level's iterations stop (from the second on) below this step
    border: int = 2  # pixels at each level's border never used (more where prefiltered)
    grid_cells: int = 16  # cells across the frame for point selection
    select_frames: int = 3  # model "auto": frames the choice is made on
    select_margin: float = 0.001  # ... a richer model must lower the held-out residual by more than this
    select_px: float = 0.02  # ... and move the map by more than this (RMS over a grid, px)
    redescend: bool = True  # Tukey's biweight after the coarsest step (else Huber's weight throughout)

    def validate(self) -> None:
        if self.model not in MOTION_CHOICES:
            raise ConfigError(f"unknown motion model {self.model!r}; choose one of {', '.join(MOTION_CHOICES)}")
        if self.select_frames < 1:
            raise ConfigError("select_frames must be at least 1")
        if self.pc_size < 32:
            raise ConfigError("pc_size must be at least 32")


def coarse_model(model: str) -> str:
    """The model refined first at the coarsest level."""
    return model if MODEL_NPARAMS[model] <= MODEL_NPARAMS["similarity"] else "similarity"


def schedule(ref, model: str | None = None, finest: int = 0, coarsest: int | None = None) -> list[tuple[int, str, int]]:
    """[(level, model, iterations), ...] coarse to fine, for a Reference: its
    configured model (or ``model``) from the phase-correlation level down to
    level ``finest`` (0: the full schedule); with ``coarsest``, from that
    level only, every step with the model itself (a frame already aligned
    close to this reference: :func:`align`'s ``start``)."""
    cfg = ref.config
    model = model or cfg.model
    if model == AUTO:
        raise ConfigError("motion model 'auto' must be resolved (choose_model) before a frame is aligned")
    if coarsest is not None:
        top = min(max(coarsest, finest), ref.levels - 1)
        return [(level, model, cfg.iters_fine if level == 0 else cfg.iters_mid) for level in range(top, finest - 1, -1)]
    coarse = coarse_model(model)
    steps = []
    levels = list(range(max(ref.pc_level, finest), finest - 1, -1))
    for i, level in enumerate(levels):
        if i == 0:
            steps.append((level, coarse, cfg.iters_coarse))
            if len(levels) == 1:
                steps.append((level, model, cfg.iters_fine))
        elif level == 0:
            steps.append((level, model, cfg.iters_fine))
        else:
            steps.append((level, model, cfg.iters_mid))
    return steps


@dataclass
class FrameLevels:
    """A frame's luma pyramid and, per level, its cubic B-spline coefficients
    (level 0 with the alignment prefilter folded in): what alignment samples,
    and what the robust weights compare with the reference."""

    pyramid: list
    coef: list


def frame_levels(B, ref, frame) -> FrameLevels:
    """Luma pyramid and B-spline coefficients of a frame (uint8/uint16 on the backend)."""
    pyr = build_pyramid(B, B.luma(frame), ref.levels)
    taps = bspline_prefilter_taps()
    coef = [B.sepfilter(img, ref.frame_taps if level == 0 else taps) for level, img in enumerate(pyr)]
    return FrameLevels(pyr, coef)


def coarse_start(B, ref, levels: FrameLevels):
    """A frame's state after :func:`align`'s first step, the phase correlation
    of its coarse luma with the reference's (a translation)."""
    state = B.asarray(S.identity_state())
    surface = B.phase_correlation(ref.spectrum, levels.pyramid[ref.pc_level], ref.window)
    B.peak_to_state(surface, state, ref.pc_level)
    return state


def align(B, ref, levels: FrameLevels, model: str | None = None, finest: int = 0, points: dict | None = None,
          finalize: bool = True, start=None, coarsest: int | None = None):
    """Align a frame, given its :class:`FrameLevels`, to the reference (with
    the reference's configured model, or ``model``; down to level ``finest``;
    on the reference's points, or ``points`` per level; from ``start``, the
    frame's :func:`coarse_start` when already made, else it is made here;
    with ``coarsest``, ``start`` is a state already close to this reference
    and only the levels from ``coarsest`` down are refined: :func:`schedule`).

    Returns the frame's state vector on the backend (``backends.base``
    layout): T, Tinv, photometric gain/offset, diagnostics and, unless
    ``finalize`` is False, the accept flag.
    """
    cfg = ref.config
    points = ref.points if points is None else points
    if coarsest is not None and start is None:
        raise ValueError("refining from a level needs the state to start from")
    state = coarse_start(B, ref, levels) if start is None else start.copy()
    for step, (level, m, iters) in enumerate(schedule(ref, model, finest, coarsest)):
        if (step == 1 or coarsest is not None) and cfg.redescend:
            # past the coarse start the fit is close: a redescending weight now rejects what
            # the reference does not explain (passers-by) instead of letting it pull
            state[S.S_REDESCEND] = 1.0
        mid = MODEL_ID[m]
        margin = ref.margin(level)
        for it in range(iters):
            sums = B.align_reduce(levels.coef[level], points[level], state, mid, level, ref.norm, margin, it)
            B.align_update(sums, state, mid, ref.norm, cfg.damping, cfg.converged_px, it)
    if finalize:
        B.align_finalize(state, ref.width, ref.height, cfg.min_corr, cfg.min_overlap)
    return state


@dataclass
class ModelChoice:
    """The motion model :func:`choose_model` picked, and its evidence.

    ``heldout`` maps each model to its held-out robust residual (mean Huber
    weighted squared residual over both folds and all selection frames)
    relative to the lowest of all models; ``map_px`` to the RMS difference
    (px, over a grid) between its map and the chosen model's; ``level`` is
    the finest pyramid level the models were fitted on."""

    model: str
    heldout: dict = field(default_factory=dict)
    map_px: dict = field(default_factory=dict)
    frames: int = 0
    level: int = 0
    margin: float = 0.0
    min_px: float = 0.0

    def report(self) -> dict:
        return {
            "model": self.model,
            "frames": self.frames,
            "level": self.level,
            "margin": self.margin,
            "min_px": self.min_px,
            "heldout_residual": {m: round(v, 6) for m, v in self.heldout.items()},
            "map_difference_px": {m: round(v, 5) for m, v in self.map_px.items()},
        }


def fold_points(B, ref, finest: int) -> list[dict]:
    """Two complementary halves of the reference's points at every level >=
    ``finest``, split by a checkerboard of the point-selection grid's cells:
    each half is fitted and the other measures, so the reference's own noise
    (shared by every frame, and spatially correlated through blur and
    resampling) cannot reward a richer model's overfit."""
    cell = max(ref.width, ref.height) / ref.config.grid_cells
    halves = [{}, {}]
    for level in range(finest, ref.levels):
        pts = ref.points[level]
        parity = (B.xp.floor(pts[S.PT_X] / cell) + B.xp.floor(pts[S.PT_Y] / cell)) % 2
        for k in (0, 1):
            halves[k][level] = pts[:, parity == k]
    return halves


def choose_model(B, ref, frames: list[FrameLevels]) -> ModelChoice:
    """The simplest motion model whose fit is not clearly beaten by a richer one.

    Every model is fitted, coarse to fine down to pyramid level 1 (level 0 on
    single-level pyramids), to each of ``frames`` on one half of the
    reference's points (:func:`fold_points`); its robust residual is measured
    on the other half, then the halves swap.  The Huber scale of that measure
    is the same for every model (the richest model's fit), so the residuals
    compare like with like.  Models are tried from the simplest: the first
    that no richer model clearly beats is chosen, where clearly beating
    means both a held-out residual lower by more than ``select_margin``
    (relative) and a map that differs by more than ``select_px`` (RMS over a
    grid of the frame, averaged over the fits): a real gain in prediction
    that also matters at the scale of the alignment's accuracy.  A held-out
    measure does not improve
    by fitting noise, so richer models win only where the motion has their
    degrees of freedom (a phone's perspective: homography), and an
    unnecessary one is not taken for its extra freedom alone (on synthetic
    rotation + zoom + shift bursts it lowers the error of the map).
    """
    cfg = ref.config
    finest = 1 if ref.levels > 1 else 0
    halves = fold_points(B, ref, finest)
    richest = MOTION_MODELS[-1]
    totals = {m: 0.0 for m in MOTION_MODELS}
    counts = {m: 0.0 for m in MOTION_MODELS}
    used = 0
    maps = []  # per frame and fold: {model: T}
    for levels in frames:
        ee, nn = {}, {}
        start = coarse_start(B, ref, levels)  # the same for every model and fold
        for k in (0, 1):
            states = {m: align(B, ref, levels, m, finest, halves[k], finalize=False, start=start)
                      for m in MOTION_MODELS}
            maps.append({m: B.asnumpy(st[S.S_T]).reshape(3, 3) for m, st in states.items()})
            sigma = states[richest][S.S_RMS]
            for m in MOTION_MODELS:
                st = states[m]
                st[S.S_SIGMA] = sigma
                st[S.S_REDESCEND] = 0.0  # the measure is Huber's at one scale for all models
                sums = B.asnumpy(B.align_reduce(levels.coef[finest], halves[1 - k][finest], st, MODEL_ID[m], finest,
                                                ref.norm, ref.margin(finest), 0))
                ok = float(B.asnumpy(st[S.S_STATUS])) == S.STATUS_OK and sums[S.SUM_COUNT] > 0
                if ok and np.isfinite(sums[S.SUM_WEE]):
                    ee[m] = ee.get(m, 0.0) + float(sums[S.SUM_WEE])
                    nn[m] = nn.get(m, 0.0) + float(sums[S.SUM_COUNT])
                else:
                    ee[m] = float("inf")  # a model that fails on a frame the others fit is not chosen
                    nn[m] = 1.0
        if all(ee[m] == float("inf") for m in MOTION_MODELS):
            continue  # a frame no model fits (a stray frame) says nothing about the motion
        used += 1
        for m in MOTION_MODELS:
            totals[m] += ee[m]
            counts[m] += nn[m]
    if used == 0:
        raise AlignmentError(f"no motion model could be fitted to any of the first {len(frames)} frames "
                             "(for --motion auto); is this a burst of one static scene?")
    mean = {m: totals[m] / counts[m] for m in MOTION_MODELS}
    best = min(mean.values())
    heldout = {m: (mean[m] / best if best > 0 else 1.0) for m in MOTION_MODELS}

    def map_px(a: str, b: str) -> float:
        d = [grid_rms_error(t[a], t[b], ref.width, ref.height) for t in maps]
        d = [v for v in d if np.isfinite(v)]
        return float(np.sqrt(np.mean(np.square(d)))) if d else float("inf")

    def beats(r: str, m: str) -> bool:
        return heldout[r] * (1.0 + cfg.select_margin) < heldout[m] and map_px(r, m) > cfg.select_px

    chosen = richest
    for i, m in enumerate(MOTION_MODELS):
        if not any(beats(r, m) for r in MOTION_MODELS[i + 1 :]):
            chosen = m
            break
    diffs = {m: map_px(m, chosen) for m in MOTION_MODELS}
    return ModelChoice(chosen, heldout, diffs, used, finest, cfg.select_margin, cfg.select_px)


def align_frame(B, ref, frame):
    """Align one frame (uint8/uint16 on the backend) to the reference; its state vector."""
    return align(B, ref, frame_levels(B, ref, frame))


def drop_reason(state, config: AlignConfig) -> str | None:
    """Human-readable reason a frame was dropped (None if it was merged);
    ``state`` is a :class:`~superres_gpu.state.FrameState`."""
    if state.accepted:
        return None
    if state.status == S.STATUS_SINGULAR:
        return "alignment failed: too little texture or overlap to solve the motion"
    if state.status == S.STATUS_NONFINITE:
        return "alignment failed: the solution diverged"
    if state.status == S.STATUS_IMPLAUSIBLE:
        return "alignment failed: implausible motion (diverged)"
    if state.status == S.STATUS_LOW_OVERLAP:
        return (f"alignment failed: covers only {100 * state.overlap:.0f}% of the reference "
                f"(< {100 * config.min_overlap:.0f}%)")
    if state.status == S.STATUS_LOW_CORR:
        return f"alignment failed: correlation with the reference {state.corr:.2f} < {config.min_corr:.2f}"
    return "alignment failed"
