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
on one or more frames (:func:`estimate_frames`: as many as hold
:data:`ESTIMATE_PIXELS`), and takes the median of each parameter.  Edge
strength rather than intensity: coloured patches give the channels edges of
opposite sign in the same place (see :func:`edge_strength`).

Frames whose chroma is stored at a lower resolution than their luma (JPEG
and HEIC with 4:2:0 or 4:2:2 subsampling, what phones write) hold each
colour channel's own position only in its low band: their fine detail is
rebuilt from the luma, mostly green, in all three channels.  On such frames
the luma's share is taken out of each channel first
(:func:`superres_gpu.pixels.chroma_low_band`: what the decoder added to the
chroma, the luma's detail, at green's position mostly), which leaves each
channel's own low band as the file stores it; left in, it pulls the estimate
towards green (the scale 7-10 % short on synthetic 4:2:0 frames of 1280x960
and larger, at every JPEG quality from 80 to 92).  The edge strengths of those
low bands are compared after a Gaussian blur (:data:`ESTIMATE_SIGMA` per
subsampling factor), and the correction moves only the low band
(:meth:`TCAEstimate.band_chain`, the backend's ``tca_band``, through
:func:`superres_gpu.pixels.smooth_chroma_band`: for a decoder that repeats
the chroma in blocks, as libheif does, the block pattern itself stays on the
frame's grid, and the decoder is told from the frame by
:func:`superres_gpu.pixels.chroma_upsampling`): moving the
whole channel would move the luma's detail in it too, which no lens put
there (on the synthetic 4:2:0 bursts that makes the merge worse than no
correction).

On lossless frames the correction enters the merge's single resampling step:
each colour channel is read at its own position (:meth:`TCAEstimate.channel_maps`),
so no frame is resampled twice; on subsampled frames the low band is moved
once per frame before the merge reads it (the chroma's blocks brought up
smoothly: a band that the Lanczos read of the move keeps, while the frame's
fine detail is not resampled).

``--tca auto``
    corrects when a channel's shift at a corner is both large enough to
    matter (:meth:`TCAEstimate.min_corner_px`: larger on subsampled frames,
    where only the low band moves) and at least :data:`SHIFT_SIGNIFICANCE`
    standard errors of that shift (:func:`_corner_shift_se`, from the
    similarity fit's curvature on the edge strengths).

The cubic term
    Many lenses' aberration grows faster than the radius towards the
    corners.  The model per channel then maps green's position g to the
    channel's at q = L(g) + k3 (L(g) - c) |L(g) - c|^2, with L the
    similarity above and c the frame's centre; ``cubic`` = k3 R^2 with R
    half the frame's diagonal (the extra magnification the term adds at
    the corners).  After the similarity fit, a Gauss-Newton fit of the
    whole model (zoom, rotation, shift, the cubic coefficient, and a gain
    and offset between the edge strengths) to a grid of up to
    :data:`CUBIC_POINTS` pixels, with Huber weights, starts from it.  The
    term is kept when the coefficient (the median over the frames) is at
    least :data:`CUBIC_SIGNIFICANCE` standard errors from zero (its error
    from the fit's curvature, with neighbouring pixels counted as one over
    the blur's area, and from the frames' spread) and moves the corners by
    at least :data:`MIN_CUBIC_PX`; otherwise the similarity stands.  On
    frames with subsampled chroma the term is not fitted: in the low band
    the fit splits the aberration between the scale and the cubic term
    wrongly (on synthetic 4:2:0 JPEG 92 bursts red's +0.2 % / +0.3 % came
    out +0.07 % / +0.46 %) and the merge gains nothing over the similarity.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from .align import AlignConfig, align_frame
from .errors import AlignmentError
from .pixels import chroma_low_band, chroma_upsampling
from .reference import Reference
from .state import FrameState

CHANNELS = {"red": 0, "blue": 2}
# --tca auto corrects when either channel moves more than this at a corner (px): on full-chroma frames the
# estimate's own error is about a fifth of it (0.02 px on aberration-free synthetic bursts); on frames with
# subsampled chroma (per subsampling factor: 0.3 px for 4:2:0) the correction moves only the low band, and on
# synthetic 4:2:0 JPEG bursts it gains less than a wrong model of 0.18 px at the corners costs (0.02 dB) until
# about 0.3 px (see benchmarks/RESULTS.md)
MIN_CORNER_PX = 0.1
MIN_CORNER_PX_SUBSAMPLED = 0.15
# ... and by this many standard errors of that shift (the similarity fit's, from its curvature on the edge
# strengths with neighbouring pixels counted as one over the blur's area, and from the frames' spread):
# frames with little colour texture give large, meaningless estimates that it keeps out
SHIFT_SIGNIFICANCE = 3.0
# chroma-subsampled frames, per subsampling factor (2 for 4:2:0): the blur (frame px, Gaussian sigma)
# before the edge strengths are compared, after the luma's share is taken out (on synthetic 4:2:0 JPEG
# frames the scale comes out at 99-101 % of the truth from 1280x960 on at quality 80-92; at 320x240
# 96-109 % at quality 92 and 81-105 % at 80-85, where a larger blur overshoots at 92 and the unblurred
# estimate is at 35-45 %)
ESTIMATE_SIGMA = 1.0
# the cubic term is kept when it is this many standard errors from zero and moves the corners by this much (px)
CUBIC_SIGNIFICANCE = 3.0
MIN_CUBIC_PX = 0.03
# the burst's estimate reads frames (the reference first) until they hold this many pixels: one frame of
# 1280x960 or larger meets the targets alone; on smaller frames each frame's estimate carries the decimation's
# aliasing, which follows the sampling phase and so differs between frames (on 320x240 frames the median over
# five brings the cubic model within 0.05 px at the corners in 16 of 16 channel estimates, against 13 of 16
# from one; see benchmarks/RESULTS.md)
ESTIMATE_PIXELS = 1_200_000
CUBIC_POINTS = 250_000  # pixels the cubic fit samples (a grid over the frame)
CUBIC_ITERATIONS = 12
CUBIC_CONVERGED_PX = 0.002  # the fit has converged when its last step moves the corners by less (px)


@dataclass(frozen=True)
class ChannelTCA:
    """One channel's radial model against green."""

    scale: float  # s: magnification 1 + s against green
    cx: float  # centre, frame pixels
    cy: float
    rotation_deg: float  # should be near zero; a large value says the estimate is not to be trusted
    cubic: float = 0.0  # k3 R^2: the cubic term's extra magnification at half the frame's diagonal R
    cubic_centre: tuple | None = None  # c3, frame pixels (None: the centre above)
    corner_se: float = 0.0  # standard error (px) of the similarity's largest shift at a corner (0: not known)

    def matrix(self) -> np.ndarray:
        """3x3 map from green positions to this channel's positions (pixel
        coordinates), the linear part L of the model."""
        k = 1.0 + self.scale
        return np.array([[k, 0.0, self.cx * (1 - k)], [0.0, k, self.cy * (1 - k)], [0.0, 0.0, 1.0]])

    def radial(self, radius: float) -> tuple[float, float, float]:
        """(cx3, cy3, k3): the cubic term as the merge kernels take it (k3 per px^2)."""
        c3 = (self.cx, self.cy) if self.cubic_centre is None else self.cubic_centre
        return float(c3[0]), float(c3[1]), float(self.cubic) / radius**2

    def position(self, x, y, radius: float):
        """The channel's position of green's (x, y) (float64 arrays): L(g) moved by the cubic term."""
        M = self.matrix()
        u = M[0, 0] * np.asarray(x, np.float64) + M[0, 2]
        v = M[1, 1] * np.asarray(y, np.float64) + M[1, 2]
        cx3, cy3, k3 = self.radial(radius)
        dx, dy = u - cx3, v - cy3
        f = k3 * (dx * dx + dy * dy)
        return u + f * dx, v + f * dy


@dataclass(frozen=True)
class TCAEstimate:
    red: ChannelTCA
    blue: ChannelTCA
    width: int
    height: int
    frames: int
    chroma: tuple = (1, 1)  # the frames' chroma subsampling (horizontal, vertical): (2, 2) for 4:2:0
    upsampling: str = "linear"  # how their decoder brought the chroma up (pixels.chroma_upsampling)
    origin: tuple = (0, 0)  # pixels of a partial chroma block before the first whole one (FrameInfo.chroma_origin)
    # raw frames: the 3x3 matrix (row-major, nested tuples) from the camera's white-balanced channels to the frames'
    # (LibRaw's); the estimate and the correction work in the camera's channels, where the lens displaced them
    colour_matrix: tuple | None = None

    @property
    def radius(self) -> float:
        """Half the frame's diagonal (px): the cubic term's unit radius."""
        return 0.5 * float(np.hypot(self.width, self.height))

    @property
    def subsampled(self) -> bool:
        return max(self.chroma) > 1

    def band_chain(self) -> tuple | None:
        """(chroma, upsampling, origin): the chroma chain whose low band the
        correction moves on chroma-subsampled frames (``tca_band``); None on
        full-chroma frames, where whole channels are read at their maps."""
        return (self.chroma, self.upsampling, self.origin) if self.subsampled else None

    def corner_shift_px(self) -> dict:
        """Per channel, the largest displacement (px) the model implies at the frame's corners."""
        return {name: _corner_shift(ch, self.width, self.height) for name, ch in (("red", self.red),
                                                                                  ("blue", self.blue))}

    def channel_maps(self) -> np.ndarray:
        """(3, 12) float64: green -> channel maps for red, green (identity), blue
        as the merge kernels take them (a row-major 3x3, then the cubic term
        cx3, cy3, k3; the backends' ``channel_map_rows``)."""
        def row(ch):
            return np.concatenate([ch.matrix().ravel(), ch.radial(self.radius)])

        return np.stack([row(self.red), np.concatenate([np.eye(3).ravel(), np.zeros(3)]), row(self.blue)])

    def min_corner_px(self) -> float:
        """The corner shift from which ``--tca auto`` corrects these frames."""
        return MIN_CORNER_PX_SUBSAMPLED * max(self.chroma) if self.subsampled else MIN_CORNER_PX

    def matters(self) -> bool:
        """Whether either channel moves at a corner by more than :meth:`min_corner_px`
        and by more than :data:`SHIFT_SIGNIFICANCE` standard errors of that shift."""
        shift = self.corner_shift_px()
        return any(shift[name] > self.min_corner_px() and shift[name] > SHIFT_SIGNIFICANCE * ch.corner_se
                   for name, ch in (("red", self.red), ("blue", self.blue)))

    def report(self) -> dict:
        shift = self.corner_shift_px()
        return {
            name: {"scale": ch.scale, "centre": [ch.cx, ch.cy], "rotation_deg": ch.rotation_deg,
                   "cubic": ch.cubic, "cubic_centre": list(ch.radial(self.radius)[:2]),
                   "corner_shift_px": shift[name], "corner_shift_se_px": ch.corner_se}
            for name, ch in (("red", self.red), ("blue", self.blue))
        } | {"frames": self.frames, "chroma_subsampling": list(self.chroma),
             "chroma_upsampling": self.upsampling if self.subsampled else None,
             "correction": "chroma band" if self.subsampled else "channels", "auto_from_px": self.min_corner_px(),
             "camera_channels": self.colour_matrix is not None}


def _channel_fit(B, frame, channel: int, config: AlignConfig | None, blur: float):
    """(T, green, other) of one channel's similarity fit against green (T maps
    the channel's positions to green's; green and other: the edge-strength
    images compared, host float32), or None when it could not be aligned."""
    cfg = config or AlignConfig(model="similarity")
    green, other = (edge_strength(_blurred(frame[..., c], blur)) for c in (1, channel))
    top = max(float(green.max()), float(other.max()), 1e-12)
    ref = Reference(B, B.asarray(_to_u16(green, top)), cfg)
    st = FrameState.from_vector(B.asnumpy(align_frame(B, ref, B.asarray(_to_u16(other, top)))))
    return (st.T, green, other) if st.accepted else None


@dataclass(frozen=True)
class ChannelFit:
    """One frame's fits of one channel against green."""

    linear: tuple  # (s, cx, cy, rotation_deg) of the similarity
    cubic: tuple | None  # (s, cx, cy, rotation_deg, cubic, cx3, cy3) with the cubic term, or None
    cubic_se: float = float("inf")  # the cubic coefficient's standard error
    corner_se: float = float("inf")  # the similarity's largest corner shift's standard error (px)


def channel_model(B, frame, channel: int, blur: float = 0.0, cubic: bool = True) -> ChannelFit | None:
    """One frame's model of ``channel`` against green (see the module's notes),
    or None when the channel could not be aligned."""
    fit = _channel_fit(B, frame, channel, None, blur)
    if fit is None:
        return None
    T, green, other = fit
    linear = _channel_model(T)
    se = _corner_shift_se(green, other, np.linalg.inv(T), blur)
    if not cubic:
        return ChannelFit(linear, None, corner_se=se)
    found = _cubic_fit(green, other, np.linalg.inv(T), blur)
    if found is None:
        return ChannelFit(linear, None, corner_se=se)
    return ChannelFit(linear, found[0], found[1], se)


class _Grid:
    """The pixels the Gauss-Newton fits below sample (a grid over the frame, up
    to about CUBIC_POINTS, 8 px in from the border), in units of R (half the
    frame's diagonal) about the frame's centre c0, with green's edge strength
    there; ``corr``: neighbouring samples are correlated over about the blur's
    area, so the information per sample is divided by that many."""

    def __init__(self, green: np.ndarray, blur: float):
        h, w = green.shape
        self.w, self.h = w, h
        self.R = 0.5 * float(np.hypot(w, h))
        self.c0 = np.array([(w - 1) / 2.0, (h - 1) / 2.0])
        margin = 8
        self.n = 0
        if min(w, h) <= 2 * margin:  # no pixel to fit (the callers give up below 1000)
            return
        step = max(1, int(np.ceil(np.sqrt((w - 2 * margin) * (h - 2 * margin) / CUBIC_POINTS))))
        gy, gx = np.mgrid[margin : h - margin : step, margin : w - margin : step]
        self.G = green[gy, gx].astype(np.float64).ravel()
        self.px, self.py = (gx.ravel() - self.c0[0]) / self.R, (gy.ravel() - self.c0[1]) / self.R
        self.n = self.G.size
        self.corr = max(1.0, 4.0 * np.pi * (max(blur, 1.0) / step) ** 2)

    def start(self, L0: np.ndarray) -> tuple[float, float, float, float]:
        """(a, b, tx, ty) of the similarity ``L0`` (green -> channel positions):
        q = A g + l = c0 + A (g - c0) + (A c0 + l - c0), t = (A c0 + l - c0) / R."""
        A = L0[:2, :2] / L0[2, 2]
        t0 = (A @ self.c0 + L0[:2, 2] / L0[2, 2] - self.c0) / self.R
        return 0.5 * (A[0, 0] + A[1, 1]), 0.5 * (A[1, 0] - A[0, 1]), float(t0[0]), float(t0[1])

    def sample(self, imgs, qx, qy):
        """``imgs`` (float32 images) read at (qx, qy) by cubic interpolation, float64."""
        import cv2

        pad = -self.n % 1024  # remap's maps as rows of 1024 (OpenCV limits a map's side to 32767)
        mx, my = (np.pad(v.astype(np.float32), (0, pad)).reshape(-1, 1024) for v in (qx, qy))
        return [cv2.remap(img, mx, my, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE).ravel()[: self.n]
                .astype(np.float64) for img in imgs]

    def inside(self, qx, qy):
        return (qx >= 2) & (qx <= self.w - 3) & (qy >= 2) & (qy <= self.h - 3)


def _gradients(other: np.ndarray):
    import cv2

    other = np.ascontiguousarray(other, np.float32)
    return (other, cv2.Sobel(other, cv2.CV_32F, 1, 0, ksize=1, scale=0.5),
            cv2.Sobel(other, cv2.CV_32F, 0, 1, ksize=1, scale=0.5))


def _huber(res, inside):
    scale = 1.4826 * float(np.median(np.abs(res[inside]))) + 1e-12
    return np.where(inside, np.minimum(1.0, 1.5 * scale / np.maximum(np.abs(res), 1e-30)), 0.0)


def _corner_shift_se(green: np.ndarray, other: np.ndarray, L0: np.ndarray, blur: float) -> float:
    """Standard error (px) of the largest shift at a corner that the similarity
    ``L0`` (green -> channel positions) implies: the fit's covariance from its
    curvature on the edge strengths (one Gauss-Newton linearisation at L0, the
    residual's Huber-weighted variance, correlated samples counted as
    :class:`_Grid` does), projected on each corner's shift; inf where too few
    samples fall inside."""
    g = _Grid(green, blur)
    if g.n < 1000:
        return float("inf")
    a, b, tx, ty = g.start(L0)
    qx, qy = g.c0[0] + g.R * (a * g.px - b * g.py + tx), g.c0[1] + g.R * (b * g.px + a * g.py + ty)
    inside = g.inside(qx, qy)
    if inside.sum() < 1000:
        return float("inf")
    C, Cx, Cy = g.sample(_gradients(other), qx, qy)
    gain, offset = np.linalg.lstsq(np.stack([C[inside], np.ones(int(inside.sum()))], axis=1), g.G[inside],
                                   rcond=None)[0]
    res = gain * C + offset - g.G
    ux, uy = gain * Cx * g.R, gain * Cy * g.R
    J = np.stack([ux * g.px + uy * g.py, -ux * g.py + uy * g.px, ux, uy, C, np.ones(g.n)], axis=1)
    hub = _huber(res, inside)
    H = (J * hub[:, None]).T @ J
    sigma2 = float((hub * res * res).sum() / max(hub.sum() - 6, 1.0))
    try:
        cov = np.linalg.inv(H)[:4, :4] * sigma2 * g.corr
    except np.linalg.LinAlgError:
        return float("inf")
    worst = 0.0
    for cx, cy in ((0, 0), (g.w - 1, 0), (0, g.h - 1), (g.w - 1, g.h - 1)):
        P = (np.array([cx, cy]) - g.c0) / g.R
        Jc = np.array([[P[0], -P[1], 1, 0], [P[1], P[0], 0, 1]])  # d shift / d (a, b, tx, ty)
        worst = max(worst, float(np.linalg.eigvalsh(Jc @ cov @ Jc.T).max()))  # the least certain direction
    return g.R * float(np.sqrt(max(worst, 0.0)))


def _cubic_fit(green: np.ndarray, other: np.ndarray, L0: np.ndarray, blur: float):
    """((s, cx, cy, rotation_deg, cubic, cx3, cy3), standard error of the cubic)
    of a channel's edge strength ``other`` against green's, by Gauss-Newton
    from the similarity ``L0`` (green -> channel positions), or None when it
    does not converge.

    The model, in units of R (half the frame's diagonal) about the frame's
    centre: the channel's position of green's P is Q = Y (1 + K |Y|^2),
    Y = A P + t, A = [[a, -b], [b, a]]; the residual
    gain * other(Q) + offset - green(P) is minimised with Huber weights over
    a grid of pixels (every pixel, up to about CUBIC_POINTS)."""
    g = _Grid(green, blur)
    if g.n < 1000:
        return None
    R, c0, G, px, py, n = g.R, g.c0, g.G, g.px, g.py, g.n
    imgs = _gradients(other)
    # (a, b, tx, ty, K, gain, offset)
    theta = np.array([*g.start(L0), 0.0, 1.0, 0.0])
    se = moved = float("inf")
    for it in range(CUBIC_ITERATIONS):
        a, b, tx, ty, K, gain, offset = theta
        yx, yy = a * px - b * py + tx, b * px + a * py + ty
        y2 = yx * yx + yy * yy
        qx, qy = c0[0] + R * yx * (1 + K * y2), c0[1] + R * yy * (1 + K * y2)
        inside = g.inside(qx, qy)
        if inside.sum() < 1000:
            return None
        C, Cx, Cy = g.sample(imgs, qx, qy)
        if it == 0:
            M = np.stack([C[inside], np.ones(int(inside.sum()))], axis=1)
            theta[5:] = gain, offset = np.linalg.lstsq(M, G[inside], rcond=None)[0]
        res = gain * C + offset - G
        gxq, gyq = gain * Cx * R, gain * Cy * R  # d res / dQ (q = c0 + R Q)
        # dQ/dY = (1 + K |Y|^2) I + 2 K Y Y^T, dQ/dK = Y |Y|^2; dY/d(a, b, tx, ty) = [[px, -py, 1, 0], [py, px, 0, 1]]
        f, kxy = 1 + K * y2, 2 * K * yx * yy
        ux = gxq * (f + 2 * K * yx * yx) + gyq * kxy  # d res / dY
        uy = gxq * kxy + gyq * (f + 2 * K * yy * yy)
        J = np.stack([ux * px + uy * py, -ux * py + uy * px, ux, uy, (gxq * yx + gyq * yy) * y2, C, np.ones(n)],
                     axis=1)
        hub = _huber(res, inside)
        Jw = J * hub[:, None]
        H = Jw.T @ J
        grad = Jw.T @ res
        sigma2 = float((hub * res * res).sum() / max(hub.sum() - 7, 1.0))
        try:
            d = -np.linalg.solve(H + 1e-9 * np.diag(np.diag(H)), grad)
        except np.linalg.LinAlgError:
            return None
        theta = theta + d
        se = float(np.sqrt(max(np.linalg.inv(H)[4, 4] * sigma2 * g.corr, 0.0)))
        # the largest move the step makes at the corners, px
        moved = R * (abs(d[0]) + abs(d[1]) + abs(d[2]) + abs(d[3]) + abs(d[4]))
        if moved < 1e-4:
            break
    if moved > CUBIC_CONVERGED_PX:  # still moving after the last iteration: not converged
        return None
    a, b, tx, ty, K = theta[:5]
    L = np.array([[a, -b, c0[0] - a * c0[0] + b * c0[1] + R * tx],
                  [b, a, c0[1] - b * c0[0] - a * c0[1] + R * ty], [0, 0, 1.0]])
    s, cx, cy, rot = _channel_model(np.linalg.inv(L))
    return (s, cx, cy, rot, float(K), float(c0[0]), float(c0[1])), se


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


def estimate(B, frames: list, chroma: tuple = (1, 1), cubic: bool = True, origin: tuple = (0, 0),
             colour_matrix=None) -> TCAEstimate:
    """The burst's radial model of red and blue against green: the median over
    ``frames`` (RGB host arrays) of each channel's per-frame estimate;
    ``chroma``: the frames' chroma subsampling (horizontal, vertical), which
    sets where the channels are compared (see the module's notes); ``cubic``:
    whether the cubic term is tried (on frames with full-resolution chroma);
    ``origin``: where the chroma's blocks start (:attr:`FrameInfo.chroma_origin`);
    ``colour_matrix``: for raw frames, the 3x3 matrix from the camera's channels
    to the frames' (:func:`camera_frame`): the channels are compared, and later
    corrected (:func:`band_corrected`), in the camera's own.

    Raises :class:`~superres_gpu.errors.AlignmentError` when no frame gives one
    (grey frames, or too little texture)."""
    if not frames or frames[0].ndim != 3 or frames[0].shape[2] != 3:
        raise AlignmentError("chromatic aberration needs colour (RGB) frames")
    h, w = frames[0].shape[:2]
    per = {name: [] for name in CHANNELS}
    blur = ESTIMATE_SIGMA * max(chroma) if max(chroma) > 1 else 0.0
    cubic = cubic and max(chroma) == 1  # in the low band alone the cubic and the scale cannot be told apart
    origin = (int(origin[0]), int(origin[1])) if max(chroma) > 1 else (0, 0)
    # told from the decoded frame itself (its values on their own scale), before any change of channels
    upsampling = chroma_upsampling(frames[0], chroma, origin) if max(chroma) > 1 else "linear"
    if colour_matrix is not None:
        colour_matrix = tuple(tuple(float(v) for v in row[:3]) for row in colour_matrix[:3])
        frames = [camera_frame(f, colour_matrix) for f in frames]
    for f in frames:
        if max(chroma) > 1:
            f = chroma_low_band(f, chroma, upsampling=upsampling, origin=origin)
        for name, ch in CHANNELS.items():
            m = channel_model(B, f, ch, blur, cubic)
            if m is not None:
                per[name].append(m)
    if not per["red"] or not per["blue"]:
        raise AlignmentError("no frame's red and blue channels could be aligned to its green channel")
    models = {name: _burst_model(fits, w, h) for name, fits in per.items()}
    return TCAEstimate(models["red"], models["blue"], w, h, min(len(per["red"]), len(per["blue"])),
                       (int(chroma[0]), int(chroma[1])), upsampling, origin, colour_matrix)


def camera_frame(frame, colour_matrix, xp=np):
    """float32 (h, w, 3): an RGB ``frame`` (NumPy or, with ``xp``, CuPy) in the
    camera's own channels, through the inverse of ``colour_matrix`` (3x3,
    camera -> the frame's).  A raw decoder's output mixes the camera's
    channels (a phone's matrix gives red about 1.8 R - 0.7 G - 0.1 B): where
    the lens displaced R and B but not G, each output channel holds the
    displaced and the undisplaced image at once, which no one displacement
    per output channel undoes (on synthetic DNG bursts with such a matrix the
    output-space estimate came out 1.7 times red's truth)."""
    inv = np.linalg.inv(np.asarray(colour_matrix, np.float64)).astype(np.float32)
    return xp.asarray(frame).astype(xp.float32) @ xp.asarray(np.ascontiguousarray(inv.T))


def band_corrected(B, frame, est: TCAEstimate):
    """What the merge reads of a chroma-subsampled colour ``frame`` (on ``B``)
    under ``est``: each channel's low band moved (the backend's ``tca_band``),
    in the camera's own channels and back where the estimate has a colour
    matrix (raw frames; exact round trip, so only the moved bands differ)."""
    maps = est.channel_maps()
    if est.colour_matrix is None:
        return B.tca_band(frame, maps, *est.band_chain())
    xp = B.xp
    moved = B.tca_band(camera_frame(frame, est.colour_matrix, xp), maps, *est.band_chain())
    return moved @ xp.asarray(np.ascontiguousarray(np.asarray(est.colour_matrix, np.float32).T))


def estimate_frames(width: int, height: int, available: int) -> int:
    """How many of ``available`` frames (the reference and those after it) the
    burst's estimate reads: enough to hold :data:`ESTIMATE_PIXELS` pixels, at
    least one."""
    return max(1, min(int(available), -(-ESTIMATE_PIXELS // max(1, int(width) * int(height)))))


def _corner_shift(ch: ChannelTCA, w: int, h: int) -> float:
    """The largest displacement (px) channel model ``ch`` implies at the corners of a w x h frame."""
    xs = np.array([0.0, w - 1.0, 0.0, w - 1.0])
    ys = np.array([0.0, 0.0, h - 1.0, h - 1.0])
    u, v = ch.position(xs, ys, 0.5 * float(np.hypot(w, h)))
    return float(np.max(np.hypot(u - xs, v - ys)))


def _burst_model(fits: list, w: int, h: int) -> ChannelTCA:
    """One channel's burst model from its per-frame fits (see :func:`_burst_fit`),
    with the standard error of its similarity's corner shift: one frame's
    (the per-frame errors' median, see :func:`_shared_error`), or the median's
    from the frames' own spread where there are three or more and it is larger."""
    model = _burst_fit(fits, w, h)
    n = len(fits)
    se = _shared_error([f.corner_se for f in fits])
    if n >= 3:
        shifts = np.array([_corner_shift(ChannelTCA(*f.linear), w, h) for f in fits])
        se = max(se, 1.4826 * float(np.median(np.abs(shifts - np.median(shifts)))) * 1.25 / np.sqrt(n))
    return dataclasses.replace(model, corner_se=float(se))


def _shared_error(per_frame: list) -> float:
    """The standard error the burst's tests take from the frames' own
    (each from its fit's curvature): one frame's, their median, not that over
    the square root of the frames.  The frames of a burst show one scene, and
    the share of each frame's error that comes from the scene (how the model
    fits its edges, the colour it has) is common to all of them: the median
    over the frames lowers only the noise's share.  On a real 30-frame video
    of 121x91 (a bookcase) the blue channel's cubic term came out 1.3 of its
    standard error in each of the first five frames, all alike; the error over
    the square root of five made it significant and the correction moved blue
    by 0.8 px the wrong way (the corrected merge showed the opposite term)."""
    return float(np.median(per_frame))


def _burst_fit(fits: list, w: int, h: int) -> ChannelTCA:
    """The median of the cubic fits where their median coefficient is
    significant (see the module's notes), else the median of the similarities."""
    R = 0.5 * float(np.hypot(w, h))
    cub = [f for f in fits if f.cubic is not None]
    if len(cub) * 2 >= len(fits):
        a = np.median(np.array([f.cubic for f in cub]), axis=0)
        K = float(a[4])
        n = len(cub)
        se = _shared_error([f.cubic_se for f in cub])
        if n >= 3:  # the frames' own spread, where there are enough of them to show it
            ks = np.array([f.cubic[4] for f in cub])
            se = max(se, 1.4826 * float(np.median(np.abs(ks - K))) * 1.25 / np.sqrt(n))
        if abs(K) >= CUBIC_SIGNIFICANCE * se and abs(K) * R >= MIN_CUBIC_PX:
            return ChannelTCA(float(a[0]), float(a[1]), float(a[2]), float(a[3]), K, (float(a[5]), float(a[6])))
    a = np.median(np.array([f.linear for f in fits]), axis=0)
    return ChannelTCA(float(a[0]), float(a[1]), float(a[2]), float(a[3]), 0.0, ((w - 1) / 2.0, (h - 1) / 2.0))
