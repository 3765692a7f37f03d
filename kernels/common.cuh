// common.cuh: shared definitions of the superres_gpu CUDA kernels.
//
// Every kernel family keeps its per-pixel / per-point math in SR_HD functions
// (host + device), so the same code also compiles as plain C++ on a CPU and is
// tested there against the NumPy twins (tests/kernel_host_harness.cpp).  The
// __global__ wrappers (indexing, reductions) are compiled only by NVRTC/nvcc.
//
// Conventions: x right, y down, pixel centres at integer
// coordinates; row-major images; a frame's transform T maps frame pixel
// coordinates to reference pixel coordinates.
#pragma once

#if defined(__CUDACC__)
#define SR_HD __host__ __device__ __forceinline__
#define SR_DEVICE 1
#else
#include <math.h>
#define SR_HD static inline
#endif

// CUDART_PI is not available with pip-installed CUDA headers: our own constants.
#define SR_PI 3.14159265358979323846

// ---- alignment state vector layout (superres_gpu/backends/base.py) ----------
#define SR_STATE_LEN 32
#define SR_S_T 0
#define SR_S_TINV 9
#define SR_S_GAIN 18
#define SR_S_OFFSET 19
#define SR_S_SIGMA 20
#define SR_S_ACCEPT 21
#define SR_S_STEP 22
#define SR_S_RMS 23
#define SR_S_CORR 24
#define SR_S_OVERLAP 25
#define SR_S_PC_PEAK 26
#define SR_S_NVALID 27
#define SR_S_STATUS 28
#define SR_S_ITERS 29
#define SR_S_CONVERGED 30
#define SR_S_REDESCEND 31

#define SR_STATUS_OK 0
#define SR_STATUS_SINGULAR 1
#define SR_STATUS_NONFINITE 2
#define SR_STATUS_IMPLAUSIBLE 3
#define SR_STATUS_LOW_CORR 4
#define SR_STATUS_LOW_OVERLAP 5
#define SR_STATUS_DISAGREES 6

// ---- alignment reduction vector layout ----------------------------------------
#define SR_SUMS_LEN 64
#define SR_SUM_H 0
#define SR_SUM_G 36
#define SR_SUM_COUNT 44
#define SR_SUM_W 45
#define SR_SUM_WEE 46
#define SR_SUM_EE 47
#define SR_SUM_S 48
#define SR_SUM_SS 49
#define SR_SUM_SR 50
#define SR_SUM_R 51
#define SR_SUM_RR 52
#define SR_SUM_N 53
#define SR_SUM_RHO 54   // SR_SCALE_STEPS entries
#define SR_SUM_WS 59
#define SR_SUM_WSS 60
#define SR_SUM_WR 61
#define SR_SUM_WRR 62
#define SR_SUM_USED 63  // entries 0..62 are written; the rest stay zero

// robust weights and scale of the alignment (superres_gpu/backends/base.py)
#define SR_HUBER_K 1.345
#define SR_TUKEY_C 4.685
#define SR_SCALE_C 1.547
#define SR_SCALE_DELTA 0.5
#define SR_SCALE_STEPS 5

// ---- motion models (superres_gpu/geometry.py MOTION_MODELS order) ----------------
#define SR_MODEL_TRANSLATION 0
#define SR_MODEL_EUCLIDEAN 1
#define SR_MODEL_SIMILARITY 2
#define SR_MODEL_AFFINE 3
#define SR_MODEL_HOMOGRAPHY 4

// ---- Lanczos4 sub-pixel table (superres_gpu/resample.py) ---------------------------
#define SR_TAB_BITS 5
#define SR_TAB_SIZE 32

SR_HD int sr_clampi(int v, int lo, int hi) { return v < lo ? lo : (v > hi ? hi : v); }

// Multiply/add without FMA contraction (double, and float for sr_fmul/sr_fadd): positions
// that are rounded to 1/32 pixel must be computed exactly as NumPy computes them.
#if defined(SR_DEVICE)
SR_HD float sr_fmul(float a, float b) { return __fmul_rn(a, b); }
SR_HD float sr_fadd(float a, float b) { return __fadd_rn(a, b); }
SR_HD float sr_fdiv(float a, float b) { return __fdiv_rn(a, b); }
SR_HD double sr_mul(double a, double b) { return __dmul_rn(a, b); }
SR_HD double sr_add(double a, double b) { return __dadd_rn(a, b); }
SR_HD double sr_div(double a, double b) { return __ddiv_rn(a, b); }
SR_HD int sr_rint(double a) { return __double2int_rn(a); }
SR_HD int sr_rintf(float a) { return __float2int_rn(a); }
#else
SR_HD float sr_fmul(float a, float b) { return a * b; }
SR_HD float sr_fadd(float a, float b) { return a + b; }
SR_HD float sr_fdiv(float a, float b) { return a / b; }
SR_HD double sr_mul(double a, double b) { return a * b; }
SR_HD double sr_add(double a, double b) { return a + b; }
SR_HD double sr_div(double a, double b) { return a / b; }
SR_HD int sr_rint(double a) { return (int)nearbyint(a); }  // round half to even, as np.rint
SR_HD int sr_rintf(float a) { return (int)nearbyintf(a); }
#endif

// Inverse of a 3x3 matrix by the adjugate (same formula as numpy_backend._inv3).
SR_HD void sr_inv3(const double* T, double* out) {
    double a = T[0], b = T[1], c = T[2], d = T[3], e = T[4], f = T[5], g = T[6], h = T[7], i = T[8];
    double A = e * i - f * h, B = -(d * i - f * g), C = d * h - e * g;
    double det = a * A + b * B + c * C;
    out[0] = A / det;
    out[1] = -(b * i - c * h) / det;
    out[2] = (b * f - c * e) / det;
    out[3] = B / det;
    out[4] = (a * i - c * g) / det;
    out[5] = -(a * f - c * d) / det;
    out[6] = C / det;
    out[7] = -(a * h - b * g) / det;
    out[8] = (a * e - b * d) / det;
}

SR_HD void sr_matmul3(const double* A, const double* B, double* C) {
    for (int r = 0; r < 3; ++r)
        for (int c = 0; c < 3; ++c)
            C[r * 3 + c] = A[r * 3 + 0] * B[0 * 3 + c] + A[r * 3 + 1] * B[1 * 3 + c] + A[r * 3 + 2] * B[2 * 3 + c];
}

SR_HD int sr_model_nparams(int model) {
    return model == SR_MODEL_TRANSLATION ? 2
         : model == SR_MODEL_EUCLIDEAN   ? 3
         : model == SR_MODEL_SIMILARITY  ? 4
         : model == SR_MODEL_AFFINE      ? 6
                                         : 8;
}

// 3x3 warp W(p) in normalised coordinates (geometry.model_matrix).
SR_HD void sr_model_matrix(int model, const double* p, double* W) {
    W[0] = 1.0; W[1] = 0.0; W[2] = 0.0;
    W[3] = 0.0; W[4] = 1.0; W[5] = 0.0;
    W[6] = 0.0; W[7] = 0.0; W[8] = 1.0;
    switch (model) {
    case SR_MODEL_TRANSLATION:
        W[2] = p[0]; W[5] = p[1];
        break;
    case SR_MODEL_EUCLIDEAN: {
        double c = cos(p[2]), s = sin(p[2]);
        W[0] = c; W[1] = -s; W[2] = p[0]; W[3] = s; W[4] = c; W[5] = p[1];
        break;
    }
    case SR_MODEL_SIMILARITY:
        W[0] = 1.0 + p[2]; W[1] = -p[3]; W[2] = p[0]; W[3] = p[3]; W[4] = 1.0 + p[2]; W[5] = p[1];
        break;
    case SR_MODEL_AFFINE:
        W[0] = 1.0 + p[0]; W[1] = p[1]; W[2] = p[2]; W[3] = p[3]; W[4] = 1.0 + p[4]; W[5] = p[5];
        break;
    default:
        W[0] = 1.0 + p[0]; W[1] = p[1]; W[2] = p[2]; W[3] = p[3]; W[4] = 1.0 + p[4]; W[5] = p[5];
        W[6] = p[6]; W[7] = p[7];
        break;
    }
}

SR_HD int sr_upper_index(int i, int j) { return i * 8 - i * (i - 1) / 2 + (j - i); }

SR_HD bool sr_isfinite(double v) { return v == v && v - v == 0.0; }

// ---- the output grid: shared by the merge kernels (resample.cu, kernelreg.cu) ------------
// M = Tinv * S for S = [[a, 0, b], [0, a, b], [0, 0, 1]], elementwise as the twin.
SR_HD void sr_output_map(const double* Ti, double a, double b, double* M) {
    for (int r = 0; r < 3; ++r) {
        M[r * 3 + 0] = sr_mul(Ti[r * 3 + 0], a);
        M[r * 3 + 1] = sr_mul(Ti[r * 3 + 1], a);
        M[r * 3 + 2] = sr_add(sr_add(sr_mul(Ti[r * 3 + 0], b), sr_mul(Ti[r * 3 + 1], b)), Ti[r * 3 + 2]);
    }
}

// Mc = C M for 3x3 matrices: ((C[r,0] M[0,k] + C[r,1] M[1,k]) + C[r,2] M[2,k]).
// (a channel's map composed with the output map: chromatic aberration, resample.cu and kernelreg.cu)
SR_HD void sr_compose_map(const double* Cm, const double* M, double* out) {
    for (int r = 0; r < 3; ++r)
        for (int k = 0; k < 3; ++k)
            out[r * 3 + k] = sr_add(sr_add(sr_mul(Cm[r * 3 + 0], M[k]), sr_mul(Cm[r * 3 + 1], M[3 + k])),
                                    sr_mul(Cm[r * 3 + 2], M[6 + k]));
}

// ---- float32 per-pixel / per-point work (the merges, the alignment, the robust residuals) ------
// Consumer GPUs run double precision at 1/32 to 1/64 of float: per pixel only float32, one rounding
// per operation (sr_fmul, sr_fadd, sr_fdiv: no contraction), in the twin's order; the maps are
// formed in double once per thread block (sr_output_map, sr_compose_map, sr_warp_f_init) and
// rounded to float.

// The output map M = Tinv S (and, with channel maps, Mc = Cc M per channel after it), rounded to
// float: maps[0..8] = M; channel c's block of SR_CHMAP_LEN floats at 9 + SR_CHMAP_LEN c: Mc (9), then
// its radial term (cx, cy, k3) (sr_radial_f).  chmaps: (C, SR_CHMAP_LEN) double rows, the 3x3 Cc
// row-major, then cx, cy, k3.
#define SR_CHMAP_LEN 12
#define SR_MAPS_LEN(C) (9 + SR_CHMAP_LEN * (C))
SR_HD void sr_float_maps(const double* Ti, double a, double b, const double* chmaps, int has_chmaps, int C,
                         float* maps) {
    double M[9];
    sr_output_map(Ti, a, b, M);
    for (int k = 0; k < 9; ++k) maps[k] = (float)M[k];
    if (!has_chmaps) return;
    for (int c = 0; c < C; ++c) {
        double Mc[9];
        const double* row = chmaps + c * SR_CHMAP_LEN;
        float* out = maps + 9 + SR_CHMAP_LEN * c;
        sr_compose_map(row, M, Mc);
        for (int k = 0; k < 9; ++k) out[k] = (float)Mc[k];
        for (int k = 9; k < SR_CHMAP_LEN; ++k) out[k] = (float)row[k];
    }
}

// A channel's cubic radial term at its linear position (u, v) (lateral chromatic aberration's
// third-order part, superres_gpu/tca.py): with r = (cx, cy, k3) and d = (u - cx, v - cy),
// (u, v) += (k3 |d|^2) d, in float32, one rounding per operation, in the twin's order
// (numpy_backend.radial_f32).  k3 = 0 leaves (u, v) exactly as they were.
SR_HD void sr_radial_f(const float* r, float* u, float* v) {
    if (r[2] == 0.0f) return;
    float dx = sr_fadd(*u, -r[0]), dy = sr_fadd(*v, -r[1]);
    float f = sr_fmul(r[2], sr_fadd(sr_fmul(dx, dx), sr_fmul(dy, dy)));
    *u = sr_fadd(*u, sr_fmul(f, dx));
    *v = sr_fadd(*v, sr_fmul(f, dy));
}

// Frame position of (X, Y) under a float map: u = (M00 X + (M01 Y + M02)) / (M20 X + (M21 Y + M22)).
SR_HD void sr_project_f(const float* M, float X, float Y, float* u, float* v, float* wq) {
    *wq = sr_fadd(sr_fmul(M[6], X), sr_fadd(sr_fmul(M[7], Y), M[8]));
    *u = sr_fdiv(sr_fadd(sr_fmul(M[0], X), sr_fadd(sr_fmul(M[1], Y), M[2])), *wq);
    *v = sr_fdiv(sr_fadd(sr_fmul(M[3], X), sr_fadd(sr_fmul(M[4], Y), M[5])), *wq);
}

// A bilinear read's taps and fraction on a grid axis of n nodes at q = (p + 0.5) inv - 0.5, clamped to
// [0, n - 1]: the robust weights' level grid (p = X a + b, inv = 1 / 2^L) and the local field's nodes
// (inv = 1 / cell) alike.
SR_HD void sr_grid_axis_f(float p, float inv, int n, int* i0, int* i1, float* f) {
    float q = sr_fadd(sr_fmul(sr_fadd(p, 0.5f), inv), -0.5f);
    float top = (float)(n - 1);
    q = q < 0.0f ? 0.0f : (q > top ? top : q);
    float fl = floorf(q);
    *i0 = (int)fl;
    *i1 = *i0 + 1 < n ? *i0 + 1 : n - 1;
    *f = sr_fadd(q, -fl);
}

// Bilinear weight at output pixel (X, Y), the two rows mixed first.
SR_HD float sr_weight_at_f(const float* weights, int ww, int wh, float winv, int X, int Y, float a, float b) {
    int x0, x1, y0, y1;
    float fx, fy;
    sr_grid_axis_f(sr_fadd(sr_fmul((float)X, a), b), winv, ww, &x0, &x1, &fx);
    sr_grid_axis_f(sr_fadd(sr_fmul((float)Y, a), b), winv, wh, &y0, &y1, &fy);
    const float* r0 = weights + (long long)y0 * ww;
    const float* r1 = weights + (long long)y1 * ww;
    float gy = sr_fadd(1.0f, -fy), gx = sr_fadd(1.0f, -fx);
    float c0 = sr_fadd(sr_fmul(r0[x0], gy), sr_fmul(r1[x0], fy));  // the two rows mixed first
    float c1 = sr_fadd(sr_fmul(r0[x1], gy), sr_fmul(r1[x1], fy));
    return sr_fadd(sr_fmul(c0, gx), sr_fmul(c1, fx));
}

// ---- the local displacement field (superres_gpu/local.py) ----------------------------
// A coarse field (gh, gw, 2) float32 of displacements (dx, dy) in reference pixels, added to a
// reference position before it is projected into the frame: a frame is read at Tinv (p + D(p)).
// Node (i, j) sits at reference position ((j + 0.5) cell - 0.5, (i + 0.5) cell - 0.5), finv =
// 1 / cell; D is bilinear between nodes and constant beyond the outer ones (clamped), so the
// field has no seams.  In float32, the two rows mixed first, then the two columns, in the twin's
// order (numpy_backend.field_at_f32): the merges (sr_field_output_f) and the robust residuals.
SR_HD void sr_field_at_f(const float* field, int gw, int gh, float finv, float px, float py, float* dx, float* dy) {
    int x0, x1, y0, y1;
    float fx, fy;
    sr_grid_axis_f(px, finv, gw, &x0, &x1, &fx);
    sr_grid_axis_f(py, finv, gh, &y0, &y1, &fy);
    const float* r0 = field + (long long)y0 * gw * 2;
    const float* r1 = field + (long long)y1 * gw * 2;
    float gy = sr_fadd(1.0f, -fy), gx = sr_fadd(1.0f, -fx);
    float d[2];
    for (int k = 0; k < 2; ++k) {
        float c0 = sr_fadd(sr_fmul(gy, r0[x0 * 2 + k]), sr_fmul(fy, r1[x0 * 2 + k]));
        float c1 = sr_fadd(sr_fmul(gy, r0[x1 * 2 + k]), sr_fmul(fy, r1[x1 * 2 + k]));
        d[k] = sr_fadd(sr_fmul(gx, c0), sr_fmul(fx, c1));
    }
    *dx = d[0];
    *dy = d[1];
}

// Output pixel (X, Y) moved by the local field sampled at its reference position p = (X a + b, Y a + b):
// (X, Y) + D(p) / a, so that M reads the frame at Tinv (p + D(p)); a zero field leaves X, Y as they were.
SR_HD void sr_field_output_f(const float* field, int gw, int gh, float finv, float a, float b, int X, int Y,
                             float* Xd, float* Yd) {
    float dx, dy;
    sr_field_at_f(field, gw, gh, finv, sr_fadd(sr_fmul((float)X, a), b), sr_fadd(sr_fmul((float)Y, a), b), &dx, &dy);
    *Xd = sr_fadd((float)X, sr_fdiv(dx, a));
    *Yd = sr_fadd((float)Y, sr_fdiv(dy, a));
}

// ---- float32 per-point work of the alignment and the robust residuals (align.cu, robust.cu) ------
// A frame is read at Tinv p for reference positions p of up to ~4000 px, where a float32 position
// is only good to 2.4e-4 px.  So float32 carries the small displacement Tinv p - p, never the
// transformed position: Tinv, conjugated to an origin o near the image centre and less the identity,
// is formed in double once per thread block (sr_warp_f_init) and rounded to float; per point the
// displacement follows from the centred position q = p - o (sr_warp_disp_f), and the level position
// keeps the integer part of p apart from the fractions (sr_level_pos_f): the B-spline's taps and
// fraction are as exact as the displacement itself (~1e-5 px).
struct SrWarpF {
    float A[9];  // Tc / Tc[8] - I, Tc = C(-o) Tinv C(o): the displacement's coefficients
    float ox, oy;
};

SR_HD void sr_warp_f_init(const double* Ti, double ox, double oy, SrWarpF* W) {
    double M[9], Tc[9];
    for (int r = 0; r < 3; ++r) {  // M = Tinv C(o)
        M[r * 3 + 0] = Ti[r * 3 + 0];
        M[r * 3 + 1] = Ti[r * 3 + 1];
        M[r * 3 + 2] = sr_add(sr_add(sr_mul(Ti[r * 3 + 0], ox), sr_mul(Ti[r * 3 + 1], oy)), Ti[r * 3 + 2]);
    }
    for (int k = 0; k < 3; ++k) {  // Tc = C(-o) M
        Tc[k] = sr_add(M[k], -sr_mul(ox, M[6 + k]));
        Tc[3 + k] = sr_add(M[3 + k], -sr_mul(oy, M[6 + k]));
        Tc[6 + k] = M[6 + k];
    }
    double z = Tc[8];
    for (int k = 0; k < 9; ++k) W->A[k] = (float)sr_add(sr_div(Tc[k], z), (k % 4 == 0) ? -1.0 : 0.0);
    W->ox = (float)ox;
    W->oy = (float)oy;
}

// The displacement (dx, dy) = Tinv p - p at the centred position q = p - o, in float32:
// with m = A6 qx + A7 qy + A8 (the divisor less 1; 0 for affine motion),
// dx = ((A0 qx + A1 qy) + A2 - qx m) / (1 + m), dy alike (numpy_backend.warp_disp_f32).
SR_HD void sr_warp_disp_f(const SrWarpF* W, float qx, float qy, float* dx, float* dy) {
    const float* A = W->A;
    float m = sr_fadd(sr_fadd(sr_fmul(A[6], qx), sr_fmul(A[7], qy)), A[8]);
    float nx = sr_fadd(sr_fadd(sr_fmul(A[0], qx), sr_fmul(A[1], qy)), A[2]);
    float ny = sr_fadd(sr_fadd(sr_fmul(A[3], qx), sr_fmul(A[4], qy)), A[5]);
    float den = sr_fadd(1.0f, m);
    *dx = sr_fdiv(sr_fadd(nx, -sr_fmul(qx, m)), den);
    *dy = sr_fdiv(sr_fadd(ny, -sr_fmul(qy, m)), den);
}

// Level position u = (p + d + 0.5) / f - 0.5 of the level-0 position p moved by d (f = 2^level,
// inv_f = 1 / f): its tap *i = floor(u) and fraction *t, with p's integer part kept out of the
// float32 sum (exact but for the one rounding of p's fraction plus d); returns u rounded to float
// for the coverage test (numpy_backend.level_pos_f32).
SR_HD float sr_level_pos_f(float p, float d, float f, float inv_f, int* i, float* t) {
    float ip = floorf(p);
    float fp = sr_fadd(p, -ip);
    float q = floorf(sr_fmul(ip, inv_f));                         // ip = q f + r, 0 <= r < f
    float r = sr_fadd(ip, -sr_fmul(q, f));
    float c = sr_fadd(r, sr_fmul(0.5f, sr_fadd(1.0f, -f)));      // r + 0.5 - f / 2, exact
    float s = sr_fmul(sr_fadd(c, sr_fadd(fp, d)), inv_f);        // u - q
    float fl = floorf(s);
    *i = (int)q + (int)fl;
    *t = sr_fadd(s, -fl);
    return sr_fadd(q, s);
}

// Cubic B-spline weights for taps at -1, 0, 1, 2 of fraction t, float32 (interp.bspline_weights_f32).
#define SR_SIXTH 0.16666667f
SR_HD void sr_bspline_weights_f(float t, float w[4]) {
    float u = sr_fadd(1.0f, -t), t2 = sr_fmul(t, t), t3 = sr_fmul(t2, t);
    w[0] = sr_fmul(sr_fmul(sr_fmul(u, u), u), SR_SIXTH);
    w[1] = sr_fmul(sr_fadd(sr_fadd(sr_fmul(3.0f, t3), sr_fmul(-6.0f, t2)), 4.0f), SR_SIXTH);
    w[2] = sr_fmul(sr_fadd(sr_fadd(sr_fadd(sr_fmul(-3.0f, t3), sr_fmul(3.0f, t2)), sr_fmul(3.0f, t)), 1.0f), SR_SIXTH);
    w[3] = sr_fmul(t3, SR_SIXTH);
}

// Cubic B-spline interpolation of a coefficient image at tap (iu, iv) and fractions (tu, tv)
// (sr_level_pos_f), taps clamped, float32: each row's four products summed, then the rows
// (numpy_backend.sample_bspline_f32).
SR_HD float sr_sample_bspline_f(const float* img, int w, int h, int iu, int iv, float tu, float tv) {
    float wx[4], wy[4];
    sr_bspline_weights_f(tu, wx);
    sr_bspline_weights_f(tv, wy);
    float out = 0.0f;
    for (int r = 0; r < 4; ++r) {
        const float* row = img + (long long)sr_clampi(iv + r - 1, 0, h - 1) * w;
        float acc = 0.0f;
        for (int c = 0; c < 4; ++c) acc = sr_fadd(acc, sr_fmul(wx[c], row[sr_clampi(iu + c - 1, 0, w - 1)]));
        out = sr_fadd(out, sr_fmul(wy[r], acc));
    }
    return out;
}

// Steepest-descent row J (n entries) of a point, float32 (numpy_backend.model_jacobian on float32).
SR_HD int sr_jacobian_f(int model, float xn, float yn, float gx, float gy, float* J) {
    switch (model) {
    case SR_MODEL_TRANSLATION:
        J[0] = gx; J[1] = gy;
        return 2;
    case SR_MODEL_EUCLIDEAN:
        J[0] = gx; J[1] = gy; J[2] = sr_fadd(sr_fmul(-yn, gx), sr_fmul(xn, gy));
        return 3;
    case SR_MODEL_SIMILARITY:
        J[0] = gx; J[1] = gy; J[2] = sr_fadd(sr_fmul(xn, gx), sr_fmul(yn, gy));
        J[3] = sr_fadd(sr_fmul(-yn, gx), sr_fmul(xn, gy));
        return 4;
    case SR_MODEL_AFFINE:
        J[0] = sr_fmul(xn, gx); J[1] = sr_fmul(yn, gx); J[2] = gx;
        J[3] = sr_fmul(xn, gy); J[4] = sr_fmul(yn, gy); J[5] = gy;
        return 6;
    default: {
        float r = sr_fadd(sr_fmul(xn, gx), sr_fmul(yn, gy));
        J[0] = sr_fmul(xn, gx); J[1] = sr_fmul(yn, gx); J[2] = gx;
        J[3] = sr_fmul(xn, gy); J[4] = sr_fmul(yn, gy); J[5] = gy;
        J[6] = sr_fmul(-xn, r); J[7] = sr_fmul(-yn, r);
        return 8;
    }
    }
}

// ---- device-only helpers ----------------------------------------------------------
#if defined(SR_DEVICE)
__device__ __forceinline__ double sr_warp_sum(double v) {
    for (int off = 16; off > 0; off >>= 1) v += __shfl_down_sync(0xffffffffu, v, off);
    return v;
}
#endif
