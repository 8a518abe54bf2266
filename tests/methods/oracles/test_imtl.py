"""Oracle: hybrid IMTL (``imtl``) against the IMTL paper's equations (Liu et al., ICLR 2021).

The reference scales each loss as e^{s_t} L_t − s_t (IMTL-L) and weights the shared gradients of
the scaled losses with the paper's closed form (IMTL-G, Eq. 9 of the paper as LibMTL writes it):
D = (g₁ − g_t)_{t≥2}, U = (u₁ − u_t)_{t≥2} with u_t = g_t / ‖g_t‖, α_{2:T} = g₁ Uᵀ (D Uᵀ)⁻¹,
α₁ = 1 − Σ α_{2:T}; the shared parameters move along Σ α_t g_t, each head along its own scaled
loss's gradient, each s_t along e^{s_t} L_t − 1 (plain SGD). scalarize computes α through the
Gramian (torchjd's pinv form) instead, so the two agree up to float64 round-off:
tolerance 1e-9 (relative) after 1 and 10 steps.
"""

from __future__ import annotations

import pytest
import torch

from scalarize.methods import build_method
from tests.methods.oracles import _tiny_mtl as tiny

COVERED = {"imtl"}

LR = 0.05


def reference_step(p: tiny.Params, s: torch.Tensor) -> tuple[tiny.Params, torch.Tensor]:
    x, y = tiny.data()
    q, s = tiny.leaf(p), s.detach().clone().requires_grad_(True)
    scaled = s.exp() * tiny.losses(q, x, y) - s
    shared = [q[k] for k in tiny.SHARED]
    rows = [torch.cat([g.flatten() for g in torch.autograd.grad(scaled[t], shared,
                                                                 retain_graph=True)])
            for t in range(tiny.T)]
    g = torch.stack(rows)
    u = g / g.norm(dim=1, keepdim=True)
    d_mat, u_mat = g[:1] - g[1:], u[:1] - u[1:]
    rest = g[0] @ u_mat.T @ torch.linalg.inv(d_mat @ u_mat.T)
    alpha = torch.cat([(1 - rest.sum()).unsqueeze(0), rest])
    direction = alpha @ g
    new = {k: v.detach().clone() for k, v in p.items()}
    offset = 0
    for k in tiny.SHARED:
        n = p[k].numel()
        new[k] -= LR * direction[offset:offset + n].view_as(p[k])
        offset += n
    for t in range(tiny.T):
        names = tiny.head(t)
        grads = torch.autograd.grad(scaled[t], [q[k] for k in names], retain_graph=True)
        for k, gk in zip(names, grads, strict=True):
            new[k] -= LR * gk
    (s_grad,) = torch.autograd.grad(scaled.sum(), s)
    return new, (s - LR * s_grad).detach()


@pytest.mark.parametrize("steps", [1, 10])
def test_hybrid_imtl_follows_the_papers_update(steps):
    torch.set_default_dtype(torch.float64)
    try:
        model = tiny.Tiny()
        method = build_method("imtl", {}, n_objectives=tiny.T)
    finally:
        torch.set_default_dtype(torch.float32)
    p, s = tiny.params_of(model), torch.zeros(tiny.T, dtype=torch.float64)
    for _ in range(steps):
        p, s = reference_step(p, s)
    tiny.run(method, model, steps, LR)
    tiny.assert_close(model, p, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(method.scales.log_scale.detach(), s, rtol=1e-9, atol=1e-12)
    assert s.abs().min() > 1e-3  # the scales moved: the test sees IMTL-L too
