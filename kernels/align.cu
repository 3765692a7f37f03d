// align.cu: Gauss-Newton refinement on the device (reductions, solve, decision).
//
// NumPy twins (superres_gpu/backends/numpy_backend.py): NumpyBackend.align_reduce,
// .align_update (align_update_math) and .align_finalize (align_finalize_math).
//
// align_reduce_partial(img, w, h, pts, n, state, model, level, cx, cy, sc, margin, iteration, partial)
//   Launch: 1-D grid of NB blocks x 256 threads (grid-stride over the n points).
//   img      const float*  (h, w) the frame's luma at pyramid level `level`, as cubic
//                          B-spline coefficients (sampled with sr_sample_bspline_f)
//   pts      const float*  (5, n) reference points: level-0 x, y; luma R;
//                          gradient per normalised unit gx, gy
//   state    const double* SR_STATE_LEN: Tinv, gain, offset, robust scale, weight choice
//                          (SR_S_REDESCEND: Tukey's biweight, else Huber's)
//   partial  double*       (NB, 64): each block's sums, SR_SUM_* layout
//   iteration int          the iteration within the level: from the second on, a
//                          state marked converged (SR_S_CONVERGED) skips the work and
//                          writes zero sums
//   Each point is mapped to the frame by Tinv (level-0 px) then to level
//   coordinates u = (u0 + 0.5)/2^level - 0.5; it counts when it lies at least
//   `margin` px inside the level image.  Per point float32 only (the displacement
//   Tinv p - p, the B-spline sample, residual, weight, Jacobian row), the sums in
//   double; the state's float32 constants once per block (sr_align_consts, shared
//   memory).  Block reduction: warp shuffles, then shared memory; no atomics
//   (deterministic).
// align_sum_partials(partial, nb, sums)
//   Launch: ONE block of 64 threads; sums[k] = sum_b partial[b, k] in block order.
// align_update(sums, state, model, cx, cy, sc, damping, converged_px, iteration)
//   Launch: ONE thread.  Cholesky solve of (H + damping diag H) dp = g (float64),
//   T <- N^-1 W(dp) N T, Tinv, photometric gain/offset (weighted moments), robust scale (sr_m_scale from
//   the reduction's rho sums; the RMS when there was none yet), correlation,
//   overlap, step size; see align_update_math.  Skipped from the second iteration
//   of a level on once converged; afterwards SR_S_CONVERGED = (iteration >= 1 and
//   step < converged_px).
// align_finalize(state, width, height, min_corr, min_overlap)
//   Launch: ONE thread.  Sets the status and the accept flag the merge reads.
#include "common.cuh"

// Trial scale k of the reduction (base.scale_trials): sigma 2^((k - SR_SCALE_STEPS / 2) / 2), the
// powers written out.
#if SR_SCALE_STEPS != 5
#error "sr_scale_trial's factors are written out for SR_SCALE_STEPS == 5"
#endif
SR_HD double sr_scale_trial(double sigma, int k) {
    return sigma * (k == 0 ? 0.5 : k == 1 ? 0.7071067811865476 : k == 2 ? 1.0 : k == 3 ? 1.4142135623730951 : 2.0);
}

// The M-estimate of scale from the rho sums at the trial scales around sigma (cnt points):
// where mean rho crosses SR_SCALE_DELTA, interpolated in log scale between the bracketing
// trials; beyond the trials, the outermost one (the next reduction brackets afresh).
SR_HD double sr_m_scale(const double* rho, double cnt, double sigma) {
    double prev = rho[0] / cnt;
    if (prev <= SR_SCALE_DELTA) return sr_scale_trial(sigma, 0);
    for (int k = 1; k < SR_SCALE_STEPS; ++k) {
        double m = rho[k] / cnt;
        if (m <= SR_SCALE_DELTA) {
            double t = (prev - SR_SCALE_DELTA) / (prev - m);
            return sigma * pow(2.0, ((double)(k - 1 - SR_SCALE_STEPS / 2) + t) * 0.5);
        }
        prev = m;
    }
    return sr_scale_trial(sigma, SR_SCALE_STEPS - 1);
}

// What every point of a reduction shares, formed in double once per thread block from the state and
// rounded to float (numpy_backend.align_consts_f32): the displacement's coefficients about o = (cx,
// cy), the level's scale and coverage limits, gain and offset, the weight's threshold (Huber's k
// sigma) or inverse width (1 / (Tukey's c sigma)), the inverse trial scales of the rho sums.
struct SrAlignK {
    SrWarpF warp;
    float f, inv_f, lo, hi_u, hi_v;
    float gain, offset, inv_sc;
    int weighting;  // 0: every point weighs 1 (no scale yet); 1: Huber's; 2: Tukey's biweight
    float thr, tinv;
    float rinv[SR_SCALE_STEPS];
};

SR_HD void sr_align_consts(const double* state, int w, int h, int level, double cx, double cy, double sc,
                           double margin, SrAlignK* K) {
    sr_warp_f_init(state + SR_S_TINV, cx, cy, &K->warp);
    double f = (double)(1 << level);
    K->f = (float)f;
    K->inv_f = (float)(1.0 / f);
    K->lo = (float)margin;
    K->hi_u = (float)(w - 1.0 - margin);
    K->hi_v = (float)(h - 1.0 - margin);
    K->gain = (float)state[SR_S_GAIN];
    K->offset = (float)state[SR_S_OFFSET];
    K->inv_sc = (float)(1.0 / sc);
    double sigma = state[SR_S_SIGMA];
    K->weighting = sigma > 0.0 ? (state[SR_S_REDESCEND] != 0.0 ? 2 : 1) : 0;
    K->thr = (float)(SR_HUBER_K * sigma);
    K->tinv = sigma > 0.0 ? (float)(1.0 / (SR_TUKEY_C * sigma)) : 0.0f;
    for (int k = 0; k < SR_SCALE_STEPS; ++k)
        K->rinv[k] = sigma > 0.0 ? (float)(1.0 / (SR_SCALE_C * sr_scale_trial(sigma, k))) : 0.0f;
}

// A point's robust weight for residual e, float32 (numpy_backend.align_weight): Huber's at
// SR_HUBER_K scales, or Tukey's biweight at SR_TUKEY_C scales; 1 without a scale.
SR_HD float sr_align_weight_f(float e, const SrAlignK* K) {
    if (K->weighting == 0) return 1.0f;
    float ae = fabsf(e);
    if (K->weighting == 2) {
        float r = sr_fmul(ae, K->tinv);
        if (r >= 1.0f) return 0.0f;
        float t = sr_fadd(1.0f, -sr_fmul(r, r));
        return sr_fmul(t, t);
    }
    return ae > K->thr ? sr_fdiv(K->thr, ae) : 1.0f;
}

// The biweight rho of the scale estimate, bounded by 1: 1 - (1 - u^2)^3 for |u| < 1, float32
// (numpy_backend.scale_rho).
SR_HD float sr_scale_rho_f(float u) {
    float u2 = sr_fmul(u, u);
    if (u2 >= 1.0f) return 1.0f;
    float t = sr_fadd(1.0f, -u2);
    return sr_fadd(1.0f, -sr_fmul(sr_fmul(t, t), t));
}

// Adds one point's contributions to acc[0..SR_SUM_USED): every per-point value in float32, every sum
// in double.  A sum of products adds the exact double product of two floats (so a fused
// multiply-add changes nothing): the twin forms the same products in float64 matrix products.
SR_HD void sr_reduce_point(const float* img, int w, int h, const float* pts, long long n, long long i,
                           const SrAlignK* K, int model, double* acc) {
    acc[SR_SUM_N] += 1.0;
    float x0 = pts[i], y0 = pts[n + i];
    float qx = sr_fadd(x0, -K->warp.ox), qy = sr_fadd(y0, -K->warp.oy);
    float dx, dy;
    sr_warp_disp_f(&K->warp, qx, qy, &dx, &dy);
    int iu, iv;
    float tu, tv;
    float u = sr_level_pos_f(x0, dx, K->f, K->inv_f, &iu, &tu);
    float v = sr_level_pos_f(y0, dy, K->f, K->inv_f, &iv, &tv);
    if (!(u >= K->lo && u <= K->hi_u && v >= K->lo && v <= K->hi_v)) return;
    float s = sr_sample_bspline_f(img, w, h, iu, iv, tu, tv);
    float R = pts[2 * n + i];
    float e = sr_fadd(sr_fadd(sr_fmul(K->gain, s), K->offset), -R);
    float wt = sr_align_weight_f(e, K);
    if (K->weighting != 0)
        for (int k = 0; k < SR_SCALE_STEPS; ++k) acc[SR_SUM_RHO + k] += (double)sr_scale_rho_f(sr_fmul(e, K->rinv[k]));
    float J[8];
    int np = sr_jacobian_f(model, sr_fmul(qx, K->inv_sc), sr_fmul(qy, K->inv_sc), pts[3 * n + i], pts[4 * n + i], J);
    float we = sr_fmul(wt, e), ws = sr_fmul(wt, s), wr = sr_fmul(wt, R);
    for (int a = 0; a < np; ++a) {
        double wa = (double)sr_fmul(J[a], wt);
        for (int b = a; b < np; ++b) acc[SR_SUM_H + sr_upper_index(a, b)] += wa * (double)J[b];
        acc[SR_SUM_G + a] += (double)J[a] * (double)we;
    }
    double de = (double)e, ds = (double)s, dR = (double)R;
    acc[SR_SUM_COUNT] += 1.0;
    acc[SR_SUM_W] += (double)wt;
    acc[SR_SUM_WEE] += (double)we * de;
    acc[SR_SUM_EE] += de * de;
    acc[SR_SUM_S] += ds;
    acc[SR_SUM_SS] += ds * ds;
    acc[SR_SUM_SR] += ds * dR;
    acc[SR_SUM_R] += dR;
    acc[SR_SUM_RR] += dR * dR;
    acc[SR_SUM_WS] += (double)ws;
    acc[SR_SUM_WSS] += (double)ws * ds;
    acc[SR_SUM_WR] += (double)wr;
    acc[SR_SUM_WRR] += (double)wr * dR;
}

// Solve A x = b (n x n, symmetric positive definite) by Cholesky; false if not SPD.
SR_HD bool sr_cholesky_solve(double* A, const double* b, int n, double* x) {
    double L[64];
    for (int k = 0; k < 64; ++k) L[k] = 0.0;
    for (int j = 0; j < n; ++j) {
        double d = A[j * 8 + j];
        for (int k = 0; k < j; ++k) d -= L[j * 8 + k] * L[j * 8 + k];
        if (!(d > 0.0)) return false;
        L[j * 8 + j] = sqrt(d);
        for (int i = j + 1; i < n; ++i) {
            double s = A[i * 8 + j];
            for (int k = 0; k < j; ++k) s -= L[i * 8 + k] * L[j * 8 + k];
            L[i * 8 + j] = s / L[j * 8 + j];
        }
    }
    double y[8];
    for (int i = 0; i < n; ++i) {
        double s = b[i];
        for (int k = 0; k < i; ++k) s -= L[i * 8 + k] * y[k];
        y[i] = s / L[i * 8 + i];
    }
    for (int i = n - 1; i >= 0; --i) {
        double s = y[i];
        for (int k = i + 1; k < n; ++k) s -= L[k * 8 + i] * x[k];
        x[i] = s / L[i * 8 + i];
    }
    return true;
}

SR_HD void sr_update_state(const double* sums, double* state, int model, double cx, double cy, double sc,
                           double damping) {
    int n = sr_model_nparams(model);
    double cnt = sums[SR_SUM_COUNT], total = sums[SR_SUM_N];
    state[SR_S_NVALID] = cnt;
    state[SR_S_OVERLAP] = total > 0.0 ? cnt / total : 0.0;
    state[SR_S_ITERS] += 1.0;
    state[SR_S_STATUS] = SR_STATUS_OK;
    double need = 8.0 * n > 16.0 ? 8.0 * n : 16.0;
    if (cnt < need) {
        state[SR_S_STATUS] = SR_STATUS_SINGULAR;
        state[SR_S_STEP] = 0.0;
        return;
    }
    double ms = sums[SR_SUM_S] / cnt, mr = sums[SR_SUM_R] / cnt;
    double vs = sums[SR_SUM_SS] / cnt - ms * ms, vr = sums[SR_SUM_RR] / cnt - mr * mr;
    vs = vs > 0.0 ? vs : 0.0;
    vr = vr > 0.0 ? vr : 0.0;
    double cov = sums[SR_SUM_SR] / cnt - ms * mr;
    state[SR_S_CORR] = (vs > 0.0 && vr > 0.0) ? cov / sqrt(vs * vr) : 0.0;
    state[SR_S_RMS] = sqrt(sums[SR_SUM_EE] / cnt);
    double A[64], g[8], dp[8];
    for (int i = 0; i < n; ++i) {
        for (int j = i; j < n; ++j) A[i * 8 + j] = A[j * 8 + i] = sums[SR_SUM_H + sr_upper_index(i, j)];
        g[i] = sums[SR_SUM_G + i];
    }
    for (int i = 0; i < n; ++i) A[i * 8 + i] = A[i * 8 + i] + damping * A[i * 8 + i];
    if (!sr_cholesky_solve(A, g, n, dp)) {
        state[SR_S_STATUS] = SR_STATUS_SINGULAR;
        state[SR_S_STEP] = 0.0;
        return;
    }
    for (int i = 0; i < n; ++i) {
        if (!sr_isfinite(dp[i])) {
            state[SR_S_STATUS] = SR_STATUS_NONFINITE;
            return;
        }
    }
    for (int i = n; i < 8; ++i) dp[i] = 0.0;
    double Wn[9], N[9], Ninv[9], t1[9], t2[9], Tn[9];
    sr_model_matrix(model, dp, Wn);
    N[0] = 1.0 / sc; N[1] = 0.0; N[2] = -cx / sc;
    N[3] = 0.0; N[4] = 1.0 / sc; N[5] = -cy / sc;
    N[6] = 0.0; N[7] = 0.0; N[8] = 1.0;
    Ninv[0] = sc; Ninv[1] = 0.0; Ninv[2] = cx;
    Ninv[3] = 0.0; Ninv[4] = sc; Ninv[5] = cy;
    Ninv[6] = 0.0; Ninv[7] = 0.0; Ninv[8] = 1.0;
    sr_matmul3(Ninv, Wn, t1);
    sr_matmul3(t1, N, t2);
    sr_matmul3(t2, state + SR_S_T, Tn);
    double z = Tn[8];
    for (int k = 0; k < 9; ++k) Tn[k] = Tn[k] / z;
    for (int k = 0; k < 9; ++k) state[SR_S_T + k] = Tn[k];
    sr_inv3(Tn, state + SR_S_TINV);
    double step = 0.0;
    const double xs[4] = {-1.0, 1.0, 1.0, -1.0}, ys[4] = {-1.0, -1.0, 1.0, 1.0};
    for (int k = 0; k < 4; ++k) {
        double ww = Wn[6] * xs[k] + Wn[7] * ys[k] + Wn[8];
        double dx = (Wn[0] * xs[k] + Wn[1] * ys[k] + Wn[2]) / ww - xs[k];
        double dy = (Wn[3] * xs[k] + Wn[4] * ys[k] + Wn[5]) / ww - ys[k];
        double d = hypot(dx, dy) * sc;
        step = d > step ? d : step;
    }
    state[SR_S_STEP] = step;
    // the gain/offset from the robustly weighted moments: what the weights reject does not bend them
    double sw = sums[SR_SUM_W];
    if (sw > 0.0) {
        ms = sums[SR_SUM_WS] / sw;
        mr = sums[SR_SUM_WR] / sw;
        vs = sums[SR_SUM_WSS] / sw - ms * ms;
        vr = sums[SR_SUM_WRR] / sw - mr * mr;
    } else {
        vs = vr = 0.0;
    }
    if (vs > 0.0 && vr > 0.0) {
        double a = sqrt(vr / vs);
        a = a < 0.5 ? 0.5 : (a > 2.0 ? 2.0 : a);
        state[SR_S_GAIN] = a;
        state[SR_S_OFFSET] = mr - a * ms;
    }
    double sigma = state[SR_S_SIGMA];
    state[SR_S_SIGMA] = sigma > 0.0 ? sr_m_scale(sums + SR_SUM_RHO, cnt, sigma) : state[SR_S_RMS];
}

// One refinement step with the level's convergence rule (NumpyBackend.align_update).
SR_HD void sr_align_update(const double* sums, double* state, int model, double cx, double cy, double sc,
                           double damping, double converged_px, int iteration) {
    if (iteration > 0 && state[SR_S_CONVERGED] != 0.0) return;
    sr_update_state(sums, state, model, cx, cy, sc, damping);
    state[SR_S_CONVERGED] = (iteration >= 1 && state[SR_S_STEP] < converged_px) ? 1.0 : 0.0;
}

// geometry.is_plausible
SR_HD bool sr_plausible(const double* T0, int width, int height) {
    for (int k = 0; k < 9; ++k)
        if (!sr_isfinite(T0[k])) return false;
    if (fabs(T0[8]) < 1e-12) return false;
    double T[9];
    for (int k = 0; k < 9; ++k) T[k] = T0[k] / T0[8];
    const double xs[4] = {0.0, (double)(width - 1), (double)(width - 1), 0.0};
    const double ys[4] = {0.0, 0.0, (double)(height - 1), (double)(height - 1)};
    for (int k = 0; k < 4; ++k)
        if (T[6] * xs[k] + T[7] * ys[k] + T[8] <= 0.0) return false;
    double det = T[0] * T[4] - T[1] * T[3];
    return det > 0.5 && det < 2.0;
}

SR_HD void sr_finalize_state(double* state, int width, int height, double min_corr, double min_overlap) {
    int status = (int)state[SR_S_STATUS];
    const double* T = state + SR_S_T;
    if (status == SR_STATUS_OK) {
        bool finite = true;
        for (int k = 0; k < 9; ++k) finite = finite && sr_isfinite(T[k]);
        if (!finite)
            status = SR_STATUS_NONFINITE;
        else if (!sr_plausible(T, width, height))
            status = SR_STATUS_IMPLAUSIBLE;
        else if (state[SR_S_OVERLAP] < min_overlap)
            status = SR_STATUS_LOW_OVERLAP;
        else if (!(state[SR_S_CORR] >= min_corr))
            status = SR_STATUS_LOW_CORR;
    }
    state[SR_S_STATUS] = (double)status;
    state[SR_S_ACCEPT] = status == SR_STATUS_OK ? 1.0 : 0.0;
}

#if defined(SR_DEVICE)
#define SR_REDUCE_THREADS 256
__global__ void align_reduce_partial(const float* __restrict__ img, int w, int h, const float* __restrict__ pts,
                                     long long n, const double* __restrict__ state, int model, int level, double cx,
                                     double cy, double sc, double margin, int iteration,
                                     double* __restrict__ partial) {
    __shared__ double sm[(SR_REDUCE_THREADS / 32) * SR_SUM_USED];
    __shared__ SrAlignK K;
    double acc[SR_SUM_USED];
    for (int k = 0; k < SR_SUM_USED; ++k) acc[k] = 0.0;
    bool skip = iteration > 0 && state[SR_S_CONVERGED] != 0.0;  // the same for every thread
    if (threadIdx.x == 0 && !skip) sr_align_consts(state, w, h, level, cx, cy, sc, margin, &K);
    __syncthreads();
    if (!skip)
        for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n;
             i += (long long)gridDim.x * blockDim.x)
            sr_reduce_point(img, w, h, pts, n, i, &K, model, acc);
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    for (int k = 0; k < SR_SUM_USED; ++k) {
        double v = sr_warp_sum(acc[k]);
        if (lane == 0) sm[warp * SR_SUM_USED + k] = v;
    }
    __syncthreads();
    if (threadIdx.x < SR_SUMS_LEN) {
        double s = 0.0;
        if (threadIdx.x < SR_SUM_USED)
            for (int wi = 0; wi < (int)(blockDim.x >> 5); ++wi) s += sm[wi * SR_SUM_USED + threadIdx.x];
        partial[(long long)blockIdx.x * SR_SUMS_LEN + threadIdx.x] = s;
    }
}

__global__ void align_sum_partials(const double* __restrict__ partial, int nb, double* __restrict__ sums) {
    int k = threadIdx.x;
    if (k >= SR_SUMS_LEN) return;
    double s = 0.0;
    for (int b = 0; b < nb; ++b) s += partial[(long long)b * SR_SUMS_LEN + k];
    sums[k] = s;
}

__global__ void align_update(const double* __restrict__ sums, double* __restrict__ state, int model, double cx,
                             double cy, double sc, double damping, double converged_px, int iteration) {
    if (blockIdx.x != 0 || threadIdx.x != 0) return;
    sr_align_update(sums, state, model, cx, cy, sc, damping, converged_px, iteration);
}

__global__ void align_finalize(double* __restrict__ state, int width, int height, double min_corr,
                               double min_overlap) {
    if (blockIdx.x != 0 || threadIdx.x != 0) return;
    sr_finalize_state(state, width, height, min_corr, min_overlap);
}
#endif
