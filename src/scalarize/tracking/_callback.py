"""The trainer callback that tracks a run, and the same logging for a run already finished.

:class:`TrackingCallback` opens the run on every backend when training starts (logging the
resolved config as parameters and, on a resume, the epochs restored from the checkpoint that a
backend lacks), logs every epoch record as it is written (train losses, validation scores,
losses and metrics, learning rate, weights, timings, and whatever probes add, such as the
conflict probe's ``conflict_share``, ``cos_mean`` and ``gms_mean``), then the final summary.
A run in a study folder is nested under the study's parent run.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from scalarize.config import RunConfig
from scalarize.runs.records import RunSummary
from scalarize.runs.store import RunDir
from scalarize.tracking._base import RunRef, Status, flat_params
from scalarize.tracking._run import (
    RunTracker,
    backends,
    check,
    study_of,
    summary_metrics,
)
from scalarize.training.callbacks import Callback

if TYPE_CHECKING:
    from scalarize.training.trainer import Trainer


def run_params(config: RunConfig) -> dict[str, str]:
    """The resolved config as flat parameters (``train.lr``, ``model.spec``, ...), tracking
    itself left out."""
    return flat_params(config.model_dump(mode="json", exclude={"tracking"}))


class TrackingCallback(Callback):
    """Tracks the run in ``run_dir`` trained with ``config`` on the backends of
    ``config.tracking`` (see the module doc). Added last by
    :func:`~scalarize.launch.train_run`, so it sees what the other callbacks add."""

    def __init__(self, config: RunConfig, run_dir: RunDir) -> None:
        self.config = config
        self.run_dir = run_dir
        folder = run_dir.path.resolve()
        self.ref = RunRef(folder.name, str(folder), study_of(folder))
        self.tracker = RunTracker(backends(config.tracking), self.ref)
        self.open = False

    def _start(self, history: Sequence[Mapping[str, Any]], objectives: Sequence[str]) -> None:
        tags = {"scalarize.run": self.ref.name, "scalarize.objectives": ",".join(objectives)}
        if self.ref.study is not None:
            tags["scalarize.study_kind"] = self.ref.study.kind
        self.tracker.start(run_params(self.config), tags, history)
        schedule = self.config.scalarization.schedule
        if schedule is not None:
            self.tracker.text("schedule.json", json.dumps([[e, list(w)] for e, w in schedule]))
        self.open = True

    def _finish(self, summary: RunSummary) -> None:
        self.tracker.summary(summary_metrics(summary), summary.epochs,
                             summary.to_json(indent=1))
        self.close("FINISHED")

    def close(self, status: Status) -> None:
        """End the run on every backend (:func:`~scalarize.launch.process.train_process` calls
        it with ``FAILED`` when training raised)."""
        if self.open:
            self.tracker.close(status)
            self.open = False

    # -- the trainer's hooks ------------------------------------------------------------------
    def on_fit_start(self, trainer: Trainer) -> None:
        self._start(trainer.history, trainer.objectives.names)

    def on_epoch_end(self, trainer: Trainer, record: dict[str, Any]) -> None:
        self.tracker.epoch(record)

    def on_fit_end(self, trainer: Trainer, summary: RunSummary) -> None:
        self._finish(summary)

    # -- a finished run -----------------------------------------------------------------------
    def log_finished(self) -> None:
        """Log the run as its folder holds it (finished): what a backend lacks of it."""
        summary = self.run_dir.read_summary()
        if summary is None:
            return
        self._start([r.dump() for r in self.run_dir.read_metrics()], summary.objectives)
        self._finish(summary)


def tracking_callbacks(config: RunConfig, run_dir: RunDir) -> list[TrackingCallback]:
    """The callback that tracks ``config``'s run in ``run_dir`` (none when tracking is off);
    a backend whose library is missing is refused here, in one line."""
    if not config.tracking.enabled:
        return []
    check(config.tracking)
    return [TrackingCallback(config, run_dir)]
