"""The picture of ``superres run --compare``: one frame beside the merged burst.

What a photographer wants to see first is whether the burst gave more than one
frame would have: so the reference frame, upscaled to the output's size with
Lanczos (what the original workflow's 2x upscale made), is put beside the
result at the places of the picture with the most detail, 1:1 on the output
grid, under a thumbnail of the whole result that marks where each crop lies.

The crops are chosen on the reference as the merge reads it, before its
upload (:func:`detail_crops`; the frame is decoded once), and its Lanczos crops
are sampled then (:func:`lanczos_crops`), on the same
output grid as the merge (output pixel X lies at reference x = (X + 0.5) /
scale - 0.5), so both columns show exactly the same place; only the small
crops are kept while the burst is merged.  Linear frames (raw) are shown
through the sRGB curve, both columns alike.
"""

from __future__ import annotations

import numpy as np

CROP = 320  # output px per crop side, at most
CROPS = 3  # how many crops, at most
GAP = 8
LABEL_H = 26
MIN_VIEW = 240  # crops of smaller outputs are enlarged (nearest neighbour) to about this many px


def crop_size(out_w: int, out_h: int) -> int:
    """The crops' side in output px: :data:`CROP`, or less on small outputs
    (a third of the shorter side: room for more than one crop)."""
    return int(max(1, min(CROP, out_w, out_h, max(16, min(out_w, out_h) // 3))))


def detail_crops(luma: np.ndarray, scale: float, count: int = CROPS, size: int | None = None) -> list:
    """Up to ``count`` crops (x, y, size) in output px, on the reference's
    most detailed places, apart from each other.

    The detail of a place is the mean squared gradient of the reference's
    luma (``luma``, (H, W) float) after a Gaussian of 1 px, which lets noise
    count less than edges and texture, over the crop's window; places within
    4 % of the frame's border (which a hand-held burst covers least) are left
    out where the frame is big enough.  Crops are taken best first, each at
    least three crops' sides (output px, as placed inside the output) from
    those taken, then, while fewer than ``count``, one side, so that no two
    overlap; fewer when no such place is left.
    """
    import cv2

    h, w = luma.shape
    out_w, out_h = int(round(w * scale)), int(round(h * scale))
    size = crop_size(out_w, out_h) if size is None else int(size)
    g = cv2.GaussianBlur(np.asarray(luma, np.float32), (0, 0), 1.0)
    gx = cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3)
    win = max(1, int(round(size / scale)))  # the crop's side in reference px
    energy = cv2.boxFilter(gx * gx + gy * gy, cv2.CV_32F, (win, win), normalize=True,
                           borderType=cv2.BORDER_REFLECT)
    # candidates on a grid of a quarter window: a crop whose window is centred there, inside the frame
    step = max(1, win // 4)
    half = win / 2.0
    margin_x = 0.04 * w if w - 0.08 * w >= win else 0.0
    margin_y = 0.04 * h if h - 0.08 * h >= win else 0.0
    xs = np.arange(np.ceil(max(half, margin_x + half)), np.floor(min(w - half, w - margin_x - half)) + 1, step)
    ys = np.arange(np.ceil(max(half, margin_y + half)), np.floor(min(h - half, h - margin_y - half)) + 1, step)
    if xs.size == 0:
        xs = np.array([w / 2.0])
    if ys.size == 0:
        ys = np.array([h / 2.0])
    cx, cy = np.meshgrid(np.clip(xs.astype(np.int64), 0, w - 1), np.clip(ys.astype(np.int64), 0, h - 1))
    score = energy[cy, cx].ravel()
    order = np.argsort(-score, kind="stable")

    def crop_at(k):  # the crop (output px) centred on candidate k, inside the output
        x0 = int(round((float(cx.flat[k]) + 0.5) * scale - 0.5 - size / 2.0))
        y0 = int(round((float(cy.flat[k]) + 0.5) * scale - 0.5 - size / 2.0))
        return min(max(0, x0), max(0, out_w - size)), min(max(0, y0), max(0, out_h - size))

    crops: list[tuple[int, int, int]] = []
    for apart in (3 * size, size):  # spread over the picture where it has detail enough, else side by side
        for k in order:
            if len(crops) == count:
                break
            x0, y0 = crop_at(k)
            if all(max(abs(x0 - qx), abs(y0 - qy)) >= apart for qx, qy, _ in crops):
                crops.append((x0, y0, size))
        if len(crops) == count:
            break
    return crops


def lanczos_crops(frame: np.ndarray, scale: float, crops) -> list:
    """The crops of ``frame`` (the reference, (H, W) or (H, W, 3), uint8 or
    uint16) upscaled by ``scale`` with OpenCV's Lanczos4, on the merge's output
    grid (edges reflected), each of the frame's dtype."""
    import cv2

    out = []
    for x0, y0, size in crops:
        X = np.arange(x0, x0 + size, dtype=np.float32)
        Y = np.arange(y0, y0 + size, dtype=np.float32)
        b = 0.5 / scale - 0.5
        mx = np.broadcast_to(X[None, :] / np.float32(scale) + np.float32(b), (size, size)).astype(np.float32)
        my = np.broadcast_to(Y[:, None] / np.float32(scale) + np.float32(b), (size, size)).astype(np.float32)
        out.append(cv2.remap(np.ascontiguousarray(frame), mx, my, cv2.INTER_LANCZOS4,
                             borderMode=cv2.BORDER_REFLECT_101))
    return out


def prepare(frame: np.ndarray, scale: float) -> tuple[list, list]:
    """(crops, the reference's Lanczos crops) of the reference ``frame``
    (:func:`detail_crops` on its luma, :func:`lanczos_crops`)."""
    f = np.asarray(frame, np.float32)
    luma = f @ np.float32([0.299, 0.587, 0.114]) if f.ndim == 3 else f
    crops = detail_crops(luma, scale)
    return crops, lanczos_crops(frame, scale, crops)


def image_crops(image: np.ndarray, crops) -> list:
    """The crops of the output ``image`` (copies)."""
    return [np.array(image[y0 : y0 + s, x0 : x0 + s]) for x0, y0, s in crops]


def display8(img: np.ndarray, linear: bool = False) -> np.ndarray:
    """8-bit RGB for the screen: uint8 as it is, uint16 by 257, float32 with
    1.0 as full scale (clipped); grey repeated to three channels; with
    ``linear`` the sRGB curve is applied first."""
    from .raw import encode_srgb

    a = np.asarray(img)
    if a.dtype == np.uint8:
        x = a.astype(np.float32) / np.float32(255.0)
    elif a.dtype == np.uint16:
        x = a.astype(np.float32) / np.float32(65535.0)
    else:
        x = np.clip(np.nan_to_num(a.astype(np.float32)), 0.0, 1.0)
    if linear:
        x = encode_srgb(x)
    out = np.clip(np.rint(x * np.float32(255.0)), 0, 255).astype(np.uint8)
    if out.ndim == 2:
        out = np.repeat(out[..., None], 3, axis=2)
    return out


def ascii_text(text: str) -> str:
    """``text`` as OpenCV's Hershey fonts can draw it (printable ASCII; others as '?')."""
    return "".join(c if 32 <= ord(c) < 127 else "?" for c in text)


def comparison_picture(result: np.ndarray, crops, singles, merged, left: str, right: str, title: str,
                       linear_single: bool = False, linear_result: bool = False) -> np.ndarray:
    """The 8-bit RGB picture: ``title``, a thumbnail of ``result`` (the merged
    image) with each crop's frame and number, then one row per crop: the
    single frame's crop (``singles``, labelled ``left``) beside the merge's
    (``merged``, labelled ``right``).  ``linear_*``: show that image through
    the sRGB curve."""
    import cv2

    size = crops[0][2] if crops else 0
    zoom = max(1, min(4, int(np.ceil(MIN_VIEW / max(1, size))))) if crops else 1
    tile = size * zoom
    width = max(2 * tile + GAP, 480)
    oh, ow = result.shape[:2]
    tw = width
    th = max(1, int(round(oh * tw / ow)))
    if th > 2 * tile and tile > 0:  # a tall result: a thumbnail no taller than two crops
        th = 2 * tile
        tw = max(1, int(round(ow * th / oh)))
    rows_h = len(crops) * (LABEL_H + tile + GAP)
    pic = np.full((LABEL_H + th + GAP + rows_h, width, 3), 255, np.uint8)

    def text(line, x, y, room):  # at most ``room`` px wide: a smaller font, then cut short
        line = ascii_text(line)
        font, scale = cv2.FONT_HERSHEY_SIMPLEX, 0.5
        while scale > 0.35 and cv2.getTextSize(line, font, scale, 1)[0][0] > room - 8:
            scale -= 0.05
        while len(line) > 1 and cv2.getTextSize(line, font, scale, 1)[0][0] > room - 8:
            line = line[:-2] + "~"
        cv2.putText(pic, line, (x + 4, y + LABEL_H - 8), font, scale, (0, 0, 0), 1, cv2.LINE_AA)

    text(title, 0, 0, width)
    # shrunk to the thumbnail's size first (display8 makes whole-image copies)
    thumb = display8(cv2.resize(np.ascontiguousarray(result), (tw, th), interpolation=cv2.INTER_AREA), linear_result)
    tx = (width - tw) // 2
    pic[LABEL_H : LABEL_H + th, tx : tx + tw] = thumb
    f = tw / ow
    for n, (x0, y0, s) in enumerate(crops, 1):
        p0 = (tx + int(x0 * f), LABEL_H + int(y0 * f))
        p1 = (tx + max(int((x0 + s) * f), int(x0 * f) + 2), LABEL_H + max(int((y0 + s) * f), int(y0 * f) + 2))
        cv2.rectangle(pic, p0, p1, (255, 40, 40), 2)
        cv2.putText(pic, str(n), (p0[0] + 3, p0[1] + 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 40, 40), 1,
                    cv2.LINE_AA)
    y = LABEL_H + th + GAP
    for n, (a, b) in enumerate(zip(singles, merged), 1):
        text(f"{n}  {left}", 0, y, tile)
        text(right, tile + GAP, y, tile)
        y += LABEL_H
        for x, img, lin in ((0, a, linear_single), (tile + GAP, b, linear_result)):
            c = display8(img, lin)
            if zoom > 1:
                c = cv2.resize(c, (c.shape[1] * zoom, c.shape[0] * zoom), interpolation=cv2.INTER_NEAREST)
            pic[y : y + c.shape[0], x : x + c.shape[1]] = c
        y += tile + GAP
    return pic
