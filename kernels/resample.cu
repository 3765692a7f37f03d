// resample.cu: fused Lanczos4 resample-and-accumulate (the merge's hot loop).
//
// NumPy twin: NumpyBackend.resample_accumulate (superres_gpu/backends/numpy_backend.py),
// which is cv2.remap(INTER_LANCZOS4, BORDER_REPLICATE) on fixed-point maps.
//
// Launch: 2-D grid of 16x16 blocks over the output image, one thread per output
// pixel (gather, no atomics: deterministic).  Bounds check first.
//
// Arguments
//   frame   const T*      (fh, fw, C) row-major, interleaved channels; T = uint8 or uint16, or float
//                         (a frame whose chroma band tca_band below has moved)
//   fw, fh  int           frame size
//   state   const double* alignment state (SR_STATE_LEN): Tinv, gain, offset, accept
//   tab     const float*  (32, 8) Lanczos4 weights, resample.lanczos4_table()
//   num     float*        (ho, wo, C) running sum of values, updated in place
//   den     float*        (ho, wo) running count of frames covering each pixel
//   wo, ho  int           output size
//   a, b    double        output -> reference: p = a * X + b  (a = 1/s, b = 0.5/s - 0.5)
//   max_value float       255 or 65535 (scales the photometric offset)
//   weights const float*  (wh, ww) per-pixel merge weights on the reference's pyramid
//                         level L (robust merge, mask), read when has_weights != 0
//   winv    double        1 / 2^L
//   chmaps  const double* (C, 12) per-channel maps, read when has_chmaps != 0: a row-major 3x3
//                         Cc, then a cubic radial term (cx, cy, k3): channel c is sampled at
//                         Cc (u, v) moved by sr_radial_f (lateral chromatic aberration);
//                         coverage stays that of (u, v)
//   field   const float*  (gh, gw, 2) local displacement field in reference pixels, read when
//                         has_field != 0 (superres_gpu/local.py; sr_field_output_f in common.cuh)
//   finv    double        1 / the field's cell size (reference pixels between nodes)
//   A covered pixel adds w * value to num and w to den, w sampled bilinearly from
//   `weights` at q = ((aX + b) + 0.5) * winv - 0.5 (clamped to the map; float32), or w = 1.
//
// Coordinates: output pixel (X, Y) -> reference p = (aX + b, aY + b) -> frame
// (u, v) = Tinv p computed as M = Tinv S with M02 = Ti00*b + Ti01*b + Ti02 in double once
// per thread block (sr_float_maps) and rounded to float; per pixel everything is float32
// without contraction (common.cuh's float section; bit-identical to the twin: consumer GPUs run
// double at 1/32 to 1/64 of float).  The pixel counts when -0.5 <= u <= fw - 0.5 and
// -0.5 <= v <= fh - 0.5.  Position rounded to 1/32: X32 = rint(32 u) (u clamped to
// [-64, fw + 64] first); taps at (X32 >> 5) - 3 .. + 4, clamped to the frame (replicated
// border); 2-D weight tab[fy][r] * tab[fx][c].  Per-channel maps: Mc = Cc M elementwise in
// a fixed order (sr_compose_map, the twin's compose_map, in double) rounded to float, the
// channel's position Mc (X, Y) then moved by its radial term (float32, sr_radial_f); each
// channel is interpolated once at its own position.
// Local field: the output pixel's reference position p moves to p + D(p) (D bilinear on
// the field's nodes, sampled at p) before M projects it, i.e. (u, v) = Tinv (p + D(p)), for
// coverage, every channel and its map alike; the robust weight stays sampled at p (it
// belongs to the reference's pixel).  A zero field gives exactly the positions without one.
#include "common.cuh"

SR_HD void sr_lanczos_taps_q(int xq, int yq, const float* tab, int* ix, int* iy, const float** wx, const float** wy) {
    *ix = (xq >> SR_TAB_BITS) - 3;
    *iy = (yq >> SR_TAB_BITS) - 3;
    *wx = tab + (xq & (SR_TAB_SIZE - 1)) * 8;
    *wy = tab + (yq & (SR_TAB_SIZE - 1)) * 8;
}

// The 8x8 Lanczos4 taps at frame position (u, v) (float32): u clamped to [-64, fw + 64], rounded to
// 1/32 px (sr_quantise; 32 u is exact: a power of two); the first tap (ix, iy) and the two axes'
// weight rows.
SR_HD int sr_quantise(float u, int n) {
    float uc = u < -64.0f ? -64.0f : (u > (float)(n + 64) ? (float)(n + 64) : u);
    return sr_rintf(uc * (float)SR_TAB_SIZE);
}

SR_HD void sr_lanczos_taps(float u, float v, int fw, int fh, const float* tab, int* ix, int* iy, const float** wx,
                           const float** wy) {
    sr_lanczos_taps_q(sr_quantise(u, fw), sr_quantise(v, fh), tab, ix, iy, wx, wy);
}

// One channel at the position (xq, yq) in 1/32 px (already clamped): the taps and weights of sr_resample_pixel.
template <typename T, int C>
SR_HD float sr_sample_q(const T* frame, int fw, int fh, int xq, int yq, const float* tab, int ch) {
    int ix, iy;
    const float *wx, *wy;
    sr_lanczos_taps_q(xq, yq, tab, &ix, &iy, &wx, &wy);
    float sum = 0.0f;
    for (int r = 0; r < 8; ++r) {
        const T* row = frame + (long long)sr_clampi(iy + r, 0, fh - 1) * fw * C;
        float rs = 0.0f;
        for (int c = 0; c < 8; ++c) rs += (float)row[sr_clampi(ix + c, 0, fw - 1) * C + ch] * (wy[r] * wx[c]);
        sum += rs;
    }
    return sum;
}

// One channel at frame position (u, v): the same taps and weights as sr_resample_pixel.
template <typename T, int C>
SR_HD float sr_sample_channel(const T* frame, int fw, int fh, float u, float v, const float* tab, int ch) {
    return sr_sample_q<T, C>(frame, fw, fh, sr_quantise(u, fw), sr_quantise(v, fh), tab, ch);
}

SR_HD bool sr_covers(float u, float v, int fw, int fh) {
    return u >= -0.5f && u <= (float)fw - 0.5f && v >= -0.5f && v <= (float)fh - 0.5f;
}

// Resample one output pixel at (Xd, Yd) under the float map M; returns false when the frame does not cover it.
template <typename T, int C>
SR_HD bool sr_resample_pixel(const T* frame, int fw, int fh, const float* M, const float* tab, float X, float Y,
                             float* out) {
    float u, v, wq;
    sr_project_f(M, X, Y, &u, &v, &wq);
    if (!sr_covers(u, v, fw, fh)) return false;
    int ix, iy;
    const float *wx, *wy;
    sr_lanczos_taps(u, v, fw, fh, tab, &ix, &iy, &wx, &wy);
    int cols[8];
    for (int c = 0; c < 8; ++c) cols[c] = sr_clampi(ix + c, 0, fw - 1) * C;
    float sum[C];
    for (int ch = 0; ch < C; ++ch) sum[ch] = 0.0f;
    for (int r = 0; r < 8; ++r) {
        const T* row = frame + (long long)sr_clampi(iy + r, 0, fh - 1) * fw * C;
        float wr = wy[r];
        for (int ch = 0; ch < C; ++ch) {
            float rs = 0.0f;
            for (int c = 0; c < 8; ++c) rs += (float)row[cols[c] + ch] * (wr * wx[c]);
            sum[ch] += rs;
        }
    }
    for (int ch = 0; ch < C; ++ch) out[ch] = sum[ch];
    return true;
}

// The whole work of one thread: output pixel (X, Y).  maps: sr_float_maps of the frame's state (M,
// then the channels' maps with has_chmaps), formed once per thread block by the wrapper.
template <typename T, int C>
SR_HD void sr_resample_accumulate_at(const T* frame, int fw, int fh, const double* state, const float* maps,
                                     const float* tab, float* num, float* den, int wo, int X, int Y, float a, float b,
                                     float max_value, const float* weights, int ww, int wh, int has_weights,
                                     float winv, int has_chmaps, const float* field, int gw, int gh, float finv,
                                     int has_field) {
    if (state[SR_S_ACCEPT] == 0.0) return;
    float wt = has_weights ? sr_weight_at_f(weights, ww, wh, winv, X, Y, a, b) : 1.0f;
    if (!(wt > 0.0f)) return;
    float Xd = (float)X, Yd = (float)Y;
    if (has_field) sr_field_output_f(field, gw, gh, finv, a, b, X, Y, &Xd, &Yd);
    float val[C];
    if (has_chmaps) {
        float u, v, wq;
        sr_project_f(maps, Xd, Yd, &u, &v, &wq);
        if (!sr_covers(u, v, fw, fh)) return;
        for (int ch = 0; ch < C; ++ch) {
            float uc, vc;
            const float* mc = maps + 9 + SR_CHMAP_LEN * ch;
            sr_project_f(mc, Xd, Yd, &uc, &vc, &wq);
            sr_radial_f(mc + 9, &uc, &vc);
            val[ch] = sr_sample_channel<T, C>(frame, fw, fh, uc, vc, tab, ch);
        }
    } else if (!sr_resample_pixel<T, C>(frame, fw, fh, maps, tab, Xd, Yd, val)) {
        return;
    }
    float gain = (float)state[SR_S_GAIN];
    float off = (float)(state[SR_S_OFFSET] * (double)max_value);
    long long idx = (long long)Y * wo + X;
    for (int ch = 0; ch < C; ++ch) num[idx * C + ch] += wt * (val[ch] * gain + off);
    den[idx] += wt;
}

#if defined(SR_DEVICE)
template <typename T, int C>
__global__ void resample_accumulate(const T* __restrict__ frame, int fw, int fh, const double* __restrict__ state,
                                    const float* __restrict__ tab, float* __restrict__ num, float* __restrict__ den,
                                    int wo, int ho, double a, double b, float max_value,
                                    const float* __restrict__ weights, int ww, int wh, int has_weights, double winv,
                                    const double* __restrict__ chmaps, int has_chmaps,
                                    const float* __restrict__ field, int gw, int gh, double finv, int has_field) {
    // the frame's maps in double once per block, then float per pixel
    __shared__ float maps[SR_MAPS_LEN(C)];
    if (threadIdx.x == 0 && threadIdx.y == 0) sr_float_maps(state + SR_S_TINV, a, b, chmaps, has_chmaps, C, maps);
    __syncthreads();
    int X = blockIdx.x * blockDim.x + threadIdx.x;
    int Y = blockIdx.y * blockDim.y + threadIdx.y;
    if (X >= wo || Y >= ho) return;
    sr_resample_accumulate_at<T, C>(frame, fw, fh, state, maps, tab, num, den, wo, X, Y, (float)a, (float)b,
                                    max_value, weights, ww, wh, has_weights, (float)winv, has_chmaps, field, gw, gh,
                                    (float)finv, has_field);
}
#endif

// ---- lateral chromatic aberration on chroma-subsampled frames (superres_gpu/tca.py) --------
// NumPy twin: NumpyBackend.tca_band.  A JPEG (or HEIC) with 4:2:0 chroma holds each colour
// channel's own position only in its low band (the chroma planes); the fine detail of all three
// comes from the luma.  Only the low band is moved: per pixel (x, y) and channel c whose map
// (maps: (C, 12) double rows, an affine 3x3 Cc from green positions to the channel's, row-major,
// then the radial term cx, cy, k3) is not the identity,
//   out[y, x, c] = frame[y, x, c] + (lo_c(Pc (x, y)) - lo_c[y, x]),  Pc = Cc moved radially
// with lo (C, fh, fw) float32 the channels' smooth low bands (pixels.smooth_chroma_band, made by
// the backend: the chroma as the file stores it, without the luma's detail), read with the
// Lanczos4 taps of the merge (replicated border); other channels are copied.  The displacement
// in float32 without contraction, coefficients rounded to float from double:
// d = ((C00 - 1) x + C01 y) + C02 (rows: (C10 x + (C11 - 1) y) + C12); with k3 != 0, e = (x - cx) + dx
// (rows: (y - cy) + dy), f = k3 (ex ex + ey ey), d += f e (sr_radial_f's term at Cc (x, y)); the
// position in 1/32 px is 32 x + rint(32 d), exact at any frame size, clamped as sr_lanczos_taps clamps.
// T = uint8 or uint16, or float (a raw frame in the camera's own channels: tca.band_corrected).
template <typename T, int C>
SR_HD void sr_tca_band_at(const T* frame, int fw, int fh, const float* lo, const double* maps, const float* tab,
                          float* out, int x, int y) {
    long long idx = (long long)y * fw + x;
    long long plane = (long long)fw * fh;
    for (int ch = 0; ch < C; ++ch) {
        const double* m = maps + ch * SR_CHMAP_LEN;
        float v = (float)frame[idx * C + ch];
        bool identity = m[0] == 1.0 && m[1] == 0.0 && m[2] == 0.0 && m[3] == 0.0 && m[4] == 1.0 && m[5] == 0.0 &&
                        m[11] == 0.0;
        if (!identity) {
            const float* L = lo + ch * plane;
            float xf = (float)x, yf = (float)y;
            float dx = sr_fadd(sr_fadd(sr_fmul((float)(m[0] - 1.0), xf), sr_fmul((float)m[1], yf)), (float)m[2]);
            float dy = sr_fadd(sr_fadd(sr_fmul((float)m[3], xf), sr_fmul((float)(m[4] - 1.0), yf)), (float)m[5]);
            float k3 = (float)m[11];
            if (k3 != 0.0f) {
                float ex = sr_fadd(sr_fadd(xf, -(float)m[9]), dx), ey = sr_fadd(sr_fadd(yf, -(float)m[10]), dy);
                float f = sr_fmul(k3, sr_fadd(sr_fmul(ex, ex), sr_fmul(ey, ey)));
                dx = sr_fadd(dx, sr_fmul(f, ex));
                dy = sr_fadd(dy, sr_fmul(f, ey));
            }
            int xq = sr_clampi(x * SR_TAB_SIZE + sr_rintf(dx * (float)SR_TAB_SIZE), -64 * SR_TAB_SIZE,
                               (fw + 64) * SR_TAB_SIZE);
            int yq = sr_clampi(y * SR_TAB_SIZE + sr_rintf(dy * (float)SR_TAB_SIZE), -64 * SR_TAB_SIZE,
                               (fh + 64) * SR_TAB_SIZE);
            float moved = sr_sample_q<float, 1>(L, fw, fh, xq, yq, tab, 0);
            v = sr_fadd(v, sr_fadd(moved, -L[idx]));
        }
        out[idx * C + ch] = v;
    }
}

#if defined(SR_DEVICE)
template <typename T, int C>
__global__ void tca_band(const T* __restrict__ frame, int fw, int fh, const float* __restrict__ lo,
                         const double* __restrict__ maps, const float* __restrict__ tab, float* __restrict__ out) {
    int x = blockIdx.x * blockDim.x + threadIdx.x;
    int y = blockIdx.y * blockDim.y + threadIdx.y;
    if (x >= fw || y >= fh) return;
    sr_tca_band_at<T, C>(frame, fw, fh, lo, maps, tab, out, x, y);
}
#endif
