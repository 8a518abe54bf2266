"""MoCo's and DB-MTL's options (their updates: tests/methods/oracles/test_moco.py and
test_db_mtl.py)."""

from __future__ import annotations

import pytest
import torch

from scalarize.errors import ScalarizeError
from scalarize.methods import build_method
from scalarize.methods.tracked import project_simplex


def test_an_unknown_projection_is_refused_in_one_line():
    with pytest.raises(ScalarizeError, match="unknown projection 'box'"):
        build_method("moco", {"projection": "box"}, n_objectives=2)


@pytest.mark.parametrize("v", [[0.2, 0.3, 0.5], [3.0, -1.0, 0.0], [-2.0, -2.0, -2.0]])
def test_the_simplex_projection_lands_on_the_simplex_and_keeps_points_on_it(v):
    out = project_simplex(torch.tensor(v, dtype=torch.float64))
    assert out.min() >= 0 and torch.isclose(out.sum(), torch.tensor(1.0, dtype=out.dtype))
    if min(v) >= 0 and sum(v) == 1:
        assert torch.allclose(out, torch.tensor(v, dtype=torch.float64))


def test_the_four_new_methods_are_study_baselines():
    from scalarize.studies.study import parse_strategies

    names = ["imtl", "moco", "db_mtl", "auto_lambda"]
    assert [s.method for s in parse_strategies(names)] == names
