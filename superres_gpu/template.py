"""The denoised template: a first merge brought back to the reference's grid.

Every frame is first registered to one noisy reference; that reference's
noise enters every estimate (its values and the inverse-compositional
steps' gradients), and it is the same for every frame, so it does not
average out over the burst.  With ``--refine`` (the default) the lumas of the
reference and the first :data:`TEMPLATE_FRAMES` - 1 other frames, aligned to
the reference, are merged at :data:`TEMPLATE_SCALE` with the robust weights;
the merge, area-averaged back onto the reference's pixel grid, is the template
that every frame is then aligned against (those first frames again), in the
same single pass over the burst.  Five frames already bring the error to
within a few per cent of what a template from the whole burst gives
(``benchmarks/RESULTS.md``), so the cost is a fixed handful of extra
alignments per burst, not a second pass.

Area-averaging the 2x merge re-creates the sensor's pixel integration at
the reference pose, aliasing included: the template is what a noise-free
frame at the reference pose would look like, so frames are compared with
like.  (The mean of the frames resampled at scale 1 is not: resampling
smooths the aliased detail differently at each sub-pixel phase, and aligning
against it is less accurate than against the noisy reference.)
"""

from __future__ import annotations

import numpy as np

TEMPLATE_SCALE = 2.0  # scale of the first merge the template is made from
TEMPLATE_FRAMES = 5  # frames merged into the template: the reference and the first four others
# those four, aligned to the reference already, are aligned to the template from their state there,
# on the pyramid levels from this one down (not from the phase correlation up)
REFINE_FROM_LEVEL = 0


def area_weights(n_out: int, n_ref: int, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """(index, weight), each (K, n_ref): reference pixel x is the weighted sum
    of output pixels ``index[k, x]`` with ``weight[k, x]`` (one axis).

    Reference pixel x covers [x - 0.5, x + 0.5]; output pixel X at ``scale``
    covers [X / s - 0.5, (X + 1) / s - 0.5] (the package's grid convention).
    Weights are the overlaps, normalised to sum to 1 (at the borders too)."""
    k = int(np.ceil(scale)) + 1
    x = np.arange(n_ref, dtype=np.float64)
    first = np.floor(x * scale).astype(np.int64)  # output pixel holding the left edge x - 0.5
    idx = first[None, :] + np.arange(k)[:, None]
    lo = np.maximum(idx / scale - 0.5, x[None, :] - 0.5)
    hi = np.minimum((idx + 1) / scale - 0.5, x[None, :] + 0.5)
    w = np.clip(hi - lo, 0.0, None)
    w[(idx < 0) | (idx >= n_out)] = 0.0
    w /= np.maximum(w.sum(axis=0, keepdims=True), 1e-12)
    return np.clip(idx, 0, n_out - 1), w.astype(np.float32)


def template_frame(B, mean, scale: float, width: int, height: int, max_value: float):
    """The merge ``mean`` (H_out, W_out, C) float32 in the input's value units,
    on the backend, area-averaged onto the width x height reference grid: a
    uint16 frame (grey when C is 1) on the backend, at full scale 65535."""
    xp = B.xp
    ho, wo = mean.shape[:2]
    iy, wy = (B.asarray(a) for a in area_weights(ho, height, scale))
    ix, wx = (B.asarray(a) for a in area_weights(wo, width, scale))
    rows = xp.zeros((height, wo, mean.shape[2]), dtype=xp.float32)
    for k in range(iy.shape[0]):
        rows += mean[iy[k]] * wy[k][:, None, None]
    out = xp.zeros((height, width, mean.shape[2]), dtype=xp.float32)
    for k in range(ix.shape[0]):
        out += rows[:, ix[k]] * wx[k][None, :, None]
    out *= np.float32(65535.0 / max_value)
    frame = xp.clip(xp.rint(out), 0, 65535).astype(xp.uint16)
    return frame[..., 0] if frame.shape[2] == 1 else frame


def make_template(B, ref, others, noise=None):
    """The template frame (uint16 grey on the backend, :func:`template_frame`)
    from the reference ``ref`` and ``others``: [(FrameLevels, its state aligned
    to ``ref``)], weighed against ``ref`` as the robust merge weighs frames
    (``noise``: a raw file's NoiseModel, or None).

    Only the luma is merged (the pyramids' level 0, float32 in [0, 1]): the
    template serves the alignment, which reads nothing else, and the luma of
    a merge is the merge of the lumas (both are linear and the weights are
    per pixel), at a third of the resampling work of three channels."""
    from .merge import Accumulator
    from .robust import RobustWeights

    luma = ref.pyramid[0]
    h, w = luma.shape
    acc = Accumulator(B, w, h, 1, TEMPLATE_SCALE, 1.0)
    weights = RobustWeights(B, ref, robust=True, noise=noise)
    acc.add(luma, ref.state(), None, weights.level)
    for levels, state in others:
        acc.add(levels.pyramid[0], state, weights.for_frame(levels, state)[0], weights.level)
    mean, _ = acc.take_mean()
    return template_frame(B, mean, TEMPLATE_SCALE, w, h, 1.0)
