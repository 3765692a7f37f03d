"""A typed host-side view of a frame's alignment state.

On the backend a frame's state is a small float64 vector (layout in
:mod:`superres_gpu.backends.base`, mirrored by ``kernels/common.cuh``) so that
align -> weights -> accumulate runs on the device without a host sync.  Once a
burst is done the vectors are read back in one copy; :class:`FrameState`
gives their fields names.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .backends import base as S


@dataclass(frozen=True)
class FrameState:
    T: np.ndarray  # 3x3 frame -> reference
    Tinv: np.ndarray  # 3x3 reference -> frame
    gain: float  # photometric gain: reference ~ gain * frame + offset (luma units)
    offset: float
    accepted: bool  # merged (True) or dropped
    status: int  # S.STATUS_*
    step: float  # size of the last update (px)
    rms: float  # RMS residual of the last iteration (luma, 0..1)
    corr: float  # correlation coefficient frame vs reference
    overlap: float  # fraction of the reference's points the frame covers
    pc_peak: float  # phase-correlation peak height (0..1)
    n_valid: int
    iterations: int

    @classmethod
    def from_vector(cls, v) -> "FrameState":
        v = np.asarray(v, dtype=np.float64)
        return cls(
            T=v[S.S_T].reshape(3, 3).copy(),
            Tinv=v[S.S_TINV].reshape(3, 3).copy(),
            gain=float(v[S.S_GAIN]),
            offset=float(v[S.S_OFFSET]),
            accepted=bool(v[S.S_ACCEPT] != 0.0),
            status=int(v[S.S_STATUS]),
            step=float(v[S.S_STEP]),
            rms=float(v[S.S_RMS]),
            corr=float(v[S.S_CORR]),
            overlap=float(v[S.S_OVERLAP]),
            pc_peak=float(v[S.S_PC_PEAK]),
            n_valid=int(v[S.S_NVALID]),
            iterations=int(v[S.S_ITERS]),
        )


def transform_state(T, **fields) -> np.ndarray:
    """A host state vector for the frame -> reference transform ``T`` (accepted,
    unit gain), with other fields set by their ``S_*`` names, e.g.
    ``transform_state(T, S_GAIN=1.1)``."""
    st = S.identity_state()
    T = np.asarray(T, dtype=np.float64)
    st[S.S_T] = T.ravel()
    st[S.S_TINV] = np.linalg.inv(T).ravel()
    for name, value in fields.items():
        st[getattr(S, name)] = value
    return st
