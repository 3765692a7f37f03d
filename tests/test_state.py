"""The typed host view of a frame's alignment state."""

from __future__ import annotations

import numpy as np

from superres_gpu.backends import base as S
from superres_gpu.state import FrameState, transform_state


def test_frame_state_names_the_vector_fields():
    T = np.array([[1.0, 0.002, 3.5], [-0.002, 1.0, -1.25], [0, 0, 1.0]])
    v = transform_state(T, S_GAIN=1.05, S_OFFSET=-0.01, S_RMS=0.02, S_CORR=0.97, S_STATUS=S.STATUS_LOW_CORR)
    v[S.S_ACCEPT] = 0.0
    st = FrameState.from_vector(v)
    np.testing.assert_array_equal(st.T, T)
    np.testing.assert_allclose(st.Tinv @ st.T, np.eye(3), atol=1e-15)
    assert (st.gain, st.offset, st.rms, st.corr) == (1.05, -0.01, 0.02, 0.97)
    assert st.status == S.STATUS_LOW_CORR and not st.accepted
    v[S.S_T] = 0  # a view is a copy: later changes to the vector do not reach it
    assert st.T[0, 0] == 1.0


def test_identity_state_is_accepted():
    st = FrameState.from_vector(S.identity_state())
    assert st.accepted and st.status == S.STATUS_OK and np.array_equal(st.T, np.eye(3))
