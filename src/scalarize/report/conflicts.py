"""The gradient-conflict section: curves over training and conflict against performance."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from scalarize.analysis.conflicts import across_runs
from scalarize.analysis.tables import conflict_tables
from scalarize.errors import ScalarizeError
from scalarize.report.figures import plt, save_figure
from scalarize.report.page import Section


def conflict_curves_figure(epochs: pd.DataFrame, path: Path) -> Path:
    """Share of conflicting pairs and mean cosine over epochs, one line per capacity (mean over
    multi-task runs, shaded ± one standard error)."""
    multi = epochs[epochs.multi_task]
    order = multi.drop_duplicates("capacity").sort_values("params").capacity
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, measure, label in zip(axes, ["conflict_share", "cos_mean"],
                                  ["share of conflicting pairs", "mean pairwise cosine"],
                                  strict=True):
        for cap in order:
            grouped = multi[multi.capacity == cap].groupby("epoch")[measure]
            mean, sem = grouped.mean(), grouped.sem().fillna(0)
            ax.plot(mean.index, mean, marker=".", label=cap)
            ax.fill_between(mean.index, mean - sem, mean + sem, alpha=0.15)
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
    axes[0].legend(fontsize=8)
    return save_figure(fig, path)


def conflict_vs_metric_figure(epochs: pd.DataFrame, path: Path) -> Path:
    """Each multi-task run's mean conflict share against its final validation accuracy, with
    the least-squares line and Pearson's r."""
    multi = epochs[epochs.multi_task]
    per_run = multi.groupby("run").agg(conflict=("conflict_share", "mean"),
                                       final=("final_val_avg_acc", "first"),
                                       capacity=("capacity", "first"))
    stats = across_runs(epochs)
    fig, ax = plt.subplots(figsize=(6, 4))
    for cap, group in per_run.groupby("capacity"):
        ax.scatter(group.conflict, group.final, label=cap, s=25)
    if len(per_run) >= 2 and np.ptp(per_run.conflict) > 0:
        slope, intercept = np.polyfit(per_run.conflict, per_run.final, 1)
        xs = np.linspace(per_run.conflict.min(), per_run.conflict.max(), 10)
        ax.plot(xs, slope * xs + intercept, color="black", lw=1)
    ax.set_title(f"r = {stats['pearson_r']:.2f} "
                 f"[{stats['pearson_lo']:.2f}, {stats['pearson_hi']:.2f}], n = {stats['n']}")
    ax.set_xlabel("mean share of conflicting gradient pairs during training")
    ax.set_ylabel("final validation average accuracy")
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def conflicts_section(folder: Path, figures: Path) -> Section | None:
    """Gradient conflicts of the runs under ``folder``, or ``None`` when none was probed."""
    try:
        tables = conflict_tables(folder)
    except ScalarizeError:
        return None
    epochs = tables.curves
    if not epochs.multi_task.any():
        return None
    section = Section("Gradient conflicts", [
        "Per-objective gradients of the shared encoder, measured by the conflict probe. "
        "Within runs: Pearson r between an epoch's mean measure and that epoch's validation "
        "average accuracy, averaged over runs (interval over runs). Across runs: each run's "
        "mean measure during training against its final validation average accuracy "
        "(Fisher-z intervals). Multi-task runs only."])
    section.tables.append(("Conflict measures against validation accuracy",
                           tables.correlations))
    section.tables.append(("Conflict share per capacity", tables.per_capacity))
    if not tables.floor.empty:
        section.tables.append(("Cross-objective conflict against the same-objective floor "
                               "(two minibatches of one objective), per capacity",
                               tables.floor))
    if not tables.per_layer.empty:
        section.tables.append(("Conflict share per encoder block", tables.per_layer))
    section.tables.append(("Conflict against final validation accuracy, capacity held fixed "
                           "(partial correlation, Holm)", tables.partial))
    section.tables.append(("Conflict share per weighting", tables.per_weighting))
    section.tables.append(("Conflict share per weighting and capacity (mean over seeds "
                           "[bootstrap 95% interval])", tables.plane))
    section.tables.append(("Trends: Spearman ρ of capacity means against log parameters and "
                           "of weighting means against the distance from uniform (exact "
                           "permutation p, Holm)", tables.trends))
    section.figures.append(("Gradient conflict over training, per capacity",
                            conflict_curves_figure(epochs, figures / "conflict_curves.png")))
    section.figures.append(("Conflict against final validation accuracy, across runs",
                            conflict_vs_metric_figure(epochs, figures / "conflict_vs_acc.png")))
    return section
