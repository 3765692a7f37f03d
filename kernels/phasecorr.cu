// phasecorr.cu: phase correlation on the device (FFTs by cuFFT through cupy.fft).
//
// NumPy twins (superres_gpu/backends/numpy_backend.py): NumpyBackend.reference_spectrum,
// .phase_correlation and .peak_to_state.
//
// Complex arrays are complex64, i.e. interleaved float pairs (re, im), row-major (h, w).
// Launch: window_complex and cross_power 1-D over n = h*w elements (256 threads per
// block, bounds check first); peak_fit one block of 1024 threads.
//
// window_complex(img, win, n, out)        out[i] = (img[i] * win[i], 0)
// cross_power(fr, f, n, out)              out[i] = c / |c| with c = fr[i] * conj(f[i]),
//                                          0 where |c| <= 1e-20 and at i = 0 (the mean)
// peak_fit(surf, w, h, level, state)      surf: the real surface, float32 (h, w) contiguous.
//                                          ONE block of 1024 threads: argmax (lowest index
//                                          on ties, as numpy.argmax), then
//                                          thread 0 fits a parabola per axis through the
//                                          peak and its cyclic neighbours and writes
//                                          T = translation(peak * 2^level), Tinv, peak height.
#include "common.cuh"

SR_HD void sr_cross_power(const float* fr, const float* f, long long i, float* out) {
    float a = fr[2 * i], b = fr[2 * i + 1], c = f[2 * i], d = -f[2 * i + 1];
    float re = a * c - b * d;
    float im = a * d + b * c;
    float mag = sqrtf(re * re + im * im);
    if (i == 0 || !(mag > 1e-20f)) {
        out[2 * i] = 0.0f;
        out[2 * i + 1] = 0.0f;
    } else {
        out[2 * i] = re / mag;
        out[2 * i + 1] = im / mag;
    }
}

SR_HD double sr_parabola_vertex(double m, double z, double p) {
    double den = m - 2.0 * z + p;
    if (den >= 0.0) return 0.0;  // not a maximum: keep the integer peak
    double off = 0.5 * (m - p) / den;
    return off < -0.5 ? -0.5 : (off > 0.5 ? 0.5 : off);
}

// Sub-pixel fit around the peak at index idx of the real surface (float32, (h, w)).
SR_HD void sr_peak_to_state(const float* surf, int w, int h, long long idx, int level, double* state) {
    int py = (int)(idx / w), px = (int)(idx % w);
#define SR_RE(yy, xx) ((double)surf[(long long)(yy) * w + (xx)])
    double c = SR_RE(py, px);
    double dx = px + sr_parabola_vertex(SR_RE(py, (px - 1 + w) % w), c, SR_RE(py, (px + 1) % w));
    double dy = py + sr_parabola_vertex(SR_RE((py - 1 + h) % h, px), c, SR_RE((py + 1) % h, px));
#undef SR_RE
    if (dx >= w / 2.0) dx -= w;
    if (dy >= h / 2.0) dy -= h;
    double f = (double)(1 << level);
    double* T = state + SR_S_T;
    double* Ti = state + SR_S_TINV;
    T[0] = 1.0; T[1] = 0.0; T[2] = dx * f;
    T[3] = 0.0; T[4] = 1.0; T[5] = dy * f;
    T[6] = 0.0; T[7] = 0.0; T[8] = 1.0;
    Ti[0] = 1.0; Ti[1] = 0.0; Ti[2] = -(dx * f);
    Ti[3] = 0.0; Ti[4] = 1.0; Ti[5] = -(dy * f);
    Ti[6] = 0.0; Ti[7] = 0.0; Ti[8] = 1.0;
    state[SR_S_PC_PEAK] = c;
}

#if defined(SR_DEVICE)
__global__ void window_complex(const float* __restrict__ img, const float* __restrict__ win, long long n,
                               float* __restrict__ out) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    out[2 * i] = img[i] * win[i];
    out[2 * i + 1] = 0.0f;
}

__global__ void cross_power(const float* __restrict__ fr, const float* __restrict__ f, long long n,
                            float* __restrict__ out) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    sr_cross_power(fr, f, i, out);
}

#define SR_PEAK_THREADS 1024
__global__ void peak_fit(const float* __restrict__ surf, int w, int h, int level, double* __restrict__ state) {
    __shared__ float best_v[SR_PEAK_THREADS];
    __shared__ long long best_i[SR_PEAK_THREADS];
    long long n = (long long)w * h;
    float bv = -3.0e38f;
    long long bi = n;
    for (long long i = threadIdx.x; i < n; i += blockDim.x) {
        float v = surf[i];
        if (v > bv) {  // strictly greater: the first (lowest) index wins within a thread
            bv = v;
            bi = i;
        }
    }
    best_v[threadIdx.x] = bv;
    best_i[threadIdx.x] = bi;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) {
            float ov = best_v[threadIdx.x + s];
            long long oi = best_i[threadIdx.x + s];
            if (ov > best_v[threadIdx.x] || (ov == best_v[threadIdx.x] && oi < best_i[threadIdx.x])) {
                best_v[threadIdx.x] = ov;
                best_i[threadIdx.x] = oi;
            }
        }
        __syncthreads();
    }
    if (threadIdx.x == 0) sr_peak_to_state(surf, w, h, best_i[0], level, state);
}
#endif
