import numpy as np
import pytest

from scalarize.search.explore import SimplexExplore


@pytest.mark.parametrize("start", [[0.5, 0.5], [1.0, 0.0], [0.2, 0.3, 0.5], [0.0, 0.0, 0.0, 1.0],
                                   [0.1] * 10])
@pytest.mark.parametrize("resample", [0.0, 0.5, 1.0])
def test_explore_stays_on_the_simplex_and_moves_the_point(start, resample):
    explore = SimplexExplore(resample_probability=resample)
    rng = np.random.default_rng(0)
    point = np.array(start)
    for _ in range(200):
        new = explore.perturb(point, rng)
        assert new.shape == point.shape
        assert np.all(np.isfinite(new)) and np.all(new >= 0)
        assert new.sum() == pytest.approx(1.0, abs=1e-12)
        assert np.abs(new - point).max() > 1e-6
        point = new


def test_uniform_scaling_would_be_a_no_op_but_explore_is_not():
    point = np.array([0.25, 0.75])
    scaled = point * 1.2 / (point * 1.2).sum()  # Ray's default perturbation, renormalised
    assert np.allclose(scaled, point)
    new = SimplexExplore(resample_probability=0).perturb(point, np.random.default_rng(1))
    assert not np.allclose(new, point, atol=1e-3)


def test_explore_scale_controls_the_step():
    rng = np.random.default_rng(0)
    point = np.array([0.3, 0.3, 0.4])
    small = np.mean([np.abs(SimplexExplore(scale=0.05, resample_probability=0)
                            .perturb(point, rng) - point).sum() for _ in range(100)])
    large = np.mean([np.abs(SimplexExplore(scale=1.0, resample_probability=0)
                            .perturb(point, rng) - point).sum() for _ in range(100)])
    assert small < large / 5


def test_explore_is_seeded():
    explore = SimplexExplore()
    a = [explore.perturb(np.array([0.5, 0.5]), np.random.default_rng(3)) for _ in range(2)]
    assert np.array_equal(a[0], a[1])
