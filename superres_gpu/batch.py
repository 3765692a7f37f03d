"""Many bursts at once: ``superres batch ROOT -o OUTDIR``.

Every folder under ``ROOT`` that holds a burst (at least two frames) becomes
one output in ``OUTDIR``, at the same relative place (``ROOT/trip/beach`` ->
``OUTDIR/trip/beach.tif`` with its ``beach.json`` report).  The run is
resumable: a burst whose output exists is skipped, and every output is
written atomically (image and report committed together), so an interrupted
batch leaves only finished outputs and a rerun does the rest.  One burst's
failure is recorded and the others go on.

Bursts run one after another, on ``workers`` local processes, or as tasks
on a Dask distributed cluster (``scheduler="tcp://HOST:8786"``; with
``gpu=True`` each task asks for one ``GPU`` worker resource, so a worker runs
one burst per GPU it declares).
"""

from __future__ import annotations

import csv
import io
import json
import multiprocessing
import os
import signal
import tempfile
import time
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .errors import ConfigError, InputError, SuperresError, describe, one_line

RESULTS_NAME = "batch_results"  # OUTDIR/batch_results.csv and .json
_SUFFIX = {"tiff16": ".tif", "tiff32f": ".tif", "png16": ".png"}


@dataclass
class BurstTask:
    """One burst to merge: its folder, where its output goes, the run's options."""

    folder: str
    output: str
    report: str
    options: dict = field(default_factory=dict)  # keyword arguments of superres_gpu.superresolve


@dataclass
class BurstResult:
    folder: str
    output: str
    status: str  # "done", "skipped" (output already there) or "failed"
    error: str | None = None
    frames: int | None = None
    used: int | None = None
    seconds: float = 0.0
    host: str | None = None


def find_bursts(root, outdir=None) -> list[Path]:
    """Every folder under ``root`` (``root`` itself included) with at least two
    frames, in name order; the output folder, hidden folders and folders
    without frames are left out."""
    from .discover import list_inputs

    root = Path(root)
    if not root.is_dir():
        raise InputError("not a folder", str(root))
    skip = Path(outdir).resolve() if outdir is not None else None
    found = []
    for dirpath, dirnames, _ in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".")
                             and (skip is None or (here / d).resolve() != skip))
        try:
            frames = list_inputs([here], strict=False)  # a bad entry fails its burst, named
        except InputError:
            continue
        if len(frames) >= 2:
            found.append(here)
    return found


def plan(root, outdir, fmt: str = "tiff16", options: dict | None = None, compare: bool = False) -> list[BurstTask]:
    """The tasks of a batch: one per burst folder, outputs mirroring ``root``;
    with ``compare`` each burst's comparison picture (``superres run
    --compare``) beside its output, ``NAME_compare.png``."""
    root, outdir = Path(root), Path(outdir)
    suffix = _SUFFIX[fmt]
    tasks = []
    for folder in find_bursts(root, outdir):
        rel = folder.relative_to(root)
        stem = outdir / rel if rel.parts else outdir / root.resolve().name
        opts = dict(options or {}, format=fmt)
        if compare:
            opts["compare_png"] = str(stem) + "_compare.png"
        tasks.append(BurstTask(str(folder), str(stem) + suffix, str(stem) + ".json", opts))
    _check_names(tasks)
    return tasks


def _check_names(tasks: list[BurstTask]) -> None:
    """Refuse a plan in which one burst's file would be another's (folders
    ``a`` and ``a_compare`` with ``--compare`` and PNG outputs, say): one
    would be skipped as done, or replace the other's result."""
    seen: dict[str, str] = {}
    for t in tasks:
        for path in (t.output, t.report, t.options.get("compare_png")):
            if path is None:
                continue
            key = os.path.normcase(os.path.normpath(os.path.abspath(path)))
            if key in seen and seen[key] != t.folder:
                raise ConfigError(f"bursts {seen[key]} and {t.folder} would both write {path}; rename one folder")
            seen[key] = t.folder


def _burst_options(task: BurstTask) -> dict:
    """The run's options for this burst: ``gamma="srgb"`` (the tone curve of
    raw bursts' output) only where the burst is raw; its other bursts are
    already gamma-encoded and keep their curve, where ``superres run`` would
    refuse the option."""
    from .discover import RAW_EXTS, resolve_frames

    options = dict(task.options)
    if options.get("gamma") == "srgb":
        paths, ref = resolve_frames([task.folder], None)
        if paths[ref].suffix.lower() not in RAW_EXTS:
            options["gamma"] = "linear"
    return options


def process_burst(task: BurstTask) -> BurstResult:
    """Merge one burst (skipped when its output exists); never raises for the
    burst's own problems, which are returned as a failed result."""
    import socket

    t = time.perf_counter()
    host = socket.gethostname()
    if Path(task.output).exists():
        return BurstResult(task.folder, task.output, "skipped", host=host)
    try:
        from .api import superresolve

        Path(task.output).parent.mkdir(parents=True, exist_ok=True)
        # The image is what marks a burst finished; a report without its image
        # (a burst killed between the two renames) is stale and replaced.
        _, report = superresolve(task.folder, output=task.output, report=task.report, warn=lambda m: None,
                                 overwrite=True, **_burst_options(task))
    except SuperresError as e:
        return BurstResult(task.folder, task.output, "failed", describe(e), seconds=time.perf_counter() - t,
                           host=host)
    except MemoryError:
        return BurstResult(task.folder, task.output, "failed", "out of memory", seconds=time.perf_counter() - t,
                           host=host)
    except Exception as e:  # a bug on one burst must not stop the others; keep where it happened
        where = traceback.extract_tb(e.__traceback__)[-1]
        msg = f"internal error: {type(e).__name__}: {one_line(e)} ({Path(where.filename).name}:{where.lineno})"
        return BurstResult(task.folder, task.output, "failed", msg, seconds=time.perf_counter() - t, host=host)
    s = report["summary"]
    return BurstResult(task.folder, task.output, "done", None, s["frames"], s["used"], time.perf_counter() - t, host)


def _worker_burst(task: BurstTask, index: int) -> BurstResult:
    """:func:`process_burst` in a local worker process.  Stopped (Ctrl-C, or
    the batch's SIGTERM), the burst unwinds as a run does on Ctrl-C, its
    temporary outputs removed, and the worker then ends: it must not go on to
    the bursts already queued to it.  While it runs, the burst's index is in
    the worker's mark (see :func:`_run_pool`)."""
    global _in_burst
    mark = Path(_marks) / str(os.getpid()) if _marks else None
    _in_burst = True
    try:
        if mark is not None:
            mark.write_text(str(index))
        result = process_burst(task)
    except KeyboardInterrupt:
        try:
            if mark is not None:
                os.replace(mark, mark.with_suffix(".stopped"))
        finally:
            os._exit(130)
    finally:
        _in_burst = False
    if mark is not None:
        mark.unlink(missing_ok=True)
    return result


_WORKER_SIGNALS = tuple(getattr(signal, n) for n in ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT") if hasattr(signal, n))
_stopping = False
_in_burst = False
_marks = None  # a worker's folder of marks (see _run_pool)


class _signals_blocked:
    """Within the block the stop signals wait (this thread; processes started
    here start with them blocked), then come."""

    def __enter__(self):
        self.old = signal.pthread_sigmask(signal.SIG_BLOCK, _WORKER_SIGNALS) if hasattr(signal, "pthread_sigmask") \
            else None
        return self

    def __exit__(self, *exc):
        if self.old is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, self.old)
        return False


def _worker_stop(signum, frame):
    global _stopping
    if not _in_burst:  # idle, or still starting: nothing to clean up
        os._exit(0)
    if not _stopping:  # the next signal (the group's Ctrl-C, then the batch's SIGTERM) must not interrupt the clean-up
        _stopping = True
        raise KeyboardInterrupt


def _init_local_worker(threads: int, marks: str | None = None) -> None:
    # Stopped by the batch (SIGTERM, see _stop_pool), by a Ctrl-C or a hang-up of the terminal, a worker unwinds
    # its burst once (no temporary output left) and ends; it started with these signals blocked (see run_batch).
    for s in _WORKER_SIGNALS:
        if signal.getsignal(s) is not signal.SIG_IGN:  # ignored by whoever started the batch (nohup): stays so
            signal.signal(s, _worker_stop)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _WORKER_SIGNALS)
    global _marks
    _marks = marks
    # Workers share the machine's cores: OpenCV's own pool is sized to its share.
    try:
        import cv2

        cv2.setNumThreads(threads)
    except ImportError:  # pragma: no cover
        pass


def run_batch(tasks: list[BurstTask], workers: int = 1, scheduler: str | None = None, gpu: bool = False,
              progress=None, connect_timeout: float = 30.0) -> list[BurstResult]:
    """Run every task; results in the order of ``tasks``.

    ``progress(stage, done, total)`` is called with stage ``"bursts"`` as
    bursts finish.
    """
    progress = progress or (lambda *a: None)
    results: list = [None] * len(tasks)
    done = 0
    progress("bursts", 0, len(tasks))

    def finished(i, r):
        nonlocal done
        results[i] = r
        done += 1
        progress("bursts", done, len(tasks))

    if scheduler:
        for i, r in _run_dask(tasks, scheduler, gpu, connect_timeout):
            finished(i, r)
    elif workers <= 1:
        for i, task in enumerate(tasks):
            finished(i, process_burst(task))
    else:
        share = max(1, (os.cpu_count() or 1) // workers)
        for task in tasks:
            task.options.setdefault("decode_threads", share)
        # spawn, not fork: the parent may hold decoder and OpenCV thread pools,
        # which a forked child inherits locked
        ctx = multiprocessing.get_context("spawn")
        with tempfile.TemporaryDirectory(prefix="superres-batch-") as marks:
            todo = list(range(len(tasks)))
            while todo:  # a killed worker breaks the whole pool: the bursts it did not run go to a new one
                todo = _run_pool(tasks, todo, workers, share, ctx, Path(marks), finished)
    return results


def _run_pool(tasks, todo: list[int], workers: int, share: int, ctx, marks: Path, finished) -> list[int]:
    """Run the bursts ``todo`` on a pool of local worker processes; returns
    those to run again, on a new pool, after a worker was killed (out of
    memory, say; the pool breaks as a whole): every unfinished burst but the
    one the killed worker was running, which fails.  Each worker marks the
    burst it runs in ``marks`` (a file named by its process id, renamed
    ``.stopped`` when it unwinds on a signal), which tells the killed one's."""
    # the workers start (in submit) with the stop signals blocked, until their own handlers are in place: a
    # Ctrl-C in their first moments must not print a traceback from their imports; multiprocessing's
    # resource tracker (started with the pool's queues) keeps them blocked, so that a hang-up of the
    # terminal does not kill it before the pool is wound up
    with _signals_blocked():
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_local_worker,
                                   initargs=(share, str(marks)))
    left: set[int] = set(todo)
    try:
        with _signals_blocked():
            futures = {pool.submit(_worker_burst, tasks[i], i): i for i in todo}
        for fut in as_completed(futures):
            i = futures[fut]
            try:
                r = fut.result()
            except BrokenProcessPool:
                break
            left.discard(i)
            finished(i, r)
    except BaseException:  # Ctrl-C or a stop signal: the queued bursts are not started, the running ones stop
        _stop_pool(pool)
        raise
    pool.shutdown()
    if not left:
        return []
    killed = set()
    for mark in marks.iterdir():
        if mark.suffix != ".stopped":  # its worker died without unwinding: killed while running this burst
            try:
                killed.add(int(mark.read_text()))
            except (OSError, ValueError):
                pass
        mark.unlink(missing_ok=True)
    killed &= left
    if not killed:  # no burst to blame (a worker killed between two bursts): each left gets one more pool
        killed = set() if len(left) < len(todo) else left
    for i in sorted(killed):
        finished(i, BurstResult(tasks[i].folder, tasks[i].output, "failed",
                                "the worker process running it was killed (out of memory?); run the batch "
                                "again to retry it"))
    return sorted(left - killed)


def _stop_pool(pool: ProcessPoolExecutor) -> None:
    """Cancel what has not started and stop the workers now: each unwinds its
    burst as on Ctrl-C (its temporary outputs removed, see
    :func:`_init_local_worker`), so that only finished bursts remain.  Those
    still there after 20 s are killed."""
    workers = list((getattr(pool, "_processes", None) or {}).values())  # no public handle on them
    # a worker being started when the signal came may not be in the executor's table yet
    workers += [p for p in multiprocessing.active_children() if p not in workers]
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in workers:
        if proc.is_alive():
            proc.terminate()
    deadline = time.monotonic() + 20
    for proc in workers:
        proc.join(timeout=max(0.0, deadline - time.monotonic()))
    for proc in workers:
        if proc.is_alive():  # stuck in its clean-up: killed
            proc.kill()
            proc.join(timeout=5)


def _run_dask(tasks, scheduler: str, gpu: bool, connect_timeout: float):
    try:
        from distributed import Client, as_completed as dask_completed
    except ImportError:
        raise ConfigError("--scheduler needs Dask distributed: pip install 'dask[distributed]' "
                          "(the batch extra)") from None
    try:
        client = Client(scheduler, timeout=connect_timeout)
    except (OSError, TimeoutError) as e:
        raise ConfigError(f"cannot reach the Dask scheduler {scheduler} ({e})") from None
    except ValueError as e:  # not an address: "missing port number in address ..."
        raise ConfigError(f"--scheduler {scheduler}: not a scheduler address, such as tcp://HOST:8786 ({e})") from None
    with client:
        resources = {"GPU": 1} if gpu else None
        futures = client.map(process_burst, tasks, pure=False, resources=resources)
        index = {f.key: i for i, f in enumerate(futures)}
        for fut in dask_completed(futures):
            yield index[fut.key], fut.result()


def write_results(outdir, results: list[BurstResult]) -> tuple[Path, Path]:
    """``batch_results.csv`` and ``.json`` in ``outdir`` (written atomically)."""
    from .output import write_text

    rows = [asdict(r) for r in results]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(BurstResult.__dataclass_fields__))
    w.writeheader()
    w.writerows(rows)
    outdir = Path(outdir)
    return (write_text(outdir / f"{RESULTS_NAME}.csv", buf.getvalue()),
            write_text(outdir / f"{RESULTS_NAME}.json", json.dumps(rows, indent=1)))
