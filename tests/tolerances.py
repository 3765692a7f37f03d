"""Every numerical tolerance the tests use, with the reason it is what it is.

GPU kernels are compared with their NumPy twins; CPU twins with independent
direct implementations; stages with the known truth of synthetic bursts.  A
row names (atol, rtol) for ``np.testing.assert_allclose`` or, with rtol None,
a bound for a scalar figure.
"""

TOL = {
    # ---- twin vs independent implementation or known fact (CPU) --------------------------
    "lanczos_remap_vs_direct": (2e-6, 0.0, "64 float32 products summed in another order; |weights| sum < 1.3, inputs in [0,1]"),
    "downsample_vs_direct": (1e-6, 0.0, "16 float32 taps summed in another order, inputs in [0,1]"),
    "bspline_f32_vs_direct": (1e-6, 0.0, "the float32 cubic B-spline (weights and 16 products, one rounding each, "
                              "fraction rounded to float32) vs the float64 definition, values in [0, 1]: measured "
                              "2.1e-7 over 10000 random positions (the weights' partition of unity to 1.4e-7)"),
    "reduce_f32_vs_direct": (2e-5, 2e-5, "float32 per-point values (position, sample, residual, weight, Jacobian "
                             "row: ~1e-7 relative each) summed in float64 vs everything in float64, <= 300 points; "
                             "measured max |diff| / (1 + |sum|) 4.4e-6 over 80 random cases"),
    "displacement_f32_px": (2e-5, None, "level-0 position from the float32 displacement Tinv p - p (float32 "
                            "coefficients about the centre, taps kept apart from fractions) vs float64 Tinv p on a "
                            "4000x3000 frame moved by tens of px, 0.6 deg, 1 %: a few ulp of the ~50 px "
                            "displacement; measured 8.9e-6 px (float32 absolute positions: 1.2e-4 px)"),
    "robust_residual_f32_vs_direct": (1e-6, None, "the float32 level residual (float32 displacement, field read "
                                      "and B-spline) vs the float64 definition, values in [0, 1]: measured 2.4e-7"),
    "field_f32_vs_float64": (5e-6, 0.0, "the field's float32 bilinear read vs float64: the node fraction "
                             "(p + 0.5) finv - 0.5 with finv rounded to float32 (~2e-7 of a cell at ~10 cells) times "
                             "node differences of a few px in the test's random field; measured 1.8e-6 px"),
    "gaussian_vs_direct": (2e-6, 0.0, "float32 taps (up to 23, |sum| <= 1.2), clamped borders, other summation order"),
    "bspline_prefilter_roundtrip": (2e-5, 0.0, "the inverse filter is truncated at radius 9 (|pole|^10 ~ 2e-6), float32 sums"),
    "bspline_prefilter_truncation": (1e-5, 0.0, "taps truncated at |k| <= 9 and renormalised: ~5e-6 left at the centre"),
    "bspline_linear_float32": (1e-6, 0.0, "float32 coefficients of a ramp up to 5.5 sampled in float64"),
    "jacobian_vs_finite_differences": (1e-6, 1e-5, "forward differences with step 1e-7: O(step) truncation and cancellation"),
    "gain_offset_float32": (0.0, 1e-6, "value * gain + offset in float32"),
    "luma_float32": (1e-6, 0.0, "three float32 multiply-adds of values in [0, 255] times 1/255"),
    "downsample_ramp": (1e-5, 0.0, "float32 filter of a ramp up to 39: a few ulp of the values"),
    "phase_correlation_integer_px": (0.05, None, "parabolic peak fit around an exact integer shift of white noise"),
    "taps_sum_float32": (1e-6, 0.0, "float32 taps normalised to sum 1"),
    "lanczos_table_symmetry": (1e-7, 0.0, "float32 weights computed independently for k/32 and 1 - k/32"),
    "gaussian_truncated_variance": (0.02, None, "taps cut at 3 sigma lose ~1-2 % of the variance"),
    "half_decode_vs_box": (0.005, None, "libjpeg's scaled IDCT vs a 2x2 mean of the full decode's grey: 8-bit "
                           "rounding and the IDCT's own filter (measured 0.0012)"),
    "float_vs_u16_output": (0.5 + 0.01, None, "the 16-bit result is rint of the same float32 mean scaled to 65535; "
                            "float32 steps near 65535 are 0.004 and the two scalings round twice (measured 0.504)"),
    "dng_flat_roundtrip": (2e-4, None, "a flat linear patch through 14-bit raw quantisation ((16383 - 256) levels), "
                           "LibRaw's white balance and 16-bit output (measured 8e-5)"),
    "srgb_curve_float32": (1e-4, None, "the sRGB curve in float32 against the standard's 5-digit values"),
    "merge_flat_levels": (0.01, 0.0, "rint to 16 bits of flat 8-bit levels: 1/257 of a level"),
    "merge_identical_codes": (1, 0, "float32 sum of N equal values over N is within 1 ulp of the value; rint may then flip by 1 code"),
    "sharpen_flat_float32": (1e-5, 0.0, "a separable float32 filter with taps summing to 1 (to 1e-7) on a flat image"),
    "restoration_flat_response": (0.02, None, "below half the frames' Nyquist frequency the Hann-windowed FIR follows the "
                                  "Wiener design G/(G^2 + lam), whose product with G is 1 - O(lam); measured <= 0.016"),
    "edge_mtf_vs_analytic": (0.015, None, "ISO 12233 edge MTF of a Gaussian-blurred, pixel-integrated slanted edge vs "
                             "exp(-2 pi^2 s^2 f^2) sinc(f cos a) sinc(f sin a) up to Nyquist: the LSF's Hamming window "
                             "and 1/16-px supersampling of the aperture; measured <= 0.009"),
    "edge_mtf50_rel": (0.02, None, "MTF50 of the same edges vs the analytic curve's; measured < 1 %"),
    "star_radius_rel": (0.05, None, "star resolved radius vs the local-grating model MTF(36 / (2 pi r)): the model "
                        "ignores the spokes' curvature (blur mixes radii); measured 2-3 % larger"),
    "kernel_regression_affine": (2e-6, 1e-5, "the twin's Jacobian offsets are exact for affine motion; float32 "
                                 "offsets, weights and sums vs float64"),
    "kernel_regression_homography": (1e-4, 1e-3, "perspective 3e-5/px (a hand-held burst's is ~1e-8/px): "
                                     "the twin's first-order offsets differ from the exact positions by O(p d^2)"),
    "residual_noise_rel": (0.1, None, "Immerkaer's mask read by the median over 48000 pixels of white noise, some "
                           "of them on edges and bars"),
    # ---- GPU kernel vs NumPy twin ---------------------------------------------------------
    "gpu_luma": (1e-6, 0.0, "float32 multiply-adds; nvcc may fuse them (FMA): one rounding per tap differs"),
    "gpu_downsample": (1e-6, 0.0, "16 float32 taps, FMA contraction on the device"),
    "gpu_sepfilter": (1e-6, 0.0, "float32 taps (sum 1), FMA contraction and another summation order"),
    "gpu_gradient": (1e-7, 0.0, "one float32 subtraction and one multiply by 0.5: exact up to FMA"),
    "gpu_phasecorr_surface": (2e-5, 0.0, "cuFFT vs pocketfft in float32 (complex64): ~log2(N) eps relative to the peak"),
    "gpu_peak_shift": (1e-6, 0.0, "same 3x3 neighbourhood, same float64 parabola; surfaces differ by ~1e-6"),
    "gpu_reduce": (1e-6, 1e-6, "float32 per point in the twin's order with no contraction (sr_fmul, sr_fadd) and "
                   "exact float64 products, so only the block-partial summation order should differ (~1e-15); "
                   "kept from the float64 kernel: not yet measured on a device"),
    "gpu_update_T": (1e-9, 1e-9, "float64 Cholesky of the same sums, same operation order"),
    "gpu_resample": (2e-4, 1e-6, "64 float32 products per pixel (FMA) on values up to 65535: ~4 ulp of the sum"),
    "gpu_kernel_accumulate": (2e-6, 2e-6, "float32 offsets and sums of up to 9 taps (16 for the round kernel at "
                              "scale 1) that nvcc may contract to FMA, expf (device ulp error 2); the twin's kernel "
                              "coefficients and bilinear maps in float32 where the kernel forms them in float64; "
                              "the kernel is continuous at its cut-off, so no rounding flips a tap in or out"),
    "gpu_kernel_shape": (1e-4, 1e-4, "float32 structure tensor (gradients, Gaussian taps with FMA), then sqrt, "
                         "arctan2, cos and sin on the device vs NumPy: a few ulp each, on coefficients of -0.3 to -6"),
    "gpu_weight_bilinear": (1e-6, 0.0, "bilinear weight in float64 from float32 maps, rounded to float32 once"),
    "gpu_local_field": (2e-3, None, "the refinement on both backends: float32 hat sums (matrix products, other "
                        "summation orders; the residuals are float32 without contraction); a node's vector moves by far less than its "
                        "uncertainty (~0.03 px)"),
    "gpu_tile_phase_shifts": (1e-4, None, "cuFFT vs NumPy's FFT in complex64 on 64x64 tiles: the surface "
                              "differs by ~1e-6, the parabola's vertex by far less than 1e-4 px"),
    "gpu_robust_residual": (1e-7, 1e-6, "float32 on both sides in the same order with no contraction: bit-identical "
                            "on the host harness; one float32 ulp of the sample (6e-8) allowed; not yet measured on a "
                            "device"),
    "gpu_robust_weight": (1e-6, 0.0, "float32 ratio in the twin's order with no contraction (bit-identical on the "
                          "host harness), weights in [0, 1]; not yet measured on a device"),
    "gpu_normalize": (1, 0, "float32 division then rint: a value within 1 ulp of .5 may round the other way (1 code)"),
    # ---- kernel math compiled for the CPU (no FMA) vs NumPy twin ----------------------------
    "host_cross_power": (2e-7, 0.0, "float32 complex product and magnitude: sqrtf vs NumPy's hypot"),
    "kernel_channel_maps_vs_per_channel": (1e-5, 1e-5, "a channel gathered alone with its map folded into Tinv: the "
                                           "same positions to 1e-13 px (another float64 order), the float32 "
                                           "sums of each channel's plane of num and den compared directly"),
    "host_kernel_accumulate": (1e-6, 1e-6, "the same float32 offsets in the same order (the twin's last "
                               "product-sum possibly fused by OpenCV); expf of the C library vs OpenCV's exp, and "
                               "the twin's float32 kernel coefficients and bilinear maps vs the kernel's float64, a "
                               "few ulp per tap"),
    "host_reduce_vs_twin": (1e-12, 1e-13, "the same float32 per-point values bit for bit (the counts equal) and "
                            "exact float64 products of two floats; only the float64 summation order differs "
                            "(sequential vs BLAS): measured 4.2e-15 relative"),
    "host_update_vs_twin": (1e-10, 1e-9, "the same float64 Cholesky and composition in C and NumPy"),
    # ---- alignment against known motion ---------------------------------------------------------
    "m_scale_normal_rel": (0.05, None, "the biweight M-scale of 20000 normal residuals: consistent (measured 0.3 %)"),
    "m_scale_outliers_rel": (0.5, None, "... with 20 % far outliers: the estimator's known bias at that contamination "
                             "(delta 0.5) is +36 %, where the RMS reads 14x"),
    "align_movers_ratio": (1.2, None, "target: frames with a passer-by aligned within 20 % (RMS map error) of "
                           "the same frames without it; measured 1.14 on the bench burst"),
    "align_rms_synthetic_px": (0.05, None, "RMS grid error of the estimated transforms on hand-held synthetic bursts"),
    "align_masked_half_px": (0.1, None, "half the frame masked: half the points, on a small noisy 160x120 burst"),
    "integer_shift_px": (0.002, None, "exact integer motion; only interpolation of the noise-free crop limits it"),
    "fourier_shift_px": (0.01, None, "band-limited Fourier-shifted image: the cubic sampler's residual bias"),
    "self_alignment_px": (1e-5, None, "a frame aligned to itself: only the truncated B-spline inverse filter is left"),
    "align_model_translation_px": (0.4, None, "the test-small burst rotates (sigma 0.3 deg): the best translation of "
                                   "each frame is 0.35 px RMS from the truth; measured 0.353"),
    "align_model_euclidean_px": (0.05, None, "no zoom term (zoom sigma 0.1 %) on a small noisy burst; measured 0.023"),
    "align_model_similarity_px": (0.02, None, "the true model (rotation, zoom, shift); measured 0.009"),
    "align_model_affine_px": (0.035, None, "two unneeded parameters on 160x120 frames; measured 0.017"),
    "align_model_homography_px": (0.05, None, "four unneeded parameters on 160x120 frames; measured 0.026"),
    "real_min_correlation": (0.9, None, "aligned real phone frames of a static shelf correlate strongly"),
    "real_max_residual_rms": (0.06, None, "RMS luma residual after alignment of real 8-bit JPEG crops (of 1.0)"),
    "real_auto_affine_heldout": (2.0, None, "held-out residual of affine vs the best model on the phone burst (--motion auto); measured 3.8"),
    "refine_error_ratio": (0.9, None, "--refine: map error against the template / against the noisy reference, 8 noisy frames; measured 0.81"),
    "tca_scale_rel": (0.1, None, "radial scale of red/blue vs green, relative to the truth (0.2 %), lossless frames; measured 2-7 %"),
    "tca_cubic_rel": (0.2, None, "the cubic term of red/blue (+0.3 % / -0.2 % at the corners, with +-0.2 % scale) vs the "
                      "truth, one lossless 320x240 frame; measured 0-15 % over 4 seeds (the scale and the cubic trade "
                      "~1.5e-4 between them: the decimated frames' aliasing)"),
    "tca_corner_px": (0.07, None, "red/blue positions at the corners vs the truth, same frames; measured 0.014-0.061 px "
                      "over 4 seeds, 0.21-0.36 px with the similarity alone"),
    "tca_cubic_exact_rel": (0.02, None, "the cubic fit on an edge image moved by the model itself: the sharp edge image "
                            "interpolated twice (cubic), errors that follow the sampling phase; measured 0.4-1.3 %"),
    "tca_kernel_psnr_loss_db": (0.3, None, "--merge kernel --tca on, +-0.2 % red/blue, 6 PNG frames, PSNR against the "
                                "sharp truth vs the same burst without aberration (the target); measured 0.03 (12 "
                                "frames: 0.01), each channel its own kernel regression (0.35 when den was shared)"),
    "tca_jpeg_psnr_loss_db": (0.45, None, "--tca auto on 8 JPEG 92 4:2:0 frames with +-0.2 % red/blue scaling vs the same burst without, robust merge; measured 0.37 (0.26 with 12 frames, the benchmark's); green, never corrected, alone loses 0.32 dB: the luma mixes the displaced channels before the chroma is subsampled, which no correction of the decoded channels undoes"),
    "tca_jpeg_large_corner_px": (0.05, None, "red/blue positions at the corners vs the truth, one 1280x960 JPEG 85 4:2:0 frame "
                                 "(+-0.2 %: 1.6 px at the corners), the luma's share taken out; measured 0.007-0.022 px at "
                                 "quality 80-92 (0.13-0.15 px with it left in); HEIC 90 (pillow-heif) 0.016-0.020 px "
                                 "(0.08 px)"),
    "tca_luma_chain_levels": (1.0, None, "a decoded channel (JPEG or HEIC, quality 100, odd frame sides) less the luma's "
                              "detail, and the smooth band the correction moves, vs the true channel through the chroma "
                              "chain, RMS in 8-bit levels (the codec's rounding); measured 0.63 (JPEG 4:2:0), 0.75 (JPEG "
                              "4:2:2) and 0.62 (HEIC), where the decoded channel is 7.5-10.6 levels off"),
    "tca_picture_rms_ratio": ((0.65, 0.92), None, "superres tca --picture: the corrected corner crops' RMS distance "
                              "to the same frame without aberration over the as-shot crops', mean of the four corners "
                              "(lossless, JPEG 92 4:2:0), 320x240, +-0.2 %: measured 0.58 and 0.87 (on JPEG the luma's "
                              "detail stays mixed; the rest is the noise the move resamples)"),
    "tca_raw_scale_rel": (0.2, None, "radial scale of red/blue vs green, relative to the truth (+-0.2 %), 3 synthetic DNG "
                          "frames of 320x240 (RGGB, LibRaw's demosaicing), compared in the low band as 2x2 chroma: "
                          "measured 1.02 / 0.97 (seed 1, the test's), 0.78 / 1.03 (seed 2); 0.46-0.59 as "
                          "full-resolution chroma"),
    "tca_raw_psnr_db": ((0.35, 0.4), None, "--tca auto on 8 synthetic DNG frames of 320x240 with +-0.2 % red/blue, "
                        "robust merge, PSNR in linear light against the blurred truth: at least this much above --tca "
                        "off, and at most this much below the burst without aberration; measured +0.58 and -0.24 dB "
                        "(whole channels moved by the true model: -0.22 and -1.04)"),
    "tca_raw_matrix_gain_db": (4.2, None, "--tca auto on 8 synthetic DNG frames of 320x240 whose colour matrix mixes "
                               "the camera's channels (red 1.8 R - 0.7 G - 0.1 B), +-0.2 % red/blue in the camera's "
                               "channels, robust merge: PSNR against the same burst without aberration, gain over "
                               "--tca off; measured 4.62 dB (3.75 with the estimate and the correction in the output's "
                               "channels)"),
    "tca_psnr_loss_db": (0.3, None, "--tca auto on a burst with +-0.2 % red/blue scaling vs the same burst without (the target; estimate from the reference alone, 8 PNG frames); measured 0.15"),
    "real_consistency_db": (30.0, None, "the merge area-downsampled to the reference grid against the reference"),
    "real_grid_shift_px": (0.1, None, "phase correlation of the downsampled merge vs the reference: the grid convention"),
    "mdsp_residual_rms": (0.03, None, "median RMS luma residual of the small aliased MDSP videos after alignment"),
    "real_disagreement_margin": (1.4, None, "the content check's limit over the highest disagreement a real frame "
                                 "may read: measured 2.74 (MDSP disk, frames from a coarser video) and 2.13 (the "
                                 "phone burst) against the limit 4"),
    "mdsp_consistency_db": (20.0, None, "the merge removes those videos' own aliasing and noise, so it does not reproduce them"),
    # ---- merge quality on synthetic bursts -----------------------------------------------------------
    "backend_parity_psnr_db": (60.0, None, "the two backends' images agree to > 60 dB"),
    "backend_parity_transform_px": (0.002, None, "the same transforms on both backends"),
    "merge_gain_db": (2.0, None, "a merged synthetic burst must beat one Lanczos-upscaled frame by a clear margin "
                      "against the scene through the optics"),
    "merge_gain_sharp_db": (0.1, None, "the unrestored mean removes noise and aliasing but keeps the optics blur: "
                            "0.2 dB above one frame against the sharp scene (test-medium)"),
    "demo_gain_sharp_db": (0.5, None, "with restoration the demo's 8-frame merge is ~1 dB above one frame against the "
                           "sharp chart"),
    "estimated_vs_true_motion_db": (0.3, None, "merging with estimated instead of true transforms costs little"),
    "mean_ghost_db": (1.0, None, "passers-by averaged into the plain mean cost at least 1 dB where they moved"),
    "robust_vs_reference_db": (0.5, None, "where things moved, the robust merge is no worse than the reference alone"),
    "robust_static_db": (0.2, None, "where nothing moved, robust and plain mean agree"),
    "raw_noise_model_ratio": (0.2, None, "the DNG noise model's level-1 residual variance vs flat frames' (measured "
                              "within ~10 %: demosaicing is modelled by each plane's site density only)"),
    "raw_static_rejection": (0.02, None, "static content with the noise profile: next to nothing left out"),
    "raw_mover_rejection": (0.9, None, "a one-stop mover in the shadows, inside its box: left out almost entirely"),
    "profile_noise_count": (0.0, 0.05, "static frames: the robust weights keep every pixel of every frame (a few "
                            "per mille left out by chance), so the merged/one-frame median is 1/sqrt(N)"),
    "profile_noise_scaling": (0.05, None, "the profile's variance S x + O scaled tenfold: its square root, "
                              "exactly sqrt(10) but for the medians over slightly different kept counts"),
    "disagreement_genuine": (1.0, None, "frames of one scene that differ by noise and motion: the disagreement "
                             "(lower quartile of residual over noise and edge allowance) measured 0.1-0.34 on "
                             "synthetic JPEG and DNG bursts; 1.0 is where noise alone would put it"),
    "mover_rejected_fraction": (0.04, None, "a 70x60 passer-by covers ~8 % of a 256x192 frame: at least half is rejected"),
    "frame_grid_noise_rel": (0.15, None, "test-small (8 frames, true motion), kernel merge at 2x and 4x: the noise "
                             "read on the frames' grid agrees within this (measured 3.5 %)"),
    "high_iso_restoration_gain_db": (0.3, None, "a very noisy textured burst: the restoration gains 0.95 dB (4 frames) "
                                     "and 0.66 dB (8) over none; the strength from one frame's noise ratio gained "
                                     "0.18 and -0.16"),
    "restored_step_overshoot": (0.05, None, "the halo target: the restored step's edge-spread function leaves "
                                "its plateaus by under 5 % of the step (measured 1 to 3 %)"),
    "kernel_shape_flat": (1e-4, 1e-3, "the flat kernel's two standard deviations from float32 coefficients"),
    "anisotropic_vs_isotropic_db": (0.1, None, "test-medium (12 frames, true motion), both deconvolved alike: "
                                    "the anisotropic kernel's PSNR gain against the sharp chart (measured 0.31 dB)"),
    "kernel_vs_lanczos_sharp_db": (0.1, None, "test-medium (12 frames, true motion), both deconvolved for optics, "
                                   "pixels and their own merge kernel (lam 0.01): the kernel merge is ahead; "
                                   "measured +0.3 dB at 16 frames of the reconstruction recipe"),
    "kernel_pipeline_gain_db": (1.0, None, "superres run --merge kernel (restored) on the small 8-frame burst against "
                                "one frame upscaled, vs the sharp scene; measured 1.66 dB"),
    "demo_kernel_star_px": (2.0, None, "the demo's 8-frame --merge kernel resolves the Siemens star further in than "
                            "one frame upscaled: measured 19.9 against 25.4 px (the output's Nyquist limit is 11.5)"),
    # ---- local refinement -------------------------------------------------------------------------------
    "field_constant_vs_matrix": (2e-3, 0.0, "a constant field vs the same shift folded into Tinv: positions agree to "
                                 "~1e-12 px but are rounded to 1/32 px independently, so a few pixels take a "
                                 "neighbouring Lanczos phase (|weight change| * 255 / 32 per such pixel, rare)"),
    "tile_phase_shift_px": (0.25, None, "a 64 px tile's parabolic peak fit at a fraction of 0.3-0.4 px: biased "
                            "towards the integer by up to ~0.2 px (measured 0.18); Gauss-Newton refines it"),
    "local_large_shift_px": (0.1, None, "a noise-free 6.3, 4.1 px shift, beyond Gauss-Newton's reach from 0: "
                             "phase correlation starts the tiles, the median interior node lands within 0.1 px"),
    "local_constant_shift_px": (0.02, None, "a noise-free PNG pair shifted by (0.5, -0.25) px: every interior node "
                                "recovers it (measured within 0.005)"),
    "local_rolling_gain": (0.6, None, "rolling-shutter wobble (sigma 0.3 px): the dense map error with the field is "
                           "below 0.6 of the global model's (measured 0.2-0.3 on the benchmark frames)"),
    "local_static_significance": (4.0, None, "frames with no local motion: the accepted vectors' mean (|D| / sd)^2 "
                                  "stays near 1 (measured 1.1-1.4), below --local auto's threshold"),
    "local_static_db": (0.1, None, "--local on on a static burst costs at most 0.1 dB (measured 0.02)"),
    # ---- culling ----------------------------------------------------------------------------------------
    "cull_precision_recall": (0.9, None, "blurred frames (3-6 px of shake) flagged at every noise level"),
    "noise_estimate_rel": (0.15, None, "Immerkaer's estimate on the calm half of a frame, relative to the true sigma"),
    "noise_variance_vs_frame_estimator": (0.0, 0.02, "robust.noise_variance (the backend's median over every k-th "
                                          "pixel, central-difference activity) vs cull.estimate_noise (full median, "
                                          "Sobel activity) on the same image: relative, in sigma"),
    "sharpness_noise_corrected_rel": (0.3, None, "noise-corrected detail energy within 30 % of the clean frame's"),
    # ---- hostile input ----------------------------------------------------------------------
    "fuzz_peak_rss_mib": (600.0, 0.0, "peak RSS of the short fuzz run (measured ~100 MiB: 160x120 frames); a claimed "
                          "size decoded before the guard (a 65000x65000 JPEG: 12 GB) would pass it by far"),
}


def tol(name):
    atol, rtol, _ = TOL[name]
    return atol, rtol
