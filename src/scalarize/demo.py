"""The main job (``make demo``): a small capacity × weights study on ``shapes``, on a CPU, in
minutes, ending in an HTML report.

At two capacities of one model family it trains uniform scalarization, two other weightings and
one single-task baseline per task, with the gradient-conflict probe on; prints test accuracy per
task, the chance level, the multi-task gain Δ over the single-task models of the same capacity
and the gradient conflicts per capacity. It ends with a small population-based search (PBT) of
the weights at the smaller capacity, ranked on a held-out 30% of the training split, retrains
the selected member's weight schedule on the whole training split (replay), and writes one
report with every section. Running it again skips finished work.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from scalarize.analysis import load_sweep, weighting_gains
from scalarize.analysis.conflicts import by_factor, conflict_epochs
from scalarize.analysis.search import members_frame
from scalarize.benchmarks import Dataset, Split
from scalarize.report import build_report
from scalarize.search.executors import run_search
from scalarize.search.replay import replay
from scalarize.search.spec import SearchConfig
from scalarize.search.sweep import SweepConfig, run_sweep
from scalarize.training import load_data

DEMO: dict[str, Any] = {
    "benchmark": {"name": "shapes", "view": "mtl", "tasks": ["shape", "size", "count", "balance"],
                  "options": {"n_train": 3000, "n_val": 500, "n_test": 1000}},
    "train": {"epochs": 10, "batch_size": 128, "lr": 3e-3, "warmup_epochs": 1},
    "probes": {"conflicts": {"every": 24}},  # once per epoch
    "sweep": {
        "capacities": {"template": "resnet8-x{width}", "axes": {"width": [0.25, 0.5]}},
        "weights": {"points": [[0.4, 0.2, 0.2, 0.2], [0.1, 0.3, 0.3, 0.3]]},
        "single_task": True,
        "seeds": [0],
    },
}


PBT_SEARCH: dict[str, Any] = {"strategy": "pbt", "population": 4, "interval": 2,
                              "quantile": 0.25}
PBT_SPEC = "resnet8-x0.25"


def pbt_config() -> SearchConfig:
    """The demo's search: the study's data and recipe, the smaller capacity, 4 members."""
    return SearchConfig.model_validate({"benchmark": DEMO["benchmark"], "train": DEMO["train"],
                                        "model": {"spec": PBT_SPEC}, "search": PBT_SEARCH})


def chance_levels(data: Dataset) -> dict[str, float]:
    """Test accuracy of always predicting the most frequent training class, per task."""
    train, test = data.splits["train"], data.splits["test"]
    assert isinstance(train, Split) and isinstance(test, Split), "the demo's data is in memory"
    out = {}
    for task in data.tasks:
        majority = np.bincount(train.labels[task.name], minlength=task.num_classes).argmax()
        out[task.name] = float((test.labels[task.name] == majority).mean())
    return out


def format_table(runs: pd.DataFrame, chance: dict[str, float]) -> str:
    """Per capacity: multi-task rows with Δ, the single-task diagonal, and chance."""
    tasks = runs.attrs["objectives"]
    gains = weighting_gains(runs).set_index("name").gain
    lines = []
    for cap, group in runs.sort_values("params").groupby("capacity", sort=False):
        multi = group[group.single_task.isna()]
        table = pd.DataFrame({t: multi[f"m_{t}"].to_numpy() for t in tasks},
                             index=pd.Index(multi.weights_label, name="weights"))
        table["avg_acc"] = multi.avg_acc.to_numpy()
        table["gain_pct"] = gains.reindex(multi.name).to_numpy()
        single = [float(group.loc[group.single_task == t, f"m_{t}"].iloc[0]) for t in tasks]
        table.loc["single-task"] = [*single, float(np.mean(single)), np.nan]
        table.loc["chance"] = [*(chance[t] for t in tasks), float(np.mean(list(chance.values()))),
                               np.nan]
        lines.append(f"\n{cap}  ({int(group.params.iloc[0]):,} parameters) — test accuracy")
        lines.append(table.to_string(float_format=lambda v: f"{v:.3f}", na_rep="-"))
    return "\n".join(lines)


def main(out: Path = Path("demo-runs"), progress: bool | None = None) -> pd.DataFrame:
    """Run the demo study, print its table, write its report."""
    config = SweepConfig.model_validate(DEMO)
    run_sweep(config, out, progress=progress)
    runs = load_sweep(out)
    print(format_table(runs, chance_levels(load_data(config.base()))))
    conflicts = by_factor(conflict_epochs(out), "capacity")
    print("\nGradient conflicts (multi-task runs): mean share of task pairs whose gradients on "
          "the shared encoder point apart")
    print(conflicts.to_string(index=False, float_format=lambda v: f"{v:.3f}", na_rep="-"))
    search = run_search(pbt_config(), out / "pbt", progress=progress)
    print(f"\nPopulation-based search (PBT, {search.population} members × "
          f"{search.epochs} epochs, exploit/explore every {PBT_SEARCH['interval']} "
          f"epochs, ranked on a held-out 30% of the training split):")
    print(members_frame(out / "pbt").to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    replayed = replay(out / "pbt", "best", resume=True, progress=progress)
    uniform = runs[(runs.capacity == PBT_SPEC) & (runs.weights_label == "uniform")]
    print(f"selected member m{search.best_member} (test avg_acc {search.test_avg_acc:.3f},"
          f" trained on 70% of the training split), retrained from scratch on all of it with its"
          f" weight schedule (scalarize replay): test avg_acc {replayed.test.avg_acc:.3f};"
          f" uniform weights, same capacity and budget: {float(uniform.avg_acc.iloc[0]):.3f}")
    html_path, _ = build_report(out)
    print(f"\nΔ = mean relative gain over the single-task models of the same capacity (%).\n"
          f"Report: {html_path}\nRuns: {out}/ (scalarize runs {out})")
    return runs
