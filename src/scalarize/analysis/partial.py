"""Partial correlation holding a categorical factor fixed, and a trend tested at the level of
its unit (one value per capacity, not one per run).

**Partial correlation.** Conflict and accuracy both move with capacity; whether they move
together *within* a capacity is the partial correlation with capacity held fixed. Capacity
enters as a category (one indicator per level, no assumed shape): both ``x`` and ``y`` are
regressed on the indicators by ordinary least squares (statsmodels), and the partial
correlation is Pearson's r of the two residuals. Its test is the t test of ``x`` in
``y ~ x + C(group)`` (identical by the Frisch–Waugh–Lovell theorem), with
``n − 2 − (levels − 1)`` degrees of freedom.

**Trend at the unit's level.** Runs of one capacity share the capacity (and, with one data
draw, the data): they are not independent replicates of the capacity effect. The trend is
Spearman's ρ over the capacity means, with an exact permutation p-value over every pairing of
the means (``scipy.stats.permutation_test``), so five capacities give at best p = 2/120.

Example:
    >>> out = partial_correlation([1, 2, 3, 4, 5, 6], [2, 1, 4, 3, 6, 7], ["a"] * 3 + ["b"] * 3)
    >>> round(out["r"], 3), out["n"], out["df"]
    (0.822, 6, 3)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats


def _residuals(values: np.ndarray, groups: pd.Series) -> np.ndarray:
    """``values`` less their OLS fit on an intercept and the groups' indicators."""
    design = pd.get_dummies(groups, drop_first=True, dtype=float)
    design = sm.add_constant(design.to_numpy(), has_constant="add")
    return np.asarray(sm.OLS(values, design).fit().resid)


def partial_correlation(x: Sequence[float], y: Sequence[float], groups: Sequence[object]
                        ) -> dict[str, float]:
    """Pearson r of ``x`` and ``y`` with the categorical ``groups`` held fixed, its two-sided
    p-value, n and degrees of freedom (NaN r and p when there are no degrees of freedom left
    or a residual is constant)."""
    xa, ya = np.asarray(x, float), np.asarray(y, float)
    g = pd.Series(list(groups)).astype(str)
    n, levels = len(xa), g.nunique()
    df = n - 2 - (levels - 1)
    nan = {"r": math.nan, "p": math.nan, "n": n, "df": df, "levels": levels}
    if df < 1:
        return nan
    rx, ry = _residuals(xa, g), _residuals(ya, g)
    if np.ptp(rx) < 1e-12 or np.ptp(ry) < 1e-12:
        return nan
    r = float(np.corrcoef(rx, ry)[0, 1])
    r = max(min(r, 1.0), -1.0)
    t = r * math.sqrt(df / max(1e-300, 1 - r * r))
    p = float(2 * stats.t.sf(abs(t), df))
    return {"r": r, "p": p, "n": n, "df": df, "levels": levels}


def level_trend(x: Sequence[float], y: Sequence[float]) -> dict[str, float]:
    """Spearman ρ of the unit means ``y`` against ``x`` (one point per unit) and its exact
    two-sided permutation p-value; NaN with fewer than 3 units or constant values.

    Example:
        >>> out = level_trend([1, 2, 3, 4, 5], [0.1, 0.2, 0.3, 0.5, 0.4])
        >>> round(out["rho"], 2), round(out["p"], 3)
        (0.9, 0.083)
    """
    xa, ya = np.asarray(x, float), np.asarray(y, float)
    n = len(xa)
    if n < 3 or np.ptp(xa) == 0 or np.ptp(ya) == 0:
        return {"rho": math.nan, "p": math.nan, "units": n}
    rho = float(stats.spearmanr(xa, ya).statistic)
    test = stats.permutation_test(
        (ya,), lambda v: stats.spearmanr(xa, v).statistic, permutation_type="pairings",
        n_resamples=np.inf, alternative="two-sided")
    return {"rho": rho, "p": float(test.pvalue), "units": n}


__all__ = ["level_trend", "partial_correlation"]
