"""All runs under a folder as one pandas DataFrame (``scalarize runs DIR``).

Example:
    >>> import tempfile
    >>> load_runs(tempfile.mkdtemp()).empty  # no runs yet; after training:
    True
    >>> load_runs("runs").groupby("model")["test_avg_acc"].mean()  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from scalarize.runs.store import RunDir, find_runs


def run_row(run: RunDir) -> dict[str, Any]:
    """One row: identity from the config, status, and the summary's metrics."""
    config = run.read_config()
    summary = run.read_summary()
    metrics = run.read_metrics()
    row: dict[str, Any] = {
        "run": run.path.name,
        "benchmark": config["benchmark"]["name"],
        "view": config["benchmark"]["view"],
        "model": config["model"]["spec"],
        "method": config["method"]["name"],
        "seed": config["seed"],
        "status": "complete" if summary else "incomplete",
        "epochs": metrics[-1].epoch if metrics else 0,
    }
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
    """A DataFrame with one row per run under ``root`` (empty when there are none)."""
    return pd.DataFrame([run_row(run) for run in find_runs(root)])
