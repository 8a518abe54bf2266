"""The residual stages ``resnet`` and ``deeplab`` share (:mod:`scalarize.models.blocks`)."""

import pytest
import torch

from scalarize.models.blocks import residual_stages
from scalarize.models.deeplab import DilatedResNet
from scalarize.models.resnet import ResNet


@pytest.mark.parametrize("depth", [26, 50])
def test_resnet_and_deeplab_of_one_depth_initialise_identically(depth):
    """Stride and dilation hold no parameters: a bottleneck ResNet and the dilated ResNet of the
    same depth and width draw the same weights in the same order from one seed (the one
    builder; before it, two copies that had to agree)."""
    torch.manual_seed(0)
    plain = ResNet(depth, 0.0625, image_size=96).state_dict()
    torch.manual_seed(0)
    dilated = DilatedResNet(depth, 0.0625, image_size=96).state_dict()
    assert list(plain) == list(dilated)
    assert all(torch.equal(plain[key], dilated[key]) for key in plain)


def test_dilation_keeps_the_size_and_stride_halves_it():
    stages, out = residual_stages(4, [1, 1, 1], [4, 8, 8], bottleneck=True, strides=(1, 2, 1),
                                  dilations=(1, 1, 2))
    assert out == 32
    assert stages(torch.zeros(1, 4, 16, 16)).shape == (1, 32, 8, 8)


def test_a_basic_resnet_keeps_its_parameter_names():
    names = list(ResNet(8, 0.25, image_size=32).state_dict())
    assert "stages.1.0.shortcut.0.weight" in names and "stages.0.0.body.3.weight" in names
    assert not any(name.startswith("stages.3") for name in names)  # three stages
