import numpy as np
import pandas as pd
import pytest

from scalarize.analysis.search import find_searches
from scalarize.report import build_report
from scalarize.report.search import anytime_figure, mean_step, strategy_label
from scalarize.search.spec import load_search_config
from scalarize.studies.runner import run_search

SEARCH = """
seed: 0
benchmark:
  name: shapes
  tasks: [shape, count, size]
  options: {n_train: 96, n_val: 16, n_test: 32, image_size: 16}
model: {spec: vit-d1-w16-p8}
train: {epochs: 3, batch_size: 32, device: cpu}
search: {strategy: mopbt, population: 4, interval: 1}
"""


def test_report_of_one_search_has_schedules_population_and_pareto(tmp_path):
    (tmp_path / "s.yaml").write_text(SEARCH)
    run_search(load_search_config(tmp_path / "s.yaml"), tmp_path / "mo", progress=False)
    _, md = build_report(tmp_path / "mo")
    text = md.read_text()
    assert "Population search of the weights" in text and "Pareto front" in text
    for name in ["search-schedules.png", "search-population.png", "search-pareto.png",
                 "search-anytime.png"]:
        assert (tmp_path / "mo" / "report" / "figures" / name).stat().st_size > 1000
    assert "anytime curves" in text


def test_a_folder_of_searches_gets_a_comparison_table(tmp_path):
    (tmp_path / "s.yaml").write_text(SEARCH)
    for strategy in ["pbt", "random"]:
        config = load_search_config(tmp_path / "s.yaml", [f"search.strategy={strategy}",
                                                          "train.epochs=1"])
        run_search(config, tmp_path / "study" / strategy, progress=False)
    assert [p.name for p in find_searches(tmp_path / "study")] == ["pbt", "random"]
    _, md = build_report(tmp_path / "study")
    text = md.read_text()
    assert "By strategy" in text and "| random |" in text
    assert "(strategies overlaid)" in text and "figures/search-anytime.png" in text
    assert (tmp_path / "study" / "report" / "figures" / "search-anytime.png").stat(
        ).st_size > 1000


def _curve(search: str, budgets: list[int], best: list[float]) -> pd.DataFrame:
    return pd.DataFrame({"member_epochs": budgets, "best_val_avg_acc": best,
                         "hypervolume": [b * b for b in best], "search": search,
                         "label": strategy_label(search, "pbt")})


def test_the_overlay_averages_the_seeds_of_a_strategy_as_step_curves(tmp_path):
    curves = pd.concat([_curve("pbt-s0", [1, 3, 4], [0.2, 0.4, 0.5]),
                        _curve("pbt-s1", [2, 4], [0.3, 0.6]),
                        _curve("uniform-s0", [1, 2], [0.1, 0.1])], ignore_index=True)
    assert curves.label.unique().tolist() == ["pbt", "uniform"]
    budgets, mean = mean_step(curves[curves.label == "pbt"], "best_val_avg_acc")
    assert budgets.tolist() == [1, 2, 3, 4]
    assert np.isnan(mean[0])  # seed 1 has no score before its first member-epoch
    assert mean[1:] == pytest.approx([(0.2 + 0.3) / 2, (0.4 + 0.3) / 2, (0.5 + 0.6) / 2])
    assert anytime_figure(curves, tmp_path / "a.png").stat().st_size > 1000
    assert strategy_label(".", "mopbt") == "mopbt" and strategy_label("a/grid-s12", "x") == "grid"
