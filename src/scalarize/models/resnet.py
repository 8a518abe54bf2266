"""ResNets with a depth and a width multiplier, for small and large images.

Two families, chosen by depth:

- **ImageNet-style bottleneck** ResNet-26/50/101 (stage blocks [2,2,2,2], [3,4,6,3], [3,4,23,3];
  base widths 64-128-256-512 × 4), as in the paper's DomainNet study;
- **CIFAR-style basic-block** ResNet-(6n+2) for other depths: 8, 14, 20, 32, 44, 56, 110
  (three stages of n blocks, base widths 16-32-64).

The width multiplier scales every stage. The stem adapts to the image size: a 3×3 stride-1
convolution for images up to 64 pixels, the 7×7 stride-2 convolution with max-pooling above.

Example:
    >>> import torch
    >>> encoder = ResNet(depth=20, width_multiplier=0.5, image_size=32)
    >>> encoder(torch.zeros(2, 3, 32, 32)).shape
    torch.Size([2, 32])
"""

from __future__ import annotations

import torch
from torch import nn

from scalarize.errors import ScalarizeError
from scalarize.models.blocks import residual_stages
from scalarize.models.encoder import Encoder

BOTTLENECK_DEPTHS = {26: [2, 2, 2, 2], 50: [3, 4, 6, 3], 101: [3, 4, 23, 3]}


class ResNet(Encoder):
    """ResNet encoder mapping N×C×H×W images to N×features (global average pooled)."""

    def __init__(self, depth: int, width_multiplier: float = 1.0, image_size: int = 32,
                 in_channels: int = 3) -> None:
        super().__init__()
        bottleneck = depth in BOTTLENECK_DEPTHS
        if bottleneck:
            counts, base = BOTTLENECK_DEPTHS[depth], [64, 128, 256, 512]
        elif 8 <= depth <= 1000 and (depth - 2) % 6 == 0:
            counts, base = [(depth - 2) // 6] * 3, [16, 32, 64]
        else:
            raise ScalarizeError(
                f"unsupported ResNet depth {depth}; use 26, 50, 101 (bottleneck) or 6n+2 such "
                "as 8, 14, 20, 32, 56 up to 1000 (CIFAR-style)"
            )
        if width_multiplier <= 0:
            raise ScalarizeError(f"width multiplier must be positive, got {width_multiplier}")
        widths = [max(4, round(w * width_multiplier)) for w in base]
        stem_width = widths[0]
        if image_size <= 64:
            self.stem = nn.Sequential(
                nn.Conv2d(in_channels, stem_width, 3, 1, 1, bias=False),
                nn.BatchNorm2d(stem_width), nn.ReLU(inplace=True),
            )
        else:
            self.stem = nn.Sequential(
                nn.Conv2d(in_channels, stem_width, 7, 2, 3, bias=False),
                nn.BatchNorm2d(stem_width), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1),
            )
        strides = [1] + [2] * (len(counts) - 1)  # each later stage halves the size
        self.stages, self.out_features = residual_stages(stem_width, counts, widths, bottleneck,
                                                         strides)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.feature_map(x).mean(dim=(2, 3))

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """The last stage's N×features×h×w output (for dense heads)."""
        return self.stages(self.stem(x))
