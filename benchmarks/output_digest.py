"""Prove that a change alters no output: digests of ``superres run`` on fixed bursts.

Renders a set of bursts once into ``WORKDIR/bursts`` (the demo burst, the
tests' bursts, a shaken burst, passers-by, a masked burst, 16-bit grey) and
reuses those files on later calls, so that the digests of two versions of the
code are taken on the very same inputs.  Each case runs the CLI on the CPU
backend with some options and records the SHA-256 of the output pixels, of
the weights picture and of the report (without timings and paths).

    python -m benchmarks.output_digest WORKDIR --save before.json
    ... change the code ...
    python -m benchmarks.output_digest WORKDIR --compare before.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
from pathlib import Path

import numpy as np

CASES = [
    ("demo", []), ("small", []), ("small", ["--merge", "mean"]), ("small", ["--no-sharpen"]),
    ("small", ["--scale", "1.5", "--motion", "similarity", "--reference", "@/frame_003.jpg"]),
    ("medium", []), ("medium", ["--motion", "translation", "--scale", "3"]), ("masked", []),
    ("grey16", []), ("shaken", []), ("shaken", ["--no-cull"]), ("movers", ["--weights-png", "@W"]),
    ("movers", ["--reference", "sharpest", "--scale", "1"]),
]
_VOLATILE = ("timings", "peak_rss_mib", "peak_gpu_mib", "output", "reference", "mask", "tool")


def make_bursts(root: Path) -> None:
    if root.exists():  # the same inputs for every version of the code
        return
    import cv2

    from superres_gpu.decode import read_frame
    from superres_gpu.synth import CameraSpec, MotionSpec, Mover, make_burst, recipe_burst

    recipe_burst("test-small").write(root / "small")
    recipe_burst("test-medium").write(root / "medium")
    recipe_burst("demo").write(root / "demo")
    mid = CameraSpec(noise_gain=0.002, noise_floor=0.008, jpeg_quality=92)
    make_burst(8, 256, 192, seed=9, camera=mid, shake={2: (5.0, 10.0), 5: (6.0, 120.0)}).write(root / "shaken")
    movers = [Mover(2, 40, 60, 70, 60, 1), Mover(5, 150, 100, 80, 70, 2)]
    make_burst(8, 320, 240, seed=8, motion=MotionSpec(shift_sigma=2.5, rotation_sigma_deg=0.25), camera=mid,
               movers=movers).write(root / "movers")
    grey = root / "grey16"
    grey.mkdir()
    for i, p in enumerate(sorted((root / "small").iterdir())[:4]):
        f = read_frame(p)
        cv2.imwrite(str(grey / f"g{i}.png"), cv2.cvtColor(f, cv2.COLOR_RGB2GRAY).astype(np.uint16) * 257)
    m = np.zeros((120, 160, 4), np.uint8)
    m[10:40, 10:60] = (0, 0, 255, 255)
    shutil.copytree(root / "small", root / "masked")
    cv2.imwrite(str(root / "masked" / "mask.png"), m)


def digests(workdir: Path) -> dict:
    import cv2
    import tifffile

    from superres_gpu import cli

    make_bursts(workdir / "bursts")
    work = workdir / "work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    res = {}
    for k, (name, opts) in enumerate(CASES):
        d = workdir / "bursts" / name
        o, r, w = work / f"{k}.tif", work / f"{k}.json", work / f"{k}.png"
        opts = [str(d) + x[1:] if x.startswith("@/") else (str(w) if x == "@W" else x) for x in opts]
        rc = cli.main(["run", str(d), "-o", str(o), "--report", str(r), "-q", "--backend", "numpy"] + opts)
        if rc != 0:
            res[f"{name} {' '.join(opts)}"] = {"rc": rc}
            continue
        rep = json.loads(r.read_text())
        for f in rep["frames"]:
            f["path"] = Path(f["path"]).name
        kept = {key: v for key, v in rep.items() if key not in _VOLATILE}
        entry = {
            "rc": rc,
            "pixels": hashlib.sha256(tifffile.imread(o).tobytes()).hexdigest(),
            "report": hashlib.sha256(json.dumps(kept, sort_keys=True).encode()).hexdigest(),
        }
        if w.exists():
            entry["weights_png"] = hashlib.sha256(cv2.imread(str(w)).tobytes()).hexdigest()
        res[f"{name} {' '.join(x.replace(str(d), '') for x in opts)}".strip()] = entry
        print(f"{k:2d} {name:7s} {entry['pixels'][:16]} {entry['report'][:16]}", file=sys.stderr)
    return res


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.output_digest", description=__doc__.split("\n\n")[0])
    p.add_argument("workdir", help="folder for the burst files (kept) and the outputs (replaced)")
    p.add_argument("--save", metavar="JSON", help="write the digests here")
    p.add_argument("--compare", metavar="JSON", help="compare with digests saved earlier; exit 1 on any difference")
    a = p.parse_args(argv)
    res = digests(Path(a.workdir))
    if a.save:
        Path(a.save).write_text(json.dumps(res, indent=1, sort_keys=True))
    if a.compare:
        old = json.loads(Path(a.compare).read_text())
        diff = [f"{case}: {key}" for case in sorted(set(old) | set(res))
                for key in ("rc", "pixels", "report", "weights_png")
                if old.get(case, {}).get(key) != res.get(case, {}).get(key)]
        for line in diff:
            print(f"differs: {line}")
        print(f"{len(res)} cases, {len(diff)} differences")
        return 1 if diff else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
