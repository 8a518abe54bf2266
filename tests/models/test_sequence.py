"""The ``seq-d<depth>-w<width>[-h<heads>]`` family on token ids and float sequences."""

from __future__ import annotations

import pytest
import torch

from scalarize.benchmarks.inputs import InputSpec
from scalarize.errors import ScalarizeError
from scalarize.models import build_model, check_model

TOKENS = InputSpec("tokens", (12,), 50)
FLOATS = InputSpec("sequence", (12, 3))


@pytest.mark.parametrize("inputs", [TOKENS, FLOATS])
def test_a_sequence_model_pools_to_width_features(inputs):
    model = build_model("seq-d2-w32", inputs, {"a": 4})
    x = (torch.randint(0, 50, (3, 12)) if inputs.kind == "tokens" else torch.randn(3, 12, 3))
    assert model(x).shape == (3, 32)
    assert model.encoder.blocks[0].attn.heads == 2  # width / 16


def test_depth_and_width_set_the_capacity():
    sizes = [check_model(spec, TOKENS, {"a": 4})
             for spec in ("seq-d1-w16", "seq-d2-w16", "seq-d1-w32-h4")]
    assert sizes[0] < sizes[1] and sizes[0] < sizes[2]


def test_positions_matter():
    model = build_model("seq-d1-w16", TOKENS, {"a": 4}).eval()
    x = torch.arange(12).view(1, 12)
    assert not torch.allclose(model(x), model(x.flip(1)))


@pytest.mark.parametrize(("spec", "inputs", "message"), [
    ("seq-d1-w16", InputSpec("tabular", (8,)), "use mlp-d<depth>-w<width>"),
    ("seq-d1-w18-h4", TOKENS, "not divisible by 4 heads"),
    ("resnet8", TOKENS, "is for images; these inputs are tokens"),
])
def test_what_it_cannot_take_is_one_line(spec, inputs, message):
    with pytest.raises(ScalarizeError, match=message):
        check_model(spec, inputs, {"a": 2})
