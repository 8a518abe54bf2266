import pytest
import torch

from scalarize.errors import ScalarizeError
from scalarize.methods import build_method


def test_static_gradient_is_the_weighted_sum():
    params = torch.tensor([1.0, 2.0], requires_grad=True)
    losses = torch.stack([params[0] ** 2, 3 * params[1]])
    loss = build_method("static").backward(losses, torch.tensor([0.25, 0.75]), None)
    assert loss.item() == pytest.approx(0.25 * 1 + 0.75 * 6)
    assert params.grad.tolist() == pytest.approx([0.25 * 2, 0.75 * 3])


def test_bad_options_are_clear():
    with pytest.raises(ScalarizeError, match="method 'static' has no option 'alpha'"):
        build_method("static", {"alpha": 1})
