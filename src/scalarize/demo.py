"""The main job (``make demo``): where multi-domain learning pays and where it does not, on a
CPU, in minutes, ending in an HTML report.

The data is the regime of ``shapes`` where sharing can help (``configs/shapes_sharing.yaml``): a
large ``flat`` domain (600 training images) and a small ``photo`` one (60), both asking the
shape. At three capacities of one ResNet family it trains uniform weights, one other weighting
and the two single-domain models, with the gradient-conflict probe on; prints test accuracy per
domain, the chance level and the gain Δ over the single-domain models of the same capacity, and
the conflict share per capacity. Then a small population-based search (PBT) of the weights at
the middle capacity, ranked on a held-out 30% of the training split, whose selected schedule is
retrained on the whole training split (replay) and set beside uniform weights. It ends with a
plain reading of the numbers (:func:`reading`), which claims a difference only when it exceeds
the test set's sampling noise, and one report with every section. Running it again skips
finished work.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from scalarize.analysis import load_sweep, weighting_gains
from scalarize.analysis.conflicts import by_factor, conflict_epochs
from scalarize.analysis.search import members_frame
from scalarize.benchmarks import Dataset, Split
from scalarize.report import build_report
from scalarize.report.notes import Notes, write_notes
from scalarize.search.spec import SearchConfig
from scalarize.studies.replay import replay
from scalarize.studies.runner import run_search
from scalarize.studies.sweep import SweepConfig, run_sweep
from scalarize.training import load_data

DEMO: dict[str, Any] = {
    "benchmark": {"name": "shapes", "view": "mdl",
                  "options": {"n_train": [600, 60], "n_val": 100, "n_test": 1000,
                              "domains": ["flat", "photo"], "label": "shape",
                              "image_size": 24}},
    "train": {"epochs": 12, "batch_size": 32, "lr": 3e-3, "warmup_epochs": 1},
    "probes": {"conflicts": {"every": 21}},  # about once per epoch
    "sweep": {
        "capacities": {"template": "resnet8-x{width}", "axes": {"width": [0.125, 0.25, 1.0]}},
        "weights": {"points": [[0.75, 0.25]]},
        "single_task": True,
        "seeds": [0],
    },
}


PBT_SEARCH: dict[str, Any] = {"strategy": "pbt", "population": 4, "interval": 3,
                              "quantile": 0.25}
PBT_SPEC = "resnet8-x0.25"
READING_NOTE = "One seed; the noise is the test set's sampling only."


def pbt_config() -> SearchConfig:
    """The demo's search: the study's data and recipe, the smaller capacity, 4 members."""
    return SearchConfig.model_validate({"benchmark": DEMO["benchmark"], "train": DEMO["train"],
                                        "model": {"spec": PBT_SPEC}, "search": PBT_SEARCH})


def _per_objective(data: Dataset) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each objective's (training labels, test labels): a task's, or a domain's images."""
    train, test = data.splits["train"], data.splits["test"]
    assert isinstance(train, Split) and isinstance(test, Split), "the demo's data is in memory"
    if data.view == "mdl":
        assert train.domain is not None and test.domain is not None
        label = data.tasks[0].name
        return {d: (train.labels[label][train.domain == i], test.labels[label][test.domain == i])
                for i, d in enumerate(data.domains)}
    return {t.name: (train.labels[t.name], test.labels[t.name]) for t in data.tasks}


def chance_levels(data: Dataset) -> dict[str, float]:
    """Test accuracy of always predicting the most frequent training class, per objective (a
    task, or a domain in the multi-domain view)."""
    return {name: float((test == np.bincount(train).argmax()).mean())
            for name, (train, test) in _per_objective(data).items()}


def sizes_of_test(data: Dataset) -> dict[str, int]:
    """Test examples per objective."""
    return {name: len(test) for name, (_, test) in _per_objective(data).items()}


def noise(accuracies: dict[str, float], sizes: dict[str, int]) -> float:
    """Two standard errors of the difference between two average accuracies measured on these
    test sets (binomial sampling of the test examples only; seed-to-seed spread comes on top).
    A difference of average accuracy smaller than this is within noise.

    Example:
        >>> round(noise({"a": 0.5, "b": 0.5}, {"a": 1000, "b": 1000}), 4)
        0.0316
    """
    var = sum(p * (1 - p) / sizes[k] for k, p in accuracies.items()) / len(accuracies) ** 2
    return 2 * math.sqrt(2 * var)


def format_table(runs: pd.DataFrame, chance: dict[str, float]) -> str:
    """Per capacity: multi-task rows with Δ, the single-task diagonal, and chance."""
    names = runs.attrs["objectives"]
    single_label = "single-domain" if runs.attrs.get("view") == "mdl" else "single-task"
    gains = weighting_gains(runs).set_index("name").gain
    lines = []
    for cap, group in runs.sort_values("params").groupby("capacity", sort=False):
        multi = group[group.single_task.isna()]
        table = pd.DataFrame({t: multi[f"m_{t}"].to_numpy() for t in names},
                             index=pd.Index(multi.weights_label, name="weights"))
        table["avg_acc"] = multi.avg_acc.to_numpy()
        table["gain_pct"] = gains.reindex(multi.name).to_numpy()
        single = [float(group.loc[group.single_task == t, f"m_{t}"].iloc[0]) for t in names]
        table.loc[single_label] = [*single, float(np.mean(single)), np.nan]
        table.loc["chance"] = [*(chance[t] for t in names), float(np.mean(list(chance.values()))),
                               np.nan]
        lines.append(f"\n{cap}  ({int(group.params.iloc[0]):,} parameters) — test accuracy")
        lines.append(table.to_string(float_format=lambda v: f"{v:.3f}", na_rep="-"))
    return "\n".join(lines)


def cells(runs: pd.DataFrame, sizes: dict[str, int]) -> pd.DataFrame:
    """Per capacity (smallest first): the best weighting — the highest average accuracy on the
    *validation* split, so that its test numbers are not the maximum of noisy test scores (on
    test when the runs have no validation scores) — its test Δ and accuracy, uniform's, the
    single-task models' mean accuracy, and the noise level of a difference between two of these
    accuracies (:func:`noise`)."""
    names = runs.attrs["objectives"]
    gains = weighting_gains(runs).set_index("name").gain
    rows = []
    for cap, group in runs.sort_values("params").groupby("capacity", sort=False):
        multi = group[group.single_task.isna()]
        val = multi[[f"v_{t}" for t in names if f"v_{t}" in multi.columns]].mean(axis=1)
        score = val if len(val) and not val.isna().any() else multi.avg_acc
        best = multi.loc[score.idxmax()]
        uniform = multi[multi.weights_label == "uniform"].iloc[0]
        single = {t: float(group.loc[group.single_task == t, f"m_{t}"].iloc[0]) for t in names}
        rows.append({"capacity": cap, "params": int(group.params.iloc[0]),
                     "best": best.weights_label, "best_acc": float(best.avg_acc),
                     "best_gain": float(gains[best["name"]]),
                     "uniform_acc": float(uniform.avg_acc),
                     "single_acc": float(np.mean(list(single.values()))),
                     "noise": noise(single, sizes)})
    return pd.DataFrame(rows)


def _versus(diff: float, level: float, better: str, worse: str, same: str) -> str:
    if abs(diff) < level:
        return f"{same} (difference {diff * 100:+.1f} points, within the test noise of ±" \
               f"{level * 100:.1f})"
    return f"{better if diff > 0 else worse} by {abs(diff) * 100:.1f} points " \
           f"(beyond the test noise of ±{level * 100:.1f})"


def reading(table: pd.DataFrame, conflicts: pd.DataFrame | None = None,
            pbt: tuple[str, float, float] | None = None, single: str = "single-task"
            ) -> list[str]:
    """A plain reading of the demo's numbers, claiming a difference only beyond the test noise:
    ``table`` from :func:`cells`, ``conflicts`` from
    :func:`~scalarize.analysis.conflicts.by_factor`, ``pbt`` = (capacity, replayed PBT average
    accuracy, uniform's) at one capacity.

    Example:
        >>> table = pd.DataFrame({"capacity": ["s", "l"], "params": [1, 9],
        ...     "best": ["uniform", "w0.75-0.25"], "best_acc": [0.50, 0.70],
        ...     "best_gain": [-4.0, 12.0], "uniform_acc": [0.50, 0.62],
        ...     "single_acc": [0.52, 0.62], "noise": [0.03, 0.03]})
        >>> print("\\n".join(reading(table)))  # doctest: +NORMALIZE_WHITESPACE
        - Δ of the best weights against the single-task models: -4.0% at s, +12.0% at l.
        - At s the multi-task model ties them (difference -2.0 points, within the test noise
          of ±3.0); at l it beats them by 8.0 points (beyond the test noise of ±3.0): sharing
          pays only with enough capacity.
        - Best weights against uniform: at l, w0.75-0.25 beats uniform by 8.0 points (beyond
          the test noise of ±3.0); at s the best is uniform.
    """
    lines = []
    gains = ", ".join(f"{r.best_gain:+.1f}% at {r.capacity}" for r in table.itertuples())
    lines.append(f"- Δ of the best weights against the {single} models: {gains}.")
    small, large = table.iloc[0], table.iloc[-1]
    at_small = _versus(small.best_acc - small.single_acc, small.noise, "beats them",
                       "loses to them", "ties them")
    at_large = _versus(large.best_acc - large.single_acc, large.noise, "beats them",
                       "loses to them", "ties them")
    pays_large = large.best_acc - large.single_acc >= large.noise
    pays_small = small.best_acc - small.single_acc >= small.noise
    verdict = ("sharing pays only with enough capacity" if pays_large and not pays_small else
               "sharing pays at both ends" if pays_large else
               "sharing does not pay beyond noise at the largest capacity here")
    multi = "multi-domain" if single == "single-domain" else "multi-task"
    lines.append(f"- At {small.capacity} the {multi} model {at_small}; at {large.capacity} "
                 f"it {at_large}: {verdict}.")
    parts, uniform_best = [], []
    for r in table.itertuples():
        if r.best == "uniform":
            uniform_best.append(str(r.capacity))
            continue
        parts.append(f"at {r.capacity}, {r.best} " + _versus(
            r.best_acc - r.uniform_acc, r.noise, "beats uniform", "loses to uniform",
            "ties uniform"))
    if uniform_best:
        parts.append(f"at {', '.join(uniform_best)} the best is uniform")
    lines.append("- Best weights against uniform: " + "; ".join(parts) + ".")
    if conflicts is not None and not conflicts.empty:
        shares = ", ".join(f"{r.conflict_share:.0%} at {r.capacity}"
                           for r in conflicts.itertuples())
        lines.append(f"- Gradient conflicts (share of probed pairs of objectives whose gradients "
                     f"on the shared encoder point apart): {shares}.")
    if pbt is not None:
        capacity, searched, uniform = pbt
        level = float(table.loc[table.capacity == capacity, "noise"].iloc[0])
        lines.append(f"- PBT at {capacity}: its replayed schedule " + _versus(
            searched - uniform, level, "beats uniform", "loses to uniform",
            "≈ uniform at this size") + ".")
    return lines


def main(out: Path = Path("demo-runs"), progress: bool | None = None) -> pd.DataFrame:
    """Run the demo study, print its table and reading, write its report."""
    config = SweepConfig.model_validate(DEMO)
    run_sweep(config, out, progress=progress)
    runs = load_sweep(out)
    data = load_data(config.base())
    single = "single-domain" if data.view == "mdl" else "single-task"
    print(format_table(runs, chance_levels(data)))
    conflicts = by_factor(conflict_epochs(out), "capacity")
    print("\nGradient conflicts (multi-task runs): mean share of objective pairs whose gradients "
          "on the shared encoder point apart")
    print(conflicts.to_string(index=False, float_format=lambda v: f"{v:.3f}", na_rep="-"))
    search = run_search(pbt_config(), out / "pbt", progress=progress)
    print(f"\nPopulation-based search (PBT, {search.population} members × "
          f"{search.epochs} epochs, exploit/explore every {PBT_SEARCH['interval']} "
          f"epochs, ranked on a held-out 30% of the training split):")
    print(members_frame(out / "pbt").to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    replayed = replay(out / "pbt", "best", resume=True, progress=progress)
    uniform = runs[(runs.capacity == PBT_SPEC) & (runs.weights_label == "uniform")]
    uniform_acc = float(uniform.avg_acc.iloc[0])
    print(f"selected member m{search.best_member} (test avg_acc {search.test_avg_acc:.3f},"
          f" trained on 70% of the training split), retrained from scratch on all of it with its"
          f" weight schedule (scalarize replay): test avg_acc {replayed.test.avg_acc:.3f};"
          f" uniform weights, same capacity and budget: {uniform_acc:.3f}")
    sizes = sizes_of_test(data)
    said = reading(cells(runs, sizes), conflicts, (PBT_SPEC, replayed.test.avg_acc, uniform_acc),
                   single)
    write_notes(out, Notes(chance=chance_levels(data), test_sizes=sizes, reading=said,
                           reading_note=READING_NOTE))
    html_path, _ = build_report(out)  # it shows the notes: the chance levels and the reading
    print(f"\nWhat the numbers say ({READING_NOTE[0].lower()}{READING_NOTE[1:-1]}):")
    print("\n".join(said))
    print(f"\nΔ = mean relative gain over the {single} models of the same capacity (%); the best "
          "weights are those with the highest validation accuracy, shown on test.\n"
          f"Report: {html_path}\nRuns: {out}/ (scalarize runs {out})")
    return runs
