import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests

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
from scalarize.analysis.capacity import load_sweep, selected_vs_uniform
from scalarize.errors import SelectionFallbackWarning
from scalarize.runs import EvalResult, RunDir, RunSummary
from scalarize.runs.records import LastValidation, ModelInfo
from scalarize.weights import parse_weights


def _summary(gains_by_capacity, val_by_capacity=None):
    """A :func:`summarize` table: test Δ per capacity and weighting, and the validation Δ
    (``val_by_capacity``, the test Δ where not given)."""
    rows = []
    for params, (cap, gains) in enumerate(gains_by_capacity.items()):
        val = (val_by_capacity or {}).get(cap, gains)
        for label, gain in gains.items():
            rows.append({"capacity": cap, "weights_label": label, "w_a": 0.5, "w_b": 0.5,
                         "params": params, "gain": gain, "gain_lo": np.nan,
                         "gain_hi": np.nan, "val_gain": val[label], "seeds": 1})
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


def test_rank_stability_with_two_weightings_says_so_instead_of_a_tau():
    pairs = rank_stability(_summary({"s": {"u": 1.0, "v": 2.0}, "l": {"u": 2.0, "v": 3.0}}))
    row = pairs.iloc[0]
    assert np.isnan(row.kendall_tau) and np.isnan(row.kendall_p)
    assert row.note == "needs ≥ 3 weightings" and row.weightings == 2
    assert "one line" in pairs.attrs["note"]  # w_a, w_b: two objectives


def test_rank_stability_is_holm_corrected_with_a_bootstrap_interval_over_seeds():
    rng = np.random.default_rng(0)
    rows = []
    for cap, params in (("s", 10), ("m", 100), ("l", 1000)):
        for k, label in enumerate("uvwxy"):
            for seed in range(4):
                rows.append({"capacity": cap, "params": params, "weights_label": label,
                             "seed": seed, "gain": k + rng.normal(0, 0.3), "val_gain": k,
                             "avg_acc": 0.5, "w_a": 0.5, "w_b": 0.5})
    gains = pd.DataFrame(rows)
    summary = summarize(gains)
    pairs = rank_stability(summary, gains)
    assert len(pairs) == 3
    assert pairs.kendall_p_holm.tolist() == pytest.approx(
        multipletests(pairs.kendall_p, method="holm")[1].tolist())
    assert pairs.attrs["correction"] == "Holm-corrected across 3 pairs (kendall_p_holm)"
    for row in pairs.itertuples():
        means = summary.pivot(index="weights_label", columns="capacity", values="gain")
        ref = stats.kendalltau(means[row.capacity_a], means[row.capacity_b], method="exact")
        assert row.kendall_tau == pytest.approx(ref.statistic)
        assert row.kendall_p == pytest.approx(ref.pvalue)
        assert -1 <= row.tau_lo <= row.kendall_tau <= row.tau_hi <= 1
    # without the per-run gains there is no interval, the rest is the same
    bare = rank_stability(summary)
    assert bare.tau_lo.isna().all()
    pd.testing.assert_series_equal(bare.kendall_tau, pairs.kendall_tau)


def test_transfer_regret_selects_on_validation_and_reports_test():
    # on validation "v" looks best at small, "u" at mid, "v" at big; test says otherwise
    test = {"small": {"u": 1.0, "v": 3.0}, "mid": {"u": 4.0, "v": 2.0},
            "big": {"u": 5.0, "v": 6.0}}
    val = {"small": {"u": 0.0, "v": 1.0}, "mid": {"u": 1.0, "v": 0.0},
           "big": {"u": 0.0, "v": 1.0}}
    regret = transfer_regret(_summary(test, val)).set_index(["from", "to"])
    assert list(regret.index) == [("small", "mid"), ("small", "big"), ("mid", "big")]
    assert regret.loc[("small", "mid")].transferred_weights == "v"
    assert regret.loc[("small", "mid")].regret == pytest.approx(2.0)  # 4 - 2
    assert regret.loc[("small", "big")].regret == pytest.approx(0.0)  # v is chosen at big too
    assert regret.loc[("mid", "big")].transferred_weights == "u"
    assert regret.loc[("mid", "big")].regret == pytest.approx(1.0)  # 6 - 5
    assert set(regret.selected_on) == {"val"}
    # the big model's own choice is made on validation: when validation picks "u" there,
    # transferring "v" from small beats it on test and the regret is negative
    val["big"] = {"u": 1.0, "v": 0.0}
    regret = transfer_regret(_summary(test, val)).set_index(["from", "to"])
    assert regret.loc[("small", "big")].best_weights == "u"
    assert regret.loc[("small", "big")].regret == pytest.approx(-1.0)  # 5 - 6


def test_mean_ci_and_distance():
    mean, lo, hi = mean_ci([1.0, 2.0, 3.0])
    assert (mean, lo, hi) == pytest.approx((2.0, 2 - 2.4841, 2 + 2.4841), abs=1e-4)
    assert np.isnan(mean_ci([1.0])[1])
    assert distance_from_uniform([0.5, 0.5]) == 0
    assert distance_from_uniform([1, 0, 0, 0]) == pytest.approx(0.75)


def _fake_sweep(folder, results, val=None):
    """results: (capacity, params, weights_label, weights, single, seed, metrics); ``val``:
    the validation scores per run name (none: a run written without them)."""
    runs = []
    for cap, params, label, weights, single, seed, metrics in results:
        name = f"{cap}-{label}-{seed}"
        runs.append({"name": name, "capacity": cap, "axes": {"width": params},
                     "weights": weights, "weights_label": label, "single_task": single,
                     "seed": seed})
        (folder / name).mkdir(parents=True)
        (folder / name / "config.yaml").write_text("seed: 0\n")
        test = EvalResult(acc=metrics, avg_acc=float(np.mean(list(metrics.values()))))
        scores = (val or {}).get(name)
        last = LastValidation() if scores is None else LastValidation(
            acc=scores, avg_acc=float(np.mean(list(scores.values()))))
        RunDir(folder / name).write_summary(RunSummary(
            run=name, objectives=["a", "b"], weights=parse_weights(weights, ["a", "b"]),
            weights_label=label, model=ModelInfo(spec=cap, params=params, encoder_params=params,
                                                 flops=0),
            epochs=1, steps=1, val=last, test=test, train_seconds=0.0,
            step_seconds=0.0, device="cpu"))
    (folder / "sweep.json").write_text(json.dumps(
        {"objectives": ["a", "b"], "view": "mtl", "runs": runs}))


def _by_hand_rows():
    rows = []
    for seed, bump in [(0, 0.0), (1, 0.1)]:
        rows += [
            ("c1", 10, "onehot-a", {"a": 1, "b": 0}, "a", seed, {"a": 0.5, "b": 0.1}),
            ("c1", 10, "onehot-b", {"a": 0, "b": 1}, "b", seed, {"a": 0.1, "b": 0.4}),
            ("c1", 10, "uniform", {"a": .5, "b": .5}, None, seed, {"a": 0.5 + bump, "b": 0.2}),
            ("c1", 10, "w0.9", {"a": .9, "b": .1}, None, seed, {"a": 0.5, "b": 0.1}),
        ]
    return rows


def test_gains_by_hand_through_the_run_store_select_on_validation(tmp_path):
    # validation: single-task a=0.5 / b=0.5; uniform (0.5, 0.25) = -25%; w0.9 (0.6, 0.5) = +10%
    val = {}
    for seed in (0, 1):
        val[f"c1-onehot-a-{seed}"] = {"a": 0.5, "b": 0.1}
        val[f"c1-onehot-b-{seed}"] = {"a": 0.1, "b": 0.5}
        val[f"c1-uniform-{seed}"] = {"a": 0.5, "b": 0.25}
        val[f"c1-w0.9-{seed}"] = {"a": 0.6, "b": 0.5}
    _fake_sweep(tmp_path, _by_hand_rows(), val)
    runs = load_sweep(tmp_path)
    assert {"v_a", "v_b"} <= set(runs.columns)
    gains = weighting_gains(runs).set_index(["weights_label", "seed"])
    # test, seed 0: ((0.5-0.5)/0.5 + (0.2-0.4)/0.4)/2 = -25%; seed 1: (0.2 - 0.5)/2 = -15%
    assert gains.loc[("uniform", 0)].gain == pytest.approx(-25.0)
    assert gains.loc[("uniform", 1)].gain == pytest.approx(-15.0)
    assert gains.loc[("uniform", 0)].val_gain == pytest.approx(-25.0)
    assert gains.loc[("w0.9", 0)].val_gain == pytest.approx(10.0)
    # w0.9 on test: (0 + (0.1-0.4)/0.4)/2 = -37.5%, worse than uniform there
    assert gains.loc[("w0.9", 0)].gain == pytest.approx(-37.5)
    summary = summarize(weighting_gains(runs))
    assert summary.set_index("weights_label").gain["uniform"] == pytest.approx(-20.0)
    assert summary.seeds.iloc[0] == 2
    caps = per_capacity(summary)
    # chosen on validation, reported on test: not the weighting that tests best
    assert caps.best_weights.iloc[0] == "w0.9" and caps.selected_on.iloc[0] == "val"
    assert caps.best_gain.iloc[0] == pytest.approx(-37.5)
    assert caps.best_val_gain.iloc[0] == pytest.approx(10.0)
    assert caps.uniform_gain.iloc[0] == pytest.approx(-20.0)


def test_runs_without_validation_scores_fall_back_to_test_with_one_warning(tmp_path):
    _fake_sweep(tmp_path, _by_hand_rows())
    summary = summarize(weighting_gains(load_sweep(tmp_path)))
    assert summary.val_gain.isna().all()
    with pytest.warns(SelectionFallbackWarning, match="selected on test") as caught:
        caps = per_capacity(summary)
    assert len(caught) == 1
    assert caps.best_weights.iloc[0] == "uniform" and caps.selected_on.iloc[0] == "test"


def _trend_gains(capacities, rise, seeds=3):
    """Per-run gains: "v" rises with capacity (and looks best on validation everywhere),
    "uniform" falls; ``rise`` maps a capacity's params to v's mean gain."""
    rows = []
    for params, cap, axes in capacities:
        for seed in range(seeds):
            noise = 0.1 * (seed - 1)
            rows.append({"capacity": cap, "params": params, "seed": seed, "weights_label": "v",
                         "gain": rise(params, axes) + noise, "val_gain": 1.0, **axes})
            rows.append({"capacity": cap, "params": params, "seed": seed,
                         "weights_label": "uniform", "gain": -np.log10(params) + noise,
                         "val_gain": 0.0, **axes})
    gains = pd.DataFrame(rows)
    summary = gains.groupby(["capacity", "weights_label"], sort=False, as_index=False).agg(
        params=("params", "first"), gain=("gain", "mean"), val_gain=("val_gain", "mean"),
        **{a: (a, "first") for a in capacities[0][2]}).assign(
        gain_lo=np.nan, gain_hi=np.nan, seeds=seeds, w_a=0.5, w_b=0.5)
    return gains, summary


def test_capacity_trend_tests_capacity_means_with_an_exact_permutation_p():
    caps = [(10**k, f"c{k}", {}) for k in range(2, 7)]
    gains, summary = _trend_gains(caps, lambda params, _: np.log10(params))
    trend = capacity_trend(gains, per_capacity(summary)).set_index("weighting")
    assert list(trend.x) == ["log10 params", "log10 params"]
    selected = trend.loc["selected"]
    # five capacity means in order: ρ = 1 and the exact p is 2/5! = 1/60 (not per-run 25 points)
    assert selected.spearman_rho == pytest.approx(1.0)
    assert selected.p == pytest.approx(2 / 120)
    assert selected.capacities == 5 and selected.seeds == 3
    assert selected.test == "exact (120 orderings)"
    assert selected.rho_lo <= 1.0 <= selected.rho_hi + 1e-12
    assert trend.loc["uniform"].spearman_rho == pytest.approx(-1.0)
    assert trend.p_holm.tolist() == pytest.approx(
        multipletests(trend.p, method="holm")[1].tolist())
    assert trend.attrs["correction"] == "Holm-corrected across 2 tests (p_holm)"
    # the same ρ SciPy gives over the capacity means
    means = gains[gains.weights_label == "v"].groupby("params").gain.mean()
    ref = stats.spearmanr(np.log10(means.index), means.to_numpy())
    assert selected.spearman_rho == pytest.approx(ref.statistic)


def test_capacity_trend_per_axis_on_a_depth_by_width_plane():
    """Δ rises with width at every depth and does not depend on depth."""
    caps = [(d * w * 100, f"d{d}-w{w}", {"axis_depth": d, "axis_width": w})
            for d in (2, 4, 6) for w in (1, 2, 4)]
    flat_in_depth = {2: 0.3, 4: -0.2, 6: 0.1}
    gains, summary = _trend_gains(caps, lambda _, axes: axes["axis_width"]
                                  + flat_in_depth[axes["axis_depth"]])
    trend = capacity_trend(gains, per_capacity(summary))
    selected = trend[trend.weighting == "selected"].set_index("x")
    assert list(selected.index) == ["log10 params", "depth | width", "width | depth"]
    width = selected.loc["width | depth"]
    assert width.spearman_rho == pytest.approx(1.0)  # within every depth
    assert width.test == "exact (216 orderings)"  # (3!)^3 within-depth orderings
    assert width.p == pytest.approx(2 / 216)
    depth = selected.loc["depth | width"]
    assert depth.spearman_rho == pytest.approx(-0.5)  # 0.3, -0.2, 0.1 at every width
    assert depth.p > 0.05
    assert len(trend) == 6 and trend.attrs["correction"].startswith("Holm-corrected across 6")


def test_selected_vs_uniform_is_an_exact_sign_flip_over_capacities():
    cells = pd.DataFrame({"capacity": list("abcde"), "best_gain": [1.0, 2.0, 0.5, 3.0, 1.0],
                          "uniform_gain": [0.0, 0.0, 0.0, 0.0, 1.5]})
    out = selected_vs_uniform(cells).iloc[0]
    ref = stats.permutation_test((np.array([1.0, 2.0, 0.5, 3.0, -0.5]),), np.mean,
                                 permutation_type="samples", n_resamples=np.inf)
    assert out.p == pytest.approx(ref.pvalue)
    assert out.capacities == 5 and out.better_at == 4
    assert out.mean_difference == pytest.approx(1.2)
