"""The comparison table in the paper's shape: method, average accuracy (mean ± std over seeds),
per-objective metrics, Δ vs single-task, time per step and peak memory.

A benchmark with a published results table (NYUv2, Cityscapes: see
:class:`~scalarize.runs.records.TableColumn`) gets that table's columns instead of one
primary metric per objective (e.g. ``Segmentation mIoU ↑`` … ``Surface Normal 30 ↑``), and
``Δm%``: the gain over the single-task models averaged over those columns, as Nash-MTL and
FAMO report it (Maninis et al.'s Δ over every metric rather than one per task).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from scalarize.analysis.gain import multitask_gain
from scalarize.errors import ScalarizeError
from scalarize.runs.records import TableColumn
from scalarize.runs.store import comparison_runs


def load_compare(folder: Path | str) -> pd.DataFrame:
    """One row per finished run of a comparison folder: each objective's primary metric
    (``m_<name>``: accuracy, or a dense task's error) and score (``s_<name>``), the average
    score, time per step, peak memory. ``attrs['lower_is_better']`` marks the errors."""
    plan, done = comparison_runs(folder)
    objectives = plan.objectives
    rows, lower = [], {}
    for run, summary in done:
        row = {**run.dump(), "avg_acc": summary.test.avg_acc,
               "step_ms": 1000 * summary.step_seconds, "peak_memory_mb": summary.peak_memory_mb}
        for o in objectives:
            row[f"m_{o}"], lower[o] = summary.test.primary_value(o)
            row[f"s_{o}"] = summary.test.acc[o]
        for i, column in enumerate(plan.columns):
            row[f"c{i}"] = summary.test.metrics.get(column.task, {}).get(column.metric, np.nan)
        rows.append(row)
    frame = pd.DataFrame(rows)
    frame.attrs["objectives"] = objectives
    frame.attrs["lower_is_better"] = lower
    frame.attrs["columns"] = list(plan.columns)
    return frame


#: What the direction markers of a comparison table mean (the CLI and the report print it).
LEGEND = "↓: lower is better (an error); ↑ or no marker: higher is better"


def objective_column(objective: str, lower_is_better: bool) -> str:
    """An objective's column in the comparison table: its name, with ``↓`` when its metric is
    an error (lower is better), so an error never reads as an accuracy beside the others."""
    return f"{objective} ↓" if lower_is_better else objective


def column_name(column: TableColumn) -> str:
    """A published column's header: group, label and direction, e.g. ``Depth Abs Err ↓``."""
    return f"{column.group} {column.label} {'↑' if column.higher_is_better else '↓'}"


def _published(group: pd.DataFrame, singles: pd.DataFrame, columns: list[TableColumn]
               ) -> dict[str, float]:
    """A method's row in the benchmark's published columns (means over seeds, scaled) and its
    Δm% (the mean over seeds of the gain over every column against the single-task model of
    the column's task and the same seed)."""
    row = {column_name(c): group[f"c{i}"].mean() * c.scale for i, c in enumerate(columns)}
    baseline = {(r.seed, r.single_task): r for _, r in singles.iterrows()}
    gains = []
    for _, r in group.iterrows():
        if all((r.seed, c.task) in baseline for c in columns):
            keys = [f"c{i}" for i in range(len(columns))]
            gains.append(multitask_gain(
                {k: r[k] for k in keys},
                {k: baseline[(r.seed, c.task)][k] for k, c in zip(keys, columns, strict=True)},
                {k: not c.higher_is_better for k, c in zip(keys, columns, strict=True)}))
    row["Δm%"] = float(np.mean(gains)) if gains else np.nan
    return row


def compare_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per method label (per model and method label where the comparison lists models, the
    ``model`` column first): mean ± std of average accuracy, per-objective means, mean Δ over seeds
    against the single-task runs of the same seed, mean time per step, peak memory. With a
    benchmark's published columns: those columns and Δm% in place of the per-objective means
    and Δ (the ``method`` column first, the benchmark's columns next, as published). A column
    whose metric is lower-is-better is marked ``↓`` (:func:`objective_column`); the table's
    ``attrs['legend']`` says so in a line when it has one."""
    if runs.empty:
        raise ScalarizeError("no run of the comparison has finished yet")
    objectives = runs.attrs["objectives"]
    columns: list[TableColumn] = runs.attrs.get("columns") or []
    lower = runs.attrs.get("lower_is_better") or {}
    named = {o: objective_column(o, bool(lower.get(o))) for o in objectives}
    singles = runs[runs.single_task.notna()]
    baseline = {(r.seed, r.single_task): r[f"m_{r.single_task}"] for _, r in singles.iterrows()}
    rows = []
    # a comparison of architectures: one row per model and method, the model named first
    with_models = "model" in runs and bool(runs.model.notna().any())
    for key, group in runs[runs.single_task.isna()].groupby(
            ["model", "label"] if with_models else "label", sort=False):
        model, label = key if with_models else (None, key)
        gains = []
        for _, r in group.iterrows():
            if all((r.seed, o) in baseline for o in objectives):
                base = {o: baseline[(r.seed, o)] for o in objectives}
                gains.append(multitask_gain({o: r[f"m_{o}"] for o in objectives}, base,
                                            runs.attrs.get("lower_is_better")))
        memory = group.peak_memory_mb.dropna()
        metrics = _published(group, singles, columns) if columns else {
            **{named[o]: group[f"m_{o}"].mean() for o in objectives},
            "gain_pct": float(np.mean(gains)) if gains else np.nan}
        rows.append({
            **({"model": model} if with_models else {}),
            "method": label, **metrics, "avg_acc": group.avg_acc.mean(),
            "avg_acc_std": group.avg_acc.std(ddof=1) if len(group) > 1 else np.nan,
            "step_ms": group.step_ms.mean(),
            "peak_memory_mb": memory.max() if len(memory) else np.nan,
            "seeds": len(group),
        })
    if len(singles):
        metrics = ({column_name(c): singles[singles.single_task == c.task][f"c{i}"].mean()
                    * c.scale for i, c in enumerate(columns)} if columns else
                   {named[o]: singles[singles.single_task == o][f"m_{o}"].mean()
                    for o in objectives})
        rows.append({"method": "single-task", **metrics, "avg_acc": np.mean(
            [singles[singles.single_task == o][f"s_{o}"].mean() for o in objectives]),
            "seeds": singles.seed.nunique()})
    table = pd.DataFrame(rows)
    if any(str(c).endswith("↓") for c in table.columns):
        table.attrs["legend"] = LEGEND
    return table
