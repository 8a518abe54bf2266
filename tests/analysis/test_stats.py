import math

import numpy as np
import pytest
from scipy import stats

from scalarize.analysis.stats import bootstrap_mean_ci, mean_ci


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
