"""The user's model family: a small CNN whose capacity knobs are ``width`` and ``depth``.

scalarize calls ``build(image_shape=(C, H, W), width=..., depth=...)`` and adds the task
heads; the encoder gives pooled features (``forward``) and, for the dense ``mask`` task, a
feature map (``feature_map``).
"""

from __future__ import annotations

import torch
from torch import nn


class SmallCNN(nn.Module):
    """``depth`` 3×3 conv + batch-norm + ReLU blocks of ``width`` channels; the second block
    halves the resolution."""

    def __init__(self, channels: int, width: int, depth: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for i in range(depth):
            layers += [nn.Conv2d(channels if i == 0 else width, width, 3, padding=1,
                                 stride=2 if i == 1 else 1, bias=False),
                       nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
        self.body = nn.Sequential(*layers)
        self.out_features = width

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.feature_map(x).mean(dim=(2, 3))


def build(image_shape: tuple[int, int, int], width: int = 16, depth: int = 2) -> SmallCNN:
    """The factory scalarize calls for ``model.spec: toymodel:build``."""
    return SmallCNN(image_shape[0], width, depth)
