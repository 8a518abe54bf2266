"""The method interface: how per-objective losses become one update.

The trainer computes one loss per objective (task or domain) and hands them to a method, which
performs the backward pass (filling ``.grad``) and returns the scalar it optimised, for logging.
Static scalarization, Jacobian-based aggregators and loss-balancing methods all sit behind this
one interface, so the training loop never changes when a method is added.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class StepContext:
    """What a method may use besides the losses: the model, its shared parameters, and the shared
    features of the batch (for methods that work on feature gradients)."""

    model: nn.Module
    shared_params: list[nn.Parameter]
    features: torch.Tensor
    step: int


class Method(nn.Module):
    """Base class: override :meth:`backward`. Learnable state (e.g. loss scales) lives in the
    module's parameters, which the trainer adds to the optimiser and checkpoints."""

    def backward(self, losses: torch.Tensor, weights: torch.Tensor, ctx: StepContext
                 ) -> torch.Tensor:
        """Backpropagate ``losses`` (one per objective) given the scalarization ``weights`` for
        this step; return the detached scalar that was optimised."""
        raise NotImplementedError

    def after_step(self, recompute_losses: Callable[[], torch.Tensor]) -> None:
        """Called after the optimiser step; ``recompute_losses()`` evaluates the batch's losses
        with the updated model (only methods that need it call it, e.g. FAMO)."""
