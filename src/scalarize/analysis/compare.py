"""The comparison table in the paper's shape: method, average accuracy (mean ± std over seeds),
per-objective metrics, Δ vs single-task, time per step and peak memory."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from scalarize.analysis.gain import multitask_gain
from scalarize.errors import ScalarizeError
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
        rows.append(row)
    frame = pd.DataFrame(rows)
    frame.attrs["objectives"] = objectives
    frame.attrs["lower_is_better"] = lower
    return frame


def compare_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per method label: mean ± std of average accuracy, per-objective means, mean Δ over seeds
    against the single-task runs of the same seed, mean time per step, peak memory."""
    if runs.empty:
        raise ScalarizeError("no run of the comparison has finished yet")
    objectives = runs.attrs["objectives"]
    singles = runs[runs.single_task.notna()]
    baseline = {(r.seed, r.single_task): r[f"m_{r.single_task}"] for _, r in singles.iterrows()}
    rows = []
    for label, group in runs[runs.single_task.isna()].groupby("label", sort=False):
        gains = []
        for _, r in group.iterrows():
            if all((r.seed, o) in baseline for o in objectives):
                base = {o: baseline[(r.seed, o)] for o in objectives}
                gains.append(multitask_gain({o: r[f"m_{o}"] for o in objectives}, base,
                                            runs.attrs.get("lower_is_better")))
        memory = group.peak_memory_mb.dropna()
        rows.append({
            "method": label, "avg_acc": group.avg_acc.mean(),
            "avg_acc_std": group.avg_acc.std(ddof=1) if len(group) > 1 else np.nan,
            **{o: group[f"m_{o}"].mean() for o in objectives},
            "gain_pct": float(np.mean(gains)) if gains else np.nan,
            "step_ms": group.step_ms.mean(),
            "peak_memory_mb": memory.max() if len(memory) else np.nan,
            "seeds": len(group),
        })
    if len(singles):
        rows.append({"method": "single-task", "avg_acc": np.mean(
            [singles[singles.single_task == o][f"s_{o}"].mean() for o in objectives]),
            **{o: singles[singles.single_task == o][f"m_{o}"].mean() for o in objectives},
            "seeds": singles.seed.nunique()})
    return pd.DataFrame(rows)
