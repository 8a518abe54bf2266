"""``deeplab``: a dilated ResNet encoder with a DeepLabV3 (ASPP) decoder per dense task.

The architecture of the NYUv2 and Cityscapes tables of LibMTL, Nash-MTL and FAMO: a ResNet
whose last two stages trade their stride for dilation (2 and 4), so the shared feature map
keeps 1/8 of the image's resolution (output stride 8), and one Atrous Spatial Pyramid Pooling
head per task (a 1×1 branch, three 3×3 branches at dilation 12, 24, 36 and an image-pooling
branch, projected, then a 3×3 convolution and a 1×1 classifier), upsampled bilinearly to the
image's height and width (any aspect ratio: 288×384, 128×256). Those tables start from an
ImageNet-trained ResNet-50; scalarize trains from scratch (no torchvision weights here).

Spec: ``deeplab<depth>[-x<width multiplier>]``, with depth 26, 50, 101 (bottleneck blocks,
as ``resnet``) or 10, 18, 34 (basic blocks, stages [1,1,1,1], [2,2,2,2], [3,4,6,3]). The width
multiplier scales every stage and the decoders (256 channels × multiplier). Images up to 64
pixels on their short side get a 3×3 stride-1 stem (tiny smoke runs), larger ones the 7×7
stride-2 stem with max-pooling.

The encoder offers its decoder through ``dense_head(channels, image_shape)``, which
:class:`~scalarize.models.MultiHeadModel` uses for every dense head (any encoder may).

Example:
    >>> import torch
    >>> encoder = deeplab("10-x0.125", image_shape=(3, 24, 32))
    >>> head = encoder.dense_head(5, (3, 24, 32))
    >>> head(encoder.feature_map(torch.zeros(2, 3, 24, 32))).shape
    torch.Size([2, 5, 24, 32])
"""

from __future__ import annotations

import re

import torch
import torch.nn.functional as F
from torch import nn

from scalarize.errors import ScalarizeError
from scalarize.models.blocks import conv_bn as _conv_bn
from scalarize.models.blocks import residual_stages
from scalarize.models.encoder import Encoder

BOTTLENECK = {26: [2, 2, 2, 2], 50: [3, 4, 6, 3], 101: [3, 4, 23, 3]}
BASIC = {10: [1, 1, 1, 1], 18: [2, 2, 2, 2], 34: [3, 4, 6, 3]}
STRIDES, DILATIONS = (1, 2, 1, 1), (1, 1, 2, 4)
ASPP_RATES = (12, 24, 36)
_SPEC = re.compile(r"^([0-9]+)(?:-x([0-9]*\.?[0-9]+))?$")


class DilatedResNet(Encoder):
    """ResNet encoder at output stride 8 (4 for small images): the feature map for dense
    heads, its global average for per-image heads."""

    def __init__(self, depth: int, width_multiplier: float = 1.0, in_channels: int = 3,
                 image_size: int = 288) -> None:
        super().__init__()
        if depth not in BOTTLENECK and depth not in BASIC:
            raise ScalarizeError(f"unsupported deeplab depth {depth}; use 10, 18, 34 (basic "
                                 "blocks) or 26, 50, 101 (bottleneck)")
        if width_multiplier <= 0:
            raise ScalarizeError(f"width multiplier must be positive, got {width_multiplier}")
        bottleneck = depth in BOTTLENECK
        counts = BOTTLENECK[depth] if bottleneck else BASIC[depth]
        widths = [max(4, round(w * width_multiplier)) for w in (64, 128, 256, 512)]
        self.width_multiplier = width_multiplier
        relu = nn.ReLU(inplace=True)
        self.stem = nn.Sequential(*_conv_bn(in_channels, widths[0], 7, 2), relu,
                                  nn.MaxPool2d(3, 2, 1)) if image_size > 64 else \
            nn.Sequential(*_conv_bn(in_channels, widths[0], 3), relu)
        self.stages, self.out_features = residual_stages(widths[0], counts, widths, bottleneck,
                                                         STRIDES, DILATIONS)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.feature_map(x).mean(dim=(2, 3))

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """The last stage's N×features×h×w output (1/8 of the image for large images)."""
        return self.stages(self.stem(x))

    def dense_head(self, channels: int, image_shape: tuple[int, int, int]) -> nn.Module:
        """A DeepLabV3 head with ``channels`` outputs per pixel at the image's size."""
        width = max(8, round(256 * self.width_multiplier))
        return ASPPHead(self.out_features, channels, width, image_shape[1:])


class ASPPHead(nn.Module):
    """Atrous Spatial Pyramid Pooling, a 3×3 convolution and a 1×1 classifier, upsampled
    bilinearly to ``out_size`` (height, width)."""

    def __init__(self, in_features: int, channels: int, width: int,
                 out_size: tuple[int, int], rates: tuple[int, ...] = ASPP_RATES) -> None:
        super().__init__()
        relu = nn.ReLU(inplace=True)
        self.out_size = (int(out_size[0]), int(out_size[1]))
        self.branches = nn.ModuleList(
            [nn.Sequential(*_conv_bn(in_features, width, 1), relu)]
            + [nn.Sequential(*_conv_bn(in_features, width, 3, 1, r), relu) for r in rates])
        # no BatchNorm after pooling: one value per channel and image cannot be normalised
        self.pooled = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(in_features, width, 1),
                                    relu)
        self.project = nn.Sequential(*_conv_bn(width * (len(rates) + 2), width, 1), relu,
                                     nn.Dropout(0.1), *_conv_bn(width, width, 3), relu,
                                     nn.Conv2d(width, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = self.pooled(x).expand(-1, -1, *x.shape[-2:])
        features = torch.cat([*(branch(x) for branch in self.branches), pooled], dim=1)
        return F.interpolate(self.project(features), size=self.out_size, mode="bilinear",
                             align_corners=False)


def deeplab(knobs: str = "", *, image_shape: tuple[int, int, int]) -> DilatedResNet:
    """The ``deeplab`` family's factory (see the module docstring for the spec)."""
    match = _SPEC.match(knobs)
    if not match:
        raise ScalarizeError(f"cannot read deeplab spec 'deeplab{knobs}'; write "
                             "deeplab<depth>[-x<width>], e.g. deeplab50 or deeplab18-x0.5")
    multiplier = float(match.group(2)) if match.group(2) else 1.0
    c, h, w = image_shape
    return DilatedResNet(int(match.group(1)), multiplier, in_channels=c, image_size=min(h, w))


__all__ = ["ASPPHead", "DilatedResNet", "deeplab"]
