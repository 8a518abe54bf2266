"""The residual stages that ``resnet`` and ``deeplab`` share: basic or bottleneck blocks, each
stage's first block strided (``resnet``) or dilated (``deeplab``'s last two stages), built in
one place so both families initialise the same way.

Example:
    >>> import torch
    >>> stages, out = residual_stages(8, [1, 1], [8, 16], bottleneck=False, strides=(1, 2))
    >>> out, stages(torch.zeros(1, 8, 16, 16)).shape
    (16, torch.Size([1, 16, 8, 8]))
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def conv_bn(cin: int, cout: int, kernel: int, stride: int = 1, dilation: int = 1
            ) -> list[nn.Module]:
    """A bias-free convolution padded to keep the size (at stride 1), then BatchNorm."""
    return [nn.Conv2d(cin, cout, kernel, stride, dilation * (kernel // 2), dilation,
                      bias=False), nn.BatchNorm2d(cout)]


class Block(nn.Module):
    """A residual block: two 3×3 convolutions (basic) or 1×1, 3×3, 1×1 (bottleneck, ×4
    channels), the 3×3 one strided or dilated."""

    def __init__(self, cin: int, width: int, stride: int, dilation: int, bottleneck: bool
                 ) -> None:
        super().__init__()
        cout = width * expansion(bottleneck)
        layers = ([*conv_bn(cin, width, 1), nn.ReLU(inplace=True),
                   *conv_bn(width, width, 3, stride, dilation), nn.ReLU(inplace=True),
                   *conv_bn(width, cout, 1)] if bottleneck else
                  [*conv_bn(cin, width, 3, stride, dilation), nn.ReLU(inplace=True),
                   *conv_bn(width, cout, 3, 1, dilation)])
        self.body = nn.Sequential(*layers)
        self.shortcut: nn.Module = (nn.Identity() if stride == 1 and cin == cout
                                    else nn.Sequential(*conv_bn(cin, cout, 1, stride)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.shortcut(x))


def expansion(bottleneck: bool) -> int:
    """How many times its width a block's output is (4 for a bottleneck)."""
    return 4 if bottleneck else 1


def residual_stages(cin: int, counts: Sequence[int], widths: Sequence[int], bottleneck: bool,
                    strides: Sequence[int], dilations: Sequence[int] | None = None
                    ) -> tuple[nn.Sequential, int]:
    """One stage of ``counts[i]`` blocks of ``widths[i]`` per entry, its first block at
    ``strides[i]``, every block at ``dilations[i]`` (1 by default); returns the stages and
    their output channels."""
    dilations = dilations if dilations is not None else [1] * len(counts)
    stages = []
    for n, width, stride, dilation in zip(counts, widths, strides, dilations, strict=True):
        blocks = []
        for j in range(n):
            blocks.append(Block(cin, width, stride if j == 0 else 1, dilation, bottleneck))
            cin = width * expansion(bottleneck)
        stages.append(nn.Sequential(*blocks))
    return nn.Sequential(*stages), cin


__all__ = ["Block", "conv_bn", "expansion", "residual_stages"]
