"""Oracle: DB-MTL (``db_mtl``) against the equations of Lin et al. (2023).

The reference differentiates log L_t (loss-scale balancing), keeps an exponential moving average
ĝ_t ← β ĝ_t + (1 − β) g_t of each task's shared-parameter gradient (ĝ = 0 at the start) and steps
the shared parameters along Σ_t (max_s ‖ĝ_s‖ / ‖ĝ_t‖) ĝ_t (gradient-magnitude balancing: every
task at the largest norm), each head along ∇ log L_t of its task (plain SGD), with the 10⁻⁸
guards of the authors' code (log(L + 10⁻⁸), ‖ĝ_t‖ + 10⁻⁸; without them the two differ by 1e-7
relative). Tolerance: 1e-9 relative after 1 and 10 steps.
"""

from __future__ import annotations

import pytest
import torch

from scalarize.methods import build_method
from tests.methods.oracles import _tiny_mtl as tiny

COVERED = {"db_mtl"}

LR = 0.05


def reference(steps: int, p: tiny.Params, beta: float) -> tuple[tiny.Params, torch.Tensor]:
    x, y = tiny.data()
    ema = None
    for _ in range(steps):
        q = tiny.leaf(p)
        log_loss = (tiny.losses(q, x, y) + 1e-8).log()
        shared = [q[n] for n in tiny.SHARED]
        g = torch.stack([torch.cat([d.flatten() for d in torch.autograd.grad(
            log_loss[t], shared, retain_graph=True)]) for t in range(tiny.T)])
        ema = torch.zeros_like(g) if ema is None else ema
        ema = beta * ema + (1 - beta) * g
        norms = ema.norm(dim=1)
        direction = sum(norms.max() / (norms[t] + 1e-8) * ema[t] for t in range(tiny.T))
        p = tiny.sgd_step(p, q, direction, log_loss, LR)
    assert ema is not None
    return p, ema


@pytest.mark.parametrize("steps", [1, 10])
@pytest.mark.parametrize("beta", [0.9, 0.5])
def test_db_mtl_follows_the_papers_update(steps, beta):
    torch.set_default_dtype(torch.float64)
    try:
        model = tiny.Tiny()
        method = build_method("db_mtl", {"beta": beta}, n_objectives=tiny.T)
    finally:
        torch.set_default_dtype(torch.float32)
    p, ema = reference(steps, tiny.params_of(model), beta)
    tiny.run(method, model, steps, LR)
    tiny.assert_close(model, p, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(method.get_extra_state()["tracked"], ema, rtol=1e-9, atol=1e-12)


def test_an_absent_objective_keeps_its_tracked_gradient():
    """Partial labels: no example of a task, no new gradient; its estimate stays as it was."""
    torch.set_default_dtype(torch.float64)
    try:
        model = tiny.Tiny()
        method = build_method("db_mtl", {}, n_objectives=tiny.T)
    finally:
        torch.set_default_dtype(torch.float32)
    tiny.run(method, model, 2, LR)
    before = method.get_extra_state()["tracked"].clone()
    x, y = tiny.data()
    z = model(x)
    per = model.per_example(x, y, z)
    counts = torch.tensor([tiny.N, 0, tiny.N])
    from scalarize.methods import StepContext

    losses = per.mean(dim=1) * torch.tensor([1.0, 0.0, 1.0], dtype=torch.float64)
    method.backward(losses, torch.full((3,), 1 / 3, dtype=torch.float64),
                    StepContext(model, model.shared_parameters(), z, 2, counts))
    after = method.get_extra_state()["tracked"]
    assert torch.equal(after[1], before[1])
    assert not torch.equal(after[0], before[0])
