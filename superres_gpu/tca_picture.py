"""A picture of a burst's lateral chromatic aberration: the reference frame's
four corners as shot and as ``superres run --tca on`` corrects them
(``superres tca --picture``).

Colour fringes are easier to judge by eye than a scale in percent.  Each
corner's crop is the most textured :data:`TILE` x :data:`TILE` window (the
frame's shorter side, where that is smaller) of that corner's region, a
quarter of each side but at least the crop (green's edge strength, summed
over the window), enlarged :data:`ZOOM` times (a smaller crop more, to the
same size) without smoothing so that a fraction of a pixel of fringe stays
visible.  The correction is the
run's: on frames with full-resolution chroma each colour channel read at
its own position (Lanczos4, the merge's resampling), on chroma-subsampled
frames (4:2:0 JPEG, HEIC) only each channel's low band moved (the backend's
``tca_band``), which is all such a file stores of each channel's own
position.
"""

from __future__ import annotations

import numpy as np

TILE = 64  # frame px a side of each corner's crop
ZOOM = 4  # each frame pixel drawn as ZOOM x ZOOM (more for crops of frames smaller than TILE)
CORNERS = ("top left", "top right", "bottom left", "bottom right")


def _crop_origin(green: np.ndarray, corner: int, tile: int) -> tuple[int, int]:
    """(x0, y0) of the most textured ``tile`` x ``tile`` window in corner
    ``corner`` (an index of :data:`CORNERS`) of ``green`` (float32 plane)."""
    import cv2

    from .tca import edge_strength

    h, w = green.shape
    rw, rh = max(tile, w // 4), max(tile, h // 4)
    x_lo = 0 if corner in (0, 2) else w - rw
    y_lo = 0 if corner in (0, 1) else h - rh
    region = edge_strength(green[y_lo : y_lo + rh, x_lo : x_lo + rw])
    sums = cv2.boxFilter(region, cv2.CV_32F, (tile, tile), anchor=(0, 0), normalize=False,
                         borderType=cv2.BORDER_CONSTANT)[: rh - tile + 1, : rw - tile + 1]
    y, x = np.unravel_index(int(np.argmax(sums)), sums.shape)
    return int(x_lo + x), int(y_lo + y)


def corner_tiles(B, frame: np.ndarray, est, tile: int = TILE) -> list[tuple[str, tuple[int, int], np.ndarray,
                                                                             np.ndarray]]:
    """Per corner: (name, (x0, y0), as shot, corrected), the crops float32
    (tile, tile, 3) in the frame's values; ``frame`` an RGB host array (the
    burst's reference), ``est`` its :class:`~superres_gpu.tca.TCAEstimate`,
    ``B`` the backend that moves the low band of chroma-subsampled frames."""
    import cv2

    h, w = frame.shape[:2]
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError("the chromatic aberration's picture needs an RGB frame")
    tile = int(min(tile, w, h))
    f = frame.astype(np.float32)
    band = None
    if est.subsampled:
        from .tca import band_corrected

        band = B.asnumpy(band_corrected(B, B.asarray(f), est))
    out = []
    for k, name in enumerate(CORNERS):
        x0, y0 = _crop_origin(f[..., 1], k, tile)
        shot = f[y0 : y0 + tile, x0 : x0 + tile]
        if band is not None:
            fixed = band[y0 : y0 + tile, x0 : x0 + tile].copy()
        else:
            fixed = shot.copy()
            gx, gy = np.meshgrid(np.arange(x0, x0 + tile, dtype=np.float64),
                                 np.arange(y0, y0 + tile, dtype=np.float64))
            for c, ch in ((0, est.red), (2, est.blue)):
                u, v = ch.position(gx, gy, est.radius)
                fixed[..., c] = cv2.remap(f[..., c], u.astype(np.float32), v.astype(np.float32),
                                          cv2.INTER_LANCZOS4, borderMode=cv2.BORDER_REPLICATE)
        out.append((name, (x0, y0), shot, fixed))
    return out


def _shift_at(est, x: float, y: float) -> tuple[float, float]:
    """(red, blue) displacement (px) the model implies at green's (x, y)."""
    return tuple(float(np.hypot(*(np.array(ch.position(x, y, est.radius)) - (x, y)))) for ch in (est.red, est.blue))


def tca_picture(B, frame: np.ndarray, est, max_value: float, linear: bool = False, tile: int = TILE,
                zoom: int = ZOOM) -> np.ndarray:
    """8-bit RGB picture: the four corners of ``frame`` as shot (top row) and
    corrected (bottom row), each with where it is and the displacement the
    estimate finds there; ``max_value`` the frames' full scale, ``linear``
    for raw frames in linear light (drawn through a 1/2.2 curve)."""
    import cv2

    tiles = corner_tiles(B, frame, est, tile)
    zoom = max(int(zoom), -(-tile * zoom // tiles[0][2].shape[0]))  # a smaller crop (small frames) drawn as large
    t = tiles[0][2].shape[0] * zoom
    gap, head, label = 12, 50, 22
    W = 4 * t + 5 * gap
    H = head + 2 * (label + t) + gap + 28
    img = np.full((H, W, 3), 255, np.uint8)

    def to8(a):
        v = np.clip(a / float(max_value), 0.0, 1.0)
        if linear:
            v = v ** (1 / 2.2)
        return np.rint(v * 255).astype(np.uint8)

    def text(s, x, y, scale=0.42):
        cv2.putText(img, s, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1, cv2.LINE_AA)

    shift = est.corner_shift_px()
    text(f"lateral chromatic aberration: red {shift['red']:.2f} px, blue {shift['blue']:.2f} px at the frame's "
         f"corners ({est.frames} frame{'s' if est.frames != 1 else ''}); crops enlarged {zoom}x", gap, 22, 0.5)
    how = ("each channel's low band moved, as the file stores its colour at lower resolution" if est.subsampled
           else "each colour channel read at its own position")
    text(f"top: as shot; bottom: as superres run --tca on corrects it ({how})", gap, 42)
    for k, (name, (x0, y0), shot, fixed) in enumerate(tiles):
        x = gap + k * (t + gap)
        red, blue = _shift_at(est, x0 + shot.shape[1] / 2.0, y0 + shot.shape[0] / 2.0)
        for row, (what, crop) in enumerate((("as shot", shot), ("corrected", fixed))):
            y = head + row * (label + t)
            text(f"{name}, {what}", x, y + 15)
            big = cv2.resize(to8(crop), (t, t), interpolation=cv2.INTER_NEAREST)
            img[y + label : y + label + t, x : x + t] = big
        text(f"at ({x0}, {y0}): red {red:.2f} px, blue {blue:.2f} px", x, H - 12, 0.38)
    return img
