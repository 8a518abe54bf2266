"""Static scalarization: minimise Σ_t p_t · L_t (the paper's method)."""

from __future__ import annotations

from typing import ClassVar

import torch

from scalarize.methods.base import Method, StepContext


class StaticScalarization(Method):
    """Weighted sum of the per-objective losses with the run's simplex weights.

    Example:
        >>> import torch
        >>> losses = torch.tensor([1.0, 3.0], requires_grad=True)
        >>> StaticScalarization().backward(losses, torch.tensor([0.5, 0.5]), None).item()
        2.0
    """

    uses_weights: ClassVar[bool] = True
    compiles: ClassVar[bool] = True  # one backward of one scalar
    distributes: ClassVar[bool | str] = True  # a weighted sum: the processes' shares add up

    def __init__(self, n_objectives: int | None = None) -> None:
        super().__init__()

    def backward(self, losses: torch.Tensor, weights: torch.Tensor, ctx: StepContext | None
                 ) -> torch.Tensor:
        loss = torch.dot(weights.to(losses.dtype), losses)
        loss.backward()
        return loss.detach()
