"""Task heads: a linear classifier on pooled features, or a dense decoder on the feature map.

A model whose heads are all classifiers hands them the encoder's pooled features (N×D). As soon
as one head is dense, the model hands every head the encoder's feature map (N×D×h×w): dense
heads decode it back to the image size, classifiers pool it first. The shared representation
that methods and probes differentiate against is then the feature map.

Example:
    >>> import torch
    >>> decoder = DenseDecoder(48, 3, map_size=8, out_size=32)
    >>> decoder(torch.zeros(2, 48, 8, 8)).shape
    torch.Size([2, 3, 32, 32])
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from scalarize.errors import ScalarizeError


@dataclass(frozen=True)
class DenseHead:
    """Ask for a dense decoder with ``channels`` output channels per pixel."""

    channels: int


@dataclass(frozen=True, eq=False)
class UserHead:
    """A head of the user's own: ``build(in_features)`` returns the module. A per-image head
    (``dense=False``) receives pooled features B×``in_features``; a dense one receives the
    encoder's feature map B×``in_features``×h×w and must return per-pixel outputs at the
    image's size."""

    build: Callable[[int], nn.Module]
    dense: bool = False


HeadSpec = int | DenseHead | UserHead


def is_dense(spec: HeadSpec) -> bool:
    """Whether a head makes per-pixel outputs (its targets mirror with the image)."""
    return isinstance(spec, DenseHead) or (isinstance(spec, UserHead) and spec.dense)


class GlobalPool(nn.Module):
    """Mean over the spatial axes: B×C×h×w → B×C."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3))


class PooledLinear(nn.Module):
    """Global average pooling of a feature map, then a linear classifier."""

    def __init__(self, in_features: int, classes: int) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.mean(dim=(2, 3)))


class DenseDecoder(nn.Module):
    """A light decoder: 1×1 projection, then ×2 bilinear upsampling + 3×3 conv + BN + ReLU
    stages until ``out_size`` (a last resize when the ratio is not a power of two), then a 1×1
    convolution to ``channels``. Its width is ``min(in_features, 128)``, so it grows with the
    encoder it decodes."""

    def __init__(self, in_features: int, channels: int, map_size: int,
                 out_size: int | tuple[int, int]) -> None:
        super().__init__()
        width = min(in_features, 128)
        # (height, width); one int for square images. ``map_size`` is the map's width.
        self.out_size = (out_size, out_size) if isinstance(out_size, int) else tuple(out_size)
        layers: list[nn.Module] = [nn.Conv2d(in_features, width, 1, bias=False),
                                   nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
        for _ in range(max(0, round(math.log2(max(1, self.out_size[1] / map_size))))):
            layers += [nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                       nn.Conv2d(width, width, 3, padding=1, bias=False),
                       nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
        self.body = nn.Sequential(*layers)
        self.out = nn.Conv2d(width, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.body(x)
        if tuple(x.shape[-2:]) != self.out_size:
            x = F.interpolate(x, size=self.out_size, mode="bilinear", align_corners=False)
        return self.out(x)


def build_head(spec: HeadSpec, in_features: int, map_size: int | None,
               out_size: int | tuple[int, int]) -> nn.Module:
    """The head asked for by ``spec``; ``map_size`` is the feature map's side when the model
    hands heads a map, ``None`` when it hands them pooled features."""
    if isinstance(spec, UserHead):
        module = spec.build(in_features)
        if not isinstance(module, nn.Module):
            raise ScalarizeError(f"a head's build(in_features) returned a "
                                 f"{type(module).__name__}, not a torch.nn.Module")
        return nn.Sequential(GlobalPool(), module) if map_size is not None and not spec.dense \
            else module
    if isinstance(spec, DenseHead):
        assert map_size is not None, "dense heads need the feature map"
        return DenseDecoder(in_features, spec.channels, map_size, out_size)
    if map_size is None:
        return nn.Linear(in_features, spec)
    return PooledLinear(in_features, spec)
