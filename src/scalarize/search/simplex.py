"""Points on the probability simplex: regular grids.

Example:
    >>> simplex_grid(2, 0.5)
    [(0.0, 1.0), (0.5, 0.5), (1.0, 0.0)]
    >>> len(simplex_grid(3, 0.25))  # C(4 + 2, 2)
    15
"""

from __future__ import annotations

import itertools
import math

from scalarize.errors import ScalarizeError


def simplex_grid(n_objectives: int, step: float) -> list[tuple[float, ...]]:
    """Every point whose coordinates are multiples of ``step`` and sum to one, in lexicographic
    order; there are C(1/step + T − 1, T − 1) of them, the T corners included."""
    if n_objectives < 1:
        raise ScalarizeError("a simplex grid needs at least one objective")
    parts = round(1.0 / step) if step > 0 else 0
    if parts < 1 or not math.isclose(parts * step, 1.0, rel_tol=1e-9):
        raise ScalarizeError(f"grid step {step} must divide 1 (e.g. 0.5, 0.25, 0.1)")
    points = []
    for cut in itertools.combinations(range(parts + n_objectives - 1), n_objectives - 1):
        bounds = (-1, *cut, parts + n_objectives - 1)
        counts = [bounds[i + 1] - bounds[i] - 1 for i in range(n_objectives)]
        points.append(tuple(round(c / parts, 12) for c in counts))
    return sorted(points)
