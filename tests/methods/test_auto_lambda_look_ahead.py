"""Auto-Lambda's look-ahead on models with running statistics, and its refusals (the update
itself: tests/methods/oracles/test_auto_lambda.py)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from scalarize.errors import ScalarizeError
from scalarize.methods import StepContext, build_method


class _Normed(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.encoder = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU())
        self.heads = nn.ModuleList([nn.Linear(8, 1) for _ in range(2)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def per_example(self, x: torch.Tensor, features: torch.Tensor | None = None
                    ) -> torch.Tensor:
        z = self(x) if features is None else features
        return torch.stack([h(z).squeeze(-1) ** 2 for h in self.heads])


def _step(model: _Normed, method, x: torch.Tensor) -> None:
    z = model(x)
    losses = model.per_example(x, z).mean(dim=1)
    ctx = StepContext(model, list(model.encoder.parameters()), z, 0,
                      per_example=lambda: model.per_example(x), lr=0.1)
    method.backward(losses, torch.full((2,), 0.5), ctx)


def test_batchnorm_statistics_are_those_of_the_steps_own_forward():
    """The look-ahead evaluates the batch three more times; the running statistics (saved by the
    step's graph, too) move once, as under static scalarization."""
    x = torch.randn(8, 4)
    model, plain = _Normed(), _Normed()
    _step(model, build_method("auto_lambda", {}, n_objectives=2), x)
    _step(plain, build_method("static", {}, n_objectives=2), x)
    for a, b in zip(model.buffers(), plain.buffers(), strict=True):
        assert torch.equal(a, b)
    assert model.encoder[1].num_batches_tracked.item() == 1


def test_the_meta_step_moves_the_weights():
    method = build_method("auto_lambda", {"lr": 0.01}, n_objectives=2)
    _step(_Normed(), method, torch.randn(8, 4))
    assert not torch.equal(method.current_weights(), torch.full((2,), 0.1))


def test_refusals():
    model, x = _Normed().eval(), torch.randn(1, 4)
    z = model(x)
    method = build_method("auto_lambda", {}, n_objectives=2)
    with pytest.raises(ScalarizeError, match="per_example"):
        method.backward(model.per_example(x, z).mean(dim=1), torch.ones(2),
                        StepContext(model, [], z, 0))
    with pytest.raises(ScalarizeError, match=r"raise train\.batch_size"):
        method.backward(model.per_example(x, z).mean(dim=1), torch.ones(2),
                        StepContext(model, [], z, 0, per_example=lambda: z, lr=0.1))
    with pytest.raises(ScalarizeError, match="primary"):
        build_method("auto_lambda", {"primary": [2]}, n_objectives=2)
