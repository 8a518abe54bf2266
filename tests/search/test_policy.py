import math

import numpy as np
import pytest

from scalarize.analysis.pareto import crowding_distance, hypervolume, pareto_fronts
from scalarize.errors import ScalarizeError
from scalarize.search.policy import exploit_pairs, pareto_keys, rank_order


def test_worst_quantile_copies_from_the_best_quantile():
    scores = [0.1, 0.9, 0.5, 0.8, 0.2, 0.7, 0.3, 0.6]
    pairs = exploit_pairs(scores, 0.25, np.random.default_rng(0))
    assert set(pairs) == {0, 4}          # the two worst
    assert set(pairs.values()) <= {1, 3}  # copy one of the two best


def test_quantile_rounds_up_and_keeps_one_member_at_least():
    pairs = exploit_pairs([0.3, 0.2, 0.1], 0.1, np.random.default_rng(0))
    assert pairs == {2: 0}
    assert exploit_pairs([0.5], 0.25, np.random.default_rng(0)) == {}


def test_ties_never_copy_an_equally_good_member():
    assert exploit_pairs([0.5] * 8, 0.25, np.random.default_rng(0)) == {}
    # the bottom quantile ties with the top: only strictly worse members are replaced
    pairs = exploit_pairs([0.9, 0.9, 0.9, 0.1], 0.5, np.random.default_rng(0))
    assert set(pairs) == {3}
    assert pairs[3] in {0, 1}


def test_ties_rank_by_member_order():
    assert rank_order([0.5, 0.7, 0.5, 0.7]) == [1, 3, 0, 2]


def test_non_finite_members_are_always_replaced():
    scores = [0.9, math.nan, 0.8, 0.7, float("-inf"), 0.6, 0.5, 0.4]
    pairs = exploit_pairs(scores, 0.125, np.random.default_rng(0))
    assert {1, 4} <= set(pairs)
    assert all(math.isfinite(scores[s]) for s in pairs.values())


def test_a_population_that_all_diverged_is_an_error():
    with pytest.raises(ScalarizeError, match="diverged"):
        exploit_pairs([math.nan, math.nan], 0.25, np.random.default_rng(0))


def test_pareto_fronts_and_crowding():
    points = np.array([[0.9, 0.1], [0.1, 0.9], [0.5, 0.5], [0.4, 0.4], [0.2, 0.2]])
    assert pareto_fronts(points) == [[0, 1, 2], [3], [4]]
    crowd = crowding_distance(points[[0, 1, 2]])
    assert np.isinf(crowd[0]) and np.isinf(crowd[1]) and np.isfinite(crowd[2])
    keys = pareto_keys(points)
    assert rank_order(keys)[:3] == [0, 1, 2] and rank_order(keys)[-1] == 4


def test_pareto_keys_make_dominated_members_copy():
    points = np.array([[0.9, 0.1], [0.1, 0.9], [0.5, 0.5], [0.05, 0.05]])
    pairs = exploit_pairs(pareto_keys(points), 0.25, np.random.default_rng(0))
    assert list(pairs) == [3]


@pytest.mark.parametrize("points,expected", [
    ([[1.0, 1.0]], 1.0),
    ([[1.0, 0.5], [0.5, 1.0]], 0.75),
    ([[1.0, 0.5], [0.5, 1.0], [0.4, 0.4]], 0.75),       # dominated point adds nothing
    ([[0.5, 0.5, 0.5]], 0.125),
    ([[1.0, 0.5, 0.5], [0.5, 1.0, 0.5], [0.5, 0.5, 1.0]], 0.5),
])
def test_hypervolume_exact(points, expected):
    assert hypervolume(np.array(points)) == pytest.approx(expected)


def test_hypervolume_matches_monte_carlo_in_four_dimensions():
    rng = np.random.default_rng(0)
    points = rng.uniform(0.2, 1.0, size=(6, 4))
    samples = rng.uniform(0, 1, size=(200_000, 4))
    dominated = (samples[:, None, :] <= points[None]).all(axis=2).any(axis=1)
    assert hypervolume(points) == pytest.approx(dominated.mean(), abs=0.005)
