"""FairGrad, ExcessMTL, PCD and CR-MOGM apply torchjd's aggregators to the shared Jacobian."""

import pytest
import torch
from torch import nn
from torchjd import aggregation

from scalarize.errors import ScalarizeError
from scalarize.methods import StepContext, build_method
from scalarize.training import Trainer
from tests.conftest import tiny_config

AGGREGATORS = {
    "fairgrad": lambda: aggregation.FairGrad(alpha=2.0),
    "excess_mtl": lambda: aggregation.ExcessMTL(),
    "pcd": lambda: aggregation.PCD(),
    "cr_mogm": lambda: aggregation.GramianWeightedAggregator(
        aggregation.CRMOGMWeighting(aggregation.MGDAWeighting(), alpha=0.9)),
}


def _problem(seed: int):
    """A linear encoder and two fixed heads whose losses pull in different directions."""
    torch.manual_seed(seed)
    encoder = nn.Linear(3, 2)
    features = encoder(torch.randn(5, 3))
    losses = torch.stack([(features @ torch.tensor([1.0, -2.0])).mean(),
                          (features @ torch.tensor([-1.0, 0.5])).pow(2).mean()])
    return encoder, features, losses


def _jacobian(encoder, losses):
    params = list(encoder.parameters())
    return torch.stack([torch.cat([g.flatten() for g in torch.autograd.grad(
        loss, params, retain_graph=True)]) for loss in losses.unbind()])


@pytest.mark.parametrize("name", sorted(AGGREGATORS))
def test_each_step_is_the_torchjd_aggregation_of_the_jacobian(name):
    """Three steps in a row, so the stateful ones (ExcessMTL's sums, PCD's and CR-MOGM's
    averages) are compared after their state has moved too."""
    reference = AGGREGATORS[name]()
    method = build_method(name, {}, n_objectives=2)
    for step in range(3):
        encoder, features, losses = _problem(step)
        expected = reference(_jacobian(encoder, losses))
        params = list(encoder.parameters())
        method.backward(losses, torch.tensor([0.5, 0.5]), StepContext(encoder, params,
                                                                      features, step))
        got = torch.cat([p.grad.flatten() for p in params])
        assert torch.allclose(got, expected, atol=1e-5), (step, got, expected)


def test_pcd_follows_the_first_objective_when_the_others_do_not_object():
    """PCD's primary objective is the first task: with τ = 0 and a second task that agrees,
    the update is the first task's gradient."""
    encoder, features, _ = _problem(0)
    first = (features @ torch.tensor([1.0, 0.0])).mean()
    losses = torch.stack([first, 2 * first])
    expected = _jacobian(encoder, losses)[0]
    method = build_method("pcd", {"tau": 0.0}, n_objectives=2)
    params = list(encoder.parameters())
    method.backward(losses, torch.tensor([0.5, 0.5]), StepContext(encoder, params, features, 0))
    assert torch.allclose(torch.cat([p.grad.flatten() for p in params]), expected, atol=1e-5)


def test_cr_mogm_smooths_the_base_weighting_it_is_given():
    plain = build_method("cr_mogm", {"base": "upgrad", "alpha": 0.0}, n_objectives=2)
    encoder, features, losses = _problem(0)
    params = list(encoder.parameters())
    plain.backward(losses, torch.ones(2) / 2, StepContext(encoder, params, features, 0))
    got = torch.cat([p.grad.flatten() for p in params])
    expected = aggregation.UPGrad()(_jacobian(*_problem(0)[::2]))
    assert torch.allclose(got, expected, atol=1e-5)  # α = 0: no smoothing, UPGrad itself


def test_an_unknown_cr_mogm_base_names_the_choices():
    with pytest.raises(ScalarizeError, match="unknown base 'nash'; choose one of: mgda, "):
        build_method("cr_mogm", {"base": "nash"}, n_objectives=2)
    with pytest.raises(ScalarizeError, match="has no option 'c'"):
        build_method("fairgrad", {"c": 0.4}, n_objectives=2)


@pytest.mark.parametrize("name", sorted(AGGREGATORS))
def test_one_short_epoch_trains_with_finite_losses(name):
    trainer = Trainer(tiny_config(f"method.name={name}", "train.epochs=1"), progress=False)
    trainer.fit()
    assert all(torch.isfinite(torch.tensor(list(r["train_loss"].values()))).all()
               for r in trainer.history)
