"""Oracle: Nash-MTL (``nash_mtl``) against Navon et al. (ICML 2022) and the official code.

The paper's update (Algorithm 1): α is the bargaining solution, the positive root of
G α = 1/α with G = J Jᵀ (element-wise 1/α); the shared parameters move along Jᵀ α clipped to
norm ``max_norm`` (the official code clips the shared gradient after the backward pass), and,
as the official code back-propagates Σ α_t L_t, head t moves along α_t ∇L_t with the unclipped
α. The reference solves G α = 1/α exactly with scipy (least squares on the residual,
tolerance 1e-15); the official code reaches it by at most 20 concave-convex steps, warm-started
from the previous step's α: 1e-6 relative on a single step, 1e-5 after 10 SGD steps.

One convention of the official code is kept: its stopping rule tests ‖Ĝ α₀ − 1/α₀‖ < 1e-3 on
the *normalised* Gramian Ĝ = G / ‖G‖_F with the warm start α₀ (1 at the first step) *before*
solving, so where that holds it returns α₀ unsolved. For T equal gradients Ĝ = 11ᵀ/T and
α₀ = 1 passes: the official code (and scalarize) returns α = 1 where the bargaining solution is
1/‖g‖√T (:func:`test_equal_gradients_keep_the_official_codes_initial_alpha`).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from scipy.optimize import least_squares

from scalarize.methods import build_method
from tests.methods.oracles._problems import (
    DTYPE,
    aggregate,
    flat,
    jacobians,
    train_method,
    train_reference,
)

COVERED = {"nash_mtl"}


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # cvxpy's DPP notice
        yield


def bargaining(jacobian: torch.Tensor) -> torch.Tensor:
    """The positive root of G α = 1/α, G = J Jᵀ (the paper's Eq. 4 / Claim 3.1)."""
    g = (jacobian @ jacobian.T).numpy()
    solution = least_squares(lambda a: g @ a - 1 / a, np.ones(len(g)), bounds=(1e-12, np.inf),
                             xtol=1e-15, ftol=1e-15, gtol=1e-15).x
    assert np.abs(g @ solution - 1 / solution).max() < 1e-9  # a root, not a stall
    return torch.from_numpy(solution)


def clip(d: torch.Tensor, max_norm: float = 1.0) -> torch.Tensor:
    return d * min(1.0, max_norm / float(d.norm()))


def test_orthogonal_rows_give_every_task_the_same_progress():
    # G diagonal: α_t = 1/‖g_t‖, so gᵢᵀ d = ‖gᵢ‖ α_i ‖gᵢ‖ = ‖gᵢ‖: d = Σ g_t/‖g_t‖ = (1, 1)
    j = torch.tensor([[0.3, 0.0], [0.0, 0.05]], dtype=DTYPE)
    got = aggregate(build_method("nash_mtl", {"max_norm": 0.0}, 2), j)
    assert torch.allclose(got, torch.ones(2, dtype=DTYPE), rtol=1e-6)


@pytest.mark.parametrize("seed", [5, 6])
def test_shared_update_is_the_clipped_bargaining_direction(seed):
    j = jacobians(1, seed=seed)[0]
    for max_norm in (0.0, 1.0):
        got = aggregate(build_method("nash_mtl", {"max_norm": max_norm}, 3), j)
        expected = bargaining(j) @ j
        expected = clip(expected, max_norm) if max_norm else expected
        assert (got - expected).norm() < 1e-6 * expected.norm(), max_norm


def test_update_weights_every_reuses_alpha():
    # update_weights_every = 2: α is solved at steps 0, 2, … and reused at steps 1, 3, …
    sequence = jacobians(3, seed=8)
    method = build_method("nash_mtl", {"max_norm": 0.0, "update_weights_every": 2}, 3)
    got = [aggregate(method, j) for j in sequence]
    alphas = [bargaining(sequence[0]), bargaining(sequence[0]), bargaining(sequence[2])]
    for step, (j, alpha) in enumerate(zip(sequence, alphas, strict=True)):
        expected = alpha @ j
        assert (got[step] - expected).norm() < 1e-6 * expected.norm(), step


def test_equal_gradients_keep_the_official_codes_initial_alpha():
    # the official stopping rule (see the module doc): Ĝ 1 = 1 for equal rows, so α stays 1;
    # the bargaining solution would be 1/(‖g‖√T) = 0.30 here
    row = torch.tensor([1.0, 2.0, 0.5], dtype=DTYPE)
    row = row / row.norm() * (11.1 / 3) ** 0.5
    j = torch.stack([row, row, row])
    method = build_method("nash_mtl", {"max_norm": 0.0}, 3)
    got = aggregate(method, j)
    assert torch.allclose(bargaining(j), torch.full((3,), 11.1 ** -0.5, dtype=DTYPE))
    assert torch.allclose(got, 3 * row, rtol=1e-12)  # α = 1, not 0.30


def _nash(heads: str):
    def direction(losses, jacobian, state):
        alpha = bargaining(jacobian)
        return clip(alpha @ jacobian), alpha if heads == "weighted" else torch.ones(3, dtype=DTYPE)

    return direction


@pytest.mark.parametrize(("heads", "steps"), [("weighted", 1), ("weighted", 10), ("plain", 10)])
def test_tiny_model_heads_and_shared_as_the_official_code(heads, steps):
    # default heads=weighted: head t along α_t ∇L_t with the unclipped α (α ∈ [0.5, 1.2] here,
    # so plain and weighted differ by far more than the tolerance)
    options = {} if heads == "weighted" else {"heads": "plain"}
    model, _ = train_method("nash_mtl", steps, options)
    expected = train_reference(_nash(heads), steps)
    got, want = flat(model.parameters()), flat(expected.parameters())
    assert (got - want).norm() < 1e-5 * want.norm()
    assert (got - flat(train_reference(_nash("plain" if heads == "weighted" else "weighted"),
                                       steps).parameters())).norm() > 1e-3 * want.norm()
