import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from scalarize.analysis.conflicts import (
    by_factor,
    conflict_epochs,
    conflict_steps,
    correlation,
    plane,
    summary_table,
    trends,
    within_runs,
)
from scalarize.errors import ScalarizeError
from scalarize.launch import train_run
from scalarize.report import build_report
from tests.conftest import tiny_config


def test_correlation_matches_scipy_and_fisher_z():
    rng = np.random.default_rng(0)
    x = rng.normal(size=40)
    y = 0.5 * x + rng.normal(size=40)
    out = correlation(x, y)
    assert out["pearson_r"] == pytest.approx(stats.pearsonr(x, y).statistic)
    rho = stats.spearmanr(x, y).statistic
    assert out["spearman_rho"] == pytest.approx(rho)
    half = 1.959964 * math.sqrt(1.06 / 37)
    assert out["spearman_lo"] == pytest.approx(math.tanh(math.atanh(rho) - half))
    z = math.atanh(out["pearson_r"])
    assert out["pearson_hi"] == pytest.approx(math.tanh(z + 1.959964 / math.sqrt(37)), rel=1e-4)
    assert out["pearson_lo"] < out["pearson_r"] < out["pearson_hi"]


def test_correlation_of_too_few_or_constant_points_is_nan():
    assert math.isnan(correlation([1, 2, 3], [1, 2, 3])["pearson_r"])
    assert math.isnan(correlation([1, 1, 1, 1, 1], [1, 2, 3, 4, 5])["pearson_r"])


def test_analysis_and_report_on_probed_runs(tmp_path):
    for seed in (0, 1):
        for weights in ("uniform", "[0.8, 0.2]", "onehot:colour"):
            cfg = tiny_config(f"seed={seed}", f"scalarization.weights={weights}",
                              "benchmark.tasks=[colour, count]", "train.epochs=4",
                              "probes={conflicts: {every: 3}}")
            train_run(cfg, tmp_path, progress=False)
    steps = conflict_steps(tmp_path)
    assert set(steps.step) == {0, 3, 6, 9}
    epochs = conflict_epochs(tmp_path)
    assert len(epochs) == 6 * 4 and epochs.conflict_share.between(0, 1).all()
    within = within_runs(epochs)
    assert len(within) == 4  # single-task runs are left out
    table = summary_table(epochs)
    assert list(table.measure) == ["conflict_share", "cos_mean", "gms_mean"]
    assert table.across_n.iloc[0] == 4
    assert by_factor(epochs, "weights_label").runs.sum() == 4
    html_path, _ = build_report(tmp_path)
    html = html_path.read_text()
    assert "Gradient conflicts" in html and html.count("data:image/png") == 2


def test_no_probed_runs_is_a_clear_error(tmp_path):
    train_run(tiny_config("train.epochs=1"), tmp_path, progress=False)
    with pytest.raises(ScalarizeError, match="no finished run"):
        conflict_epochs(tmp_path)


def _epochs(shares: dict[str, list[float]]) -> pd.DataFrame:
    """Per-epoch conflict records of multi-task runs: run name -> its epochs' shares."""
    rows = []
    for i, (run, values) in enumerate(shares.items()):
        for epoch, share in enumerate(values, 1):
            rows.append({"run": run, "multi_task": True, "capacity": f"c{i % 2}",
                         "params": 100 * (1 + i % 2), "weights_label": f"w{i % 3}", "seed": i,
                         "epoch": epoch, "conflict_share": share, "cos_mean": 1 - 2 * share,
                         "gms_mean": share, "val_avg_acc": 0.5 + 0.1 * share * epoch,
                         "final_val_avg_acc": 0.4 + 0.05 * i})
    return pd.DataFrame(rows)


def test_every_share_interval_lies_in_the_unit_interval():
    """Few runs with shares near 0 and 1 (a Student-t interval reached 1.59 in a report)."""
    rng = np.random.default_rng(0)
    epochs = _epochs({f"r{i}": list(rng.choice([0.02, 0.98], 3)) for i in range(7)})
    for factor in ("capacity", "weights_label"):
        table = by_factor(epochs, factor)
        shares = table[["conflict_share", "conflict_share_lo", "conflict_share_hi"]]
        assert shares.notna().all().all()  # two or more runs per group
        assert ((shares >= 0) & (shares <= 1)).all().all()
        assert (table.conflict_share_lo <= table.conflict_share).all()
        assert (table.conflict_share <= table.conflict_share_hi).all()
    cos = by_factor(epochs, "capacity", "cos_mean")
    assert cos.cos_mean_lo.between(-1, 1).all() and cos.cos_mean_hi.between(-1, 1).all()
    table = summary_table(epochs)
    assert table.within_lo.dropna().between(-1, 1).all()
    assert table.within_hi.dropna().between(-1, 1).all()


def test_a_group_of_one_run_has_no_share_interval():
    table = by_factor(_epochs({"a": [0.1, 0.3], "b": [0.5, 0.7]}), "capacity")
    assert table.runs.tolist() == [1, 1]
    assert table.conflict_share_lo.isna().all() and table.conflict_share_hi.isna().all()


def _grid_epochs() -> pd.DataFrame:
    """Two capacities × two weightings × two seeds, two epochs each; the share rises with
    capacity and is higher at uniform, plus one single-task run that must be left out."""
    rows = []
    for cap, params, base in (("small", 1000, 0.2), ("big", 100000, 0.6)):
        for label, first, dist, extra in (("w0.8-0.2", 0.8, 0.3, 0.0), ("uniform", 0.5, 0.0, 0.1)):
            for seed in (0, 1):
                for epoch in (1, 2):
                    share = base + extra + 0.02 * seed + 0.01 * epoch
                    rows.append({"run": f"{cap}-{label}-s{seed}", "multi_task": True,
                                 "capacity": cap, "params": params, "weights_label": label,
                                 "first_weight": first, "distance_from_uniform": dist,
                                 "seed": seed, "epoch": epoch, "conflict_share": share,
                                 "cos_mean": -share, "gms_mean": share, "val_avg_acc": 0.5})
    rows.append({**rows[0], "run": "single", "multi_task": False, "conflict_share": 0.99})
    return pd.DataFrame(rows)


def test_conflict_plane_is_the_mean_of_run_means_per_weights_and_capacity():
    table = plane(_grid_epochs())
    assert list(table.columns) == ["weights_label", "small", "big"]  # capacities by size
    assert list(table.weights_label) == ["w0.8-0.2", "uniform"]  # most first weight first
    # small, w0.8-0.2: run means 0.215 (seed 0) and 0.235 (seed 1) -> 0.225
    assert table.loc[0, "small"].startswith("0.225 [")
    assert table.loc[1, "big"].startswith("0.725 [")  # 0.6 + 0.1 + (0.015 + 0.035) / 2
    lo, hi = map(float, table.loc[1, "big"].split("[")[1].rstrip("]").split(","))
    assert 0.715 <= lo <= 0.725 <= hi <= 0.735
    singles = _grid_epochs().assign(multi_task=False)
    assert plane(singles).empty  # nothing to show, no error


def test_conflict_trends_against_capacity_and_weights():
    table = trends(_grid_epochs()).set_index(["measure", "against"])
    assert (table.runs == 8).all()  # the single-task run is left out
    share_vs_size = table.loc[("conflict_share", "log10 params")]
    runs = _grid_epochs().query("multi_task").groupby("run").agg(
        share=("conflict_share", "mean"), params=("params", "first"),
        dist=("distance_from_uniform", "first"))
    expected = stats.spearmanr(np.log10(runs.params), runs.share)
    assert share_vs_size.spearman_rho == pytest.approx(expected.statistic)
    assert share_vs_size.p == pytest.approx(expected.pvalue)
    assert share_vs_size.spearman_rho > 0.8
    assert table.loc[("conflict_share", "distance from uniform")].spearman_rho < 0
    assert table.loc[("cos_mean", "log10 params")].spearman_rho < -0.8
