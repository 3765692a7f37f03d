"""CuPy backend: the same interface as NumpyBackend, hot loops as CUDA kernels.

Every method launches the kernels of ``kernels/*.cu`` (through the memoized
factory in :mod:`superres_gpu.cuda_modules`); FFTs go through ``cupy.fft`` (cuFFT).
Nothing here copies data between host and device except ``asarray`` and
``upload_frame`` (uploads) and ``asnumpy`` (download); the per-frame alignment
state stays on the device, so aligning and merging a frame needs no
synchronisation with the host.

Streams: all kernels run on one non-blocking compute stream; frames are
uploaded on a second stream (both the thread's own, shared by the backends it
makes).  Decode threads write each frame straight into a pinned host buffer
(``host_frame``: the BGR->RGB conversion's destination); ``upload_frame``
copies it into one of two device frame buffers on the upload stream, and the
compute stream waits for that copy only, so frame k+1 uploads while frame k
computes.  A device buffer is refilled only after the compute
stream passed ``frame_done`` of the frame that last used it; a pinned buffer
only after its copy has finished.
"""

from __future__ import annotations

import threading

import numpy as np

from ..cuda_modules import get_kernel
from ..interp import lanczos4_table
from ..pixels import full_scale
from . import base as S
from .numpy_backend import NOISE_SAMPLES
from .launch import BLOCK_1D, BLOCK_2D, PEAK_THREADS, REDUCE_THREADS, grid_1d, grid_2d, reduce_blocks



_local = threading.local()


def _thread_streams(cp, device: int):
    """The calling thread's (compute, upload) streams on ``device``, shared by every backend it makes.

    CuPy queues work on the thread's current stream, and a backend makes its compute stream current.
    With a stream per backend, a second backend made in the same thread would take the first one's
    later work onto its own stream, away from the events the first one's uploads are ordered by."""
    streams = getattr(_local, "streams", None)
    if streams is None:
        streams = _local.streams = {}
    if device not in streams:
        streams[device] = (cp.cuda.Stream(non_blocking=True), cp.cuda.Stream(non_blocking=True))
    return streams[device]


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
        self.compute_stream, self.upload_stream = _thread_streams(cp, self.device.id)
        # every launch and copy from here on goes to the compute stream, the constants' copies too (the
        # default stream's work is not ordered before a non-blocking stream's)
        self.compute_stream.use()
        self._tab = cp.asarray(lanczos4_table())
        self._one = cp.ones((1, 1), dtype=cp.float32)  # stands in for an absent weight map / mask
        self._eye9 = cp.asarray(np.tile(np.eye(3).ravel(), (3, 1)))  # stands in for absent channel maps
        self._field0 = cp.zeros((1, 1, 2), dtype=cp.float32)  # stands in for an absent displacement field
        self._taps: dict[bytes, object] = {}
        self._pinned_lock = threading.Lock()
        self._pinned_free: list = []  # [(array, memory, copy-done event or None)]
        self._pinned_owner: dict[int, object] = {}  # data pointer of a handed-out buffer -> its memory
        self._ring: list = []  # device frame buffers: [array, released event or None]
        self._ring_next = 0

    # --- memory -------------------------------------------------------------
    def asarray(self, a, dtype=None):
        cp = self.cp
        if isinstance(a, cp.ndarray):
            return a if dtype is None else a.astype(dtype, copy=False)
        return cp.asarray(np.asarray(a, dtype=dtype))

    def host_frame(self, shape, dtype) -> np.ndarray:
        """A pinned host buffer for one decoded frame (safe to call from decode
        threads).  Buffers come back to the pool when their upload has been
        queued, and are handed out again once that copy has finished."""
        dtype = np.dtype(dtype)
        nbytes = int(np.prod(shape)) * dtype.itemsize
        with self._pinned_lock:
            for k, (arr, mem, event) in enumerate(self._pinned_free):
                if arr.nbytes == nbytes and (event is None or event.done):
                    del self._pinned_free[k]
                    break
            else:
                mem = None
        if mem is None:
            mem = self.cp.cuda.alloc_pinned_memory(nbytes)
        arr = np.frombuffer(mem, dtype=dtype, count=int(np.prod(shape))).reshape(shape)
        with self._pinned_lock:
            self._pinned_owner[arr.ctypes.data] = mem
        return arr

    def release_host(self, host) -> None:
        """A buffer from host_frame that will not be uploaded (a frame culled
        after it was decoded) goes back to the pool."""
        with self._pinned_lock:
            mem = self._pinned_owner.pop(host.ctypes.data, None)
            if mem is not None:
                self._pinned_free.append((host, mem, None))

    def upload_frame(self, host):
        """The frame's device copy, queued on the upload stream; the compute
        stream waits for it.  Valid until the frame after next is uploaded:
        call ``frame_done`` once its last kernel is queued."""
        cp = self.cp
        if isinstance(host, cp.ndarray):
            return host
        host = np.ascontiguousarray(host)
        if host.dtype not in (np.uint8, np.uint16):
            raise TypeError(f"frames must be uint8 or uint16, not {host.dtype}")
        with self._pinned_lock:
            mem = self._pinned_owner.pop(host.ctypes.data, None)
        if mem is None:  # not decoded into our pinned memory: stage it there
            staging = self.host_frame(host.shape, host.dtype)
            np.copyto(staging, host)
            with self._pinned_lock:
                mem = self._pinned_owner.pop(staging.ctypes.data)
            host = staging
        if not self._ring or self._ring[0][0].shape != host.shape or self._ring[0][0].dtype != host.dtype:
            self.compute_stream.synchronize()  # a new frame size: the old buffers are no longer in use
            self._ring = [[cp.empty(host.shape, dtype=host.dtype), None] for _ in range(2)]
            self._ring_next = 0
        slot = self._ring[self._ring_next]
        self._ring_next = (self._ring_next + 1) % len(self._ring)
        if slot[1] is not None:
            self.upload_stream.wait_event(slot[1])  # the frame that used this buffer is done with it
        slot[0].set(host, stream=self.upload_stream)
        copied = self.upload_stream.record()
        self.compute_stream.wait_event(copied)
        with self._pinned_lock:
            self._pinned_free.append((host, mem, copied))
        return slot[0]

    def frame_done(self, frame) -> None:
        """Everything queued so far on the compute stream is the last use of
        ``frame`` (from ``upload_frame``): its device buffer may be refilled
        once the stream passes this point."""
        for slot in self._ring:
            if slot[0] is frame:
                slot[1] = self.compute_stream.record()

    def asnumpy(self, a) -> np.ndarray:
        if isinstance(a, np.ndarray):
            return a
        return self.cp.asnumpy(a)

    def synchronize(self) -> None:
        self.compute_stream.synchronize()

    def peak_memory_mib(self) -> float | None:
        """Bytes held by CuPy's memory pool (it keeps what it once allocated)."""
        return self.cp.get_default_memory_pool().total_bytes() / 2**20

    def describe(self) -> str:
        return f"CuPy {self.cp.__version__} on {self.device_name} ({self.sm_count} SMs)"

    # --- stage timing without host syncs ----------------------------------
    def mark(self):
        return self.compute_stream.record()

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

    def _f32(self, a, what: str = "image"):
        """A contiguous float32 device array; any other dtype would be misread by the kernels."""
        if a.dtype != np.float32:
            raise TypeError(f"{what} must be float32 on the device, not {a.dtype}")
        return self._contig(a)

    def _accumulate_args(self, frame, num, den, weights, den_planes: bool = False):
        """The checked arguments both merge kernels share: (frame, fw, fh,
        channels, wo, ho, weight map, its width and height, has_weights);
        ``den_planes``: den has a plane per channel, (ho, wo, channels)."""
        frame = self._contig(frame)
        fh, fw = frame.shape[:2]
        c = 1 if frame.ndim == 2 else frame.shape[2]
        ho, wo = den.shape[:2]
        if den.shape != ((ho, wo, c) if den_planes else (ho, wo)):
            raise ValueError(f"den must be {'(ho, wo, channels)' if den_planes else '(ho, wo)'} here, not {den.shape}")
        if num.shape != (ho, wo, c) or not (num.flags.c_contiguous and den.flags.c_contiguous):
            raise ValueError("num must be a contiguous (ho, wo, channels) float32 array matching den")
        if num.dtype != np.float32 or den.dtype != np.float32:
            raise TypeError(f"num and den must be float32, not {num.dtype} and {den.dtype}")
        wmap, has = (self._one, 0) if weights is None else (self._f32(weights, "weights"), 1)
        wh, ww = wmap.shape
        return frame, fw, fh, c, wo, ho, wmap, ww, wh, has

    @staticmethod
    def _state(st):
        """The state vector itself (kernels update it in place: never a copy)."""
        if st.dtype != np.float64 or st.size != S.STATE_LEN or not st.flags.c_contiguous:
            raise TypeError(f"a state vector is {S.STATE_LEN} contiguous float64 values, not {st.dtype} {st.shape}")
        return st

    @staticmethod
    def _type_name(dtype, allow_float: bool = False) -> str:
        if dtype == np.uint8:
            return "unsigned char"
        if dtype == np.uint16:
            return "unsigned short"
        if allow_float and dtype == np.float32:  # the merge kernels also read frames from tca_band
            return "float"
        raise TypeError(f"frames must be uint8 or uint16{', or float32' if allow_float else ''}, not {dtype}")

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
        img = self._f32(img)
        h, w = img.shape
        out = cp.empty((h // 2, w // 2), dtype=cp.float32)
        self._kernel("pyramid", "downsample2")(
            grid_2d(w // 2, h // 2), BLOCK_2D, (img, np.int32(w), np.int32(h), out, np.int32(w // 2), np.int32(h // 2))
        )
        return out

    def sepfilter(self, img, taps):
        cp = self.cp
        img = self._f32(img)
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
        img = self._f32(img)
        h, w = img.shape
        gx = cp.empty_like(img)
        gy = cp.empty_like(img)
        self._kernel("pyramid", "gradient")(grid_2d(w, h), BLOCK_2D, (img, np.int32(w), np.int32(h), gx, gy))
        return gx, gy

    # --- kernel 3: phase correlation -------------------------------------------------
    def _windowed(self, img, window):
        cp = self.cp
        img, window = self._f32(img), self._f32(window, "window")
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
        surface = self._f32(surface, "surface")
        h, w = surface.shape
        self._kernel("phasecorr", "peak_fit")((1,), (PEAK_THREADS,), (surface, np.int32(w), np.int32(h), np.int32(level), self._state(state)))

    # --- kernel 4: refinement reductions and update ------------------------------
    def align_reduce(self, img, points, state, model_id: int, level: int, norm, margin: float = 0.0,
                     iteration: int = 0):
        cp = self.cp
        img, points = self._f32(img), self._f32(points, "points")
        h, w = img.shape
        n = points.shape[1]
        nb = reduce_blocks(n, self.sm_count)
        partial = cp.empty((nb, S.SUMS_LEN), dtype=cp.float64)
        cx, cy, sc = (np.float64(v) for v in norm)
        self._kernel("align", "align_reduce_partial")(
            (nb,),
            (REDUCE_THREADS,),
            (img, np.int32(w), np.int32(h), points, np.int64(n), self._state(state), np.int32(model_id), np.int32(level),
             cx, cy, sc, np.float64(margin), np.int32(iteration), partial),
        )
        sums = cp.empty(S.SUMS_LEN, dtype=cp.float64)
        self._kernel("align", "align_sum_partials")((1,), (S.SUMS_LEN,), (partial, np.int32(nb), sums))
        return sums

    def align_update(self, sums, state, model_id: int, norm, damping: float, converged_px: float = 0.0,
                     iteration: int = 0) -> None:
        cx, cy, sc = (np.float64(v) for v in norm)
        self._kernel("align", "align_update")(
            (1,), (1,), (self._contig(sums), self._state(state), np.int32(model_id), cx, cy, sc, np.float64(damping),
                         np.float64(converged_px), np.int32(iteration))
        )

    def align_finalize(self, state, width: int, height: int, min_corr: float, min_overlap: float) -> None:
        self._kernel("align", "align_finalize")(
            (1,), (1,), (self._state(state), np.int32(width), np.int32(height), np.float64(min_corr), np.float64(min_overlap))
        )

    # --- kernel 1: fused resample-and-accumulate ---------------------------------
    def resample_accumulate(self, frame, state, num, den, scale: float, max_value: float, weights=None,
                            weight_level: int = 1, channel_maps=None, field=None, field_cell: float = 0.0) -> None:
        frame, fw, fh, c, wo, ho, wmap, ww, wh, has = self._accumulate_args(frame, num, den, weights)
        a = np.float64(1.0 / scale)
        b = np.float64(0.5 / scale - 0.5)
        cmaps, has_c = self._channel_map_args(channel_maps, c)
        fmap, gw, gh, finv, has_f = self._field_args(field, field_cell)
        k = self._kernel("resample", f"resample_accumulate<{self._merge_type(frame, c)}, {c}>")
        k(
            grid_2d(wo, ho),
            BLOCK_2D,
            (frame, np.int32(fw), np.int32(fh), self._state(state), self._tab, num, den, np.int32(wo), np.int32(ho), a, b,
             np.float32(max_value), wmap, np.int32(ww), np.int32(wh), np.int32(has),
             np.float64(1.0 / 2**weight_level), cmaps, np.int32(has_c), fmap, gw, gh, finv, has_f),
        )

    def _merge_type(self, frame, c: int, kernel_merge: bool = False) -> str:
        """The merge kernels' frame type: uint8, uint16, or float32 (colour frames
        from :meth:`tca_band`; the resample also takes grey float32, the template's lumas)."""
        if frame.dtype == np.float32 and c != 3 and kernel_merge:
            raise TypeError("float32 frames reach the kernel merge only from tca_band, in colour")
        return self._type_name(frame.dtype, allow_float=True)

    def tca_band(self, frame, channel_maps, chroma, upsampling="linear", origin=(0, 0)):
        from ..pixels import smooth_chroma_band
        from .numpy_backend import band_maps, band_moves

        cp = self.cp
        frame = self._contig(frame)
        maps = band_maps(frame, channel_maps)
        h, w, c = frame.shape
        moved = [ch for ch in range(c) if band_moves(maps[ch])]
        band = smooth_chroma_band(frame, chroma, cp, upsampling, origin, moved)  # the NumPy twin's operations
        lo = cp.empty((c, h, w), dtype=cp.float32)  # only the moved channels' planes are read
        for ch in moved:
            lo[ch] = band[..., ch]
        del band
        out = cp.empty((h, w, c), dtype=cp.float32)
        k = self._kernel("resample", f"tca_band<{self._type_name(frame.dtype, allow_float=True)}, {c}>")
        k(grid_2d(w, h), BLOCK_2D, (frame, np.int32(w), np.int32(h), lo, cp.asarray(maps.ravel()), self._tab, out))
        return out

    def _channel_map_args(self, channel_maps, c):
        """(maps, has_chmaps) for the merge kernels' per-channel map arguments."""
        if channel_maps is None:
            return self._eye9, np.int32(0)
        from .numpy_backend import channel_map_rows

        rows = channel_map_rows(self.asnumpy(channel_maps), c)
        return self.cp.asarray(rows), np.int32(1)

    def _field_args(self, field, field_cell):
        """(field, gw, gh, 1 / cell, has_field) for the kernels' local-field arguments."""
        if field is None:
            return self._field0, np.int32(1), np.int32(1), np.float64(1.0), np.int32(0)
        field = self._f32(field, "field")
        if field.ndim != 3 or field.shape[2] != 2:
            raise ValueError(f"a displacement field is (gh, gw, 2) float32, not {field.shape}")
        if not field_cell > 0:
            raise ValueError(f"the field's cell size must be positive, not {field_cell}")
        return field, np.int32(field.shape[1]), np.int32(field.shape[0]), np.float64(1.0 / field_cell), np.int32(1)

    # --- kernel 7: kernel-regression accumulate ------------------------------------
    def kernel_accumulate(self, frame, state, num, den, scale: float, max_value: float, sigma: float,
                          weights=None, weight_level: int = 1, shape=None, field=None,
                          field_cell: float = 0.0, channel_maps=None) -> None:
        from .numpy_backend import kernel_window

        frame, fw, fh, c, wo, ho, wmap, ww, wh, has = self._accumulate_args(frame, num, den, weights,
                                                                            channel_maps is not None)
        if shape is None:
            smap, sw, sh, has_s = self._one, 1, 1, 0
        else:
            smap, has_s = self._f32(shape, "shape"), 1
            if smap.ndim != 3 or smap.shape[0] != 3:
                raise ValueError(f"the kernel shape map must be (3, height, width), not {smap.shape}")
            sh, sw = smap.shape[1:]
        fmap, gw, gh, finv, has_f = self._field_args(field, field_cell)
        cmaps, has_c = self._channel_map_args(channel_maps, c)
        k = self._kernel("kernelreg", f"kernel_accumulate<{self._merge_type(frame, c, True)}, {c}>")
        k(
            grid_2d(wo, ho),
            BLOCK_2D,
            (frame, np.int32(fw), np.int32(fh), state, num, den, np.int32(wo), np.int32(ho),
             np.float64(1.0 / scale), np.float64(0.5 / scale - 0.5), np.float32(max_value), wmap, np.int32(ww),
             np.int32(wh), np.int32(has), np.float64(1.0 / 2**weight_level), np.int32(kernel_window(scale, sigma)),
             np.float32(-1.0 / (2.0 * sigma * sigma)), smap, np.int32(sw), np.int32(sh), np.int32(has_s), fmap, gw, gh,
             finv, has_f, cmaps, has_c),
        )

    # --- kernel 6: robust merge weights ----------------------------------------------
    def robust_residual(self, coef, ref_img, state, level: int, margin: float, field=None, field_cell: float = 0.0):
        return self._level_residual("robust_residual", coef, ref_img, state, level, margin, field, field_cell)

    def warp_residual(self, coef, ref_img, state, level: int, margin: float, field=None, field_cell: float = 0.0):
        return self._level_residual("warp_residual", coef, ref_img, state, level, margin, field, field_cell)

    def _level_residual(self, name, coef, ref_img, state, level, margin, field, field_cell):
        cp = self.cp
        coef, ref_img = self._f32(coef), self._f32(ref_img)
        h, w = ref_img.shape
        ch, cw = coef.shape
        d = cp.empty((h, w), dtype=cp.float32)
        cov = cp.empty((h, w), dtype=cp.float32)
        fmap, gw, gh, finv, has_f = self._field_args(field, field_cell)
        self._kernel("robust", name)(
            grid_2d(w, h), BLOCK_2D,
            (coef, np.int32(cw), np.int32(ch), ref_img, np.int32(w), np.int32(h), self._state(state), np.int32(level),
             np.float64(margin), fmap, gw, gh, finv, has_f, d, cov),
        )
        return d, cov

    def tile_phase_shifts(self, ref_img, img, x0, y0, size: int):
        from .numpy_backend import tile_phase_shifts

        # spans of 4 M tile pixels: a few large batched cuFFT calls (the CPU's cache-sized spans would
        # multiply the launches)
        return tile_phase_shifts(self.cp, self._f32(ref_img), self._f32(img), x0, y0, size, span_pixels=1 << 22)

    def local_extrema(self, img, r: int):
        from .numpy_backend import local_extrema

        img = self._f32(img)
        if r <= 0:
            return img.copy(), img.copy()
        return local_extrema(self.cp, img, r)

    def field_median3(self, field, ok):
        cp = self.cp
        gh, gw = ok.shape
        f = cp.where((ok > 0)[..., None], field.astype(cp.float32), cp.float32(cp.nan))
        p = cp.pad(f, ((1, 1), (1, 1), (0, 0)), constant_values=cp.nan)
        stack = cp.stack([p[i : i + gh, j : j + gw] for i in range(3) for j in range(3)])
        return cp.nanmedian(stack, axis=0).astype(cp.float32)

    def select_points(self, score, count: int, cells: int):
        from ..reference import select_points

        return select_points(score, count, cells, self.cp)

    def robust_noise_level(self, e, c, g, beta: float):
        cp = self.cp
        level = cp.where(c > 0.5, e / c - beta * g, cp.nan)
        step = max(1, level.size // NOISE_SAMPLES)  # the twin's subsample: a sort of ~65k values, not millions
        return cp.maximum(cp.nan_to_num(cp.nanmedian(level.ravel()[::step]), nan=1.0), 1e-12)

    def robust_weight(self, e, c, g, scale2, beta: float, k1: float, k2: float, mask=None):
        cp = self.cp
        e, c, g = self._f32(e), self._f32(c), self._f32(g)
        out = cp.empty(e.shape, dtype=cp.float32)
        n = e.size
        s2 = cp.asarray(scale2, dtype=cp.float32).reshape(1)
        m = self._one if mask is None else self._f32(mask, "mask")
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
            grid_1d(n), (BLOCK_1D,), (self._f32(num, "num"), self._f32(den, "den"), np.int64(n), np.float32(value_scale), out)
        )
        return out[..., 0] if c == 1 else out
