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
//   the frame and back to level coordinates u = (u0 + 0.5) / 2^L - 0.5.
//   field  const float*  (gh, gw, 2) local displacement field (reference px; sr_field_at in
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
#include "common.cuh"

// The residual at level pixel (x, y); false where the frame does not cover it.
SR_HD bool sr_level_residual(const float* coef, int cw, int ch, const float* ref, int w, const double* state,
                             int level, double margin, int x, int y, const float* field, int gw, int gh, double finv,
                             int has_field, double* d) {
    double f = (double)(1 << level);
    double x0 = f * ((double)x + 0.5) - 0.5, y0 = f * ((double)y + 0.5) - 0.5;
    if (has_field) {
        double dx, dy;
        sr_field_at(field, gw, gh, finv, x0, y0, &dx, &dy);
        x0 = sr_add(x0, dx);
        y0 = sr_add(y0, dy);
    }
    const double* Ti = state + SR_S_TINV;
    double wq = Ti[6] * x0 + Ti[7] * y0 + Ti[8];
    double u = ((Ti[0] * x0 + Ti[1] * y0 + Ti[2]) / wq + 0.5) / f - 0.5;
    double v = ((Ti[3] * x0 + Ti[4] * y0 + Ti[5]) / wq + 0.5) / f - 0.5;
    if (!(u >= margin && u <= cw - 1.0 - margin && v >= margin && v <= ch - 1.0 - margin)) return false;
    double s = sr_sample_bspline(coef, cw, ch, u, v);
    *d = state[SR_S_GAIN] * s + state[SR_S_OFFSET] - (double)ref[(long long)y * w + x];
    return true;
}

SR_HD void sr_robust_residual_at(const float* coef, int cw, int ch, const float* ref, int w, const double* state,
                                 int level, double margin, int x, int y, const float* field, int gw, int gh,
                                 double finv, int has_field, float* d2, float* cov) {
    long long i = (long long)y * w + x;
    double d;
    bool ok = sr_level_residual(coef, cw, ch, ref, w, state, level, margin, x, y, field, gw, gh, finv, has_field, &d);
    d2[i] = ok ? (float)(d * d) : 0.0f;
    cov[i] = ok ? 1.0f : 0.0f;
}

SR_HD void sr_warp_residual_at(const float* coef, int cw, int ch, const float* ref, int w, const double* state,
                               int level, double margin, int x, int y, const float* field, int gw, int gh,
                               double finv, int has_field, float* e, float* cov) {
    long long i = (long long)y * w + x;
    double d;
    bool ok = sr_level_residual(coef, cw, ch, ref, w, state, level, margin, x, y, field, gw, gh, finv, has_field, &d);
    e[i] = ok ? (float)d : 0.0f;
    cov[i] = ok ? 1.0f : 0.0f;
}

SR_HD float sr_robust_weight_value(float e, float c, float g, double scale2, double beta, double k1, double k2,
                                   bool masked) {
    if (masked) return 0.0f;
    if (!(c > 0.5f)) return 1.0f;
    double r2 = ((double)e / (double)c) / (scale2 + beta * (double)g);
    double w = (k2 * k2 - r2) / (k2 * k2 - k1 * k1);
    w = w < 0.0 ? 0.0 : (w > 1.0 ? 1.0 : w);
    return (float)w;
}

#if defined(SR_DEVICE)
__global__ void robust_residual(const float* __restrict__ coef, int cw, int ch, const float* __restrict__ ref, int w,
                                int h, const double* __restrict__ state, int level, double margin,
                                const float* __restrict__ field, int gw, int gh, double finv, int has_field,
                                float* __restrict__ d2, float* __restrict__ cov) {
    int x = blockIdx.x * blockDim.x + threadIdx.x;
    int y = blockIdx.y * blockDim.y + threadIdx.y;
    if (x >= w || y >= h) return;
    sr_robust_residual_at(coef, cw, ch, ref, w, state, level, margin, x, y, field, gw, gh, finv, has_field, d2, cov);
}

__global__ void warp_residual(const float* __restrict__ coef, int cw, int ch, const float* __restrict__ ref, int w,
                              int h, const double* __restrict__ state, int level, double margin,
                              const float* __restrict__ field, int gw, int gh, double finv, int has_field,
                              float* __restrict__ e, float* __restrict__ cov) {
    int x = blockIdx.x * blockDim.x + threadIdx.x;
    int y = blockIdx.y * blockDim.y + threadIdx.y;
    if (x >= w || y >= h) return;
    sr_warp_residual_at(coef, cw, ch, ref, w, state, level, margin, x, y, field, gw, gh, finv, has_field, e, cov);
}

__global__ void robust_weight(const float* __restrict__ e, const float* __restrict__ c, const float* __restrict__ g,
                              long long n, const float* __restrict__ scale2, double beta, double k1, double k2,
                              const float* __restrict__ mask, int has_mask, float* __restrict__ out) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    bool masked = has_mask && mask[i] > 0.0f;
    out[i] = sr_robust_weight_value(e[i], c[i], g[i], (double)scale2[0], beta, k1, k2, masked);
}
#endif
