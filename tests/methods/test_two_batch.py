"""MoDo and SDMGrad: weights from the two halves of the batch, as from two mini-batches."""

import pytest
import torch
from torch import nn
from torchjd.aggregation import MoDoWeighting, SDMGradWeighting

from scalarize.errors import ScalarizeError
from scalarize.methods import StepContext, build_method, method_uses_weights
from scalarize.training import Trainer
from tests.conftest import tiny_config


class _Model(nn.Module):
    """A per-example encoder (no batch statistics) and one linear head per task."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(4, 3), nn.Tanh())
        self.heads = nn.ModuleList([nn.Linear(3, 1) for _ in range(3)])


def _losses(model, x, y):
    features = model.encoder(x)
    return features, torch.stack([(head(features).squeeze(1) - y[:, t]).pow(2).mean()
                                  for t, head in enumerate(model.heads)])


def _data(seed: int, size: int = 7):
    torch.manual_seed(seed)
    return torch.randn(size, 4), torch.randn(size, 3)


def _jacobian(model, x, y):
    shared = list(model.encoder.parameters())
    _, losses = _losses(model, x, y)
    return torch.stack([torch.cat([g.flatten() for g in torch.autograd.grad(
        loss, shared, retain_graph=True)]) for loss in losses.unbind()])


@pytest.mark.parametrize(("name", "weighting"), [
    ("modo", lambda: MoDoWeighting(gamma=0.1, rho=0.1)),
    ("sdmgrad", lambda: SDMGradWeighting(lambda_=0.3, pref_vector=torch.tensor([0.6, 0.3,
                                                                              0.1])))])
def test_the_halves_are_two_mini_batches(name, weighting):
    """Over three steps (the weights' state moves), the update equals the papers' two-batch
    recipe written out: λ from J₁ J₂ᵀ of the two halves' own losses, the shared parameters
    along Σ λ_t g_t of the whole batch, each head along its own loss's gradient."""
    torch.manual_seed(0)
    model = _Model()
    reference = weighting()
    method = build_method(name, {}, n_objectives=3)
    shared = list(model.encoder.parameters())
    for step in range(3):
        x, y = _data(step)
        j1, j2 = _jacobian(model, x[:3], y[:3]), _jacobian(model, x[3:], y[3:])
        whole = _jacobian(model, x, y)
        lam = reference(j1 @ j2.T)
        _, losses = _losses(model, x, y)
        expected_heads = torch.autograd.grad(losses.sum(), list(model.heads.parameters()),
                                             retain_graph=True)
        model.zero_grad()
        features, losses = _losses(model, x, y)
        method.backward(losses, torch.tensor([0.6, 0.3, 0.1]),
                        StepContext(model, shared, features, step))
        got = torch.cat([p.grad.flatten() for p in shared])
        assert torch.allclose(got, lam @ whole, atol=1e-5), (step, got, lam @ whole)
        for p, g in zip(model.heads.parameters(), expected_heads, strict=True):
            assert torch.allclose(p.grad, g, atol=1e-6)
        with torch.no_grad():  # a step, so that the next Jacobians differ
            for p in model.parameters():
                p -= 0.1 * p.grad


def _masked(model, x, y, mask):
    """The losses as the objectives give them: each task's mean over its labelled examples."""
    features = model.encoder(x)
    per_example = torch.stack([(head(features).squeeze(1) - y[:, t]).pow(2)
                               for t, head in enumerate(model.heads)])
    return features, (per_example * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1)


def _masked_jacobian(model, x, y, mask):
    shared = list(model.encoder.parameters())
    _, losses = _masked(model, x, y, mask)
    return torch.stack([torch.cat([g.flatten() for g in torch.autograd.grad(
        loss, shared, retain_graph=True, allow_unused=True, materialize_grads=True)])
        for loss in losses.unbind()])


@pytest.mark.parametrize("name", ["modo", "sdmgrad"])
def test_each_half_is_the_mean_over_its_labelled_examples(name):
    """Partial labels (and domains): a half's Jacobian is the mean over the examples that count
    in that half, not the half's size; the shared update is Σ λ_t g_t of the whole batch."""
    torch.manual_seed(0)
    model = _Model()
    x, y = _data(0, size=8)
    mask = torch.tensor([[1, 1, 1, 1, 1, 1, 1, 1],
                         [1, 0, 0, 0, 1, 1, 0, 1],
                         [0, 1, 1, 1, 0, 0, 0, 1]], dtype=torch.float32)
    reference = build_method(name, {}, n_objectives=3).weighting
    weights = torch.tensor([0.6, 0.3, 0.1])
    if name == "sdmgrad":
        reference.pref_vector = weights
    j1 = _masked_jacobian(model, x[:4], y[:4], mask[:, :4])
    j2 = _masked_jacobian(model, x[4:], y[4:], mask[:, 4:])
    expected = reference(j1 @ j2.T) @ _masked_jacobian(model, x, y, mask)
    features, losses = _masked(model, x, y, mask)
    shared = list(model.encoder.parameters())
    build_method(name, {}, n_objectives=3).backward(
        losses, weights, StepContext(model, shared, features, 0, mask.sum(dim=1), mask))
    got = torch.cat([p.grad.flatten() for p in shared])
    assert torch.allclose(got, expected, atol=1e-5), (got, expected)


def _shared_update(name: str, weights: list[float]) -> torch.Tensor:
    torch.manual_seed(0)
    model = _Model()
    x, y = _data(0)
    features, losses = _losses(model, x, y)
    shared = list(model.encoder.parameters())
    build_method(name, {}, n_objectives=3).backward(losses, torch.tensor(weights),
                                                    StepContext(model, shared, features, 0))
    return torch.cat([p.grad.flatten() for p in shared])


def test_sdmgrad_takes_the_runs_weights_as_its_preference_and_modo_ignores_them():
    assert method_uses_weights("sdmgrad") and not method_uses_weights("modo")
    assert not torch.allclose(_shared_update("sdmgrad", [0.8, 0.1, 0.1]),
                              _shared_update("sdmgrad", [0.1, 0.1, 0.8]), atol=1e-4)
    assert torch.equal(_shared_update("modo", [0.8, 0.1, 0.1]),
                       _shared_update("modo", [0.1, 0.1, 0.8]))


def test_a_batch_of_one_cannot_be_halved():
    model = _Model()
    features, losses = _losses(model, *_data(0, size=1))
    method = build_method("modo", {}, n_objectives=3)
    with pytest.raises(ScalarizeError, match=r"cannot be split: raise train\.batch_size"):
        method.backward(losses, torch.ones(3) / 3,
                        StepContext(model, list(model.encoder.parameters()), features, 0))


@pytest.mark.parametrize("name", ["modo", "sdmgrad"])
def test_one_short_epoch_trains_a_vit_with_finite_losses(name):
    trainer = Trainer(tiny_config(f"method.name={name}", "train.epochs=1"), progress=False)
    trainer.fit()
    (record,) = trainer.history
    assert all(torch.isfinite(torch.tensor(v)) for v in record["train_loss"].values())


@pytest.mark.parametrize("name", ["modo", "sdmgrad"])
def test_heads_option_is_plain_by_default_and_refuses_other_values(name):
    assert build_method(name, {}, 3).heads == "plain"
    assert build_method(name, {"heads": "weighted"}, 3).heads == "weighted"
    with pytest.raises(ScalarizeError, match="heads='both' is not one of plain, weighted"):
        build_method(name, {"heads": "both"}, 3)
