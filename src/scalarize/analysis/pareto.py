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

    Exact, by slicing along the last objective (O(n^d): fine for populations of tens and a few
    objectives). Written here because the libraries that offer it (pymoo, botorch) are large
    dependencies for twenty lines.
    """
    points = np.asarray(points, dtype=np.float64)
    if points.size == 0:
        return 0.0
    ref = np.zeros(points.shape[1]) if reference is None else np.asarray(reference, float)
    points = points[np.all(points > ref, axis=1)]
    if len(points) == 0:
        return 0.0
    return float(_hv(points, ref))


def _hv(points: np.ndarray, ref: np.ndarray) -> float:
    if points.shape[1] == 1:
        return float(points[:, 0].max() - ref[0])
    points = points[np.argsort(-points[:, -1], kind="stable")]
    volume = 0.0
    for i in range(len(points)):
        lower = points[i + 1, -1] if i + 1 < len(points) else ref[-1]
        height = points[i, -1] - lower
        if height > 0:
            volume += height * _hv(points[:i + 1, :-1], ref[:-1])
    return volume


__all__ = ["crowding_distance", "hypervolume", "pareto_fronts"]
