"""The multi-objective strategies at 40 objectives: MO-PBT (non-dominated sorting and
crowding over 40 held-out scores) and NSGA-II (Optuna, 40 objectives) run to a summary."""

import json
from pathlib import Path

import pytest

from scalarize.cli import main

pytest.importorskip("optuna")

PRESET = Path(__file__).parents[2] / "configs" / "many" / "mtl40.yaml"

SHRUNK = ["benchmark.options={attributes: true, n_train: 64, n_val: 32, n_test: 32, "
          "image_size: 16}", "train.epochs=2", "train.warmup_epochs=0", "search.population=4",
          "search.startup=2"]


@pytest.mark.parametrize("strategy, extra", [("mopbt", []), ("nsga2", ["search.budget=8"])])
def test_multi_objective_strategies_run_at_forty_objectives(strategy, extra, tmp_path):
    out = tmp_path / strategy
    assert main(["search", str(PRESET), "--out", str(out), "--quiet",
                 f"search.strategy={strategy}", *SHRUNK, *extra]) in (0, None)
    summary = json.loads((out / "summary.json").read_text())
    assert len(summary["objectives"]) == 40 and len(summary["best_weights"]) == 40
    assert summary["pareto_front"] and summary["hypervolume_val"] > 0
