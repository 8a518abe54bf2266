"""Statistics of the analyses: intervals, and tests at the unit the design replicates.

- :func:`mean_ci`: a mean with its Student-t 95% interval, for unbounded quantities;
  :func:`bootstrap_mean_ci`: a percentile-bootstrap interval for bounded ones (shares,
  cosines, correlations). A Student-t interval is symmetric around the mean, so for a
  quantity in a range (a share of conflicting gradient pairs in [0, 1]) it can reach past the
  range with few values (two runs at shares 0.2 and 0.9 give [-3.8, 4.9]); the percentile
  bootstrap's ends are means of values in the range and never leave it.
- Tests at the right unit. A sweep's seeds change initialisation and batch order at one data
  draw, so the runs of one capacity are not independent evidence about capacity: a trend over
  capacity is tested on the capacity means with an exact permutation test
  (:func:`spearman_permutation_test`, :func:`kendall_permutation_test`,
  :func:`sign_flip_test`), intervals resample seeds within each capacity
  (:func:`hierarchical_bootstrap_ci`), and every family of tests is Holm-corrected
  (:func:`holm`, statsmodels).
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
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


# --- tests at the right unit -----------------------------------------------------------------
#
# A sweep's seeds change a model's initialisation and batch order at one data draw, so the runs
# of one capacity are not independent evidence about capacity: a trend over capacity is tested
# on the capacity means (n = number of capacities), intervals resample seeds within each
# capacity, and every family of tests is Holm-corrected.

#: Enumerate every permutation up to this many (9! = 362,880); beyond, a seeded Monte-Carlo
#: sample of :data:`MONTE_CARLO_RESAMPLES` permutations (the count is reported).
EXACT_LIMIT = 362_880
MONTE_CARLO_RESAMPLES = 99_999
HIERARCHICAL_RESAMPLES = 2_000
Values = Sequence[float] | np.ndarray
_TOLERANCE = 1e-12  # a permuted statistic equal to the observed one, up to rounding, counts


@dataclass(frozen=True)
class PermutationResult:
    """A permutation test: the observed ``statistic``, its two-sided ``pvalue`` (twice the
    smaller one-sided tail, at most 1, as :func:`scipy.stats.permutation_test`), how many
    permutations it counted and whether that was every one (``exact``)."""

    statistic: float
    pvalue: float
    permutations: int
    exact: bool

    def __post_init__(self) -> None:  # a ρ of 1 is 1, not 0.9999999999999999
        object.__setattr__(self, "statistic", round(float(self.statistic), 12))

    @property
    def method(self) -> str:
        """How the p-value was counted, for a table: ``exact (120 orderings)`` or
        ``Monte-Carlo (99,999 orderings, seeded)``."""
        if self.exact:
            return f"exact ({self.permutations:,} orderings)"
        return f"Monte-Carlo ({self.permutations:,} orderings, seeded)"


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment of ``p_values`` in the same order
    (``statsmodels.stats.multitest.multipletests(method="holm")``); NaN stays NaN and does not
    count as a test.

    Example:
        >>> holm([0.01, 0.04, 0.03])
        [0.03, 0.06, 0.06]
        >>> holm([0.2, float("nan")])
        [0.2, nan]
    """
    from statsmodels.stats.multitest import multipletests

    p = np.asarray(p_values, dtype=float)
    adjusted = np.full(len(p), math.nan)
    kept = ~np.isnan(p)
    if kept.any():
        adjusted[kept] = multipletests(p[kept], method="holm")[1]
    return [round(float(v), 12) for v in adjusted]


def _permutations(strata: Sequence[int], limit: int, seed: int) -> tuple[np.ndarray, bool]:
    """Index permutations that shuffle positions only within their stratum (``strata[i]`` is
    position i's stratum): every one when there are at most ``limit``, else ``limit`` seeded
    random ones. Rows are permutations; the identity is among the exact ones."""
    strata_arr = np.asarray(strata)
    groups = [np.flatnonzero(strata_arr == s) for s in dict.fromkeys(strata_arr.tolist())]
    count = math.prod(math.factorial(len(g)) for g in groups)
    n = len(strata_arr)
    if count <= limit:
        blocks = [np.array(list(itertools.permutations(g)), dtype=np.intp).reshape(-1, len(g))
                  for g in groups]
        out = np.empty((count, n), dtype=np.intp)
        # the Cartesian product of each stratum's permutations
        repeat = count
        tile = 1
        for g, block in zip(groups, blocks, strict=True):
            repeat //= len(block)
            out[:, g] = np.tile(np.repeat(block, repeat, axis=0), (tile, 1))
            tile *= len(block)
        return out, True
    rng = np.random.default_rng(seed)
    out = np.tile(np.arange(n), (limit, 1))
    for g in groups:
        out[:, g] = g[rng.permuted(np.tile(np.arange(len(g)), (limit, 1)), axis=1)]
    return out, False


def _two_sided(observed: float, null: np.ndarray, exact: bool) -> float:
    """Twice the smaller tail of ``null`` at ``observed`` (at most 1); a Monte-Carlo sample
    counts the observed ordering too (p is never 0)."""
    less = np.count_nonzero(null <= observed + _TOLERANCE * max(1.0, abs(observed)))
    greater = np.count_nonzero(null >= observed - _TOLERANCE * max(1.0, abs(observed)))
    extra = 0 if exact else 1
    tail = (min(less, greater) + extra) / (len(null) + extra)
    return float(min(1.0, 2 * tail))


def _centred_ranks(values: np.ndarray) -> np.ndarray:
    ranks = stats.rankdata(values, axis=-1)
    return ranks - ranks.mean(axis=-1, keepdims=True)


def spearman_permutation_test(x: Values, y: Values,
                              strata: Sequence[object] | None = None,
                              limit: int = EXACT_LIMIT, seed: int = BOOTSTRAP_SEED
                              ) -> PermutationResult:
    """Spearman's ρ between ``x`` and ``y`` and its permutation p-value: every ordering of
    ``y`` against ``x`` when there are at most ``limit`` (exact), else a seeded Monte-Carlo
    sample of ``limit`` orderings.

    With ``strata`` (one label per point), ``y`` is permuted only within a stratum and the
    statistic is the mean of the within-stratum ρ: the trend along ``x`` holding the stratum
    fixed (the depth trend within each width, say).

    Example:
        >>> result = spearman_permutation_test([1, 2, 3, 4, 5], [1.0, 2.5, 2.0, 4.0, 5.0])
        >>> round(result.statistic, 2), round(result.pvalue, 3), result.method
        (0.9, 0.083, 'exact (120 orderings)')
    """
    xs, ys = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(xs) != len(ys) or len(xs) < 3:
        raise ValueError("a Spearman permutation test needs the same number (≥ 3) of x and y")
    labels = [0] * len(xs) if strata is None else list(strata)
    codes = np.unique(np.asarray([str(s) for s in labels]), return_inverse=True)[1]
    perms, exact = _permutations(codes.tolist(), limit, seed)
    groups = [np.flatnonzero(codes == c) for c in np.unique(codes)]
    groups = [g for g in groups if len(g) >= 2 and np.ptp(xs[g]) > 0]
    if not groups:
        return PermutationResult(math.nan, math.nan, len(perms), exact)

    def mean_rho(order: np.ndarray) -> np.ndarray:  # order: (P, n) indices into ys
        rhos = []
        for g in groups:
            rx = _centred_ranks(xs[g])
            ry = _centred_ranks(ys[order[:, g]])
            denom = np.sqrt((rx**2).sum() * (ry**2).sum(axis=1))
            with np.errstate(invalid="ignore", divide="ignore"):
                rhos.append((ry @ rx) / denom)
        return np.mean(rhos, axis=0)

    observed = float(mean_rho(np.arange(len(xs))[None, :])[0])
    if not np.isfinite(observed):
        return PermutationResult(math.nan, math.nan, len(perms), exact)
    return PermutationResult(observed, _two_sided(observed, mean_rho(perms), exact),
                             len(perms), exact)


def kendall_permutation_test(x: Values, y: Values,
                             limit: int = EXACT_LIMIT, seed: int = BOOTSTRAP_SEED
                             ) -> PermutationResult:
    """Kendall's τ-b between ``x`` and ``y`` and its exact p-value: SciPy's exact null
    distribution when neither has ties, else every ordering of ``y`` (up to ``limit``; a
    seeded Monte-Carlo sample beyond).

    Example:
        >>> result = kendall_permutation_test([1, 2, 3, 4], [1, 3, 2, 4])
        >>> round(result.statistic, 3), round(result.pvalue, 3)
        (0.667, 0.333)
    """
    xs, ys = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    n = len(xs)
    if n != len(ys) or n < 2:
        raise ValueError("a Kendall test needs the same number (≥ 2) of x and y")
    if len(np.unique(xs)) == n and len(np.unique(ys)) == n:
        result = stats.kendalltau(xs, ys, method="exact")
        return PermutationResult(float(result.statistic), float(result.pvalue),
                                 math.factorial(n), True)
    perms, exact = _permutations([0] * n, limit, seed)
    null = _kendall_rows(xs, ys[perms])
    observed = float(_kendall_rows(xs, ys[None, :])[0])
    if not np.isfinite(observed):
        return PermutationResult(math.nan, math.nan, len(perms), exact)
    return PermutationResult(observed, _two_sided(observed, null, exact), len(perms), exact)


def _kendall_rows(x: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Kendall's τ-b of ``x`` (n,) against each row of ``rows`` (R, n); NaN where a row or
    ``x`` is constant."""
    i, j = np.triu_indices(len(x), 1)
    sx = np.sign(x[j] - x[i])
    sy = np.sign(rows[:, j] - rows[:, i])
    denom = np.sqrt(np.abs(sx).sum() * np.abs(sy).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, (sy @ sx) / np.where(denom > 0, denom, 1.0), np.nan)


def sign_flip_test(differences: Values, limit: int = 2**16,
                   seed: int = BOOTSTRAP_SEED) -> PermutationResult:
    """The paired sign-flip permutation test of the mean of ``differences`` (one per
    capacity, say: selected weights minus uniform): every one of the 2^n sign patterns up to
    ``limit`` (exact), else a seeded Monte-Carlo sample; as
    ``scipy.stats.permutation_test((d,), np.mean, permutation_type="samples")``.

    Example:
        >>> result = sign_flip_test([1.0, 2.0, 0.5, 3.0])
        >>> result.statistic, result.pvalue, result.method
        (1.625, 0.125, 'exact (16 orderings)')
    """
    d = np.asarray(differences, dtype=float)
    d = d[~np.isnan(d)]
    n = len(d)
    if n == 0:
        return PermutationResult(math.nan, math.nan, 0, True)
    if 2**n <= limit:
        signs = 1 - 2 * ((np.arange(2**n)[:, None] >> np.arange(n)) & 1)
        exact = True
    else:
        signs = np.random.default_rng(seed).choice([-1, 1], size=(limit, n))
        exact = False
    observed = float(d.mean())
    return PermutationResult(observed, _two_sided(observed, (signs * d).mean(axis=1), exact),
                             len(signs), exact)


@dataclass(frozen=True)
class HierarchicalInterval:
    """A hierarchical bootstrap: per ``group``, the mean over units (each unit's own mean first)
    with its percentile interval (``groups``: group, mean, lo, hi, units); the ``statistic``
    over group means with its interval (NaN ends when a group has one unit: nothing to
    resample); and how many ``resamples`` (seeded)."""

    groups: pd.DataFrame
    statistic: tuple[float, float, float] | None
    resamples: int


def hierarchical_bootstrap_ci(frame: pd.DataFrame, group: str = "capacity",
                              unit: str = "seed", value: str = "gain",
                              statistic: Callable[[np.ndarray], np.ndarray] | None = None,
                              level: float = 0.95, resamples: int = HIERARCHICAL_RESAMPLES,
                              seed: int = BOOTSTRAP_SEED) -> HierarchicalInterval:
    """Intervals that respect the design: the ``unit`` s (seeds) are resampled with
    replacement within each ``group`` (capacity), the groups themselves are fixed by the
    design. Rows of one unit in a group are averaged first; NaN values are left out.

    ``statistic`` maps an array of group means (resamples × groups, groups in order of first
    appearance) to one value per row (a Spearman ρ against capacity, say); its interval is
    the percentile interval over the resamples.

    Example:
        >>> frame = pd.DataFrame({"capacity": ["s"] * 3 + ["l"] * 3, "seed": [0, 1, 2] * 2,
        ...                       "gain": [1.0, 2.0, 3.0, 5.0, 6.0, 7.0]})
        >>> out = hierarchical_bootstrap_ci(frame, statistic=lambda m: m[:, 1] - m[:, 0])
        >>> out.groups[["capacity", "mean", "units"]].to_dict("records")
        [{'capacity': 's', 'mean': 2.0, 'units': 3}, {'capacity': 'l', 'mean': 6.0, 'units': 3}]
        >>> value, lo, hi = out.statistic
        >>> value, 2.0 <= lo <= value <= hi <= 6.0
        (4.0, True)
    """
    data = frame.dropna(subset=[value])
    per_unit = data.groupby([group, unit], sort=False)[value].mean()
    order = list(dict.fromkeys(data[group].tolist()))
    rng = np.random.default_rng(seed)
    resampled = np.empty((resamples, len(order)))
    rows = []
    low_q, high_q = 50 * (1 - level), 50 * (1 + level)
    for k, name in enumerate(order):
        values = per_unit.loc[name].to_numpy(dtype=float)
        draws = values[rng.integers(0, len(values), (resamples, len(values)))].mean(axis=1)
        resampled[:, k] = draws
        lo, hi = ((math.nan, math.nan) if len(values) < 2
                  else np.percentile(draws, [low_q, high_q]).tolist())
        rows.append({group: name, "mean": float(values.mean()), "lo": float(lo),
                     "hi": float(hi), "units": len(values)})
    groups = pd.DataFrame(rows, columns=[group, "mean", "lo", "hi", "units"])
    found = None
    if statistic is not None:
        observed = float(statistic(groups["mean"].to_numpy()[None, :])[0])
        if len(order) and groups.units.min() >= 2:
            draws = statistic(resampled)
            draws = np.round(draws[np.isfinite(draws)], 12)
            ends = np.percentile(draws, [low_q, high_q]) if len(draws) else [math.nan] * 2
            found = (observed, float(ends[0]), float(ends[1]))
        else:
            found = (observed, math.nan, math.nan)
    return HierarchicalInterval(groups, found, resamples)


def spearman_rows(x: Values, rows: np.ndarray) -> np.ndarray:
    """Spearman's ρ of ``x`` against each row of ``rows`` (R, n), vectorised (a
    ``statistic`` for :func:`hierarchical_bootstrap_ci`); NaN for a constant row."""
    rx = _centred_ranks(np.asarray(x, dtype=float))
    ry = _centred_ranks(np.asarray(rows, dtype=float))
    denom = np.sqrt((rx**2).sum() * (ry**2).sum(axis=-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, (ry @ rx) / np.where(denom > 0, denom, 1.0), np.nan)


@dataclass(frozen=True)
class TauInterval:
    """Kendall τ between two orderings of the same things by their seed means, its exact
    p-value (:func:`kendall_permutation_test`) and its bootstrap interval over seeds."""

    tau: float
    lo: float
    hi: float
    pvalue: float
    resamples: int


def kendall_tau_bootstrap(a: np.ndarray, b: np.ndarray, level: float = 0.95,
                          resamples: int = HIERARCHICAL_RESAMPLES,
                          seed: int = BOOTSTRAP_SEED) -> TauInterval:
    """Kendall τ between the orderings of the same weightings at two capacities, by their
    mean over seeds, with a bootstrap interval over seeds: ``a`` and ``b`` are (weightings ×
    seeds) arrays (NaN where a run is missing); each resample draws seeds with replacement
    within each capacity (the weightings of one capacity keep their shared seeds), takes
    the seed means again and recomputes τ. NaN ends with fewer than 2 seeds at a capacity.

    Example:
        >>> a = np.array([[1.0, 1.2], [2.0, 2.1], [3.0, 3.3]])
        >>> out = kendall_tau_bootstrap(a, a + 5)
        >>> (out.tau, out.lo, out.hi), round(out.pvalue, 3)
        ((1.0, 1.0, 1.0), 0.333)
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    mean_a, mean_b = np.nanmean(a, axis=1), np.nanmean(b, axis=1)
    test = kendall_permutation_test(mean_a, mean_b)
    if min(a.shape[1], b.shape[1]) < 2:
        return TauInterval(test.statistic, math.nan, math.nan, test.pvalue, resamples)
    rng = np.random.default_rng(seed)

    def resampled(m: np.ndarray) -> np.ndarray:  # (resamples, weightings)
        idx = rng.integers(0, m.shape[1], (resamples, m.shape[1]))
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a draw of only missing seeds
            return np.nanmean(m[:, idx], axis=2).T

    ra, rb = resampled(a), resampled(b)
    i, j = np.triu_indices(a.shape[0], 1)
    sa, sb = np.sign(ra[:, j] - ra[:, i]), np.sign(rb[:, j] - rb[:, i])
    denom = np.sqrt(np.abs(sa).sum(axis=1) * np.abs(sb).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        taus = (sa * sb).sum(axis=1) / denom
    taus = np.round(taus[np.isfinite(taus)], 12)  # a τ of 1 is 1, not 0.9999999999999999
    if not len(taus):
        return TauInterval(test.statistic, math.nan, math.nan, test.pvalue, resamples)
    lo, hi = np.percentile(taus, [50 * (1 - level), 50 * (1 + level)])
    return TauInterval(test.statistic, float(lo), float(hi), test.pvalue, resamples)
