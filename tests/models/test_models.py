import pytest
import torch

from scalarize.errors import ScalarizeError
from scalarize.models import build_encoder, build_model, describe


def _vit_params(depth, width, patch, image=32, channels=3):
    tokens = (image // patch) ** 2
    embed = channels * patch * patch * width + width + tokens * width
    block = (2 * 2 * width  # two layer norms
             + width * 3 * width + 3 * width + width * width + width  # qkv + proj
             + width * 4 * width + 4 * width + 4 * width * width + width)  # mlp
    return embed + depth * block + 2 * width


@pytest.mark.parametrize(("depth", "width", "patch"), [(3, 48, 4), (1, 16, 8), (6, 96, 4)])
def test_vit_parameter_count_and_shapes(depth, width, patch):
    spec = f"vit-d{depth}-w{width}-p{patch}"
    encoder = build_encoder(spec, (3, 32, 32))
    assert sum(p.numel() for p in encoder.parameters()) == _vit_params(depth, width, patch)
    assert encoder(torch.zeros(2, 3, 32, 32)).shape == (2, width)


def test_vit_flops_count_attention():
    d, w, tokens = 3, 48, 64
    per_block = 2 * tokens * (w * 3 * w + w * w + 8 * w * w) + 2 * 2 * tokens * tokens * w
    embed = 2 * tokens * 3 * 16 * w
    info = describe(build_model("vit-d3-w48-p4", (3, 32, 32), {"a": 2}), (3, 32, 32))
    assert info["flops"] == d * per_block + embed


@pytest.mark.parametrize(
    ("spec", "features", "params"),
    [
        # convolutions (stem, 3 stages of 3 basic blocks, two 1×1 projections) + batch norms
        ("resnet20", 64, 270_256 + 2 * (16 + 16 * 6 + 32 * 7 + 64 * 7)),
        ("resnet8-x0.5", 32, None),
        ("resnet26-x0.25", 512, None),
    ],
)
def test_resnet_shapes(spec, features, params):
    encoder = build_encoder(spec, (3, 32, 32))
    assert encoder(torch.zeros(2, 3, 32, 32)).shape == (2, features)
    if params is not None:
        assert sum(p.numel() for p in encoder.parameters()) == params


def test_resnet50_matches_the_reference_count():
    # torchvision's resnet50 has 25,557,032 parameters, of which the 1000-way fc has 2,049,000
    encoder = build_encoder("resnet50", (3, 224, 224))
    assert sum(p.numel() for p in encoder.parameters()) == 25_557_032 - 2_049_000
    assert encoder.out_features == 2048


def test_capacity_knobs_grow_the_model():
    def size(spec):
        return sum(p.numel() for p in build_encoder(spec, (3, 32, 32)).parameters())

    assert size("vit-d3-w48-p4") < size("vit-d6-w48-p4") < size("vit-d6-w96-p4")
    assert size("resnet26-x0.25") < size("resnet26-x0.5") < size("resnet26")


def test_heads_one_per_name():
    model = build_model("resnet8-x0.5", (3, 16, 16), {"a": 4, "b": 7})
    features = model(torch.zeros(3, 3, 16, 16))
    assert model.heads["b"](features).shape == (3, 7)
    shared = set(map(id, model.shared_parameters()))
    assert not shared & set(map(id, model.heads.parameters()))


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("vit-d3-w48", "cannot read ViT spec"),
        ("vit-d3-w48-p5", "not divisible by the patch"),
        ("vit-d3-w50-p4-h3", "not divisible by 3 heads"),
        ("resnet27", "unsupported ResNet depth"),
        ("resnet26-xhalf", "cannot read ResNet spec"),
        ("lstm-3", "unknown model family"),
        ("mlp-3", "cannot read MLP spec"),
        ("seq-d2-w16", "takes input_shape only, not images"),
        ("??", "cannot read model spec"),
    ],
)
def test_bad_specs(spec, message):
    with pytest.raises(ScalarizeError, match=message):
        build_encoder(spec, (3, 32, 32))
