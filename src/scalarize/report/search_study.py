"""The outputs of an equal-compute search study (``scalarize study search``): its table as
CSV and JSON, the per-cell results, the transfer table, and the anytime overlay of every
strategy's searches (each seed thin, their mean bold), from the study folder only.

Files written into the study folder: ``table.csv``, ``table.json``
(:func:`~scalarize.analysis.search_study.study_table`), ``cells.csv`` (one row per
(strategy, seed)), ``vs_uniform.csv`` (every strategy against uniform, with the equivalence
test: :func:`~scalarize.analysis.search_study.uniform_table`), ``transfer.csv`` (with
``--transfer-spec``) and ``anytime.png``; when the data plants pure-noise objectives,
``recovery.csv`` and ``recovery.png`` (:mod:`scalarize.analysis.recovery`: the weight share
the best-so-far member leaves on them, against member-epochs spent, uniform's share dashed).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from scalarize.analysis.recovery import recovery
from scalarize.analysis.search import anytime, find_searches
from scalarize.analysis.search_study import (
    cells_frame,
    read_cells,
    study_table,
    transfer_table,
    uniform_table,
)
from scalarize.report.figures import plt, save_figure
from scalarize.report.search import anytime_figure, mean_step

TABLE_CSV, TABLE_JSON, CELLS_CSV = "table.csv", "table.json", "cells.csv"
TRANSFER_CSV, ANYTIME_PNG, UNIFORM_CSV = "transfer.csv", "anytime.png", "vs_uniform.csv"
RECOVERY_CSV, RECOVERY_PNG = "recovery.csv", "recovery.png"


def study_curves(folder: Path) -> pd.DataFrame:
    """The anytime curves of the study's finished searches, labelled by strategy (the first
    part of a search's path in the study folder)."""
    if not find_searches(folder):
        return pd.DataFrame()
    curves = anytime(folder)
    return curves.assign(label=curves.search.str.split("/").str[0])


def recovery_figure(curves: pd.DataFrame, uniform_share: float, path: Path) -> Path:
    """The noise share of the best-so-far member against member-epochs spent, one colour per
    strategy (each seed thin, their mean bold); uniform's share dashed."""
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (label, group) in enumerate(curves.groupby("label", sort=False)):
        colour = colours[i % len(colours)]
        for _, one in group.groupby("search", sort=False):
            ax.step(one.member_epochs, one.noise_share, where="post", color=colour, lw=0.7,
                    alpha=0.35)
        budgets, mean = mean_step(group, "noise_share")
        ax.step(budgets, mean, where="post", color=colour, lw=2.0, label=label)
    ax.axhline(uniform_share, color="black", ls="--", lw=1.0, label="uniform")
    ax.set_xlabel("member-epochs spent")
    ax.set_ylabel("weight share on pure-noise objectives")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=7)
    return save_figure(fig, path)


def _study_record(folder: Path) -> dict[str, object]:
    path = folder / "study.json"
    try:
        return dict(json.loads(path.read_text())) if path.is_file() else {}
    except ValueError:
        return {}


def write_study_outputs(folder: Path | str) -> dict[str, pd.DataFrame]:
    """Write the study's tables and figure (see the module docstring); the tables."""
    folder = Path(folder)
    cells, reference = read_cells(folder)
    table = study_table(cells, reference)
    table.to_csv(folder / TABLE_CSV, index=False)
    table.to_json(folder / TABLE_JSON, orient="records", indent=1)
    cells_frame(cells).to_csv(folder / CELLS_CSV, index=False)
    tables = {"study": table}
    versus = uniform_table(cells)
    if not versus.empty:
        versus.to_csv(folder / UNIFORM_CSV, index=False)
        tables["vs_uniform"] = versus
    transfer = transfer_table(cells)
    if not transfer.empty:
        transfer.to_csv(folder / TRANSFER_CSV, index=False)
        tables["transfer"] = transfer
    curves = study_curves(folder)
    if not curves.empty:
        anytime_figure(curves, folder / ANYTIME_PNG)
    record = _study_record(folder)
    noise, objectives = record.get("pure_noise") or [], record.get("objectives") or []
    if noise and objectives:
        curves = recovery(folder, list(noise))  # type: ignore[call-overload]
        if not curves.empty:
            curves = curves.assign(label=curves.search.str.split("/").str[0])
            curves.to_csv(folder / RECOVERY_CSV, index=False)
            recovery_figure(curves, len(noise) / len(objectives),  # type: ignore[arg-type]
                            folder / RECOVERY_PNG)
    return tables


__all__ = ["ANYTIME_PNG", "CELLS_CSV", "RECOVERY_CSV", "RECOVERY_PNG", "TABLE_CSV",
           "TABLE_JSON", "TRANSFER_CSV", "UNIFORM_CSV", "recovery_figure", "study_curves",
           "write_study_outputs"]
