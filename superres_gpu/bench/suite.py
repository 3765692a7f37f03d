"""The benchmark suite behind ``superres bench``.

Sections (each measured in one run, on one machine, baselines included):

1. alignment accuracy against speed, per scenario (static, noisy, rolling
   shutter, large motion): every aligner's RMS error of the frame->reference
   map over a 16x16 grid (px at input resolution), failure rate (no result, or
   an error above 1 px), time per frame (a once-per-burst preparation is
   amortised over the frames), and the Cramer-Rao bound on the translation;
2. reconstruction quality by number of frames: PSNR and SSIM of
   ``superres run``, one frame upscaled with Lanczos, the original scripts'
   pipeline and ECC + mean, against the sharp scene and the scene through the
   optics blur;
3. throughput and memory of ``superres run`` per backend at about 2 MP and
   12 MP: frames/s, MP/s, time per stage, peak RSS and peak GPU memory.

``--smoke`` runs a reduced version (one small scenario, few frames) that
checks its own output, for CI.
"""

from __future__ import annotations

import json
import math
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..geometry import grid_rms_error
from ..metrics import psnr
from ..synth import CameraSpec, MotionSpec, dense_map_error, make_burst, recipe_burst
from .measure import environment, environment_line, python_cmd, run_measured, start_runner
from .quality import ssim, translation_crlb

FAIL_PX = 1.0


@dataclass
class Scenario:
    name: str
    motion: MotionSpec
    camera: CameraSpec
    frames: int
    width: int
    height: int
    factor: int = 8
    description: str = ""


def scenarios(smoke: bool) -> list[Scenario]:
    low = CameraSpec(blur_sigma=0.5, noise_gain=0.0005, noise_floor=0.002, jpeg_quality=95)
    high = CameraSpec(blur_sigma=0.5, noise_gain=0.004, noise_floor=0.02, jpeg_quality=85)
    mid = CameraSpec(blur_sigma=0.5, noise_gain=0.001, noise_floor=0.005, jpeg_quality=92)
    shift_only = MotionSpec(shift_sigma=2.0, rotation_sigma_deg=0.0, zoom_sigma=0.0)
    if smoke:
        return [Scenario("static", shift_only, low, 4, 256, 192, 4, "sub-pixel translations, low noise")]
    return [
        Scenario("static", shift_only, low, 12, 512, 384, 8, "translations (sigma 2 px), ISO-low noise, JPEG 95"),
        Scenario("noisy", shift_only, high, 12, 512, 384, 8, "translations (sigma 2 px), high-ISO noise, JPEG 85"),
        Scenario(
            "rolling shutter",
            MotionSpec(shift_sigma=2.0, rotation_sigma_deg=0.2, zoom_sigma=0.001, rolling_shutter_px=0.3),
            mid, 12, 512, 384, 8, "hand-held motion plus a per-row wobble (sigma 0.3 px)",
        ),
        Scenario(
            "large motion",
            MotionSpec(shift_sigma=25.0, rotation_sigma_deg=0.5, zoom_sigma=0.002),
            mid, 12, 512, 384, 8, "shifts of tens of px (sigma 25), rotation sigma 0.5 deg, zoom 0.2 %",
        ),
    ]


# ----------------------------------------------------------------------------
# 1. alignment accuracy against speed
# ----------------------------------------------------------------------------


def bench_alignment(sc: Scenario, aligners, bursts: int = 3, seed: int = 21, progress=None) -> dict:
    """Errors pooled over ``bursts`` independent bursts: every frame of a burst is
    registered to the same noisy reference, whose noise is a shared error term,
    so one burst alone would be a single draw of it."""
    data = [make_burst(sc.frames, sc.width, sc.height, 2.0, sc.factor, sc.motion, sc.camera, seed=seed + k)
            for k in range(bursts)]
    crlbs = [translation_crlb(b.clean_reference, sc.camera.noise_gain, sc.camera.noise_floor) for b in data]
    crlb = float(np.sqrt(np.mean(np.square(crlbs))))
    rows = []
    for al in aligners:
        if al.unavailable:
            rows.append({"aligner": al.name, "family": al.family, "backend": al.backend, "unavailable": al.unavailable})
            continue
        errs, fails, t_total, n = [], 0, 0.0, 0
        dense = []  # rolling shutter: the map's error against the true per-row motion (field included)
        for burst in data:
            t0 = time.perf_counter()
            if al.align_burst is not None:
                try:
                    ests = al.align_burst(burst.frames)
                except Exception:
                    ests = [None] * (len(burst.frames) - 1)
            else:
                ctx = al.prepare(burst.frames[0])
            t_total += time.perf_counter() - t0
            for j, (f, T) in enumerate(zip(burst.frames[1:], burst.transforms[1:])):
                t0 = time.perf_counter()
                try:
                    est = ests[j] if al.align_burst is not None else al.align(ctx, f)
                except Exception:
                    est = None
                t_total += time.perf_counter() - t0
                n += 1
                field, cell = None, 0.0
                if isinstance(est, tuple):  # (T, displacement field or None, its cell)
                    est, field, cell = est
                err = grid_rms_error(est, T, sc.width, sc.height) if est is not None else math.inf
                if not np.isfinite(err) or err > FAIL_PX:
                    fails += 1
                else:
                    errs.append(err)
                    if sc.motion.rolling_shutter_px > 0:
                        dense.append(dense_map_error(burst, j + 1, np.linalg.inv(est), field, cell)[1])
        rows.append(
            {
                "aligner": al.name,
                "family": al.family,
                "backend": al.backend,
                "rms_px": float(np.sqrt(np.mean(np.square(errs)))) if errs else float("nan"),
                "dense_px": float(np.sqrt(np.mean(dense))) if dense else None,
                "failure_rate": fails / n,
                "ms_per_frame": 1000.0 * t_total / n,
                "note": al.note,
            }
        )
        if progress:
            progress(f"align:{sc.name}", len(rows), len(aligners))
    return {"scenario": sc.name, "description": sc.description, "frames": sc.frames, "bursts": bursts,
            "size": [sc.width, sc.height], "crlb_px": crlb, "rows": rows}


# ----------------------------------------------------------------------------
# 2. reconstruction quality
# ----------------------------------------------------------------------------


def bench_reconstruction(counts, width: int, height: int, seed: int = 31, progress=None, backend: str = "numpy") -> dict:
    import tifffile

    from ..pipeline import PipelineConfig, run
    from .baselines import ecc_pipeline, original_pipeline, single_frame

    burst = recipe_burst("reconstruction", frames=max(counts), width=width, height=height, seed=seed)
    rows = []
    with tempfile.TemporaryDirectory(prefix="superres_recon_") as tmp:
        tmp = Path(tmp)
        paths = burst.write(tmp / "all")
        for k, n in enumerate(counts):
            d = tmp / f"n{n}"
            d.mkdir()
            for p in paths[:n]:
                (d / p.name).symlink_to(p)
            run(PipelineConfig(inputs=[str(d)], output=str(tmp / f"ours{n}.tif"), backend=backend))
            results = {
                "superres run": tifffile.imread(tmp / f"ours{n}.tif"),
                "one frame, Lanczos": single_frame(burst.frames[0]),
                "original scripts' pipeline": original_pipeline(burst.frames[:n])[0],
                "ECC homography + mean": ecc_pipeline(burst.frames[:n])[0],
            }
            for method, img in results.items():
                rows.append(
                    {
                        "frames": n,
                        "method": method,
                        "psnr": psnr(img, burst.truth, margin=8),
                        "ssim": ssim(img, burst.truth, margin=8),
                        "psnr_blurred": psnr(img, burst.truth_blurred, margin=8),
                        "ssim_blurred": ssim(img, burst.truth_blurred, margin=8),
                    }
                )
            if progress:
                progress("reconstruction", k + 1, len(counts))
    return {"size": [width, height], "counts": list(counts), "rows": rows}


# ----------------------------------------------------------------------------
# 2b. culling and moving objects
# ----------------------------------------------------------------------------

NOISE_LEVELS = {
    "low ISO": CameraSpec(noise_gain=0.0005, noise_floor=0.002, jpeg_quality=95),
    "mid ISO": CameraSpec(noise_gain=0.002, noise_floor=0.008, jpeg_quality=92),
    "high ISO": CameraSpec(noise_gain=0.008, noise_floor=0.03, jpeg_quality=85),
}


def bench_culling(seeds: int, frames: int, width: int, height: int, progress=None) -> dict:
    """Precision and recall of blur flagging, known shaken frames, per noise level."""
    from ..cull import flag_blurred, score_burst
    from ..discover import probe

    rows = []
    with tempfile.TemporaryDirectory(prefix="superres_cull_") as tmp:
        for level, cam in NOISE_LEVELS.items():
            tp = fp = fn = 0
            t = 0.0
            n = 0
            for seed in range(seeds):
                rng = np.random.default_rng(1000 + seed)
                idx = rng.choice(np.arange(1, frames), max(1, frames // 4), replace=False)
                shake = {int(i): (float(rng.uniform(3, 6)), float(rng.uniform(0, 180))) for i in idx}
                b = make_burst(frames, width, height, 2.0, 4, MotionSpec(shift_sigma=2, rotation_sigma_deg=0.2), cam,
                               seed=seed, shake=shake)
                paths = b.write(Path(tmp) / f"{level}_{seed}")
                t0 = time.perf_counter()
                scores = flag_blurred(score_burst([probe(p) for p in paths]))
                t += time.perf_counter() - t0
                n += len(paths)
                for i, s in enumerate(scores):
                    tp += s.flagged and i in shake
                    fp += s.flagged and i not in shake
                    fn += (not s.flagged) and i in shake
            rows.append({"noise": level, "precision": tp / max(1, tp + fp), "recall": tp / max(1, tp + fn),
                         "blurred": tp + fn, "frames": n, "ms_per_frame": 1000 * t / n})
            if progress:
                progress("culling", len(rows), len(NOISE_LEVELS))
    return {"size": [width, height], "rows": rows}


def bench_movers(width: int, height: int, frames: int, progress=None) -> dict:
    """PSNR inside and outside regions where objects moved: robust vs mean vs the original pipeline."""
    import tifffile

    from ..pipeline import PipelineConfig, run
    from ..synth import Mover, mover_mask
    from .baselines import original_pipeline, single_frame

    rng = np.random.default_rng(77)
    movers = []
    for k in range(1, frames, 2):  # a passer-by in every other frame, each somewhere else
        w, h = int(width * rng.uniform(0.15, 0.3)), int(height * rng.uniform(0.2, 0.4))
        movers.append(Mover(k, int(rng.uniform(0, width - w)), int(rng.uniform(0, height - h)), w, h, k))
    cam = NOISE_LEVELS["mid ISO"]
    b = make_burst(frames, width, height, 2.0, 4, MotionSpec(shift_sigma=2.5, rotation_sigma_deg=0.25), cam,
                   seed=12, movers=movers)
    moving = mover_mask(b)
    rows = []
    with tempfile.TemporaryDirectory(prefix="superres_movers_") as tmp:
        b.write(Path(tmp) / "b")
        results, align_err = {}, {}
        for merge, refine in (("robust", False), ("mean", False), ("robust", True)):
            out = Path(tmp) / f"{merge}{refine}.tif"
            rep = run(PipelineConfig(inputs=[str(Path(tmp) / "b")], output=str(out), merge=merge, cull=False,
                                     refine=refine)).report
            name = f"superres run --merge {merge}" + (" --refine" if refine else "")
            results[name] = tifffile.imread(out)
            e = [grid_rms_error(np.array(f["transform"]), T, width, height) if f["used"] else math.inf
                 for f, T in zip(rep["frames"][1:], b.transforms[1:])]
            align_err[name] = float(np.sqrt(np.mean(np.square(e))))
        results["original scripts' pipeline"] = original_pipeline(b.frames)[0]
        results["one frame (the reference), Lanczos"] = single_frame(b.frames[0])
    for name, img in results.items():
        rows.append({
            "method": name,
            "psnr_moving": psnr(img, b.truth_blurred, mask=moving),
            "psnr_static": psnr(img, b.truth_blurred, mask=~moving),
            "align_rms_px": align_err.get(name),  # map error of the frames, ours only
        })
    if progress:
        progress("movers", 1, 1)
    return {"size": [width, height], "frames": frames, "movers": len(movers),
            "moving_fraction": float(moving.mean()), "rows": rows}


# ----------------------------------------------------------------------------
# 3. throughput and memory
# ----------------------------------------------------------------------------


def throughput_burst(folder: Path, frames: int, width: int, height: int, workers: int | None = None) -> list[Path]:
    """Write the ``throughput`` recipe's burst (large frames, no truth) as JPEG files."""
    import os

    b = recipe_burst("throughput", frames=frames, width=width, height=height, truth=False, decoded=False,
                     workers=workers or max(2, os.cpu_count() or 2))
    return b.write(folder, prefix="IMG")


def bench_throughput(configs, backends, progress=None) -> dict:
    rows = []
    with tempfile.TemporaryDirectory(prefix="superres_tput_") as tmp:
        tmp = Path(tmp)
        for label, w, h, n in configs:
            throughput_burst(tmp / label, n, w, h)
            for b in backends:
                out, rep = tmp / f"{label}_{b}.tif", tmp / f"{label}_{b}.json"
                cmd = python_cmd("-m", "superres_gpu", "run", str(tmp / label), "-o", str(out), "--backend", b,
                                 "--quiet", "--overwrite", "--report", str(rep))
                r = run_measured(cmd)
                report = json.loads(rep.read_text())
                rows.append(
                    {
                        "size": label,
                        "width": w,
                        "height": h,
                        "frames": n,
                        "backend": b,
                        "seconds": r["wall"],
                        "frames_per_s": n / r["wall"],
                        "mp_per_s": n * w * h / 1e6 / r["wall"],
                        "peak_rss_mib": r["rss_mib"],
                        "peak_gpu_mib": report.get("peak_gpu_mib"),
                        "timings": report["timings"],
                    }
                )
                if progress:
                    progress("throughput", len(rows), len(configs) * len(backends))
    return {"rows": rows}


# ----------------------------------------------------------------------------
# the suite
# ----------------------------------------------------------------------------


def available_backends() -> list[str]:
    from ..backends import cupy_unavailable_reason

    return ["numpy"] + (["cupy"] if cupy_unavailable_reason() is None else [])


SECTIONS = ("alignment", "reconstruction", "culling", "movers", "throughput")


def run_suite(smoke: bool = False, sections=SECTIONS, backends=None, progress=None) -> dict:
    from .aligners import all_aligners

    start_runner()
    backends = backends or available_backends()
    res: dict = {"env": environment(), "smoke": smoke, "backends": backends}
    t0 = time.perf_counter()
    if "alignment" in sections:
        aligners = all_aligners(backends)
        res["alignment"] = [bench_alignment(sc, aligners, 1 if smoke else 3, progress=progress) for sc in scenarios(smoke)]
    if "reconstruction" in sections:
        counts = (4,) if smoke else (4, 8, 16, 32, 64)
        size = (192, 144) if smoke else (512, 384)
        res["reconstruction"] = bench_reconstruction(counts, *size, progress=progress)
    if "culling" in sections:
        res["culling"] = bench_culling(1 if smoke else 4, 8 if smoke else 12, *((192, 144) if smoke else (320, 240)),
                                       progress=progress)
    if "movers" in sections:
        res["movers"] = bench_movers(*((192, 144) if smoke else (320, 240)), 6 if smoke else 12, progress=progress)
    if "throughput" in sections:
        configs = [("0.3MP", 640, 480, 3)] if smoke else [("2MP", 1632, 1224, 16), ("12MP", 4000, 3000, 6)]
        res["throughput"] = bench_throughput(configs, backends, progress=progress)
    res["seconds"] = time.perf_counter() - t0
    return res


def check(res: dict) -> list[str]:
    """Self-check of a suite result; returns the problems found (empty: fine)."""
    from .aligners import all_aligners

    problems = []
    expected = {a.name for a in all_aligners(res["backends"])}
    for sec in res.get("alignment", []):
        names = {r["aligner"] for r in sec["rows"]}
        if names != expected:
            problems.append(f"{sec['scenario']}: aligner rows missing: {sorted(expected - names)}")
        crlb = sec["crlb_px"]
        if not (np.isfinite(crlb) and crlb > 0):
            problems.append(f"{sec['scenario']}: CRLB {crlb} is not a positive number")
        for r in sec["rows"]:
            if "unavailable" in r:
                problems.append(f"{sec['scenario']}: {r['aligner']} unavailable: {r['unavailable']}")
                continue
            if not np.isfinite(r["rms_px"]):
                problems.append(f"{sec['scenario']}: {r['aligner']} has no finite error (all frames failed)")
            elif r["rms_px"] < crlb:
                problems.append(f"{sec['scenario']}: {r['aligner']} error {r['rms_px']:.5f} px is below the CRLB {crlb:.5f}")
            if not (np.isfinite(r["ms_per_frame"]) and r["ms_per_frame"] > 0):
                problems.append(f"{sec['scenario']}: {r['aligner']} time is not positive")
    for r in res.get("reconstruction", {}).get("rows", []):
        if not (np.isfinite(r["psnr"]) and 0 < r["ssim"] <= 1):
            problems.append(f"reconstruction: bad figures for {r['method']} at {r['frames']} frames")
    for r in res.get("culling", {}).get("rows", []):
        if not (0 <= r["precision"] <= 1 and 0 <= r["recall"] <= 1 and r["blurred"] > 0):
            problems.append(f"culling: bad figures at {r['noise']}")
    for r in res.get("movers", {}).get("rows", []):
        if not (np.isfinite(r["psnr_moving"]) and np.isfinite(r["psnr_static"])):
            problems.append(f"movers: bad figures for {r['method']}")
    for r in res.get("throughput", {}).get("rows", []):
        if not r["seconds"] > 0:
            problems.append(f"throughput: {r['size']} {r['backend']} did not run")
    return problems


# ----------------------------------------------------------------------------
# output
# ----------------------------------------------------------------------------


def _fmt(v, spec=".4f"):
    if v is None:
        return "-"
    if isinstance(v, float) and not np.isfinite(v):
        return "-"
    return format(v, spec)


def markdown(res: dict) -> str:
    L = [f"Machine: {environment_line(res['env'])}" + (" (smoke run)" if res["smoke"] else ""), ""]
    for sec in res.get("alignment", []):
        w, h = sec["size"]
        crlb = sec["crlb_px"]
        L += [
            f"### Alignment: {sec['scenario']} ({sec['description']}; {sec.get('bursts', 1)} bursts of "
            f"{sec['frames']} frames of {w}x{h})",
            "",
            f"Cramér-Rao bound on the translation error: **{crlb:.4f} px** (RMS).",
            "",
        ]
        dense = any(r.get("dense_px") is not None for r in sec["rows"])
        L += [
            "| aligner | backend | RMS error (px) | x CRLB |" + (" dense error (px) |" if dense else "")
            + " failures | ms/frame |",
            "|---|---|---:|---:|" + ("---:|" if dense else "") + "---:|---:|",
        ]
        if dense:
            L[-2:-2] = ["The RMS error is the global part of the map (against the true frame transform); the dense "
                        "error is where each frame is read against where it truly shows each point, the per-row "
                        "wobble included (the local field too, where an aligner makes one).", ""]
        for r in sec["rows"]:
            if "unavailable" in r:
                L.append(f"| {r['aligner']} | {r['backend']} | unavailable: {r['unavailable']} | |"
                         + (" |" if dense else "") + " | |")
                continue
            ratio = r["rms_px"] / crlb if np.isfinite(r["rms_px"]) else float("nan")
            d = r.get("dense_px")
            L.append(
                f"| {r['aligner']} | {r['backend']} | {_fmt(r['rms_px'])} | {_fmt(ratio, '.1f')} | "
                + (f"{_fmt(d) if d is not None else '-'} | " if dense else "")
                + f"{100 * r['failure_rate']:.0f}% | {_fmt(r['ms_per_frame'], '.1f')} |"
            )
        L.append("")
        L += goal_lines(sec)
        L.append("")
    rec = res.get("reconstruction")
    if rec:
        w, h = rec["size"]
        L += [
            f"### Reconstruction quality ({w}x{h} frames, 2x output; PSNR dB / SSIM)",
            "",
            "| frames | method | vs sharp scene | vs scene through the optics |",
            "|---:|---|---:|---:|",
        ]
        for r in rec["rows"]:
            L.append(f"| {r['frames']} | {r['method']} | {r['psnr']:.2f} / {r['ssim']:.4f} | "
                     f"{r['psnr_blurred']:.2f} / {r['ssim_blurred']:.4f} |")
        L += [""] + reconstruction_goal_lines(rec) + [""]
    cu = res.get("culling")
    if cu:
        w, h = cu["size"]
        L += [
            f"### Blur culling ({w}x{h} frames; a quarter of each burst shaken by 3-6 px)",
            "",
            "| noise | frames | blurred | precision | recall | ms/frame |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for r in cu["rows"]:
            L.append(f"| {r['noise']} | {r['frames']} | {r['blurred']} | {r['precision']:.2f} | {r['recall']:.2f} | "
                     f"{r['ms_per_frame']:.1f} |")
        ok = all(r["precision"] >= 0.9 and r["recall"] >= 0.9 for r in cu["rows"])
        L += ["", f"Goal check: precision and recall at least 0.9 at every noise level: {'met' if ok else 'NOT met'}.", ""]
    mv = res.get("movers")
    if mv:
        w, h = mv["size"]
        L += [
            f"### Moving objects ({mv['frames']} frames of {w}x{h}, {mv['movers']} passers-by, "
            f"{100 * mv['moving_fraction']:.0f}% of the picture; PSNR vs the scene through the optics, dB)",
            "",
            "| method | where objects moved | static regions |",
            "|---|---:|---:|",
        ]
        for r in mv["rows"]:
            L.append(f"| {r['method']} | {r['psnr_moving']:.2f} | {r['psnr_static']:.2f} |")
        by = {r["method"]: r for r in mv["rows"]}
        rob, mean = by["superres run --merge robust"], by["superres run --merge mean"]
        one = by["one frame (the reference), Lanczos"]
        L += ["", f"Goal check: in moving regions robust {rob['psnr_moving']:.2f} dB vs the reference's own "
                  f"{one['psnr_moving']:.2f} dB and the plain mean {mean['psnr_moving']:.2f} dB (ghosts); in static "
                  f"regions robust and mean differ by {abs(rob['psnr_static'] - mean['psnr_static']):.2f} dB "
                  f"(goal < 0.2 dB: {'met' if abs(rob['psnr_static'] - mean['psnr_static']) < 0.2 else 'NOT met'}).", ""]
    tp = res.get("throughput")
    if tp:
        L += [
            "### Throughput and memory (`superres run`, JPEG in, TIFF out, 2x)",
            "",
            "| size | frames | backend | s | frames/s | MP/s | peak RSS (MiB) | peak GPU (MiB) | stages (s) |",
            "|---|---:|---|---:|---:|---:|---:|---:|---|",
        ]
        for r in tp["rows"]:
            st = ", ".join(f"{k} {v:.2f}" for k, v in r["timings"].items() if k != "total")
            L.append(f"| {r['size']} ({r['width']}x{r['height']}) | {r['frames']} | {r['backend']} | {r['seconds']:.2f} | "
                     f"{r['frames_per_s']:.2f} | {r['mp_per_s']:.1f} | {r['peak_rss_mib']:.0f} | "
                     f"{_fmt(r['peak_gpu_mib'], '.0f')} | {st} |")
        L.append("")
    return "\n".join(L)


def goal_lines(sec: dict) -> list[str]:
    """Plain statements of the goals for static and noisy scenes."""
    if sec["scenario"] not in ("static", "noisy"):
        return []
    crlb = sec["crlb_px"]
    out = []
    ok_rows = [r for r in sec["rows"] if "unavailable" not in r and np.isfinite(r["rms_px"])]
    others = [r for r in ok_rows if r["family"] in ("OpenCV", "scikit-image")]
    for backend in sorted({r["backend"] for r in ok_rows if r["family"] == "superres_gpu"}):
        ours = [r for r in ok_rows if r["family"] == "superres_gpu" and r["backend"] == backend]
        best = min(ours, key=lambda r: r["rms_px"])
        if not others:
            continue
        rival = min(others, key=lambda r: r["rms_px"])
        ratio_crlb = best["rms_px"] / crlb
        gain = rival["rms_px"] / best["rms_px"]
        faster = best["ms_per_frame"] <= rival["ms_per_frame"]
        out.append(
            f"Goal check ({backend}): best of ours ({best['aligner']}) is {ratio_crlb:.2f}x the CRLB "
            f"(goal <= 1.5x: {'met' if ratio_crlb <= 1.5 else 'NOT met'}); {gain:.1f}x lower error than the best "
            f"OpenCV/scikit-image routine ({rival['aligner']}) (goal >= 2x: {'met' if gain >= 2 else 'NOT met'}), at "
            f"{best['ms_per_frame']:.1f} vs {rival['ms_per_frame']:.1f} ms/frame "
            f"(goal: equal or lower: {'met' if faster else 'NOT met'})."
        )
    return out


def reconstruction_goal_lines(rec: dict) -> list[str]:
    by = {}
    for r in rec["rows"]:
        by.setdefault(r["method"], {})[r["frames"]] = r
    ours = by.get("superres run", {})
    lines = []
    beats = all(
        ours[n]["psnr"] > max(by[m][n]["psnr"] for m in ("original scripts' pipeline", "ECC homography + mean"))
        for n in rec["counts"]
    )
    ps = [ours[n]["psnr"] for n in rec["counts"]]
    rising = all(b >= a - 0.02 for a, b in zip(ps, ps[1:]))
    lines.append(
        f"Goal check: PSNR (vs sharp scene) above ECC + mean and the original pipeline at every frame count: "
        f"{'met' if beats else 'NOT met'}; rising with the frame count: {'met' if rising else 'NOT met'} "
        f"({' -> '.join(f'{p:.2f}' for p in ps)} dB)."
    )
    return lines


def plot(res: dict, path: str) -> None:
    """Scatter of alignment error against time per frame, one panel per scenario."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    secs = res.get("alignment", [])
    if not secs:
        return
    fig, axes = plt.subplots(1, len(secs), figsize=(5.2 * len(secs), 4.6), squeeze=False)
    markers = {"superres_gpu": "o", "OpenCV": "s", "scikit-image": "^", "original scripts": "D"}
    for ax, sec in zip(axes[0], secs):
        for r in sec["rows"]:
            if "unavailable" in r or not np.isfinite(r["rms_px"]):
                continue
            ax.scatter(r["ms_per_frame"], r["rms_px"], marker=markers.get(r["family"], "x"),
                       label=f"{r['aligner']} [{r['backend']}]", s=40)
        ax.axhline(sec["crlb_px"], color="k", ls="--", lw=1, label="Cramér-Rao bound (translation)")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("time per frame (ms)")
        ax.set_ylabel("RMS error of the frame map (px)")
        ax.set_title(sec["scenario"])
        ax.grid(True, which="both", alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=7, frameon=False)
    fig.tight_layout(rect=(0, 0.16, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def build_parser(prog: str = "python -m superres_gpu.bench.suite"):

    from ..backends import BACKENDS

    from ..cli import OneLineParser

    p = OneLineParser(prog=prog, description="Benchmark alignment accuracy against speed, reconstruction quality "
                      "and throughput, each against its baselines in the same run.")
    p.add_argument("--smoke", action="store_true", help="small, fast run that checks its own output (CI)")
    p.add_argument("--sections", default=",".join(SECTIONS), help="comma-separated: " + ", ".join(SECTIONS))
    p.add_argument("--json", metavar="PATH", help="write every figure as JSON")
    p.add_argument("--markdown", metavar="PATH", help="write the tables as Markdown")
    p.add_argument("--plot", metavar="PATH.png", help="write the error-vs-time scatter plot")
    p.add_argument("--backend", choices=BACKENDS, default="auto",
                   help="auto: every backend this machine can run (default); numpy or cupy: that one only")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
    p.add_argument("--debug", action="store_true", help="show tracebacks of unexpected errors")
    return p


def main(argv=None) -> int:
    return run_cli(build_parser().parse_args(argv))


def run_cli(a, progress=None) -> int:
    from ..errors import ConfigError

    sections = tuple(s.strip() for s in a.sections.split(",") if s.strip())
    unknown = [s for s in sections if s not in SECTIONS]
    if unknown:
        raise ConfigError(f"unknown benchmark section {unknown[0]!r}; choose from {', '.join(SECTIONS)}")
    backends = None if a.backend == "auto" else [a.backend]
    if backends == ["cupy"]:
        from ..backends import get_backend

        get_backend("cupy")  # a clear error when no GPU is usable
    res = run_suite(smoke=a.smoke, sections=sections, backends=backends, progress=progress)
    md = markdown(res)
    print(md)
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=1, default=float))
    if a.markdown:
        Path(a.markdown).write_text(md + "\n")
    if a.plot:
        plot(res, a.plot)
    problems = check(res) if a.smoke else []
    for prob in problems:
        print(f"bench: check failed: {prob}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
