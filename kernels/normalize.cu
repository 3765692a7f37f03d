// normalize.cu: running mean -> 16-bit output.
//
// NumPy twin: NumpyBackend.normalize_u16 (superres_gpu/backends/numpy_backend.py).
//
// normalize_u16<C>(num, den, n, value_scale, out)
//   Launch: 1-D grid over the n = ho * wo output pixels, 256 threads per block.
//   num  const float*     (ho, wo, C) sums of values
//   den  const float*     (ho, wo) frame counts
//   out  unsigned short*  (ho, wo, C): rint(num / den * value_scale) clipped to
//                         0..65535 (round half to even, as np.rint); 0 where den == 0
#include "common.cuh"

SR_HD unsigned short sr_normalize_value(float num, float den, float value_scale) {
    if (!(den > 0.0f)) return 0;
    float v = (num / den) * value_scale;
#if defined(SR_DEVICE)
    float r = rintf(v);
#else
    float r = nearbyintf(v);
#endif
    if (!(r > 0.0f)) return 0;  // also maps NaN to 0
    if (r > 65535.0f) return 65535;
    return (unsigned short)r;
}

#if defined(SR_DEVICE)
template <int C>
__global__ void normalize_u16(const float* __restrict__ num, const float* __restrict__ den, long long n,
                              float value_scale, unsigned short* __restrict__ out) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    float d = den[i];
    for (int ch = 0; ch < C; ++ch) out[i * C + ch] = sr_normalize_value(num[i * C + ch], d, value_scale);
}
#endif
