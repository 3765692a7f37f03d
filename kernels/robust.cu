// robust.cu: per-pixel merge weights that reject what moved (robust merge).
//
// NumPy twins (superres_gpu/backends/numpy_backend.py): NumpyBackend.robust_residual,
// NumpyBackend.warp_residual and NumpyBackend.robust_weight.
//
// Launch: robust_residual and warp_residual 2-D grid of 16x16 blocks over the reference's level image,
// one thread per pixel; robust_weight 1-D over n pixels, 256 threads per block.
// Bounds check first in both.
//
// robust_residual(coef, cw, ch, ref, w, h, state, level, margin, field, gw, gh, finv, has_field, d2, cov)
//   coef   const float*  (ch, cw) frame luma at pyramid `level` as cubic B-spline coefficients
//   ref    const float*  (h, w) the reference's luma at the same level
//   state  const double* alignment state: Tinv, gain, offset
//   d2     float*        (h, w) out: (gain * s + offset - ref)^2 where the frame covers, else 0
//   cov    float*        (h, w) out: 1 where the frame covers (>= margin px inside), else 0
//   Pixel (x, y) sits at level-0 position 2^L (x + 0.5) - 0.5; mapped by Tinv into
//   the frame and back to level coordinates u = (u0 + 0.5) / 2^L - 0.5.  Per pixel
//   float32 only: the displacement Tinv p - p (sr_warp_disp_f, constants once per block
//   in shared memory: sr_level_consts), the B-spline sample and the residual.
//   field  const float*  (gh, gw, 2) local displacement field (reference px; sr_field_at_f in
//                        common.cuh), read when has_field != 0: the level-0 position p moves
//                        to p + D(p) before Tinv maps it; finv = 1 / the field's cell size
// warp_residual(...same arguments..., e, cov)
//   e      float*        (h, w) out: the signed gain * s + offset - ref where the frame
//                        covers, else 0 (the local refinement's residual, superres_gpu/local.py)
// robust_weight(e, c, g, n, scale2, beta, k1, k2, mask, has_mask, out)
//   e, c, g  const float* (n) filtered d2, filtered coverage, reference gradient energy
//   scale2   const float* (1) burst-wide residual level (a median, on the device)
//   out      float*       (n) w = clip((k2^2 - r2) / (k2^2 - k1^2), 0, 1) with
//                         r2 = (e / c) / (scale2 + beta * g); 1 where c <= 0.5; 0 where mask > 0
//                         (float32; beta, k1, k2 rounded to float)
#include "common.cuh"

// What every pixel of a level residual shares, formed in double once per thread block and rounded to
// float (numpy_backend.level_consts_f32): the displacement's coefficients about the level image's
// centre (in level-0 px), the level's scale and the frame's coverage limits, gain and offset.
struct SrLevelK {
    SrWarpF warp;
    float f, inv_f, lo, hi_u, hi_v, gain, offset;
};

SR_HD void sr_level_consts(const double* state, int cw, int ch, int w, int h, int level, double margin,
                           SrLevelK* K) {
    double f = (double)(1 << level);
    sr_warp_f_init(state + SR_S_TINV, 0.5 * (f * w) - 0.5, 0.5 * (f * h) - 0.5, &K->warp);
    K->f = (float)f;
    K->inv_f = (float)(1.0 / f);
    K->lo = (float)margin;
    K->hi_u = (float)(cw - 1.0 - margin);
    K->hi_v = (float)(ch - 1.0 - margin);
    K->gain = (float)state[SR_S_GAIN];
    K->offset = (float)state[SR_S_OFFSET];
}

// The residual at level pixel (x, y), float32; false where the frame does not cover it.  The pixel's
// level-0 position p (exact in float) moves by the field D(p) and by the warp's displacement at p + D
// (sr_warp_disp_f); only the displacement, never p + D, is rounded.
SR_HD bool sr_level_residual(const float* coef, int cw, int ch, const float* ref, int w, const SrLevelK* K, int x,
                             int y, const float* field, int gw, int gh, float finv, int has_field, float* d) {
    float px = sr_fadd(sr_fmul(K->f, sr_fadd((float)x, 0.5f)), -0.5f);
    float py = sr_fadd(sr_fmul(K->f, sr_fadd((float)y, 0.5f)), -0.5f);
    float qx = sr_fadd(px, -K->warp.ox), qy = sr_fadd(py, -K->warp.oy);
    float Dx = 0.0f, Dy = 0.0f;
    if (has_field) {
        sr_field_at_f(field, gw, gh, finv, px, py, &Dx, &Dy);
        qx = sr_fadd(qx, Dx);
        qy = sr_fadd(qy, Dy);
    }
    float dx, dy;
    sr_warp_disp_f(&K->warp, qx, qy, &dx, &dy);
    if (has_field) {
        dx = sr_fadd(Dx, dx);
        dy = sr_fadd(Dy, dy);
    }
    int iu, iv;
    float tu, tv;
    float u = sr_level_pos_f(px, dx, K->f, K->inv_f, &iu, &tu);
    float v = sr_level_pos_f(py, dy, K->f, K->inv_f, &iv, &tv);
    if (!(u >= K->lo && u <= K->hi_u && v >= K->lo && v <= K->hi_v)) return false;
    float s = sr_sample_bspline_f(coef, cw, ch, iu, iv, tu, tv);
    *d = sr_fadd(sr_fadd(sr_fmul(K->gain, s), K->offset), -ref[(long long)y * w + x]);
    return true;
}

SR_HD void sr_robust_residual_at(const float* coef, int cw, int ch, const float* ref, int w, const SrLevelK* K,
                                 int x, int y, const float* field, int gw, int gh, float finv, int has_field,
                                 float* d2, float* cov) {
    long long i = (long long)y * w + x;
    float d;
    bool ok = sr_level_residual(coef, cw, ch, ref, w, K, x, y, field, gw, gh, finv, has_field, &d);
    d2[i] = ok ? sr_fmul(d, d) : 0.0f;
    cov[i] = ok ? 1.0f : 0.0f;
}

SR_HD void sr_warp_residual_at(const float* coef, int cw, int ch, const float* ref, int w, const SrLevelK* K,
                               int x, int y, const float* field, int gw, int gh, float finv, int has_field,
                               float* e, float* cov) {
    long long i = (long long)y * w + x;
    float d;
    bool ok = sr_level_residual(coef, cw, ch, ref, w, K, x, y, field, gw, gh, finv, has_field, &d);
    e[i] = ok ? d : 0.0f;
    cov[i] = ok ? 1.0f : 0.0f;
}

// The merge weight of one pixel, float32 (NumpyBackend.robust_weight).
SR_HD float sr_robust_weight_value(float e, float c, float g, float scale2, float beta, float k1, float k2,
                                   bool masked) {
    if (masked) return 0.0f;
    if (!(c > 0.5f)) return 1.0f;
    float r2 = sr_fdiv(sr_fdiv(e, c), sr_fadd(scale2, sr_fmul(beta, g)));
    float k2s = sr_fmul(k2, k2);
    float w = sr_fdiv(sr_fadd(k2s, -r2), sr_fadd(k2s, -sr_fmul(k1, k1)));
    return w < 0.0f ? 0.0f : (w > 1.0f ? 1.0f : w);
}

#if defined(SR_DEVICE)
__global__ void robust_residual(const float* __restrict__ coef, int cw, int ch, const float* __restrict__ ref, int w,
                                int h, const double* __restrict__ state, int level, double margin,
                                const float* __restrict__ field, int gw, int gh, double finv, int has_field,
                                float* __restrict__ d2, float* __restrict__ cov) {
    __shared__ SrLevelK K;
    if (threadIdx.x == 0 && threadIdx.y == 0) sr_level_consts(state, cw, ch, w, h, level, margin, &K);
    __syncthreads();
    int x = blockIdx.x * blockDim.x + threadIdx.x;
    int y = blockIdx.y * blockDim.y + threadIdx.y;
    if (x >= w || y >= h) return;
    sr_robust_residual_at(coef, cw, ch, ref, w, &K, x, y, field, gw, gh, (float)finv, has_field, d2, cov);
}

__global__ void warp_residual(const float* __restrict__ coef, int cw, int ch, const float* __restrict__ ref, int w,
                              int h, const double* __restrict__ state, int level, double margin,
                              const float* __restrict__ field, int gw, int gh, double finv, int has_field,
                              float* __restrict__ e, float* __restrict__ cov) {
    __shared__ SrLevelK K;
    if (threadIdx.x == 0 && threadIdx.y == 0) sr_level_consts(state, cw, ch, w, h, level, margin, &K);
    __syncthreads();
    int x = blockIdx.x * blockDim.x + threadIdx.x;
    int y = blockIdx.y * blockDim.y + threadIdx.y;
    if (x >= w || y >= h) return;
    sr_warp_residual_at(coef, cw, ch, ref, w, &K, x, y, field, gw, gh, (float)finv, has_field, e, cov);
}

__global__ void robust_weight(const float* __restrict__ e, const float* __restrict__ c, const float* __restrict__ g,
                              long long n, const float* __restrict__ scale2, double beta, double k1, double k2,
                              const float* __restrict__ mask, int has_mask, float* __restrict__ out) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    bool masked = has_mask && mask[i] > 0.0f;
    out[i] = sr_robust_weight_value(e[i], c[i], g[i], scale2[0], (float)beta, (float)k1, (float)k2, masked);
}
#endif
