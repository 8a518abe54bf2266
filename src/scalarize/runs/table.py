"""All runs under a folder as one pandas DataFrame (``scalarize runs DIR``). A run whose config,
summary or metrics is corrupt is left out with one
:class:`~scalarize.errors.SkippedRunWarning` naming it.

Example:
    >>> import tempfile
    >>> load_runs(tempfile.mkdtemp()).empty  # no runs yet; after training:
    True
    >>> load_runs("runs").groupby("model")["test_avg_acc"].mean()  # doctest: +SKIP
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd

from scalarize.errors import ScalarizeError
from scalarize.runs import layout
from scalarize.runs.store import RunDir, find_runs, read_or_skip

_IDENTITY = {"benchmark": ("benchmark", "name"), "view": ("benchmark", "view"),
             "model": ("model", "spec"), "method": ("method", "name"), "seed": ("seed",)}


def _setting(config: dict[str, Any], keys: tuple[str, ...], path: Path) -> Any:
    value: Any = config
    for key in keys:
        if not isinstance(value, dict) or key not in value:
            raise ScalarizeError(f"{path} has no {'.'.join(keys)}; it is not a run config "
                                 "scalarize wrote (delete the run folder or train it again "
                                 "with --overwrite)")
        value = value[key]
    return value


def run_row(run: RunDir) -> dict[str, Any]:
    """One row: identity from the config, status, and the summary's metrics (a one-line
    :class:`ScalarizeError` when one of them is corrupt)."""
    config = run.read_config()
    summary = run.read_summary()
    metrics = run.read_metrics()
    row: dict[str, Any] = {"run": run.path.name}
    row.update({column: _setting(config, keys, run.path / layout.CONFIG)
                for column, keys in _IDENTITY.items()})
    row["status"] = "complete" if summary else "incomplete"
    row["epochs"] = metrics[-1].epoch if metrics else 0
    if summary:
        row["weights"] = summary.weights_label
        row.update({f"w_{k}": v for k, v in summary.weights.as_dict().items()})
        row["params"] = summary.model.params
        row["flops"] = summary.model.flops
        row["test_avg_acc"] = summary.test.avg_acc
        row.update({f"test_acc_{k}": v for k, v in summary.test.acc.items()})
        row["val_avg_acc"] = summary.val.avg_acc
        row["train_seconds"] = summary.train_seconds
    return row


def load_runs(root: Path | str) -> pd.DataFrame:
    """A DataFrame with one row per readable run under ``root`` (empty when there are none);
    a corrupt run is skipped with one :class:`~scalarize.errors.SkippedRunWarning`."""
    rows = [read_or_skip(run.path, partial(run_row, run)) for run in find_runs(root)]
    return pd.DataFrame([row for row in rows if row is not None])
