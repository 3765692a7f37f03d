"""Lateral chromatic aberration: the red and blue images against the green one.

Many phone lenses image red and blue at slightly different magnifications
than green (a few tenths of a percent): colour fringes that grow towards
the corners.  The model per channel is a radial scale ``s`` about a centre
``(cx, cy)``: the channel's image at position p shows what green shows at
``c + (p - c) / (1 + s)``.

The estimate aligns each channel's edge strength (gradient magnitude) in a
frame to its green channel's with the aligner itself (phase correlation,
then Gauss-Newton on a similarity: a zoom about the frame's centre, plus a
shift that moves the centre and a rotation that should come out near zero),
on one or more frames, and takes the median of each parameter.  Edge
strength rather than intensity: coloured patches give the channels edges of
opposite sign in the same place (see :func:`edge_strength`).

Frames whose chroma is stored at a lower resolution than their luma (JPEG
and HEIC with 4:2:0 or 4:2:2 subsampling, what phones write) hold each
colour channel's own position only in its low band: their fine detail is
rebuilt from the luma, mostly green, in all three channels.  On such frames
the edge strengths are compared after a Gaussian blur (:data:`ESTIMATE_SIGMA`
per subsampling factor), where the chroma planes carry the channels' own
edges, and the correction moves only each channel's low band
(:meth:`TCAEstimate.band_taps`, the backend's ``tca_band``): moving the whole
channel would move the luma's detail in it too, which no lens put there
(on the synthetic 4:2:0 bursts that makes the merge worse than no correction).

On lossless frames the correction enters the merge's single resampling step:
each colour channel is read at its own position (:meth:`TCAEstimate.channel_maps`),
so no frame is resampled twice; on subsampled frames the low band is moved
once per frame before the merge reads it (a band below half the frame's
Nyquist frequency: bilinear reads of it lose nothing the merge keeps).  A
cubic radial term is not estimated.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .align import AlignConfig, align_frame
from .errors import AlignmentError
from .reference import Reference
from .state import FrameState

CHANNELS = {"red": 0, "blue": 2}
MIN_CORNER_PX = 0.1  # --tca auto corrects when either channel moves more than this at a corner
# chroma-subsampled frames, per subsampling factor (2 for 4:2:0): the blur (frame px, Gaussian sigma)
# before the edge strengths are compared (on synthetic 4:2:0 JPEG bursts the scale comes out at 91-104 %
# of the truth at quality 92, where the unblurred estimate is at 35-45 %), and the low band the
# correction moves (its Gaussian sigma: 1 px for 4:2:0 puts the band where the chroma planes hold it)
ESTIMATE_SIGMA = 1.25
BAND_SIGMA = 0.5


@dataclass(frozen=True)
class ChannelTCA:
    """One channel's radial model against green."""

    scale: float  # s: magnification 1 + s against green
    cx: float  # centre, frame pixels
    cy: float
    rotation_deg: float  # should be near zero; a large value says the estimate is not to be trusted

    def matrix(self) -> np.ndarray:
        """3x3 map from green positions to this channel's positions (pixel coordinates)."""
        k = 1.0 + self.scale
        return np.array([[k, 0.0, self.cx * (1 - k)], [0.0, k, self.cy * (1 - k)], [0.0, 0.0, 1.0]])


@dataclass(frozen=True)
class TCAEstimate:
    red: ChannelTCA
    blue: ChannelTCA
    width: int
    height: int
    frames: int
    chroma: tuple = (1, 1)  # the frames' chroma subsampling (horizontal, vertical): (2, 2) for 4:2:0

    @property
    def subsampled(self) -> bool:
        return max(self.chroma) > 1

    def band_taps(self) -> np.ndarray | None:
        """The Gaussian taps of the low band that the correction moves on
        chroma-subsampled frames (``tca_band``); None on full-chroma frames,
        where whole channels are read at their maps."""
        if not self.subsampled:
            return None
        from .interp import gaussian_taps

        return gaussian_taps(BAND_SIGMA * max(self.chroma))

    def corner_shift_px(self) -> dict:
        """Per channel, the largest displacement (px) the model implies at the frame's corners."""
        xs = np.array([0.0, self.width - 1.0, 0.0, self.width - 1.0])
        ys = np.array([0.0, 0.0, self.height - 1.0, self.height - 1.0])
        out = {}
        for name, ch in (("red", self.red), ("blue", self.blue)):
            M = ch.matrix()
            u = M[0, 0] * xs + M[0, 2]
            v = M[1, 1] * ys + M[1, 2]
            out[name] = float(np.max(np.hypot(u - xs, v - ys)))
        return out

    def channel_maps(self) -> np.ndarray:
        """(3, 9) float64: row-major green -> channel maps for red, green (identity), blue,
        as the resample step takes them."""
        return np.stack([self.red.matrix().ravel(), np.eye(3).ravel(), self.blue.matrix().ravel()])

    def matters(self) -> bool:
        """Whether either channel moves by more than MIN_CORNER_PX at a corner."""
        return max(self.corner_shift_px().values()) > MIN_CORNER_PX

    def report(self) -> dict:
        shift = self.corner_shift_px()
        return {
            name: {"scale": ch.scale, "centre": [ch.cx, ch.cy], "rotation_deg": ch.rotation_deg,
                   "corner_shift_px": shift[name]}
            for name, ch in (("red", self.red), ("blue", self.blue))
        } | {"frames": self.frames, "chroma_subsampling": list(self.chroma),
             "correction": "chroma band" if self.subsampled else "channels"}


def channel_transform(B, frame, channel: int, config: AlignConfig | None = None,
                      blur: float = 0.0) -> np.ndarray | None:
    """T (3x3) mapping ``channel``'s pixel positions to green's in one RGB
    frame (host array), or None when the channel could not be aligned; with
    ``blur`` (Gaussian sigma, px) both channels are blurred first."""
    cfg = config or AlignConfig(model="similarity")
    green, other = (edge_strength(_blurred(frame[..., c], blur)) for c in (1, channel))
    top = max(float(green.max()), float(other.max()), 1e-12)
    ref = Reference(B, B.asarray(_to_u16(green, top)), cfg)
    st = FrameState.from_vector(B.asnumpy(align_frame(B, ref, B.asarray(_to_u16(other, top)))))
    return st.T if st.accepted else None


def edge_strength(channel: np.ndarray) -> np.ndarray:
    """Gradient magnitude of one channel (float32, host).  Where a coloured
    patch makes red darker and green brighter than their surroundings, the
    channels' edges have opposite signs in the same place: their intensities
    pull the fit (above all the shift, hence the centre) astray, their edge
    strengths agree."""
    import cv2

    c = channel.astype(np.float32)
    gx = cv2.Sobel(c, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(c, cv2.CV_32F, 0, 1, ksize=3)
    return np.sqrt(gx * gx + gy * gy)


def _blurred(channel: np.ndarray, sigma: float) -> np.ndarray:
    if sigma <= 0:
        return channel
    import cv2

    return cv2.GaussianBlur(channel.astype(np.float32), (0, 0), sigma, borderType=cv2.BORDER_REPLICATE)


def _to_u16(img: np.ndarray, top: float) -> np.ndarray:
    return np.clip(np.rint(img * (65535.0 / top)), 0, 65535).astype(np.uint16)


def _channel_model(T: np.ndarray) -> tuple[float, float, float, float]:
    """(s, cx, cy, rotation_deg) of a channel -> green similarity T."""
    A = T[:2, :2] / T[2, 2]
    t = T[:2, 2] / T[2, 2]
    zoom = float(np.sqrt(abs(np.linalg.det(A))))
    rot = float(np.degrees(np.arctan2(A[1, 0] - A[0, 1], A[0, 0] + A[1, 1])))
    # green position g = A r + t; the channel at r shows green's c + (r - c) / (1 + s): A = I / (1 + s)
    s = 1.0 / zoom - 1.0
    # the fixed point of the map is the centre; ill-conditioned when s is tiny, so it is the least-squares
    # solution of (I - A) c = t with a small ridge towards the origin of t
    IA = np.eye(2) - A
    c = np.linalg.solve(IA.T @ IA + 1e-12 * np.eye(2), IA.T @ t)
    return s, float(c[0]), float(c[1]), rot


def estimate(B, frames: list, chroma: tuple = (1, 1)) -> TCAEstimate:
    """The burst's radial model of red and blue against green: the median over
    ``frames`` (RGB host arrays) of each channel's per-frame estimate;
    ``chroma``: the frames' chroma subsampling (horizontal, vertical), which
    sets where the channels are compared (see the module's notes).

    Raises :class:`~superres_gpu.errors.AlignmentError` when no frame gives one
    (grey frames, or too little texture)."""
    if not frames or frames[0].ndim != 3 or frames[0].shape[2] != 3:
        raise AlignmentError("chromatic aberration needs colour (RGB) frames")
    h, w = frames[0].shape[:2]
    per = {name: [] for name in CHANNELS}
    for f in frames:
        for name, ch in CHANNELS.items():
            T = channel_transform(B, f, ch, blur=ESTIMATE_SIGMA * max(chroma) if max(chroma) > 1 else 0.0)
            if T is not None:
                per[name].append(_channel_model(T))
    if not per["red"] or not per["blue"]:
        raise AlignmentError("no frame's red and blue channels could be aligned to its green channel")
    models = {}
    for name, rows in per.items():
        a = np.median(np.array(rows), axis=0)
        models[name] = ChannelTCA(float(a[0]), float(a[1]), float(a[2]), float(a[3]))
    return TCAEstimate(models["red"], models["blue"], w, h, min(len(per["red"]), len(per["blue"])),
                       (int(chroma[0]), int(chroma[1])))
