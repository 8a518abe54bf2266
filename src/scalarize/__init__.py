"""scalarize: multi-task and multi-domain learning by scalarization, at scale.

The names below are imported on first use, so ``import scalarize.report`` (or the analysis)
never pays for the training stack.

Example:
    >>> from scalarize import load_config, train_run  # doctest: +SKIP
    >>> summary = train_run(load_config("configs/shapes_mtl.yaml"), out="runs")  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "RunConfig": "scalarize.config", "load_config": "scalarize.config",
    "ScalarizeError": "scalarize.errors",
    "load_runs": "scalarize.runs", "RunSummary": "scalarize.runs",
    "Trainer": "scalarize.training", "train_run": "scalarize.launch",
    "SimplexWeights": "scalarize.weights", "parse_weights": "scalarize.weights",
}

if TYPE_CHECKING:
    from scalarize.config import RunConfig, load_config
    from scalarize.errors import ScalarizeError
    from scalarize.launch import train_run
    from scalarize.runs import RunSummary, load_runs
    from scalarize.training import Trainer
    from scalarize.weights import SimplexWeights, parse_weights


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'scalarize' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)


__all__ = ["RunConfig", "RunSummary", "ScalarizeError", "SimplexWeights", "Trainer",
           "load_config", "load_runs", "parse_weights", "train_run"]
