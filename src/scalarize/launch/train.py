""":func:`train_run`: one config, resolved once into a plan, trained into its run folder."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from scalarize.benchmarks import Dataset
from scalarize.config import RunConfig, with_nproc
from scalarize.errors import ScalarizeError
from scalarize.launch.distributed import process_group, spawn_run, torchrun_shard
from scalarize.launch.naming import default_run_name, run_name
from scalarize.launch.process import train_process
from scalarize.runs.records import RunSummary
from scalarize.training.callbacks import Callback


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
        with process_group(config, shard, "env://"):
            return train_process(config, out, shard, resume=resume, overwrite=overwrite,
                                 progress=progress)
    return train_process(config, out, resume=resume, overwrite=overwrite, callbacks=callbacks,
                         data=data, progress=progress)


__all__ = ["default_run_name", "run_name", "train_run"]
