"""What a search leaves behind, the same for every engine: ``population.jsonl`` (one line per
member-epoch and per exploit) and ``summary.json`` (members, their schedules and lineage, the
selected member, the Pareto front and hypervolume). Readers return pandas DataFrames.

Example:
    >>> frame = population_frame("searches/pbt")  # doctest: +SKIP
    >>> frame.pivot(index="epoch", columns="member", values="val_avg_acc")  # doctest: +SKIP
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from scalarize.errors import ScalarizeError
from scalarize.runs.store import SUMMARY, read_jsonl
from scalarize.search.policy import hypervolume, pareto_fronts

# the layout of a search folder (its summary is a run's SUMMARY file name)
CONFIG_FILE, PLAN, POPULATION = "search.yaml", "search.json", "population.jsonl"


def read_population(folder: Path | str) -> list[dict[str, Any]]:
    """Every complete line of ``population.jsonl``."""
    return read_jsonl(Path(folder) / POPULATION)


def is_search(folder: Path | str) -> bool:
    return (Path(folder) / PLAN).is_file()


def read_summary(folder: Path | str) -> dict[str, Any]:
    """``summary.json`` of a finished search, with a clear error otherwise."""
    path = Path(folder) / SUMMARY
    if not is_search(folder):
        raise ScalarizeError(f"{folder} is not a search folder; run 'scalarize search' into it")
    if not path.is_file():
        raise ScalarizeError(f"the search in {folder} has not finished; run the same "
                             "'scalarize search' command again to continue it")
    return json.loads(path.read_text())


def population_frame(folder: Path | str) -> pd.DataFrame:
    """One row per member-epoch: member, epoch, weights (``w_<objective>``), held-out accuracy
    per objective (``val_<objective>``) and on average."""
    rows = []
    for record in read_population(folder):
        if record.get("event") != "epoch":
            continue
        row = {"member": record["member"], "epoch": record["epoch"],
               "val_avg_acc": record["val_avg_acc"], "node": record.get("node")}
        row.update({f"w_{k}": v for k, v in record["weights"].items()})
        row.update({f"val_{k}": v for k, v in record["val_acc"].items()})
        rows.append(row)
    return pd.DataFrame(rows)


def exploit_frame(folder: Path | str) -> pd.DataFrame:
    """One row per exploit: epoch, member replaced, member copied, weights before and after."""
    rows = [{"epoch": r["epoch"], "member": r["member"], "parent": r["parent"],
             "weights_before": r["weights_before"], "weights": r["weights"]}
            for r in read_population(folder) if r.get("event") == "exploit"]
    return pd.DataFrame(rows, columns=["epoch", "member", "parent", "weights_before",
                                       "weights"])


def search_summary(strategy: str, engine: str, objectives: list[str], epochs: int,
                   members: list[dict[str, Any]], seconds: float) -> dict[str, Any]:
    """The summary of a finished search from its members' final entries: the member selected
    by held-out average accuracy, the held-out Pareto front and hypervolumes."""
    alive = [m for m in members if not m["diverged"]]
    if not alive:
        raise ScalarizeError("every member of the population diverged; lower train.lr or set "
                             "train.grad_clip")
    best = max(alive, key=lambda m: (m["val_avg_acc"], -m["member"]))
    val = np.array([[m["val_acc"][o] for o in objectives] for m in alive])
    test = np.array([[m["test_acc"][o] for o in objectives] for m in alive])
    front = [alive[i]["member"] for i in pareto_fronts(val)[0]]
    return {
        "strategy": strategy, "engine": engine, "objectives": objectives,
        "population": len(members), "epochs": epochs, "member_epochs": len(members) * epochs,
        "best_member": best["member"], "best_weights": best["weights"],
        "best_schedule": best["schedule"],
        "val_avg_acc": best["val_avg_acc"], "test_acc": best["test_acc"],
        "test_avg_acc": best["test_avg_acc"],
        "pareto_front": sorted(front),
        "hypervolume_val": hypervolume(val), "hypervolume_test": hypervolume(test),
        "seconds": seconds, "train_seconds": float(sum(m["train_seconds"] for m in members)),
        "members": members,
    }


def members_frame(folder: Path | str) -> pd.DataFrame:
    """One row per member of a finished search: final weights, held-out and test accuracy,
    number of exploits, on the Pareto front or not."""
    summary = read_summary(folder)
    rows = []
    for m in summary["members"]:
        row = {"member": m["member"], "diverged": m["diverged"], "exploits": len(m["lineage"]),
               "val_avg_acc": m.get("val_avg_acc"), "test_avg_acc": m.get("test_avg_acc"),
               "pareto": m["member"] in summary["pareto_front"],
               "best": m["member"] == summary["best_member"]}
        row.update({f"w_{o}": w for o, w in zip(summary["objectives"], m["weights"],
                                                strict=True)})
        rows.append(row)
    return pd.DataFrame(rows)


def searches_table(folder: Path | str) -> pd.DataFrame:
    """Finished searches in ``folder`` and its sub-folders, one row each: strategy, seed,
    member-epochs, the selected member's held-out and test accuracy, test hypervolume."""
    root = Path(folder)
    rows = []
    for path in sorted([root, *root.glob("*/")]):
        if not (path / SUMMARY).is_file() or not is_search(path):
            continue
        summary = read_summary(path)
        config = yaml.safe_load((path / CONFIG_FILE).read_text())
        rows.append({"search": path.name, "strategy": summary["strategy"],
                     "engine": summary["engine"], "seed": config.get("seed", 0),
                     "population": summary["population"],
                     "member_epochs": summary["member_epochs"],
                     "val_avg_acc": summary["val_avg_acc"],
                     "test_avg_acc": summary["test_avg_acc"],
                     "hypervolume_test": summary["hypervolume_test"],
                     "seconds": summary["seconds"]})
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
