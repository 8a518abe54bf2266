"""The main job (``make demo``): a small study on ``shapes`` that runs in minutes on a CPU.

At two capacities of one model family it trains uniform scalarization, two other weightings and
one single-task baseline per task, then prints test accuracy per task, the average, the chance
level, and the multi-task gain Δ of each weighting over the single-task models of the same
capacity. Finished runs are skipped when the demo is run again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from scalarize.analysis import multitask_gain
from scalarize.benchmarks import Dataset
from scalarize.config import load_config
from scalarize.training import load_data, train_run


@dataclass
class Study:
    """A capacity × weights study on one benchmark view."""

    capacities: list[str] = field(default_factory=lambda: ["resnet8-x0.25", "resnet8-x0.5"])
    weightings: list[str] = field(default_factory=lambda: [
        "uniform", "0.4,0.2,0.2,0.2", "0.1,0.3,0.3,0.3"])
    base: list[str] = field(default_factory=lambda: [
        "benchmark.name=shapes", "benchmark.view=mtl",
        "benchmark.tasks=[shape, size, count, balance]",
        "benchmark.options={n_train: 3000, n_val: 500, n_test: 1000}",
        "train.epochs=10", "train.batch_size=128", "train.lr=3e-3", "train.warmup_epochs=1",
        "train.device=auto",
    ])
    seed: int = 0


def chance_levels(data: Dataset) -> dict[str, float]:
    """Accuracy of always predicting the most frequent training class, per objective."""
    train, test = data.splits["train"], data.splits["test"]
    out = {}
    for task in data.tasks:
        majority = np.bincount(train.labels[task.name], minlength=task.num_classes).argmax()
        out[task.name] = float((test.labels[task.name] == majority).mean())
    return out


def run_study(study: Study, out: Path, progress: bool | None = None) -> pd.DataFrame:
    """Train every run of ``study`` into ``out`` (skipping finished ones); return the table."""
    base = load_config(None, [*study.base, f"seed={study.seed}"])
    data = load_data(base)
    tasks = [t.name for t in data.tasks]
    weightings = study.weightings + [f"onehot:{t}" for t in tasks]
    jobs = [(cap, w) for cap in study.capacities for w in weightings]
    rows = []
    for cap, weights in tqdm(jobs, desc="demo runs", unit="run", disable=progress is False):
        cfg = load_config(None, [*study.base, f"seed={study.seed}", f"model.spec={cap}",
                                 f"scalarization.weights={weights}"])
        summary = train_run(cfg, out, resume=True, data=data, progress=progress)
        rows.append({"capacity": cap, "weights": summary["weights_label"],
                     "single": weights.startswith("onehot:"), **summary["test"]["acc"],
                     "avg_acc": summary["test"]["avg_acc"],
                     "params": summary["model"]["params"], "seconds": summary["train_seconds"]})
    frame = pd.DataFrame(rows)
    return add_gain(frame, tasks)


def add_gain(frame: pd.DataFrame, tasks: list[str]) -> pd.DataFrame:
    """Add Δ (%) of every multi-task row over the single-task rows of the same capacity."""
    gains = []
    for _, row in frame.iterrows():
        if row["single"]:
            gains.append(np.nan)
            continue
        singles = frame[(frame.capacity == row.capacity) & frame.single]
        baseline = {t: float(singles.loc[singles.weights == f"onehot-{t}", t].iloc[0])
                    for t in tasks}
        gains.append(multitask_gain({t: float(row[t]) for t in tasks}, baseline))
    return frame.assign(gain_pct=gains)


def format_table(frame: pd.DataFrame, tasks: list[str], chance: dict[str, float]) -> str:
    """The study as text: multi-task rows in full, the single-task diagonal, and chance."""
    lines = []
    for cap, group in frame.groupby("capacity", sort=False):
        multi = group[~group.single].set_index("weights")[[*tasks, "avg_acc", "gain_pct"]]
        single = {t: group.loc[group.weights == f"onehot-{t}", t].iloc[0] for t in tasks}
        multi.loc["single-task"] = [*single.values(), float(np.mean(list(single.values()))),
                                    np.nan]
        multi.loc["chance"] = [*(chance[t] for t in tasks), float(np.mean(list(chance.values()))),
                               np.nan]
        params = int(group.params.iloc[0])
        lines.append(f"\n{cap}  ({params:,} parameters) — test accuracy")
        lines.append(multi.to_string(float_format=lambda v: f"{v:.3f}", na_rep="-"))
    return "\n".join(lines)


def main(out: Path = Path("demo-runs"), progress: bool | None = None) -> pd.DataFrame:
    """Run the demo study and print its table."""
    study = Study()
    frame = run_study(study, out, progress)
    data = load_data(load_config(None, [*study.base, f"seed={study.seed}"]))
    tasks = [t.name for t in data.tasks]
    print(format_table(frame, tasks, chance_levels(data)))
    print(f"\nΔ = mean relative gain over the single-task models of the same capacity (%).\n"
          f"Runs are in {out}/ ; list them with: scalarize runs {out}")
    return frame
