"""MTAN (Liu, Johns & Davison 2019, "End-to-End Multi-Task Learning with Attention") over a
shared ResNet: ``mtan-resnet<depth>[-x<width>]``, e.g. ``mtan-resnet8-x0.5``.

The shared network is the ResNet of :mod:`scalarize.models.resnet` (same depth and width
grammar). Each task has one soft attention module per stage: two 1×1 convolutions (BatchNorm,
ReLU, then a sigmoid) turning the stage's shared output u_j, concatenated with the task's
attended features of the previous stage, into a mask a_t^j ∈ (0, 1) with u_j's channels; the
task's features at that stage are a_t^j ⊙ u_j. Between stages a shared 3×3 convolution
(BatchNorm, ReLU, the next stage's stride) carries each task's attended features to the next
stage's size, as the paper's shared block f. The task's features are its last stage's
attended map (``feature_map``, for dense heads) or its global average (``forward``).

The paper's attention reads the shared features inside a stage; here it reads the stage's
output, so the ResNet is used unchanged. Shared parameters (what the gradient-based methods
and the conflict probe work on): the ResNet and the blocks f; task-specific: the attention
modules.

Example:
    >>> import torch
    >>> net = MTAN(("a", "b"), depth=8, width_multiplier=0.25, image_size=16)
    >>> {t: tuple(f.shape) for t, f in net(torch.zeros(2, 3, 16, 16)).items()}
    {'a': (2, 16), 'b': (2, 16)}
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, cast

import torch
from torch import nn

from scalarize.errors import ScalarizeError
from scalarize.models.encoder import Encoder
from scalarize.models.per_task import parameters_except
from scalarize.models.resnet import ResNet

#: the knobs after a family name that wraps a ResNet: ``-resnet<depth>[-x<width>]``
RESNET_KNOBS = re.compile(r"^-resnet([0-9]+)(?:-x([0-9]*\.?[0-9]+))?$")


def read_resnet_knobs(family: str, knobs: str) -> tuple[int, float]:
    """Depth and width multiplier from ``-resnet<depth>[-x<width>]``, or one line saying how
    to write them."""
    match = RESNET_KNOBS.match(knobs)
    if not match:
        raise ScalarizeError(f"cannot read {family} spec '{family}{knobs}'; write "
                             f"{family}-resnet<depth>[-x<width>], e.g. {family}-resnet8-x0.5")
    return int(match.group(1)), float(match.group(2)) if match.group(2) else 1.0


def stage_channels(resnet: ResNet) -> list[int]:
    """Each stage's output channels (its last block ends in a BatchNorm of that width)."""
    stages: list[Any] = list(resnet.stages)
    return [int(stage[-1].body[-1].num_features) for stage in stages]


def stage_strides(resnet: ResNet) -> list[int]:
    """Each stage's stride (its first block's shortcut or 3×3 convolution has it)."""
    strides = []
    stages: list[Any] = list(resnet.stages)
    for stage in stages:
        conv = next(m for m in stage[0].body
                    if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3))
        strides.append(int(conv.stride[0]))
    return strides


def _attention(cin: int, channels: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, channels, 1, bias=False), nn.BatchNorm2d(channels),
                         nn.ReLU(inplace=True), nn.Conv2d(channels, channels, 1, bias=False),
                         nn.BatchNorm2d(channels), nn.Sigmoid())


class MTAN(Encoder):
    """A shared ResNet with one attention module per task and stage (see the module doc);
    ``forward`` returns ``task -> B×out_features``."""

    def __init__(self, tasks: Sequence[str], depth: int, width_multiplier: float = 1.0,
                 image_size: int = 32, in_channels: int = 3) -> None:
        super().__init__()
        self.tasks = tuple(tasks)
        self.resnet = ResNet(depth, width_multiplier, image_size, in_channels)
        channels, strides = stage_channels(self.resnet), stage_strides(self.resnet)
        self.attention = nn.ModuleDict({task: nn.ModuleList(
            [_attention(c if j == 0 else 2 * c, c) for j, c in enumerate(channels)])
            for task in self.tasks})
        self.carry = nn.ModuleList([
            nn.Sequential(nn.Conv2d(channels[j], channels[j + 1], 3, strides[j + 1], 1,
                                    bias=False),
                          nn.BatchNorm2d(channels[j + 1]), nn.ReLU(inplace=True))
            for j in range(len(channels) - 1)])
        self.out_features = channels[-1]

    def feature_map(self, x: torch.Tensor) -> dict[str, torch.Tensor]:  # type: ignore[override]
        """Each task's attended map of the last stage, B×out_features×h×w."""
        shared = self.resnet.stem(x)
        attended: dict[str, torch.Tensor] = {}
        for j, stage in enumerate(self.resnet.stages):
            shared = stage(shared)
            for task in self.tasks:
                cue = shared if j == 0 else torch.cat(
                    [shared, self.carry[j - 1](attended[task])], dim=1)
                mask = cast(nn.ModuleList, self.attention[task])[j](cue)
                attended[task] = mask * shared
        return attended

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {task: fmap.mean(dim=(2, 3)) for task, fmap in self.feature_map(x).items()}

    def shared_parameters(self) -> list[nn.Parameter]:
        """The ResNet and the blocks between stages; the attention modules are per task."""
        return parameters_except(self, [self.attention])


def mtan(knobs: str = "", *, image_shape: tuple[int, int, int], tasks: Sequence[str]) -> MTAN:
    """The ``mtan-resnet<depth>[-x<width>]`` family for ``tasks``."""
    depth, multiplier = read_resnet_knobs("mtan", knobs)
    c, h, _ = image_shape
    return MTAN(tasks, depth, multiplier, image_size=h, in_channels=c)


__all__ = ["MTAN", "mtan", "read_resnet_knobs", "stage_channels", "stage_strides"]
