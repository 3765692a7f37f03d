"""Launch-shape arithmetic for the CUDA kernels (pure Python, tested on the CPU)."""

from __future__ import annotations

BLOCK_2D = (16, 16, 1)
BLOCK_1D = 256
REDUCE_THREADS = 256  # must match SR_REDUCE_THREADS in kernels/align.cu
PEAK_THREADS = 1024  # must match SR_PEAK_THREADS in kernels/phasecorr.cu


def ceil_div(a: int, b: int) -> int:
    return -(-int(a) // int(b))


def grid_2d(width: int, height: int, block=BLOCK_2D) -> tuple[int, int, int]:
    """Blocks covering a width x height image with one thread per pixel."""
    if width <= 0 or height <= 0:
        raise ValueError(f"empty launch: {width}x{height}")
    return ceil_div(width, block[0]), ceil_div(height, block[1]), 1


def grid_1d(n: int, block: int = BLOCK_1D) -> tuple[int]:
    if n <= 0:
        raise ValueError(f"empty launch: n={n}")
    return (ceil_div(n, block),)


def reduce_blocks(n_points: int, sm_count: int) -> int:
    """Blocks for the grid-stride reduction: enough to fill the device, never
    more than the points need (each block handles >= 1 thread's worth)."""
    return max(1, min(2 * max(1, sm_count), ceil_div(max(1, n_points), REDUCE_THREADS)))
