"""CuPy backend: the same interface as NumpyBackend, hot loops as CUDA kernels.

Every method launches the kernels of ``kernels/*.cu`` (through the memoized
factory in :mod:`superres_gpu.cuda_modules`); FFTs go through ``cupy.fft`` (cuFFT).
Nothing here copies data between host and device except ``asarray`` (upload)
and ``asnumpy`` (download); the per-frame alignment state stays on the device,
so aligning and merging a frame needs no synchronisation with the host.

Uploads of large frames go through pinned staging buffers and are queued
asynchronously, so the host goes on decoding the next frames while the device
copies and computes.
"""

from __future__ import annotations

import numpy as np

from ..cuda_modules import get_kernel
from ..interp import lanczos4_table
from ..pixels import full_scale
from . import base as S
from .launch import BLOCK_1D, BLOCK_2D, PEAK_THREADS, REDUCE_THREADS, grid_1d, grid_2d, reduce_blocks

_PINNED_MIN_BYTES = 1 << 20


class CupyBackend:
    """The GPU backend.  Create through ``get_backend("cupy")``."""

    name = "cupy"

    def __init__(self, device: int = 0):
        import cupy as cp

        self.cp = cp
        self.xp = cp
        self.device = cp.cuda.Device(device)
        self.device.use()
        props = cp.cuda.runtime.getDeviceProperties(self.device.id)
        self.sm_count = int(props["multiProcessorCount"])
        name = props["name"]
        self.device_name = name.decode() if isinstance(name, bytes) else str(name)
        self._tab = cp.asarray(lanczos4_table())
        self._one = cp.ones((1, 1), dtype=cp.float32)  # stands in for an absent weight map / mask
        self._eye9 = cp.asarray(np.tile(np.eye(3).ravel(), (3, 1)))  # stands in for absent channel maps
        self._taps: dict[bytes, object] = {}
        self._pinned: list = [None, None]  # (buffer, nbytes, event) ring
        self._pin_next = 0

    # --- memory -------------------------------------------------------------
    def asarray(self, a, dtype=None):
        cp = self.cp
        if isinstance(a, cp.ndarray):
            return a if dtype is None else a.astype(dtype, copy=False)
        a = np.asarray(a, dtype=dtype)
        if a.nbytes >= _PINNED_MIN_BYTES:
            return self._upload_pinned(np.ascontiguousarray(a))
        return cp.asarray(a)

    def _upload_pinned(self, a: np.ndarray):
        """Copy through a pinned staging buffer, asynchronously on the compute
        stream: the host returns at once (to decode the next frames) and the
        copy is ordered before this frame's kernels and after the previous
        frame's, so device memory recycled by the pool is never overwritten
        while still in use.  Two staging buffers alternate; a buffer is reused
        only after the copy that last read it has completed."""
        cp = self.cp
        slot = self._pin_next
        self._pin_next = (slot + 1) % len(self._pinned)
        entry = self._pinned[slot]
        if entry is not None and entry[2] is not None:
            entry[2].synchronize()
        if entry is None or entry[1] < a.nbytes:
            entry = [cp.cuda.alloc_pinned_memory(a.nbytes), a.nbytes, None]
        staging = np.frombuffer(entry[0], dtype=a.dtype, count=a.size).reshape(a.shape)
        np.copyto(staging, a)
        dev = cp.empty(a.shape, dtype=a.dtype)
        stream = cp.cuda.get_current_stream()
        dev.set(staging, stream=stream)
        entry[2] = stream.record()
        self._pinned[slot] = entry
        return dev

    def asnumpy(self, a) -> np.ndarray:
        if isinstance(a, np.ndarray):
            return a
        return self.cp.asnumpy(a)

    def synchronize(self) -> None:
        self.cp.cuda.get_current_stream().synchronize()

    def peak_memory_mib(self) -> float | None:
        """Bytes held by CuPy's memory pool (it keeps what it once allocated)."""
        return self.cp.get_default_memory_pool().total_bytes() / 2**20

    def describe(self) -> str:
        return f"CuPy {self.cp.__version__} on {self.device_name} ({self.sm_count} SMs)"

    # --- stage timing without host syncs ----------------------------------
    def mark(self):
        return self.cp.cuda.get_current_stream().record()

    def elapsed(self, m0, m1) -> float:
        """Seconds between two marks (waits for the stream to pass m1)."""
        m1.synchronize()
        return self.cp.cuda.get_elapsed_time(m0, m1) / 1000.0

    def wait(self, mark) -> None:
        """Host waits until the device has passed ``mark`` (bounds the work queued ahead)."""
        mark.synchronize()

    # --- helpers ------------------------------------------------------------------
    def _kernel(self, family: str, name: str):
        return get_kernel(family, name, self.device.id)

    def _contig(self, a):
        return a if a.flags.c_contiguous else self.cp.ascontiguousarray(a)

    @staticmethod
    def _type_name(dtype) -> str:
        if dtype == np.uint8:
            return "unsigned char"
        if dtype == np.uint16:
            return "unsigned short"
        raise TypeError(f"frames must be uint8 or uint16, not {dtype}")

    # --- kernel 2: luma and pyramid -------------------------------------------------
    def luma(self, frame):
        cp = self.cp
        frame = self._contig(frame)
        h, w = frame.shape[:2]
        c = 1 if frame.ndim == 2 else frame.shape[2]
        out = cp.empty((h, w), dtype=cp.float32)
        inv = np.float32(1.0 / full_scale(frame.dtype))
        k = self._kernel("pyramid", f"luma<{self._type_name(frame.dtype)}, {c}>")
        k(grid_2d(w, h), BLOCK_2D, (frame, np.int32(w), np.int32(h), inv, out))
        return out

    def downsample2(self, img):
        cp = self.cp
        img = self._contig(img)
        h, w = img.shape
        out = cp.empty((h // 2, w // 2), dtype=cp.float32)
        self._kernel("pyramid", "downsample2")(
            grid_2d(w // 2, h // 2), BLOCK_2D, (img, np.int32(w), np.int32(h), out, np.int32(w // 2), np.int32(h // 2))
        )
        return out

    def sepfilter(self, img, taps):
        cp = self.cp
        img = self._contig(img)
        host = np.ascontiguousarray(taps, dtype=np.float32)
        key = host.tobytes()
        taps = self._taps.get(key)
        if taps is None:
            taps = self._taps[key] = cp.asarray(host)
        radius = np.int32(taps.size // 2)
        h, w = img.shape
        tmp = cp.empty_like(img)
        out = cp.empty_like(img)
        g = grid_2d(w, h)
        self._kernel("pyramid", "blur_rows")(g, BLOCK_2D, (img, np.int32(w), np.int32(h), taps, radius, tmp))
        self._kernel("pyramid", "blur_cols")(g, BLOCK_2D, (tmp, np.int32(w), np.int32(h), taps, radius, out))
        return out

    def gradient(self, img):
        cp = self.cp
        img = self._contig(img)
        h, w = img.shape
        gx = cp.empty_like(img)
        gy = cp.empty_like(img)
        self._kernel("pyramid", "gradient")(grid_2d(w, h), BLOCK_2D, (img, np.int32(w), np.int32(h), gx, gy))
        return gx, gy

    # --- kernel 3: phase correlation -------------------------------------------------
    def _windowed(self, img, window):
        cp = self.cp
        img, window = self._contig(img), self._contig(window)
        n = img.size
        c = cp.empty(img.shape, dtype=cp.complex64)
        self._kernel("phasecorr", "window_complex")(grid_1d(n), (BLOCK_1D,), (img, window, np.int64(n), c))
        return c

    def reference_spectrum(self, img, window):
        return self.cp.fft.fft2(self._windowed(img, window))

    def phase_correlation(self, ref_spectrum, img, window):
        cp = self.cp
        f = cp.fft.fft2(self._windowed(img, window))
        n = f.size
        cross = cp.empty_like(f)
        self._kernel("phasecorr", "cross_power")(
            grid_1d(n), (BLOCK_1D,), (self._contig(ref_spectrum), f, np.int64(n), cross)
        )
        return cp.ascontiguousarray(cp.fft.ifft2(cross).real)

    def peak_to_state(self, surface, state, level: int) -> None:
        surface = self._contig(surface)
        h, w = surface.shape
        self._kernel("phasecorr", "peak_fit")((1,), (PEAK_THREADS,), (surface, np.int32(w), np.int32(h), np.int32(level), state))

    # --- kernel 4: refinement reductions and update ------------------------------
    def align_reduce(self, img, points, state, model_id: int, level: int, norm, margin: float = 0.0,
                     iteration: int = 0):
        cp = self.cp
        img, points = self._contig(img), self._contig(points)
        h, w = img.shape
        n = points.shape[1]
        nb = reduce_blocks(n, self.sm_count)
        partial = cp.empty((nb, S.SUMS_LEN), dtype=cp.float64)
        cx, cy, sc = (np.float64(v) for v in norm)
        self._kernel("align", "align_reduce_partial")(
            (nb,),
            (REDUCE_THREADS,),
            (img, np.int32(w), np.int32(h), points, np.int64(n), state, np.int32(model_id), np.int32(level),
             cx, cy, sc, np.float64(margin), np.int32(iteration), partial),
        )
        sums = cp.empty(S.SUMS_LEN, dtype=cp.float64)
        self._kernel("align", "align_sum_partials")((1,), (S.SUMS_LEN,), (partial, np.int32(nb), sums))
        return sums

    def align_update(self, sums, state, model_id: int, norm, damping: float, converged_px: float = 0.0,
                     iteration: int = 0) -> None:
        cx, cy, sc = (np.float64(v) for v in norm)
        self._kernel("align", "align_update")(
            (1,), (1,), (self._contig(sums), state, np.int32(model_id), cx, cy, sc, np.float64(damping),
                         np.float64(converged_px), np.int32(iteration))
        )

    def align_finalize(self, state, width: int, height: int, min_corr: float, min_overlap: float) -> None:
        self._kernel("align", "align_finalize")(
            (1,), (1,), (state, np.int32(width), np.int32(height), np.float64(min_corr), np.float64(min_overlap))
        )

    # --- kernel 1: fused resample-and-accumulate ---------------------------------
    def resample_accumulate(self, frame, state, num, den, scale: float, max_value: float, weights=None,
                            weight_level: int = 1, channel_maps=None) -> None:
        frame = self._contig(frame)
        fh, fw = frame.shape[:2]
        c = 1 if frame.ndim == 2 else frame.shape[2]
        ho, wo = den.shape
        if num.shape != (ho, wo, c) or not (num.flags.c_contiguous and den.flags.c_contiguous):
            raise ValueError("num must be a contiguous (ho, wo, channels) float32 array matching den")
        a = np.float64(1.0 / scale)
        b = np.float64(0.5 / scale - 0.5)
        if weights is None:
            wmap, has = self._one, 0
        else:
            wmap, has = self._contig(weights), 1
        wh, ww = wmap.shape
        if channel_maps is None:
            cmaps, has_c = self._eye9, 0
        else:
            cmaps, has_c = self._contig(self.cp.asarray(channel_maps, dtype=self.cp.float64)), 1
            if cmaps.shape != (c, 9):
                raise ValueError(f"channel_maps must be ({c}, 9) float64, one row-major 3x3 per channel")
        k = self._kernel("resample", f"resample_accumulate<{self._type_name(frame.dtype)}, {c}>")
        k(
            grid_2d(wo, ho),
            BLOCK_2D,
            (frame, np.int32(fw), np.int32(fh), state, self._tab, num, den, np.int32(wo), np.int32(ho), a, b,
             np.float32(max_value), wmap, np.int32(ww), np.int32(wh), np.int32(has),
             np.float64(1.0 / 2**weight_level), cmaps, np.int32(has_c)),
        )

    # --- kernel 6: robust merge weights ----------------------------------------------
    def robust_residual(self, coef, ref_img, state, level: int, margin: float):
        cp = self.cp
        coef, ref_img = self._contig(coef), self._contig(ref_img)
        h, w = ref_img.shape
        ch, cw = coef.shape
        d2 = cp.empty((h, w), dtype=cp.float32)
        cov = cp.empty((h, w), dtype=cp.float32)
        self._kernel("robust", "robust_residual")(
            grid_2d(w, h), BLOCK_2D,
            (coef, np.int32(cw), np.int32(ch), ref_img, np.int32(w), np.int32(h), state, np.int32(level),
             np.float64(margin), d2, cov),
        )
        return d2, cov

    def robust_noise_level(self, e, c, g, beta: float):
        cp = self.cp
        level = cp.where(c > 0.5, e / c - beta * g, cp.nan)
        return cp.maximum(cp.nan_to_num(cp.nanmedian(level), nan=1.0), 1e-12)

    def robust_weight(self, e, c, g, scale2, beta: float, k1: float, k2: float, mask=None):
        cp = self.cp
        e, c, g = self._contig(e), self._contig(c), self._contig(g)
        out = cp.empty(e.shape, dtype=cp.float32)
        n = e.size
        s2 = cp.asarray(scale2, dtype=cp.float32).reshape(1)
        m = self._one if mask is None else self._contig(mask)
        self._kernel("robust", "robust_weight")(
            grid_1d(n), (BLOCK_1D,),
            (e, c, g, np.int64(n), s2, np.float64(beta), np.float64(k1), np.float64(k2), m,
             np.int32(mask is not None), out),
        )
        return out

    # --- kernel 5: normalisation ---------------------------------------------------
    def normalize_u16(self, num, den, value_scale: float):
        cp = self.cp
        ho, wo, c = num.shape
        out = cp.empty((ho, wo, c), dtype=cp.uint16)
        n = ho * wo
        self._kernel("normalize", f"normalize_u16<{c}>")(
            grid_1d(n), (BLOCK_1D,), (self._contig(num), self._contig(den), np.int64(n), np.float32(value_scale), out)
        )
        return out[..., 0] if c == 1 else out
