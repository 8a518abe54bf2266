import math

import pytest

from scalarize.errors import ScalarizeError
from scalarize.search.simplex import simplex_grid


@pytest.mark.parametrize(("tasks", "step"), [(2, 0.1), (3, 0.25), (4, 0.5), (5, 0.2), (1, 0.5)])
def test_grid_counts_sums_and_corners(tasks, step):
    points = simplex_grid(tasks, step)
    parts = round(1 / step)
    assert len(points) == math.comb(parts + tasks - 1, tasks - 1)
    assert len(set(points)) == len(points)
    assert all(math.isclose(sum(p), 1.0) and min(p) >= 0 for p in points)
    corners = {tuple(float(i == j) for j in range(tasks)) for i in range(tasks)}
    assert corners <= set(points)
    assert all(math.isclose(v / step, round(v / step)) for p in points for v in p)


def test_two_task_grid_is_the_papers():
    assert [p[0] for p in simplex_grid(2, 0.1)] == pytest.approx([i / 10 for i in range(11)])


def test_bad_step():
    with pytest.raises(ScalarizeError, match="must divide 1"):
        simplex_grid(2, 0.3)
    with pytest.raises(ScalarizeError, match="must divide 1"):
        simplex_grid(2, 0)
