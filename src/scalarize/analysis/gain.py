"""Multi-task gain Δ against single-task baselines (Maninis et al. 2019; Nash-MTL).

Δ = (1/T) Σ_t (−1)^{l_t} (M_t − S_t) / S_t × 100, with S_t the single-task model of the same
capacity and l_t = 1 when lower is better. Never against the same run's first epoch.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from scalarize.errors import ScalarizeError


def multitask_gain(multi: Mapping[str, float], single: Mapping[str, float],
                   lower_is_better: Mapping[str, bool] | None = None) -> float:
    """Δ in percent of ``multi`` (objective -> metric) against ``single`` baselines; NaN
    (undefined, shown as ``-`` in tables) when a baseline is 0, e.g. a single-task run that
    scored nothing, rather than an error that would hide every other row.

    Example:
        >>> round(multitask_gain({"a": 0.9, "b": 0.5}, {"a": 0.8, "b": 0.5}), 2)
        6.25
        >>> multitask_gain({"a": 0.9}, {"a": 0.0})
        nan
    """
    missing = sorted(set(multi) - set(single))
    if missing:
        raise ScalarizeError(f"no single-task baseline for {missing}; train onehot:<name> runs")
    lower = lower_is_better or {}
    terms = []
    for name, value in multi.items():
        base = single[name]
        if base == 0:
            return math.nan
        sign = -1.0 if lower.get(name, False) else 1.0
        terms.append(sign * (value - base) / base)
    return 100.0 * sum(terms) / len(terms)

