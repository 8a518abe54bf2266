"""Hypervolume at any number of objectives against an independent exact formula."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from scalarize.analysis.pareto import hypervolume, hypervolume_with_error, pareto_fronts


def _inclusion_exclusion(points: np.ndarray, reference: np.ndarray) -> float:
    """The union of the boxes [reference, p]: Σ over subsets of (−1)^(k+1) · their overlap."""
    total = 0.0
    for k in range(1, len(points) + 1):
        for subset in itertools.combinations(range(len(points)), k):
            corner = points[list(subset)].min(axis=0)
            total += (-1) ** (k + 1) * float(np.prod(np.clip(corner - reference, 0, None)))
    return total


@pytest.mark.parametrize("objectives", [2, 3, 5, 12, 40])
def test_hypervolume_equals_inclusion_exclusion(objectives):
    rng = np.random.default_rng(objectives)
    points = rng.uniform(0.5, 1.0, size=(7, objectives))
    reference = np.full(objectives, 0.4)
    assert hypervolume(points, reference) == pytest.approx(
        _inclusion_exclusion(points, reference), rel=1e-9)


def test_points_below_the_reference_add_nothing():
    points = np.array([[0.5, 0.5], [0.2, 0.9]])
    assert hypervolume(points, [0.3, 0.3]) == pytest.approx(0.04)
    assert hypervolume(np.empty((0, 3))) == 0.0


def test_forty_objectives_of_a_population():
    # one member better on every objective dominates: the volume is its box alone
    rng = np.random.default_rng(0)
    points = rng.uniform(0.0, 0.9, size=(16, 40))
    best = np.full(40, 0.95)
    assert hypervolume(np.vstack([points, best])) == pytest.approx(0.95 ** 40)
    assert pareto_fronts(np.vstack([points, best]))[0] == [16]


@pytest.mark.parametrize("objectives", [10, 20, 40])
def test_many_points_at_many_objectives_are_estimated_within_their_stated_error(objectives):
    rng = np.random.default_rng(objectives)
    base = rng.uniform(0.5, 0.95, objectives)  # a population: close accuracies
    points = np.clip(base + rng.normal(0, 0.02, (12, objectives)), 0, 1)
    exact = _inclusion_exclusion(points, np.zeros(objectives))
    estimate = hypervolume_with_error(points)
    assert not estimate.exact and 0 < estimate.stderr < 0.02 * exact
    assert abs(estimate.value - exact) < 4 * estimate.stderr
    assert hypervolume_with_error(points) == estimate  # seeded: the same every time


def test_few_points_or_objectives_stay_exact():
    rng = np.random.default_rng(3)
    assert hypervolume_with_error(rng.uniform(0.1, 1, (40, 4))).exact  # 4 objectives
    few = hypervolume_with_error(rng.uniform(0.1, 1, (8, 40)))  # 8 points
    assert few.exact and few.stderr == 0.0
