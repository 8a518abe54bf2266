"""Problems the oracle tests share: a linear model whose Jacobian is a given matrix, and a tiny
multi-task model (a 2-layer shared encoder with three conflicting heads, float64, plain SGD)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from scalarize.methods import Method, StepContext, build_method

DTYPE = torch.float64


class Linear(nn.Module):
    """θ ∈ R^P with L_t = J_t · θ: the Jacobian of the losses on θ is exactly J."""

    def __init__(self, p: int) -> None:
        super().__init__()
        self.theta = nn.Parameter(torch.zeros(p, dtype=DTYPE))


def aggregate(method: Method, jacobian: torch.Tensor, weights: torch.Tensor | None = None
              ) -> torch.Tensor:
    """The shared-parameter update ``method`` makes from ``jacobian`` (T × P)."""
    t, p = jacobian.shape
    model = Linear(p)
    features = model.theta * 1.0
    losses = jacobian @ features
    weights = torch.full((t,), 1.0 / t, dtype=DTYPE) if weights is None else weights
    method.backward(losses, weights, StepContext(model, [model.theta], features, 0))
    assert model.theta.grad is not None
    return model.theta.grad.detach().clone()


def run(name: str, jacobian: torch.Tensor, options: dict[str, Any] | None = None
        ) -> torch.Tensor:
    """:func:`aggregate` with a fresh method ``name``."""
    return aggregate(build_method(name, options or {}, len(jacobian)), jacobian)


def jacobians(steps: int, t: int = 3, p: int = 6, seed: int = 0) -> list[torch.Tensor]:
    """A seeded sequence of conflicting Jacobians (row 1 partly opposes row 0)."""
    generator = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(steps):
        j = torch.randn(t, p, generator=generator, dtype=DTYPE)
        j[1] -= 0.8 * j[0]
        out.append(j)
    return out


class Tiny(nn.Module):
    """A 2-layer shared encoder and three linear heads with conflicting targets."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.encoder = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 5)).to(DTYPE)
        self.heads = nn.ModuleList(nn.Linear(5, 1) for _ in range(3)).to(DTYPE)
        generator = torch.Generator().manual_seed(seed + 1)
        self.x = torch.randn(16, 4, generator=generator, dtype=DTYPE)
        base = self.x @ torch.randn(4, 1, generator=generator, dtype=DTYPE)
        # conflicting targets: the second task wants the opposite of the first
        self.y = torch.cat([base, -2 * base + 1, 3 * torch.sin(base)], dim=1)

    def shared(self) -> list[nn.Parameter]:
        return list(self.encoder.parameters())

    def losses(self) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.encoder(self.x)
        losses = torch.stack([((head(features).squeeze(1) - self.y[:, i]) ** 2).mean()
                              for i, head in enumerate(self.heads)])
        return features, losses


def flat(params: list[torch.Tensor] | Any) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in params])


def train_method(name: str, steps: int, options: dict[str, Any] | None = None,
                 lr: float = 0.05, weights: torch.Tensor | None = None, seed: int = 0,
                 epoch_every_step: bool = False) -> tuple[Tiny, Method]:
    """``steps`` SGD steps of the tiny model (and the method's own parameters) with method
    ``name`` as the trainer drives it (backward, optimiser step, ``after_step``)."""
    model = Tiny(seed)
    method = build_method(name, options or {}, 3)
    params = [*model.parameters(), *method.parameters()]
    optimizer = torch.optim.SGD(params, lr=lr)
    weights = torch.full((3,), 1.0 / 3, dtype=DTYPE) if weights is None else weights
    for step in range(steps):
        optimizer.zero_grad()
        features, losses = model.losses()
        method.backward(losses, weights, StepContext(model, model.shared(), features, step))
        optimizer.step()
        method.after_step(lambda: model.losses()[1])
        if epoch_every_step:
            method.on_epoch_end()
    return model, method


def per_task_grads(model: Tiny) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    """The losses, the shared Jacobian (T × P) and each task's gradient on all the heads."""
    _, losses = model.losses()
    heads = list(model.heads.parameters())
    rows, head_rows = [], []
    for loss in losses.unbind():
        grads = torch.autograd.grad(loss, [*model.shared(), *heads], retain_graph=True,
                                    allow_unused=True, materialize_grads=True)
        rows.append(flat(grads[:len(model.shared())]))
        head_rows.append(flat(grads[len(model.shared()):]))
    return losses.detach(), torch.stack(rows), head_rows


def train_reference(direction: Callable[[torch.Tensor, torch.Tensor, dict[str, Any]],
                                        tuple[torch.Tensor, torch.Tensor]],
                    steps: int, lr: float = 0.05, seed: int = 0) -> Tiny:
    """``steps`` SGD steps of the tiny model where ``direction(losses, J, state)`` gives the
    shared update and the heads' weights α (head t moves along α_t ∇L_t)."""
    model = Tiny(seed)
    state: dict[str, Any] = {}
    for _ in range(steps):
        losses, jacobian, head_rows = per_task_grads(model)
        shared, alpha = direction(losses, jacobian, state)
        head = sum(a * g for a, g in zip(alpha, head_rows, strict=True))
        with torch.no_grad():
            _step(model.shared(), shared, lr)
            _step(list(model.heads.parameters()), head, lr)
    return model


def _step(params: list[nn.Parameter], update: torch.Tensor, lr: float) -> None:
    offset = 0
    for p in params:
        p -= lr * update[offset:offset + p.numel()].view_as(p)
        offset += p.numel()


def simplex_projection(v: torch.Tensor) -> torch.Tensor:
    """Euclidean projection onto the probability simplex (Duchi et al. 2008)."""
    u, _ = torch.sort(v, descending=True)
    css = torch.cumsum(u, 0) - 1
    k = torch.arange(1, len(v) + 1, dtype=v.dtype)
    rho = int(torch.nonzero(u - css / k > 0).max())
    return (v - css[rho] / (rho + 1)).clamp(min=0)
