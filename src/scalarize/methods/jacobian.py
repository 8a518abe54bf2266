"""Jacobian-based multi-task optimisation through torchjd aggregators.

``mtl_backward`` fills each shared parameter's ``.jac`` (one row per objective; each objective
goes through its own head only) and the heads' ``.grad``; ``jac_to_grad`` then aggregates the
Jacobian into ``.grad`` with the method's aggregator (PCGrad, MGDA, CAGrad, IMTL-G, Nash-MTL,
GradDrop, Aligned-MTL, UPGrad, DualProj, GradVac, ConFIG). These methods replace the choice of
weights, so the run's simplex weights only scale what is logged.

Stateful aggregators (GradVac's EMA targets, Nash-MTL's previous solution) keep their state in
the method's ``state_dict()`` (see :mod:`scalarize.methods.state`), so runs resume exactly.

Partial labels: an objective with no example in the batch (``StepContext.counts``) has a loss
of 0 that depends on nothing, so its Jacobian row would be zero. A stateless aggregator gets
the Jacobian without that row (one fewer row; the heads of absent objectives get no gradient);
a batch without any objective leaves every ``.grad`` unset (and a stateful aggregator's state
as it was). A stateful aggregator (torchjd's ``Stateful``: GradVac, Nash-MTL, …) keeps state
sized by the number of objectives, so it gets every row, the absent objectives' being zero
(CR-MOGM's base weighting then solves over the present ones: :mod:`.gramian`). MGDA-UB solves
over the present objectives only.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn
from torchjd import Stateful
from torchjd.aggregation import Aggregator, MGDAWeighting
from torchjd.autojac import jac_to_grad, mtl_backward

from scalarize.methods.base import Method, StepContext
from scalarize.methods.state import TorchjdMethod, prepare


class JacobianMethod(TorchjdMethod):
    """Aggregate the per-objective Jacobian of the shared parameters with ``aggregator``.

    Example:
        >>> from torchjd.aggregation import UPGrad
        >>> method = JacobianMethod(UPGrad())
    """

    def __init__(self, aggregator: Aggregator) -> None:
        super().__init__()
        self.aggregator = aggregator
        prepare(aggregator)
        #: its state is sized by the objectives: it sees every row, also a zero one
        self.keeps_rows = _stateful(aggregator)

    def wrapped(self) -> Aggregator:
        return self.aggregator

    def backward(self, losses: torch.Tensor, weights: torch.Tensor, ctx: StepContext
                 ) -> torch.Tensor:
        # vmap over the objectives on GPU; on CPU one pass per objective is faster (see the
        # conflict probe's measurements) and avoids ops without batching rules (CPU attention)
        chunk = None if losses.device.type == "cuda" else 1
        rows = list(losses.unbind())
        present = ctx.present()
        if present is not None and not present:  # no objective has an example: no step
            return torch.dot(weights.to(losses.dtype), losses.detach())
        if present is not None and not self.keeps_rows:  # partial labels: skip absent rows
            rows = [rows[i] for i in present]
        mtl_backward(rows, features=ctx.features,
                     shared_params=ctx.shared_params, retain_graph=True,
                     parallel_chunk_size=chunk)
        jac_to_grad(ctx.shared_params, self.aggregator)
        return torch.dot(weights.to(losses.dtype), losses.detach())


class FeatureMGDA(Method):
    """MGDA-UB (Sener & Koltun 2018): MGDA weights from the gradients of the losses with respect
    to the shared features (an upper bound that costs T small backward passes through the heads
    only), then one backward pass of the weighted sum."""

    uses_weights: ClassVar[bool] = False
    compiles: ClassVar[bool] = True  # gradients w.r.t. the features only, then one backward

    def __init__(self, epsilon: float = 0.001, max_iters: int = 100) -> None:
        super().__init__()
        self.weighting = MGDAWeighting(epsilon=epsilon, max_iters=max_iters)

    def backward(self, losses: torch.Tensor, weights: torch.Tensor, ctx: StepContext
                 ) -> torch.Tensor:
        logged = torch.dot(weights.to(losses.dtype), losses.detach())
        present = ctx.present()
        if present is not None:  # partial labels: solve over the present objectives only
            if not present:
                return logged
            losses = losses[present]
        rows = [torch.autograd.grad(loss, ctx.features, retain_graph=True)[0].flatten()
                for loss in losses.unbind()]
        jacobian = torch.stack(rows)
        alpha = self.weighting(jacobian @ jacobian.T).detach()
        loss = torch.dot(alpha.to(losses.dtype), losses)
        loss.backward()
        return logged


def _stateful(module: nn.Module) -> bool:
    """Whether ``module`` holds a torchjd ``Stateful`` part."""
    return any(isinstance(part, Stateful) for part in module.modules())
