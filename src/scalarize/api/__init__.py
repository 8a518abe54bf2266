"""scalarize on your own model, tasks and data, from Python.

Declare tasks with :func:`task`, wrap data with :func:`from_arrays` (or stream a map-style
``torch.utils.data.Dataset`` with :func:`from_datasets`), give a model as a spec or a factory
(:func:`model`), then :func:`train`, :func:`sweep`, :func:`search`, :func:`compare`,
:func:`replay`, :func:`conflicts`, :func:`searches` and :func:`report` — the same code and run
store as the command line; then :func:`load_run` gives a trained run back
(``load_run(path).predict(x)``) and :func:`export` writes it as ONNX, TorchScript or an exported
program. See docs/extending.md for the contracts.

Example:
    >>> import scalarize.api as sz
    >>> sz.task("depth", kind="depth").kind
    'depth'
"""

from scalarize.api.data import carve, from_arrays, from_datasets, task
from scalarize.api.runs import (
    Model,
    capacity,
    compare,
    conflicts,
    model,
    replay,
    report,
    search,
    searches,
    sweep,
    train,
)
from scalarize.benchmarks import Dataset, Task
from scalarize.trained import TrainedModel, load_run
from scalarize.trained.export import export

__all__ = ["Dataset", "Model", "Task", "TrainedModel", "capacity", "carve", "compare",
           "conflicts", "export", "from_arrays", "from_datasets", "load_run", "model", "replay",
           "report", "search", "searches", "sweep", "task", "train"]
