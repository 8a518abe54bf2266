import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from scalarize.analysis import (
    capacity_trend,
    distance_from_uniform,
    mean_ci,
    per_capacity,
    rank_stability,
    summarize,
    transfer_regret,
    weighting_gains,
)
from scalarize.analysis.capacity import load_sweep
from scalarize.runs import EvalResult, RunDir, RunSummary
from scalarize.runs.records import LastValidation, ModelInfo
from scalarize.weights import parse_weights


def _summary(gains_by_capacity):
    rows = []
    for params, (cap, gains) in enumerate(gains_by_capacity.items()):
        for label, gain in gains.items():
            rows.append({"capacity": cap, "weights_label": label, "w_a": 0.5, "w_b": 0.5,
                         "params": params, "gain": gain, "gain_lo": np.nan,
                         "gain_hi": np.nan, "seeds": 1})
    return pd.DataFrame(rows)


def test_rank_stability_matches_scipy_on_known_orderings():
    small = {"u": 1.0, "v": 2.0, "w": 3.0, "x": 4.0}
    same = {k: 10 * v for k, v in small.items()}
    reverse = {k: -v for k, v in small.items()}
    one_swap = {"u": 2.0, "v": 1.0, "w": 3.0, "x": 4.0}
    pairs = rank_stability(_summary({"s": small, "same": same, "rev": reverse, "swap": one_swap}))
    get = {(r.capacity_a, r.capacity_b): r for _, r in pairs.iterrows()}
    assert get[("s", "same")].kendall_tau == pytest.approx(1.0)
    assert get[("s", "rev")].kendall_tau == pytest.approx(-1.0)
    assert get[("s", "rev")].spearman_rho == pytest.approx(-1.0)
    assert get[("s", "swap")].kendall_tau == pytest.approx(2 / 3)  # 5 concordant, 1 discordant
    assert get[("s", "swap")].spearman_rho == pytest.approx(1 - 6 * 2 / (4 * 15))
    ref = stats.kendalltau([1, 2, 3, 4], [2, 1, 3, 4]).statistic
    assert get[("s", "swap")].kendall_tau == pytest.approx(ref)


def test_transfer_regret_from_every_capacity_to_every_larger_one():
    summary = _summary({"small": {"u": 1.0, "v": 3.0}, "mid": {"u": 4.0, "v": 2.0},
                        "big": {"u": 5.0, "v": 6.0}})
    regret = transfer_regret(summary).set_index(["from", "to"])
    assert list(regret.index) == [("small", "mid"), ("small", "big"), ("mid", "big")]
    assert regret.loc[("small", "mid")].transferred_weights == "v"
    assert regret.loc[("small", "mid")].regret == pytest.approx(2.0)  # 4 - 2
    assert regret.loc[("small", "big")].regret == pytest.approx(0.0)  # v is best at big too
    assert regret.loc[("mid", "big")].transferred_weights == "u"
    assert regret.loc[("mid", "big")].regret == pytest.approx(1.0)  # 6 - 5


def test_mean_ci_and_distance():
    mean, lo, hi = mean_ci([1.0, 2.0, 3.0])
    assert (mean, lo, hi) == pytest.approx((2.0, 2 - 2.4841, 2 + 2.4841), abs=1e-4)
    assert np.isnan(mean_ci([1.0])[1])
    assert distance_from_uniform([0.5, 0.5]) == 0
    assert distance_from_uniform([1, 0, 0, 0]) == pytest.approx(0.75)


def _fake_sweep(folder, results):
    """results: (capacity, params, weights_label, weights, single, seed, metrics)"""
    runs = []
    for cap, params, label, weights, single, seed, metrics in results:
        name = f"{cap}-{label}-{seed}"
        runs.append({"name": name, "capacity": cap, "axes": {"width": params},
                     "weights": weights, "weights_label": label, "single_task": single,
                     "seed": seed})
        (folder / name).mkdir(parents=True)
        (folder / name / "config.yaml").write_text("seed: 0\n")
        test = EvalResult(acc=metrics, avg_acc=float(np.mean(list(metrics.values()))))
        RunDir(folder / name).write_summary(RunSummary(
            run=name, objectives=["a", "b"], weights=parse_weights(weights, ["a", "b"]),
            weights_label=label, model=ModelInfo(spec=cap, params=params, encoder_params=params,
                                                 flops=0),
            epochs=1, steps=1, val=LastValidation(), test=test, train_seconds=0.0,
            step_seconds=0.0, device="cpu"))
    (folder / "sweep.json").write_text(json.dumps(
        {"objectives": ["a", "b"], "view": "mtl", "runs": runs}))


def test_gains_by_hand_through_the_run_store(tmp_path):
    rows = []
    for seed, bump in [(0, 0.0), (1, 0.1)]:
        rows += [
            ("c1", 10, "onehot-a", {"a": 1, "b": 0}, "a", seed, {"a": 0.5, "b": 0.1}),
            ("c1", 10, "onehot-b", {"a": 0, "b": 1}, "b", seed, {"a": 0.1, "b": 0.4}),
            ("c1", 10, "uniform", {"a": .5, "b": .5}, None, seed, {"a": 0.5 + bump, "b": 0.2}),
        ]
    _fake_sweep(tmp_path, rows)
    gains = weighting_gains(load_sweep(tmp_path))
    # seed 0: ((0.5-0.5)/0.5 + (0.2-0.4)/0.4)/2 = -25%; seed 1: (0.2 - 0.5)/2 = -15%
    assert sorted(gains.gain) == pytest.approx([-25.0, -15.0])
    summary = summarize(gains)
    assert summary.gain.iloc[0] == pytest.approx(-20.0)
    assert summary.seeds.iloc[0] == 2
    caps = per_capacity(summary)
    assert caps.best_weights.iloc[0] == "uniform"
    assert caps.uniform_gain.iloc[0] == pytest.approx(-20.0)


def test_capacity_trend_is_spearman_of_per_seed_gains_of_each_capacitys_best():
    rows = []
    for params, cap in ((100, "s"), (1000, "m"), (10000, "l")):
        for seed in range(3):
            # "v" is best at every capacity and rises with it; "uniform" falls
            rows.append({"capacity": cap, "params": params, "seed": seed, "weights_label": "v",
                         "gain": params / 100 + seed})
            rows.append({"capacity": cap, "params": params, "seed": seed,
                         "weights_label": "uniform", "gain": -params / 1000 - seed})
    gains = pd.DataFrame(rows)
    summary = gains.groupby(["capacity", "weights_label"], sort=False, as_index=False).agg(
        params=("params", "first"), gain=("gain", "mean")).assign(
        gain_lo=np.nan, gain_hi=np.nan, seeds=3, w_a=0.5, w_b=0.5)
    trend = capacity_trend(gains, per_capacity(summary)).set_index("weighting")
    best = gains[gains.weights_label == "v"]
    expected = stats.spearmanr(np.log10(best.params), best.gain)
    assert trend.loc["best"].spearman_rho == pytest.approx(expected.statistic)
    assert trend.loc["best"].p == pytest.approx(expected.pvalue)
    assert trend.loc["best"].runs == 9 and trend.loc["best"].spearman_rho > 0.8
    assert trend.loc["uniform"].spearman_rho < -0.7
