"""scalarize: multi-task and multi-domain learning by scalarization, at scale.

Example:
    >>> from scalarize import load_config, train_run  # doctest: +SKIP
    >>> summary = train_run(load_config("configs/shapes_mtl.yaml"), out="runs")  # doctest: +SKIP
"""

from scalarize.config import RunConfig, load_config
from scalarize.errors import ScalarizeError
from scalarize.runs import load_runs
from scalarize.training import Trainer, train_run
from scalarize.weights import SimplexWeights, parse_weights

__version__ = "0.1.0"

__all__ = ["RunConfig", "ScalarizeError", "SimplexWeights", "Trainer", "load_config",
           "load_runs", "parse_weights", "train_run"]
