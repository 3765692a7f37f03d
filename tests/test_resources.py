"""The resource guard: claimed frame sizes and a run's memory, checked before decoding."""

from __future__ import annotations

import pytest

from superres_gpu.errors import InputError
from superres_gpu.resources import (
    DEFAULT_MAX_MEGAPIXELS,
    available_memory,
    check_frame_pixels,
    check_run_memory,
    run_memory,
)


def test_frame_pixel_limit():
    check_frame_pixels("a.jpg", 4000, 3000)  # a 12 MP phone frame
    check_frame_pixels("a.jpg", 16384, 12288)  # a 200 MP sensor
    with pytest.raises(InputError, match=r"a\.jpg: claims 65000x65000 pixels \(4225 MP\).*--max-megapixels"):
        check_frame_pixels("a.jpg", 65000, 65000)
    check_frame_pixels("a.jpg", 65000, 65000, max_megapixels=5000)
    assert DEFAULT_MAX_MEGAPIXELS >= 200


def test_run_memory_counts_frames_work_and_output():
    w, h = 4000, 3000
    base = run_memory(w, h, 3, 1, 1.0, 0)
    assert run_memory(w, h, 3, 1, 1.0, 5) - base == 5 * w * h * 3  # each frame in flight: its decoded bytes
    assert run_memory(w, h, 3, 2, 1.0, 1) - base == w * h * 3 * 2  # 16-bit frames: twice the bytes
    # the culling pass beside the reference's preparation: per thread a decoded frame and its float32 luma
    assert run_memory(w, h, 3, 1, 1.0, 0, culling=4) - base == 4 * w * h * (3 + 4)
    # the kernel merge's weight sums with channel maps: a plane per channel
    assert run_memory(w, h, 3, 1, 1.0, 0, den_planes=3) - base == 2 * 4 * w * h
    # the output part grows with the square of the scale: 4x the pixels at scale 2, 16x at 4
    s2 = run_memory(w, h, 3, 1, 2.0, 0)
    s4 = run_memory(w, h, 3, 1, 4.0, 0)
    assert (s4 - base) == pytest.approx(5 * (s2 - base), rel=1e-6)  # (16 - 1) / (4 - 1)
    # a 12 MP run at scale 2 fits in a few GB, as measured (benchmarks/RESULTS.md: ~1.6 GB peak)
    assert 1e9 < run_memory(w, h, 3, 1, 2.0, 6) < 4e9
    assert run_memory(w, h, 3, 1, 2.0, 6, kernel=True) - run_memory(w, h, 3, 1, 2.0, 6) == 28 * w * h
    # frames held back for the template: each its decoded copy and its pyramid (11 B/px)
    assert run_memory(w, h, 3, 1, 2.0, 6, held=4) - run_memory(w, h, 3, 1, 2.0, 6) == 4 * w * h * (3 + 11)
    # the template's own 2x merge (accumulators and mean, 4 times the frame's pixels) and the reference's copy
    t = run_memory(w, h, 3, 1, 2.0, 6, template_scale=2.0) - run_memory(w, h, 3, 1, 2.0, 6)
    assert t == 4 * w * h * (4 * 4 + 4 * 3) + w * h * 3


def test_run_memory_check():
    check_run_memory("r.jpg", 10, available=100)
    with pytest.raises(InputError, match=r"r\.jpg: this run needs about 2\.0 GiB.*1\.0 GiB is available"):
        check_run_memory("r.jpg", 2 * 2**30, available=2**30)
    assert available_memory() is None or available_memory() > 0
