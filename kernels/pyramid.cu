// pyramid.cu: luma conversion, pyramid downsampling, separable filters, gradients.
//
// NumPy twins (superres_gpu/backends/numpy_backend.py): NumpyBackend.luma,
// .downsample2, .sepfilter (rows then columns; Gaussian and B-spline taps), .gradient.
//
// Launch: 2-D grid of 16x16 blocks, one thread per output pixel; bounds check first.
// All images are row-major float32 except the luma input (uint8/uint16, C = 1 or
// 3 interleaved RGB).  Borders: taps are clamped to the image (replicated edge).
//
// luma<T, C>(frame, w, h, inv_max, out)            out (h, w) = BT.601 luma in [0, 1]
// downsample2(in, w, h, out, wo, ho)               out (h/2, w/2): [1,3,3,1]/8 separable,
//                                                   out pixel x centred at input 2x + 0.5
// blur_rows(in, w, h, taps, radius, out)           out = sum_i taps[i] in[y, x + i - radius]
// blur_cols(in, w, h, taps, radius, out)           out = sum_i taps[i] in[y + i - radius, x]
// gradient(in, w, h, gx, gy)                       central differences * 0.5
#include "common.cuh"

template <typename T, int C>
SR_HD float sr_luma_pixel(const T* frame, long long i, float inv_max) {
    if (C == 1) return (float)frame[i] * inv_max;
    float y = (float)frame[i * C + 0] * 0.299f;
    y += (float)frame[i * C + 1] * 0.587f;
    y += (float)frame[i * C + 2] * 0.114f;
    return y * inv_max;
}

SR_HD float sr_downsample_pixel(const float* in, int w, int h, int x, int y) {
    const float b0 = 0.125f, b1 = 0.375f;
    int r0 = sr_clampi(2 * y - 1, 0, h - 1), r1 = sr_clampi(2 * y, 0, h - 1);
    int r2 = sr_clampi(2 * y + 1, 0, h - 1), r3 = sr_clampi(2 * y + 2, 0, h - 1);
    float t[4];
    for (int j = 0; j < 4; ++j) {
        int c = sr_clampi(2 * x - 1 + j, 0, w - 1);
        t[j] = (in[(long long)r0 * w + c] + in[(long long)r3 * w + c]) * b0 +
               (in[(long long)r1 * w + c] + in[(long long)r2 * w + c]) * b1;
    }
    return (t[0] + t[3]) * b0 + (t[1] + t[2]) * b1;
}

SR_HD float sr_blur_row_pixel(const float* in, int w, const float* taps, int radius, int x, int y) {
    const float* row = in + (long long)y * w;
    float s = 0.0f;
    for (int i = 0; i <= 2 * radius; ++i) s += taps[i] * row[sr_clampi(x + i - radius, 0, w - 1)];
    return s;
}

SR_HD float sr_blur_col_pixel(const float* in, int w, int h, const float* taps, int radius, int x, int y) {
    float s = 0.0f;
    for (int i = 0; i <= 2 * radius; ++i) s += taps[i] * in[(long long)sr_clampi(y + i - radius, 0, h - 1) * w + x];
    return s;
}

SR_HD void sr_gradient_pixel(const float* in, int w, int h, int x, int y, float* gx, float* gy) {
    const float* row = in + (long long)y * w;
    *gx = (row[sr_clampi(x + 1, 0, w - 1)] - row[sr_clampi(x - 1, 0, w - 1)]) * 0.5f;
    *gy = (in[(long long)sr_clampi(y + 1, 0, h - 1) * w + x] - in[(long long)sr_clampi(y - 1, 0, h - 1) * w + x]) * 0.5f;
}

#if defined(SR_DEVICE)
#define SR_XY_OR_RETURN(W, H)                              \
    int x = blockIdx.x * blockDim.x + threadIdx.x;         \
    int y = blockIdx.y * blockDim.y + threadIdx.y;         \
    if (x >= (W) || y >= (H)) return;

template <typename T, int C>
__global__ void luma(const T* __restrict__ frame, int w, int h, float inv_max, float* __restrict__ out) {
    SR_XY_OR_RETURN(w, h)
    long long i = (long long)y * w + x;
    out[i] = sr_luma_pixel<T, C>(frame, i, inv_max);
}

__global__ void downsample2(const float* __restrict__ in, int w, int h, float* __restrict__ out, int wo, int ho) {
    SR_XY_OR_RETURN(wo, ho)
    out[(long long)y * wo + x] = sr_downsample_pixel(in, w, h, x, y);
}

__global__ void blur_rows(const float* __restrict__ in, int w, int h, const float* __restrict__ taps, int radius,
                          float* __restrict__ out) {
    SR_XY_OR_RETURN(w, h)
    out[(long long)y * w + x] = sr_blur_row_pixel(in, w, taps, radius, x, y);
}

__global__ void blur_cols(const float* __restrict__ in, int w, int h, const float* __restrict__ taps, int radius,
                          float* __restrict__ out) {
    SR_XY_OR_RETURN(w, h)
    out[(long long)y * w + x] = sr_blur_col_pixel(in, w, h, taps, radius, x, y);
}

__global__ void gradient(const float* __restrict__ in, int w, int h, float* __restrict__ gx, float* __restrict__ gy) {
    SR_XY_OR_RETURN(w, h)
    float a, b;
    sr_gradient_pixel(in, w, h, x, y, &a, &b);
    gx[(long long)y * w + x] = a;
    gy[(long long)y * w + x] = b;
}
#endif
