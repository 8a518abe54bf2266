"""Experiment tracking: runs, sweeps, comparisons and searches logged to TensorBoard, MLflow
and (where installed) W&B, next to scalarize's own run store (see docs/tracking.md).

Switched on by the ``tracking`` section of a config (``tracking: {tensorboard: DIR}``,
``{mlflow: URI}``, ``{wandb: {project: P}}``) or ``--track BACKEND=TARGET``. A run is tracked
by a trainer callback (:class:`TrackingCallback`, built by
:func:`~scalarize.launch.train_run`); a run in a study folder is nested under the study's
parent run, found or created by the first of them; a search is logged from its folder by
:func:`track_search`. A tracking failure warns once (:class:`TrackingWarning`) and training
goes on; tracking never changes a run's identity (``--resume`` works with it switched on or
off).
"""

from scalarize.tracking._base import Backend, RunRef, StudyRef, TrackingWarning
from scalarize.tracking._callback import TrackingCallback, run_params, tracking_callbacks
from scalarize.tracking._run import (
    BACKENDS,
    RunTracker,
    backends,
    check,
    finish_study,
    study_of,
)
from scalarize.tracking._search import track_search
from scalarize.tracking.cli import track_overrides, with_tracking

__all__ = ["BACKENDS", "Backend", "RunRef", "RunTracker", "StudyRef", "TrackingCallback",
           "TrackingWarning", "backends", "check", "finish_study", "run_params", "study_of",
           "track_overrides", "track_search", "tracking_callbacks", "with_tracking"]
