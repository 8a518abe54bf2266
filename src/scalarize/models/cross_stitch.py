"""Cross-stitch networks (Misra et al. 2016): one ResNet per task, joined after every stage but
the last by a cross-stitch unit: ``cross-stitch-resnet<depth>[-x<width>]``, e.g.
``cross-stitch-resnet8-x0.25``.

After stage j each task's map becomes a learned linear combination of every task's map,
x̃_t = Σ_s α^j_{ts} x_s, with α^j a T×T matrix per unit, initialised as in the paper to 0.9 on
the diagonal and 0.1 shared among the others (the identity for one task). The width
multiplier scales each task's ResNet, so the model has T times a ResNet's parameters.

Shared parameters (what the gradient-based methods and the conflict probe work on): every
stage before the last unit, of every task's network, and the units, since every task's loss
reaches them through the units; task-specific: each network's last stage.

Example:
    >>> import torch
    >>> net = CrossStitch(("a", "b"), depth=8, width_multiplier=0.25, image_size=16)
    >>> {t: tuple(f.shape) for t, f in net(torch.zeros(2, 3, 16, 16)).items()}
    {'a': (2, 16), 'b': (2, 16)}
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import torch
from torch import nn

from scalarize.models.encoder import Encoder
from scalarize.models.mtan import read_resnet_knobs, stage_channels
from scalarize.models.per_task import parameters_except
from scalarize.models.resnet import ResNet

#: the paper's initial weight of a task's own map in a unit (the rest is shared by the others)
SELF_WEIGHT = 0.9


def _unit(n: int) -> torch.Tensor:
    if n == 1:
        return torch.ones(1, 1)
    return torch.full((n, n), (1 - SELF_WEIGHT) / (n - 1)).fill_diagonal_(SELF_WEIGHT)


class CrossStitch(Encoder):
    """A ResNet per task with cross-stitch units between stages (see the module doc);
    ``forward`` returns ``task -> B×out_features``."""

    def __init__(self, tasks: Sequence[str], depth: int, width_multiplier: float = 1.0,
                 image_size: int = 32, in_channels: int = 3) -> None:
        super().__init__()
        self.tasks = tuple(tasks)
        self.columns = nn.ModuleDict({task: ResNet(depth, width_multiplier, image_size,
                                                   in_channels) for task in self.tasks})
        first = self.columns[self.tasks[0]]
        assert isinstance(first, ResNet)
        self.units = nn.ParameterList([nn.Parameter(_unit(len(self.tasks)))
                                       for _ in range(len(first.stages) - 1)])
        self.out_features = stage_channels(first)[-1]

    def feature_map(self, x: torch.Tensor) -> dict[str, torch.Tensor]:  # type: ignore[override]
        """Each task's last-stage map, B×out_features×h×w."""
        columns = [cast(ResNet, self.columns[task]) for task in self.tasks]
        maps = [column.stem(x) for column in columns]
        for j in range(len(self.units) + 1):
            maps = [column.stages[j](m) for column, m in zip(columns, maps, strict=True)]
            if j < len(self.units):
                stacked = torch.stack(maps)  # T×B×C×h×w
                unit = cast(torch.Tensor, self.units[j])
                maps = list(torch.einsum("ts,s...->t...", unit, stacked).unbind())
        return dict(zip(self.tasks, maps, strict=True))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {task: fmap.mean(dim=(2, 3)) for task, fmap in self.feature_map(x).items()}

    def shared_parameters(self) -> list[nn.Parameter]:
        """Everything before the last unit, and the units; each network's last stage is its
        task's own."""
        last = [cast(ResNet, column).stages[-1] for column in self.columns.values()]
        return parameters_except(self, last)


def cross_stitch(knobs: str = "", *, image_shape: tuple[int, int, int], tasks: Sequence[str]
                 ) -> CrossStitch:
    """The ``cross-stitch-resnet<depth>[-x<width>]`` family for ``tasks``."""
    depth, multiplier = read_resnet_knobs("cross-stitch", knobs)
    c, h, _ = image_shape
    return CrossStitch(tasks, depth, multiplier, image_size=h, in_channels=c)


__all__ = ["CrossStitch", "cross_stitch"]
