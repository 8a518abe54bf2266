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
from scalarize.analysis.tables import conflict_tables
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
                              "probes={conflicts: {every: 3, examples: 4}}")
            train_run(cfg, tmp_path, progress=False)
    steps = conflict_steps(tmp_path)
    assert set(steps.step) == {0, 3, 6, 9}
    assert steps.control_share.between(0, 1).all()
    tables = conflict_tables(tmp_path)
    assert tables.floor.runs.tolist() == [4]
    assert set(tables.per_layer.layer) >= {"patch_embed", "blocks.0"}
    assert tables.per_layer.control_share.notna().all()
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
    assert "same-objective floor" in html and "per encoder block" in html


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


def test_conflict_trends_are_tested_on_unit_means_with_holm():
    """Four capacities × 3 weightings × 3 seeds: ρ over the 4 capacity means (not 36 runs), an exact
    permutation p-value over the 4! pairings, and Holm over every row of the family."""
    import itertools

    from statsmodels.stats.multitest import multipletests

    epochs = _capacity_epochs()
    table = trends(epochs)
    row = table.set_index(["measure", "against"]).loc[("conflict_share", "log10 params")]
    assert row.units == 4 and row.runs == 36
    means = epochs.groupby("run").agg(share=("conflict_share", "mean"),
                                      params=("params", "first")).groupby("params").share.mean()
    rho = stats.spearmanr(np.log10(means.index), means.values).statistic
    assert row.spearman_rho == pytest.approx(rho)
    perms = [stats.spearmanr(np.log10(means.index), np.array(p)).statistic
             for p in itertools.permutations(means.values)]
    assert row.p == pytest.approx(np.mean(np.abs(perms) >= abs(rho) - 1e-12))
    finite = table.p.notna()
    assert table.p_holm[finite].tolist() == pytest.approx(
        multipletests(table.p[finite], method="holm")[1].tolist())
    assert (table.correction == f"holm over {int(finite.sum())} tests").all()
    # the control's floor is trended too, next to the cross-objective share
    assert {"control_share", "control_cos_mean"} <= set(table.measure)
    # two capacities cannot give a trend: no ρ of ±1 with p = 1 from two means
    two = trends(_grid_epochs()).set_index(["measure", "against"])
    assert math.isnan(two.loc[("conflict_share", "log10 params")].spearman_rho)


def _capacity_epochs() -> pd.DataFrame:
    rng = np.random.default_rng(1)
    rows = []
    for c, (params, base) in enumerate(((100, 0.30), (1000, 0.35), (10000, 0.33),
                                        (100000, 0.50))):
        for seed in range(3):
            for w, label in enumerate(("uniform", "w0.7-0.3", "w0.9-0.1")):
                share = base + 0.05 * rng.normal()
                for epoch in (1, 2):
                    rows.append({
                        "run": f"c{c}-s{seed}-{label}", "multi_task": True,
                        "capacity": f"c{c}", "params": params, "weights_label": label,
                        "first_weight": 0.5 + 0.2 * w, "distance_from_uniform": 0.2 * w,
                        "seed": seed, "epoch": epoch, "conflict_share": share + 0.01 * epoch,
                        "cos_mean": -share, "gms_mean": share, "val_avg_acc": 0.5,
                        "control_share": share / 2, "control_cos_mean": 0.1 * share,
                        "final_val_avg_acc": 0.6 - 0.3 * share + 0.01 * seed})
    return pd.DataFrame(rows)


def test_partial_correlation_is_the_correlation_of_within_capacity_residuals():
    """By hand: demean x and y within each capacity, correlate; the p-value is statsmodels'
    t test of x in y ~ x + C(capacity)."""
    import statsmodels.formula.api as smf

    from scalarize.analysis.partial import partial_correlation

    rng = np.random.default_rng(0)
    group = np.repeat(["small", "mid", "big"], 6)
    offset = {"small": 0.0, "mid": 1.0, "big": 3.0}
    x = np.array([offset[g] for g in group]) + rng.normal(size=18)
    y = -2 * np.array([offset[g] for g in group]) + 0.5 * x + rng.normal(size=18)
    out = partial_correlation(x, y, group)
    frame = pd.DataFrame({"x": x, "y": y, "g": group})
    rx = x - frame.groupby("g").x.transform("mean")
    ry = y - frame.groupby("g").y.transform("mean")
    assert out["r"] == pytest.approx(np.corrcoef(rx, ry)[0, 1])
    fit = smf.ols("y ~ x + C(g)", frame).fit()
    assert out["p"] == pytest.approx(fit.pvalues["x"])
    assert out["df"] == 18 - 2 - 2 == fit.df_resid
    # the plain correlation is dominated by capacity; held fixed, the sign flips
    assert np.corrcoef(x, y)[0, 1] < 0 < out["r"]
    assert math.isnan(partial_correlation([1, 2, 3], [3, 1, 2], ["a", "b", "c"])["r"])


def test_partial_table_holds_capacity_fixed():
    from scalarize.analysis.conflicts import partial_table

    epochs = _capacity_epochs()
    table = partial_table(epochs).set_index("measure")
    runs = epochs.groupby("run").agg(share=("conflict_share", "mean"),
                                     acc=("final_val_avg_acc", "first"),
                                     cap=("capacity", "first"))
    from scalarize.analysis.partial import partial_correlation

    expected = partial_correlation(runs.share, runs.acc, runs.cap)
    assert table.loc["conflict_share", "partial_r"] == pytest.approx(expected["r"])
    assert table.loc["conflict_share", "capacities"] == 4
    assert "control_share" in table.index and table.p_holm.notna().all()


def test_every_share_stands_next_to_its_floor():
    from scalarize.analysis.conflicts import floor_table

    epochs = _capacity_epochs()
    table = by_factor(epochs, "capacity")
    assert list(table.columns) == ["capacity", "params", "conflict_share", "conflict_share_lo",
                                   "conflict_share_hi", "control_share", "control_share_lo",
                                   "control_share_hi", "runs"]
    runs = epochs.groupby("run").agg(c=("control_share", "mean"), cap=("capacity", "first"))
    assert table.control_share.tolist() == pytest.approx(
        runs.groupby("cap").c.mean().loc[table.capacity].tolist())
    floor = floor_table(epochs)
    assert floor.control_share.str.match(r"0\.\d{3} \[").all()
    assert floor.share_over_floor.tolist() == pytest.approx(
        (table.conflict_share - table.control_share).tolist())
    assert floor_table(_grid_epochs()).empty  # no control recorded: no floor table
    assert "control_share" not in by_factor(_grid_epochs(), "capacity").columns


def test_per_layer_shares_per_capacity_and_block():
    from scalarize.analysis.conflicts import per_layer

    rows = []
    for cap, params in (("big", 1000), ("small", 10)):
        for seed in (0, 1):
            for step in (0, 5):
                for layer, share in (("stem", 0.2), ("blocks.0", 0.6)):
                    rows.append({"run": f"{cap}{seed}", "capacity": cap, "params": params,
                                 "step": step, "layer": layer,
                                 "conflict_share": share + 0.1 * seed,
                                 "control_share": share / 2})
    table = per_layer(pd.DataFrame(rows))
    assert table[["capacity", "layer"]].values.tolist() == [
        ["small", "stem"], ["small", "blocks.0"], ["big", "stem"], ["big", "blocks.0"]]
    assert table.conflict_share.tolist() == pytest.approx([0.25, 0.65, 0.25, 0.65])
    assert table.control_share.tolist() == pytest.approx([0.1, 0.3, 0.1, 0.3])
    assert (table.runs == 2).all()
