"""Pareto fronts, crowding distance and hypervolume (maximisation), over numpy arrays.

Used by multi-objective PBT to rank members and by the search summary and reports.

Example:
    >>> points = np.array([[0.9, 0.1], [0.1, 0.9], [0.5, 0.5], [0.4, 0.4]])
    >>> pareto_fronts(points)
    [[0, 1, 2], [3]]
    >>> hypervolume(np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]]))
    0.25
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def pareto_fronts(points: np.ndarray) -> list[list[int]]:
    """Non-dominated sorting (maximisation): the indices of each front, best front first."""
    points = np.asarray(points, dtype=np.float64)
    remaining = list(range(len(points)))
    fronts = []
    while remaining:
        front = [i for i in remaining
                 if not any(np.all(points[j] >= points[i]) and np.any(points[j] > points[i])
                            for j in remaining)]
        fronts.append(front)
        remaining = [i for i in remaining if i not in front]
    return fronts


def crowding_distance(points: np.ndarray) -> np.ndarray:
    """NSGA-II crowding distance of each point within one front (boundary points: inf)."""
    points = np.asarray(points, dtype=np.float64)
    n, d = points.shape
    distance = np.zeros(n)
    if n <= 2:
        return np.full(n, np.inf)
    for k in range(d):
        order = np.argsort(points[:, k], kind="stable")
        span = points[order[-1], k] - points[order[0], k]
        distance[order[0]] = distance[order[-1]] = np.inf
        if span > 0:
            gaps = (points[order[2:], k] - points[order[:-2], k]) / span
            distance[order[1:-1]] += gaps
    return distance


def hypervolume(points: np.ndarray, reference: Sequence[float] | None = None) -> float:
    """Volume dominated by ``points`` (maximisation) above ``reference`` (default: origin).

    Exact, by Optuna's WFG implementation (``optuna._hypervolume.compute_hypervolume``, the one
    its multi-objective samplers use; Optuna is pinned in constraints.txt): 16 points at 40
    objectives in well under a second, where slicing along each objective in turn is
    exponential in their number (``benchmarks/hypervolume_speed.py``). Points that do not
    dominate the reference add nothing.
    """
    from optuna._hypervolume import compute_hypervolume

    points = np.asarray(points, dtype=np.float64)
    if points.size == 0:
        return 0.0
    ref = np.zeros(points.shape[1]) if reference is None else np.asarray(reference, float)
    points = points[np.all(points > ref, axis=1)]
    if len(points) == 0:
        return 0.0
    return float(compute_hypervolume(-points, -ref))


__all__ = ["crowding_distance", "hypervolume", "pareto_fronts"]
