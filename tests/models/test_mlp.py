"""The ``mlp-d<depth>-w<width>`` family: its knobs set its capacity, it takes features (and
flattened sequences or images), and inputs it cannot take are refused in one line."""

from __future__ import annotations

import pytest
import torch

from scalarize.benchmarks.inputs import InputSpec
from scalarize.errors import ScalarizeError
from scalarize.models import build_model, check_model, describe
from scalarize.models.mlp import mlp

TABULAR = InputSpec("tabular", (64,))


def test_depth_and_width_set_the_capacity():
    small, deep, wide = (check_model(spec, TABULAR, {"a": 10})
                         for spec in ("mlp-d1-w16", "mlp-d3-w16", "mlp-d1-w64"))
    assert small < deep and small < wide
    # 64·16 + 16 (linear) + 2·16 (norm) + 16·10 + 10 (head)
    assert small == 64 * 16 + 16 + 32 + 160 + 10


def test_a_model_on_features_returns_one_output_per_task():
    model = build_model("mlp-d2-w32", TABULAR, {"digit": 10, "high": 2})
    features = model(torch.randn(5, 64))
    assert features.shape == (5, 32)
    assert model.heads["digit"](features).shape == (5, 10)
    assert describe(model, TABULAR)["flops"] > 0


def test_sequences_and_images_are_flattened():
    assert mlp("-d1-w8", input_shape=(6, 3))(torch.zeros(2, 6, 3)).shape == (2, 8)
    assert mlp("-d1-w8", image_shape=(1, 4, 4))(torch.zeros(2, 1, 4, 4)).shape == (2, 8)


@pytest.mark.parametrize(("spec", "inputs", "message"), [
    ("mlp-d2", TABULAR, "cannot read MLP spec"),
    ("mlp-d0-w8", TABULAR, "MLP depth is 0"),
    ("mlp-d1-w8", InputSpec("tokens", (9,), 20), "use seq-d<depth>-w<width>"),
    ("vit-d1-w16-p4", TABULAR, "is for images; these inputs are tabular"),
])
def test_what_it_cannot_take_is_one_line(spec, inputs, message):
    with pytest.raises(ScalarizeError, match=message) as caught:
        check_model(spec, inputs, {"a": 2})
    assert "\n" not in str(caught.value)


def test_a_dense_task_on_features_is_refused():
    from scalarize.models import DenseHead

    with pytest.raises(ScalarizeError, match=r"task 'mask' is dense .* dense tasks need images"):
        check_model("mlp-d1-w8", TABULAR, {"mask": DenseHead(2)})


def user_factory(input_shape, width=8):
    """A user's factory for any non-image input (importable as a target)."""
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(input_shape[0], width))
    net.out_features = width
    return net


def test_a_users_factory_takes_input_shape():
    assert check_model("tests.models.test_mlp:user_factory", TABULAR, {"a": 3},
                       options={"width": 4}) == 64 * 4 + 4 + 4 * 3 + 3
    with pytest.raises(ScalarizeError, match="takes input_shape only, not images"):
        check_model("tests.models.test_mlp:user_factory", (3, 8, 8), {"a": 3})
