"""A short, seeded fuzz run of the CLI (the longer one is ``python -m benchmarks.fuzz``).

Mutated headers and data of a small JPEG and PNG frame in 3-frame bursts:
no crash, no hang, no internal error or traceback, never more than one line,
nothing left behind, no input changed, memory bounded.  Runs in its own
process so that the peak memory is this run's alone.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tolerances import TOL

ROOT = Path(__file__).resolve().parent.parent


def test_short_fuzz_run(tmp_path):
    out = tmp_path / "fuzz.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    r = subprocess.run(
        [sys.executable, "-m", "benchmarks.fuzz", "--cases", "120", "--seed", "11", "--limit", "60",
         "--json", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    res = json.loads(out.read_text())
    assert res["failures"] == 0, res["failed_cases"]
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stderr.strip() == "", "a decoder wrote to stderr past the one-line errors: " + r.stderr[-2000:]
    assert sum(res["totals"].values()) == 120
    # both kinds of outcome occur: the battery is not all refusals or all passes
    assert res["totals"].get("refused", 0) > 0 and res["totals"].get("ok", 0) > 0
    assert res["peak_rss_mib"] < TOL["fuzz_peak_rss_mib"][0]
