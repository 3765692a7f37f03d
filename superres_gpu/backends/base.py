"""The backend protocol and the layouts its kernels share.

A backend owns the hot loops.  Each kernel method of :class:`Backend` has two
implementations with the same signature: a CUDA kernel (``CupyBackend``) and
its NumPy/OpenCV twin (``NumpyBackend``), which is the specification the
kernel is tested against.  Stage modules (reference, align, robust, merge,
restore) hold the algorithm once and call these.  Backends are made only by
:func:`superres_gpu.backends.get_backend`.

When stage code may use ``B.xp`` (numpy or cupy) directly
    For allocating arrays (``zeros``, ``empty``, ``stack``) and for plain
    elementwise arithmetic and reductions whose result is the same on NumPy
    and CuPy and that read nothing back to the host (``a * b``,
    ``maximum(..., out=)``, ``a.sum()`` kept on the device).  Anything that
    needs floating-point error control (``np.errstate``), a host read, a
    sort or median, or a loop over pixels is a backend method with a twin.

Per-frame alignment state lives in a small float64 vector (``STATE_LEN``)
that stays on the backend's device, so the whole align -> accumulate chain for
a frame runs without a device-to-host copy.  Its layout is given by the
``S_*`` indices below (mirrored by ``SR_S_*`` in ``kernels/common.cuh``).
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from ..pixels import LUMA_WEIGHTS  # noqa: F401  (ITU-R BT.601, as in JPEG: the backends' luma)

STATE_LEN = 32
S_T = slice(0, 9)  # 3x3 frame -> reference, row-major
S_TINV = slice(9, 18)  # 3x3 reference -> frame
S_GAIN = 18  # photometric gain a: reference ~ a * frame + c (luma units)
S_OFFSET = 19  # photometric offset c (luma units, 0..1)
S_SIGMA = 20  # robust residual scale for the next iteration (an M-estimate, see SCALE_C); 0 = none
S_ACCEPT = 21  # 1.0 when the frame is merged, 0.0 when it is dropped
S_STEP = 22  # size of the last update, max corner displacement in px
S_RMS = 23  # RMS residual of the last iteration (luma units)
S_CORR = 24  # correlation coefficient frame vs reference (last iteration)
S_OVERLAP = 25  # fraction of the reference's points the frame covers
S_PC_PEAK = 26  # phase-correlation peak height (0..1)
S_NVALID = 27  # number of valid points in the last iteration
S_STATUS = 28  # 0 ok; see STATUS_* below
S_ITERS = 29  # number of refinement iterations run
S_CONVERGED = 30  # 1.0 once a level's step fell below converged_px: its remaining iterations are skipped
S_REDESCEND = 31  # 1.0: Tukey's biweight instead of Huber's weight (points beyond TUKEY_C scales count nothing)

STATUS_OK = 0
STATUS_SINGULAR = 1  # too little texture / too few valid points to solve
STATUS_NONFINITE = 2  # the solve produced NaN/inf
STATUS_IMPLAUSIBLE = 3  # flip, wild zoom or perspective: diverged
STATUS_LOW_CORR = 4
STATUS_LOW_OVERLAP = 5
STATUS_DISAGREES = 6  # aligned, but its content differs from the reference beyond what noise explains

# Alignment reduction vector (``align_reduce`` -> ``align_update``).
SUMS_LEN = 64
SUM_H = 0  # 36 entries: upper triangle of the 8x8 normal matrix, row-major
SUM_G = 36  # 8 entries: J^T W e
SUM_COUNT = 44  # valid points
SUM_W = 45  # sum of robust weights
SUM_WEE = 46  # sum w e^2
SUM_EE = 47  # sum e^2
SUM_S = 48  # sum of sampled frame values s
SUM_SS = 49
SUM_SR = 50
SUM_R = 51
SUM_RR = 52
SUM_N = 53  # all points (valid or not)
SUM_RHO = 54  # SCALE_STEPS entries: sum of rho(e / (SCALE_C s_k)) at the trial scales s_k (see scale_trials)
SUM_WS = 59  # sum w s: the weighted moments the photometric gain/offset are fitted from (movers left out)
SUM_WSS = 60
SUM_WR = 61
SUM_WRR = 62

# Points layout for ``align_reduce``: float32 array of shape (5, N).
PT_X, PT_Y, PT_R, PT_GX, PT_GY = range(5)

HUBER_K = 1.345
# Robust weights and scale of the alignment's residuals.  Tukey's biweight at
# TUKEY_C scales (95 % efficiency at the normal) gives a point far off the
# template (a passer-by) no weight at all, where Huber's weight still lets it
# pull.  The scale is the biweight M-estimate of scale (Rousseeuw & Yohai
# 1984: mean rho(e / (SCALE_C s)) = SCALE_DELTA, rho bounded by 1; consistent
# at the normal and with a 50 % breakdown point), solved on the fly: each
# reduction sums rho at SCALE_STEPS trial scales around the current one
# (ratios 2^((k - SCALE_STEPS // 2) / 2)) and the update interpolates the
# root between the two bracketing trials (in log scale).  The RMS, which the
# movers inflate, only starts it.
TUKEY_C = 4.685
SCALE_C = 1.547
SCALE_DELTA = 0.5
SCALE_STEPS = 5


def scale_trials(sigma: float) -> np.ndarray:
    """The trial scales whose rho sums ``align_reduce`` returns (SUM_RHO...)."""
    return sigma * 2.0 ** ((np.arange(SCALE_STEPS) - SCALE_STEPS // 2) / 2.0)


def upper_index(i: int, j: int) -> int:
    """Index of H[i, j] (i <= j) in the packed upper triangle of an 8x8 matrix."""
    return i * 8 - i * (i - 1) // 2 + (j - i)


def identity_state() -> np.ndarray:
    s = np.zeros(STATE_LEN, dtype=np.float64)
    s[S_T] = np.eye(3).ravel()
    s[S_TINV] = np.eye(3).ravel()
    s[S_GAIN] = 1.0
    s[S_ACCEPT] = 1.0
    s[S_OVERLAP] = 1.0
    s[S_CORR] = 1.0
    return s


class Backend(Protocol):
    """What a compute backend provides.  Arrays are the backend's own type.

    Both backends implement exactly these public methods (a test checks it),
    with the same parameter names; each kernel method's docstring is on the
    NumPy twin.
    """

    name: str
    xp: Any  # numpy or cupy

    # --- memory, synchronisation, stage timing -----------------------------
    def asarray(self, a, dtype=None): ...  # host -> backend (no copy on NumPy)
    def asnumpy(self, a) -> np.ndarray: ...  # backend -> host
    def host_frame(self, shape, dtype) -> np.ndarray: ...  # a host buffer to decode a frame into (pinned on the GPU)
    def upload_frame(self, host): ...  # a frame on the backend (valid until the frame after next: see frame_done)
    def frame_done(self, frame) -> None: ...  # the frame's last kernel is queued; its buffers may be recycled
    def release_host(self, host) -> None: ...  # a host_frame buffer that will not be uploaded goes back
    def synchronize(self) -> None: ...
    def mark(self): ...  # a point in the work stream (time, or a CUDA event)
    def elapsed(self, m0, m1) -> float: ...  # seconds between two marks
    def wait(self, mark) -> None: ...  # host waits until the device passed mark
    def peak_memory_mib(self) -> float | None: ...  # device memory high-water mark (None: host only)
    def describe(self) -> str: ...  # one line: library versions and device

    # --- kernels (each has a NumPy twin) -----------------------------------
    def luma(self, frame): ...
    def downsample2(self, img): ...
    def sepfilter(self, img, taps): ...
    def gradient(self, img): ...
    def phase_correlation(self, ref_spectrum, img, window): ...
    def reference_spectrum(self, img, window): ...
    def peak_to_state(self, surface, state, level: int) -> None: ...
    def align_reduce(self, img, points, state, model_id: int, level: int, norm, margin: float = 0.0,
                     iteration: int = 0): ...
    def align_update(self, sums, state, model_id: int, norm, damping: float, converged_px: float = 0.0,
                     iteration: int = 0) -> None: ...
    def align_finalize(self, state, width: int, height: int, min_corr: float, min_overlap: float) -> None: ...
    def resample_accumulate(self, frame, state, num, den, scale: float, max_value: float, weights=None,
                            weight_level: int = 1, channel_maps=None, field=None, field_cell: float = 0.0) -> None: ...
    def select_points(self, score, count: int, cells: int): ...
    def tca_band(self, frame, channel_maps, chroma, upsampling: str = "linear", origin=(0, 0)): ...
    def kernel_accumulate(self, frame, state, num, den, scale: float, max_value: float, sigma: float,
                          weights=None, weight_level: int = 1, shape=None, field=None,
                          field_cell: float = 0.0, channel_maps=None) -> None: ...
    def robust_residual(self, coef, ref_img, state, level: int, margin: float, field=None,
                        field_cell: float = 0.0): ...
    def warp_residual(self, coef, ref_img, state, level: int, margin: float, field=None, field_cell: float = 0.0): ...
    def field_median3(self, field, ok): ...
    def local_extrema(self, img, r: int): ...
    def tile_phase_shifts(self, ref_img, img, x0, y0, size: int): ...
    def robust_noise_level(self, e, c, g, beta: float): ...
    def robust_weight(self, e, c, g, scale2, beta: float, k1: float, k2: float, mask=None): ...
    def normalize_u16(self, num, den, value_scale: float): ...
