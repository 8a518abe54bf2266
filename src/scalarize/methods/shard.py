"""A step's share on several processes (data parallel): what a method needs to know of it.

On ``N`` processes each one holds a slice of the step's global batch (rank ``r`` the ``r``-th
of ``N`` equal, contiguous slices). The trainer hands a method losses whose *values* are the
global batch's and whose *gradients* are this process's share of the global ones (its slice's
sum over the examples, divided by the global counts), and sums every model parameter's
``.grad`` over the processes after :meth:`~scalarize.methods.base.Method.backward`. So a method
that backpropagates a function of the losses (static, the loss-based methods) needs nothing
more. A method that combines per-objective gradients non-linearly (the Jacobian methods) sums
them over the processes with :meth:`Shard.all_reduce` before combining, and leaves a gradient
it computed from global quantities (the same on every process) on one process only
(:meth:`Shard.keep`), so that the trainer's sum counts it once. The method's own parameters
learn from the global losses: their gradients are the same on every process and are not
summed.

A method says whether it trains on several processes with ``Method.distributes``.

Example:
    >>> Shard(rank=1, world=2, size=8).span()
    (4, 8)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Shard:
    """Rank ``rank`` of ``world`` processes that share a step whose global batch has ``size``
    examples: rank ``r`` holds the ``r``-th of ``torch.tensor_split``'s ``world`` slices."""

    rank: int
    world: int
    size: int = 0

    def span(self) -> tuple[int, int]:
        """Where this process's examples start and stop in the global batch.

        Example:
            >>> [Shard(r, 2, 5).span() for r in range(2)]
            [(0, 3), (3, 5)]
        """
        small, extra = divmod(self.size, self.world)
        start = self.rank * small + min(self.rank, extra)
        return start, start + small + (self.rank < extra)

    def all_reduce(self, tensor: torch.Tensor) -> torch.Tensor:
        """The sum of ``tensor`` over the processes (in place; returned)."""
        if self.world > 1:
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def keep(self, tensor: torch.Tensor) -> torch.Tensor:
        """``tensor`` on rank 0, zeros elsewhere: a global quantity, counted once by a sum
        over the processes (adding zeros is exact)."""
        return tensor if self.rank == 0 else torch.zeros_like(tensor)
