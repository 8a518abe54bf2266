"""The gradient-conflict section: curves over training and conflict against performance."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

from scalarize.analysis.conflicts import across_runs
from scalarize.analysis.tables import conflict_tables
from scalarize.errors import ScalarizeError
from scalarize.report.figures import (
    MIN_FIT_POINTS,
    can_band,
    can_fit,
    legend_outside,
    plt,
    save_figure,
)
from scalarize.report.page import Section

SMOOTH_EPOCHS = 3  # the curves are a centred rolling mean over this many epochs


def conflict_curves_figure(epochs: pd.DataFrame, path: Path) -> Path:
    """Share of conflicting pairs and mean cosine over epochs, one line per capacity: the mean
    over multi-task runs of each epoch's value, as a centred rolling mean over
    :data:`SMOOTH_EPOCHS` epochs (an epoch holds few probes, so its raw value jumps; the raw
    means are the faint dots), shaded ± one standard error only where
    :data:`~scalarize.report.figures.MIN_BAND_RUNS` runs make an epoch's value."""
    multi = epochs[epochs.multi_task]
    order = multi.drop_duplicates("capacity").sort_values("params").capacity
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, measure, label in zip(axes, ["conflict_share", "cos_mean"],
                                  ["share of conflicting pairs", "mean pairwise cosine"],
                                  strict=True):
        for i, cap in enumerate(order):
            colour = colours[i % len(colours)]
            grouped = multi[multi.capacity == cap].groupby("epoch")[measure]
            mean, runs = grouped.mean(), grouped.count()
            smooth = mean.rolling(SMOOTH_EPOCHS, center=True, min_periods=1).mean()
            ax.plot(mean.index, mean, ".", color=colour, alpha=0.35, ms=4)
            ax.plot(smooth.index, smooth, color=colour, lw=1.6,
                    label=f"{cap} ({int(runs.max())} run{'s' * (int(runs.max()) > 1)})")
            if can_band(int(runs.min())):
                sem = grouped.sem().rolling(SMOOTH_EPOCHS, center=True, min_periods=1).mean()
                ax.fill_between(smooth.index, smooth - sem, smooth + sem, color=colour,
                                alpha=0.15, lw=0)
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=8))
    legend_outside(axes[1], title="capacity")
    return save_figure(fig, path)


def conflict_vs_metric_figure(epochs: pd.DataFrame, path: Path) -> Path:
    """Each multi-task run's mean conflict share against its final validation accuracy, with
    Pearson's r; the least-squares line only from
    :data:`~scalarize.report.figures.MIN_FIT_POINTS` runs (fewer do not pin a slope down)."""
    multi = epochs[epochs.multi_task]
    per_run = multi.groupby("run").agg(conflict=("conflict_share", "mean"),
                                       final=("final_val_avg_acc", "first"),
                                       capacity=("capacity", "first"),
                                       params=("params", "first"))
    stats = across_runs(epochs)
    fig, ax = plt.subplots(figsize=(6, 4))
    for cap, group in per_run.sort_values("params").groupby("capacity", sort=False):
        ax.scatter(group.conflict, group.final, label=cap, s=25)
    fitted = can_fit(len(per_run)) and np.ptp(per_run.conflict) > 0
    if fitted:
        slope, intercept = np.polyfit(per_run.conflict, per_run.final, 1)
        xs = np.linspace(per_run.conflict.min(), per_run.conflict.max(), 10)
        ax.plot(xs, slope * xs + intercept, color="black", lw=1, label="least squares")
    ax.set_title(f"r = {stats['pearson_r']:.2f} "
                 f"[{stats['pearson_lo']:.2f}, {stats['pearson_hi']:.2f}], n = {stats['n']}"
                 + ("" if fitted else f" (no line under {MIN_FIT_POINTS} runs)"), fontsize=9)
    ax.set_xlabel("mean share of conflicting gradient pairs during training")
    ax.set_ylabel("final validation average accuracy")
    legend_outside(ax, title="capacity")
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
    section.figures.append((f"Gradient conflict over training, per capacity (rolling mean "
                            f"over {SMOOTH_EPOCHS} epochs; dots: each epoch's mean)",
                            conflict_curves_figure(epochs, figures / "conflict_curves.png")))
    section.figures.append(("Conflict against final validation accuracy, across runs",
                            conflict_vs_metric_figure(epochs, figures / "conflict_vs_acc.png")))
    return section
