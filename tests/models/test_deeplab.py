"""The deeplab family: output stride 8, one ASPP decoder per dense task at the image's size (any
aspect ratio), capacity growing with depth and width."""

import pytest
import torch

from scalarize.errors import ScalarizeError
from scalarize.models import DenseHead, build_model, check_model
from scalarize.models.deeplab import ASPPHead, DilatedResNet, deeplab


def test_feature_map_is_an_eighth_of_a_large_image():
    encoder = deeplab("10-x0.0625", image_shape=(3, 96, 128))
    with torch.no_grad():
        fmap = encoder.eval().feature_map(torch.zeros(1, 3, 96, 128))
    assert fmap.shape == (1, encoder.out_features, 12, 16)


def test_dense_heads_are_aspp_decoders_at_the_image_size():
    model = build_model("deeplab10-x0.125", (3, 24, 32),
                        {"seg": DenseHead(13), "depth": DenseHead(1), "label": 4})
    assert isinstance(model.heads["seg"], ASPPHead)
    assert isinstance(model.heads["depth"], ASPPHead)
    features = model(torch.randn(2, 3, 24, 32))
    assert model.heads["seg"](features).shape == (2, 13, 24, 32)
    assert model.heads["depth"](features).shape == (2, 1, 24, 32)
    assert model.heads["label"](features).shape == (2, 4)  # a classifier pools the map
    # the decoders are the tasks' own: the shared parameters are the encoder's alone
    shared = {id(p) for p in model.shared_parameters()}
    assert not shared & {id(p) for p in model.heads.parameters()}


def test_capacity_grows_with_depth_and_width():
    heads = {"seg": DenseHead(7), "depth": DenseHead(1)}
    sizes = [check_model(spec, (3, 64, 128), heads)
             for spec in ("deeplab10-x0.25", "deeplab18-x0.25", "deeplab18-x0.5", "deeplab50")]
    assert sizes == sorted(sizes) and len(set(sizes)) == 4


def test_bad_specs_are_one_line_errors():
    with pytest.raises(ScalarizeError, match="unsupported deeplab depth 12"):
        DilatedResNet(12)
    with pytest.raises(ScalarizeError, match="cannot read deeplab spec"):
        check_model("deeplab-x2", (3, 32, 32), {"a": 2})
