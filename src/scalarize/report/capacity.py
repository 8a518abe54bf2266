"""The capacity-study section: tables and figures from :mod:`scalarize.analysis.capacity`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from scalarize.analysis.capacity import distance_from_uniform
from scalarize.analysis.tables import capacity_tables
from scalarize.report.figures import can_band, legend_outside, log_axis, plt, save_figure
from scalarize.report.page import Section
from scalarize.report.tables import MISSING
from scalarize.runs.layout import SWEEP
from scalarize.runs.store import StudyDir

MIN_RANKED = 3  # weightings two capacities must share for a rank correlation to mean anything


def gain_over_capacity_figure(caps: pd.DataFrame, path: Path) -> Path:
    """Heatmaps of best and uniform Δ over two capacity axes, or Δ vs parameters otherwise."""
    axes_cols = [c for c in caps.columns if c.startswith("axis_") and caps[c].nunique() > 1]
    if len(axes_cols) == 2:
        rows, cols = axes_cols
        fig, axes = plt.subplots(1, 2, figsize=(10, 4))
        limit = float(np.nanmax(np.abs(caps[["best_gain", "uniform_gain"]].to_numpy()))) or 1.0
        for ax, key, title in zip(axes, ["best_gain", "uniform_gain"],
                                  ["weights selected on validation", "uniform"], strict=True):
            grid = caps.pivot(index=rows, columns=cols, values=key).sort_index()
            grid = grid[sorted(grid.columns)]
            image = ax.imshow(grid.to_numpy(dtype=float), cmap="RdYlGn", origin="lower",
                              aspect="auto", vmin=-limit, vmax=limit)
            ax.set_xticks(range(len(grid.columns)), [str(c) for c in grid.columns])
            ax.set_yticks(range(len(grid.index)), [str(i) for i in grid.index])
            ax.set_xlabel(cols.removeprefix("axis_"))
            ax.set_ylabel(rows.removeprefix("axis_"))
            for (i, j), value in np.ndenumerate(grid.to_numpy(dtype=float)):
                ax.text(j, i, f"{value:.1f}" if np.isfinite(value) else MISSING, ha="center",
                        va="center", fontsize=9)
            ax.set_title(f"Δ vs single-task (%), {title}")
            fig.colorbar(image, ax=ax)
    else:
        ordered = caps.sort_values("params")
        fig, ax = plt.subplots(figsize=(6.5, 4))
        seeds = ordered["seeds"] if "seeds" in ordered.columns else pd.Series(1, ordered.index)
        banded = seeds.map(lambda n: can_band(int(n))).to_numpy(bool)
        for key, label in [("best_gain", "weights selected on validation"),
                           ("uniform_gain", "uniform")]:
            err = np.vstack([ordered[key] - ordered[f"{key}_lo"],
                             ordered[f"{key}_hi"] - ordered[key]])
            err[:, ~banded] = 0.0  # no interval from fewer than three seeds
            ax.errorbar(ordered.params, ordered[key], yerr=np.nan_to_num(err), marker="o",
                        capsize=3, label=label)
        log_axis(ax, ordered.params)
        ax.margins(x=0.12)
        ax.axhline(0, color="grey", lw=0.8)
        for _, row in ordered.iterrows():
            ax.annotate(row.capacity, (row.params, row.best_gain), fontsize=7,
                        textcoords="offset points", xytext=(3, 4), annotation_clip=False)
        ax.set_xlabel("parameters")
        ax.set_ylabel("Δ vs single-task (%)")
        legend_outside(ax)
    return save_figure(fig, path)


def data_plane_figure(caps: pd.DataFrame, path: Path) -> Path:
    """Heatmaps of best and uniform Δ over the (data setting × capacity) plane of a sweep with
    ``sweep.data``, each cell with its 95% interval where seeds give one."""
    capacities = caps.sort_values("params", kind="stable").capacity.drop_duplicates().tolist()
    settings = caps.data.drop_duplicates().tolist()
    limit = float(np.nanmax(np.abs(caps[["best_gain", "uniform_gain"]].to_numpy(dtype=float)))
                  ) if caps[["best_gain", "uniform_gain"]].notna().any().any() else 1.0
    width = 2.2 + 1.3 * len(capacities)
    fig, axes = plt.subplots(1, 2, figsize=(2 * width, 1.2 + 0.8 * len(settings)))
    for ax, key, title in zip(axes, ["best_gain", "uniform_gain"],
                              ["weights selected on validation", "uniform"], strict=True):
        grid = caps.pivot(index="data", columns="capacity", values=key).reindex(
            index=settings, columns=capacities).to_numpy(dtype=float)
        lo = caps.pivot(index="data", columns="capacity", values=f"{key}_lo").reindex(
            index=settings, columns=capacities).to_numpy(dtype=float)
        hi = caps.pivot(index="data", columns="capacity", values=f"{key}_hi").reindex(
            index=settings, columns=capacities).to_numpy(dtype=float)
        image = ax.imshow(grid, cmap="RdYlGn", aspect="auto", vmin=-limit, vmax=limit)
        ax.set_xticks(range(len(capacities)), capacities, rotation=30, ha="right", fontsize=8)
        ax.set_yticks(range(len(settings)), [s.removeprefix("data-") for s in settings],
                      fontsize=8)
        for (i, j), value in np.ndenumerate(grid):
            text = MISSING if not np.isfinite(value) else f"{value:.1f}" + (
                f"\n[{lo[i, j]:.1f}, {hi[i, j]:.1f}]" if np.isfinite(lo[i, j]) else "")
            ax.text(j, i, text, ha="center", va="center", fontsize=7)
        ax.set_title(f"Δ vs single-task (%), {title}", fontsize=9)
        fig.colorbar(image, ax=ax)
    return save_figure(fig, path)


def gain_vs_weights_figure(summary: pd.DataFrame, objectives: list[str], path: Path) -> Path:
    """Δ against the weights: a curve per capacity (two objectives), a ternary projection
    (three), or Δ against the distance from uniform (more)."""
    caps = summary.drop_duplicates("capacity").capacity.tolist()
    if len(objectives) == 2:
        fig, ax = plt.subplots(figsize=(6, 4))
        for cap in caps:
            group = summary[summary.capacity == cap].sort_values(f"w_{objectives[0]}")
            ax.plot(group[f"w_{objectives[0]}"], group.gain, marker="o", label=cap)
            if group.gain_lo.notna().any() and can_band(int(group.seeds.min())):
                ax.fill_between(group[f"w_{objectives[0]}"], group.gain_lo, group.gain_hi,
                                alpha=0.15)
        ax.set_xlabel(f"weight of {objectives[0]} (1 − weight of {objectives[1]})")
        ax.set_ylabel("Δ vs single-task (%)")
        ax.axhline(0, color="grey", lw=0.8)
        legend_outside(ax)
    elif len(objectives) == 3:
        fig, axes = plt.subplots(1, len(caps), figsize=(3.6 * len(caps), 3.4), squeeze=False)
        corners = np.array([[0.0, 0.0], [1.0, 0.0], [0.5, np.sqrt(3) / 2]])
        for ax, cap in zip(axes[0], caps, strict=True):
            group = summary[summary.capacity == cap]
            xy = group[[f"w_{o}" for o in objectives]].to_numpy() @ corners
            points = ax.scatter(xy[:, 0], xy[:, 1], c=group.gain, cmap="RdYlGn", s=60)
            ax.plot(*np.vstack([corners, corners[:1]]).T, color="grey", lw=0.8)
            for corner, name in zip(corners, objectives, strict=True):
                ax.annotate(name, corner, fontsize=8, ha="center",
                            xytext=(0, -10 if corner[1] == 0 else 4), textcoords="offset points")
            ax.set_title(cap, fontsize=9)
            ax.set_axis_off()
            fig.colorbar(points, ax=ax, shrink=0.7, label="Δ (%)")
    else:
        fig, ax = plt.subplots(figsize=(6, 4))
        weight_cols = [f"w_{o}" for o in objectives]
        for cap in caps:
            group = summary[summary.capacity == cap]
            dist = [distance_from_uniform(w) for w in group[weight_cols].to_numpy()]
            ax.scatter(dist, group.gain, label=cap, s=20)
        ax.set_xlabel("distance of the weights from uniform (total variation)")
        ax.set_ylabel("Δ vs single-task (%)")
        legend_outside(ax)
    return save_figure(fig, path)


def rank_matrix_figure(summary: pd.DataFrame, pairs: pd.DataFrame, path: Path) -> Path:
    """Kendall τ between the weight orderings of every pair of capacities."""
    caps = summary.drop_duplicates("capacity").capacity.tolist()
    matrix = np.eye(len(caps))
    index = {c: i for i, c in enumerate(caps)}
    for _, row in pairs.iterrows():
        i, j = index[row.capacity_a], index[row.capacity_b]
        matrix[i, j] = matrix[j, i] = row.kendall_tau
    fig, ax = plt.subplots(figsize=(1.2 * len(caps) + 2.5, 1.0 * len(caps) + 1.5))
    image = ax.imshow(matrix, vmin=-1, vmax=1, cmap="coolwarm")
    ax.set_xticks(range(len(caps)), caps, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(caps)), caps, fontsize=8)
    for (i, j), value in np.ndenumerate(matrix):
        ax.text(j, i, f"{value:.2f}" if np.isfinite(value) else MISSING, ha="center",
                va="center", fontsize=8)
    ax.set_title("Kendall τ of weight rankings")
    fig.colorbar(image, ax=ax)
    return save_figure(fig, path)


def ranked_pairs(pairs: pd.DataFrame, summary: pd.DataFrame, objectives: list[str]
                 ) -> tuple[pd.DataFrame, str]:
    """The pairs of capacities whose rank correlation means something (at least
    :data:`MIN_RANKED` weightings in common: with two, τ is ±1 and its p-value 1 by
    construction), and a sentence for the reader: why there is no table, or that with two
    objectives every weighting lies on one line of the simplex, where a high τ is expected.

    Example:
        >>> pairs = pd.DataFrame({"capacity_a": ["s"], "capacity_b": ["l"],
        ...                       "kendall_tau": [1.0], "weightings": [2]})
        >>> summary = pd.DataFrame({"weights_label": ["uniform", "w0.75-0.25"]})
        >>> kept, note = ranked_pairs(pairs, summary, ["a", "b"])
        >>> kept.empty
        True
        >>> print(note)  # doctest: +NORMALIZE_WHITESPACE
        Rank stability of the weightings between capacities needs ≥ 3 weightings; this sweep
        has 2 (uniform, w0.75-0.25), whose Kendall τ would be ±1 by construction.
    """
    labels = summary.weights_label.drop_duplicates().tolist() if len(summary) else []
    kept = pairs[pairs.weightings >= MIN_RANKED] if "weightings" in pairs.columns else pairs
    if kept.empty:
        if len(labels) >= MIN_RANKED:
            return kept, ""
        return kept, (f"Rank stability of the weightings between capacities needs "
                      f"≥ {MIN_RANKED} weightings; this sweep has {len(labels)} "
                      f"({', '.join(map(str, labels))}), whose Kendall τ would be ±1 by "
                      "construction.")
    if len(objectives) == 2:
        return kept, ("With two objectives every weighting lies on one line of the simplex "
                      "(the weight of one objective sets the other's), and Δ along a line is "
                      "often single-peaked, so a high τ between capacities is expected rather "
                      "than telling.")
    return kept, ""


def capacity_section(folder: Path, figures: Path) -> Section | None:
    """The capacity study of a sweep folder, or ``None`` when the folder is no sweep."""
    if not StudyDir(folder, SWEEP).is_study:
        return None
    tables = capacity_tables(folder)
    runs = tables.runs
    if runs.empty:
        return Section("Capacity study", [f"No run of the sweep in {folder} has finished yet."])
    if tables.gains.empty:
        return Section("Capacity study", ["No weighting has its single-task baselines yet."])
    summary = tables.weightings
    objectives = tables.objectives
    caps = tables.per_capacity
    by_data = tables.by_data
    cell = ["data", "capacity"] if by_data else ["capacity"]
    pairs = tables.rank_stability
    regret = tables.transfer_regret
    section = Section(
        "Capacity study",
        [f"{len(runs)} of {runs.attrs['planned']} planned runs finished; objectives: "
         f"{', '.join(objectives)} ({runs.attrs['view']}). Δ is the mean relative gain of a "
         "multi-task model over the single-task models of the same capacity and seed, in %, "
         "on the test split; the best weighting of a capacity is the one with the highest mean Δ "
         "on the validation split (its test Δ is reported); intervals are Student-t 95% over "
         "seeds."],
    )
    show = [*cell, "params", "best_weights", "selected_on", "best_gain", "best_gain_lo",
            "best_gain_hi",
            "uniform_gain", "uniform_gain_lo", "uniform_gain_hi", "best_distance_from_uniform",
            "seeds"]
    section.tables.append(("Gain per capacity", caps[[c for c in show if c in caps.columns]]))
    pairs, rank_note = ranked_pairs(pairs, summary, objectives)
    if rank_note:
        section.text.append(rank_note)
    if not pairs.empty:
        known = [*cell[:-1], "capacity_a", "capacity_b", "kendall_tau", "kendall_p",
                 "spearman_rho", "weightings"]
        extra = [c for c in pairs.columns if c not in {*known, "spearman_p"}]
        section.tables.append(("Rank stability of weightings between capacities",
                               pairs[[c for c in known if c in pairs.columns] + extra]))
    if not regret.empty:
        section.tables.append(("Regret of transferring a smaller model's best weights to a "
                               "larger one (Δ points)",
                               regret))
    section.tables.append(("All weightings", summary[
        [*cell, "weights_label", "gain", "gain_lo", "gain_hi", "avg_acc", "seeds"]]))
    if by_data:
        section.figures.append(("Multi-task gain over data setting and capacity",
                                data_plane_figure(caps, figures / "gain_data_capacity.png")))
        # one curve per (capacity, data setting)
        summary = summary.assign(capacity=summary.capacity + " · " +
                                 summary.data.str.removeprefix("data-"))
    else:
        section.figures.append(("Multi-task gain over capacity", gain_over_capacity_figure(
            caps, figures / "gain_over_capacity.png")))
    section.figures.append(("Multi-task gain against the weights",
                            gain_vs_weights_figure(summary, objectives,
                                                   figures / "gain_vs_weights.png")))
    if not pairs.empty and not by_data:
        section.figures.append(("Rank correlation of weightings between capacities",
                                rank_matrix_figure(summary, pairs, figures / "rank_tau.png")))
    return section
