"""End-to-end benchmark: ``superres run`` against the original scripts' method.

One synthetic hand-held burst (16 frames of about 2 MP by default, known
motion, optics blur, decimation, noise, JPEG) is written to a temporary
folder.  In the same run, on the same machine, each method is timed end to end
as a separate process (decode to TIFF written; warm-up, then the median of
``--repeat`` runs) with its peak RSS, and its result is scored by PSNR against
the known truth (sharp, and through the optics blur).

    python -m benchmarks.bench_pipeline [--frames 16] [--width 1632 --height 1224]
                                        [--repeat 3] [--backend numpy] [--markdown out.md]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from superres_gpu.bench.measure import environment, environment_line, median_runs, python_cmd, start_runner
from superres_gpu.geometry import grid_rms_error
from superres_gpu.metrics import psnr
from superres_gpu.synth import recipe_burst


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_pipeline", description=__doc__.split("\n\n")[0])
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--width", type=int, default=1632)
    p.add_argument("--height", type=int, default=1224)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--baseline-repeat", type=int, default=1)
    p.add_argument("--backend", default="numpy")
    p.add_argument("--markdown", help="write the result table (markdown) to this file")
    p.add_argument("--json", help="write the figures as JSON to this file")
    a = p.parse_args(argv)
    start_runner()  # before anything large is allocated (see common.start_runner)
    env = environment()
    print(environment_line(env), file=sys.stderr)
    print(f"rendering a {a.frames}-frame {a.width}x{a.height} burst ...", file=sys.stderr)
    burst = recipe_burst("pipeline", frames=a.frames, width=a.width, height=a.height)
    with tempfile.TemporaryDirectory(prefix="superres_bench_") as tmp:
        tmp = Path(tmp)
        paths = burst.write(tmp / "burst")
        ours_out, base_out, report = tmp / "ours.tif", tmp / "original.tif", tmp / "report.json"
        ours_cmd = python_cmd(
            "-m", "superres_gpu", "run", str(tmp / "burst"), "-o", str(ours_out), "--backend", a.backend,
            "--quiet", "--overwrite", "--report", str(report),
        )
        robust_out, robust_report = tmp / "ours_robust.tif", tmp / "report_robust.json"
        robust_cmd = python_cmd(
            "-m", "superres_gpu", "run", str(tmp / "burst"), "-o", str(robust_out), "--backend", a.backend,
            "--quiet", "--overwrite", "--report", str(robust_report), "--merge", "robust",
        )
        plain_out, plain_report = tmp / "ours_norefine.tif", tmp / "report_norefine.json"
        plain_cmd = python_cmd(
            "-m", "superres_gpu", "run", str(tmp / "burst"), "-o", str(plain_out), "--backend", a.backend,
            "--quiet", "--overwrite", "--report", str(plain_report), "--no-refine",
        )
        base_cmd = python_cmd("-m", "superres_gpu.bench.baselines", "original", *map(str, paths), "-o", str(base_out))
        files_out = tmp / "original_files.tif"
        files_cmd = python_cmd("-m", "superres_gpu.bench.baselines", "original-files", *map(str, paths), "-o",
                               str(files_out))
        print("timing superres run ...", file=sys.stderr)
        ours = median_runs(ours_cmd, a.repeat, warmup=1)
        print("timing superres run --merge robust ...", file=sys.stderr)
        robust = median_runs(robust_cmd, a.repeat, warmup=0)
        print("timing superres run --no-refine ...", file=sys.stderr)
        plain = median_runs(plain_cmd, a.repeat, warmup=0)
        print("timing the original scripts' method, in memory ...", file=sys.stderr)
        base = median_runs(base_cmd, a.baseline_repeat, warmup=0)
        print("timing the original scripts' method, through files as the scripts ran it ...", file=sys.stderr)
        files = median_runs(files_cmd, a.baseline_repeat, warmup=0)
        import tifffile

        from superres_gpu.bench.baselines import single_frame

        ours_img = tifffile.imread(ours_out)
        robust_img = tifffile.imread(robust_out)
        plain_img = tifffile.imread(plain_out)
        rep_plain = json.loads(plain_report.read_text())
        base_img = tifffile.imread(base_out)
        rep = json.loads(report.read_text())
        rep_robust = json.loads(robust_report.read_text())
    single = single_frame(burst.frames[0])

    def align_rms(report: dict) -> float:
        errs = [grid_rms_error(np.array(f["transform"]), T, a.width, a.height)
                for f, T in zip(report["frames"], burst.transforms)]
        return float(np.sqrt(np.mean(np.square(errs))))
    fig = {
        "env": env,
        "burst": {"frames": a.frames, "width": a.width, "height": a.height, "scale": 2.0},
        "ours": {
            "seconds": ours["wall"],
            "runs": ours["walls"],
            "peak_rss_mib": ours["rss_mib"],
            "cpu_seconds": ours["cpu"],
            "loads": ours["loads"],
            "psnr": psnr(ours_img, burst.truth),
            "psnr_blurred": psnr(ours_img, burst.truth_blurred),
            "align_rms_px": align_rms(rep),
            "backend": rep["backend"],
            "merge": rep["merge"],
            "timings": rep["timings"],
            "merge_s_per_frame": rep["timings"]["merge"] / rep["summary"]["used"],
        },
        "ours_robust": {
            "seconds": robust["wall"],
            "runs": robust["walls"],
            "peak_rss_mib": robust["rss_mib"],
            "cpu_seconds": robust["cpu"],
            "psnr": psnr(robust_img, burst.truth),
            "psnr_blurred": psnr(robust_img, burst.truth_blurred),
            "timings": rep_robust["timings"],
            "merge_s_per_frame": rep_robust["timings"]["merge"] / rep_robust["summary"]["used"],
        },
        "ours_norefine": {
            "seconds": plain["wall"],
            "runs": plain["walls"],
            "peak_rss_mib": plain["rss_mib"],
            "psnr": psnr(plain_img, burst.truth),
            "psnr_blurred": psnr(plain_img, burst.truth_blurred),
            "align_rms_px": align_rms(rep_plain),
            "timings": rep_plain["timings"],
        },
        "original": {
            "seconds": base["wall"],
            "runs": base["walls"],
            "peak_rss_mib": base["rss_mib"],
            "cpu_seconds": base["cpu"],
            "loads": base["loads"],
            "psnr": psnr(base_img, burst.truth),
            "psnr_blurred": psnr(base_img, burst.truth_blurred),
        },
        "single": {"psnr": psnr(single, burst.truth), "psnr_blurred": psnr(single, burst.truth_blurred)},
        "original_files": {"seconds": files["wall"], "runs": files["walls"], "peak_rss_mib": files["rss_mib"],
                           "cpu_seconds": files["cpu"], "loads": files["loads"]},
    }
    fig["speedup"] = fig["original"]["seconds"] / fig["ours"]["seconds"]
    fig["speedup_files"] = fig["original_files"]["seconds"] / fig["ours"]["seconds"]
    fig["cpu_ratio"] = fig["original"]["cpu_seconds"] / fig["ours"]["cpu_seconds"]
    fig["speedup_robust"] = fig["original"]["seconds"] / fig["ours_robust"]["seconds"]
    fig["refine_cost"] = fig["ours"]["seconds"] / fig["ours_norefine"]["seconds"]
    fig["merge_ratio"] = fig["ours"]["merge_s_per_frame"] / fig["ours_robust"]["merge_s_per_frame"]
    md = markdown(fig)
    print(md)
    if a.markdown:
        Path(a.markdown).write_text(md + "\n")
    if a.json:
        Path(a.json).write_text(json.dumps(fig, indent=1))
    return 0


def markdown(fig: dict) -> str:
    b = fig["burst"]
    o, g, s, r = fig["ours"], fig["original"], fig["single"], fig["ours_robust"]
    nr = fig["ours_norefine"]
    lines = [
        f"Burst: {b['frames']} frames of {b['width']}x{b['height']} (synthetic, known truth), 2x output.",
        f"Machine: {environment_line(fig['env'])}",
        "",
        "| method | time (s) | peak RSS (MiB) | PSNR vs sharp (dB) | PSNR vs optics-blurred (dB) |",
        "|---|---:|---:|---:|---:|",
        f"| superres run ({o['backend']}; default: --merge {o['merge']}) | {o['seconds']:.2f} | {o['peak_rss_mib']:.0f} | {o['psnr']:.2f} | {o['psnr_blurred']:.2f} |",
        f"| superres run --merge robust | {r['seconds']:.2f} | {r['peak_rss_mib']:.0f} | {r['psnr']:.2f} | {r['psnr_blurred']:.2f} |",
        f"| superres run --no-refine | {nr['seconds']:.2f} | {nr['peak_rss_mib']:.0f} | {nr['psnr']:.2f} | {nr['psnr_blurred']:.2f} |",
        f"| original scripts' method in memory (cubic 2x, AKAZE+RANSAC homography, bilinear, mean) | {g['seconds']:.2f} | {g['peak_rss_mib']:.0f} | {g['psnr']:.2f} | {g['psnr_blurred']:.2f} |",
        f"| the same through 16-bit TIFF files between the steps, as the scripts ran it | {fig['original_files']['seconds']:.2f} | {fig['original_files']['peak_rss_mib']:.0f} | (same image) | |",
        f"| one frame, Lanczos upscale | - | - | {s['psnr']:.2f} | {s['psnr_blurred']:.2f} |",
        "",
        f"Speed-up over the original method in memory: **{fig['speedup']:.1f}x** (target >= 5x); over it through "
        f"files: {fig['speedup_files']:.1f}x. "
        f"Our alignment RMS error over a 16x16 grid: {o['align_rms_px']:.4f} px. "
        f"Our time per stage (s): " + ", ".join(f"{k} {v:.2f}" for k, v in o["timings"].items()) + ". "
        f"With --merge robust: {fig['speedup_robust']:.1f}x; per stage (s): "
        + ", ".join(f"{k} {v:.2f}" for k, v in r["timings"].items()) + ". "
        f"The template (default `--refine`) costs {fig['refine_cost']:.2f}x the run time of `--no-refine`; "
        f"alignment RMS error {o['align_rms_px']:.4f} px with it, {nr['align_rms_px']:.4f} px without. "
        f"Merge stage per frame: kernel {o['merge_s_per_frame']:.3f} s, robust {r['merge_s_per_frame']:.3f} s: "
        f"**{fig['merge_ratio']:.2f}x** (target <= 1.5x).",
        "",
        f"Runs (wall s): ours {', '.join(f'{t:.1f}' for t in o['runs'])}; --merge robust "
        f"{', '.join(f'{t:.1f}' for t in r['runs'])}; --no-refine {', '.join(f'{t:.1f}' for t in nr['runs'])}; "
        f"original in memory "
        f"{', '.join(f'{t:.1f}' for t in g['runs'])}; through files "
        f"{', '.join(f'{t:.1f}' for t in fig['original_files']['runs'])}. Load average (1 min) as each run ended: "
        f"ours {', '.join(f'{x:.1f}' for x in o['loads'])}; original {', '.join(f'{x:.1f}' for x in g['loads'])}; "
        f"through files {', '.join(f'{x:.1f}' for x in fig['original_files']['loads'])}. "
        f"CPU time (user + system, median): ours {o['cpu_seconds']:.1f} s, original in memory "
        f"{g['cpu_seconds']:.1f} s, original / ours {fig['cpu_ratio']:.1f}x (the other work on the machine "
        "changes it less than the wall time).",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
