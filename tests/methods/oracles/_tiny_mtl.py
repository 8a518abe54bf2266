"""A tiny float64 multi-task problem for the oracle tests of the methods.

A 2-layer shared encoder (4 → 6 → 5, tanh) and three linear heads regress three conflicting
targets (y₁ = Xa, y₂ = −Xa + 0.3 sin X₀, y₃ = Xb) with per-example squared errors; the model
moves by plain SGD. :func:`run` drives a scalarize method through it; the reference side works
on plain tensors (:func:`params_of`, :func:`features`, :func:`per_example`) and never calls
scalarize's code.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from scalarize.methods import Method, StepContext

N, T = 16, 3
SHARED = ("W1", "b1", "W2", "b2")
Params = dict[str, torch.Tensor]


def data() -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs X (N × 4) and targets Y (T × N)."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(N, 4, generator=gen, dtype=torch.float64)
    a = torch.tensor([1.0, -2.0, 0.5, 1.5], dtype=torch.float64)
    b = torch.tensor([-0.5, 1.0, 2.0, -1.0], dtype=torch.float64)
    return x, torch.stack([x @ a, -(x @ a) + 0.3 * torch.sin(x[:, 0]), x @ b])


class Tiny(nn.Module):
    """The scalarize side's model: ``shared_parameters()`` and ``heads`` as the trainer's."""

    def __init__(self) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(1)
        self.encoder = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 5), nn.Tanh())
        self.heads = nn.ModuleList([nn.Linear(5, 1) for _ in range(T)])
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64) * 0.7)
        self.double()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def shared_parameters(self) -> list[nn.Parameter]:
        return list(self.encoder.parameters())

    def per_example(self, x: torch.Tensor, y: torch.Tensor,
                    features: torch.Tensor | None = None) -> torch.Tensor:
        z = self(x) if features is None else features
        return torch.stack([(h(z).squeeze(-1) - y[t]) ** 2 for t, h in enumerate(self.heads)])


def params_of(model: Tiny) -> Params:
    """The model's parameters as plain float64 tensors, by the reference's names."""
    enc = model.encoder
    out = {"W1": enc[0].weight, "b1": enc[0].bias, "W2": enc[2].weight, "b2": enc[2].bias}
    for t, h in enumerate(model.heads):
        out[f"hW{t}"], out[f"hb{t}"] = h.weight, h.bias
    return {k: v.detach().clone() for k, v in out.items()}


def features(p: Params, x: torch.Tensor) -> torch.Tensor:
    return torch.tanh(torch.tanh(x @ p["W1"].T + p["b1"]) @ p["W2"].T + p["b2"])


def per_example(p: Params, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    z = features(p, x)
    return torch.stack([((z @ p[f"hW{t}"].T + p[f"hb{t}"]).squeeze(-1) - y[t]) ** 2
                        for t in range(T)])


def losses(p: Params, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return per_example(p, x, y).mean(dim=1)


def head(t: int) -> tuple[str, str]:
    return f"hW{t}", f"hb{t}"


def leaf(p: Params) -> Params:
    return {k: v.detach().clone().requires_grad_(True) for k, v in p.items()}


def run(method: Method, model: Tiny, steps: int, lr: float,
        each: Callable[[int], None] | None = None) -> None:
    """``steps`` plain-SGD steps of ``model`` (and ``method``'s own parameters) under
    ``method``; ``each(k)`` after step k."""
    x, y = data()
    weights = torch.full((T,), 1.0 / T, dtype=torch.float64)
    for k in range(steps):
        z = model(x)
        per = model.per_example(x, y, z)
        owned = [*model.parameters(), *method.parameters()]
        for p in owned:
            p.grad = None
        ctx = StepContext(model, model.shared_parameters(), z, k,
                          per_example=lambda: model.per_example(x, y), lr=lr)
        method.backward(per.mean(dim=1), weights, ctx)
        with torch.no_grad():
            for p in owned:
                if p.grad is not None:
                    p -= lr * p.grad
        method.after_step(lambda: model.per_example(x, y).mean(dim=1).detach())
        if each is not None:
            each(k)


def sgd_step(p: Params, q: Params, direction: torch.Tensor, head_losses: torch.Tensor,
             lr: float) -> Params:
    """One plain-SGD step of the reference: the shared parameters along ``direction`` (their
    flattened concatenation), head t along the gradient of ``head_losses[t]`` (taken on the
    leaves ``q``)."""
    new = {n: v.detach().clone() for n, v in p.items()}
    offset = 0
    for n in SHARED:
        size = p[n].numel()
        new[n] -= lr * direction[offset:offset + size].view_as(p[n])
        offset += size
    for t in range(T):
        names = head(t)
        for n, gn in zip(names, torch.autograd.grad(head_losses[t], [q[m] for m in names],
                                                    retain_graph=True), strict=True):
            new[n] -= lr * gn
    return new


def assert_close(model: Tiny, reference: Params, rtol: float, atol: float) -> None:
    """Every parameter of ``model`` equals the reference's within the tolerance."""
    for name, value in params_of(model).items():
        torch.testing.assert_close(value, reference[name], rtol=rtol, atol=atol,
                                   msg=lambda m, n=name: f"{n}: {m}")
