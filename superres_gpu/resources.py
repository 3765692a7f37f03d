"""The resource guard: what a run will need, checked against limits before any decode.

A frame's header can claim any size (a 10 KB JPEG may claim 65000x65000
pixels), so the claimed size is checked before a decoder allocates it:

* :func:`check_frame_pixels` holds a frame's pixel count under a limit
  (``--max-megapixels``);
* :func:`run_memory` estimates the host memory of a whole run at a scale
  (frames in flight, the reference's working set, the accumulators and the
  output) and :func:`check_run_memory` compares it with the memory available.
"""

from __future__ import annotations

import os

from .errors import InputError

DEFAULT_MAX_MEGAPIXELS = 250.0  # per frame: above the largest phone sensors, far below a decompression bomb

# Bytes per input pixel of float32 working arrays that live while a frame is
# aligned: luma pyramid and B-spline coefficients of the frame and of the
# reference, gradients, residual and weights.
_WORK_BYTES_PER_PIXEL = 48
# ... and of the kernel merge: the frame as float32 in four padded channels, and the
# anisotropic kernel's map (three float32 planes on the reference's grid).
_KERNEL_BYTES_PER_PIXEL = 28
# ... of a frame held back until the motion model and the template are settled, besides
# its decoded copy: its FrameLevels (float32 luma pyramid and B-spline coefficients).
_HELD_BYTES_PER_PIXEL = 11
# ... with chromatic aberration corrected on chroma-subsampled frames: the frame and the channels' low
# bands as float32 per channel; the luma, its chroma chain (and the half-size step between), and the low
# band of the channel being moved, per pixel (pixels.smooth_chroma_band, NumpyBackend.tca_band: measured
# 39-41 B per pixel of an 8-bit RGB frame at the peak, 45 with odd sides (the padded luma), 35-36 with a
# decoder that repeats the chroma in blocks)
_BAND_BYTES_PER_CHANNEL = 8
_BAND_BYTES_PER_PIXEL = 21
# ... and for raw frames, whose band is moved in the camera's own channels, the frame in those (float32 RGB:
# tca.band_corrected measured 51 B per pixel of a 16-bit RGB frame at the peak, against 39 without it)
_BAND_CAMERA_BYTES_PER_PIXEL = 12


MAX_SIDE = 32766 - 16  # OpenCV's remap (both merges on the CPU) takes images below 32767 px a side; the kernel
#                        merge pads frames by a few pixels


def check_merge_size(path, width: int, height: int, scale: float) -> None:
    """Refuse frames or an output wider or taller than :data:`MAX_SIDE` px,
    before any decoding, with a line that says what to change."""
    ow, oh = round(scale * width), round(scale * height)
    if max(width, height, ow, oh) > MAX_SIDE:
        raise InputError(
            f"{width}x{height} frames at scale {scale:g} make a {ow}x{oh} output; the merge handles at most "
            f"{MAX_SIDE} px a side (frames and output): lower --scale, or crop the frames",
            str(path),
        )


def check_frame_pixels(path, width: int, height: int, max_megapixels: float = DEFAULT_MAX_MEGAPIXELS) -> None:
    """Refuse a frame whose header claims more than ``max_megapixels``."""
    mp = width * height / 1e6
    if mp > max_megapixels:
        raise InputError(
            f"claims {width}x{height} pixels ({mp:.0f} MP), more than the limit of {max_megapixels:g} MP "
            "(a damaged file or a decompression bomb? --max-megapixels raises the limit)",
            str(path),
        )


def run_memory(width: int, height: int, channels: int, itemsize: int, scale: float, frames_in_flight: int,
               kernel: bool = False, held: int = 0, template_scale: float | None = None,
               chroma_band: bool = False, culling: int = 0, den_planes: int = 1, camera_channels: bool = False) -> int:
    """Bytes of host memory a run needs, roughly: ``frames_in_flight`` decoded
    frames, the working arrays of alignment (and of the kernel merge, with
    ``kernel``), and at the output size the accumulators (float32 per channel
    plus weight), the mean and the 16-bit result; ``held`` frames held back
    with their pyramids; with ``template_scale`` the template's merge at that
    scale (accumulators and mean) and a copy of the reference; with
    ``chroma_band`` the frame the chromatic aberration's correction makes of
    a chroma-subsampled frame (:mod:`superres_gpu.tca`; with ``camera_channels``
    made in a raw camera's own channels); ``culling`` reads of
    the culling pass at the same time (a decoded frame and its float32 luma
    each: formats without a half-size decode read the whole frame);
    ``den_planes`` the weight sums' planes (the kernel merge's with channel
    maps: one per channel)."""
    n_in = width * height
    n_out = round(scale * width) * round(scale * height)
    frames = (frames_in_flight + held) * n_in * channels * itemsize + culling * n_in * (channels * itemsize + 4)
    work = (_WORK_BYTES_PER_PIXEL + (_KERNEL_BYTES_PER_PIXEL if kernel else 0) + _HELD_BYTES_PER_PIXEL * held) * n_in
    if chroma_band:
        work += (_BAND_BYTES_PER_CHANNEL * channels + _BAND_BYTES_PER_PIXEL
                 + (_BAND_CAMERA_BYTES_PER_PIXEL if camera_channels else 0)) * n_in
    out = n_out * (4 * (channels + den_planes) + 4 * channels + 2 * channels)
    if template_scale is not None:
        n_t = round(template_scale * width) * round(template_scale * height)
        out += n_t * (4 * (channels + 1) + 4 * channels) + n_in * channels * itemsize
    return frames + work + out


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (MemAvailable plus free
    swap where /proc/meminfo exists), or None when unknown."""
    try:
        fields = {}
        with open("/proc/meminfo") as fh:
            for line in fh:
                key, _, rest = line.partition(":")
                fields[key] = int(rest.split()[0]) * 1024
        return fields["MemAvailable"] + fields.get("SwapFree", 0)
    except (OSError, KeyError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_run_memory(path, need: int, available: int | None = None) -> None:
    """Refuse a run that needs more memory than is available (``path``: the reference)."""
    available = available_memory() if available is None else available
    if available is not None and need > available:
        raise InputError(
            f"this run needs about {need / 2**30:.1f} GiB of memory at this size and scale, but "
            f"{available / 2**30:.1f} GiB is available; use a smaller --scale or smaller frames",
            str(path),
        )
