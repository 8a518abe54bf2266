""":func:`train_run`: one config, resolved once into a plan, trained into its run folder."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from scalarize.benchmarks import Dataset
from scalarize.config import RunConfig, same_config, with_nproc
from scalarize.errors import ScalarizeError
from scalarize.launch.check import check_run
from scalarize.launch.distributed import join_group, spawn_run, torchrun_shard, train_shard
from scalarize.launch.naming import default_run_name, run_name
from scalarize.probes import build_probes
from scalarize.runs.records import RunSummary
from scalarize.runs.store import RunDir
from scalarize.tracking import TrackingCallback, tracking_callbacks
from scalarize.training.callbacks import Callback
from scalarize.training.plan import load_data
from scalarize.training.trainer import Trainer
from scalarize.weights import parse_weights


def train_run(config: RunConfig, out: Path | str = "runs", *, resume: bool = False,
              overwrite: bool = False, callbacks: Sequence[Callback] = (),
              data: Dataset | None = None, progress: bool | None = None,
              nproc: int | None = None) -> RunSummary:
    """Train ``config`` into ``out/<run name>`` and return its summary.

    Everything (data, model, method, weights, probes) is built and checked once, into the
    plan the trainer takes, before the run folder is created or changed, so a refused config
    leaves no folder behind and ``overwrite`` removes the old run only once the new one is
    known to be valid. The folder is locked while the run trains. A finished run with
    ``resume`` returns its stored summary without training again. A run refused while it
    trains (a fault in the user's data, at the batch that carries it) before its first
    checkpoint leaves no folder; after it, the folder keeps its checkpoint and no summary, and
    running the command again continues from there (:meth:`RunDir.prepare`).

    ``nproc`` (default: the config's ``train.nproc``) > 1 trains the run data-parallel on that
    many processes spawned here; under ``torchrun`` this process trains its part
    (:mod:`scalarize.launch.distributed`). Each process loads its own data there (``data`` is
    then not used), and ``callbacks`` stay in this process (refused).
    """
    if nproc is not None:
        config = with_nproc(config, nproc)
    nproc = config.train.nproc
    shard = torchrun_shard()
    if nproc > 1 or shard is not None:
        if callbacks:
            raise ScalarizeError("callbacks stay in this process; train on several processes "
                                 "without them")
        if shard is None:
            summary = spawn_run(config, out, nproc, resume=resume, overwrite=overwrite,
                                progress=progress)
            assert summary is not None  # nothing stops it early
            return summary
        if nproc not in (1, shard.world):  # --nproc sets train.nproc
            raise ScalarizeError(f"--nproc (train.nproc) {nproc} under torchrun, which "
                                 f"already started {shard.world} processes; drop --nproc or "
                                 "set train.nproc=1")
        join_group(config, shard, "env://")
        return train_shard(config, out, shard, resume=resume, overwrite=overwrite,
                           progress=progress)
    data = data if data is not None else load_data(config)
    weights = parse_weights(config.scalarization.weights, data.objectives)
    run = RunDir(Path(out) / run_name(config, weights))
    tracking = tracking_callbacks(config, run)  # a tracker's missing library: refused here

    def same(saved: object) -> bool:
        return same_config(saved, config)

    finished = run.finished_summary(same) if resume else None
    if finished is not None:  # before any check: a finished run is read, whatever this machine
        return _finished(finished, tracking)
    probes = build_probes(config.probes)  # before the other checks, as a run always did
    plan = check_run(config, data, weights=weights, probes=probes)
    # the plan's own callbacks (weight schedule, probes) run first, tracking sees all
    trainer = Trainer(plan, callbacks=[*callbacks, *tracking], progress=progress)
    # the folder held and prepared; a refusal before the first checkpoint leaves no folder
    with run.training(config.to_yaml(), resume=resume, overwrite=overwrite,
                      same=same) as (resuming, finished):
        if finished is not None:
            return _finished(finished, tracking)
        trainer.run_dir = run
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


__all__ = ["default_run_name", "run_name", "train_run"]
