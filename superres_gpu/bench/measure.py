"""Measurement helpers of the benchmarks: environment facts, timed runs with peak memory."""

from __future__ import annotations

import atexit
import datetime as _dt
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the checkout, when run from one


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10
        )
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True, text=True, timeout=10)
        sha = out.stdout.strip() or "unknown"
        return sha + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def gpu_name() -> str | None:
    try:
        from ..backends import cupy_unavailable_reason

        if cupy_unavailable_reason() is not None:
            return None
        import cupy

        props = cupy.cuda.runtime.getDeviceProperties(0)
        name = props["name"]
        return name.decode() if isinstance(name, bytes) else str(name)
    except Exception:
        return None


def environment() -> dict:
    import cv2
    import numpy as np

    env = {
        "date": _dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "commit": git_commit(),
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "opencv": cv2.__version__,
    }
    g = gpu_name()
    if g:
        import cupy

        env["gpu"] = g
        env["cupy"] = cupy.__version__
    return env


def environment_line(env: dict) -> str:
    parts = [f"{env['date']}", f"commit {env['commit']}", f"{env['cpu']} ({env['cores']} cores)"]
    if env.get("gpu"):
        parts.append(f"GPU {env['gpu']} (CuPy {env['cupy']})")
    parts.append(f"Python {env['python']}, NumPy {env['numpy']}, OpenCV {env['opencv']}")
    return "; ".join(parts)


_RUNNER_CODE = r"""
import json, os, subprocess, sys, time
for line in sys.stdin:
    req = json.loads(line)
    t = time.perf_counter()
    proc = subprocess.Popen(req["cmd"], cwd=req.get("cwd"), env=req.get("env"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = proc.stdout.read()
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    sys.stdout.write(json.dumps({"wall": wall, "rss_mib": usage.ru_maxrss / 1024.0,
                                 "cpu": usage.ru_utime + usage.ru_stime, "load": os.getloadavg()[0],
                                 "rc": os.waitstatus_to_exitcode(status),
                                 "stdout": out.decode(errors="replace")[-20000:],
                                 "stderr": err.decode(errors="replace")[-20000:]}) + "\n")
    sys.stdout.flush()
"""

_runner = None


def start_runner() -> None:
    """Start the small process that launches measured commands.

    Linux carries a process's peak-RSS record across fork and exec, so a
    command forked from a big benchmark process would report the parent's
    memory as its own peak.  Commands are therefore launched from this tiny
    helper, started before the benchmark allocates anything large.
    """
    global _runner
    if _runner is None:
        _runner = subprocess.Popen(
            [sys.executable, "-c", _RUNNER_CODE], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        atexit.register(_stop_runner)


def _stop_runner() -> None:
    global _runner
    if _runner is not None:
        _runner.stdin.close()
        _runner.wait(timeout=30)
        _runner.stdout.close()
        _runner = None


def run_measured(cmd: list[str], cwd=None, env=None) -> dict:
    """Run a command; return its wall time (s), peak RSS (MiB) and CPU time
    (user + system, s) from wait4, and the 1-minute load average as it ended.
    ``env`` None: the caller's environment as it is now (the runner's own dates
    from when it started)."""
    import json

    start_runner()
    env = dict(os.environ) if env is None else env
    _runner.stdin.write(json.dumps({"cmd": cmd, "cwd": str(cwd) if cwd else None, "env": env}) + "\n")
    _runner.stdin.flush()
    res = json.loads(_runner.stdout.readline())
    if res["rc"] != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({res['rc']}):\n{res['stderr'][-2000:]}")
    return res


def median_runs(cmd: list[str], repeat: int, warmup: int = 1, **kw) -> dict:
    """Warm up, repeat, and report the median wall time (and max peak RSS,
    median CPU time, the load averages as the runs ended)."""
    for _ in range(warmup):
        run_measured(cmd, **kw)
    runs = [run_measured(cmd, **kw) for _ in range(max(1, repeat))]
    return {
        "wall": statistics.median(r["wall"] for r in runs),
        "walls": [r["wall"] for r in runs],
        "rss_mib": max(r["rss_mib"] for r in runs),
        "cpu": statistics.median(r["cpu"] for r in runs),
        "loads": [r["load"] for r in runs],
    }


def python_cmd(*args: str) -> list[str]:
    return [sys.executable, *args]


def emit_markdown(md: str, path: str | None) -> None:
    """Print a result table and, when asked, write it to a file."""
    print(md)
    if path:
        Path(path).write_text(md + "\n")
