"""Synthetic hand-held bursts with known ground truth.

A high-resolution scene (a resolution chart drawn in code, with natural-looking
texture) is seen by a simulated hand-held camera: per frame a known motion
(translation, rotation, slight zoom, optional rolling-shutter wobble), optics
blur, pixel integration (decimation by an area filter), Poisson-Gaussian noise
and JPEG compression.  The true frame->reference transforms and the true
image at the output scale (sharp, and through the optics blur) are returned,
so accuracy claims rest on ground truth, not on appearances.

Scene coordinates: the scene raster has ``factor`` pixels per frame pixel and
follows the same half-pixel convention as the output grid, i.e. scene pixel j
is centred at frame position (j + 0.5)/factor - 0.5.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .pixels import full_scale

# --------------------------------------------------------------------------
# The chart
# --------------------------------------------------------------------------


def _pink_noise(h: int, w: int, rng: np.random.Generator, beta: float = 1.8) -> np.ndarray:
    """Zero-mean, unit-std noise with a 1/f^beta power spectrum (natural texture)."""
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    f = np.sqrt(fx * fx + fy * fy)
    f[0, 0] = 1.0
    amp = f ** (-beta / 2)
    amp[0, 0] = 0.0
    spec = amp * (rng.standard_normal((h, fx.shape[1])) + 1j * rng.standard_normal((h, fx.shape[1])))
    n = np.fft.irfft2(spec, s=(h, w))
    return (n / (n.std() + 1e-12)).astype(np.float32)


def draw_chart(width: int, height: int, seed: int = 0, window=None) -> np.ndarray:
    """Draw a colour resolution chart, float32 (H, W, 3) in [0, 1].

    Tiles: a Siemens star, bar groups of decreasing period (both directions),
    a zone plate, fine colour lines and text, laid out over ``window``
    (x, y, w, h; default: the whole raster), on natural 1/f texture with
    coloured blobs and soft shading that fill the whole raster.  Feature sizes
    scale with the window.
    """
    import cv2

    rng = np.random.default_rng(seed)
    H, W = height, width
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    full = np.empty((H, W, 3), np.float32)
    tex = _pink_noise(H, W, rng)
    shade = 0.45 + 0.1 * np.sin(xx / W * 2.0 + 0.5) * np.cos(yy / H * 1.5)
    for c, tint in enumerate((1.0, 0.95, 0.85)):
        full[..., c] = (shade + 0.12 * tex) * tint
    ox, oy, w, h = window if window is not None else (0, 0, W, H)
    u = min(h, w) / 100.0  # one "chart unit"
    for _ in range(int(40 * W * H / max(1, w * h))):  # coloured blobs (things in a natural scene)
        cx, cy = rng.uniform(0, W), rng.uniform(0, H)
        r = rng.uniform(1.5, 6.0) * u
        col = rng.uniform(0.1, 0.9, 3)
        cv2.circle(full, (int(cx), int(cy)), int(r), tuple(float(v) for v in col), -1, cv2.LINE_AA)
    full = np.clip(full + 0.05 * tex[..., None], 0, 1)
    img = full[oy : oy + h, ox : ox + w]  # the tiles are drawn into the window (a view)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)

    def tile(x0, y0, x1, y1, value=0.92):
        img[int(y0 * u) : int(y1 * u), int(x0 * u) : int(x1 * u)] = value

    aspect = w / h
    W100 = 100 * aspect if aspect >= 1 else 100  # chart units across
    # Siemens star
    sx, sy, sr = 20 * max(aspect, 1), 24, 18
    tile(sx - sr - 1, sy - sr - 1, sx + sr + 1, sy + sr + 1)
    dx, dy = xx - sx * u, yy - sy * u
    rr = np.hypot(dx, dy)
    theta = np.arctan2(dy, dx)
    star = (rr < sr * u) & (np.sin(36 * theta) > 0)
    img[star] = 0.08
    # bar groups: periods from 6 to 1.2 frame-pixel units (assuming ~4 px/unit)
    bx, by = 44 * max(aspect, 1), 5
    tile(bx - 2, by - 2, min(W100, bx + 52), by + 40)
    x = bx * u
    for period in (3.0, 2.4, 2.0, 1.6, 1.3, 1.1, 0.9, 0.75, 0.6):
        p = period * u * 0.5
        for k in range(3):  # three vertical bars
            x0 = x + 2 * k * p
            img[int(by * u) : int((by + 16) * u), int(x0) : int(x0 + p)] = 0.08
        for k in range(3):  # three horizontal bars below
            y0 = (by + 19) * u + 2 * k * p
            img[int(y0) : int(y0 + p), int(x) : int(x + 6 * p)] = 0.08
        x += 6 * p + 1.2 * u
    # zone plate
    zx, zy, zr = 22 * max(aspect, 1), 70, 20
    tile(zx - zr - 1, zy - zr - 1, zx + zr + 1, zy + zr + 1)
    dzx, dzy = xx - zx * u, yy - zy * u
    r2 = dzx * dzx + dzy * dzy
    kmax = 0.5 / (0.35 * u)  # local frequency reaches ~0.5 cycles per 0.35 units at the rim
    k = math.pi * kmax / (zr * u)
    zone = r2 < (zr * u) ** 2
    img[zone] = (0.5 + 0.42 * np.cos(k * r2[zone]))[:, None]
    # fine colour lines
    lx, ly = 48 * max(aspect, 1), 50
    tile(lx - 2, ly - 2, min(W100, lx + 48), ly + 20, 0.95)
    colours = ((0.85, 0.1, 0.1), (0.1, 0.6, 0.1), (0.1, 0.15, 0.85), (0.05, 0.05, 0.05))
    x = lx * u
    for gi, spacing in enumerate((1.6, 1.2, 0.9, 0.7)):
        for li in range(6):
            col = colours[(gi + li) % 4]
            x0 = x + li * spacing * u
            img[int(ly * u) : int((ly + 18) * u), int(x0) : int(x0 + max(1, 0.3 * spacing * u))] = col
        x += 6 * spacing * u + 2 * u
    # text
    ty = 78
    tile(lx - 2, ty - 2, min(W100, lx + 48), ty + 20, 0.95)
    ink = np.zeros((h, w), np.uint8)  # putText draws on 8-bit images only
    for i, scale_txt in enumerate((0.9, 0.6, 0.4)):
        cv2.putText(
            ink,
            "superres 0123456789",
            (int(lx * u), int((ty + 5 + 6 * i) * u)),
            cv2.FONT_HERSHEY_SIMPLEX,
            scale_txt * u / 10.0,
            255,
            max(1, int(round(scale_txt * u / 6.0))),
            cv2.LINE_AA,
        )
    a = ink.astype(np.float32)[..., None] / 255.0
    img[...] = img * (1 - a) + 0.05 * a
    edge = chart_edge_tile(w, h)
    if edge is not None:  # a slanted edge for the ISO 12233 MTF, right of the other tiles where there is room
        x0, y0, x1, y1 = (int(v * u) for v in edge)
        ex, ey = xx[y0:y1, x0:x1], yy[y0:y1, x0:x1]
        ecx, ecy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
        t = math.radians(EDGE_ANGLE_DEG)
        dark = (ex - ecx) * math.cos(t) - (ey - ecy) * math.sin(t) < 0
        img[y0:y1, x0:x1] = np.where(dark, 0.15, 0.85)[..., None]
    return np.clip(full, 0.0, 1.0)


EDGE_ANGLE_DEG = 5.0  # the slanted edge's tilt from the vertical


def chart_edge_tile(w: int, h: int):
    """(x0, y0, x1, y1) in chart units of the slanted-edge tile of a ``w`` x ``h``
    chart window, or None when the window is too narrow to hold it beside the
    other tiles (aspect below 1.3)."""
    aspect = w / h
    if aspect < 1.3:
        return None
    return (114.0, 8.0, min(100 * aspect - 2.0, 132.0), 44.0)


def chart_features(width: int, height: int, scale: float) -> dict:
    """Where the chart's measurable tiles lie on the output grid of a burst of
    ``width`` x ``height`` frames at ``scale``: ``star`` (cx, cy, radius) of the
    36-spoke Siemens star and ``edge`` (x0, y0, x1, y1) of the slanted edge (None
    without one), in output px.  The chart unit is min(width, height)/100 frame px."""
    u = min(width, height) / 100.0 * scale
    aspect = width / height
    star = (20 * max(aspect, 1) * u, 24 * u, 18 * u)
    # chart positions are in raster px of pixel centres: output = (raster + 0.5) s/f - 0.5, which for
    # a raster finer than the output is within (s/f - 1)/2 px of u * units; the tiles are drawn on whole
    # raster px, so half an output px is the precision either way
    edge = chart_edge_tile(width, height)
    return {"star": star, "edge": None if edge is None else tuple(v * u for v in edge)}


# --------------------------------------------------------------------------
# The camera
# --------------------------------------------------------------------------


@dataclass
class MotionSpec:
    """Random hand-held motion, frame -> reference (frame 0 is the reference)."""

    shift_sigma: float = 2.0  # px, per axis
    rotation_sigma_deg: float = 0.2
    zoom_sigma: float = 0.001
    rolling_shutter_px: float = 0.0  # amplitude of a per-row horizontal wobble

    def sample(self, n: int, width: int, height: int, rng: np.random.Generator) -> list[np.ndarray]:
        cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
        out = [np.eye(3)]
        for _ in range(n - 1):
            tx, ty = rng.normal(0, self.shift_sigma, 2)
            a = math.radians(rng.normal(0, self.rotation_sigma_deg))
            z = 1.0 + rng.normal(0, self.zoom_sigma)
            c, s = z * math.cos(a), z * math.sin(a)
            A = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])
            C = np.array([[1, 0, cx], [0, 1, cy], [0, 0, 1.0]])
            Ci = np.array([[1, 0, -cx], [0, 1, -cy], [0, 0, 1.0]])
            Tt = np.array([[1, 0, tx], [0, 1, ty], [0, 0, 1.0]])
            out.append(Tt @ C @ A @ Ci)
        return out


@dataclass
class CameraSpec:
    blur_sigma: float = 0.5  # optics blur, frame pixels (Gaussian sigma)
    noise_gain: float = 0.0005  # Poisson part: variance = gain * value
    noise_floor: float = 0.002  # Gaussian part: std dev (value units 0..1)
    jpeg_quality: int | None = 95  # None: lossless PNG frames
    bits: int = 8
    # lateral chromatic aberration: the red and blue images magnified by 1 + s about the frame's centre
    # against green (s = 0.002: +0.2 %); colour frames only (with rolling shutter too: the lens's
    # aberration is fixed to the sensor, the wobble moves the image under it)
    lateral_ca: tuple = (0.0, 0.0)
    # ... and its third-order part: red's and blue's magnification grows by k at half the frame's
    # diagonal, with the square of the radius (see tca_source_position)
    lateral_ca_cubic: tuple = (0.0, 0.0)


@dataclass
class SyntheticBurst:
    frames: list  # decoded frames as the tool reads them: uint8/uint16 RGB
    encoded: list  # file bytes of each frame
    ext: str  # ".jpg" or ".png"
    transforms: list  # true frame -> reference 3x3 matrices
    truth: np.ndarray  # float32 [0,1] at the output scale, sharp
    truth_blurred: np.ndarray  # ... through the optics blur
    scale: float
    params: dict = field(default_factory=dict)
    rolling_shutter: list = field(default_factory=list)  # per-frame (amp, phase) when used
    clean_reference: np.ndarray | None = None  # frame 0 before noise and JPEG, float32 [0,1]

    def write(self, folder, prefix: str = "frame") -> list:
        from pathlib import Path

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for i, data in enumerate(self.encoded):
            p = folder / f"{prefix}_{i:03d}{self.ext}"
            p.write_bytes(data)
            paths.append(p)
        return paths


def _frame_to_raster(factor: float, offset: float) -> np.ndarray:
    """Frame pixel coordinates -> a raster with ``factor`` px per frame px whose
    origin sits ``offset`` frame px before the frame's (half-pixel convention)."""
    f = float(factor)
    t = f * offset + 0.5 * f - 0.5
    return np.array([[f, 0, t], [0, f, t], [0, 0, 1.0]])


def tca_source_position(camera: CameraSpec, width: int, height: int, channel: str, x, y):
    """Where green shows what ``channel`` ("red" or "blue") shows at frame
    position (x, y) in a burst of ``camera``: C + (p - C) / (1 + s + k rho^2),
    C the frame's centre, rho = |p - C| / (half the frame's diagonal), s and k
    the channel's ``lateral_ca`` and ``lateral_ca_cubic`` (float64 arrays)."""
    i = {"red": 0, "blue": 1}[channel]
    s, k = camera.lateral_ca[i], camera.lateral_ca_cubic[i]
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    dx, dy = np.asarray(x, np.float64) - cx, np.asarray(y, np.float64) - cy
    z = 1.0 / (1.0 + s + k * (dx * dx + dy * dy) / (0.5 * math.hypot(width, height)) ** 2)
    return cx + dx * z, cy + dy * z


def scene_map(T: np.ndarray, factor: float, margin: int, pad: int) -> np.ndarray:
    """3x3 map from the render raster (frame plus ``pad`` px, at ``factor``) to
    the scene raster (frame plus ``margin`` px), through the frame->reference T."""
    return _frame_to_raster(factor, margin) @ T @ np.linalg.inv(_frame_to_raster(factor, pad))


def snap_to_render_grid(T: np.ndarray, factor: float, margin: int, pad: int) -> np.ndarray:
    """Round T's translation so that, in scene-raster pixels, it is a multiple
    of 1/2.  The scene is warped with Lanczos4 at positions rounded to 1/32
    pixel; at fractions 0 and 1/2 the kernel is symmetric, so a pure
    translation is rendered without the interpolator's own phase shift and the
    truth stays exact (any other fraction would move the rendered content by a
    small, fraction-dependent amount).  With ``factor`` 8 the frames' sub-pixel
    positions are still spread over 16 phases per axis."""
    M = scene_map(T, factor, margin, pad)
    M[:2, 2] = np.round(M[:2, 2] * 2.0) / 2.0
    return np.linalg.inv(_frame_to_raster(factor, margin)) @ M @ _frame_to_raster(factor, pad)


def _decimate(img: np.ndarray, factor: float) -> np.ndarray:
    import cv2

    h, w = img.shape[:2]
    return cv2.resize(img, (int(round(w / factor)), int(round(h / factor))), interpolation=cv2.INTER_AREA)


def render_pad(camera: CameraSpec) -> int:
    """Frame pixels rendered beyond each edge so that the optics blur near the
    edges sees real scene content, not a mirrored border."""
    return int(math.ceil(3.0 * camera.blur_sigma)) + 1


@dataclass
class Mover:
    """A textured object pasted into one frame at (x, y, w, h) frame pixels."""

    frame: int
    x: int
    y: int
    w: int
    h: int
    seed: int = 0


def motion_blur_kernel(length: float, angle_deg: float, factor: int) -> np.ndarray:
    """Normalised line kernel (camera shake during the exposure) on the scene raster."""
    import cv2

    n = int(math.ceil(length * factor)) | 1
    n = max(n, 3)
    k = np.zeros((n + 2, n + 2), np.float32)
    c = (n + 1) / 2.0
    dx = 0.5 * length * factor * math.cos(math.radians(angle_deg))
    dy = 0.5 * length * factor * math.sin(math.radians(angle_deg))
    p0 = (int(round((c - dx) * 16)), int(round((c - dy) * 16)))
    p1 = (int(round((c + dx) * 16)), int(round((c + dy) * 16)))
    cv2.line(k, p0, p1, 1.0, 1, cv2.LINE_AA, shift=4)
    return k / k.sum()


def _raster_centre(width: int, height: int, pad: int, factor: int) -> tuple[float, float]:
    """The frame's centre in render-raster coordinates (half-pixel convention)."""
    return ((width - 1) / 2.0 + pad + 0.5) * factor - 0.5, ((height - 1) / 2.0 + pad + 0.5) * factor - 0.5


def _source_map(M: np.ndarray, width: int, height: int, pad: int, factor: int, rolling=None, sc: float = 0.0,
                kc: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """float32 maps (mx, my): where each render-raster pixel of a channel reads
    the scene raster.  The lens puts the channel's image at raster position x
    where green's is at C + (x - C) / (1 + sc + kc rho^2) (the channel's
    lateral aberration, :func:`tca_source_position`); with ``rolling`` =
    (amplitude px, phase) the sensor reads row y while the image has moved
    along x by amplitude sin(2 pi 1.5 y / height + phase) (the frame row y: the
    wobble follows the sensor's rows); M maps the image to the scene."""
    rw, rh = (width + 2 * pad) * factor, (height + 2 * pad) * factor
    cr, cc = _raster_centre(width, height, pad, factor)
    r2 = (0.5 * math.hypot(width, height) * factor) ** 2
    mx = np.empty((rh, rw), np.float32)
    my = np.empty((rh, rw), np.float32)
    xs = np.arange(rw, dtype=np.float64)[None, :]
    for y0 in range(0, rh, 256):
        ys = np.arange(y0, min(rh, y0 + 256), dtype=np.float64)[:, None]
        gx, gy = np.broadcast_to(xs, (len(ys), rw)), np.broadcast_to(ys, (len(ys), rw))
        if sc or kc:
            dx, dy = xs - cr, ys - cc
            z = 1.0 / (1.0 + sc + kc * (dx * dx + dy * dy) / r2)
            gx, gy = cr + dx * z, cc + dy * z
        if rolling is not None:
            amp, phase = rolling
            fy = (ys + 0.5) / factor - 0.5 - pad  # the sensor's frame row
            gx = gx + amp * np.sin(2 * np.pi * fy / height * 1.5 + phase) * factor
        wq = M[2, 0] * gx + M[2, 1] * gy + M[2, 2]
        mx[y0 : y0 + len(ys)] = (M[0, 0] * gx + M[0, 1] * gy + M[0, 2]) / wq
        my[y0 : y0 + len(ys)] = (M[1, 0] * gx + M[1, 1] * gy + M[1, 2]) / wq
    return mx, my


def render_frame(scene: np.ndarray, T: np.ndarray, factor: int, camera: CameraSpec, width: int, height: int,
                 margin: int, rolling=None, shake=None) -> np.ndarray:
    """One noise-free ``width`` x ``height`` frame in [0,1] float32 (before
    quantisation and JPEG): warp the scene by T, camera shake (``shake`` =
    (length px, angle deg)), optics blur, pixel integration."""
    import cv2

    pad = render_pad(camera) + (int(math.ceil(shake[0])) if shake else 0)
    rw, rh = (width + 2 * pad) * factor, (height + 2 * pad) * factor
    M = scene_map(T, factor, margin, pad)
    ca = tuple(camera.lateral_ca)
    cubic = tuple(camera.lateral_ca_cubic)
    aberrated = any(ca) or any(cubic)
    if aberrated and scene.ndim != 3:
        raise ValueError("lateral chromatic aberration needs colour frames")
    if aberrated:
        # channel c at render-raster position x shows the scene green shows at
        # C + (x - C) / (1 + s_c + k_c rho^2) (tca_source_position, scaled to the raster)
        cr, cc = _raster_centre(width, height, pad, factor)
        chans = []
        for ch, sc, kc in zip(range(3), (ca[0], 0.0, ca[1]), (cubic[0], 0.0, cubic[1])):
            plane = np.ascontiguousarray(scene[..., ch])
            if rolling is None and kc == 0.0:  # a scale alone: one perspective warp
                z = 1.0 / (1.0 + sc)
                Z = np.array([[z, 0, cr * (1 - z)], [0, z, cc * (1 - z)], [0, 0, 1.0]])
                chans.append(cv2.warpPerspective(plane, M @ Z, (rw, rh), flags=cv2.INTER_LANCZOS4 | cv2.WARP_INVERSE_MAP,
                                                 borderMode=cv2.BORDER_REFLECT))
            else:
                mx, my = _source_map(M, width, height, pad, factor, rolling, sc, kc)
                chans.append(cv2.remap(plane, mx, my, cv2.INTER_LANCZOS4, borderMode=cv2.BORDER_REFLECT))
        warped = np.stack(chans, axis=2)
    elif rolling is None:
        warped = cv2.warpPerspective(
            scene, M, (rw, rh), flags=cv2.INTER_LANCZOS4 | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REFLECT
        )
    else:
        mx, my = _source_map(M, width, height, pad, factor, rolling)
        warped = cv2.remap(scene, mx, my, cv2.INTER_LANCZOS4, borderMode=cv2.BORDER_REFLECT)
    if shake:
        warped = cv2.filter2D(warped, -1, motion_blur_kernel(shake[0], shake[1], factor), borderType=cv2.BORDER_REFLECT)
    if camera.blur_sigma > 0:
        warped = cv2.GaussianBlur(warped, (0, 0), camera.blur_sigma * factor)
    crop = warped[pad * factor : (pad + height) * factor, pad * factor : (pad + width) * factor]
    return _decimate(crop, factor)


def add_noise(img: np.ndarray, camera: CameraSpec, rng: np.random.Generator) -> np.ndarray:
    var = camera.noise_gain * np.clip(img, 0, 1) + camera.noise_floor**2
    return img + rng.standard_normal(img.shape).astype(np.float32) * np.sqrt(var).astype(np.float32)


def encode(img01: np.ndarray, camera: CameraSpec) -> tuple[np.ndarray, bytes, str]:
    """Quantise, encode (JPEG or PNG) and decode a [0,1] RGB frame."""
    import cv2

    dtype = np.uint16 if camera.bits == 16 else np.uint8
    maxv = full_scale(dtype)
    q = np.clip(np.rint(img01 * maxv), 0, maxv).astype(dtype)
    bgr = q[..., ::-1] if q.ndim == 3 else q
    if camera.jpeg_quality is not None and camera.bits == 8:
        ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(camera.jpeg_quality)])
        ext = ".jpg"
    else:
        ok, buf = cv2.imencode(".png", bgr)
        ext = ".png"
    data = buf.tobytes()
    dec = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR)
    if dec.ndim == 3:
        dec = np.ascontiguousarray(dec[..., ::-1])
    return dec, data, ext


def scene_margin(motion: MotionSpec, width: int, height: int) -> int:
    """Frame pixels of scene drawn beyond the reference frame on each side, so
    that frames moved by up to 5 sigma of the motion still see real content."""
    reach = 5 * motion.shift_sigma + 5 * motion.rolling_shutter_px
    reach += 0.5 * max(width, height) * (math.tan(math.radians(5 * motion.rotation_sigma_deg)) + 5 * motion.zoom_sigma)
    return 8 + int(math.ceil(reach))


def make_burst(
    n_frames: int = 8,
    width: int = 320,
    height: int = 240,
    scale: float = 2.0,
    factor: int = 4,
    motion: MotionSpec | None = None,
    camera: CameraSpec | None = None,
    seed: int = 0,
    transforms: list | None = None,
    shake: dict | None = None,
    movers: list | None = None,
    truth: bool = True,
    decoded: bool = True,
    workers: int = 1,
    scene: np.ndarray | None = None,
) -> SyntheticBurst:
    """Render a burst of ``n_frames`` frames of ``width`` x ``height``.

    The scene raster has ``factor`` pixels per frame pixel (a multiple of
    ``scale`` keeps the truth exact) and extends :func:`scene_margin` frame
    pixels beyond the reference frame.  ``transforms`` overrides the random
    motion (frame -> reference; the first should be the identity).
    ``shake`` maps frame indices to (length px, angle deg) of a motion blur;
    ``movers`` lists :class:`Mover` objects pasted into frames (the truth is the
    static scene).

    For large bursts (throughput benchmarks): ``truth=False`` skips the truth
    images, ``decoded=False`` keeps only the encoded files (``frames`` stays
    empty), and ``workers`` > 1 renders frames in that many threads, each with
    its own random stream (a different, equally valid, burst than ``workers=1``).

    ``scene`` (float32 (H, W, 3) in [0, 1], e.g. a photo far larger than the
    frames) replaces the chart: it is resized (area averaging) to the scene raster.
    """
    import cv2

    motion = motion or MotionSpec()
    camera = camera or CameraSpec()
    rng = np.random.default_rng(seed)
    margin = scene_margin(motion, width, height) + int(math.ceil(max([0.0] + [v[0] for v in (shake or {}).values()])))
    pad = render_pad(camera)
    raster = ((width + 2 * margin) * factor, (height + 2 * margin) * factor)
    if scene is None:
        scene = draw_chart(*raster, seed=seed, window=(margin * factor, margin * factor, width * factor, height * factor))
    else:
        scene = np.clip(cv2.resize(np.asarray(scene, np.float32), raster, interpolation=cv2.INTER_AREA), 0.0, 1.0)
    if transforms is None:
        transforms = [snap_to_render_grid(T, factor, margin, pad) for T in motion.sample(n_frames, width, height, rng)]

    def rolling_for(i, r):
        if motion.rolling_shutter_px > 0 and i > 0:
            return (r.normal(0, motion.rolling_shutter_px), r.uniform(0, 2 * np.pi))
        return None

    def one(i, roll, noise_rng):
        clean = render_frame(scene, transforms[i], factor, camera, width, height, margin, roll, (shake or {}).get(i))
        for mv in movers or []:
            if mv.frame == i:
                _paste_mover(clean, mv)
        dec, data, ext = encode(add_noise(clean, camera, noise_rng), camera)
        return (clean if i == 0 else None), (dec if decoded else None), data, ext

    if workers <= 1:
        rolls, results = [], []
        for i in range(len(transforms)):  # one random stream, drawn in frame order
            rolls.append(rolling_for(i, rng))
            results.append(one(i, rolls[-1], rng))
    else:
        from concurrent.futures import ThreadPoolExecutor

        rolls = [rolling_for(i, rng) for i in range(len(transforms))]
        streams = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(len(transforms))]
        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(one, range(len(transforms)), rolls, streams))
    clean_ref = results[0][0]
    frames = [r[1] for r in results] if decoded else []
    encoded = [r[2] for r in results]
    ext = results[-1][3]
    truth_img = truth_blurred = None
    if truth:
        # the scene at the reference pose, integrated over output pixels
        blur_pad = (pad if camera.blur_sigma > 0 else 0) * factor
        m0 = margin * factor
        window = scene[m0 - blur_pad : m0 + height * factor + blur_pad, m0 - blur_pad : m0 + width * factor + blur_pad]
        inner = (slice(blur_pad, blur_pad + height * factor), slice(blur_pad, blur_pad + width * factor))
        truth_img = _decimate(window[inner], factor / scale)
        blurred = cv2.GaussianBlur(window, (0, 0), camera.blur_sigma * factor) if camera.blur_sigma > 0 else window
        truth_blurred = _decimate(blurred[inner], factor / scale)
    params = {
        "n_frames": n_frames,
        "width": width,
        "height": height,
        "scale": scale,
        "factor": factor,
        "seed": seed,
        "margin": margin,
        "motion": motion.__dict__.copy(),
        "camera": camera.__dict__.copy(),
    }
    params["shake"] = {int(k): list(v) for k, v in (shake or {}).items()}
    params["movers"] = [m.__dict__.copy() for m in movers or []]
    return SyntheticBurst(frames, encoded, ext, transforms, truth_img, truth_blurred, scale, params, rolls, clean_ref)


# --------------------------------------------------------------------------
# Named recipes: the bursts the demo, the tests and the benchmarks share
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class BurstRecipe:
    """A burst described by name; :meth:`make` renders it (keyword overrides
    go to :func:`make_burst`)."""

    frames: int
    width: int
    height: int
    motion: MotionSpec
    camera: CameraSpec
    seed: int
    factor: int = 4
    scale: float = 2.0
    description: str = ""

    def make(self, **overrides) -> SyntheticBurst:
        kw = dict(n_frames=self.frames, width=self.width, height=self.height, scale=self.scale, factor=self.factor,
                  motion=self.motion, camera=self.camera, seed=self.seed)
        if "frames" in overrides:
            overrides["n_frames"] = overrides.pop("frames")
        kw.update(overrides)
        return make_burst(**kw)


_HANDHELD = MotionSpec(shift_sigma=2.5, rotation_sigma_deg=0.25, zoom_sigma=0.001)
_MID_ISO = CameraSpec(blur_sigma=0.5, noise_gain=0.002, noise_floor=0.008, jpeg_quality=92)

RECIPES: dict[str, BurstRecipe] = {
    "demo": BurstRecipe(16, 480, 360, _HANDHELD, _MID_ISO, seed=7,
                        description="the demo: a resolution chart, hand-held, mid ISO, JPEG 92"),
    "test-small": BurstRecipe(8, 160, 120, MotionSpec(shift_sigma=2.5, rotation_sigma_deg=0.3, zoom_sigma=0.001),
                              CameraSpec(blur_sigma=0.5, noise_gain=0.001, noise_floor=0.005, jpeg_quality=92),
                              seed=3, description="tests: 8 small frames"),
    "test-medium": BurstRecipe(12, 320, 240, MotionSpec(shift_sigma=3.0, rotation_sigma_deg=0.3, zoom_sigma=0.001),
                               _MID_ISO, seed=5, description="tests: 12 frames for accuracy and quality"),
    "pipeline": BurstRecipe(16, 1632, 1224, MotionSpec(shift_sigma=3.0, rotation_sigma_deg=0.3, zoom_sigma=0.001),
                            _MID_ISO, seed=11, description="end-to-end benchmark: 16 frames of 2 MP"),
    "reconstruction": BurstRecipe(64, 512, 384, _HANDHELD, _MID_ISO, seed=31,
                                  description="reconstruction benchmark: up to 64 frames"),
    "throughput": BurstRecipe(16, 4000, 3000, MotionSpec(shift_sigma=4.0, rotation_sigma_deg=0.2, zoom_sigma=0.0),
                              CameraSpec(blur_sigma=0.6, noise_gain=0.0, noise_floor=2.0 / 255.0, jpeg_quality=95),
                              seed=5, factor=1,
                              description="throughput and memory benchmarks: large frames, rendered without "
                                          "supersampling and without truth"),
}


def recipe_burst(name: str, **overrides) -> SyntheticBurst:
    """Render the named recipe (see :data:`RECIPES`), with keyword overrides."""
    return RECIPES[name].make(**overrides)


def _paste_mover(img: np.ndarray, mv: Mover) -> None:
    """Paste a textured, coloured object (a passer-by) into a frame, in place."""
    rng = np.random.default_rng(mv.seed)
    h, w = img.shape[:2]
    x0, y0 = max(0, mv.x), max(0, mv.y)
    x1, y1 = min(w, mv.x + mv.w), min(h, mv.y + mv.h)
    if x1 <= x0 or y1 <= y0:
        return
    tex = _pink_noise(y1 - y0, x1 - x0, rng, beta=1.2)
    col = rng.uniform(0.15, 0.85, 3)
    patch = np.clip(col[None, None, :] + 0.2 * tex[..., None], 0, 1).astype(np.float32)
    img[y0:y1, x0:x1] = patch if img.ndim == 3 else patch.mean(axis=2)


def mover_mask(burst: SyntheticBurst, scale: float | None = None) -> np.ndarray:
    """Boolean mask on the output grid of every place a mover covered, in
    reference coordinates (through each frame's true transform)."""
    import cv2

    from .geometry import apply, output_size

    s = burst.scale if scale is None else scale
    w, h = burst.params["width"], burst.params["height"]
    ow, oh = output_size(w, h, s)
    mask = np.zeros((oh, ow), np.uint8)
    for mv in burst.params.get("movers", []):
        T = burst.transforms[mv["frame"]]
        xs = np.array([mv["x"] - 0.5, mv["x"] + mv["w"] - 0.5, mv["x"] + mv["w"] - 0.5, mv["x"] - 0.5])
        ys = np.array([mv["y"] - 0.5, mv["y"] - 0.5, mv["y"] + mv["h"] - 0.5, mv["y"] + mv["h"] - 0.5])
        rx, ry = apply(T, xs, ys)
        pts = np.stack([(rx + 0.5) * s - 0.5, (ry + 0.5) * s - 0.5], axis=1)
        cv2.fillConvexPoly(mask, np.round(pts * 16).astype(np.int32), 1, cv2.LINE_8, shift=4)
    return mask.astype(bool)


def true_frame_positions(burst: SyntheticBurst, i: int, px, py):
    """(u, v): where frame ``i`` of ``burst`` truly shows the reference's
    positions (px, py), rolling-shutter wobble included: frame pixel (x, y)
    shows what the still frame shows at (x + w(y), y), w(y) = amp sin(3 pi y /
    height + phase), so u = T^-1 p - (w(v), 0) with v = (T^-1 p)_y."""
    Ti = np.linalg.inv(np.asarray(burst.transforms[i], np.float64))
    px, py = np.broadcast_arrays(np.asarray(px, np.float64), np.asarray(py, np.float64))
    wq = Ti[2, 0] * px + Ti[2, 1] * py + Ti[2, 2]
    u = (Ti[0, 0] * px + Ti[0, 1] * py + Ti[0, 2]) / wq
    v = (Ti[1, 0] * px + Ti[1, 1] * py + Ti[1, 2]) / wq
    roll = burst.rolling_shutter[i] if i < len(burst.rolling_shutter) else None
    if roll is not None:
        amp, phase = roll
        u = u - amp * np.sin(2 * np.pi * v / burst.params["height"] * 1.5 + phase)
    return u, v


def dense_map_error(burst: SyntheticBurst, i: int, tinv, field=None, field_cell: float = 0.0, step: int = 8,
                    border: int = 16) -> tuple[float, float]:
    """(global, local): mean squared distance (frame px^2) over a grid of
    reference positions p (every ``step`` px, ``border`` px in from the edges)
    between where frame ``i`` is truly showing p (:func:`true_frame_positions`)
    and where the merge reads it: ``tinv`` p for the global model alone, and
    ``tinv`` (p + D(p)) with the local displacement ``field`` (its
    ``field_cell``; :mod:`superres_gpu.local`), the same as the first without one."""
    from .backends.numpy_backend import field_at

    Ti = np.asarray(tinv, np.float64).reshape(3, 3)
    h, w = burst.frames[0].shape[:2]
    gy, gx = np.mgrid[border : h - border : step, border : w - border : step].astype(np.float64)

    def proj(px, py):
        wq = Ti[2, 0] * px + Ti[2, 1] * py + Ti[2, 2]
        return (Ti[0, 0] * px + Ti[0, 1] * py + Ti[0, 2]) / wq, (Ti[1, 0] * px + Ti[1, 1] * py + Ti[1, 2]) / wq

    ut, vt = true_frame_positions(burst, i, gx, gy)
    ug, vg = proj(gx, gy)
    e_global = float(np.mean((ug - ut) ** 2 + (vg - vt) ** 2))
    if field is None:
        return e_global, e_global
    dx, dy = field_at(field, 1.0 / field_cell, gx, gy)
    ul, vl = proj(gx + dx, gy + dy)
    return e_global, float(np.mean((ul - ut) ** 2 + (vl - vt) ** 2))
