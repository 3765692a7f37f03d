// kernelreg.cu: kernel-regression accumulate (the kernel merge's hot loop).
//
// NumPy twin: NumpyBackend.kernel_accumulate (superres_gpu/backends/numpy_backend.py).
//
// Launch: 2-D grid of 16x16 blocks over the output image, one thread per output
// pixel (gather, no atomics: deterministic).  Bounds check first.
//
// Arguments
//   frame   const T*      (fh, fw, C) row-major, interleaved channels; T = uint8 or uint16
//   fw, fh  int           frame size
//   state   const double* alignment state (SR_STATE_LEN): Tinv, gain, offset, accept
//   num     float*        (ho, wo, C) running sum of weighted values, updated in place
//   den     float*        (ho, wo) running sum of weights, updated in place
//   wo, ho  int           output size
//   a, b    double        output -> reference: p = a * X + b  (a = 1/s, b = 0.5/s - 0.5)
//   max_value float       255 or 65535 (scales the photometric offset)
//   weights const float*  (wh, ww) robust merge weights on the reference's pyramid level L,
//                         read when has_weights != 0 (bilinear, as resample.cu)
//   winv    double        1 / 2^L
//   K       int           taps per axis: floor(u) + 1 - K .. floor(u) + K (numpy_backend.kernel_taps)
//   cut2    float         (3 sigma)^2, output px^2
//   c2      float         -1 / (2 sigma^2)
//   field   const float*  (gh, gw, 2) local displacement field (reference px), read when has_field != 0
//   finv    double        1 / the field's cell size (common.cuh's sr_field_at)
//
// Per pixel: (u, v) = M (X, Y) with M = Tinv S (common.cuh's sr_output_map and
// sr_project) and the inverse Jacobian of M in double; with a local field the output
// position first moves by it (sr_field_output: the frame is read at Tinv (p + D(p))), the
// Jacobian is M's there (the field's own gradient is neglected);
// offsets, weights and sums in float32, in the twin's order: each visited sample
// inside the frame with d2 = |J^-1 (kx - fu, ky - fv)|^2 < cut2 weighs
// k = expf(d2 c2); num += w (gain sum k value + offset sum k), den += w sum k.
#include "common.cuh"

template <typename T, int C>
SR_HD void sr_kernel_accumulate_at(const T* frame, int fw, int fh, const double* state, float* num, float* den,
                                   int wo, int X, int Y, double a, double b, float max_value,
                                   const float* weights, int ww, int wh, int has_weights, double winv, int K,
                                   float cut2, float c2, const float* field, int gw, int gh, double finv,
                                   int has_field) {
    if (state[SR_S_ACCEPT] == 0.0) return;
    double M[9];
    sr_output_map(state + SR_S_TINV, a, b, M);
    double Xd = (double)X, Yd = (double)Y;
    if (has_field) sr_field_output(field, gw, gh, finv, a, b, X, Y, &Xd, &Yd);
    double wq = sr_add(sr_mul(M[6], Xd), sr_add(sr_mul(M[7], Yd), M[8]));
    double u = sr_div(sr_add(sr_mul(M[0], Xd), sr_add(sr_mul(M[1], Yd), M[2])), wq);
    double v = sr_div(sr_add(sr_mul(M[3], Xd), sr_add(sr_mul(M[4], Yd), M[5])), wq);
    double j00 = sr_div(M[0] - sr_mul(u, M[6]), wq), j01 = sr_div(M[1] - sr_mul(u, M[7]), wq);
    double j10 = sr_div(M[3] - sr_mul(v, M[6]), wq), j11 = sr_div(M[4] - sr_mul(v, M[7]), wq);
    double det = sr_mul(j00, j11) - sr_mul(j01, j10);
    float i00 = (float)sr_div(j11, det), i01 = (float)sr_div(-j01, det);
    float i10 = (float)sr_div(-j10, det), i11 = (float)sr_div(j00, det);
    double fl_u = floor(u), fl_v = floor(v);
    float fu = (float)(u - fl_u), fv = (float)(v - fl_v);
    long long iu = (long long)fl_u, iv = (long long)fl_v;
    float acc[C];
    for (int ch = 0; ch < C; ++ch) acc[ch] = 0.0f;
    float ksum = 0.0f;
    for (int ky = 1 - K; ky <= K; ++ky) {
        long long jj = iv + ky;
        float dv = (float)ky - fv;
        float b0 = i01 * dv, b1 = i11 * dv;
        for (int kx = 1 - K; kx <= K; ++kx) {
            long long ii = iu + kx;
            float du = (float)kx - fu;
            float dX = i00 * du;
            dX = dX + b0;
            float dY = i10 * du;
            dY = dY + b1;
            float d2 = dX * dX;
            float dy2 = dY * dY;
            d2 = d2 + dy2;
            if (!(d2 < cut2) || ii < 0 || ii >= fw || jj < 0 || jj >= fh) continue;
            float k = expf(d2 * c2);
            const T* px = frame + (jj * fw + ii) * C;
            for (int ch = 0; ch < C; ++ch) {
                float p = (float)px[ch] * k;
                acc[ch] = acc[ch] + p;
            }
            ksum = ksum + k;
        }
    }
    float gain = (float)state[SR_S_GAIN];
    float off = (float)(state[SR_S_OFFSET] * (double)max_value);
    for (int ch = 0; ch < C; ++ch) {
        float g = acc[ch] * gain;
        float o = off * ksum;
        acc[ch] = g + o;
    }
    if (has_weights) {
        float wt = sr_weight_at(weights, ww, wh, winv, X, Y, a, b);
        for (int ch = 0; ch < C; ++ch) acc[ch] *= wt;
        ksum *= wt;
    }
    long long idx = (long long)Y * wo + X;
    for (int ch = 0; ch < C; ++ch) num[idx * C + ch] += acc[ch];
    den[idx] += ksum;
}

#if defined(SR_DEVICE)
template <typename T, int C>
__global__ void kernel_accumulate(const T* __restrict__ frame, int fw, int fh, const double* __restrict__ state,
                                  float* __restrict__ num, float* __restrict__ den, int wo, int ho, double a, double b,
                                  float max_value, const float* __restrict__ weights, int ww, int wh, int has_weights,
                                  double winv, int K, float cut2, float c2, const float* __restrict__ field,
                                  int gw, int gh, double finv, int has_field) {
    int X = blockIdx.x * blockDim.x + threadIdx.x;
    int Y = blockIdx.y * blockDim.y + threadIdx.y;
    if (X >= wo || Y >= ho) return;
    sr_kernel_accumulate_at<T, C>(frame, fw, fh, state, num, den, wo, X, Y, a, b, max_value, weights, ww, wh,
                                  has_weights, winv, K, cut2, c2, field, gw, gh, finv, has_field);
}
#endif
