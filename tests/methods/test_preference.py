"""STCH, PBI and COSMOS take the run's weights as their preference; the geometric mean does
not. Each loss is checked against its formula, and different weights move the model
differently."""

import math

import pytest
import torch

from scalarize.errors import ScalarizeError
from scalarize.methods import build_method, method_uses_weights
from scalarize.training import Trainer
from tests.conftest import tiny_config

PREFERENCE = ["cosmos", "pbi", "stch"]
LOSSES = [1.5, 0.5, 1.0]


def _gradient(name: str, weights: list[float], options: dict | None = None):
    method = build_method(name, options or {}, n_objectives=3)
    losses = torch.tensor(LOSSES, requires_grad=True)
    value = method.backward(losses, torch.tensor(weights), None)
    return value, losses.grad


def _stch(weights, mu=0.1):
    return mu * math.log(sum(math.exp(w * v / mu) for w, v in zip(weights, LOSSES, strict=True)))


def _pbi(weights, theta=5.0):
    norm = math.sqrt(sum(w * w for w in weights))
    direction = [w / norm for w in weights]
    d1 = sum(v * d for v, d in zip(LOSSES, direction, strict=True))
    d2 = math.sqrt(sum((v - d1 * d) ** 2 for v, d in zip(LOSSES, direction, strict=True)))
    return d1 + theta * d2


def _cosmos(weights, lambda_=1.0):
    dot = sum(w * v for w, v in zip(weights, LOSSES, strict=True))
    cosine = dot / math.sqrt(sum(w * w for w in weights)) / math.sqrt(sum(v * v for v in LOSSES))
    return dot - lambda_ * cosine


FORMULAS = {"stch": _stch, "pbi": _pbi, "cosmos": _cosmos}


@pytest.mark.parametrize("name", PREFERENCE)
@pytest.mark.parametrize("weights", [[0.6, 0.2, 0.2], [0.1, 0.3, 0.6]])
def test_the_loss_is_the_scalarization_with_the_runs_weights(name, weights):
    value, _ = _gradient(name, weights)
    assert value.item() == pytest.approx(FORMULAS[name](weights), rel=1e-5)


@pytest.mark.parametrize("name", PREFERENCE)
def test_different_weights_give_different_updates(name):
    assert method_uses_weights(name)
    _, tilted = _gradient(name, [0.6, 0.2, 0.2])
    _, other = _gradient(name, [0.1, 0.3, 0.6])
    assert not torch.allclose(tilted, other, atol=1e-3), (tilted, other)


def test_stch_favours_the_objective_with_the_largest_weighted_loss():
    _, grad = _gradient("stch", [0.6, 0.2, 0.2], {"mu": 0.01})
    assert grad.argmax().item() == 0 and grad[0] == pytest.approx(0.6, rel=1e-3)


def test_a_reference_point_is_one_value_per_objective():
    value, _ = _gradient("stch", [0.6, 0.2, 0.2], {"reference": [1.0, 0.0, 0.0]})
    assert value.item() == pytest.approx(
        0.1 * math.log(sum(math.exp(w * (v - r) / 0.1) for w, v, r in
                           zip([0.6, 0.2, 0.2], LOSSES, [1.0, 0.0, 0.0], strict=True))), rel=1e-5)
    with pytest.raises(ScalarizeError, match="reference has 2 values for 3 objectives"):
        build_method("pbi", {"reference": [0.0, 0.0]}, n_objectives=3)


def test_the_geometric_mean_chooses_its_own_weights():
    assert not method_uses_weights("geometric_mean")
    value, grad = _gradient("geometric_mean", [0.6, 0.2, 0.2])
    _, same = _gradient("geometric_mean", [0.1, 0.3, 0.6])
    mean = math.prod(LOSSES) ** (1 / 3)
    assert value.item() == pytest.approx(mean, rel=1e-5)
    assert torch.allclose(grad, torch.tensor([mean / 3 / v for v in LOSSES]), atol=1e-6)
    assert torch.equal(grad, same)


@pytest.mark.parametrize("name", [*PREFERENCE, "geometric_mean"])
def test_one_short_epoch_trains_and_the_weights_move_the_model(name):
    """A short run with tilted weights ends elsewhere than one with uniform weights exactly
    when the method uses the weights."""
    finals = []
    for weights in ("[0.8, 0.1, 0.1]", "[0.1, 0.1, 0.8]"):
        cfg = tiny_config(f"method.name={name}", "train.epochs=1",
                          f"scalarization.weights={weights}",
                          "benchmark.tasks=[shape, colour, count]")
        trainer = Trainer(cfg, progress=False)
        trainer.fit()
        finals.append(torch.cat([p.detach().flatten() for p in trainer.model.parameters()]))
    assert torch.isfinite(finals[0]).all()
    assert torch.equal(finals[0], finals[1]) is not method_uses_weights(name)
