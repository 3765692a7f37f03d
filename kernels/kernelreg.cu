// kernelreg.cu: kernel-regression accumulate (the kernel merge's hot loop).
//
// NumPy twin: NumpyBackend.kernel_accumulate (superres_gpu/backends/numpy_backend.py).
//
// Launch: 2-D grid of 16x16 blocks over the output image, one thread per output
// pixel (gather, no atomics: deterministic).  Bounds check first.
//
// Arguments
//   frame   const T*      (fh, fw, C) row-major, interleaved channels; T = uint8 or uint16, or float
//                         (a frame whose chroma band resample.cu's tca_band has moved)
//   fw, fh  int           frame size
//   state   const double* alignment state (SR_STATE_LEN): Tinv, gain, offset, accept
//   num     float*        (ho, wo, C) running sum of weighted values, updated in place
//   den     float*        (ho, wo) running sum of weights, updated in place ((ho, wo, C) with channel maps)
//   wo, ho  int           output size
//   a, b    double        output -> reference: p = a * X + b  (a = 1/s, b = 0.5/s - 0.5)
//   max_value float       255 or 65535 (scales the photometric offset)
//   weights const float*  (wh, ww) robust merge weights on the reference's pyramid level L,
//                         read when has_weights != 0 (bilinear, as resample.cu)
//   winv    double        1 / 2^L
//   n       int           window taps per axis (numpy_backend.kernel_window): with s = 0.5 for odd n and 0
//                         for even n, samples floor(u + s) + kx for kx in [-((n - 1) / 2), n / 2]
//   c2      float         -1 / (2 sigma^2): the isotropic kernel's exponent per output px^2
//   shape   const float*  (3, sh, sw) the anisotropic kernel: exponent coefficients (qa, qb, qc) per
//                         reference pixel (level 0; kernelmerge.kernel_shape), read when has_shape != 0,
//                         bilinear at the output pixel as the weights; else (qa, qb, qc) = (c2, 0, c2)
//   sw, sh  int           the shape map's width and height (the reference frame's size)
//   field   const float*  (gh, gw, 2) local displacement field (reference px), read when has_field != 0
//   finv    double        1 / the field's cell size (common.cuh's sr_field_output_f)
//   chmaps  const double* (C, 12) per-channel maps, read when has_chmaps != 0: a row-major 3x3 Cc
//                         and a cubic radial term: channel c is read at Cc (u, v) moved radially
//                         (lateral chromatic aberration, as resample.cu)
//
// Per pixel, all in float32 (common.cuh's float section; consumer GPUs run double at 1/32 to
// 1/64 of float): (u, v) = M (X, Y) with M = Tinv S formed in double once per thread block and
// rounded to float (sr_float_maps), the Jacobian of M there and its inverse; with a local field
// the output position first moves by it (sr_field_output_f: the frame is read at Tinv (p + D(p))),
// the Jacobian is M's there (the field's own gradient is neglected).  A sample's offset on the
// output grid, d = J^-1 (du, dv) with (du, dv) = (kx + s - fu, ky + s - fv), fu = u + s - floor(u + s),
// enters the exponent e = qa dX^2 + qb dX dY + qc dY^2 = pa du^2 + pb du dv + pc dv^2, the
// coefficients (pa, pb, pc) = J^-T Q J^-1 formed once per pixel (sr_kernel_form); per sample,
// in the twin's order,
// e = ((pa du) du + (pc dv) dv) + (pb du) dv, and a sample inside the frame weighs
// k = max(min(g, R (g - SR_KERNEL_KMIN)), 0), g = expf(e), R = SR_KERNEL_RAMP: the Gaussian to three
// standard deviations out, ramped steeply to 0 just inside, continuous there (no rounding moves a
// sample in or out);
// num += w (gain sum k value + offset sum k), den += w sum k.
// With channel maps each channel c is gathered on its own: its position Mc (X, Y), Mc = Cc M
// (sr_compose_map; after the field's move), moved by its radial term (sr_radial_f; the Jacobian
// stays Mc's: the radial term changes it by its own size, k3 |d|^2, a few 1e-3 at most), its own
// Jacobian of Mc and so its own offsets
// and kernel sum Ks_c, and den has a plane per channel, (ho, wo, C):
// num_c += w (gain A_c + offset Ks_c), den_c += w Ks_c, so each channel is its own kernel
// regression over the frames (identity maps give in every plane exactly the sums without maps).
#include "common.cuh"

#define SR_KERNEL_KMIN 0.011108996538242306f  // expf(-4.5f): the Gaussian three standard deviations out
#define SR_KERNEL_RAMP 16.0f  // the weight's slope to 0 at the cut-off, in units of the Gaussian's

// (pa, pb, pc): the exponent's coefficients in frame offsets (du, dv) for those
// (qa, qb, qc) in output offsets d = Jinv (du, dv), Jinv = [[i00, i01], [i10, i11]]; float32, in
// this order (the twin's kernel_form).
SR_HD void sr_kernel_form(float qa, float qb, float qc, float i00, float i01, float i10, float i11, float* pa,
                          float* pb, float* pc) {
    *pa = sr_fadd(sr_fadd(sr_fmul(sr_fmul(qa, i00), i00), sr_fmul(sr_fmul(qb, i00), i10)),
                  sr_fmul(sr_fmul(qc, i10), i10));
    *pb = sr_fadd(sr_fadd(sr_fmul(sr_fmul(2.0f * qa, i00), i01),
                          sr_fmul(qb, sr_fadd(sr_fmul(i00, i11), sr_fmul(i01, i10)))),
                  sr_fmul(sr_fmul(2.0f * qc, i10), i11));
    *pc = sr_fadd(sr_fadd(sr_fmul(sr_fmul(qa, i01), i01), sr_fmul(sr_fmul(qb, i01), i11)),
                  sr_fmul(sr_fmul(qc, i11), i11));
}

// One position's kernel sums: the frame read at M (Xd, Yd) (moved by the radial term r when r is not
// null; the Jacobian stays M's) with the kernel (qa, qb, qc);
// acc[ch] = sum k value for channels c0 .. c1 - 1, returns Ks = sum k.  Position, Jacobian and
// its inverse in float32 (common.cuh's float section), in the twin's order.
template <typename T, int C>
SR_HD float sr_kernel_sums(const T* frame, int fw, int fh, const float* M, float Xd, float Yd, float qa, float qb,
                           float qc, int n, int c0, int c1, float* acc, const float* r) {
    float u, v, wq;
    sr_project_f(M, Xd, Yd, &u, &v, &wq);
    float j00 = sr_fdiv(sr_fadd(M[0], -sr_fmul(u, M[6])), wq), j01 = sr_fdiv(sr_fadd(M[1], -sr_fmul(u, M[7])), wq);
    float j10 = sr_fdiv(sr_fadd(M[3], -sr_fmul(v, M[6])), wq), j11 = sr_fdiv(sr_fadd(M[4], -sr_fmul(v, M[7])), wq);
    float det = sr_fadd(sr_fmul(j00, j11), -sr_fmul(j01, j10));
    float pa, pb, pc;
    sr_kernel_form(qa, qb, qc, sr_fdiv(j11, det), sr_fdiv(-j01, det), sr_fdiv(-j10, det), sr_fdiv(j00, det), &pa, &pb,
                   &pc);
    if (r) sr_radial_f(r, &u, &v);
    float s = (n & 1) ? 0.5f : 0.0f;  // odd windows centre on the nearest sample
    float tu = sr_fadd(u, s), tv = sr_fadd(v, s);
    float fl_u = floorf(tu), fl_v = floorf(tv);
    float fu = sr_fadd(tu, -fl_u), fv = sr_fadd(tv, -fl_v);
    long long iu = (long long)fl_u, iv = (long long)fl_v;
    int lo = -((n - 1) / 2);
    for (int ch = c0; ch < c1; ++ch) acc[ch] = 0.0f;
    float ksum = 0.0f;
    for (int ky = lo; ky < lo + n; ++ky) {
        long long jj = iv + ky;
        float dv = ((float)ky + s) - fv;
        float hc = pc * dv;
        hc = hc * dv;
        for (int kx = lo; kx < lo + n; ++kx) {
            long long ii = iu + kx;
            if (ii < 0 || ii >= fw || jj < 0 || jj >= fh) continue;
            float du = ((float)kx + s) - fu;
            float ha = pa * du;
            ha = ha * du;
            float hb = pb * du;
            float e = ha + hc;
            e = e + hb * dv;
            float g = expf(e);
            float ramp = SR_KERNEL_RAMP * g - SR_KERNEL_RAMP * SR_KERNEL_KMIN;
            float k = ramp < g ? ramp : g;
            if (!(k > 0.0f)) continue;
            const T* px = frame + (jj * fw + ii) * C;
            for (int ch = c0; ch < c1; ++ch) {
                float p = (float)px[ch] * k;
                acc[ch] = acc[ch] + p;
            }
            ksum = ksum + k;
        }
    }
    return ksum;
}

// maps: sr_float_maps of the frame's state (M, then the channels' Mc with has_chmaps), formed once
// per thread block by the wrapper.
template <typename T, int C>
SR_HD void sr_kernel_accumulate_at(const T* frame, int fw, int fh, const double* state, const float* maps,
                                   float* num, float* den, int wo, int X, int Y, float a, float b, float max_value,
                                   const float* weights, int ww, int wh, int has_weights, float winv, int n,
                                   float c2, const float* shape, int sw, int sh, int has_shape,
                                   const float* field, int gw, int gh, float finv, int has_field, int has_chmaps) {
    if (state[SR_S_ACCEPT] == 0.0) return;
    float qa = c2, qb = 0.0f, qc = c2;
    if (has_shape) {
        long long plane = (long long)sw * sh;
        qa = sr_weight_at_f(shape, sw, sh, 1.0f, X, Y, a, b);
        qb = sr_weight_at_f(shape + plane, sw, sh, 1.0f, X, Y, a, b);
        qc = sr_weight_at_f(shape + 2 * plane, sw, sh, 1.0f, X, Y, a, b);
    }
    float Xd = (float)X, Yd = (float)Y;
    if (has_field) sr_field_output_f(field, gw, gh, finv, a, b, X, Y, &Xd, &Yd);
    float acc[C];
    float ks[C];  // the kernel sum per channel (all equal without channel maps)
    if (!has_chmaps) {
        float k = sr_kernel_sums<T, C>(frame, fw, fh, maps, Xd, Yd, qa, qb, qc, n, 0, C, acc, nullptr);
        for (int ch = 0; ch < C; ++ch) ks[ch] = k;
    } else {
        for (int ch = 0; ch < C; ++ch) {
            const float* mc = maps + 9 + SR_CHMAP_LEN * ch;
            ks[ch] = sr_kernel_sums<T, C>(frame, fw, fh, mc, Xd, Yd, qa, qb, qc, n, ch, ch + 1, acc, mc + 9);
        }
    }
    float gain = (float)state[SR_S_GAIN];
    float off = (float)(state[SR_S_OFFSET] * (double)max_value);
    for (int ch = 0; ch < C; ++ch) {
        float g = acc[ch] * gain;
        float o = off * ks[ch];
        acc[ch] = g + o;
    }
    if (has_weights) {
        float wt = sr_weight_at_f(weights, ww, wh, winv, X, Y, a, b);
        for (int ch = 0; ch < C; ++ch) {
            acc[ch] *= wt;
            ks[ch] *= wt;
        }
    }
    long long idx = (long long)Y * wo + X;
    for (int ch = 0; ch < C; ++ch) num[idx * C + ch] += acc[ch];
    if (has_chmaps) {
        for (int ch = 0; ch < C; ++ch) den[idx * C + ch] += ks[ch];
    } else {
        den[idx] += ks[0];
    }
}

#if defined(SR_DEVICE)
template <typename T, int C>
__global__ void kernel_accumulate(const T* __restrict__ frame, int fw, int fh, const double* __restrict__ state,
                                  float* __restrict__ num, float* __restrict__ den, int wo, int ho, double a, double b,
                                  float max_value, const float* __restrict__ weights, int ww, int wh, int has_weights,
                                  double winv, int n, float c2, const float* __restrict__ shape, int sw, int sh,
                                  int has_shape, const float* __restrict__ field, int gw, int gh, double finv,
                                  int has_field, const double* __restrict__ chmaps, int has_chmaps) {
    // the frame's maps in double once per block, then float per pixel
    __shared__ float maps[SR_MAPS_LEN(C)];
    if (threadIdx.x == 0 && threadIdx.y == 0) sr_float_maps(state + SR_S_TINV, a, b, chmaps, has_chmaps, C, maps);
    __syncthreads();
    int X = blockIdx.x * blockDim.x + threadIdx.x;
    int Y = blockIdx.y * blockDim.y + threadIdx.y;
    if (X >= wo || Y >= ho) return;
    sr_kernel_accumulate_at<T, C>(frame, fw, fh, state, maps, num, den, wo, X, Y, (float)a, (float)b, max_value,
                                  weights, ww, wh, has_weights, (float)winv, n, c2, shape, sw, sh, has_shape, field,
                                  gw, gh, (float)finv, has_field, has_chmaps);
}
#endif
