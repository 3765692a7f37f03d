"""Every numerical tolerance the tests use, with the reason it is what it is.

GPU kernels are compared with their NumPy twins; CPU twins with independent
direct implementations.  A row names (atol, rtol) for ``np.testing.assert_allclose``
or a bound for a scalar metric.
"""

TOL = {
    # ---- twin vs independent implementation (CPU) ----------------------------------
    "lanczos_remap_vs_direct": (2e-6, 0.0, "64 float32 products summed in another order; |weights| sum < 1.3, inputs in [0,1]"),
    "downsample_vs_direct": (1e-6, 0.0, "16 float32 taps summed in another order, inputs in [0,1]"),
    "bspline_vs_direct": (1e-12, 0.0, "float64 both sides; only the summation order differs"),
    "reduce_vs_direct": (1e-9, 1e-9, "float64 sums over <= 1e4 points in another order"),
    "gaussian_vs_direct": (2e-6, 0.0, "float32 taps (up to 23, |sum| <= 1.2), clamped borders, other summation order"),
    # ---- GPU kernel vs NumPy twin ---------------------------------------------------------
    "gpu_luma": (1e-6, 0.0, "float32 multiply-adds; nvcc may fuse them (FMA): one rounding per tap differs"),
    "gpu_downsample": (1e-6, 0.0, "16 float32 taps, FMA contraction on the device"),
    "gpu_sepfilter": (1e-6, 0.0, "float32 taps (sum 1), FMA contraction and another summation order"),
    "gpu_gradient": (1e-7, 0.0, "one float32 subtraction and one multiply by 0.5: exact up to FMA"),
    "gpu_phasecorr_surface": (2e-5, 0.0, "cuFFT vs pocketfft in float32 (complex64): ~log2(N) eps relative to the peak"),
    "gpu_peak_shift": (1e-6, 0.0, "same 3x3 neighbourhood, same float64 parabola; surfaces differ by ~1e-6"),
    "gpu_reduce": (1e-6, 1e-6, "float64 B-spline sample and sums; FMA contraction and block-partial summation order"),
    "gpu_update_T": (1e-9, 1e-9, "float64 Cholesky of the same sums, same operation order"),
    "gpu_resample": (2e-4, 1e-6, "64 float32 products per pixel (FMA) on values up to 65535: ~4 ulp of the sum"),
    "gpu_normalize": (1, 0, "float32 division then rint: a value within 1 ulp of .5 may round the other way (1 code)"),
    "merge_identical_codes": (1, 0, "float32 sum of N equal values over N is within 1 ulp of the value; rint may then flip by 1 code"),
    # ---- pipeline-level figures ---------------------------------------------------------------
    "align_rms_synthetic_px": (0.05, None, "issue requirement: RMS grid error of the estimated transforms"),
    "integer_shift_px": (0.002, None, "exact integer motion; only interpolation of the noise-free crop limits it"),
    "fourier_shift_px": (0.01, None, "band-limited Fourier-shifted image: the cubic sampler's residual bias"),
    "backend_parity_psnr_db": (60.0, None, "issue requirement: the two backends' images agree to > 60 dB"),
    "backend_parity_transform_px": (0.002, None, "issue requirement: same transforms on both backends"),
    "merge_gain_db": (2.0, None, "a merged synthetic burst must beat one Lanczos-upscaled frame by a clear margin"),
}


def tol(name):
    atol, rtol, _ = TOL[name]
    return atol, rtol
