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
from typing import NamedTuple

import numpy as np


def pareto_fronts(points: np.ndarray) -> list[list[int]]:
    """Non-dominated sorting (maximisation): the indices of each front, best front first
    (one dominance matrix, then peeling: quadratic in the points, vectorised)."""
    points = np.asarray(points, dtype=np.float64)
    if len(points) == 0:
        return []
    at_least = np.all(points[:, None, :] >= points[None, :, :], axis=2)  # [j, i]: j ≥ i
    better = np.any(points[:, None, :] > points[None, :, :], axis=2)
    dominates = at_least & better  # [j, i]: j dominates i
    remaining = np.ones(len(points), dtype=bool)
    fronts = []
    while remaining.any():
        dominated = (dominates & remaining[:, None]).any(axis=0)
        front = np.flatnonzero(remaining & ~dominated)
        fronts.append(front.tolist())
        remaining[front] = False
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


#: Exact hypervolume up to this many objectives whatever the number of points, and at any
#: number of objectives up to :data:`EXACT_POINTS` non-dominated points; an estimate beyond.
EXACT_OBJECTIVES, EXACT_POINTS = 5, 8
ESTIMATE_SAMPLES = 2**15


class Hypervolume(NamedTuple):
    """A hypervolume, and its standard error (0 when ``exact``)."""

    value: float
    stderr: float
    exact: bool


def hypervolume(points: np.ndarray, reference: Sequence[float] | None = None) -> float:
    """Volume dominated by ``points`` (maximisation) above ``reference`` (default: origin):
    the value of :func:`hypervolume_with_error` (exact where cheap, else an estimate with a
    standard error of about 1% of it)."""
    return hypervolume_with_error(points, reference).value


def hypervolume_with_error(points: np.ndarray, reference: Sequence[float] | None = None,
                           samples: int = ESTIMATE_SAMPLES) -> Hypervolume:
    """Volume dominated by ``points`` (maximisation) above ``reference``, with its error.

    Exact, by Optuna's WFG implementation (``optuna._hypervolume.compute_hypervolume``, the
    one its multi-objective samplers use), where that is cheap: up to
    :data:`EXACT_OBJECTIVES` objectives, or up to :data:`EXACT_POINTS` non-dominated points.
    Beyond, exact computation is exponential in the number of objectives (16 points at 20
    objectives: 0.5 s; 24 points: 23 s; 48 points at 10: 31 s), so the value is *estimated*
    by :func:`karp_luby` from ``samples`` points, with its standard error (0.6% to 1.5% of the
    value with the default samples, 16 to 96 points at 10 to 40 objectives;
    ``benchmarks/hypervolume_speed.py``). Seeded: the same
    points give the same estimate. Points that do not dominate the reference add nothing.

    Example:
        >>> hypervolume_with_error(np.array([[0.5, 0.5], [1.0, 0.25]]))
        Hypervolume(value=0.375, stderr=0.0, exact=True)
    """
    points = np.asarray(points, dtype=np.float64)
    if points.size == 0:
        return Hypervolume(0.0, 0.0, True)
    ref = np.zeros(points.shape[1]) if reference is None else np.asarray(reference, float)
    points = points[np.all(points > ref, axis=1)]
    if len(points) == 0:
        return Hypervolume(0.0, 0.0, True)
    points = points[pareto_fronts(points)[0]] if len(points) > 1 else points
    if exact_is_cheap(points):
        from optuna._hypervolume import compute_hypervolume

        return Hypervolume(float(compute_hypervolume(-points, -ref)), 0.0, True)
    value, stderr = karp_luby(points - ref, samples)
    return Hypervolume(value, stderr, False)


def exact_is_cheap(front: np.ndarray) -> bool:
    """Whether the exact hypervolume of these non-dominated points is cheap (see
    :func:`hypervolume_with_error`)."""
    return front.shape[1] <= EXACT_OBJECTIVES or len(front) <= EXACT_POINTS


def exclusive_volume(point: np.ndarray, boxes: np.ndarray, samples: int = ESTIMATE_SAMPLES,
                     seed: int = 0) -> tuple[float, float]:
    """The volume of the box ``[0, point]`` outside the union of the boxes ``[0, b]`` (one per
    row ``b`` of ``boxes``), with its standard error: the box's volume times the share of
    ``samples`` uniform points in it that no other box holds (Monte Carlo, seeded). Added to
    the volume of the union, it gives the union with ``point``: an anytime curve grows its
    hypervolume this way, point by point, unbiased and never decreasing.

    Example:
        >>> value, stderr = exclusive_volume(np.array([1.0, 1.0]), np.array([[1.0, 0.5]]))
        >>> abs(value - 0.5) < 3 * stderr + 1e-9
        True
    """
    rng = np.random.default_rng(seed)
    inside = rng.random((samples, len(point))) * point
    covered = np.zeros(samples, dtype=bool)
    for box in boxes:
        covered |= np.all(inside <= box, axis=1)
    share = 1.0 - float(covered.mean())
    volume = float(np.prod(point))
    return volume * share, volume * float(np.sqrt(share * (1 - share) / samples))


def karp_luby(points: np.ndarray, samples: int = ESTIMATE_SAMPLES, seed: int = 0
              ) -> tuple[float, float]:
    """The volume of the union of the boxes ``[0, p]`` (one per row ``p`` of ``points``,
    all positive) and its standard error, by the Karp–Luby–Madras estimator: draw a box with
    probability proportional to its volume, a point uniformly in it, and average the sum of
    the volumes divided by the number of boxes that hold the point (unbiased; its relative
    variance is at most the number of boxes, in practice far less).

    Written here because no maintained library fits: ``moocore.hv_approx`` (the estimator of
    the COCO/EAF authors, which pymoo also calls) stops at 31 objectives and its error grows
    with them (3% at 20 objectives, 16 points, 2^16 samples, measured), and Optuna only has
    the exact, exponential algorithm.

    Example:
        >>> value, stderr = karp_luby(np.array([[1.0, 0.5], [0.5, 1.0]]))
        >>> abs(value - 0.75) < 3 * stderr
        True
    """
    rng = np.random.default_rng(seed)
    volumes = np.prod(points, axis=1)
    total = float(volumes.sum())
    chosen = rng.choice(len(points), samples, p=volumes / total)
    inside = rng.random((samples, points.shape[1])) * points[chosen]
    holders = np.zeros(samples)
    for box in points:
        holders += np.all(inside <= box, axis=1)
    estimates = total / holders
    return float(estimates.mean()), float(estimates.std() / np.sqrt(samples))


__all__ = ["EXACT_OBJECTIVES", "EXACT_POINTS", "Hypervolume", "crowding_distance",
           "exact_is_cheap", "exclusive_volume", "hypervolume", "hypervolume_with_error",
           "karp_luby", "pareto_fronts"]
