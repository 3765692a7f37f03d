"""The ``superres`` command line: argparse and rich in front of the pipeline.

Kept thin: options become a :class:`~superres_gpu.pipeline.PipelineConfig`,
progress callbacks become rich progress bars, errors become one line.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import signal
import sys
import threading
import time

from . import __version__
from .errors import SuperresError, describe, one_line, shown

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPT = 0, 1, 2, 130

STAGE_LABELS = {
    "check": "Checking frames",
    "frames": "Aligning + merging",
    "write": "Writing output",
    "render": "Rendering demo burst",
    "robust": "Robust merge (to compare)",
    "cull": "Scoring sharpness",
}


class Terminated(KeyboardInterrupt):
    """SIGTERM, SIGHUP or SIGQUIT, raised where the program is so that it unwinds like Ctrl-C
    (every temporary output removed)."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


_STOP_SIGNALS = tuple(getattr(signal, n) for n in ("SIGTERM", "SIGHUP", "SIGQUIT") if hasattr(signal, n))
_ALL_SIGNALS = (signal.SIGINT, *_STOP_SIGNALS)


class _StopSignals:
    """Within the block, SIGTERM, SIGHUP and SIGQUIT behave like Ctrl-C, and
    the first of them (or Ctrl-C) makes the program deaf to the others, so
    that they do not interrupt the clean-up (temporary outputs removed, the
    one line printed).  :meth:`restore` puts the handlers back; the console
    command leaves them deaf once a signal came, up to its exit (main thread
    only; elsewhere nothing changes)."""

    def __init__(self):
        self.old = {}
        self.caught = False
        self.written = False

    def deafen(self) -> None:
        """From here on the signals are ignored (the outputs are being committed)."""
        self.caught = True

    def outputs_written(self) -> None:
        """The outputs are in place: a signal from here on ends the command at
        once, with its line and status (whatever it still prints, a summary
        into a stalled pipe, say, is not worth waiting for)."""
        self.written = True

    def _exit_now(self, signum):
        _exit_by_signal(signum, "the outputs were written")

    # After the first signal the handlers stay and do nothing (rather than SIG_IGN: a signal already on its
    # way when the disposition changes would come out as "OSError: Signal 2 ignored due to race condition").
    def _on_interrupt(self, signum, frame):
        if self.written:
            self._exit_now(signum)
        if not self.caught:
            self.caught = True
            raise KeyboardInterrupt

    def _on_stop(self, signum, frame):
        if self.written:
            self._exit_now(signum)
        if not self.caught:
            self.caught = True
            raise Terminated(signum)

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for s in _ALL_SIGNALS:
                if signal.getsignal(s) is signal.SIG_IGN:  # ignored by whoever started us (nohup): stays so
                    continue
                self.old[s] = signal.signal(s, self._on_interrupt if s == signal.SIGINT else self._on_stop)
        return self

    def __exit__(self, *exc):
        return False

    def restore(self) -> None:
        for s, h in self.old.items():
            signal.signal(s, h)
        self.old = {}


class RichProgress:
    """Maps ``progress(stage, done, total)`` calls onto rich progress bars."""

    def __init__(self, console, enabled: bool = True):
        self.console = console
        self.enabled = enabled
        self.progress = None
        self.tasks = {}
        self.lock = threading.Lock()

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
                # (Progress.stop would add a blank line after the bars where stderr is no terminal)
                self.progress.live.stop()
            else:
                self.progress.__exit__(*exc)
        return False

    def __call__(self, stage: str, done: int, total: int) -> None:
        if self.progress is None:
            return
        with self.lock:  # the culling pass reports from its own threads
            self._update(stage, done, total)

    def _update(self, stage: str, done: int, total: int) -> None:
        if stage not in self.tasks:
            self.tasks[stage] = self.progress.add_task(STAGE_LABELS.get(stage, stage), total=total)
        self.progress.update(self.tasks[stage], completed=done, total=total)


def _consoles(quiet: bool):
    from rich.console import Console

    class _Console(Console):
        def on_broken_pipe(self) -> None:
            # the reader went away (superres run ... | head -1): what is left to print is dropped; the command's
            # work is done or goes on, and its status says how it went (rich's own choice is to exit with 1)
            self.quiet = True
            try:
                import os

                null = os.open(os.devnull, os.O_WRONLY)
                os.dup2(null, self.file.fileno())
                os.close(null)
            except (OSError, ValueError, AttributeError):
                pass

    err = _Console(stderr=True, highlight=False, soft_wrap=True)
    out = _Console(highlight=False, quiet=quiet)
    return out, err


def _plain(text):
    """A table cell shown as it is: a file name with ``[`` in it is not rich markup."""
    from rich.text import Text

    return Text(one_line(text))


def _warn_to(console):
    def warn(message: str) -> None:
        from rich.text import Text

        console.print(Text.assemble("superres: ", ("warning:", "yellow"), " ", one_line(message)), highlight=False)

    return warn


def _argtype(check, *args):
    """An argparse type from one of :mod:`superres_gpu.options`' checks."""
    from .errors import ConfigError

    def convert(text: str):
        try:
            return check(text, *args)
        except ConfigError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    return convert


class OneLineParser(argparse.ArgumentParser):
    """An argparse parser whose errors are one line, as every other error of
    ``superres`` is (``superres: error: ...``, exit status 2), instead of the
    usage block and the message; ``--help`` still shows the usage."""

    def error(self, message: str):
        self._refuse(message, self.prog)

    def _refuse(self, message: str, prog: str):
        self.exit(EXIT_USAGE, f"superres: error: {one_line(message)} (see {prog} --help)\n")

    def parse_args(self, args=None, namespace=None):
        # the top-level parser reports what the sub-command left over: the hint names that sub-command's help
        ns, extras = self.parse_known_args(args, namespace)
        if extras:
            prog = self.prog
            for action in self._actions:
                if isinstance(action, argparse._SubParsersAction) and getattr(ns, action.dest, None) in action.choices:
                    prog = action.choices[getattr(ns, action.dest)].prog
            self._refuse(f"unrecognized arguments: {' '.join(extras)}", prog)
        return ns


def _positive_int(option: str, least: int = 1):
    """An argparse type: an integer of at least ``least``, else an error naming ``option``."""

    def convert(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{option} must be a whole number (got {text!r})") from None
        if value < least:
            raise argparse.ArgumentTypeError(f"{option} must be at least {least} (got {value})")
        return value

    return convert


def _merge_options(p) -> None:
    """The options ``run`` and ``batch`` share: how a burst is aligned and merged."""
    from .align import DEFAULT_MODEL, MOTION_CHOICES
    from .kernelmerge import KERNEL_SHAPES
    from .options import (DEFAULT_LOCAL, DEFAULT_MERGE, DEFAULT_REFINE, DEFAULT_TCA, LOCAL_CHOICES, MERGES,
                          TCA_CHOICES, check_sharpen)

    p.add_argument(
        "--motion",
        choices=MOTION_CHOICES,
        default=DEFAULT_MODEL,
        help=f"global motion model; auto: the simplest the first frames need (default: {DEFAULT_MODEL})",
    )
    p.add_argument(
        "--merge",
        choices=MERGES,
        default=DEFAULT_MERGE,
        help="kernel: place every frame's samples where they fell on the output grid (kernel regression), "
        "leaving out, per pixel, what moved between frames (no ghosts), then restore; kernel-mean: the same "
        "without leaving anything out; robust: resample each frame (Lanczos) and leave out what moved; "
        f"mean: plain average of the resampled frames (default: {DEFAULT_MERGE})",
    )
    p.add_argument(
        "--kernel-shape",
        choices=KERNEL_SHAPES,
        default="anisotropic",
        help="the kernel merge's kernel: anisotropic (stretched along the reference's edges, narrow across them, "
        "round where it is flat) or isotropic (default: anisotropic)",
    )
    p.add_argument(
        "--cull",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="leave out frames blurred relative to the rest of the burst (default: on)",
    )
    p.add_argument(
        "--sharpen",
        nargs="?",
        const="auto",
        default="auto",
        type=_argtype(check_sharpen),
        metavar="off|auto|AMOUNT",
        help="restoration after the merge: undo the blur of the merge's own resampling (with --merge kernel: "
        "of the optics, the pixels and the kernel, as far as the measured noise allows); AMOUNT restores "
        "that many times as far as auto (default: auto)",
    )
    p.add_argument("--no-sharpen", dest="sharpen", action="store_const", const="off",
                   help="no restoration (the same as --sharpen off)")
    p.add_argument("--gamma", choices=("linear", "srgb"), default="linear",
                   help="raw (DNG) frames are merged in linear light; linear: keep the output linear (default), "
                   "srgb: apply the sRGB curve")
    p.add_argument(
        "--tca",
        choices=TCA_CHOICES,
        default=DEFAULT_TCA,
        help="lateral chromatic aberration, estimated on the reference and corrected inside the merge's "
        "resampling: on, auto (when it moves a channel at a corner by more than three standard errors and "
        "0.1 px, 0.15 px per chroma subsampling factor on JPEG or HEIC frames with subsampled colour and on raw "
        f"Bayer frames: 0.3 px for 4:2:0) or off (default: {DEFAULT_TCA})",
    )
    p.add_argument(
        "--local",
        choices=LOCAL_CHOICES,
        default=DEFAULT_LOCAL,
        help="local refinement after the global motion model: a smooth displacement field per frame from "
        "overlapping tiles (rolling-shutter wobble, parallax), applied inside the merge's resampling: on, auto "
        f"(where the field is significant against its uncertainty) or off (default: {DEFAULT_LOCAL})",
    )
    p.add_argument(
        "--refine",
        action=argparse.BooleanOptionalAction,
        default=DEFAULT_REFINE,
        help="align every frame against a denoised template (the reference and the first four other frames "
        "merged, brought back to the frames' grid) instead of the noisy reference alone: up to half the "
        "alignment error on bursts that mostly shift, for four extra alignments per burst (default: on)",
    )


def build_parser() -> argparse.ArgumentParser:
    from .backends import BACKENDS
    from .cull import DEFAULT_THRESHOLD
    from .options import COMPRESSIONS, FORMATS, check_fraction, check_megapixels, check_optics_sigma, check_scale
    from .resources import DEFAULT_MAX_MEGAPIXELS
    from .restore import DEFAULT_OPTICS_SIGMA

    p = OneLineParser(
        prog="superres",
        description="Multi-frame superresolution of hand-held photo bursts.",
    )
    p.add_argument("--version", action="version", version=f"superres_gpu {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    base = argparse.ArgumentParser(add_help=False)
    base.add_argument("--quiet", "-q", action="store_true", help="no progress bars or summary")
    base.add_argument("--debug", action="store_true", help="show tracebacks of unexpected errors")
    common = argparse.ArgumentParser(add_help=False, parents=[base])
    common.add_argument("--backend", choices=BACKENDS, default="auto", help="compute backend (default: auto)")

    r = sub.add_parser(
        "run",
        parents=[common],
        help="merge a burst into one high-resolution 16-bit TIFF (or PNG, or float TIFF)",
        description="Align every frame of a burst to the reference and merge them at --scale times "
        "the resolution into a 16-bit TIFF (or 16-bit PNG, or 32-bit float TIFF).",
    )
    r.add_argument("inputs", nargs="+", metavar="INPUT", help="a folder of frames, or frame files")
    r.add_argument("-o", "--output", required=True, metavar="OUT.tif",
                   help="output path: .tif/.tiff for a 16-bit TIFF, .png for a 16-bit PNG")
    r.add_argument("--format", choices=FORMATS, default=None,
                   help="output format: tiff16, png16, or tiff32f (32-bit float TIFF, 1.0 = the input's "
                   "full scale); default: from the output's name")
    r.add_argument("--scale", type=_argtype(check_scale), default=2.0, help="output scale, 1 to 4 (default 2)")
    r.add_argument(
        "--reference",
        default="first",
        metavar="first|sharpest|PATH",
        help="frame everything is aligned to (default: the first in name order; sharpest: the sharpest "
        "frame that agrees best with the others)",
    )
    r.add_argument(
        "--mask",
        default=None,
        metavar="PATH|none",
        help="mask of moving objects, left out of alignment (default: mask.png beside the frames, if any)",
    )
    _merge_options(r)
    r.add_argument(
        "--cull-threshold",
        type=_argtype(check_fraction, "--cull-threshold"),
        default=DEFAULT_THRESHOLD,
        metavar="R",
        help=f"flag frames whose sharpness is below R times the burst's median (default {DEFAULT_THRESHOLD})",
    )
    r.add_argument(
        "--optics-sigma",
        type=_argtype(check_optics_sigma),
        default=DEFAULT_OPTICS_SIGMA,
        metavar="PX",
        help=f"the lens blur (Gaussian sigma, frame px) the kernel merge's restoration undoes "
        f"(default {DEFAULT_OPTICS_SIGMA})",
    )
    r.add_argument("--weights-png", metavar="PATH", help="save a picture of where frames were left out (red)")
    r.add_argument("--compare", metavar="PATH",
                   help="save a picture of the reference frame upscaled (Lanczos) beside the result, 1:1 at the "
                   "most detailed places, with a thumbnail of where they are")
    r.add_argument("--report", metavar="PATH", help="write a JSON report of every frame")
    r.add_argument("--overwrite", action="store_true",
                   help="replace an existing output, --report, --weights-png or --compare file (never an input)")
    r.add_argument(
        "--max-megapixels",
        type=_argtype(check_megapixels),
        default=DEFAULT_MAX_MEGAPIXELS,
        metavar="MP",
        help=f"refuse frames larger than this, before decoding them (default {DEFAULT_MAX_MEGAPIXELS:g})",
    )
    r.add_argument(
        "--compression", choices=COMPRESSIONS, default="none", help="TIFF compression (default: none)"
    )
    r.set_defaults(func=cmd_run)

    c = sub.add_parser(
        "cull",
        parents=[base],  # scored on the CPU: no --backend
        help="score the sharpness of frames and flag the blurred ones",
        description="Score every frame's sharpness (detail energy with the noise's share removed, so high ISO "
        "does not pass for sharpness) and flag the frames blurred relative to the rest of the burst.",
    )
    c.add_argument("inputs", nargs="+", metavar="INPUT", help="a folder of frames, or frame files")
    c.add_argument(
        "--threshold",
        type=_argtype(check_fraction, "--threshold"),
        default=DEFAULT_THRESHOLD,
        metavar="R",
        help=f"flag frames whose sharpness is below R times the burst's median (default {DEFAULT_THRESHOLD})",
    )
    c.add_argument(
        "--rename",
        action="store_true",
        help="rename flagged files to NAME.not_sharp_enough (superres run then skips them)",
    )
    c.add_argument("--plot", metavar="PATH.png", help="save the sharpness of every frame as a bar chart")
    c.add_argument("--overwrite", action="store_true", help="replace an existing --plot file")
    c.add_argument(
        "--max-megapixels",
        type=_argtype(check_megapixels),
        default=DEFAULT_MAX_MEGAPIXELS,
        metavar="MP",
        help=f"refuse frames larger than this, before decoding them (default {DEFAULT_MAX_MEGAPIXELS:g})",
    )
    c.set_defaults(func=cmd_cull)

    t = sub.add_parser(
        "tca",
        parents=[common],
        help="estimate the lateral chromatic aberration of a burst (red and blue against green)",
        description="Estimate the radial scale of the red and blue images against the green one (lateral "
        "chromatic aberration) on the first frames of a burst, and the shift it implies at the corners.",
    )
    t.add_argument("inputs", nargs="+", metavar="INPUT", help="a folder of frames, or frame files")
    t.add_argument("--frames", type=_positive_int("--frames"), default=5, metavar="N",
                   help="frames the estimate uses (default 5)")
    t.add_argument("--picture", metavar="PATH.png",
                   help="save the first frame's four corners as shot and corrected, enlarged, as a PNG")
    t.add_argument("--overwrite", action="store_true", help="replace an existing --picture file")
    t.set_defaults(func=cmd_tca)

    d = sub.add_parser(
        "demo",
        parents=[common],
        help="render a synthetic burst with known truth and merge it",
        description="Draw a resolution chart, simulate a hand-held burst of it (known motion, optics blur, "
        "decimation, noise, JPEG), merge it and compare with one frame upscaled, against the truth.",
    )
    d.add_argument("--out", default="superres_demo", metavar="DIR", help="output folder (default: superres_demo)")
    d.add_argument("--frames", type=_positive_int("--frames", 2), default=16,
                   help="frames in the burst, 2 or more (default 16)")
    d.add_argument("--scale", type=_argtype(check_scale), default=2.0, help="output scale (default 2)")
    d.add_argument("--seed", type=_positive_int("--seed", 0), default=7,
                   help="random seed of the burst, 0 or more (default 7)")
    d.add_argument("--overwrite", action="store_true", help="replace the results of an earlier demo in DIR")
    d.set_defaults(func=cmd_demo)

    b = sub.add_parser(
        "batch",
        parents=[common],
        help="merge every burst folder under ROOT, resumably, locally or on a Dask cluster",
        description="Every folder under ROOT with at least two frames becomes one output in OUTDIR at the same "
        "relative place. Finished outputs are skipped (rerun after an interruption to do the rest); one burst's "
        "failure is reported and the others go on. Results: OUTDIR/batch_results.csv and .json.",
    )
    b.add_argument("root", metavar="ROOT", help="folder of burst folders")
    b.add_argument("-o", "--output", required=True, metavar="OUTDIR", help="output folder (created if missing)")
    b.add_argument("--scale", type=_argtype(check_scale), default=2.0, help="output scale, 1 to 4 (default 2)")
    b.add_argument("--format", choices=FORMATS, default="tiff16", help="output format (default tiff16)")
    _merge_options(b)
    b.add_argument("--workers", type=_positive_int("--workers"), default=1, metavar="N",
                   help="bursts processed at once on this machine (default 1)")
    b.add_argument("--scheduler", metavar="tcp://HOST:8786",
                   help="run each burst as a task on this Dask distributed scheduler (extra: batch)")
    b.add_argument("--gpu", action="store_true",
                   help="CuPy backend; on a Dask cluster one burst per GPU (workers declare --resources GPU=1)")
    b.add_argument("--compare", action="store_true",
                   help="also save each burst's comparison picture (as run --compare) beside its output, "
                   "NAME_compare.png")
    b.set_defaults(func=cmd_batch)

    # `superres bench` is parsed by the benchmark suite itself (see main), so
    # that no other command imports it; this entry only lists it in --help.
    sub.add_parser(
        "bench",
        add_help=False,
        help="benchmark alignment accuracy vs speed, reconstruction quality, throughput "
        "(superres bench --help for its options)",
    )
    return p


def main(argv=None, *, _exiting: bool = False) -> int:
    """``superres ARGS...`` in this process; returns the exit status.  The
    signal handlers are as they were on return (see :func:`console_main`)."""
    argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
    if argv[:1] == ["bench"]:
        if _exiting:  # the suite cleans up as Python does on Ctrl-C (its temporary bursts)
            for s in _ALL_SIGNALS:
                if signal.getsignal(s) is _stop_at_start:  # not one ignored by whoever started us (nohup)
                    signal.signal(s, signal.default_int_handler if s == signal.SIGINT else signal.SIG_DFL)
        return _bench_main(argv[1:])
    args = build_parser().parse_args(argv)
    return _dispatch(args, args.func, exiting=_exiting)


def _exit_by_signal(signum: int, what: str) -> None:
    """End the process now, from a signal handler: the one line, then the signal's exit status."""
    why = "interrupted" if signum == signal.SIGINT else f"stopped by {signal.Signals(signum).name}"
    try:
        sys.stderr.write(f"superres: {why}; {what}\n")
        sys.stderr.flush()
    finally:
        import os

        os._exit(EXIT_INTERRUPT if signum == signal.SIGINT else 128 + signum)


def _stop_at_start(signum, frame):
    """A signal while the command starts (nothing written yet): its one line and the signal's status."""
    _exit_by_signal(signum, "no output was written")


def console_main() -> None:
    """The ``superres`` command: :func:`main`, then exit.  A signal while it
    starts stops it at once with its one line; once the command is done (or
    stopping) further signals are ignored, up to and through the exit: the
    interpreter's finalisation would put the default handlers back, and one
    more Ctrl-C there would kill the process by the signal, its exit status
    lost."""
    for s in _ALL_SIGNALS:  # until the command's own handlers are in place (the imports take a while)
        if signal.getsignal(s) is not signal.SIG_IGN:
            signal.signal(s, _stop_at_start)
    rc = main(_exiting=True)
    try:
        for s in _ALL_SIGNALS:  # signal.signal runs the pending handlers (ours, which then do nothing) first
            signal.signal(s, signal.SIG_IGN)
    except (OSError, ValueError):
        pass
    sys.exit(rc)


def _dispatch(args, func, exiting: bool = False) -> int:
    """Run a command; errors become one line (tracebacks only with --debug)."""
    out, err = _consoles(getattr(args, "quiet", False))
    from .output import commit_hook

    signals = _StopSignals()
    # run, cull and tca commit their outputs at the end: while the files are renamed a Ctrl-C is ignored, and
    # once they are written it ends the command at once (a batch goes on to other bursts, the demo writes its
    # files in turn: they keep listening)
    hook = (commit_hook(signals.deafen, after=signals.outputs_written) if func in (cmd_run, cmd_cull, cmd_tca)
            else contextlib.nullcontext())
    try:
        with signals, hook:
            return func(args, out, err)
    except SuperresError as e:
        err.print(f"superres: error: {describe(e)}", markup=False, highlight=False)
        return EXIT_ERROR
    except Terminated as e:
        name = signal.Signals(e.signum).name
        err.print(f"superres: stopped by {name}; no output was written", markup=False)
        return 128 + e.signum
    except KeyboardInterrupt:
        err.print("superres: interrupted; no output was written", markup=False)
        return EXIT_INTERRUPT
    except MemoryError:
        if getattr(args, "debug", False):
            raise
        err.print("superres: error: out of memory; try a smaller --scale or fewer frames", markup=False)
        return EXIT_ERROR
    except OSError as e:  # a system call failed outside the checks: one line, naming the file when known
        if getattr(args, "debug", False):
            raise
        where = f"{shown(e.filename)}: " if e.filename else ""
        err.print(f"superres: error: {where}{one_line(e.strerror or e)}", markup=False, highlight=False)
        return EXIT_ERROR
    except Exception as e:  # an unexpected bug: one line unless --debug
        if getattr(args, "debug", False):
            raise
        err.print(
            f"superres: internal error: {type(e).__name__}: {one_line(e)} (run with --debug for the traceback)",
            markup=False,
            highlight=False,
        )
        return EXIT_ERROR
    finally:
        if exiting:  # the command is done: the console entry point ignores what comes now, up to the exit
            signals.written = False
            signals.deafen()
        else:
            signals.restore()


def cmd_run(args, out, err) -> int:
    from .api import superresolve

    options = dict(
        output=args.output,
        format=args.format,
        backend=args.backend,
        reference=args.reference,
        mask=args.mask,
        motion=args.motion,
        report=args.report,
        overwrite=args.overwrite,
        compression=args.compression,
        merge=args.merge,
        kernel_shape=args.kernel_shape,
        cull=args.cull,
        cull_threshold=args.cull_threshold,
        weights_png=args.weights_png,
        compare_png=args.compare,
        sharpen=args.sharpen,
        max_megapixels=args.max_megapixels,
        gamma=args.gamma,
        optics_sigma=args.optics_sigma,
        refine=args.refine,
        tca=args.tca,
        local=args.local,
    )
    t = time.perf_counter()
    with RichProgress(err, enabled=not args.quiet) as prog:
        _, report = superresolve(args.inputs, args.scale, progress=prog, warn=_warn_to(err), **options)
    if not args.quiet:
        print_summary(out, report, time.perf_counter() - t)
    return EXIT_OK


def print_summary(console, report: dict, wall: float) -> None:
    from rich.table import Table

    s = report["summary"]
    t = Table(title="superres run", show_header=False, box=None, pad_edge=False)
    t.add_column(style="bold", no_wrap=True)
    t.add_column(overflow="fold")
    culled = f" ({s['culled']} of them as blurred)" if s.get("culled") else ""
    t.add_row("frames", f"{s['used']} used, {s['dropped']} dropped{culled} of {s['frames']}")
    if s["residual_rms_median"] is not None:
        t.add_row(
            "alignment residual",
            f"{100 * s['residual_rms_median']:.2f}% median, {100 * s['residual_rms_max']:.2f}% max (RMS luma)",
        )
    for f in report["frames"]:
        if not f["used"]:
            t.add_row("dropped", _plain(f"{shown(f['path'])}: {f['reason']}"))
    iw, ih = report["input_size"]
    ow, oh = report["output_size"]
    t.add_row("size", f"{iw}x{ih} -> {ow}x{oh} (scale {report['scale']:g})")
    t.add_row("backend", report["backend"])
    tim = report["timings"]
    stages = ", ".join(f"{k} {tim[k]:.2f}s" for k in ("probe", "cull", "decode", "tca", "motion", "template", "align",
                                                       "weights", "merge", "restore", "write") if k in tim)
    t.add_row("time", f"{wall:.2f}s total ({stages})")
    t.add_row("output", _plain(shown(report["output"])))
    if report.get("comparison"):
        t.add_row("comparison", _plain(shown(report["comparison"]["path"])))
    console.print(t)


def cmd_batch(args, out, err) -> int:
    from pathlib import Path

    from .batch import plan, run_batch
    from .errors import ConfigError

    if args.gpu and args.backend not in ("auto", "cupy"):
        raise ConfigError(f"--gpu runs the cupy backend; it contradicts --backend {args.backend}")
    options = dict(scale=args.scale, backend="cupy" if args.gpu else args.backend, motion=args.motion,
                   merge=args.merge, kernel_shape=args.kernel_shape, cull=args.cull, sharpen=args.sharpen,
                   gamma=args.gamma, tca=args.tca, local=args.local, refine=args.refine)
    outdir = Path(args.output)
    if outdir.exists() and not outdir.is_dir():
        raise ConfigError(f"{outdir}: output exists and is not a folder")
    tasks = plan(args.root, outdir, args.format, options, compare=args.compare)
    if not tasks:
        raise ConfigError(f"{args.root}: no burst folders (folders with at least two frames) found")
    made = [d for d in (outdir, *outdir.parents) if not d.exists()]
    outdir.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    STAGE_LABELS.setdefault("bursts", "Bursts")
    try:
        with RichProgress(err, enabled=not args.quiet) as prog:
            results = run_batch(tasks, workers=args.workers, scheduler=args.scheduler, gpu=args.gpu, progress=prog)
    except KeyboardInterrupt as e:  # unlike `run`, the bursts finished so far are kept
        _remove_empty(made)
        return _batch_stopped(e, err)
    except BaseException:  # no scheduler, say: the folders this run made and left empty go
        _remove_empty(made)
        raise
    try:
        return _batch_report(args, out, err, outdir, results, t)
    except KeyboardInterrupt as e:  # the bursts are done: only the results files or the table are left out
        return _batch_stopped(e, err)


def _batch_stopped(e: KeyboardInterrupt, err) -> int:
    why = f"stopped by {signal.Signals(e.signum).name}" if isinstance(e, Terminated) else "interrupted"
    err.print(f"superres: {why}; finished bursts are kept: run the same command again to do the rest",
              markup=False)
    return 128 + e.signum if isinstance(e, Terminated) else EXIT_INTERRUPT


def _batch_report(args, out, err, outdir, results, t) -> int:
    from .batch import write_results

    csv_path, json_path = write_results(outdir, results)
    failed = [r for r in results if r.status == "failed"]
    for r in failed:
        msg = r.error if r.error.startswith(shown(r.folder)) else f"{shown(r.folder)}: {r.error}"
        err.print(f"superres: error: {msg}", markup=False, highlight=False)
    if not args.quiet:
        from rich.table import Table

        tab = Table(title=f"superres batch: {len(results)} bursts in {time.perf_counter() - t:.1f}s")
        tab.add_column("burst", overflow="fold")
        tab.add_column("status")
        tab.add_column("frames used", justify="right")
        tab.add_column("seconds", justify="right")
        tab.add_column("output / error", overflow="fold")
        colour = {"done": "green", "skipped": "cyan", "failed": "red"}
        for r in results:
            used = "" if r.used is None else f"{r.used}/{r.frames}"
            tab.add_row(_plain(shown(r.folder)), f"[{colour[r.status]}]{r.status}[/]", used, f"{r.seconds:.1f}",
                        _plain(r.error if r.error else shown(r.output)))
        out.print(tab)
        counts = {s: sum(r.status == s for r in results) for s in ("done", "skipped", "failed")}
        out.print(f"{counts['done']} done, {counts['skipped']} skipped (already there), {counts['failed']} failed; "
                  f"results: {shown(csv_path)}, {shown(json_path)}", markup=False, highlight=False)
    return EXIT_ERROR if failed else EXIT_OK


def _remove_empty(folders) -> None:
    """Remove the folders of ``folders`` (innermost first) that are empty."""
    for d in folders:
        try:
            d.rmdir()
        except OSError:  # not empty (a finished burst is in it) or gone: kept
            return


def cmd_cull(args, out, err) -> int:
    from .cull import cull_files, flag_cut_ratio

    with RichProgress(err, enabled=not args.quiet) as prog:
        scores, renamed = cull_files(args.inputs, args.threshold, rename=args.rename, plot=args.plot, progress=prog,
                                     overwrite=args.overwrite, max_megapixels=args.max_megapixels)
    if not args.quiet:
        from rich.table import Table

        cut = flag_cut_ratio(scores, args.threshold)
        t = Table(title=f"sharpness (relative to the burst's median; flagged below {cut:.2f})")
        t.add_column("frame", overflow="fold")
        t.add_column("sharpness", justify="right")
        t.add_column("noise (8-bit levels)", justify="right")
        t.add_column("verdict")
        for s in scores:
            verdict = "[red]blurred[/]" + (" (renamed)" if s.path in renamed else "") if s.flagged else "sharp"
            t.add_row(_plain(shown(s.path)), f"{s.ratio:.2f}", f"{255 * s.noise:.2f}", verdict)
        out.print(t)
        n = sum(s.flagged for s in scores)
        plot = f"; plot: {shown(args.plot)}" if args.plot else ""
        out.print(f"{n} of {len(scores)} frames flagged as blurred{plot}", markup=False, highlight=False)
    return EXIT_OK


def cmd_tca(args, out, err) -> int:
    from .backends import get_backend
    from .decode import read_frame
    from .discover import check_burst, probe, resolve_frames
    from .errors import AlignmentError, ConfigError
    from .output import AtomicOutput, encode_png
    from .pipeline import raw_colour_matrix
    from .tca import estimate
    from .tca_picture import tca_picture

    if args.picture and not str(args.picture).lower().endswith(".png"):
        raise ConfigError(f"--picture {args.picture}: the picture is a PNG; give it a .png name")
    paths, _ = resolve_frames(args.inputs, None)  # as superres run finds them; none found is an error
    picture = (AtomicOutput(args.picture, overwrite=args.overwrite, protect=paths,
                            protect_dirs=list({p.resolve().parent: None for p in paths})) if args.picture else None)
    with picture if picture is not None else contextlib.nullcontext():
        B = get_backend(args.backend)
        infos = [probe(p) for p in paths[: args.frames]]
        check_burst(infos, infos[0])
        frames = [read_frame(i) for i in infos]
        try:
            est = estimate(B, frames, infos[0].chroma, origin=infos[0].chroma_origin,
                           colour_matrix=raw_colour_matrix(infos[0]))
        except AlignmentError as e:  # about the frames read: named by the first
            raise AlignmentError(e.message, e.path or str(infos[0].path)) from None
        if picture is not None:
            picture.write_bytes(encode_png(tca_picture(B, frames[0], est, infos[0].max_value,
                                                       linear=infos[0].format == "raw")))
            picture.commit()
    shift = est.corner_shift_px()
    out.print(f"lateral chromatic aberration of {est.frames} frames ({est.width}x{est.height}), against green:",
              markup=False, highlight=False, soft_wrap=True)
    if est.subsampled and infos[0].format == "raw":
        where = ("of the camera's own channels (before its colour matrix)" if est.colour_matrix is not None
                 else "of the channels as decoded (the file's colour matrix cannot be inverted)")
        out.print("  raw Bayer mosaic: red and blue sampled on every other row and column, their fine detail "
                  f"demosaiced from green's: measured, and corrected by --tca, in the low band {where}",
                  markup=False, highlight=False, soft_wrap=True)
    elif est.subsampled:
        how = {"linear": "smoothly, as JPEG decoders do", "nearest": "in blocks, as HEIC through pillow-heif"}
        out.print(f"  chroma subsampled {est.chroma[0]}x{est.chroma[1]}, brought up {how[est.upsampling]}: measured, "
                  "and corrected by --tca, in the channels' low band", markup=False, highlight=False, soft_wrap=True)
    for name, ch in (("red", est.red), ("blue", est.blue)):
        se = (f"+- {ch.corner_se:.3f} px" if math.isfinite(ch.corner_se)
              else "px (no standard error: too little texture)")
        out.print(f"  {name:4s} scale {100 * ch.scale:+.4f} %  centre ({ch.cx:.1f}, {ch.cy:.1f})  "
                  f"rotation {ch.rotation_deg:+.4f} deg  cubic {100 * ch.cubic:+.4f} % at the corners  "
                  f"corner shift {shift[name]:.3f} {se}", markup=False, highlight=False, soft_wrap=True)
    verdict = "would correct it" if est.matters() else "would leave it"
    out.print(f"  superres run --tca auto (the default) {verdict}: it corrects a corner shift above "
              f"{est.min_corner_px():.2f} px and three standard errors", markup=False, highlight=False, soft_wrap=True)
    if args.picture:
        out.print(f"  picture: {shown(args.picture)}", markup=False, highlight=False, soft_wrap=True)
    return EXIT_OK


def cmd_demo(args, out, err) -> int:
    from .demo import run_demo

    with RichProgress(err, enabled=not args.quiet) as prog:
        res = run_demo(
            args.out,
            frames=args.frames,
            scale=args.scale,
            seed=args.seed,
            backend=args.backend,
            overwrite=args.overwrite,
            progress=prog,
            warn=_warn_to(err),
        )
    if not args.quiet:
        from rich.table import Table

        t = Table(title="superres demo: against the known truth")
        t.add_column("image")
        t.add_column("PSNR sharp", justify="right")
        t.add_column("PSNR optics", justify="right")
        t.add_column("MTF50 cy/px", justify="right")
        t.add_column("star r px", justify="right")
        for key, name in (("single", "one frame, Lanczos"), ("merged", f"merge of {res['frames']} frames"),
                          ("robust", "--merge robust")):
            mtf = res[f"mtf50_{key}"]
            t.add_row(name, f"{res[f'psnr_{key}']:.2f} dB", f"{res[f'psnr_{key}_blurred']:.2f} dB",
                      "n/a" if mtf is None else f"{mtf:.3f}", f"{res[f'star_radius_{key}']:.1f}")
        out.print(t)
        out.print("PSNR against the sharp scene and against the scene through the optics; MTF50 of the slanted "
                  "edge; star r, the Siemens star's resolved radius (smaller is better; "
                  f"{res['star_radius_nyquist']:.1f} px at the output's Nyquist limit)", markup=False,
                  highlight=False, soft_wrap=True)
        for label, key in (("result:    ", "output"), ("robust:    ", "output_robust"), ("comparison:", "comparison")):
            out.print(f"{label} {shown(res[key])}", markup=False, highlight=False, soft_wrap=True)
    return EXIT_OK


def _bench_main(argv: list[str]) -> int:
    """``superres bench ...``: the suite parses its own options."""
    from .bench import suite

    parser = suite.build_parser(prog="superres bench")
    args = parser.parse_args(argv)

    def cmd(args, out, err):
        with RichProgress(err, enabled=not args.quiet) as prog:
            return suite.run_cli(args, progress=prog)

    return _dispatch(args, cmd)


if __name__ == "__main__":  # pragma: no cover
    console_main()
