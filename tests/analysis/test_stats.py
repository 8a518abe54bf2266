import itertools
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests

from scalarize.analysis.stats import (
    bootstrap_mean_ci,
    hierarchical_bootstrap_ci,
    holm,
    kendall_permutation_test,
    mean_ci,
    sign_flip_test,
    spearman_permutation_test,
    spearman_rows,
)


def test_student_t_interval_of_two_shares_leaves_the_unit_interval():
    """Why shares need another interval: two runs at 0.2 and 0.9 give a t interval past 1."""
    _, lo, hi = mean_ci([0.2, 0.9])
    assert lo < 0 and hi > 1


@pytest.mark.parametrize("n", [2, 3, 5, 8, 30])
def test_bootstrap_interval_of_shares_stays_in_the_unit_interval_and_covers_the_mean(n):
    rng = np.random.default_rng(n)
    for _ in range(20):
        values = rng.beta(0.3, 0.3, n)  # mass near 0 and 1: the hardest case for a t interval
        mean, lo, hi = bootstrap_mean_ci(values)
        assert mean == pytest.approx(values.mean())
        assert values.min() <= lo <= mean <= hi <= values.max()
        assert lo >= 0.0 and hi <= 1.0


def test_bootstrap_interval_matches_scipy_percentile_bootstrap():
    values = np.random.default_rng(1).uniform(0, 1, 12)
    _, lo, hi = bootstrap_mean_ci(values)
    ref = stats.bootstrap((values,), np.mean, method="percentile", n_resamples=9999,
                          rng=np.random.default_rng(7)).confidence_interval
    assert lo == pytest.approx(ref.low, abs=0.02) and hi == pytest.approx(ref.high, abs=0.02)


def test_bootstrap_interval_is_seeded_and_has_edge_cases():
    values = [0.1, 0.4, 0.35, 0.8]
    assert bootstrap_mean_ci(values) == bootstrap_mean_ci(list(values))
    mean, lo, hi = bootstrap_mean_ci([0.3])
    assert mean == 0.3 and math.isnan(lo) and math.isnan(hi)
    assert bootstrap_mean_ci([0.5, 0.5, 0.5]) == (0.5, 0.5, 0.5)
    narrow, wide = bootstrap_mean_ci(values, level=0.5), bootstrap_mean_ci(values, level=0.95)
    assert wide[1] <= narrow[1] <= narrow[2] <= wide[2]


# --- tests at the right unit -----------------------------------------------------------------


def _brute_force_spearman_p(x, y):
    """Twice the smaller tail over every ordering of y, one spearmanr call each."""
    observed = stats.spearmanr(x, y).statistic
    null = np.array([stats.spearmanr(x, [y[i] for i in p]).statistic
                     for p in itertools.permutations(range(len(y)))])
    eps = 1e-12
    tail = min(np.mean(null <= observed + eps), np.mean(null >= observed - eps))
    return observed, min(1.0, 2 * tail)


@pytest.mark.parametrize("y", [[0.3, 1.2, 0.9, 2.5, 2.4], [5.0, 1.0, 4.0, 2.0, 3.0],
                               [1.0, 2.0, 3.0, 4.0, 5.0], [1.0, 1.0, 2.0, 3.0, 3.0]])
def test_spearman_permutation_p_equals_brute_force_and_scipy(y):
    x = np.log10([1e4, 3e4, 1e5, 3e5, 1e6])
    result = spearman_permutation_test(x, y)
    rho, p = _brute_force_spearman_p(x, y)
    assert result.exact and result.permutations == 120
    assert result.statistic == pytest.approx(rho)
    assert result.pvalue == pytest.approx(p)
    assert _spearman(x, np.asarray(y)) == pytest.approx(stats.spearmanr(x, y).statistic)
    ref = stats.permutation_test((x, np.asarray(y)), _spearman, permutation_type="pairings",
                                 n_resamples=np.inf, vectorized=True)
    assert result.pvalue == pytest.approx(ref.pvalue)


def _spearman(a, b, axis=-1):
    """Spearman's rho as Pearson's r of scipy's average ranks, vectorised: scipy's exact test
    takes 0.02 s with it, 3 s calling ``spearmanr`` once per ordering."""
    ra, rb = stats.rankdata(a, axis=axis), stats.rankdata(b, axis=axis)
    ra, rb = ra - ra.mean(axis=axis, keepdims=True), rb - rb.mean(axis=axis, keepdims=True)
    return (ra * rb).sum(axis) / np.sqrt((ra * ra).sum(axis) * (rb * rb).sum(axis))


def test_spearman_permutation_p_of_a_perfect_trend_over_five_capacities_is_1_over_60():
    """The smallest two-sided p with five capacity means: 2/120, not the 5e-9 of 25 runs."""
    assert spearman_permutation_test(range(5), range(5)).pvalue == pytest.approx(2 / 120)


def test_spearman_permutation_monte_carlo_beyond_the_limit_is_seeded_and_close():
    rng = np.random.default_rng(3)
    x, y = np.arange(8.0), np.arange(8.0) + rng.normal(0, 2, 8)
    exact = spearman_permutation_test(x, y)
    sampled = spearman_permutation_test(x, y, limit=5000)
    assert exact.exact and exact.permutations == math.factorial(8)
    assert not sampled.exact and sampled.permutations == 5000
    assert "Monte-Carlo (5,000" in sampled.method
    assert sampled.pvalue == pytest.approx(exact.pvalue, abs=0.02)
    assert sampled == spearman_permutation_test(x, y, limit=5000)


def test_stratified_spearman_permutes_within_strata_only():
    """Depth trend within each width: y rises with depth inside every width, while width
    shifts y a lot; the statistic is the mean within-width ρ (1 here) and the exact null has
    (3!)^2 = 36 orderings, the smallest p 2 × 1/36."""
    depth = [1, 2, 3, 1, 2, 3]
    width = ["a", "a", "a", "b", "b", "b"]
    y = [10.0, 11.0, 12.0, 0.0, 1.0, 2.0]
    result = spearman_permutation_test(depth, y, strata=width)
    assert result.statistic == pytest.approx(1.0)
    assert result.permutations == 36 and result.exact
    assert result.pvalue == pytest.approx(2 / 36)
    # brute force over the product of within-stratum permutations
    null = []
    for pa in itertools.permutations([0, 1, 2]):
        for pb in itertools.permutations([3, 4, 5]):
            order = list(pa) + list(pb)
            yy = [y[i] for i in order]
            null.append((stats.spearmanr(depth[:3], yy[:3]).statistic
                         + stats.spearmanr(depth[3:], yy[3:]).statistic) / 2)
    null = np.array(null)
    assert result.pvalue == pytest.approx(2 * np.mean(null >= 1.0 - 1e-12))


def test_kendall_permutation_matches_scipy_exact_and_brute_force_with_ties():
    x, y = [1, 2, 3, 4, 5, 6], [2.0, 1.0, 4.0, 3.0, 6.0, 5.0]
    result = kendall_permutation_test(x, y)
    ref = stats.kendalltau(x, y, method="exact")
    assert result.statistic == pytest.approx(ref.statistic)
    assert result.pvalue == pytest.approx(ref.pvalue)
    tied = [1.0, 1.0, 2.0, 3.0, 4.0]
    result = kendall_permutation_test([1, 2, 3, 4, 5], tied)
    assert result.statistic == pytest.approx(stats.kendalltau([1, 2, 3, 4, 5], tied).statistic)
    null = np.array([stats.kendalltau([1, 2, 3, 4, 5], [tied[i] for i in p]).statistic
                     for p in itertools.permutations(range(5))])
    tail = min(np.mean(null <= result.statistic + 1e-12),
               np.mean(null >= result.statistic - 1e-12))
    assert result.pvalue == pytest.approx(min(1.0, 2 * tail))
    assert result.exact and result.permutations == 120


def test_holm_equals_statsmodels_and_keeps_nan():
    p = [0.01, 0.04, 0.03, 0.2, 0.001]
    assert holm(p) == pytest.approx(multipletests(p, method="holm")[1].tolist())
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])  # by hand
    kept = holm([0.02, math.nan, 0.04])
    assert kept[0] == pytest.approx(0.04) and math.isnan(kept[1]) and kept[2] == pytest.approx(0.04)
    assert holm([]) == []


def test_sign_flip_test_by_hand_and_against_scipy():
    d = [1.0, 2.0, 0.5, 3.0]
    result = sign_flip_test(d)
    # all positive: only the all-plus pattern (and its mirror) reaches |mean| = 1.625 -> 2/16
    assert result.pvalue == pytest.approx(2 / 16) and result.permutations == 16
    d = [1.0, -0.5, 2.0, 0.3, -0.2, 1.1]
    ref = stats.permutation_test((np.array(d),), np.mean, permutation_type="samples",
                                 n_resamples=np.inf)
    assert sign_flip_test(d).pvalue == pytest.approx(ref.pvalue)
    assert sign_flip_test(d).statistic == pytest.approx(np.mean(d))
    assert sign_flip_test([0.0, 0.0]).pvalue == 1.0
    assert math.isnan(sign_flip_test([]).pvalue)


def _seeded_frame():
    rng = np.random.default_rng(0)
    rows = [{"capacity": cap, "seed": s, "gain": base + rng.normal(0, 1)}
            for cap, base in [("s", 0.0), ("m", 1.0), ("l", 3.0)] for s in range(5)]
    return pd.DataFrame(rows)


def test_hierarchical_bootstrap_resamples_seeds_within_capacity_and_is_seeded():
    frame = _seeded_frame()
    x = [1.0, 2.0, 3.0]
    out = hierarchical_bootstrap_ci(frame, statistic=lambda m: spearman_rows(x, m))
    again = hierarchical_bootstrap_ci(frame, statistic=lambda m: spearman_rows(x, m))
    pd.testing.assert_frame_equal(out.groups, again.groups)
    assert out.statistic == again.statistic and out.resamples == 2000
    means = frame.groupby("capacity", sort=False).gain.agg(["mean", "min", "max"])
    for row in out.groups.itertuples():
        assert row.mean == pytest.approx(means.loc[row.capacity, "mean"])
        # a mean of resampled seeds lies between the smallest and the largest seed
        assert means.loc[row.capacity, "min"] <= row.lo <= row.mean <= row.hi
        assert row.hi <= means.loc[row.capacity, "max"]
        assert row.units == 5
    rho, lo, hi = out.statistic
    assert rho == pytest.approx(1.0) and -1.0 <= lo <= hi <= 1.0
    # the interval of one capacity's mean equals a percentile bootstrap of its seeds
    small = frame[frame.capacity == "s"].gain.to_numpy()
    ref = stats.bootstrap((small,), np.mean, method="percentile", n_resamples=9999,
                          rng=np.random.default_rng(1)).confidence_interval
    row = out.groups.iloc[0]
    assert row.lo == pytest.approx(ref.low, abs=0.15) and row.hi == pytest.approx(ref.high,
                                                                                   abs=0.15)


def test_hierarchical_bootstrap_averages_rows_of_one_seed_and_has_no_interval_from_one():
    frame = pd.DataFrame({"capacity": ["s", "s", "s", "l"], "seed": [0, 0, 1, 0],
                          "gain": [1.0, 3.0, 4.0, 9.0]})
    out = hierarchical_bootstrap_ci(frame, statistic=lambda m: m[:, 1] - m[:, 0])
    small, large = out.groups.iloc[0], out.groups.iloc[1]
    assert small["mean"] == pytest.approx(3.0) and small.units == 2  # seed 0 is (1+3)/2
    assert large.units == 1 and math.isnan(large.lo) and math.isnan(large.hi)
    value, lo, hi = out.statistic
    assert value == pytest.approx(6.0) and math.isnan(lo) and math.isnan(hi)
