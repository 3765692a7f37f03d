"""The ``superres`` command line: argparse and rich in front of the pipeline.

Kept thin: options become a :class:`~superres_gpu.pipeline.PipelineConfig`,
progress callbacks become rich progress bars, errors become one line.
"""

from __future__ import annotations

import argparse
import sys
import time

from . import __version__
from .errors import SuperresError

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPT = 0, 1, 2, 130

STAGE_LABELS = {
    "check": "Checking frames",
    "frames": "Aligning + merging",
    "write": "Writing TIFF",
    "render": "Rendering demo burst",
}


class RichProgress:
    """Maps ``progress(stage, done, total)`` calls onto rich progress bars."""

    def __init__(self, console, enabled: bool = True):
        self.console = console
        self.enabled = enabled
        self.progress = None
        self.tasks = {}

    def __enter__(self):
        if self.enabled:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self.progress = Progress(
                TextColumn("[bold]{task.description:<20}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("elapsed"),
                TimeElapsedColumn(),
                TextColumn("eta"),
                TimeRemainingColumn(),
                console=self.console,
                transient=False,
            )
            self.progress.__enter__()
        return self

    def __exit__(self, *exc):
        if self.progress is not None:
            if exc[0] is not None:  # on failure, clear the bars: the error is the one line left
                self.progress.live.transient = True
            self.progress.__exit__(*exc)
        return False

    def __call__(self, stage: str, done: int, total: int) -> None:
        if self.progress is None:
            return
        if stage not in self.tasks:
            self.tasks[stage] = self.progress.add_task(STAGE_LABELS.get(stage, stage), total=total)
        self.progress.update(self.tasks[stage], completed=done, total=total)


def _consoles(quiet: bool):
    from rich.console import Console

    err = Console(stderr=True, highlight=False, soft_wrap=True)
    out = Console(highlight=False, quiet=quiet)
    return out, err


def _warn_to(console):
    def warn(message: str) -> None:
        console.print(f"[yellow]warning:[/] {message}", markup=True, highlight=False)

    return warn


def positive_scale(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (1.0 <= v <= 4.0):
        raise argparse.ArgumentTypeError(f"must be between 1 and 4 (got {text})")
    return v


def build_parser() -> argparse.ArgumentParser:
    from .align import DEFAULT_MODEL
    from .backends import BACKENDS
    from .geometry import MOTION_MODELS
    from .pipeline import COMPRESSIONS

    p = argparse.ArgumentParser(
        prog="superres",
        description="Multi-frame superresolution of hand-held photo bursts.",
    )
    p.add_argument("--version", action="version", version=f"superres_gpu {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--backend", choices=BACKENDS, default="auto", help="compute backend (default: auto)")
    common.add_argument("--quiet", "-q", action="store_true", help="no progress bars or summary")
    common.add_argument("--debug", action="store_true", help="show tracebacks of unexpected errors")

    r = sub.add_parser(
        "run",
        parents=[common],
        help="merge a burst into one high-resolution 16-bit TIFF",
        description="Align every frame of a burst to the reference and merge them at --scale times "
        "the resolution into a 16-bit TIFF.",
    )
    r.add_argument("inputs", nargs="+", metavar="INPUT", help="a folder of frames, or frame files")
    r.add_argument("-o", "--output", required=True, metavar="OUT.tif", help="output TIFF path")
    r.add_argument("--scale", type=positive_scale, default=2.0, help="output scale, 1 to 4 (default 2)")
    r.add_argument(
        "--reference",
        default="first",
        metavar="first|PATH",
        help="frame everything is aligned to (default: the first in name order)",
    )
    r.add_argument(
        "--mask",
        default=None,
        metavar="PATH|none",
        help="mask of moving objects, left out of alignment (default: mask.png beside the frames, if any)",
    )
    r.add_argument(
        "--motion",
        choices=MOTION_MODELS,
        default=DEFAULT_MODEL,
        help=f"global motion model (default: {DEFAULT_MODEL})",
    )
    r.add_argument("--report", metavar="PATH", help="write a JSON report of every frame")
    r.add_argument("--overwrite", action="store_true", help="replace an existing output/report")
    r.add_argument(
        "--compression", choices=COMPRESSIONS, default="none", help="TIFF compression (default: none)"
    )
    r.set_defaults(func=cmd_run)

    d = sub.add_parser(
        "demo",
        parents=[common],
        help="render a synthetic burst with known truth and merge it",
        description="Draw a resolution chart, simulate a hand-held burst of it (known motion, optics blur, "
        "decimation, noise, JPEG), merge it and compare with one frame upscaled, against the truth.",
    )
    d.add_argument("--out", default="superres_demo", metavar="DIR", help="output folder (default: superres_demo)")
    d.add_argument("--frames", type=int, default=16, help="frames in the burst (default 16)")
    d.add_argument("--scale", type=positive_scale, default=2.0, help="output scale (default 2)")
    d.add_argument("--seed", type=int, default=7, help="random seed of the burst")
    d.set_defaults(func=cmd_demo)

    b = sub.add_parser(
        "bench",
        parents=[common],
        help="benchmark alignment accuracy vs speed, reconstruction quality, throughput",
        description="Run the benchmark suite on synthetic bursts with known truth, against OpenCV, "
        "scikit-image and the original scripts' method measured in the same run.",
    )
    _bench_suite_arguments(b)
    b.set_defaults(func=cmd_bench)
    return p


def _bench_module():
    """The benchmark suite: shipped in the wheel as superres_gpu._benchmarks,
    or the checkout's benchmarks/ package (editable installs, source trees)."""
    try:
        from ._benchmarks import suite  # type: ignore[import-not-found]
    except ImportError:
        try:
            from benchmarks import suite  # type: ignore[import-not-found,no-redef]
        except ImportError:
            return None
    return suite


def _bench_suite_arguments(parser) -> None:
    suite = _bench_module()
    if suite is not None:
        suite.add_arguments(parser)


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    out, err = _consoles(getattr(args, "quiet", False))
    try:
        return args.func(args, out, err)
    except SuperresError as e:
        err.print(f"superres: error: {e}", markup=False, highlight=False)
        return EXIT_ERROR
    except KeyboardInterrupt:
        err.print("superres: interrupted; no output was written", markup=False)
        return EXIT_INTERRUPT
    except MemoryError:
        if args.debug:
            raise
        err.print("superres: error: out of memory; try a smaller --scale or fewer frames", markup=False)
        return EXIT_ERROR
    except Exception as e:  # an unexpected bug: one line unless --debug
        if args.debug:
            raise
        err.print(
            f"superres: internal error: {type(e).__name__}: {e} (run with --debug for the traceback)",
            markup=False,
            highlight=False,
        )
        return EXIT_ERROR


def cmd_run(args, out, err) -> int:
    from .pipeline import PipelineConfig, run

    cfg = PipelineConfig(
        inputs=args.inputs,
        output=args.output,
        scale=args.scale,
        backend=args.backend,
        reference=args.reference,
        mask=args.mask,
        motion=args.motion,
        report=args.report,
        overwrite=args.overwrite,
        compression=args.compression,
    )
    t = time.perf_counter()
    with RichProgress(err, enabled=not args.quiet) as prog:
        result = run(cfg, progress=prog, warn=_warn_to(err))
    if not args.quiet:
        print_summary(out, result.report, time.perf_counter() - t)
    return EXIT_OK


def print_summary(console, report: dict, wall: float) -> None:
    from rich.table import Table

    s = report["summary"]
    t = Table(title="superres run", show_header=False, box=None, pad_edge=False)
    t.add_column(style="bold", no_wrap=True)
    t.add_column(overflow="fold")
    t.add_row("frames", f"{s['used']} used, {s['dropped']} dropped of {s['frames']}")
    if s["residual_rms_median"] is not None:
        t.add_row(
            "alignment residual",
            f"{100 * s['residual_rms_median']:.2f}% median, {100 * s['residual_rms_max']:.2f}% max (RMS luma)",
        )
    for f in report["frames"]:
        if not f["used"]:
            t.add_row("dropped", f"{f['path']}: {f['reason']}")
    iw, ih = report["input_size"]
    ow, oh = report["output_size"]
    t.add_row("size", f"{iw}x{ih} -> {ow}x{oh} (scale {report['scale']:g})")
    t.add_row("backend", report["backend"])
    tim = report["timings"]
    stages = ", ".join(f"{k} {tim[k]:.2f}s" for k in ("probe", "decode", "align", "merge", "write") if k in tim)
    t.add_row("time", f"{wall:.2f}s total ({stages})")
    t.add_row("output", report["output"])
    console.print(t)


def cmd_demo(args, out, err) -> int:
    from .demo import run_demo

    with RichProgress(err, enabled=not args.quiet) as prog:
        res = run_demo(
            args.out,
            frames=args.frames,
            scale=args.scale,
            seed=args.seed,
            backend=args.backend,
            progress=prog,
            warn=_warn_to(err),
        )
    if not args.quiet:
        from rich.table import Table

        t = Table(title="superres demo: PSNR against the known truth (higher is better)")
        t.add_column("image")
        t.add_column("vs sharp scene", justify="right")
        t.add_column("vs scene through the optics", justify="right")
        t.add_row("one frame, Lanczos upscale", f"{res['psnr_single']:.2f} dB", f"{res['psnr_single_blurred']:.2f} dB")
        t.add_row(
            f"superres merge of {res['frames']} frames",
            f"{res['psnr_merged']:.2f} dB",
            f"{res['psnr_merged_blurred']:.2f} dB",
        )
        out.print(t)
        out.print(f"result:     {res['output']}")
        out.print(f"comparison: {res['comparison']}")
    return EXIT_OK


def cmd_bench(args, out, err) -> int:
    suite = _bench_module()
    if suite is None:
        from .errors import ConfigError

        raise ConfigError("the benchmark suite is not installed with this copy of superres_gpu")
    with RichProgress(err, enabled=not args.quiet) as prog:
        return suite.run_cli(args, progress=prog)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
