"""Searched weights against fixed ones: a search inside a sweep's folder (the demo's ``pbt/``)
whose selected member was retrained on the whole training split (``scalarize replay``: a
``replay-m<id>`` run folder in the search) is set beside the sweep's fixed weightings at the
same capacity, the single-task models and chance. The demo prints this comparison; this
section shows it in the report.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from scalarize.analysis.tables import SearchTables, capacity_tables, search_tables
from scalarize.report.accuracy import accuracy_frame, single_label
from scalarize.report.figures import legend_outside, plt, save_figure
from scalarize.report.notes import read_notes
from scalarize.report.page import Section
from scalarize.runs.layout import SWEEP
from scalarize.runs.records import RunSummary
from scalarize.runs.store import RunDir, StudyDir

REPLAY_PREFIX = "replay-m"


def replays(search: Path) -> list[tuple[str, RunSummary]]:
    """``(folder name, summary)`` of each finished replay run in a search folder."""
    found = []
    for path in sorted(search.glob(f"{REPLAY_PREFIX}*/")):
        summary = RunDir(path).read_summary()
        if summary is not None:
            found.append((path.name, summary))
    return found


def replay_frame(search: SearchTables, name: str, replay: RunSummary, fixed: pd.DataFrame,
                 objectives: list[str]) -> pd.DataFrame:
    """One row per model at the replay's capacity: the replay, the searched member as the
    search scored it, then ``fixed`` (rows of :func:`accuracy_frame` at that capacity); each
    with its test score per objective, average accuracy and its difference from uniform's in
    points."""
    summary = search.summary
    member = next((m for m in summary.members if m.member == summary.best_member), None)
    rows = [{"model": f"{summary.strategy} {name} (retrained on the whole training split)",
             **{o: replay.test.acc.get(o, math.nan) for o in objectives},
             "avg_acc": replay.test.avg_acc}]
    if member is not None and member.test_acc is not None:
        rows.append({"model": f"{summary.strategy} member m{summary.best_member} (as searched)",
                     **{o: member.test_acc.get(o, math.nan) for o in objectives},
                     "avg_acc": member.test_avg_acc})
    for row in fixed.itertuples(index=False):
        rows.append({"model": str(row.weights), **{o: getattr(row, o) for o in objectives},
                     "avg_acc": row.avg_acc})
    frame = pd.DataFrame(rows, columns=["model", *objectives, "avg_acc"])
    uniform = frame.loc[frame.model == "uniform", "avg_acc"]
    frame["vs_uniform_pts"] = (frame.avg_acc - float(uniform.iloc[0])) * 100 if len(
        uniform) else math.nan
    frame.loc[frame.model == "chance", "vs_uniform_pts"] = math.nan
    return frame


def replay_figure(frame: pd.DataFrame, path: Path) -> Path:
    """Test average accuracy of each model of :func:`replay_frame`, chance as a dashed line."""
    shown = frame[frame.model != "chance"].iloc[::-1]
    fig, ax = plt.subplots(figsize=(6.5, 0.4 * len(shown) + 1.2))
    colours = ["tab:red" if i >= len(shown) - 2 else "tab:blue" for i in range(len(shown))]
    ax.barh(range(len(shown)), shown.avg_acc, color=colours)
    ax.set_yticks(range(len(shown)), [m if len(m) <= 40 else m[:38] + "…" for m in shown.model],
                  fontsize=8)
    chance = frame.loc[frame.model == "chance", "avg_acc"]
    if len(chance):
        ax.axvline(float(chance.iloc[0]), color="grey", ls="--", lw=1, label="chance")
        legend_outside(ax)
    values = shown.avg_acc.to_numpy(float)
    ax.set_xlim(max(0.0, float(np.nanmin(values)) - 0.1), min(1.0, float(np.nanmax(values))
                                                             + 0.05))
    ax.set_xlabel("test average accuracy")
    return save_figure(fig, path)


def replay_section(folder: Path, figures: Path) -> Section | None:
    """The replayed searches of a sweep folder against its fixed weightings, or ``None``."""
    if not StudyDir(folder, SWEEP).is_study:
        return None
    searches = search_tables(folder).finished
    found = [(s, name, summary) for s in searches for name, summary in replays(s.folder)]
    if not found:
        return None
    tables = capacity_tables(folder)
    runs = tables.runs
    if runs.empty:
        return None
    notes = read_notes(folder)
    frame = accuracy_frame(runs, tables.gains, notes.chance if notes else None)
    section = Section("Searched weights against fixed weights", [
        "The search's selected member, retrained from scratch on the whole training split "
        "with its weight schedule (scalarize replay), beside the same member as the search "
        "scored it (trained on the search's part of the training split), the sweep's fixed "
        "weightings at the same capacity and budget, the " + single_label(runs) + " models "
        "and chance; test split. vs_uniform_pts is the difference of average accuracy from "
        "uniform weights, in points."])
    for search, name, summary in found:
        spec = summary.model.spec
        fixed = frame[frame.capacity == spec]
        if fixed.empty:
            section.text.append(f"{name} of {search.folder.name} trains {spec}, a capacity "
                                "the sweep does not have: nothing to compare it with.")
            continue
        table = replay_frame(search, name, summary, fixed, tables.objectives)
        where = search.folder.relative_to(folder).as_posix()
        section.tables.append((f"{where}/{name} at {spec}: test score", table))
        section.figures.append((f"{where}/{name} at {spec}: test average accuracy against "
                                "the fixed weightings (searched red)",
                                replay_figure(table, figures / f"replay-{where.replace('/', '-')}"
                                                               f"-{name}.png")))
    return section


__all__ = ["replay_figure", "replay_frame", "replay_section", "replays"]
