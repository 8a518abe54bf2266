"""Oracle: MoCo (``moco``) against Algorithm 1 of Fernando et al. (ICLR 2023).

The reference tracks y_t ← y_t − β_k (y_t − g_t), moves λ ← P(λ − γ_k (Y Yᵀ + ρI) λ) and steps
the shared parameters along Yᵀλ (β_k = β / k^{β_σ}, γ_k = γ / k^{γ_σ}, k = 1, 2, …; y = 0 and
λ = 1/T at the start), each head along its own loss's gradient (plain SGD). Two forms:

- the paper's: g_t the raw gradient, P the Euclidean projection on the simplex, computed here
  as max(v − θ, 0) with θ the root of Σ max(v − θ, 0) = 1 (scipy's brentq, xtol 1e-15);
- the authors' code (scalarize's default, LibMTL's): g_t rescaled to the norm L_t, P a softmax.

Tolerance: 1e-9 relative after 1 and 10 steps (float64; the root finder is exact to 1e-15).
"""

from __future__ import annotations

import pytest
import torch
from scipy.optimize import brentq

from scalarize.methods import build_method
from tests.methods.oracles import _tiny_mtl as tiny

COVERED = {"moco"}

LR = 0.05
OPTIONS = {"beta": 0.5, "beta_sigma": 0.5, "gamma": 0.3, "gamma_sigma": 0.5, "rho": 0.1}


def simplex(v: torch.Tensor) -> torch.Tensor:
    values = v.tolist()
    theta = brentq(lambda th: sum(max(x - th, 0.0) for x in values) - 1.0,
                   min(values) - 1.0, max(values), xtol=1e-15)
    return (v - theta).clamp(min=0)


def reference(steps: int, p: tiny.Params, paper: bool
              ) -> tuple[tiny.Params, torch.Tensor, torch.Tensor]:
    x, y = tiny.data()
    o = OPTIONS
    track = None
    lam = torch.full((tiny.T,), 1.0 / tiny.T, dtype=torch.float64)
    for k in range(1, steps + 1):
        q = tiny.leaf(p)
        loss = tiny.losses(q, x, y)
        shared = [q[n] for n in tiny.SHARED]
        g = torch.stack([torch.cat([d.flatten() for d in torch.autograd.grad(
            loss[t], shared, retain_graph=True)]) for t in range(tiny.T)])
        if not paper:
            g = g / (g.norm(dim=1, keepdim=True) + 1e-8) * loss.detach().unsqueeze(1)
        track = torch.zeros_like(g) if track is None else track
        track = track - o["beta"] / k ** o["beta_sigma"] * (track - g)
        v = lam - o["gamma"] / k ** o["gamma_sigma"] * (
            (track @ track.T + o["rho"] * torch.eye(tiny.T, dtype=torch.float64)) @ lam)
        lam = simplex(v) if paper else torch.softmax(v, 0)
        direction = track.T @ lam
        p = tiny.sgd_step(p, q, direction, loss, LR)
    assert track is not None
    return p, track, lam


@pytest.mark.parametrize("steps", [1, 10])
@pytest.mark.parametrize("paper", [True, False], ids=["paper", "authors_code"])
def test_moco_follows_algorithm_1(steps, paper):
    torch.set_default_dtype(torch.float64)
    try:
        model = tiny.Tiny()
        options = {**OPTIONS, **({"normalize": False, "projection": "simplex"} if paper
                                 else {})}
        method = build_method("moco", options, n_objectives=tiny.T)
    finally:
        torch.set_default_dtype(torch.float32)
    p, track, lam = reference(steps, tiny.params_of(model), paper)
    tiny.run(method, model, steps, LR)
    tiny.assert_close(model, p, rtol=1e-9, atol=1e-12)
    state = method.get_extra_state()
    torch.testing.assert_close(state["tracked"], track, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(state["lambda"], lam, rtol=1e-9, atol=1e-12)
    assert not torch.allclose(lam, torch.full_like(lam, 1 / tiny.T), atol=1e-4)  # λ moved


def test_moco_defaults_are_libmtls():
    method = build_method("moco", {}, n_objectives=3)
    assert (method.beta, method.beta_sigma, method.gamma, method.gamma_sigma, method.rho) == \
        (0.5, 0.5, 0.1, 0.5, 0.0)
    assert method.normalize and method.projection == "softmax"
