"""A user's own two-tower model, as docs/extending.md shows it: a shared convolutional stem and
one tower per task, named by the import target ``tests.models.two_tower:build``."""

from __future__ import annotations

import torch
from torch import nn


class TwoTower(nn.Module):
    """A shared stem, then a tower of its own per task; features per task."""

    def __init__(self, channels: int, tasks: tuple[str, ...], width: int) -> None:
        super().__init__()
        self.tasks = tasks  # says: the forward returns features per task
        self.out_features = width
        self.stem = nn.Sequential(nn.Conv2d(channels, width, 3, padding=1), nn.ReLU())
        self.towers = nn.ModuleDict({
            task: nn.Sequential(nn.Conv2d(width, width, 3, padding=1), nn.ReLU())
            for task in tasks})

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        shared = self.stem(x)
        return {task: self.towers[task](shared).mean(dim=(2, 3)) for task in self.tasks}

    def shared_parameters(self) -> list[nn.Parameter]:
        return list(self.stem.parameters())  # the towers are task-specific


def build(image_shape: tuple[int, int, int], tasks: tuple[str, ...], width: int = 8
          ) -> TwoTower:
    """The factory: the model builder passes the head names as ``tasks``."""
    return TwoTower(image_shape[0], tasks, width)


class Unsaid(TwoTower):
    """The same model without ``shared_parameters``: they are found from its graph."""

    shared_parameters = None  # type: ignore[assignment]


def unsaid(image_shape: tuple[int, int, int], tasks: tuple[str, ...]) -> Unsaid:
    return Unsaid(image_shape[0], tasks, 8)


def one_tensor(image_shape: tuple[int, int, int], tasks: tuple[str, ...]) -> TwoTower:
    """Breaks the contract: names its tasks but returns one tensor."""
    net = TwoTower(image_shape[0], tasks, 8)
    net.forward = lambda x: net.stem(x).mean(dim=(2, 3))  # type: ignore[method-assign]
    return net


def missing_task(image_shape: tuple[int, int, int], tasks: tuple[str, ...]) -> TwoTower:
    """Breaks the contract: makes features for one task fewer than it is given."""
    return TwoTower(image_shape[0], tasks[:-1], 8)
