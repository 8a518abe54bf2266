"""Oracles for the methods that aggregate the shared-parameter Jacobian J (T × P, one row per
task): each reference is written from its paper's equations with numpy/scipy, on fixed
Jacobians with closed-form answers (orthogonal or opposed rows) and on seeded random ones.

Tolerances: 1e-9 where the update is in closed form; the stated solver tolerance where the
method (or the reference) solves an optimisation problem iteratively.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from scipy.optimize import least_squares, minimize

from scalarize.methods import build_method
from tests.methods.oracles._problems import DTYPE, aggregate, jacobians, run

COVERED = {"pcgrad", "mgda", "cagrad", "imtl_g", "aligned_mtl", "upgrad", "dualproj",
           "config", "fairgrad", "graddrop_params"}

ORTHOGONAL = torch.tensor([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0]], dtype=DTYPE)
OPPOSED = torch.tensor([[1.0, 0.0], [-1.0, 0.0]], dtype=DTYPE)
CONFLICT = torch.tensor([[1.0, 0.0], [-1.0, 1.0]], dtype=DTYPE)
RANDOM = jacobians(1, t=3, p=6, seed=3)[0]


def _min_norm(jacobian: torch.Tensor) -> np.ndarray:
    """MGDA's weights: argmin over the simplex of ‖αᵀJ‖², solved exactly (SLSQP)."""
    g = (jacobian @ jacobian.T).numpy()
    t = len(g)
    result = minimize(lambda a: a @ g @ a, np.full(t, 1.0 / t), jac=lambda a: 2 * g @ a,
                      bounds=[(0, 1)] * t, constraints={"type": "eq", "fun": lambda a: a.sum() - 1},
                      method="SLSQP", options={"ftol": 1e-15, "maxiter": 1000})
    return result.x


# --- MGDA (Sener & Koltun 2018): the min-norm point of the convex hull of the gradients -------

def test_mgda_orthogonal_rows_weight_each_by_its_inverse_squared_norm():
    # α ∝ 1/‖g_t‖²: (0.8, 0.2), d = (0.8, 0.4, 0)
    assert torch.allclose(run("mgda", ORTHOGONAL), torch.tensor([0.8, 0.4, 0.0], dtype=DTYPE),
                          atol=1e-9)


def test_mgda_opposed_rows_give_no_step():
    assert torch.allclose(run("mgda", OPPOSED), torch.zeros(2, dtype=DTYPE), atol=1e-12)


def test_mgda_default_tolerance_leaves_a_1e3_error_and_a_tight_epsilon_removes_it():
    exact = torch.from_numpy(_min_norm(RANDOM)) @ RANDOM
    default = run("mgda", RANDOM)
    tight = run("mgda", RANDOM, {"epsilon": 1e-12, "max_iters": 100_000})
    # Frank-Wolfe stopped at a step γ < 1e-3: here 7% off the exact min-norm direction
    assert 1e-3 * exact.norm() < (default - exact).norm() < 0.1 * exact.norm()
    assert (tight - exact).norm() < 1e-5 * exact.norm()


def test_mgda_ub_solves_min_norm_on_the_features():
    # the linear problem's features are θ itself: the feature Jacobian is J
    exact = torch.from_numpy(_min_norm(RANDOM)) @ RANDOM
    got = run("mgda_ub", RANDOM, {"epsilon": 1e-12, "max_iters": 100_000})
    assert (got - exact).norm() < 1e-5 * exact.norm()


# --- PCGrad (Yu et al. 2020): project each gradient off the others it conflicts with, in a random
# order, and sum ---------------------------------------------------------------------------------

def _pcgrad(jacobian: torch.Tensor, orders: list[list[int]]) -> torch.Tensor:
    out = torch.zeros(jacobian.shape[1], dtype=DTYPE)
    for i, order in enumerate(orders):
        g = jacobian[i].clone()
        for j in order:
            dot = g @ jacobian[j]
            if dot < 0:
                g = g - dot / (jacobian[j] @ jacobian[j]) * jacobian[j]
        out += g
    return out


def test_pcgrad_two_conflicting_rows_in_closed_form():
    # g1' = (0.5, 0.5), g2' = (0, 1): the sum (0.5, 1.5)
    assert torch.allclose(run("pcgrad", CONFLICT), torch.tensor([0.5, 1.5], dtype=DTYPE),
                          atol=1e-12)


def test_pcgrad_random_order_matches_the_reference_in_distribution():
    t = len(RANDOM)
    others = [[j for j in range(t) if j != i] for i in range(t)]
    outcomes = [_pcgrad(RANDOM, list(orders)) for orders in
                itertools.product(*[list(itertools.permutations(o)) for o in others])]
    expected = torch.stack(outcomes).mean(dim=0)  # every order equally likely
    torch.manual_seed(0)
    method = build_method("pcgrad", {}, t)
    draws = torch.stack([aggregate(method, RANDOM) for _ in range(200)])
    for draw in draws[:20]:  # each draw is one of the reference's outcomes
        assert min((draw - o).norm() for o in outcomes) < 1e-9
    spread = torch.stack(outcomes).std(dim=0).max()
    assert (draws.mean(dim=0) - expected).abs().max() < 4 * spread / math.sqrt(200) + 1e-12


# --- CAGrad (Liu et al. 2021): d = g₀ + (c‖g₀‖ / ‖g_w‖) g_w, w = argmin g_wᵀg₀ + c‖g₀‖‖g_w‖ -----

def _cagrad(jacobian: torch.Tensor, c: float, rescale: int) -> torch.Tensor:
    j = jacobian.numpy()
    t = len(j)
    g0 = j.mean(axis=0)
    phi = c * np.linalg.norm(g0)
    result = minimize(lambda w: (w @ j) @ g0 + phi * np.linalg.norm(w @ j), np.full(t, 1 / t),
                      bounds=[(0, 1)] * t, method="SLSQP",
                      constraints={"type": "eq", "fun": lambda w: w.sum() - 1},
                      options={"ftol": 1e-14, "maxiter": 1000})
    gw = result.x @ j
    d = g0 + phi / np.linalg.norm(gw) * gw
    return torch.from_numpy(d / [1.0, 1.0 + c * c, 1.0 + c][rescale])


@pytest.mark.parametrize("rescale", [0, 1, 2])
def test_cagrad_matches_the_official_update(rescale):
    got = run("cagrad", RANDOM, {"rescale": rescale})
    expected = _cagrad(RANDOM, 0.4, rescale)
    assert (got - expected).norm() < 1e-4 * expected.norm()


def test_cagrad_default_is_rescale_0_today_s_numbers():
    assert torch.equal(run("cagrad", RANDOM), run("cagrad", RANDOM, {"rescale": 0}))


# --- IMTL-G (Liu et al. 2021): equal projections of d on every unit gradient, Σ α = 1 -----------

def test_imtl_g_has_equal_projections_on_the_unit_gradients():
    j = RANDOM
    u = j / j.norm(dim=1, keepdim=True)
    d_, u_ = j[0] - j[1:], u[0] - u[1:]  # the paper's closed form
    alpha_rest = j[0] @ u_.T @ torch.linalg.inv(d_ @ u_.T)
    alpha = torch.cat([1 - alpha_rest.sum().unsqueeze(0), alpha_rest])
    got = run("imtl_g", j)
    assert torch.allclose(got, alpha @ j, atol=1e-9)
    projections = u @ got
    assert torch.allclose(projections, projections[0].expand(3), atol=1e-9)


# --- Aligned-MTL (Senushkin et al. 2023): rows aligned by B = √σ_min V Σ^{-1} Vᵀ (of J Jᵀ = VΣ²Vᵀ);
# the official update sums the aligned rows; scalarize (torchjd) takes their mean: 1/T of it ----

def test_aligned_mtl_is_the_official_update_divided_by_t():
    j = RANDOM
    eigenvalues, v = torch.linalg.eigh(j @ j.T)
    sigma = eigenvalues.sqrt()
    b = sigma.min() * v @ torch.diag(1 / sigma) @ v.T
    official = (b @ j).sum(dim=0)
    got = run("aligned_mtl", j)
    assert torch.allclose(got, official / len(j), atol=1e-9)


def test_aligned_mtl_orthogonal_rows_are_scaled_to_the_smallest_norm():
    # aligned rows: (1, 0, 0) and (0, 1, 0); their mean
    assert torch.allclose(run("aligned_mtl", ORTHOGONAL),
                          torch.tensor([0.5, 0.5, 0.0], dtype=DTYPE), atol=1e-9)


# --- UPGrad and DualProj (Quinton & Rey 2024): projections onto the dual cone {x : J x ≥ 0} ------
# torchjd solves the projection's dual QP on the normalised Gramian plus 1e-4 on its diagonal
# (``reg_eps``): ~1e-3 relative off the exact projection, so the tolerance is 2e-2 relative.

def _dual_cone_projection(vector: np.ndarray, j: np.ndarray) -> np.ndarray:
    result = minimize(lambda x: 0.5 * np.sum((x - vector) ** 2), vector, jac=lambda x: x - vector,
                      constraints={"type": "ineq", "fun": lambda x: j @ x, "jac": lambda x: j},
                      method="SLSQP", options={"ftol": 1e-15, "maxiter": 1000})
    return result.x


def test_upgrad_is_the_mean_of_the_rows_projected_onto_the_dual_cone():
    j = RANDOM.numpy()
    expected = np.mean([_dual_cone_projection(row, j) for row in j], axis=0)
    got = run("upgrad", RANDOM).numpy()
    assert np.linalg.norm(got - expected) < 2e-2 * np.linalg.norm(expected)


def test_dualproj_is_the_mean_projected_onto_the_dual_cone():
    j = RANDOM.numpy()
    expected = _dual_cone_projection(j.mean(axis=0), j)
    got = run("dualproj", RANDOM).numpy()
    assert np.linalg.norm(got - expected) < 2e-2 * np.linalg.norm(expected)


def test_upgrad_and_dualproj_leave_non_conflicting_rows_alone():
    mean = ORTHOGONAL.mean(dim=0)
    assert torch.allclose(run("upgrad", ORTHOGONAL), mean, atol=1e-9)
    assert torch.allclose(run("dualproj", ORTHOGONAL), mean, atol=1e-9)


# --- ConFIG (Liu et al. 2024): d = (Σ_t g_tᵀ u) u, u ∝ (Uᵀ)⁺ 1 with U the unit rows --------------

def test_config_has_equal_cosine_with_every_row():
    j = RANDOM
    units = j / j.norm(dim=1, keepdim=True)
    direction = torch.linalg.pinv(units) @ torch.ones(len(j), dtype=DTYPE)
    u = direction / direction.norm()
    expected = (j @ u).sum() * u
    got = run("config", j)
    assert torch.allclose(got, expected, atol=1e-9)
    cosines = units @ got / got.norm()
    assert torch.allclose(cosines, cosines[0].expand(3), atol=1e-9)


# --- FairGrad (Ban & Ji 2024): d = Jᵀα with (J Jᵀ α)_t = α_t^{-1/a}, a = 2 ----------------------

def test_fairgrad_orthogonal_rows_in_closed_form():
    # ‖g_t‖² α_t = α_t^{-1/a}  ⇒  α_t = ‖g_t‖^{-2a/(a+1)}
    a = 2.0
    alpha = ORTHOGONAL.norm(dim=1) ** (-2 * a / (a + 1))
    assert torch.allclose(run("fairgrad", ORTHOGONAL), alpha @ ORTHOGONAL, atol=1e-6)


def test_fairgrad_solves_the_fairness_equations():
    g = (RANDOM @ RANDOM.T).numpy()
    a = 2.0
    solution = least_squares(lambda x: g @ x - x ** (-1 / a), np.ones(3), bounds=(1e-12, np.inf),
                             xtol=1e-15, ftol=1e-15, gtol=1e-15).x
    expected = torch.from_numpy(solution) @ RANDOM
    got = run("fairgrad", RANDOM)
    assert (got - expected).norm() < 1e-4 * expected.norm()


# --- GradDrop on the parameters (torchjd): per coordinate k, P = ½(1 + Σ g / Σ|g|), keep the
# positive parts with probability P and the negative ones with 1 − P (no sign correction) -------

def test_graddrop_params_matches_the_expected_mask_in_distribution():
    j = RANDOM
    purity = 0.5 * (1 + j.sum(dim=0) / j.abs().sum(dim=0))
    expected = (j.clamp(min=0) * purity + j.clamp(max=0) * (1 - purity)).sum(dim=0)
    torch.manual_seed(0)
    n = 1000
    method = build_method("graddrop_params", {}, len(j))
    draws = torch.stack([aggregate(method, j) for _ in range(n)])
    spread = draws.std(dim=0)
    assert ((draws.mean(dim=0) - expected).abs() <= 4 * spread / math.sqrt(n) + 1e-12).all()
    # every draw keeps, per coordinate, all the positive or all the negative parts
    positive, negative = j.clamp(min=0).sum(dim=0), j.clamp(max=0).sum(dim=0)
    assert ((draws - positive).abs().lt(1e-12) | (draws - negative).abs().lt(1e-12)).all()


def test_the_reference_helpers_agree_with_a_direct_check():
    assert np.allclose(_min_norm(ORTHOGONAL), [0.8, 0.2], atol=1e-8)
    assert torch.allclose(aggregate(build_method("static"), ORTHOGONAL,
                                    torch.tensor([0.5, 0.5], dtype=DTYPE)),
                          ORTHOGONAL.mean(dim=0))
