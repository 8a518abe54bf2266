"""Dense heads: decoders restore the image size on every encoder; classifiers pool maps."""

import pytest
import torch

from scalarize.models import DenseHead, build_encoder, build_model
from scalarize.models.heads import PooledLinear


@pytest.mark.parametrize("spec,size", [("vit-d2-w32-p4", 32), ("resnet8-x0.5", 32),
                                       ("resnet26-x0.25", 24), ("resnet26-x0.25", 96)])
def test_dense_heads_output_one_value_per_pixel(spec, size):
    model = build_model(spec, (3, size, size), {"depth": DenseHead(1), "seg": DenseHead(5),
                                                "label": 4})
    assert model.spatial and isinstance(model.heads["label"], PooledLinear)
    features = model(torch.randn(2, 3, size, size))
    assert features.ndim == 4
    assert model.heads["depth"](features).shape == (2, 1, size, size)
    assert model.heads["seg"](features).shape == (2, 5, size, size)
    assert model.heads["label"](features).shape == (2, 4)


@pytest.mark.parametrize("spec", ["vit-d2-w32-p4", "resnet8-x0.5"])
def test_feature_map_pools_to_the_encoder_output(spec):
    encoder = build_encoder(spec, (3, 16, 16)).eval()
    x = torch.randn(3, 3, 16, 16)
    with torch.no_grad():
        assert torch.allclose(encoder.feature_map(x).mean(dim=(2, 3)), encoder(x), atol=1e-5)


def test_classification_only_models_keep_pooled_features():
    model = build_model("vit-d1-w16-p8", (3, 16, 16), {"a": 2})
    assert not model.spatial
    assert model(torch.zeros(2, 3, 16, 16)).shape == (2, 16)


def test_dense_decoder_restores_a_non_square_image():
    model = build_model("resnet8-x0.25", (3, 24, 40), {"depth": DenseHead(1)})
    assert model.heads["depth"](model(torch.zeros(2, 3, 24, 40))).shape == (2, 1, 24, 40)
