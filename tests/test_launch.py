"""Launch-shape arithmetic of the CUDA kernels (pure Python, on the CPU)."""

from __future__ import annotations

import pytest

from superres_gpu.backends.launch import PEAK_THREADS, REDUCE_THREADS, ceil_div, grid_1d, grid_2d, reduce_blocks
from superres_gpu.cuda_modules import kernel_dir


@pytest.mark.parametrize("w,h", [(1, 1), (16, 16), (17, 15), (4000, 3000), (6576, 4960), (33, 1)])
def test_grid_2d_covers_every_pixel_exactly_once(w, h):
    gx, gy, gz = grid_2d(w, h)
    assert gz == 1
    assert (gx - 1) * 16 < w <= gx * 16
    assert (gy - 1) * 16 < h <= gy * 16


@pytest.mark.parametrize("n", [1, 255, 256, 257, 12_000_000])
def test_grid_1d(n):
    (g,) = grid_1d(n)
    assert (g - 1) * 256 < n <= g * 256


def test_empty_launches_are_errors():
    with pytest.raises(ValueError):
        grid_2d(0, 5)
    with pytest.raises(ValueError):
        grid_1d(0)


def test_reduce_blocks_bounds():
    assert reduce_blocks(10, 132) == 1
    assert reduce_blocks(1 << 17, 132) == 264
    assert reduce_blocks(300, 132) == ceil_div(300, REDUCE_THREADS)


def test_thread_counts_match_kernels():
    assert f"#define SR_REDUCE_THREADS {REDUCE_THREADS}" in (kernel_dir() / "align.cu").read_text()
    assert f"#define SR_PEAK_THREADS {PEAK_THREADS}" in (kernel_dir() / "phasecorr.cu").read_text()
