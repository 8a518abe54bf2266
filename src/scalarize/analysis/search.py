"""Readers of search folders as pandas DataFrames, through the run store's
:class:`~scalarize.runs.SearchDir` and its records (whatever engine wrote the folder).

Example:
    >>> frame = population_frame("searches/pbt")  # doctest: +SKIP
    >>> frame.pivot(index="epoch", columns="member", values="val_avg_acc")  # doctest: +SKIP
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd

from scalarize.runs.records import EpochEvent, ExploitEvent, SearchSummary
from scalarize.runs.store import SearchDir, read_or_skip

EXPLOIT_COLUMNS = ["epoch", "member", "parent", "weights_before", "weights"]


def is_search(folder: Path | str) -> bool:
    """Whether ``folder`` holds a search (finished or not)."""
    return SearchDir(folder).is_study


def find_searches(folder: Path | str) -> list[Path]:
    """``folder`` itself when it is a search, else the finished searches up to two levels
    down."""
    folder = Path(folder)
    if is_search(folder):
        return [folder]
    found = [p for p in {*folder.glob("*/"), *folder.glob("*/*/")}
             if SearchDir(p).is_finished and is_search(p)]
    return sorted(found)


def population_frame(folder: Path | str) -> pd.DataFrame:
    """One row per member-epoch: member, epoch, weights (``w_<objective>``), held-out accuracy
    per objective (``val_<objective>``) and on average, and the node that trained it."""
    rows = []
    for event in SearchDir(folder).read_events():
        if not isinstance(event, EpochEvent):
            continue
        row: dict[str, Any] = {"member": event.member, "epoch": event.epoch,
                               "val_avg_acc": event.val_avg_acc, "node": event.node}
        row.update({f"w_{k}": v for k, v in event.weights.as_dict().items()})
        row.update({f"val_{k}": v for k, v in event.val_acc.items()})
        rows.append(row)
    return pd.DataFrame(rows)


def exploit_frame(folder: Path | str) -> pd.DataFrame:
    """One row per exploit: epoch, member replaced, member copied, weights before and after."""
    rows = [{"epoch": e.epoch, "member": e.member, "parent": e.parent,
             "weights_before": None if e.weights_before is None else e.weights_before.as_dict(),
             "weights": e.weights.as_dict()}
            for e in SearchDir(folder).read_events() if isinstance(e, ExploitEvent)]
    return pd.DataFrame(rows, columns=EXPLOIT_COLUMNS)


def members_frame(folder: Path | str) -> pd.DataFrame:
    """One row per member of a finished search: final weights, held-out and test accuracy,
    number of exploits, on the Pareto front or not."""
    summary = SearchDir(folder).read_summary()
    rows = []
    for m in summary.members:
        row: dict[str, Any] = {"member": m.member, "diverged": m.diverged,
                               "exploits": len(m.lineage), "val_avg_acc": m.val_avg_acc,
                               "test_avg_acc": m.test_avg_acc,
                               "pareto": m.member in summary.pareto_front,
                               "best": m.member == summary.best_member}
        row.update({f"w_{o}": w for o, w in zip(summary.objectives, m.weights, strict=True)})
        rows.append(row)
    return pd.DataFrame(rows)


def _summary_and_config(search: SearchDir) -> tuple[SearchSummary, dict[str, Any]]:
    return search.read_summary(), search.read_config()


def searches_table(folder: Path | str) -> pd.DataFrame:
    """Finished searches in ``folder`` and its sub-folders, one row each: strategy, seed,
    member-epochs, the selected member's held-out and test accuracy, test hypervolume. A search
    whose summary or config is corrupt is skipped with one
    :class:`~scalarize.errors.SkippedRunWarning`."""
    root = Path(folder)
    rows = []
    for path in sorted([root, *root.glob("*/")]):
        search = SearchDir(path)
        if not (search.is_finished and search.is_study):
            continue
        read = read_or_skip(path, partial(_summary_and_config, search), "search")
        if read is None:
            continue
        summary, config = read
        rows.append({"search": path.name, "strategy": summary.strategy,
                     "engine": summary.engine, "seed": config.get("seed", 0),
                     "population": summary.population,
                     "member_epochs": summary.member_epochs,
                     "val_avg_acc": summary.val_avg_acc,
                     "test_avg_acc": summary.test_avg_acc,
                     "hypervolume_test": summary.hypervolume_test,
                     "seconds": summary.seconds})
    return pd.DataFrame(rows)


def by_strategy(table: pd.DataFrame) -> pd.DataFrame:
    """:func:`searches_table` summarised per strategy over seeds (mean; std of the test
    accuracy). The strategy is the folder name without its ``-s<seed>`` suffix, so that, e.g.,
    ``uniform-s0`` (a one-point grid) and ``grid-s0`` stay apart."""
    label = table.search.str.replace(r"-s\d+$", "", regex=True)
    return table.assign(strategy=label).groupby("strategy", sort=False).agg(
        member_epochs=("member_epochs", "first"),
        test_avg_acc=("test_avg_acc", "mean"), test_std=("test_avg_acc", "std"),
        val_avg_acc=("val_avg_acc", "mean"),
        hypervolume_test=("hypervolume_test", "mean"),
        seconds=("seconds", "mean"), seeds=("seed", "nunique"))


__all__ = ["by_strategy", "exploit_frame", "find_searches", "is_search", "members_frame",
           "population_frame", "searches_table"]
