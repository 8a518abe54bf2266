"""The per-objective accuracy section of a sweep: what the demo prints first. Per capacity, each
weighting's test score on every objective (task, or domain in the multi-domain view) beside
the single-task models' (each objective from its own model: the diagonal) and, when the study
left its notes (:mod:`scalarize.report.notes`), the chance level; a bar chart of the same;
and, with two objectives, the Pareto front of the fixed weightings per capacity.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from scalarize.analysis.capacity import cell_keys
from scalarize.analysis.pareto import pareto_fronts
from scalarize.analysis.tables import capacity_tables
from scalarize.report.figures import legend_outside, plt, save_figure
from scalarize.report.notes import read_notes
from scalarize.report.page import Section
from scalarize.runs.layout import SWEEP
from scalarize.runs.store import StudyDir

MAX_PANELS = 8  # capacities drawn in the bar chart (evenly chosen by size beyond)


def single_label(runs: pd.DataFrame) -> str:
    """``single-domain`` in the multi-domain view, else ``single-task``."""
    return "single-domain" if runs.attrs.get("view") == "mdl" else "single-task"


def accuracy_frame(runs: pd.DataFrame, gains: pd.DataFrame,
                   chance: dict[str, float] | None = None) -> pd.DataFrame:
    """Per cell (capacity, and data setting), smallest first: one row per weighting (mean over
    seeds of each objective's test metric, the average accuracy and Δ in %), one row of the
    single-task models (each objective from its own model) and, given ``chance``, a row of
    chance levels. Columns: the cell keys, ``params``, ``weights``, one per objective,
    ``avg_acc``, ``gain_pct``, ``seeds``.

    Example:
        >>> runs = pd.DataFrame({"name": ["u", "a", "b"], "capacity": ["s"] * 3,
        ...     "params": [10] * 3,
        ...     "weights_label": ["uniform", "onehot-a", "onehot-b"],
        ...     "single_task": [None, "a", "b"], "seed": [0] * 3, "m_a": [0.6, 0.7, 0.1],
        ...     "m_b": [0.4, 0.2, 0.5], "avg_acc": [0.5, 0.7, 0.5]})
        >>> runs.attrs.update(objectives=["a", "b"], view="mtl")
        >>> gains = runs.iloc[:1].assign(gain=-10.0)
        >>> frame = accuracy_frame(runs, gains, {"a": 0.5, "b": 0.25})
        >>> frame[["weights", "a", "b", "avg_acc", "gain_pct"]]
               weights    a     b  avg_acc  gain_pct
        0      uniform  0.6  0.40    0.500     -10.0
        1  single-task  0.7  0.50    0.600       NaN
        2       chance  0.5  0.25    0.375       NaN
    """
    objectives = list(runs.attrs["objectives"])
    keys = cell_keys(runs)
    gain = (gains.set_index("name").gain if {"name", "gain"} <= set(gains.columns)
            else pd.Series(dtype=float))
    runs = runs.assign(gain_pct=runs["name"].map(gain).astype(float))
    rows = []
    for cell, group in runs.sort_values("params", kind="stable").groupby(keys, sort=False):
        at = dict(zip(keys, cell if isinstance(cell, tuple) else (cell,), strict=True))
        at["params"] = int(group.params.iloc[0])
        multi = group[group.single_task.isna()]
        for label, runs_of in multi.groupby("weights_label", sort=False):
            rows.append({**at, "weights": label,
                         **{o: runs_of[f"m_{o}"].mean() for o in objectives},
                         "avg_acc": runs_of.avg_acc.mean(), "gain_pct": runs_of.gain_pct.mean(),
                         "seeds": runs_of.seed.nunique()})
        singles = {o: group.loc[group.single_task == o, f"m_{o}"] for o in objectives}
        if all(len(s) for s in singles.values()):
            means = {o: float(s.mean()) for o, s in singles.items()}
            rows.append({**at, "weights": single_label(runs), **means,
                         "avg_acc": float(np.mean(list(means.values()))), "gain_pct": math.nan,
                         "seeds": min(len(s) for s in singles.values())})
        if chance:
            rows.append({**at, "weights": "chance", **{o: chance.get(o, math.nan)
                                                       for o in objectives},
                         "avg_acc": float(np.mean([chance.get(o, math.nan)
                                                   for o in objectives])),
                         "gain_pct": math.nan, "seeds": math.nan})
    frame = pd.DataFrame(rows, columns=[*keys, "params", "weights", *objectives, "avg_acc",
                                        "gain_pct", "seeds"])
    return frame.astype({"seeds": "Int64"})  # chance has none: a missing count, not 1.000


def _cells(frame: pd.DataFrame, keys: list[str]) -> list[tuple[str, pd.DataFrame]]:
    """(title, rows) per cell, in the frame's order."""
    return [(" · ".join(str(v) for v in (cell if isinstance(cell, tuple) else (cell,))), group)
            for cell, group in frame.groupby(keys, sort=False)]


def _evenly(items: list, most: int) -> list:
    """At most ``most`` of ``items``, evenly spaced, first and last kept."""
    if len(items) <= most:
        return items
    return [items[round(i)] for i in np.linspace(0, len(items) - 1, most)]


def accuracy_figure(frame: pd.DataFrame, objectives: list[str], keys: list[str],
                    single: str, path: Path) -> Path:
    """One panel per cell: a bar per weighting for each objective, the single-task score as
    a black bar edge-to-edge line, the chance level as a dashed line."""
    cells = _evenly(_cells(frame, keys), MAX_PANELS)
    columns = min(len(cells), 4)
    rows = math.ceil(len(cells) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(2.2 + 1.1 * len(objectives) * columns,
                                                     2.8 * rows), squeeze=False, sharey=True)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    weightings = frame[~frame.weights.isin([single, "chance"])].weights.drop_duplicates()
    width = 0.8 / max(len(weightings), 1)
    x = np.arange(len(objectives))
    for ax, (title, group) in zip(axes.ravel(), cells, strict=False):
        by = group.set_index("weights")
        for i, label in enumerate(weightings):
            if label in by.index:
                ax.bar(x - 0.4 + width * (i + 0.5), by.loc[label, objectives].to_numpy(float),
                       width, color=colours[i % len(colours)], label=label)
        for reference, style in ((single, {"color": "black", "lw": 2.0}),
                                 ("chance", {"color": "grey", "lw": 1.2, "ls": "--"})):
            if reference in by.index:
                values = by.loc[reference, objectives].to_numpy(float)
                ax.hlines(values, x - 0.45, x + 0.45, label=reference, **style)
        ax.set_xticks(x, objectives, fontsize=8)
        ax.set_title(title, fontsize=9)
    for ax in axes.ravel()[len(cells):]:
        ax.set_axis_off()
    for ax in axes[:, 0]:
        ax.set_ylabel("test score")
    legend_outside(axes[0, -1] if len(cells) >= columns else axes[0, len(cells) - 1])
    return save_figure(fig, path)


def pareto_sweep_figure(frame: pd.DataFrame, objectives: list[str], keys: list[str],
                        single: str, lower: dict[str, bool], path: Path) -> Path:
    """Two objectives: each fixed weighting's test scores (mean over seeds) as a point, one
    colour per cell, its Pareto front joined; the single-task scores as dotted lines of the
    same colour (the corner a multi-task model would have to reach)."""
    a, b = objectives
    fig, ax = plt.subplots(figsize=(6, 4.2))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    sign = np.array([-1.0 if lower.get(a) else 1.0, -1.0 if lower.get(b) else 1.0])
    cells = _cells(frame, keys)
    for i, (title, group) in enumerate(cells):
        colour = colours[i % len(colours)]
        multi = group[~group.weights.isin([single, "chance"])].dropna(subset=[a, b])
        if multi.empty:
            continue
        points = multi[[a, b]].to_numpy(float)
        front = multi.iloc[pareto_fronts(points * sign)[0]].sort_values(a)
        ax.scatter(points[:, 0], points[:, 1], color=colour, s=22, alpha=0.7)
        ax.plot(front[a], front[b], "o-", color=colour, lw=1.5, label=title)
        if len(multi) <= 4:
            for row in multi.itertuples():
                ax.annotate(str(row.weights), (getattr(row, a), getattr(row, b)), fontsize=7,
                            textcoords="offset points", xytext=(4, 3), color=colour)
        base = group[group.weights == single]
        if len(base):
            ax.axvline(float(base[a].iloc[0]), color=colour, ls=":", lw=1)
            ax.axhline(float(base[b].iloc[0]), color=colour, ls=":", lw=1)
    ax.margins(0.15)
    ax.set_xlabel(f"test score: {a}")
    ax.set_ylabel(f"test score: {b}")
    legend_outside(ax, title="front per capacity")
    return save_figure(fig, path)


def accuracy_section(folder: Path, figures: Path) -> Section | None:
    """Per-objective test scores of a sweep with its baselines, or ``None`` when the folder
    is no sweep or no multi-task run has finished."""
    if not StudyDir(folder, SWEEP).is_study:
        return None
    tables = capacity_tables(folder)
    runs = tables.runs
    if runs.empty or not runs.single_task.isna().any():
        return None
    notes = read_notes(folder)
    chance = notes.chance if notes is not None else {}
    objectives = tables.objectives
    keys = cell_keys(runs)
    single = single_label(runs)
    frame = accuracy_frame(runs, tables.gains, chance)
    what = "domain" if runs.attrs.get("view") == "mdl" else "task"
    lower = runs.attrs.get("lower_is_better", {})
    text = [f"Test score per {what} at each capacity: every weighting (mean over seeds), the "
            f"{single} models (each {what} scored by the model trained on it alone) and "
            + ("chance (always answering the most frequent training class). "
               if chance else "no chance level (the study left no notes). ")
            + f"gain_pct is Δ, the mean relative gain over the {single} models of the same "
            "capacity and seed, in %."]
    if notes is not None and notes.test_sizes:
        text.append("Test examples per " + what + ": " + ", ".join(
            f"{k} {v:,}" for k, v in notes.test_sizes.items()) + ".")
    if any(lower.get(o) for o in objectives):
        text.append("Lower is better for " + ", ".join(o for o in objectives if lower.get(o))
                    + " (an error).")
    section = Section(f"Test score per {what}", text)
    section.tables.append((f"Test score per {what}, per capacity", frame))
    section.figures.append((f"Test score per {what}: bars per weighting, black line the "
                            f"{single} model, dashed chance",
                            accuracy_figure(frame, objectives, keys, single,
                                            figures / "accuracy_per_objective.png")))
    if len(objectives) == 2:
        section.figures.append((f"Pareto front of the fixed weightings on the test scores of "
                                f"{objectives[0]} and {objectives[1]}, per capacity; dotted: "
                                f"the {single} models' scores",
                                pareto_sweep_figure(frame, objectives, keys, single, lower,
                                                    figures / "pareto_weightings.png")))
    return section


__all__ = ["accuracy_figure", "accuracy_frame", "accuracy_section", "pareto_sweep_figure",
           "single_label"]
