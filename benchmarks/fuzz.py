"""Fuzz ``superres run`` with mutated JPEG and PNG frames.

Each case writes a 3-frame burst (small synthetic frames, all JPEG or all
PNG) whose middle frame is a mutant of a good frame: bytes of its header or
its data changed, cut short, bytes inserted, a range zeroed, or its claimed
size changed.  The CLI runs in this process, and each outcome is counted:

* ``ok``: the run succeeded with the mutant merged (a mutation the decoder
  cannot tell from data, whose picture agrees with the others within noise);
* ``dropped_content``: the run succeeded without the mutant, dropped because
  its content disagrees with the reference; ``dropped_other``: dropped for
  another reason (it could not be aligned);
* ``refused``: exit 1 with one line naming the mutant;
* ``refused_other``: exit 1 with one line naming another file (the
  reference: the mutant could not be aligned, so the burst had too few
  frames);
* failures: ``internal`` (an "internal error" line), ``traceback``,
  ``lines`` (more than one line), ``hang`` (over the time limit),
  ``leftover`` (a file created by a failed run), ``changed`` (an input
  modified), ``crash`` (an exception escaped the CLI).

The peak resident memory of the process is reported too.

    python -m benchmarks.fuzz --cases 400 --seed 1 --json fuzz.json
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import resource
import shutil
import signal
import struct
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

MUTATIONS = ("header", "data", "truncate", "insert", "zero", "size")
FAILURES = ("internal", "traceback", "lines", "hang", "leftover", "changed", "crash")


class _Hang(BaseException):
    """Raised by the alarm: deliberately not an Exception, so the CLI cannot catch it."""


def _on_alarm(signum, frame):
    raise _Hang()


def base_frames():
    """Three good frames of the small synthetic burst, as JPEG and as PNG bytes."""
    import cv2

    from superres_gpu.synth import recipe_burst

    b = recipe_burst("test-small")
    jpegs = list(b.encoded[:3])
    pngs = [cv2.imencode(".png", np.ascontiguousarray(f[..., ::-1]))[1].tobytes() for f in b.frames[:3]]
    return {"jpeg": jpegs, "png": pngs}


def _header_len(data: bytes, kind: str) -> int:
    if kind == "jpeg":
        sos = data.find(b"\xff\xda")
        return sos + 2 if sos > 0 else min(len(data), 600)
    idat = data.find(b"IDAT")
    return idat if idat > 0 else min(len(data), 64)


def mutate(data: bytes, kind: str, how: str, rng: np.random.Generator) -> bytes:
    d = bytearray(data)
    head = _header_len(data, kind)
    if how == "header":
        for _ in range(int(rng.integers(1, 5))):
            i = int(rng.integers(2, head))
            d[i] = int(rng.integers(0, 256))
    elif how == "data":
        for _ in range(int(rng.integers(1, 9))):
            i = int(rng.integers(head, len(d)))
            d[i] ^= 1 << int(rng.integers(0, 8))
    elif how == "truncate":
        d = d[: int(rng.integers(1, len(d)))]
    elif how == "insert":
        i = int(rng.integers(2, len(d)))
        d[i:i] = rng.integers(0, 256, int(rng.integers(1, 64)), dtype=np.uint8).tobytes()
    elif how == "zero":
        i = int(rng.integers(2, len(d)))
        n = int(rng.integers(1, 256))
        d[i : i + n] = bytes(len(d[i : i + n]))
    elif how == "size":
        w, h = (int(v) for v in rng.integers(1, 65536, 2))
        if kind == "jpeg":
            sof = max(data.find(b"\xff\xc0"), data.find(b"\xff\xc2"))
            if sof > 0:
                d[sof + 5 : sof + 9] = struct.pack(">HH", h, w)
        else:
            d[16:24] = struct.pack(">II", w, h)
    return bytes(d)


def _snapshot(root: Path) -> dict:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def run_case(work: Path, frames: list[bytes], mutant: bytes, ext: str, limit_s: int) -> str:
    from superres_gpu import cli

    burst = work / "burst"
    burst.mkdir(parents=True)
    for i, data in enumerate(frames):
        (burst / f"f{i}{ext}").write_bytes(mutant if i == 1 else data)
    before = _snapshot(work)
    err = io.StringIO()
    args = ["run", str(burst), "-o", str(work / "o.tif"), "--report", str(work / "r.json"),
            "--backend", "numpy", "--scale", "1", "--no-sharpen", "--quiet"]
    old = signal.signal(signal.SIGALRM, _on_alarm)
    signal.alarm(limit_s)
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            rc = cli.main(args)
    except _Hang:
        return "hang"
    except BaseException:
        return "crash"
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    text = err.getvalue()
    after = _snapshot(work)
    if "Traceback" in text:
        return "traceback"
    if rc == 0:
        if set(after) - set(before) != {"o.tif", "r.json"}:
            return "leftover"
        mutant = json.loads((work / "r.json").read_text())["frames"][1]
        if mutant["used"]:
            return "ok"
        return "dropped_content" if mutant["reason"].startswith("content disagrees") else "dropped_other"
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("warning:")]
    if any(k in before and after.get(k) != before[k] for k in before):
        return "changed"
    if after != before:
        return "leftover"
    if "internal error" in text:
        return "internal"
    if len(lines) != 1:
        return "lines"
    return "refused" if "f1" + ext in lines[0] else "refused_other"


def run_fuzz(cases: int, seed: int, limit_s: int = 60, keep: Path | None = None) -> dict:
    rng = np.random.default_rng(seed)
    base = base_frames()
    counts = {k: {} for k in ("jpeg", "png")}
    examples = []
    t0 = time.perf_counter()
    root = Path(tempfile.mkdtemp(prefix="superres-fuzz-"))
    try:
        for k in range(cases):
            kind = ("jpeg", "png")[k % 2]
            how = MUTATIONS[int(rng.integers(0, len(MUTATIONS)))]
            frames = base[kind]
            mutant = mutate(frames[1], kind, how, rng)
            work = root / f"c{k}"
            outcome = run_case(work, frames, mutant, ".jpg" if kind == "jpeg" else ".png", limit_s)
            c = counts[kind].setdefault(how, {})
            c[outcome] = c.get(outcome, 0) + 1
            if outcome in FAILURES:
                examples.append({"case": k, "kind": kind, "mutation": how, "outcome": outcome})
                if keep is not None:
                    keep.mkdir(parents=True, exist_ok=True)
                    (keep / f"case{k}_{how}{'.jpg' if kind == 'jpeg' else '.png'}").write_bytes(mutant)
            shutil.rmtree(work, ignore_errors=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    totals: dict = {}
    for per_kind in counts.values():
        for per_how in per_kind.values():
            for o, n in per_how.items():
                totals[o] = totals.get(o, 0) + n
    return {
        "cases": cases,
        "seed": seed,
        "seconds": round(time.perf_counter() - t0, 1),
        "totals": totals,
        "failures": sum(totals.get(f, 0) for f in FAILURES),
        "by_kind_and_mutation": counts,
        "failed_cases": examples,
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cases", type=int, default=400)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--limit", type=int, default=60, help="seconds one case may take before it counts as a hang")
    p.add_argument("--json", help="write the counts here")
    p.add_argument("--keep", help="save the mutants that failed into this folder")
    a = p.parse_args(argv)
    res = run_fuzz(a.cases, a.seed, a.limit, Path(a.keep) if a.keep else None)
    text = json.dumps(res, indent=1)
    if a.json:
        Path(a.json).write_text(text + "\n")
    print(text)
    return 0 if res["failures"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
