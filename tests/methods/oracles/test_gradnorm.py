"""Oracle: GradNorm (``gradnorm``) against Chen et al. (ICML 2018), Algorithm 1, in scalarize's
stated convention.

The paper: G_t = ‖∇_W w_t L_t‖ on the weights W of the last shared layer, r_t = L̃_t / mean L̃
with L̃_t = L_t / L_t(0), L_grad = Σ |G_t − mean(G) r_t^α| with the target held constant,
w ← w − η ∇_w L_grad, then w renormalised to Σ w = T; the model steps along Σ w_t ∇L_t (so head t
along w_t ∇L_t). scalarize's convention differs in two named ways: G_t is the norm of the
gradient on the shared **features** z (the encoder's output, one backward through the heads
only, as MGDA-UB does), and log w (not w) is stepped, by its own Adam (lr 0.025, betas 0.9,
0.999, ε 1e-8) with the chain rule ∂/∂log w = w ∂/∂w. The reference is written from the
equations with those two conventions, Adam by hand; L(0) is the first step's losses.

Tolerance: 1e-6 relative, 1e-8 absolute after 1 and 10 steps: closed form, but scalarize keeps
log w in a float32 buffer (measured: 1.2e-7 relative on the weights after one step).
"""

from __future__ import annotations

import pytest
import torch

from scalarize.methods import build_method
from tests.methods.oracles import _tiny_mtl as tiny

COVERED = {"gradnorm"}

LR = 0.05
ALPHA, ADAM_LR, BETAS, EPS = 1.5, 0.025, (0.9, 0.999), 1e-8


def reference(steps: int) -> tuple[tiny.Params, torch.Tensor]:
    x, y = tiny.data()
    p = tiny.params_of(tiny.Tiny())
    t = tiny.T
    log_w = torch.zeros(t, dtype=torch.float64)
    m, v = torch.zeros(t, dtype=torch.float64), torch.zeros(t, dtype=torch.float64)
    initial = None
    for k in range(1, steps + 1):
        q = tiny.leaf(p)
        z = tiny.features(q, x)
        per = torch.stack([((z @ q[f"hW{i}"].T + q[f"hb{i}"]).squeeze(-1) - y[i]) ** 2
                           for i in range(t)])
        losses = per.mean(dim=1)
        initial = losses.detach() if initial is None else initial
        norms = torch.stack([torch.autograd.grad(losses[i], z, retain_graph=True)[0].norm()
                             for i in range(t)])
        w = log_w.exp()
        ratio = losses.detach() / initial
        target = (norms * w).mean() * (ratio / ratio.mean()) ** ALPHA
        # ∂/∂w_i Σ |norms·w − target| with the target constant
        grad_w = torch.sign(norms * w - target) * norms
        grad = grad_w * w  # into log-space
        m = BETAS[0] * m + (1 - BETAS[0]) * grad
        v = BETAS[1] * v + (1 - BETAS[1]) * grad ** 2
        m_hat, v_hat = m / (1 - BETAS[0] ** k), v / (1 - BETAS[1] ** k)
        log_w = log_w - ADAM_LR * m_hat / (v_hat.sqrt() + EPS)
        log_w = (log_w.exp() * t / log_w.exp().sum()).log()
        # the model steps with the weights from before their update
        direction = torch.cat([g.flatten() for g in torch.autograd.grad(
            (w * losses).sum(), [q[n] for n in tiny.SHARED], retain_graph=True)])
        p = tiny.sgd_step(p, q, direction, w * losses, LR)
    return p, log_w.exp()


@pytest.mark.parametrize("steps", [1, 10])
def test_gradnorm_on_the_features_with_its_own_adam(steps):
    model = tiny.Tiny()
    method = build_method("gradnorm", {}, tiny.T)
    tiny.run(method, model, steps, LR)
    expected, weights = reference(steps)
    tiny.assert_close(model, expected, rtol=1e-6, atol=1e-8)
    torch.testing.assert_close(method.current_weights().to(weights), weights, rtol=1e-6,
                               atol=1e-8)
    assert not torch.allclose(weights, torch.ones(tiny.T, dtype=torch.float64), atol=1e-3)
