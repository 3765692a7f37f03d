"""Every aligner the accuracy benchmark compares, behind one interface.

``prepare(reference) -> ctx`` runs once per burst, ``align(ctx, frame) -> T``
once per frame; T maps frame pixels to reference pixels (3x3), or is None
when the method fails.  Frames are uint8/uint16 RGB arrays on the host.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ..backends import get_backend
from .baselines import akaze_create, akaze_homography, ecc_transform, to_grey8

_NB = get_backend("numpy")


@dataclass
class Aligner:
    name: str
    family: str  # "superres_gpu", "OpenCV", "scikit-image", "original scripts"
    backend: str  # where it runs: "numpy", "cupy", "cpu"
    prepare: Callable[[np.ndarray], Any]
    align: Callable[[Any, np.ndarray], Any]
    note: str = ""
    unavailable: str | None = None  # reason it cannot run here
    extra: dict = field(default_factory=dict)
    # aligners that need the whole burst: frames (reference first) -> T per other frame (None: failed);
    # prepare/align are then unused
    align_burst: Callable[[list], list] | None = None


def _luma(frame) -> np.ndarray:
    return _NB.luma(frame)


def _translation(dx: float, dy: float) -> np.ndarray:
    return np.array([[1.0, 0.0, dx], [0.0, 1.0, dy], [0.0, 0.0, 1.0]])


def ours(model: str, backend_name: str) -> Aligner:
    from ..align import AlignConfig, align_frame
    from ..reference import Reference
    from ..state import FrameState

    B = get_backend(backend_name)

    def prepare(ref):
        return Reference(B, B.asarray(ref), AlignConfig(model=model))

    def align(r, frame):
        st = FrameState.from_vector(B.asnumpy(align_frame(B, r, B.asarray(frame))))
        return st.T if st.accepted else None

    return Aligner(f"superres_gpu {model}", "superres_gpu", B.name, prepare, align)


def ours_auto(backend_name: str, refine: bool, local: str | None = None) -> Aligner:
    """The pipeline's alignment: ``--motion auto`` (chosen on the first three
    frames), and with ``refine`` (as ``--refine``) every frame aligned against
    the template made from the reference and the first
    ``TEMPLATE_FRAMES`` - 1 others; with ``local`` (``auto`` or ``on``, as
    ``--local``) each frame's displacement field too: its entries are then
    (T, field, cell), field None where none was applied."""
    import dataclasses

    from ..align import AlignConfig, align, choose_model, frame_levels
    from ..local import LocalRefiner
    from ..reference import Reference
    from ..state import FrameState
    from ..backends import base as S
    from ..template import REFINE_FROM_LEVEL, TEMPLATE_FRAMES, make_template

    B = get_backend(backend_name)

    def align_burst(frames):
        first = B.asarray(frames[0])
        ref = ref0 = Reference(B, first, AlignConfig(model="auto"))
        levels = [frame_levels(B, ref, B.asarray(f)) for f in frames[1:]]
        choice = choose_model(B, ref, levels[: ref.config.select_frames])
        ref.config = dataclasses.replace(ref.config, model=choice.model)
        if refine:
            k = TEMPLATE_FRAMES - 1
            firsts = [(lv, align(B, ref, lv)) for lv in levels[:k]]
            ref = Reference(B, make_template(B, ref, firsts), ref.config)
            starts = [st if B.asnumpy(st)[S.S_ACCEPT] != 0.0 else None for _, st in firsts]
        else:
            starts = []
        # the field maps each frame onto the reference frame's own geometry (the output grid's), not onto
        # the template's, whose rows average the first frames' rolling-shutter wobble
        refiner = None if local is None else LocalRefiner(B, ref0, local)
        out = []
        for j, lv in enumerate(levels):
            start = starts[j] if j < len(starts) else None
            st = align(B, ref, lv) if start is None else align(B, ref, lv, start=start, coarsest=REFINE_FROM_LEVEL)
            res = None if refiner is None else refiner.refine(lv, st)
            fs = FrameState.from_vector(B.asnumpy(st))
            T = fs.T if fs.accepted else None
            if refiner is None or T is None:
                out.append(T)
            else:
                applied = res is not None and res.field is not None  # auto: a probed frame may get no field
                out.append((T, B.asnumpy(res.field) if applied else None, res.cell if applied else 0.0))
        return out

    name = "superres_gpu auto + template" if refine else "superres_gpu auto"
    if local is not None:
        name += f" + local {local}"
    note = ("--refine" if refine else "--no-refine") if local is None else f"--local {local}"
    return Aligner(name, "superres_gpu", B.name, None, None, note, align_burst=align_burst)


def cv_phase_correlate() -> Aligner:
    import cv2

    def prepare(ref):
        lum = _luma(ref)
        win = cv2.createHanningWindow((lum.shape[1], lum.shape[0]), cv2.CV_32F)
        return lum, win

    def align(ctx, frame):
        ref, win = ctx
        (sx, sy), _ = cv2.phaseCorrelate(ref, _luma(frame), win)
        return _translation(-sx, -sy)

    return Aligner("OpenCV phaseCorrelate (Hann)", "OpenCV", "cpu", prepare, align, "translation")


def cv_phase_correlate_iterative() -> Aligner:
    import cv2

    if not hasattr(cv2, "phaseCorrelateIterative"):
        return Aligner("OpenCV phaseCorrelateIterative", "OpenCV", "cpu", None, None,
                       unavailable=f"not in OpenCV {cv2.__version__}")

    def prepare(ref):
        return _luma(ref)

    def align(ref, frame):
        sx, sy = cv2.phaseCorrelateIterative(ref, _luma(frame))
        return _translation(-sx, -sy)

    return Aligner("OpenCV phaseCorrelateIterative", "OpenCV", "cpu", prepare, align, "translation")


def cv_ecc(model: str) -> Aligner:
    def prepare(ref):
        return _luma(ref)

    def align(ref, frame):
        return ecc_transform(ref, _luma(frame), model)

    return Aligner(f"OpenCV findTransformECC {model}", "OpenCV", "cpu", prepare, align, model)


def skimage_pcc() -> Aligner:
    try:
        from skimage.registration import phase_cross_correlation
    except ImportError as e:
        return Aligner("scikit-image phase_cross_correlation (upsample 100)", "scikit-image", "cpu", None, None,
                       unavailable=f"scikit-image not installed ({e})")
    import cv2

    def prepare(ref):
        lum = _luma(ref)
        win = cv2.createHanningWindow((lum.shape[1], lum.shape[0]), cv2.CV_32F)
        return (lum - lum.mean()) * win, win

    def align(ctx, frame):
        ref, win = ctx
        lum = _luma(frame)
        shift, _, _ = phase_cross_correlation(ref, (lum - lum.mean()) * win, upsample_factor=100)
        return _translation(float(shift[1]), float(shift[0]))

    return Aligner("scikit-image phase_cross_correlation (upsample 100)", "scikit-image", "cpu", prepare, align,
                   "translation; Hann window as for OpenCV")


def original_akaze() -> Aligner:
    import cv2

    def prepare(ref):
        det = akaze_create()
        h, w = ref.shape[:2]
        up = cv2.resize(ref, (2 * w, 2 * h), interpolation=cv2.INTER_CUBIC)
        kp, desc = det.detectAndCompute(to_grey8(up), None)
        return det, kp, desc

    def align(ctx, frame):
        det, kp, desc = ctx
        h, w = frame.shape[:2]
        up = cv2.resize(frame, (2 * w, 2 * h), interpolation=cv2.INTER_CUBIC)
        H = akaze_homography(kp, desc, to_grey8(up), det)
        if H is None:
            return None
        C = np.array([[2.0, 0, 0.5], [0, 2.0, 0.5], [0, 0, 1.0]])  # input -> 2x pixel coordinates
        return np.linalg.inv(C) @ H @ C

    return Aligner("original: AKAZE + RANSAC homography on 2x cubic", "original scripts", "cpu", prepare, align,
                   "homography")


def all_aligners(backends: list[str]) -> list[Aligner]:
    from ..geometry import MOTION_MODELS

    out = [ours(m, b) for b in backends for m in MOTION_MODELS]
    out += [ours_auto(b, refine) for b in backends for refine in (False, True)]
    out += [ours_auto(b, True, "auto") for b in backends]  # the defaults, local refinement included
    out += [
        cv_phase_correlate(),
        cv_phase_correlate_iterative(),
        cv_ecc("translation"),
        cv_ecc("euclidean"),
        cv_ecc("homography"),
        skimage_pcc(),
        original_akaze(),
    ]
    return out
