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
    summary_table,
    within_runs,
)
from scalarize.errors import ScalarizeError
from scalarize.report import build_report
from scalarize.training import train_run
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
