"""Planned runs on this machine (the local engine's runs): one after another in this process,
or side by side in worker processes with a share of the cores each (:func:`train_planned`).

Small models use a second CPU thread poorly (measured on the 2-core VM, batch 32:
resnet8-x0.25 runs only 1.25× faster on 2 threads than on 1, resnet8-x1.0 1.47×), so two
one-thread runs side by side finish a study sooner than one two-thread run at a time
(``docs/benchmarks.md``, "Runs side by side"). The local engine therefore runs the planned runs
of a sweep or comparison in ``jobs`` processes (default: one per core, ``SCALARIZE_JOBS`` or
``--jobs`` to change), each with ``cores // jobs`` torch threads unless ``train.threads`` says
otherwise. Python's :class:`~concurrent.futures.ProcessPoolExecutor` (spawned workers) carries
them; Ray would too, at a few seconds of start-up and a dependency this default should not need.

Each worker loads a data set once and keeps it for the runs that follow; each run writes its own
folder (locked, resumable), so a killed study continues where it stopped, as in-process. A
worker dies with the process that started it (Linux: ``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import os
import signal
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from multiprocessing import get_context
from pathlib import Path
from typing import Any, TextIO

import yaml
from tqdm.auto import tqdm

from scalarize.benchmarks import Dataset
from scalarize.config import RunConfig
from scalarize.errors import ScalarizeError
from scalarize.launch.train import train_run
from scalarize.runs.records import RunSummary

#: environment variable: the default number of side-by-side runs of the local engine
JOBS_VARIABLE = "SCALARIZE_JOBS"


def available_cores() -> int:
    """The CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def check_jobs(jobs: object) -> int | None:
    """``jobs`` as given (a whole number ≥ 1, or ``None``), else ``$SCALARIZE_JOBS``; one line
    for anything else, before a study writes anything.

    Example:
        >>> check_jobs(2)
        2
    """
    where = "jobs"
    if jobs is None:
        configured = os.environ.get(JOBS_VARIABLE, "").strip()
        if not configured:
            return None
        where, jobs = JOBS_VARIABLE, configured
        try:
            jobs = int(configured)
        except ValueError:
            raise ScalarizeError(f"{JOBS_VARIABLE}={configured!r} is not a whole number; "
                                 "set it to the number of runs side by side") from None
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ScalarizeError(f"{where} must be a whole number of at least 1 (got {jobs!r}): "
                             "the number of runs side by side")
    return jobs


def resolve_jobs(jobs: int | None, configs: Sequence[RunConfig]) -> int:
    """How many runs go side by side: ``jobs`` if given, else ``$SCALARIZE_JOBS``, else one
    per core for CPU runs (a run of ``train.nproc`` processes counts as that many; one at a
    time where a run may use a GPU: they would share it); never more than there are runs.

    Example:
        >>> from scalarize.config import load_config
        >>> resolve_jobs(4, [load_config(None, ["train.device=cpu"])] * 3)
        3
    """
    jobs = check_jobs(jobs)
    if jobs is None:
        cpu_only = all(c.train.device == "cpu" or (c.train.device == "auto" and not _has_cuda())
                       for c in configs)
        nproc = max((c.train.nproc for c in configs), default=1)
        jobs = available_cores() // nproc if cpu_only else 1
    return max(1, min(jobs, len(configs)))


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def train_planned(configs: Sequence[RunConfig], out: Path, jobs: int | None = None,
                  progress: bool | None = None) -> list[RunSummary]:
    """Train ``configs`` into ``out`` (resuming each), :func:`resolve_jobs` side by side, or
    one after another in this process sharing the loaded data set; the summaries in plan
    order."""
    jobs = resolve_jobs(jobs, configs)
    if jobs > 1:
        with tqdm(total=len(configs), desc=f"runs ({jobs} side by side)", unit="run",
                  disable=progress is False) as bar:
            return run_side_by_side(configs, out, jobs, on_done=lambda: bar.update(1))
    cache: dict[str, Dataset] = {}
    return [_train(config, out, cache, progress=False if progress is False else None)
            for config in tqdm(configs, desc="runs", unit="run", disable=progress is False)]


def _train(config: RunConfig, out: Path | str, cache: dict[str, Dataset],
           progress: bool | None) -> RunSummary:
    """Train (or resume) ``config``'s run on the data set ``cache`` holds for its benchmark,
    loaded there first (one data set in memory at a time); a run of several processes
    (``train.nproc``) is spawned from here, each process loading its own."""
    from scalarize.training import load_data

    if config.train.nproc > 1:
        with _interruptible():
            return train_run(config, out, resume=True, progress=progress)
    key = config.benchmark.model_dump_json()
    if key not in cache:
        cache.clear()
        cache[key] = load_data(config)
    return train_run(config, out, resume=True, data=cache[key], progress=progress)


@contextmanager
def _interruptible() -> Iterator[None]:
    """Ctrl-C interrupts again while a run's processes are spawned from a worker (which ignores
    it): they inherit it, and torch's spawn sends them SIGINT when their parent dies, so a
    worker killed by a stopped study takes its run's processes with it."""
    ignored = signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    if ignored:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        if ignored:
            signal.signal(signal.SIGINT, signal.SIG_IGN)


# -- the worker side ---------------------------------------------------------------------------
_DATA: dict[str, Dataset] = {}  # a worker's data set, kept for the runs that follow


def _start_worker(threads: int, entries: dict[str, Any] | None) -> None:
    """Each worker: die with the parent, use its share of the cores, know the session's
    registry entries."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: the parent's death kills us
    except (OSError, AttributeError):  # not Linux: the pool's own pipes end the worker
        pass
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    warnings.showwarning = _one_line  # as the command line prints them
    import torch

    torch.set_num_threads(threads)
    if entries:
        from scalarize.registry import restore_session

        restore_session(entries)


def _one_line(message: Warning | str, category: type[Warning], filename: str, lineno: int,
              file: TextIO | None = None, line: str | None = None) -> None:
    print(f"scalarize: warning: {message}", file=sys.stderr)


def _train_one(config_yaml: str, out: str) -> RunSummary:
    return _train(RunConfig.model_validate(yaml.safe_load(config_yaml)), out, _DATA,
                  progress=False)


# -- the parent side ---------------------------------------------------------------------------
@contextmanager
def _quiet_resource_tracker() -> Iterator[None]:
    """Multiprocessing's resource tracker, started with the pool's queues, warns in two lines
    about the queue semaphores of workers killed on Ctrl-C (the OS releases them all the same):
    it starts with that warning ignored, after the command's own one-line message."""
    previous = os.environ.get("PYTHONWARNINGS")
    quiet = "ignore::UserWarning:multiprocessing.resource_tracker"
    os.environ["PYTHONWARNINGS"] = f"{previous},{quiet}" if previous else quiet
    try:
        yield
    finally:
        if previous is None:
            del os.environ["PYTHONWARNINGS"]
        else:
            os.environ["PYTHONWARNINGS"] = previous


def run_side_by_side(configs: Sequence[RunConfig], out: Path, jobs: int,
                     on_done: Callable[[], None] = lambda: None) -> list[RunSummary]:
    """Train ``configs`` into ``out`` in ``jobs`` worker processes; the summaries in plan order.
    The first run that fails stops the others (their folders resume on the next try) and its
    error is raised here, one line for a :class:`ScalarizeError`."""
    from scalarize.registry import session_entries

    threads = max(1, available_cores() // jobs)
    entries = session_entries() or None
    results: list[RunSummary | None] = [None] * len(configs)
    with _quiet_resource_tracker():
        pool = ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn"),
                                   initializer=_start_worker, initargs=(threads, entries))
    finished = False
    try:
        futures: dict[Future[RunSummary], int] = {
            pool.submit(_train_one, c.to_yaml(), str(out)): i for i, c in enumerate(configs)}
        pending = set(futures)
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                try:
                    results[futures[future]] = future.result()  # an error stops the study
                except BrokenProcessPool:
                    raise ScalarizeError(
                        f"a worker process died during run {futures[future] + 1} of "
                        f"{len(configs)} in {out} (killed, or out of memory); run the same "
                        "command again to resume, or with --jobs 1 to use less memory") from None
                on_done()
        finished = True
    finally:
        # a failed run or Ctrl-C: stop the runs in flight now, not at their end (their folders
        # resume from the last checkpoint); the executor keeps its worker list private
        if not finished:
            for process in list(getattr(pool, "_processes", {}).values()):
                process.kill()
        pool.shutdown(wait=True, cancel_futures=True)
    return [r for r in results if r is not None]


__all__ = ["JOBS_VARIABLE", "available_cores", "check_jobs", "resolve_jobs", "run_side_by_side",
           "train_planned"]
