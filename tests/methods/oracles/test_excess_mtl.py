"""Oracle: ExcessMTL (``excess_mtl``) against He et al. (ICML 2024), Eq. 6-9, and the official
code's first step.

The reference: S ← S + g_t ⊙ g_t (a running sum of squared gradients per task, the diagonal
AdaGrad approximation of the Hessian, Eq. 7), the excess risk e_t = g_tᵀ diag(√(S + 1e-7))⁻¹ g_t
(Eq. 6), divided from the second step on by the first step's (scale processing, Section 3.2;
the first step uses it raw, as the official code and LibMTL do), then the exponentiated update
α ← α exp(η e) / Σ (Eq. 9, η = ``robust_step_size`` = 1) from α = 1/T; the shared parameters move
along Σ α_t g_t, each head along its own gradient (heads=plain).

Scale convention: the weights lie on the simplex (Σ α = 1, the paper's); the official code and
LibMTL start from 1 and renormalise to Σ α = T, a step T times longer.

Tolerance: 1e-6 relative (scalarize divides by e₀ + 1e-7, the reference by e₀).
"""

from __future__ import annotations

import pytest
import torch

from scalarize.methods import build_method
from tests.methods.oracles._problems import (
    DTYPE,
    aggregate,
    flat,
    jacobians,
    train_method,
    train_reference,
)

COVERED = {"excess_mtl"}


def excess_mtl(eta: float = 1.0):
    """The reference's direction(losses, J, state) -> (shared update, heads' weights)."""

    def direction(losses, jacobian, state):
        t = len(jacobian)
        state.setdefault("S", torch.zeros_like(jacobian))
        state.setdefault("alpha", torch.full((t,), 1.0 / t, dtype=DTYPE))
        state["S"] = state["S"] + jacobian ** 2
        h = (state["S"] + 1e-7).sqrt()
        e = torch.stack([g @ (g / hi) for g, hi in zip(jacobian, h, strict=True)])
        if "e0" not in state:
            state["e0"] = e
        else:
            e = e / state["e0"]
        alpha = state["alpha"] * torch.exp(eta * e)
        state["alpha"] = alpha / alpha.sum()
        return state["alpha"] @ jacobian, torch.ones(t, dtype=DTYPE)

    return direction


def test_first_step_weights_tasks_by_their_raw_excess_risk():
    # step 1: S = g², so e_t = Σ_p |g_tp| (up to 1e-7): rows with L1 norms 1 and 3
    j = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 2.0]], dtype=DTYPE)
    alpha = torch.softmax(torch.tensor([1.0, 3.0], dtype=DTYPE), 0)
    got = aggregate(build_method("excess_mtl", {}, 2), j)
    assert torch.allclose(got, alpha @ j, rtol=1e-6)


def test_ten_fixed_jacobians():
    sequence = jacobians(10, seed=11)
    method = build_method("excess_mtl", {"robust_step_size": 0.5}, 3)
    got = [aggregate(method, j) for j in sequence]
    reference, state = excess_mtl(0.5), {}
    for step, j in enumerate(sequence):
        expected, _ = reference(None, j, state)
        assert (got[step] - expected).norm() < 1e-6 * expected.norm(), step


@pytest.mark.parametrize("steps", [1, 10])
def test_tiny_model(steps):
    model, _ = train_method("excess_mtl", steps)
    expected = train_reference(excess_mtl(), steps)
    assert (flat(model.parameters()) - flat(expected.parameters())).norm() < \
        1e-6 * flat(expected.parameters()).norm()
