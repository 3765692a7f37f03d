"""Baselines the benchmarks compare against, re-implemented with OpenCV.

``original``
    The method of the five scripts superres_gpu replaces: every frame
    upscaled 2x with cubic interpolation to 16 bits, AKAZE features on each
    upscaled frame matched to the first with Lowe's ratio test, a RANSAC
    homography, a bilinear warp onto the first frame's grid (borders black)
    and a plain mean.  Two resamplings per frame, no sub-pixel refinement.

``original-files``
    The same method as the scripts ran it, through 16-bit TIFF files on disk
    between the steps.

``ecc``
    OpenCV's ``findTransformECC`` (a chosen motion model) of each frame's luma
    to the reference's, then one Lanczos4 warp+upscale per frame and a mean
    over covered pixels: a strong, commonly used direct method.

``single``
    One frame (the reference) upscaled with Lanczos4.

Run as a program to time a baseline end to end like the CLI::

    python -m superres_gpu.bench.baselines original FRAMES... -o out.tif [--scale 2]
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from ..geometry import output_size, output_to_reference
from ..pixels import full_scale


def _cv2():
    import cv2

    return cv2


def akaze_create():
    """AKAZE lives in the main module in OpenCV 4 and in xfeatures2d in OpenCV 5."""
    cv2 = _cv2()
    if hasattr(cv2, "AKAZE_create"):
        return cv2.AKAZE_create()
    if hasattr(cv2, "xfeatures2d") and hasattr(cv2.xfeatures2d, "AKAZE_create"):
        return cv2.xfeatures2d.AKAZE_create()
    raise RuntimeError("this OpenCV build has no AKAZE (install opencv-contrib-python-headless)")


def read_rgb(path) -> np.ndarray:
    from ..decode import read_frame

    return read_frame(path)


def to_grey8(img: np.ndarray) -> np.ndarray:
    cv2 = _cv2()
    if img.dtype == np.uint16:
        img = (img >> 8).astype(np.uint8)
    return cv2.cvtColor(img, cv2.COLOR_RGB2GRAY) if img.ndim == 3 else img


def akaze_homography(ref_kp, ref_desc, img_grey, detector, ratio: float = 0.75):
    """Homography mapping the frame onto the reference (frame -> reference), or None."""
    cv2 = _cv2()
    kp, desc = detector.detectAndCompute(img_grey, None)
    if desc is None or ref_desc is None or len(kp) < 8:
        return None
    matcher = cv2.BFMatcher(cv2.NORM_HAMMING)
    pairs = matcher.knnMatch(desc, ref_desc, k=2)
    good = [m for m, *rest in (p for p in pairs if len(p) == 2) if m.distance < ratio * rest[0].distance]
    if len(good) < 8:
        return None
    src = np.float32([kp[m.queryIdx].pt for m in good])
    dst = np.float32([ref_kp[m.trainIdx].pt for m in good])
    H, inliers = cv2.findHomography(src, dst, cv2.RANSAC, 3.0)
    return H


def original_pipeline(frames, scale: float = 2.0, progress=None) -> tuple[np.ndarray, list]:
    """The original scripts' method; returns (uint16 image, frame->reference transforms at input res)."""
    cv2 = _cv2()
    detector = akaze_create()
    ref = frames[0]
    h, w = ref.shape[:2]
    ow, oh = output_size(w, h, scale)
    maxv = full_scale(ref.dtype)
    acc = None
    transforms = []
    ref_kp = ref_desc = None
    C = np.linalg.inv(output_to_reference(scale))  # reference -> output pixel coordinates
    for i, f in enumerate(frames):
        up = cv2.resize(f, (ow, oh), interpolation=cv2.INTER_CUBIC)
        up16 = np.clip(up.astype(np.float32) * (65535.0 / maxv), 0, 65535).astype(np.uint16)
        grey = to_grey8(up16)
        if i == 0:
            ref_kp, ref_desc = detector.detectAndCompute(grey, None)
            warped = up16
            transforms.append(np.eye(3))
        else:
            H = akaze_homography(ref_kp, ref_desc, grey, detector)
            if H is None:
                H = np.eye(3)
            transforms.append(np.linalg.inv(C) @ H @ C)
            warped = cv2.warpPerspective(up16, H, (ow, oh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        if acc is None:
            acc = np.zeros(warped.shape, np.float64)
        acc += warped
        if progress:
            progress(i + 1, len(frames))
    out = np.clip(np.rint(acc / len(frames)), 0, 65535).astype(np.uint16)
    return out, transforms


def original_pipeline_files(paths, workdir, scale: float = 2.0) -> np.ndarray:
    """The original scripts' method as they ran it, through files: every frame
    upscaled and written as a 16-bit TIFF, each TIFF read back, aligned to the
    first with AKAZE + RANSAC and written again, then all read back and
    averaged.  Same arithmetic as :func:`original_pipeline`."""
    import tifffile
    from pathlib import Path

    cv2 = _cv2()
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    big = []
    for i, p in enumerate(paths):  # jpg2largetif: 2x cubic to 16-bit TIFFs on disk
        f = read_rgb(p)
        h, w = f.shape[:2]
        up = cv2.resize(f, output_size(w, h, scale), interpolation=cv2.INTER_CUBIC)
        up16 = np.clip(up.astype(np.float32) * (65535.0 / full_scale(f.dtype)), 0, 65535).astype(np.uint16)
        big.append(work / f"large_{i:04d}.tif")
        tifffile.imwrite(big[-1], up16)
    detector = akaze_create()
    aligned = []
    ref_kp = ref_desc = None
    for i, q in enumerate(big):  # stack_align: features, homography to the first, bilinear warp
        up16 = tifffile.imread(q)
        grey = to_grey8(up16)
        if i == 0:
            ref_kp, ref_desc = detector.detectAndCompute(grey, None)
            warped = up16
        else:
            H = akaze_homography(ref_kp, ref_desc, grey, detector)
            oh, ow = up16.shape[:2]
            warped = cv2.warpPerspective(up16, np.eye(3) if H is None else H, (ow, oh), flags=cv2.INTER_LINEAR,
                                         borderMode=cv2.BORDER_CONSTANT)
        aligned.append(work / f"al_{i:04d}.tif")
        tifffile.imwrite(aligned[-1], warped)
    acc = None
    for q in aligned:  # stack_avg: the plain mean
        img = tifffile.imread(q).astype(np.float64)
        acc = img if acc is None else acc + img
    return np.clip(np.rint(acc / len(aligned)), 0, 65535).astype(np.uint16)


def ecc_transform(ref_luma: np.ndarray, luma: np.ndarray, model: str = "homography", iterations: int = 100, eps=1e-6):
    """findTransformECC frame -> reference (3x3), or None when it fails."""
    cv2 = _cv2()
    motion = {
        "translation": cv2.MOTION_TRANSLATION,
        "euclidean": cv2.MOTION_EUCLIDEAN,
        "affine": cv2.MOTION_AFFINE,
        "homography": cv2.MOTION_HOMOGRAPHY,
    }[model]
    warp = np.eye(3, dtype=np.float32) if model == "homography" else np.eye(2, 3, dtype=np.float32)
    crit = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, iterations, eps)
    try:
        _, warp = cv2.findTransformECC(ref_luma, luma, warp, motion, crit, None, 5)
    except cv2.error:
        return None
    W = np.eye(3)
    W[: warp.shape[0]] = warp
    # ECC's warp maps template (reference) coordinates into the input frame.
    return np.linalg.inv(W)


def mean_merge(frames, transforms, scale: float = 2.0) -> np.ndarray:
    """One Lanczos4 warp+upscale per frame (OpenCV), mean over covered pixels."""
    cv2 = _cv2()
    ref = frames[0]
    h, w = ref.shape[:2]
    ow, oh = output_size(w, h, scale)
    maxv = full_scale(ref.dtype)
    S = output_to_reference(scale)
    num = np.zeros((oh, ow) + ref.shape[2:], np.float64)
    den = np.zeros((oh, ow), np.float64)
    ones = np.ones((h, w), np.float32)
    for f, T in zip(frames, transforms):
        if T is None:
            continue
        M = np.linalg.inv(T) @ S
        flags = cv2.INTER_LANCZOS4 | cv2.WARP_INVERSE_MAP
        v = cv2.warpPerspective(f.astype(np.float32), M, (ow, oh), flags=flags, borderMode=cv2.BORDER_REPLICATE)
        c = cv2.warpPerspective(ones, M, (ow, oh), flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP, borderValue=0)
        num += v * (c[..., None] if v.ndim == 3 else c)
        den += c
    out = num / np.maximum(den, 1e-9)[..., None] if num.ndim == 3 else num / np.maximum(den, 1e-9)
    return np.clip(np.rint(out * (65535.0 / maxv)), 0, 65535).astype(np.uint16)


def ecc_pipeline(frames, scale: float = 2.0, model: str = "homography") -> tuple[np.ndarray, list]:
    from ..backends import get_backend

    B = get_backend("numpy")
    ref_l = B.luma(frames[0])
    transforms = [np.eye(3)]
    for f in frames[1:]:
        transforms.append(ecc_transform(ref_l, B.luma(f), model))
    return mean_merge(frames, transforms, scale), transforms


def single_frame(frame: np.ndarray, scale: float = 2.0) -> np.ndarray:
    """One frame (the reference) upscaled with Lanczos4 (the demo's own comparison)."""
    from ..demo import lanczos_upscale

    h, w = frame.shape[:2]
    return lanczos_upscale(frame, *output_size(w, h, scale))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m superres_gpu.bench.baselines", description=__doc__.split("\n\n")[0])
    p.add_argument("method", choices=("original", "original-files", "ecc", "single"))
    p.add_argument("frames", nargs="+")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--scale", type=float, default=2.0)
    a = p.parse_args(argv)
    import tifffile

    t = time.perf_counter()
    frames = [read_rgb(f) for f in a.frames] if a.method != "original-files" else None
    if a.method == "original-files":
        import tempfile

        with tempfile.TemporaryDirectory(prefix="original_scripts_") as tmp:
            img = original_pipeline_files(a.frames, tmp, a.scale)
    elif a.method == "original":
        img, _ = original_pipeline(frames, a.scale)
    elif a.method == "ecc":
        img, _ = ecc_pipeline(frames, a.scale)
    else:
        img = single_frame(frames[0], a.scale)
    tifffile.imwrite(a.output, img, photometric="rgb" if img.ndim == 3 else "minisblack")
    print(f"{a.method}: {time.perf_counter() - t:.2f}s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
