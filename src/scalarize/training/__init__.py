"""Training: the loop, its callbacks, and the plan it trains (a config resolved once).

Launching a run into a folder (:func:`~scalarize.launch.train_run`) is the launch layer's, above
this package, the probes and the trackers."""

from __future__ import annotations

from scalarize.training import dense_kinds  # noqa: F401  (registers depth_map, normal_map)
from scalarize.training.callbacks import Callback
from scalarize.training.plan import RunPlan, load_data, resolve_device
from scalarize.training.schedule_weights import WeightSchedule
from scalarize.training.trainer import Trainer, TrainingDiverged

__all__ = ["Callback", "RunPlan", "Trainer", "TrainingDiverged", "WeightSchedule", "load_data",
           "resolve_device"]

_MOVED = {"train_run", "check_run", "check_study", "default_run_name", "memory_budget"}


def __getattr__(name: str) -> object:
    """A name that moved to the launch layer is one clear line, not a bare ImportError."""
    if name in _MOVED:
        raise ImportError(f"scalarize.training.{name} moved to scalarize.launch.{name}: "
                          f"from scalarize.launch import {name}")
    raise AttributeError(f"module 'scalarize.training' has no attribute {name!r}")
