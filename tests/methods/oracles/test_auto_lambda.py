"""Oracle: Auto-Lambda (``auto_lambda``) against the bilevel update of Liu et al. (TMLR 2022).

The reference differentiates **exactly through the virtual step** (autograd with
``create_graph``): θ' = θ − α ∇_θ Σ λ_t L_t^A(θ) on the batch's first half A, the validation loss
Σ_{t primary} L_t^B(θ') on the second half B, ∇_λ of it; then Adam on λ written out (m, v, bias
corrections; lr 0.01 here so that λ visibly moves) and a plain SGD step of the model on
Σ λ_t L_t over the whole batch (α: the run's learning rate). scalarize approximates the mixed
second derivative by the official code's central finite difference (ε = 0.01 / ‖d‖), whose error
is O(ε²) (5e-5 relative here): every step's meta-gradient agrees to 1e-4 relative; λ and the
model, after 1 and 10 steps, to 1e-5 relative (λ: or 1e-6 absolute, 1e-4 of a meta step:
Adam normalises each step, so a λ whose gradient is near 0 moves by a less exact amount).
"""

from __future__ import annotations

import pytest
import torch

from scalarize.methods import build_method
from tests.methods.oracles import _tiny_mtl as tiny

COVERED = {"auto_lambda"}

LR, META_LR = 0.05, 0.01
BETAS, EPS = (0.9, 0.999), 1e-8


def reference(steps: int, p: tiny.Params, primary: list[int]
              ) -> tuple[tiny.Params, torch.Tensor, list[torch.Tensor]]:
    x, y = tiny.data()
    half = tiny.N // 2
    lam = torch.full((tiny.T,), 0.1, dtype=torch.float64)
    m, v = torch.zeros_like(lam), torch.zeros_like(lam)
    pick = torch.zeros(tiny.T, dtype=torch.float64)
    pick[primary] = 1.0
    meta_grads = []
    for k in range(1, steps + 1):
        q, lam_leaf = tiny.leaf(p), lam.clone().requires_grad_(True)
        train = lam_leaf @ tiny.losses(q, x[:half], y[:, :half])
        names = list(q)
        grads = torch.autograd.grad(train, [q[n] for n in names], create_graph=True)
        virtual = {n: q[n] - LR * g for n, g in zip(names, grads, strict=True)}
        val = pick @ tiny.losses(virtual, x[half:], y[:, half:])
        (g_lam,) = torch.autograd.grad(val, lam_leaf)
        meta_grads.append(g_lam.detach())
        m = BETAS[0] * m + (1 - BETAS[0]) * g_lam
        v = BETAS[1] * v + (1 - BETAS[1]) * g_lam ** 2
        m_hat, v_hat = m / (1 - BETAS[0] ** k), v / (1 - BETAS[1] ** k)
        lam = (lam - META_LR * m_hat / (v_hat.sqrt() + EPS)).detach()
        q = tiny.leaf(p)
        loss = lam @ tiny.losses(q, x, y)
        step = torch.autograd.grad(loss, [q[n] for n in names])
        p = {n: (q[n] - LR * g).detach() for n, g in zip(names, step, strict=True)}
    return p, lam, meta_grads


@pytest.mark.parametrize("steps", [1, 10])
@pytest.mark.parametrize("primary", [None, [0]], ids=["all", "first"])
def test_auto_lambda_follows_the_bilevel_update(steps, primary):
    torch.set_default_dtype(torch.float64)
    try:
        model = tiny.Tiny()
        options = {"lr": META_LR, **({"primary": primary} if primary else {})}
        method = build_method("auto_lambda", options, n_objectives=tiny.T)
    finally:
        torch.set_default_dtype(torch.float32)
    p, lam, meta_grads = reference(steps, tiny.params_of(model), primary or [0, 1, 2])
    seen: list[torch.Tensor] = []

    def record(k: int) -> None:  # Adam's m_k = β₁ m_{k−1} + (1 − β₁) g_k gives back g_k
        m = method._adam.state[method.meta_weights]["exp_avg"].clone()
        previous = seen[-1] if seen else torch.zeros_like(m)
        seen.append(m)
        grads.append((m - BETAS[0] * previous) / (1 - BETAS[0]))

    grads: list[torch.Tensor] = []
    tiny.run(method, model, steps, LR, each=record)
    for k, (got, want) in enumerate(zip(grads, meta_grads, strict=True)):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-10,
                                   msg=lambda m, k=k: f"meta-gradient of step {k + 1}: {m}")
    torch.testing.assert_close(method.meta_weights, lam, rtol=1e-5, atol=1e-6)
    tiny.assert_close(model, p, rtol=1e-5, atol=1e-10)
    assert (lam - 0.1).abs().max() > 0.5 * META_LR  # λ moved


def test_the_look_ahead_leaves_the_model_as_it_was():
    """Parameters and buffers are exactly restored after the meta-step: with a meta lr of 0,
    Auto-Lambda's step equals plain Σ 0.1 L_t."""
    torch.set_default_dtype(torch.float64)
    try:
        model, plain = tiny.Tiny(), tiny.Tiny()
        method = build_method("auto_lambda", {"lr": 0.0}, n_objectives=tiny.T)
        static = build_method("static", {}, n_objectives=tiny.T)
    finally:
        torch.set_default_dtype(torch.float32)
    tiny.run(method, model, 3, LR)
    tiny.run(_Scaled(static), plain, 3, LR)
    for a, b in zip(model.parameters(), plain.parameters(), strict=True):
        assert torch.equal(a, b)


class _Scaled(torch.nn.Module):
    """Static scalarization with weights 0.1 (Auto-Lambda's starting λ)."""

    def __init__(self, static):
        super().__init__()
        self.static = static

    def backward(self, losses, weights, ctx):
        return self.static.backward(losses, torch.full_like(weights, 0.1), ctx)

    def after_step(self, recompute):
        pass
