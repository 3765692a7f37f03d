// Host build of the kernels' per-thread math (kernels/*.cu without the
// __global__ wrappers), driven over whole images like a grid would, so that the
// CPU test suite checks each kernel's arithmetic against its NumPy twin.
// Built by tests/test_kernels_host.py with the system C++ compiler.
#include <stdint.h>
#include "resample.cu"
#include "pyramid.cu"
#include "phasecorr.cu"
#include "align.cu"
#include "normalize.cu"
#include "robust.cu"
#include "kernelreg.cu"

extern "C" {

void h_resample(const void* frame, int is16, int C, int fw, int fh, const double* state, const float* tab,
                float* num, float* den, int wo, int ho, double a, double b, float maxv, const float* wts, int ww,
                int wh, int has_w, double winv, const double* chmaps, int has_c, const float* field, int gw, int gh,
                double finv, int has_f) {
    float maps[SR_MAPS_LEN(3)];  // as the wrapper forms them once per thread block
    sr_float_maps(state + SR_S_TINV, a, b, chmaps, has_c, C, maps);
#define SR_ARGS fw, fh, state, maps, tab, num, den, wo, X, Y, (float)a, (float)b, maxv, wts, ww, wh, has_w, (float)winv, \
                has_c, field, gw, gh, (float)finv, has_f
    for (int Y = 0; Y < ho; ++Y)
        for (int X = 0; X < wo; ++X) {
            if (is16 == 2) {  // float32 frames (from tca_band; grey: the template's lumas)
                if (C == 1) sr_resample_accumulate_at<float, 1>((const float*)frame, SR_ARGS);
                else sr_resample_accumulate_at<float, 3>((const float*)frame, SR_ARGS);
            } else if (is16) {
                if (C == 1) sr_resample_accumulate_at<uint16_t, 1>((const uint16_t*)frame, SR_ARGS);
                else sr_resample_accumulate_at<uint16_t, 3>((const uint16_t*)frame, SR_ARGS);
            } else {
                if (C == 1) sr_resample_accumulate_at<uint8_t, 1>((const uint8_t*)frame, SR_ARGS);
                else sr_resample_accumulate_at<uint8_t, 3>((const uint8_t*)frame, SR_ARGS);
            }
        }
#undef SR_ARGS
}

void h_kernel_accumulate(const void* frame, int is16, int C, int fw, int fh, const double* state, float* num,
                         float* den, int wo, int ho, double a, double b, float maxv, const float* wts, int ww, int wh,
                         int has_w, double winv, int n, float c2, const float* shape, int sw, int sh,
                         int has_shape, const float* field, int gw, int gh, double finv, int has_f,
                         const double* chmaps, int has_c) {
    float maps[SR_MAPS_LEN(3)];  // as the wrapper forms them once per thread block
    sr_float_maps(state + SR_S_TINV, a, b, chmaps, has_c, C, maps);
#define SR_ARGS fw, fh, state, maps, num, den, wo, X, Y, (float)a, (float)b, maxv, wts, ww, wh, has_w, (float)winv, n, \
                c2, shape, sw, sh, has_shape, field, gw, gh, (float)finv, has_f, has_c
    for (int Y = 0; Y < ho; ++Y)
        for (int X = 0; X < wo; ++X) {
            if (is16 == 2) {  // float32 frames (from tca_band): colour only
                sr_kernel_accumulate_at<float, 3>((const float*)frame, SR_ARGS);
            } else if (is16) {
                if (C == 1) sr_kernel_accumulate_at<uint16_t, 1>((const uint16_t*)frame, SR_ARGS);
                else sr_kernel_accumulate_at<uint16_t, 3>((const uint16_t*)frame, SR_ARGS);
            } else {
                if (C == 1) sr_kernel_accumulate_at<uint8_t, 1>((const uint8_t*)frame, SR_ARGS);
                else sr_kernel_accumulate_at<uint8_t, 3>((const uint8_t*)frame, SR_ARGS);
            }
        }
#undef SR_ARGS
}

void h_tca_band(const void* frame, int is16, int fw, int fh, const float* lo, const double* maps, const float* tab,
                float* out) {
    for (int y = 0; y < fh; ++y)
        for (int x = 0; x < fw; ++x) {
            if (is16) sr_tca_band_at<uint16_t, 3>((const uint16_t*)frame, fw, fh, lo, maps, tab, out, x, y);
            else sr_tca_band_at<uint8_t, 3>((const uint8_t*)frame, fw, fh, lo, maps, tab, out, x, y);
        }
}

void h_robust_residual(const float* coef, int cw, int ch, const float* ref, int w, int h, const double* state,
                       int level, double margin, const float* field, int gw, int gh, double finv, int has_f, float* d2,
                       float* cov) {
    SrLevelK K;  // as the kernel forms it once per thread block
    sr_level_consts(state, cw, ch, w, h, level, margin, &K);
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x)
            sr_robust_residual_at(coef, cw, ch, ref, w, &K, x, y, field, gw, gh, (float)finv, has_f, d2, cov);
}

void h_warp_residual(const float* coef, int cw, int ch, const float* ref, int w, int h, const double* state,
                     int level, double margin, const float* field, int gw, int gh, double finv, int has_f, float* e,
                     float* cov) {
    SrLevelK K;
    sr_level_consts(state, cw, ch, w, h, level, margin, &K);
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x)
            sr_warp_residual_at(coef, cw, ch, ref, w, &K, x, y, field, gw, gh, (float)finv, has_f, e, cov);
}

// The field at n reference positions, and output pixels moved by it.
void h_field_at(const float* field, int gw, int gh, float finv, const float* px, const float* py, long long n,
                float* dx, float* dy) {
    for (long long i = 0; i < n; ++i) sr_field_at_f(field, gw, gh, finv, px[i], py[i], dx + i, dy + i);
}

// The warp's float32 displacement and level positions at n level-0 positions (about origin o).
void h_warp_positions(const double* Ti, double ox, double oy, int level, const float* px, const float* py,
                      long long n, float* dx, float* dy, int* iu, int* iv, float* tu, float* tv, float* u, float* v) {
    SrWarpF W;
    sr_warp_f_init(Ti, ox, oy, &W);
    float f = (float)(1 << level), inv_f = 1.0f / f;
    for (long long i = 0; i < n; ++i) {
        sr_warp_disp_f(&W, sr_fadd(px[i], -W.ox), sr_fadd(py[i], -W.oy), dx + i, dy + i);
        u[i] = sr_level_pos_f(px[i], dx[i], f, inv_f, iu + i, tu + i);
        v[i] = sr_level_pos_f(py[i], dy[i], f, inv_f, iv + i, tv + i);
    }
}

void h_sample_bspline(const float* img, int w, int h, const int* iu, const int* iv, const float* tu,
                      const float* tv, long long n, float* out) {
    for (long long i = 0; i < n; ++i) out[i] = sr_sample_bspline_f(img, w, h, iu[i], iv[i], tu[i], tv[i]);
}

void h_field_output(const float* field, int gw, int gh, float finv, float a, float b, int wo, int ho, float* Xd,
                    float* Yd) {
    for (int Y = 0; Y < ho; ++Y)
        for (int X = 0; X < wo; ++X)
            sr_field_output_f(field, gw, gh, finv, a, b, X, Y, Xd + (long long)Y * wo + X, Yd + (long long)Y * wo + X);
}

void h_robust_weight(const float* e, const float* c, const float* g, long long n, float scale2, double beta,
                     double k1, double k2, const float* mask, int has_mask, float* out) {
    for (long long i = 0; i < n; ++i)
        out[i] = sr_robust_weight_value(e[i], c[i], g[i], scale2, (float)beta, (float)k1, (float)k2,
                                        has_mask && mask[i] > 0.0f);
}

void h_luma(const void* frame, int is16, int C, int w, int h, float inv_max, float* out) {
    for (long long i = 0; i < (long long)w * h; ++i) {
        if (is16) out[i] = C == 1 ? sr_luma_pixel<uint16_t, 1>((const uint16_t*)frame, i, inv_max)
                                  : sr_luma_pixel<uint16_t, 3>((const uint16_t*)frame, i, inv_max);
        else out[i] = C == 1 ? sr_luma_pixel<uint8_t, 1>((const uint8_t*)frame, i, inv_max)
                             : sr_luma_pixel<uint8_t, 3>((const uint8_t*)frame, i, inv_max);
    }
}

void h_downsample2(const float* in, int w, int h, float* out) {
    int wo = w / 2, ho = h / 2;
    for (int y = 0; y < ho; ++y)
        for (int x = 0; x < wo; ++x) out[(long long)y * wo + x] = sr_downsample_pixel(in, w, h, x, y);
}

void h_blur(const float* in, int w, int h, const float* taps, int radius, float* tmp, float* out) {
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) tmp[(long long)y * w + x] = sr_blur_row_pixel(in, w, taps, radius, x, y);
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) out[(long long)y * w + x] = sr_blur_col_pixel(tmp, w, h, taps, radius, x, y);
}

void h_gradient(const float* in, int w, int h, float* gx, float* gy) {
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) sr_gradient_pixel(in, w, h, x, y, gx + (long long)y * w + x, gy + (long long)y * w + x);
}

void h_cross_power(const float* fr, const float* f, long long n, float* out) {
    for (long long i = 0; i < n; ++i) sr_cross_power(fr, f, i, out);
}

void h_peak_fit(const float* surf, int w, int h, int level, double* state) {
    long long n = (long long)w * h, bi = 0;
    float bv = surf[0];
    for (long long i = 1; i < n; ++i)
        if (surf[i] > bv) { bv = surf[i]; bi = i; }
    sr_peak_to_state(surf, w, h, bi, level, state);
}

void h_align_reduce(const float* img, int w, int h, const float* pts, long long n, const double* state, int model,
                    int level, double cx, double cy, double sc, double margin, int iteration, double* sums) {
    for (int k = 0; k < SR_SUMS_LEN; ++k) sums[k] = 0.0;
    if (iteration > 0 && state[SR_S_CONVERGED] != 0.0) return;  // the kernel's skip (align_reduce_partial)
    SrAlignK K;  // as the kernel forms it once per thread block
    sr_align_consts(state, w, h, level, cx, cy, sc, margin, &K);
    for (long long i = 0; i < n; ++i) sr_reduce_point(img, w, h, pts, n, i, &K, model, sums);
}

void h_align_update(const double* sums, double* state, int model, double cx, double cy, double sc, double damping,
                    double converged_px, int iteration) {
    sr_align_update(sums, state, model, cx, cy, sc, damping, converged_px, iteration);
}

void h_align_finalize(double* state, int width, int height, double min_corr, double min_overlap) {
    sr_finalize_state(state, width, height, min_corr, min_overlap);
}

void h_normalize(const float* num, const float* den, long long n, int C, float value_scale, uint16_t* out) {
    for (long long i = 0; i < n; ++i)
        for (int ch = 0; ch < C; ++ch) out[i * C + ch] = sr_normalize_value(num[i * C + ch], den[i], value_scale);
}

}  // extern "C"
