"""The outputs of an equal-compute search study (``scalarize study search``): its table as
CSV and JSON, the per-cell results, the transfer table, and the anytime overlay of every
strategy's searches (each seed thin, their mean bold), from the study folder only.

Files written into the study folder: ``table.csv``, ``table.json``
(:func:`~scalarize.analysis.search_study.study_table`), ``cells.csv`` (one row per
(strategy, seed)), ``transfer.csv`` (with ``--transfer-spec``) and ``anytime.png``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from scalarize.analysis.search import anytime, find_searches
from scalarize.analysis.search_study import cells_frame, read_cells, study_table, transfer_table
from scalarize.report.search import anytime_figure

TABLE_CSV, TABLE_JSON, CELLS_CSV = "table.csv", "table.json", "cells.csv"
TRANSFER_CSV, ANYTIME_PNG = "transfer.csv", "anytime.png"


def study_curves(folder: Path) -> pd.DataFrame:
    """The anytime curves of the study's finished searches, labelled by strategy (the first
    part of a search's path in the study folder)."""
    if not find_searches(folder):
        return pd.DataFrame()
    curves = anytime(folder)
    return curves.assign(label=curves.search.str.split("/").str[0])


def write_study_outputs(folder: Path | str) -> dict[str, pd.DataFrame]:
    """Write the study's tables and figure (see the module docstring); the tables."""
    folder = Path(folder)
    cells, reference = read_cells(folder)
    table = study_table(cells, reference)
    table.to_csv(folder / TABLE_CSV, index=False)
    table.to_json(folder / TABLE_JSON, orient="records", indent=1)
    cells_frame(cells).to_csv(folder / CELLS_CSV, index=False)
    tables = {"study": table}
    transfer = transfer_table(cells)
    if not transfer.empty:
        transfer.to_csv(folder / TRANSFER_CSV, index=False)
        tables["transfer"] = transfer
    curves = study_curves(folder)
    if not curves.empty:
        anytime_figure(curves, folder / ANYTIME_PNG)
    return tables


__all__ = ["ANYTIME_PNG", "CELLS_CSV", "TABLE_CSV", "TABLE_JSON", "TRANSFER_CSV",
           "study_curves", "write_study_outputs"]
