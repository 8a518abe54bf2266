"""Exploit: which members of a population copy which, shared by every search engine (through
:class:`~scalarize.search.decide.PopulationPolicy`).

Members are ranked by a *key* (higher is better): the average held-out accuracy for PBT, or
``(−Pareto front, crowding distance)`` over the per-objective accuracies for multi-objective PBT.
The worst ``ceil(quantile × N)`` members copy a member drawn from the best ``ceil(quantile × N)``
— but only a member *strictly* worse than the worst of the top quantile is replaced, so ties never
make a member copy an equally good one (a population that scores all the same is left alone).
A member whose score is not finite (a diverged run) is always replaced.

Example:
    >>> exploit_pairs([0.9, 0.5, 0.7, 0.1], 0.25, np.random.default_rng(0))
    {3: 0}
    >>> exploit_pairs([0.5, 0.5, 0.5, 0.5], 0.25, np.random.default_rng(0))
    {}
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from scalarize.analysis.pareto import crowding_distance, pareto_fronts
from scalarize.errors import ScalarizeError

Key = float | tuple[float, ...]


def _finite(key: Key) -> bool:
    values = key if isinstance(key, tuple) else (key,)
    return all(math.isfinite(v) for v in values)


def _below(key: Key, other: Key) -> bool:
    """``key < other`` for keys of one kind (both numbers or both tuples)."""
    return bool(key < other)  # type: ignore[operator]


def rank_order(keys: Sequence[Key]) -> list[int]:
    """Member indices from best to worst; non-finite keys last; ties keep member order."""
    finite = [i for i, k in enumerate(keys) if _finite(k)]
    ordered = sorted(finite, key=lambda i: keys[i], reverse=True)  # stable: ties keep order
    return ordered + [i for i, k in enumerate(keys) if not _finite(k)]


def quantile_split(keys: Sequence[Key], quantile: float) -> tuple[list[int], list[int]]:
    """``(replaced, sources)``: the members to replace and the best quantile they copy from
    (see the module doc); empty when there is nothing to exploit."""
    n = len(keys)
    if n < 2:
        return [], []
    order = rank_order(keys)
    finite = [i for i in order if _finite(keys[i])]
    if not finite:
        raise ScalarizeError("every member of the population diverged (non-finite scores); "
                             "lower train.lr or set train.grad_clip")
    size = max(1, math.ceil(quantile * n))
    top = finite[:size]
    threshold = keys[top[-1]]
    bottom = [i for i in order[-size:] if i not in top and
              (not _finite(keys[i]) or _below(keys[i], threshold))]
    bottom += [i for i in order if not _finite(keys[i]) and i not in bottom]
    return sorted(bottom), top


def exploit_pairs(keys: Sequence[Key], quantile: float, rng: np.random.Generator
                  ) -> dict[int, int]:
    """``{replaced member: member it copies}`` for one exploit step (see the module doc)."""
    bottom, top = quantile_split(keys, quantile)
    return {i: int(top[rng.integers(len(top))]) for i in bottom}


def pareto_keys(points: np.ndarray) -> list[Key]:
    """Keys for :func:`exploit_pairs` from per-objective scores: (−front, crowding distance).
    Rows with a non-finite value get a non-finite key (they are replaced)."""
    points = np.asarray(points, dtype=np.float64)
    keys: list[Key] = [(-math.inf, 0.0)] * len(points)
    ok = [i for i in range(len(points)) if np.all(np.isfinite(points[i]))]
    for rank, front in enumerate(pareto_fronts(points[ok]) if ok else []):
        crowd = crowding_distance(points[ok][front])
        for j, c in zip(front, crowd, strict=True):
            keys[ok[j]] = (-float(rank), float(min(c, 1e9)))
    return keys
