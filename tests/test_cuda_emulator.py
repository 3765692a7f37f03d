"""The CUDA host emulator (tests/cuda_emulator) catches what a first GPU run would.

The GPU-marked tests run on it where CuPy is not installed, so it must be able
to fail them: block barriers and warp shuffles must be real rendezvous points,
a divergent barrier must be an error, and launch arguments the driver would
misread must be refused.  Small kernels written here show each; the last test
shows the project's own kernels refusing a wrong argument.
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import EMULATED_CUPY

pytestmark = [pytest.mark.skipif(EMULATED_CUPY is None, reason="the CUDA host emulator is not in use here "
                                 "(CuPy is installed, no C++ compiler, or SUPERRES_GPU_EMULATOR=0)"),
              pytest.mark.gpu]  # the emulated device exists for GPU-marked tests only

SRC = r"""
#define N 256
__global__ void block_sum(const float* __restrict__ x, long long n, double* __restrict__ out) {
    __shared__ double part[N / 32];
    double v = 0.0;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
        v += x[i];
    for (int off = 16; off > 0; off >>= 1) v += __shfl_down_sync(0xffffffffu, v, off);
    if ((threadIdx.x & 31) == 0) part[threadIdx.x >> 5] = v;
    __syncthreads();
    if (threadIdx.x == 0) {
        double s = 0.0;
        for (int w = 0; w < (int)(blockDim.x >> 5); ++w) s += part[w];
        out[blockIdx.x] = s;
    }
}

// reverses each block's slice through shared memory: right only if the barrier waits for every thread
__global__ void reverse_blocks(const int* __restrict__ in, int* __restrict__ out) {
    __shared__ int s[N];
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    s[threadIdx.x] = in[i];
    __syncthreads();
    out[i] = s[blockDim.x - 1 - threadIdx.x];
}

__global__ void early_return(const int* __restrict__ in, int* __restrict__ out, int n) {
    __shared__ int s[N];
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;  // a bug: the threads past n never reach the barrier
    s[threadIdx.x] = in[i];
    __syncthreads();
    out[i] = s[0];
}

__global__ void scalars(double a, float b, long long c, int d, unsigned char* __restrict__ out) {
    out[0] = (unsigned char)(a + b + c + d);
}
"""
NAMES = ("block_sum", "reverse_blocks", "early_return", "scalars")


@pytest.fixture
def cp():
    """The emulator, the calling thread's current stream put back afterwards."""
    before = getattr(EMULATED_CUPY._thread, "stream", None)
    try:
        yield EMULATED_CUPY
    finally:
        EMULATED_CUPY._thread.stream = before


@pytest.fixture
def mod(cp):
    return cp.RawModule(code=SRC, options=("-std=c++17",), name_expressions=NAMES)


def test_a_block_reduction_through_shuffles_and_shared_memory(cp, mod, rng):
    x = rng.random(10_001).astype(np.float32)
    out = cp.zeros(5, dtype=cp.float64)
    mod.get_function("block_sum")((5,), (256,), (cp.asarray(x), np.int64(x.size), out))
    assert float(out.sum()) == pytest.approx(float(x.astype(np.float64).sum()), rel=1e-12)


def test_the_barrier_waits_for_every_thread_of_the_block(cp, mod):
    n = 4 * 256
    src = np.arange(n, dtype=np.int32)
    out = cp.zeros(n, dtype=cp.int32)
    mod.get_function("reverse_blocks")((4,), (256,), (cp.asarray(src), out))
    np.testing.assert_array_equal(cp.asnumpy(out), src.reshape(4, 256)[:, ::-1].ravel())


def test_a_barrier_some_threads_skip_fails_the_launch(cp, mod):
    src = cp.asarray(np.arange(512, dtype=np.int32))
    out = cp.zeros(512, dtype=cp.int32)
    k = mod.get_function("early_return")
    k((2,), (256,), (src, out, np.int32(512)))  # every thread in range: fine
    with pytest.raises(RuntimeError, match="__syncthreads"):
        k((2,), (256,), (src, out, np.int32(300)))


def test_a_shuffle_in_a_partial_warp_and_an_oversized_block_fail(cp, mod):
    x = cp.asarray(np.ones(100, np.float32))
    out = cp.zeros(1, dtype=cp.float64)
    with pytest.raises(RuntimeError, match="partial warp"):
        mod.get_function("block_sum")((1,), (100,), (x, np.int64(100), out))
    with pytest.raises(RuntimeError, match="too many threads"):
        mod.get_function("block_sum")((1,), (2048,), (x, np.int64(100), out))


def test_launch_arguments_the_driver_would_misread_are_refused(cp, mod):
    k = mod.get_function("scalars")
    out = cp.zeros(1, dtype=cp.uint8)
    k((1,), (1,), (np.float64(1.0), np.float32(2.0), np.int64(3), np.int32(4), out))
    assert int(out[0]) == 10
    k((1,), (1,), (1.0, np.float32(2.0), 3, 4, out))  # Python int/float go as long long/double, as in CuPy
    bad = [
        ((np.float32(1.0), np.float32(2.0), np.int64(3), np.int32(4), out), "float32 for a 8-byte floating"),
        ((np.float64(1.0), 2.0, np.int64(3), np.int32(4), out), "float64 for a 4-byte floating"),
        ((np.float64(1.0), np.float32(2.0), np.int32(3), np.int32(4), out), "read past it"),
        ((np.float64(1.0), np.float32(2.0), np.int64(3), 2**40, out), "does not fit"),
        ((np.float64(1.0), np.float32(2.0), np.int64(3), np.int32(4), cp.zeros(1, cp.uint16)), "uint16 array"),
        ((np.float64(1.0), np.float32(2.0), np.int64(3), np.int32(4), np.zeros(1, np.uint8)), "device array"),
        ((np.float64(1.0), np.float32(2.0), np.int64(3), out, out), "got a device array"),
        ((np.float64(1.0), np.float32(2.0), np.int64(3), np.int32(4)), "takes 5 arguments"),
    ]
    for args, msg in bad:
        with pytest.raises((TypeError, OverflowError), match=msg):
            k((1,), (1,), args)
    x = cp.asarray(np.ones((8, 8), np.float32))
    with pytest.raises(ValueError, match="non-contiguous"):
        mod.get_function("block_sum")((1,), (256,), (x[:, ::2], np.int64(32), cp.zeros(1, cp.float64)))


def test_device_arrays_keep_cupys_host_boundary(cp):
    d = cp.asarray(np.arange(6, dtype=np.float32).reshape(2, 3))
    with pytest.raises(TypeError, match="Implicit conversion"):
        np.asarray(d)
    with pytest.raises(TypeError, match="host array"):
        cp.where(d > 1, np.zeros((2, 3), np.float32), d)
    with pytest.raises(TypeError, match="host array"):
        d + np.ones((2, 3), np.float32)
    s = d.sum()  # reductions stay on the device, as 0-d arrays
    assert isinstance(s, cp.ndarray) and s.shape == () and float(s) == 15.0
    assert isinstance(np.sum(d), cp.ndarray)  # NumPy's functions dispatch to the device, as with CuPy
    d[0] = np.array([7, 8, 9], np.float32)  # host values may be assigned
    np.testing.assert_array_equal(d.get()[0], [7, 8, 9])
    assert cp.fft.fft2(d).dtype == np.complex64


def test_the_projects_kernels_refuse_a_wrong_argument(cp):
    from superres_gpu.cuda_modules import get_kernel

    k = get_kernel("pyramid", "downsample2")
    img, out = cp.asarray(np.zeros((8, 8), np.float32)), cp.empty((4, 4), dtype=cp.float32)
    k((1, 1, 1), (16, 16, 1), (img, np.int32(8), np.int32(8), out, np.int32(4), np.int32(4)))
    with pytest.raises(TypeError, match="argument 1"):
        k((1, 1, 1), (16, 16, 1), (img, np.float32(8), np.int32(8), out, np.int32(4), np.int32(4)))
    with pytest.raises(TypeError, match="float64 array"):
        k((1, 1, 1), (16, 16, 1), (img.astype(cp.float64), np.int32(8), np.int32(8), out, np.int32(4), np.int32(4)))


def test_device_work_from_a_thread_without_the_stream_is_refused(cp):
    """CuPy's current stream belongs to the thread that chose it: another thread's work goes to the
    default stream, which is not ordered after a non-blocking one."""
    import threading

    s = cp.cuda.Stream(non_blocking=True)
    s.use()
    d = cp.asarray(np.ones(4, np.float32))
    errors = []

    def worker():
        try:
            d * 2
        except RuntimeError as e:
            errors.append(str(e))

    t = threading.Thread(target=worker, name="helper")
    t.start()
    t.join()
    assert errors and "on the default stream reads" in errors[0] and "(non-blocking) wrote" in errors[0]
    float((d * 2).sum())  # the thread that chose the stream may
    with cp.cuda.Stream(non_blocking=True):  # and a stream entered and left puts the thread's own back
        pass
    assert cp.cuda.get_current_stream() is s


def test_shared_memory_read_before_the_barrier_orders_it_reads_poison(cp):
    """A kernel that lets thread 0 fill shared memory and the others read it with no barrier between
    gets the poison (NaN), in every block, not the value an earlier block left there."""
    src = r"""
__global__ void broadcast(const float* __restrict__ in, float* __restrict__ out, int sync) {
    __shared__ float v;
    if (threadIdx.x == 0) v = in[blockIdx.x];
    if (sync) __syncthreads();
    out[blockIdx.x * blockDim.x + threadIdx.x] = v;
}
"""
    k = cp.RawModule(code=src, name_expressions=("broadcast",)).get_function("broadcast")
    x = cp.asarray(np.array([1.0, 2.0, 3.0], np.float32))
    out = cp.zeros(3 * 64, dtype=cp.float32)
    k((3,), (64,), (x, out, np.int32(1)))
    np.testing.assert_array_equal(cp.asnumpy(out), np.repeat([1.0, 2.0, 3.0], 64))
    k((3,), (64,), (x, out, np.int32(0)))
    got = cp.asnumpy(out).reshape(3, 64)
    assert np.isnan(got[:, 1:]).all()


def test_work_on_two_streams_must_be_ordered_by_an_event_or_the_host(cp):
    """The upload pattern: a copy on one stream, read on another.  Without the wait the emulator fails
    the read; an event the reader waits for, or the host waiting, orders them."""
    up, comp = cp.cuda.Stream(non_blocking=True), cp.cuda.Stream(non_blocking=True)
    comp.use()
    host = np.arange(12, dtype=np.float32)
    for order in ("none", "event", "host"):
        buf = cp.empty(12, dtype=cp.float32)
        buf.set(host, stream=up)
        if order == "event":
            comp.wait_event(up.record())
        elif order == "host":
            up.synchronize()
        if order == "none":
            with pytest.raises(RuntimeError, match="stream order: cupy.ndarray.sum on stream .* reads .* that "
                                                   "cupy.ndarray.set on stream .* wrote"):
                buf.sum()
        else:
            assert float(buf.sum()) == 66.0
    # and the other way: refilling a buffer the other stream may still read
    buf = cp.empty(12, dtype=cp.float32)
    buf.set(host, stream=up)
    comp.wait_event(up.record())
    buf * 2
    with pytest.raises(RuntimeError, match="writes .* that cupy.multiply on stream .* reads"):
        buf.set(host, stream=up)
    up.wait_event(comp.record())
    buf.set(host, stream=up)


def test_the_default_stream_is_not_ordered_before_a_non_blocking_one(cp):
    """What the backend's constants needed: work on the default stream is ordered with a blocking
    stream's, not with a non-blocking stream's."""
    host = np.ones(8, np.float32)
    for non_blocking in (False, True):
        buf = cp.empty(8, dtype=cp.float32)
        buf.set(host, stream=cp.cuda.Stream(null=True))
        cp.cuda.Stream(non_blocking=non_blocking).use()
        if non_blocking:
            with pytest.raises(RuntimeError, match="the default stream wrote"):
                buf.sum()
            cp.cuda.Device().synchronize()
        assert float(buf.sum()) == 8.0


def test_a_read_past_an_arrays_end_fails_the_launch_naming_it(cp):
    """Every array argument ends at an inaccessible page: an off-by-one at the last pixel faults and the
    launch fails naming the argument; a read before the start gets the poison."""
    src = r"""
__global__ void shifted(const float* __restrict__ in, float* __restrict__ out, int n, int shift) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) out[i] = in[i + shift];
}
"""
    k = cp.RawModule(code=src, name_expressions=("shifted",)).get_function("shifted")
    x = cp.asarray(np.arange(100, dtype=np.float32))
    out = cp.zeros(100, dtype=cp.float32)
    k((1,), (128,), (x, out, np.int32(99), np.int32(1)))  # in bounds
    np.testing.assert_array_equal(cp.asnumpy(out)[:99], np.arange(1, 100))
    with pytest.raises(RuntimeError, match="argument 0: an access 0 bytes past the end"):
        k((1,), (128,), (x, out, np.int32(100), np.int32(1)))
    k((1,), (128,), (x, out, np.int32(100), np.int32(-1)))
    assert np.isnan(cp.asnumpy(out)[0]) and cp.asnumpy(out)[1] == 0.0


RACY = r"""
#define N 256
// a tree reduction of each block's values: with or without the barrier inside the loop
__global__ void tree_max(const float* __restrict__ x, float* __restrict__ out, int inner_barrier) {
    __shared__ float v[N];
    v[threadIdx.x] = x[blockIdx.x * blockDim.x + threadIdx.x];
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) v[threadIdx.x] = fmaxf(v[threadIdx.x], v[threadIdx.x + s]) + 1.0f;
        if (inner_barrier) __syncthreads();
    }
    if (threadIdx.x == 0) out[blockIdx.x] = v[0];
}

__global__ void neighbours(const float* __restrict__ in, float* __restrict__ out, int n, int at) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) out[i + at] = in[i];
}
"""


def test_a_race_on_shared_memory_fails_the_launch(cp, rng):
    """A launch with barriers runs twice, the block's threads one way and then the other: a reduction
    missing its inner barrier gives two results and fails; with the barrier it is exact."""
    mod = cp.RawModule(code=RACY, name_expressions=("tree_max", "neighbours"))
    k = mod.get_function("tree_max")
    x = cp.asarray(rng.random(512).astype(np.float32))
    out = cp.zeros(2, dtype=cp.float32)
    k((2,), (256,), (x, out, np.int32(1)))
    host = cp.asnumpy(x).reshape(2, 256)
    for b in range(2):
        v = host[b].copy()
        for s in (128, 64, 32, 16, 8, 4, 2, 1):
            v[:s] = np.maximum(v[:s], v[s : 2 * s]) + 1
        assert float(out[b]) == v[0]
    with pytest.raises(RuntimeError, match="differs when a block's threads run in the other order"):
        k((2,), (256,), (x, out, np.int32(0)))


def test_writes_out_of_bounds_and_overlapping_arguments_fail(cp):
    k = cp.RawModule(code=RACY, name_expressions=("tree_max", "neighbours")).get_function("neighbours")
    x = cp.asarray(np.ones(64, np.float32))
    out = cp.zeros(64, dtype=cp.float32)
    k((1,), (64,), (x, out, np.int32(64), np.int32(0)))
    with pytest.raises(RuntimeError, match="argument 1 was written before its start"):
        k((1,), (64,), (x, out, np.int32(64), np.int32(-1)))
    with pytest.raises(RuntimeError, match="argument 1: an access 0 bytes past the end"):
        k((1,), (64,), (x, out, np.int32(64), np.int32(1)))
    with pytest.raises(ValueError, match="arguments 0 and 1 overlap"):
        k((1,), (32,), (out[:32], out[16:48], np.int32(32), np.int32(0)))


def test_writes_by_copyto_count_and_views_queue_no_work(cp):
    a, b = cp.cuda.Stream(non_blocking=True), cp.cuda.Stream(non_blocking=True)
    a.use()
    buf = cp.zeros(8, dtype=cp.float32)
    b.use()
    b.wait_event(a.record())
    src = cp.ones(8, dtype=cp.float32)
    a.use()
    buf * 3  # read on a, which b has not waited for
    b.use()
    buf[2:4].reshape(2, 1)  # views on b: no work, no conflict
    with pytest.raises(RuntimeError, match="cupy.copyto on stream .* writes .* that cupy.multiply on stream .* reads"):
        cp.copyto(buf, src)
    b.wait_event(a.record())
    cp.copyto(buf, src)


def test_the_host_must_not_change_pinned_memory_while_its_copy_runs(cp):
    """Copies from pinned memory are asynchronous: an event is not done the first time it is asked
    (the device runs on its own), and a pinned buffer the host rewrites before its copy is known done
    fails the run when that becomes known."""
    up = cp.cuda.Stream(non_blocking=True)
    mem = cp.cuda.alloc_pinned_memory(16)
    host = np.frombuffer(mem, np.float32, 4)
    host[:] = 1.0
    dev = cp.empty(4, dtype=cp.float32)
    dev.set(host, stream=up)
    e = up.record()
    assert not e.done and e.done  # not yet; then done, and the host may reuse the buffer
    host[:] = 2.0
    dev.set(host, stream=up)
    host[:] = 3.0  # too early
    with pytest.raises(RuntimeError, match="the host changed a pinned float32"):
        up.synchronize()
