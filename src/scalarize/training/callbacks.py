"""Trainer callbacks: probes and loggers hook into the loop without changing it.

Override any hook; the trainer calls them in order for every callback it was given.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from scalarize.methods.base import StepContext
    from scalarize.runs.records import RunSummary
    from scalarize.training.objectives import PerExample
    from scalarize.training.trainer import Trainer


class Callback:
    """Base class with no-op hooks."""

    def on_fit_start(self, trainer: Trainer) -> None:
        """Before the first step (also when resuming)."""

    def on_losses(self, trainer: Trainer, losses: torch.Tensor, per_example: PerExample,
                  ctx: StepContext) -> None:
        """After the forward pass, before the backward pass; the graph is still alive, so a
        probe may take its own gradients with ``retain_graph=True``."""

    def takes_gradients(self, step: int) -> bool:
        """Whether :meth:`on_losses` backpropagates the graph of step ``step`` itself (then
        that step's forward runs eagerly: a compiled graph is backpropagated only once)."""
        return False

    def on_step_end(self, trainer: Trainer, step: int, loss: torch.Tensor) -> None:
        """After the optimiser step (``loss`` is a detached tensor: avoid ``.item()`` here)."""

    def on_epoch_end(self, trainer: Trainer, record: dict[str, Any]) -> None:
        """After evaluation; a callback may add keys to ``record`` before it is written."""

    def on_fit_end(self, trainer: Trainer, summary: RunSummary) -> None:
        """After the test evaluation; a callback may add fields to ``summary`` (they are kept
        in ``summary.json``)."""
