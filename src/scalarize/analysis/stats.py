"""Small statistics helpers: a mean with its 95% interval, Student-t for unbounded quantities
and a bootstrap percentile interval for bounded ones (shares, cosines, correlations).

A Student-t interval is symmetric around the mean, so for a quantity that lives in a range (a
share of conflicting gradient pairs in [0, 1]) it can reach past the range with few values (two
runs at shares 0.2 and 0.9 give [-3.8, 4.9]). The percentile bootstrap of the mean resamples the
values themselves, so its ends are means of values in the range and never leave it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats

BOOTSTRAP_RESAMPLES = 9999
BOOTSTRAP_SEED = 0  # intervals are part of a report: the same values give the same interval


def mean_ci(values: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """Mean and the two ends of its Student-t confidence interval (NaN ends for one value).

    Example:
        >>> m, lo, hi = mean_ci([1.0, 2.0, 3.0])
        >>> m, round(hi - m, 3)
        (2.0, 2.484)
    """
    arr = np.asarray(values, dtype=float)
    mean = float(arr.mean())
    if len(arr) < 2:
        return mean, math.nan, math.nan
    half = float(stats.t.ppf(0.5 + level / 2, len(arr) - 1) * arr.std(ddof=1) / math.sqrt(len(arr)))
    return mean, mean - half, mean + half


def bootstrap_mean_ci(values: Sequence[float], level: float = 0.95
                      ) -> tuple[float, float, float]:
    """Mean and the two ends of its percentile-bootstrap interval (seeded, 9,999 resamples, as
    ``scipy.stats.bootstrap(method="percentile")``, whose ``rng`` argument needs SciPy ≥ 1.15):
    the ends are means of resampled values, so they lie between the smallest and the largest
    value and a mean of shares keeps its interval inside [0, 1]. NaN ends for one value (no
    interval); a zero-width interval for equal values.

    Example:
        >>> m, lo, hi = bootstrap_mean_ci([0.2, 0.9])
        >>> m, 0.2 <= lo <= hi <= 0.9
        (0.55, True)
    """
    arr = np.asarray(values, dtype=float)
    mean = float(arr.mean()) if len(arr) else math.nan
    if len(arr) < 2:
        return mean, math.nan, math.nan
    if np.ptp(arr) == 0:
        return mean, mean, mean
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    means = arr[rng.integers(0, len(arr), (BOOTSTRAP_RESAMPLES, len(arr)))].mean(axis=1)
    ends = np.percentile(means, [50 * (1 - level), 50 * (1 + level)])
    low, high = np.clip(ends, arr.min(), arr.max())  # a mean of equal values rounds off
    return mean, float(low), float(high)
