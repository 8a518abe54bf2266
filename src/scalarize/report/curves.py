"""Training curves of a sweep: each run's training loss and validation average accuracy over
the epochs (its ``metrics.jsonl``), one panel per capacity, one line per weighting (mean over
seeds; a band of ± one standard error only where :data:`~scalarize.report.figures.MIN_BAND_RUNS`
seeds make a point), the single-task models dashed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

from scalarize.report.figures import can_band, legend_outside, plt, save_figure
from scalarize.report.page import Section
from scalarize.runs.layout import SWEEP
from scalarize.runs.store import RunDir, StudyDir, read_or_skip, sweep_runs

MAX_PANELS = 4  # capacities drawn (evenly chosen by size beyond)
MEASURES = [("train_loss", "training loss (weighted objective)"),
            ("val_avg_acc", "validation average accuracy")]


def curves_frame(folder: Path | str) -> pd.DataFrame:
    """One row per epoch of each finished run of the sweep in ``folder``: ``capacity``,
    ``params``, ``model`` (the weighting, or ``single-task <objective>``), ``seed``, ``epoch``,
    ``train_loss`` (the weighted training objective) and ``val_avg_acc``."""
    _, done = sweep_runs(folder)
    rows = []
    for run, summary in done:
        folder_of = RunDir(Path(folder) / run.name)
        records = read_or_skip(folder_of.path, folder_of.read_metrics) or []
        model = (f"single-task {run.single_task}" if run.single_task is not None
                 else run.weights_label)
        for record in records:
            rows.append({"capacity": run.capacity, "params": summary.model.params,
                         "model": model, "single": run.single_task is not None,
                         "seed": run.seed, "epoch": record.epoch,
                         "train_loss": record.train_objective,
                         "val_avg_acc": record.val_avg_acc})
    return pd.DataFrame(rows, columns=["capacity", "params", "model", "single", "seed", "epoch",
                                       "train_loss", "val_avg_acc"])


def curves_figure(curves: pd.DataFrame, path: Path) -> Path:
    """Rows: training loss and validation average accuracy; columns: capacities (at most
    :data:`MAX_PANELS`, evenly chosen by size)."""
    order = curves.sort_values("params", kind="stable").capacity.drop_duplicates().tolist()
    if len(order) > MAX_PANELS:
        order = [order[round(i)] for i in np.linspace(0, len(order) - 1, MAX_PANELS)]
    models = curves.sort_values("single", kind="stable").model.drop_duplicates().tolist()
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    colour = {m: colours[i % len(colours)] for i, m in enumerate(models)}
    fig, axes = plt.subplots(2, len(order), figsize=(0.8 + 3.0 * len(order), 5.4),
                             squeeze=False, sharex=True)
    for column, cap in enumerate(order):
        at = curves[curves.capacity == cap]
        for row, (measure, label) in enumerate(MEASURES):
            ax = axes[row, column]
            for model, group in at.groupby("model", sort=False):
                by_epoch = group.groupby("epoch")[measure]
                mean, runs = by_epoch.mean(), by_epoch.count()
                single = bool(group.single.iloc[0])
                ax.plot(mean.index, mean, color=colour[model], lw=1.0 if single else 1.6,
                        ls="--" if single else "-", label=model)
                if can_band(int(runs.min())):
                    sem = by_epoch.sem()
                    ax.fill_between(mean.index, mean - sem, mean + sem, color=colour[model],
                                    alpha=0.15, lw=0)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=6))
            if column == 0:
                ax.set_ylabel(label, fontsize=8)
            if row == 0:
                ax.set_title(str(cap), fontsize=9)
            else:
                ax.set_xlabel("epoch")
            ax.tick_params(labelsize=7)
    legend_outside(axes[0, -1])
    return save_figure(fig, path)


def curves_section(folder: Path, figures: Path) -> Section | None:
    """Training curves of the runs of a sweep folder, or ``None`` (no sweep, no metrics)."""
    if not StudyDir(folder, SWEEP).is_study:
        return None
    curves = curves_frame(folder)
    if curves.empty:
        return None
    seeds = curves.groupby(["capacity", "model"]).seed.nunique()
    shown = curves.capacity.nunique()
    low, high = int(seeds.min()), int(seeds.max())
    count = f"{low} seed{'s' * (high > 1)}" if low == high else f"{low}–{high} seeds"
    text = ("Per epoch of every finished run: the training loss (the weighted objective the "
            f"run minimises) and the validation average accuracy; mean over {count}"
            + (", ± one standard error" if can_band(low) else
               " (no band: fewer than 3 seeds)")
            + "; single-task models dashed (their loss and accuracy are their one objective's)"
            + (f"; {MAX_PANELS} of {shown} capacities shown" if shown > MAX_PANELS else "")
            + ".")
    section = Section("Training curves", [text])
    section.figures.append(("Training loss and validation average accuracy over epochs",
                            curves_figure(curves, figures / "training_curves.png")))
    return section


__all__ = ["curves_figure", "curves_frame", "curves_section"]
