"""Training: the loop, its callbacks, and :func:`train_run`, which ties a config to a run folder."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from scalarize.benchmarks import Dataset
from scalarize.config import RunConfig, same_config
from scalarize.models import model_label
from scalarize.registry import target_label
from scalarize.runs.records import RunSummary
from scalarize.runs.store import RunDir
from scalarize.training import dense_kinds  # noqa: F401  (registers depth_map, normal_map)
from scalarize.training.callbacks import Callback
from scalarize.training.check import check_run, check_study
from scalarize.training.schedule_weights import WeightSchedule
from scalarize.training.trainer import Trainer, TrainingDiverged, load_data
from scalarize.weights import parse_weights

if TYPE_CHECKING:
    from scalarize.tracking import TrackingCallback


def default_run_name(config: RunConfig, objectives: Sequence[str]) -> str:
    """``<benchmark>-<view>-<model>-<weights>-<method>-s<seed>``, unless ``config.name`` is set.

    It is one safe folder name: an import target stands for its attribute
    (``mypkg.data:load_mine`` -> ``load_mine``) and the model for its label with its options
    (``mymodels:build`` with ``{width: 64}`` -> ``build-width64``, see
    :func:`~scalarize.models.model_label`)."""
    if config.name:
        return config.name
    label = parse_weights(config.scalarization.weights, objectives).label()
    parts = [target_label(config.benchmark.name), config.benchmark.view,
             model_label(config.model.spec, config.model.options), label,
             target_label(config.method.name), f"s{config.seed}"]
    return "-".join(parts)


def train_run(config: RunConfig, out: Path | str = "runs", *, resume: bool = False,
              overwrite: bool = False, callbacks: Sequence[Callback] = (),
              data: Dataset | None = None, progress: bool | None = None) -> RunSummary:
    """Train ``config`` into ``out/<run name>`` and return its summary.

    Everything (data, model, method, weights, probes) is built and checked before the run
    folder is created or changed, so a refused config leaves no folder behind and
    ``overwrite`` removes the old run only once the new one is known to be valid. The folder
    is locked while the run trains. A finished run with ``resume`` returns its stored summary
    without training again.
    """
    from scalarize.tracking import tracking_callbacks  # tracking builds on training too

    data = data if data is not None else load_data(config)
    run = RunDir(Path(out) / default_run_name(config, data.objectives))
    tracking = tracking_callbacks(config, run)  # a tracker's missing library: refused here
    if resume and run.is_complete and same_config(run.read_config(), config):
        return _finished(run, tracking)
    from scalarize.probes import build_probes  # probes build on the training package

    callbacks = [*build_probes(config.probes), *callbacks, *tracking]  # tracking sees all
    if config.scalarization.schedule is not None:
        callbacks.insert(0, WeightSchedule(config.scalarization.schedule))
    check_run(config, data)
    trainer = Trainer(config, callbacks=callbacks, data=data, progress=progress)
    with run.lock():
        resuming = run.prepare(config.to_yaml(), resume=resume, overwrite=overwrite,
                               same=lambda saved: same_config(saved, config))
        if resuming and run.is_complete:
            return _finished(run, tracking)
        trainer.run_dir = run
        try:
            return trainer.fit(resume=resuming)
        except BaseException:
            for tracker in tracking:
                tracker.close("FAILED")
            raise


def _finished(run: RunDir, tracking: Sequence[TrackingCallback]) -> RunSummary:
    """A finished run's stored summary, after logging to its trackers what they lack of it."""
    summary = run.read_summary()
    assert summary is not None
    for tracker in tracking:
        tracker.log_finished()
    return summary

__all__ = ["Callback", "Trainer", "TrainingDiverged", "WeightSchedule", "check_run",
           "check_study", "default_run_name", "load_data", "train_run"]
