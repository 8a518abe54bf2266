"""Every method on a model with task-specific paths (features per objective): it steps, with the
Jacobian taken on the shared parameters and each task-specific parameter moved by its own loss,
or it refuses in one line (the methods that need one shared feature tensor)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torchjd import aggregation

from scalarize.errors import ScalarizeError
from scalarize.methods import METHODS, StepContext, build_method
from scalarize.models import build_model

#: what needs one feature tensor that every objective shares, and why
NEEDS_SHARED_FEATURES = {
    "mgda_ub": "its upper bound is the gradient at the shared features",
    "graddrop": "it drops gradients coordinate-wise at the shared activations",
    "gradnorm": "it balances gradient norms at the shared features",
}
TASKS = ("a", "b", "c")


def _step_context(model, x, targets):
    features = model(x)

    def per_example():
        out = model(x)
        return torch.stack([F.cross_entropy(model.heads[t](out[t]), targets[t],
                                            reduction="none") for t in TASKS])

    loss = torch.stack([F.cross_entropy(model.heads[t](features[t]), targets[t],
                                        reduction="none") for t in TASKS])
    mask = torch.ones_like(loss)
    ctx = StepContext(model, model.shared_parameters(), features, 0,
                      torch.full((3,), float(x.shape[0])), mask, per_example, 0.01)
    return loss.mean(dim=1), ctx


@pytest.mark.parametrize("name", METHODS.names())
def test_every_method_steps_on_an_mtan_or_refuses_in_one_line(name):
    torch.manual_seed(0)
    model = build_model("mtan-resnet8-x0.125", (3, 8, 8), dict.fromkeys(TASKS, 3))
    x = torch.randn(8, 3, 8, 8)
    targets = {t: torch.randint(0, 3, (8,)) for t in TASKS}
    losses, ctx = _step_context(model, x, targets)
    method = build_method(name, {}, n_objectives=3)
    if name in NEEDS_SHARED_FEATURES:
        with pytest.raises(ScalarizeError, match=f"method '{name}' works on one feature "
                                                 "tensor that every objective shares") as info:
            method.backward(losses, torch.full((3,), 1 / 3), ctx)
        assert "\n" not in str(info.value)
        return
    loss = method.backward(losses, torch.full((3,), 1 / 3), ctx)
    assert torch.isfinite(loss)
    attention = [p for p in model.encoder.attention.parameters()]
    shared = ctx.shared_params
    assert all(p.grad is not None for p in attention), "task-specific paths are trained"
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in shared)
    assert all(p.grad is not None for p in model.heads.parameters())


class _Towers(nn.Module):
    """A shared linear layer, a linear tower per task: the Jacobian in closed form."""

    def __init__(self) -> None:
        super().__init__()
        self.tasks = ("a", "b")
        self.shared = nn.Linear(3, 2)
        self.towers = nn.ModuleDict({t: nn.Linear(2, 2) for t in self.tasks})
        self.heads = nn.ModuleDict({t: nn.Linear(2, 1) for t in self.tasks})

    def forward(self, x):
        z = self.shared(x)
        return {t: self.towers[t](z) for t in self.tasks}


@pytest.mark.parametrize("name,aggregator", [("pcgrad", aggregation.PCGrad),
                                             ("upgrad", aggregation.UPGrad),
                                             ("mgda", aggregation.MGDA)])
def test_the_jacobian_is_the_shared_parameters_and_each_tower_gets_its_own_gradient(
        name, aggregator):
    torch.manual_seed(0)
    model = _Towers()
    x = torch.randn(5, 3)
    features = model(x)
    losses = torch.stack([model.heads["a"](features["a"]).mean(),
                          model.heads["b"](features["b"]).pow(2).mean()])
    shared = list(model.shared.parameters())
    rows = [torch.cat([g.flatten() for g in torch.autograd.grad(loss, shared,
                                                                 retain_graph=True)])
            for loss in losses.unbind()]
    expected = aggregator()(torch.stack(rows))
    own = {t: torch.autograd.grad(losses[i], list(model.towers[t].parameters()) +
                                  list(model.heads[t].parameters()), retain_graph=True)
           for i, t in enumerate(model.tasks)}
    method = build_method(name, {}, n_objectives=2)
    method.backward(losses, torch.tensor([0.5, 0.5]), StepContext(model, shared, features, 0))
    assert torch.allclose(torch.cat([p.grad.flatten() for p in shared]), expected, atol=1e-6)
    for t in model.tasks:
        params = list(model.towers[t].parameters()) + list(model.heads[t].parameters())
        for p, g in zip(params, own[t], strict=True):
            assert torch.allclose(p.grad, g, atol=1e-6)


class _Copies(nn.Module):
    """Hard sharing written per task: every task reads its own copy of one shared tensor."""

    def __init__(self, per_task: bool) -> None:
        super().__init__()
        self.shared = nn.Linear(3, 2)
        self.heads = nn.ModuleDict({t: nn.Linear(2, 1) for t in ("a", "b")})
        self.per_task = per_task

    def forward(self, x):
        z = self.shared(x)
        return {t: z.clone() for t in ("a", "b")} if self.per_task else z


@pytest.mark.parametrize("name", ["modo", "sdmgrad", "upgrad", "db_mtl", "static"])
def test_per_task_features_that_copy_one_tensor_step_as_hard_sharing_does(name):
    grads = {}
    for per_task in (False, True):
        torch.manual_seed(0)
        model = _Copies(per_task)
        x = torch.randn(6, 3)
        features = model(x)
        losses = torch.stack([model.heads[t](features[t] if per_task else features)
                              .pow(i + 1).mean() for i, t in enumerate(("a", "b"))])
        method = build_method(name, {}, n_objectives=2)
        method.backward(losses, torch.tensor([0.3, 0.7]),
                        StepContext(model, list(model.shared.parameters()), features, 0))
        grads[per_task] = [p.grad.clone() for p in model.parameters()]
    for hard, split in zip(grads[False], grads[True], strict=True):
        assert torch.allclose(hard, split, atol=1e-6)
