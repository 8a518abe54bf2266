""":func:`train_process`: this process's part of a run, from its config to its summary: on one
process the whole run, on several (data parallel, :mod:`scalarize.launch.distributed`) its
slice of every batch, with rank 0 alone holding the run folder and the trackers."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager, nullcontext
from pathlib import Path
from typing import Any

from scalarize.benchmarks import Dataset
from scalarize.config import RunConfig, same_config, with_nproc
from scalarize.errors import ScalarizeError
from scalarize.launch.check import check_run
from scalarize.launch.naming import run_name
from scalarize.methods.shard import Shard
from scalarize.probes import build_probes
from scalarize.runs.records import RunSummary
from scalarize.runs.store import RunDir
from scalarize.tracking import TrackingCallback, tracking_callbacks
from scalarize.training.callbacks import Callback
from scalarize.training.parallel import broadcast
from scalarize.training.plan import load_data
from scalarize.training.trainer import Trainer
from scalarize.weights import parse_weights


def train_process(config: RunConfig, out: Path | str, shard: Shard | None = None, *,
                  resume: bool = False, overwrite: bool = False,
                  callbacks: Sequence[Callback] = (), data: Dataset | None = None,
                  progress: bool | None = None) -> RunSummary:
    """Train this process's part of ``config`` into ``out/<run name>`` and return the run's
    summary (on every process). ``shard`` ``None``: the whole run here; else this process's
    shard of it (the process group is joined), with rank 0 alone touching the run folder and
    the trackers and every other process taking its decisions (resume or not, a refusal).

    Everything (data, model, method, weights, probes) is built and checked once, into the
    plan the trainer takes, before the run folder is created or changed
    (:meth:`RunDir.training` then holds and prepares it). A finished run with ``resume``
    returns its stored summary without training again.
    """
    lead = shard is None or shard.rank == 0
    if shard is not None:
        config = with_nproc(config, shard.world)  # recorded in config.yaml
    data = data if data is not None else load_data(config)
    weights = parse_weights(config.scalarization.weights, data.objectives)
    run = RunDir(Path(out) / run_name(config, weights))
    tracking = tracking_callbacks(config, run) if lead else []  # a missing library: refused

    def same(saved: object) -> bool:
        return same_config(saved, config)

    # before any check: a finished run is read, whatever this machine
    finished = broadcast(run.finished_summary(same) if resume and lead else None, shard)
    if finished is not None:
        return _finished(finished, tracking)
    probes = build_probes(config.probes)  # before the other checks, as a run always did
    plan = check_run(config, data, weights=weights, probes=probes)
    # the plan's own callbacks (weight schedule, probes) run first, tracking sees all
    trainer = Trainer(plan, callbacks=[*callbacks, *tracking],
                      progress=progress if lead else False, shard=shard)
    held = (run.training(config.to_yaml(), resume=resume, overwrite=overwrite, same=same)
            if lead else nullcontext((False, None)))
    with _shared(held, shard) as (resuming, finished):
        if finished is not None:
            return _finished(finished, tracking)
        trainer.run_dir = run if lead else None
        try:
            return trainer.fit(resume=resuming)
        except BaseException:
            for tracker in tracking:
                tracker.close("FAILED")
            raise


def _finished(summary: RunSummary, tracking: Sequence[TrackingCallback]) -> RunSummary:
    """A finished run's stored summary, after logging to its trackers what they lack of it."""
    for tracker in tracking:
        tracker.log_finished()
    return summary


@contextmanager
def _shared(held: AbstractContextManager[Any], shard: Shard | None) -> Iterator[Any]:
    """``held`` entered for a ``with`` block (on rank 0: the run folder held and prepared,
    :meth:`RunDir.training`), what it gives (or its one-line refusal) shared with every
    process of ``shard``'s group, so that all of them go on or all of them stop."""
    if shard is None:
        with held as given:
            yield given
        return
    with ExitStack() as stack:
        try:
            decision: tuple[Any, str | None] = (stack.enter_context(held), None)
        except ScalarizeError as exc:
            decision = (None, str(exc))
        given, refused = broadcast(decision, shard)
        if refused is not None:
            raise ScalarizeError(refused)
        yield given


__all__ = ["train_process"]
