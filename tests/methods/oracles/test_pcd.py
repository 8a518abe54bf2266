"""Oracle: Priority-Constrained Descent (``pcd``) against the paper's quadratic program
(Varam et al., TMLR 2026; reference code github.com/DaraVaram/priority-constrained-descent).

The reference: v_i ← β v_i + (1 − β) ‖g_i‖² with the bias correction v̂_i = v_i / (1 − βᵏ) and
s_i = 1/√(v̂_i + ε); g̃_i = s_i g_i; d̃ = argmin ½‖d − g̃₁‖² subject to g̃_jᵀ d ≥ τ ‖g̃_j‖² for
every secondary objective j (solved in the parameter space by scipy's SLSQP, not through the
Gramian as scalarize's solver does); the update is d̃ rescaled to the norm of g₁. The first
objective is the primary one. Heads: plain (each head along its own gradient).

Tolerance: 1e-6 relative (SLSQP at ftol 1e-15); 1e-9 in the closed-form case.
"""

from __future__ import annotations

import pytest
import torch
from scipy.optimize import minimize

from scalarize.methods import build_method
from tests.methods.oracles._problems import (
    DTYPE,
    aggregate,
    flat,
    jacobians,
    train_method,
    train_reference,
)

COVERED = {"pcd"}


def pcd(tau: float = 0.02, beta: float = 0.999, eps: float = 1e-8):
    """The reference's direction(losses, J, state) -> (shared update, heads' weights)."""

    def direction(losses, jacobian, state):
        t = len(jacobian)
        state["k"] = state.get("k", 0) + 1
        state["v"] = beta * state.get("v", torch.zeros(t, dtype=DTYPE)) + \
            (1 - beta) * (jacobian ** 2).sum(dim=1)
        scale = 1 / (state["v"] / (1 - beta ** state["k"]) + eps).sqrt()
        g = (jacobian * scale.unsqueeze(1)).numpy()
        constraints = [{"type": "ineq", "fun": lambda d, gj=gj: gj @ d - tau * gj @ gj,
                        "jac": lambda d, gj=gj: gj} for gj in g[1:]]
        result = minimize(lambda d: 0.5 * (d - g[0]) @ (d - g[0]), g[0].copy(),
                          jac=lambda d: d - g[0], constraints=constraints, method="SLSQP",
                          options={"ftol": 1e-15, "maxiter": 1000})
        d = torch.from_numpy(result.x)
        return d * jacobian[0].norm() / d.norm(), torch.ones(t, dtype=DTYPE)

    return direction


def test_orthogonal_secondary_gets_its_fraction_tau():
    # step 1: v̂ = ‖g‖², so g̃ = g/‖g‖ = e₁, e₂; the constraint e₂ᵀd ≥ τ is active: d̃ = (1, τ),
    # rescaled to ‖g₁‖ = 1
    j = torch.tensor([[1.0, 0.0], [0.0, 2.0]], dtype=DTYPE)
    got = aggregate(build_method("pcd", {"tau": 0.1}, 2), j)
    assert torch.allclose(got, torch.tensor([1.0, 0.1], dtype=DTYPE) / 1.01 ** 0.5, atol=1e-9)


def test_ten_fixed_jacobians():
    sequence = jacobians(10, seed=12)
    method = build_method("pcd", {"tau": 0.3, "beta": 0.9}, 3)
    got = [aggregate(method, j) for j in sequence]
    reference, state = pcd(0.3, 0.9), {}
    for step, j in enumerate(sequence):
        expected, _ = reference(None, j, state)
        assert (got[step] - expected).norm() < 1e-6 * expected.norm(), step


@pytest.mark.parametrize("steps", [1, 10])
def test_tiny_model(steps):
    model, _ = train_method("pcd", steps, {"tau": 0.3})
    expected = train_reference(pcd(0.3), steps)
    assert (flat(model.parameters()) - flat(expected.parameters())).norm() < \
        1e-6 * flat(expected.parameters()).norm()
