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
    photometric gain/offset (exposure changes) and Huber weights (movers,
    noise outliers).  The coarsest level refines a similarity (or the simpler
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

from dataclasses import dataclass

from .backends import base as S
from .errors import ConfigError
from .geometry import MODEL_ID, MODEL_NPARAMS, MOTION_MODELS
from .interp import bspline_prefilter_taps
from .reference import build_pyramid

DEFAULT_MODEL = "homography"


@dataclass
class AlignConfig:
    """Tuning of the aligner; the defaults are what the benchmarks measured best."""

    model: str = DEFAULT_MODEL
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

    def validate(self) -> None:
        if self.model not in MOTION_MODELS:
            raise ConfigError(f"unknown motion model {self.model!r}; choose one of {', '.join(MOTION_MODELS)}")
        if self.pc_size < 32:
            raise ConfigError("pc_size must be at least 32")


def coarse_model(model: str) -> str:
    """The model refined first at the coarsest level."""
    return model if MODEL_NPARAMS[model] <= MODEL_NPARAMS["similarity"] else "similarity"


def schedule(ref) -> list[tuple[int, str, int]]:
    """[(level, model, iterations), ...] coarse to fine, for a Reference."""
    cfg = ref.config
    coarse = coarse_model(cfg.model)
    steps = []
    levels = list(range(ref.pc_level, -1, -1))
    for i, level in enumerate(levels):
        if i == 0:
            steps.append((level, coarse, cfg.iters_coarse))
            if len(levels) == 1:
                steps.append((level, cfg.model, cfg.iters_fine))
        elif level == 0:
            steps.append((level, cfg.model, cfg.iters_fine))
        else:
            steps.append((level, cfg.model, cfg.iters_mid))
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


def align(B, ref, levels: FrameLevels):
    """Align a frame, given its :class:`FrameLevels`, to the reference.

    Returns the frame's state vector on the backend (``backends.base``
    layout): T, Tinv, photometric gain/offset, diagnostics and the accept flag.
    """
    cfg = ref.config
    state = B.asarray(S.identity_state())
    surface = B.phase_correlation(ref.spectrum, levels.pyramid[ref.pc_level], ref.window)
    B.peak_to_state(surface, state, ref.pc_level)
    for level, model, iters in schedule(ref):
        mid = MODEL_ID[model]
        margin = ref.margin(level)
        for it in range(iters):
            sums = B.align_reduce(levels.coef[level], ref.points[level], state, mid, level, ref.norm, margin, it)
            B.align_update(sums, state, mid, ref.norm, cfg.damping, cfg.converged_px, it)
    B.align_finalize(state, ref.width, ref.height, cfg.min_corr, cfg.min_overlap)
    return state


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
