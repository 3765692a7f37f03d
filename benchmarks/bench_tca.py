"""Lateral chromatic aberration in each merge: PSNR without aberration, with it
uncorrected (``--tca off``) and corrected (``--tca on``).

Synth ``test-medium`` as PNG frames (and with ``--jpeg Q`` as 4:2:0 JPEG
frames of quality Q), without aberration and with red +0.2 % / blue -0.2 %
radial scaling against green; ``superres run`` at 2x with default options
but ``--merge`` and ``--tca``, CPU backend; PSNR against the optics-blurred
truth and the sharp truth, 8 px border left out, and the estimate the run
reports.  On JPEG frames one more run, ``on (channels)``, corrects them as if
their chroma had full resolution (whole channels read at their maps), which
is what the chroma band correction replaces there.  With ``--cubic`` a third
burst adds a cubic radial term (red +0.3 %, blue -0.2 % more at the corners,
see ``synth.CameraSpec.lateral_ca_cubic``), with one more run,
``on (similarity)``, whose estimate leaves the cubic term out.  ``--size WxH``
renders the bursts at that frame size instead of the recipe's 320x240 (the
same chart and motion); ``--heic Q`` also writes the bursts as HEIC of
quality Q through pillow-heif (4:2:0, the chroma repeated over its blocks when
decoded), with the same runs as the JPEG frames.

    python -m benchmarks.bench_tca [--frames 12] [--merges kernel robust] [--jpeg 92] [--heic 90] [--cubic]
                                   [--size WxH] [--json out.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from superres_gpu import synth
from superres_gpu.metrics import psnr
from superres_gpu.options import PipelineConfig
from superres_gpu.pipeline import run

ABERRATION = (0.002, -0.002)  # red, blue
CUBIC = (0.003, -0.002)  # red, blue: the cubic term's extra magnification at the corners


def measure(frames: int, merges, qualities=(None,), cubic: bool = False, size=None, heic=(),
            progress=print) -> list[dict]:
    import tifffile

    from superres_gpu import pipeline

    r = synth.RECIPES["test-medium"]
    rows = []
    estimate = pipeline.estimate_tca

    # the lossless frames' correction, whatever the file holds
    def full_chroma(B, frames, chroma=(1, 1), origin=(0, 0), colour_matrix=None):
        return estimate(B, frames, (1, 1))

    def similarity(B, frames, chroma=(1, 1), origin=(0, 0), colour_matrix=None):  # the estimate without its cubic term
        return estimate(B, frames, chroma, cubic=False, origin=origin, colour_matrix=colour_matrix)

    replace = {"on (channels)": full_chroma, "on (similarity)": similarity}
    bursts = [((0.0, 0.0), (0.0, 0.0)), (ABERRATION, (0.0, 0.0))] + ([(ABERRATION, CUBIC)] if cubic else [])

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        formats = [("png" if q is None else "jpeg", q) for q in qualities] + [("heic", q) for q in heic]
        for codec, quality in formats:
            for ca, k in bursts:
                b = synth.recipe_burst("test-medium", frames=frames, **({} if size is None else
                                                                       {"width": size[0], "height": size[1]}),
                                       camera=dataclasses.replace(r.camera, lateral_ca=ca, lateral_ca_cubic=k,
                                                                  jpeg_quality=quality if codec == "jpeg" else None))
                d = tmp / f"burst{ca[0]}c{k[0]}{codec}{quality}"
                if codec == "heic":
                    _write_heic(b, d, quality)
                else:
                    b.write(d)
                opts = ["off", "on"] + (["on (channels)"] if codec != "png" and ca != (0.0, 0.0) else [])
                opts += ["on (similarity)"] if k != (0.0, 0.0) else []
                for merge in merges:
                    for opt in opts:
                        out = tmp / "out.tif"
                        pipeline.estimate_tca = replace.get(opt, estimate)
                        t0 = time.perf_counter()
                        try:
                            rep = run(PipelineConfig(inputs=[str(d)], output=str(out), backend="numpy",
                                                     tca=opt.split()[0], merge=merge, cull=False,
                                                     overwrite=True)).report
                        finally:
                            pipeline.estimate_tca = estimate
                        secs = time.perf_counter() - t0
                        img = tifffile.imread(out).astype(np.float32) / 65535
                        est = rep["tca"]["estimate"]
                        label = "PNG" if codec == "png" else f"{codec.upper()} {quality} 4:2:0"
                        row = {"frames": label, "merge": merge,
                               "size": [b.frames[0].shape[1], b.frames[0].shape[0]],
                               "aberration": ca != (0.0, 0.0), "cubic": k, "tca": opt,
                               "psnr_blurred": psnr(img, b.truth_blurred, margin=8),
                               "psnr_sharp": psnr(img, b.truth, margin=8), "seconds": secs,
                               "estimate": None if est is None else {
                                   c: {"scale": est[c]["scale"], "cubic": est[c]["cubic"],
                                       "corner_shift_px": est[c]["corner_shift_px"]} for c in ("red", "blue")},
                               "correction": None if est is None else est["correction"],
                               "chroma_upsampling": None if est is None else est["chroma_upsampling"]}
                        rows.append(row)
                        progress(f"{row['frames']} {merge} aberration={row['aberration']} cubic={k} --tca {opt}: "
                                 f"{row['psnr_blurred']:.2f} / {row['psnr_sharp']:.2f} dB ({secs:.1f} s) "
                                 f"{row['estimate']}")
    return rows


def _write_heic(burst, folder: Path, quality: int) -> None:
    """The burst's (8-bit, lossless) frames written as HEIC files of ``quality``."""
    import pillow_heif

    folder.mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(burst.frames):
        if f.dtype != np.uint8:
            raise ValueError("HEIC frames are written from 8-bit renders")
        h, w = f.shape[:2]
        pillow_heif.from_bytes(mode="RGB", size=(w, h), data=np.ascontiguousarray(f).tobytes()).save(
            folder / f"frame_{i:03d}.heic", quality=int(quality))


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not WxH (e.g. 1280x960)") from None
    if w < 64 or h < 64:
        raise argparse.ArgumentTypeError(f"{text!r}: frames must be at least 64x64")
    return w, h


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=12)
    ap.add_argument("--merges", nargs="+", default=["kernel", "robust"])
    ap.add_argument("--jpeg", type=int, nargs="*", default=[], metavar="Q",
                    help="also 4:2:0 JPEG frames of these qualities")
    ap.add_argument("--png", action=argparse.BooleanOptionalAction, default=True, help="the PNG frames (default on)")
    ap.add_argument("--cubic", action="store_true", help="also a burst with a cubic radial term")
    ap.add_argument("--heic", type=int, nargs="*", default=[], metavar="Q",
                    help="also HEIC frames of these qualities (needs pillow-heif)")
    ap.add_argument("--size", type=_size, metavar="WxH", help="frame size (default: the recipe's, 320x240)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    rows = measure(args.frames, args.merges, ([None] if args.png else []) + list(args.jpeg), args.cubic, args.size,
                   args.heic)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
