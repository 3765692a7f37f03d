"""Cost of the checked decoders against OpenCV's plain decode, in the same run.

JPEG frames decode through libjpeg-turbo in strict mode (its warnings become
errors); PNG frames have their structure checked (chunk CRCs, the image data
inflated once) before OpenCV decodes them.  This measures both against
``cv2.imdecode`` alone on one 12 MP frame (a smooth synthetic scene with
noise, JPEG quality 92, PNG level 3), the median of repeated reads.

    python -m benchmarks.bench_decode [--repeat 7] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _median_time(fn, repeat: int) -> float:
    fn()  # warm up
    ts = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def main(argv=None) -> int:
    import cv2

    from superres_gpu.decode import read_frame, read_half_luma
    from superres_gpu.discover import probe

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeat", type=int, default=7)
    p.add_argument("--json")
    a = p.parse_args(argv)
    rng = np.random.default_rng(0)
    h, w = 3000, 4000
    base = cv2.resize((rng.random((h // 16, w // 16, 3)) * 255).astype(np.uint8), (w, h), interpolation=cv2.INTER_CUBIC)
    img = np.clip(base + rng.normal(0, 3, base.shape), 0, 255).astype(np.uint8)
    res = {"size": f"{w}x{h} RGB 8-bit", "repeat": a.repeat}
    with tempfile.TemporaryDirectory() as d:
        jp, pp = Path(d) / "f.jpg", Path(d) / "f.png"
        cv2.imwrite(str(jp), img, [cv2.IMWRITE_JPEG_QUALITY, 92])
        cv2.imwrite(str(pp), img, [cv2.IMWRITE_PNG_COMPRESSION, 3])
        ji, pi = probe(jp), probe(pp)
        flags = cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR | cv2.IMREAD_IGNORE_ORIENTATION
        rows = {
            "jpeg_full_checked": lambda: read_frame(ji),
            "jpeg_full_opencv": lambda: cv2.imdecode(np.frombuffer(jp.read_bytes(), np.uint8), flags),
            "jpeg_half_checked": lambda: read_half_luma(ji),
            "jpeg_half_opencv": lambda: cv2.imdecode(np.frombuffer(jp.read_bytes(), np.uint8),
                                                     cv2.IMREAD_REDUCED_GRAYSCALE_2 | cv2.IMREAD_IGNORE_ORIENTATION),
            "png_full_checked": lambda: read_frame(pi),
            "png_full_opencv": lambda: cv2.imdecode(np.frombuffer(pp.read_bytes(), np.uint8), flags),
        }
        for name, fn in rows.items():
            res[name + "_s"] = round(_median_time(fn, a.repeat), 4)
    for k in ("jpeg_full", "jpeg_half", "png_full"):
        res[k + "_ratio"] = round(res[k + "_checked_s"] / res[k + "_opencv_s"], 2)
    text = json.dumps(res, indent=1)
    if a.json:
        Path(a.json).write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
