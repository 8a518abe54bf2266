"""Hybrid IMTL (Liu et al., ICLR 2021, "Towards Impartial Multi-task Learning"): the paper's main
method, IMTL-L and IMTL-G together.

- **Loss balance (IMTL-L)** on every loss: each task's loss becomes e^{s_t} L_t − s_t with a
  learned scale s_t (initialised at 0, learned by the run's optimiser beside the model; torchjd's
  :class:`~torchjd.scalarization.IMTLL` holds the scales, as for ``imtl_l``).
- **Gradient balance (IMTL-G)** on the **shared parameters**: with g_t the gradient of the t-th
  scaled loss, the weights α (Σ α_t = 1) in the closed form of the paper, α ∝ G⁻¹ (‖g_t‖)_t
  (G the Gramian of the g_t; torchjd's :class:`~torchjd.aggregation.IMTLG`, as for ``imtl_g``),
  make Σ α_t g_t have equal projections on every unit gradient g_t / ‖g_t‖. The shared
  parameters move along Σ α_t g_t.

Each head gets the gradient of its own scaled loss, e^{s_t} ∇L_t, unweighted by α, and each
scale s_t the gradient e^{s_t} L_t − 1, as in LibMTL's ``IMTL`` (the paper released no code):
the path of every Jacobian method here (:class:`~scalarize.methods.jacobian.JacobianMethod`).
Scale convention: Σ α_t = 1, so the update is of the size of one scaled task gradient.

Partial labels: an objective absent from the batch has no row in the Jacobian, so its scale
gets no gradient from the batch (the loss 0 would otherwise push s_t up for nothing).
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torchjd.aggregation import IMTLG
from torchjd.scalarization import IMTLL

from scalarize.methods.base import StepContext
from scalarize.methods.jacobian import JacobianMethod


class HybridIMTL(JacobianMethod):
    """IMTL-G on the gradients of the IMTL-L-scaled losses.

    Example:
        >>> method = HybridIMTL(3)
        >>> [name for name, _ in method.named_parameters()]
        ['scales.log_scale']
    """

    uses_weights: ClassVar[bool] = False
    distributes: ClassVar[bool | str] = ("its loss scales learn through the Jacobian of "
                                         "each process's slice, not summed")

    def __init__(self, n_objectives: int) -> None:
        super().__init__(IMTLG())
        self.scales = IMTLL(n_objectives)

    def backward(self, losses: torch.Tensor, weights: torch.Tensor, ctx: StepContext
                 ) -> torch.Tensor:
        s = self.scales.log_scale.to(losses.dtype)
        super().backward(s.exp() * losses - s, weights, ctx)
        return torch.dot(weights.to(losses.dtype), losses.detach())


def imtl(n_objectives: int) -> HybridIMTL:
    """Hybrid IMTL (IMTL-L scales and IMTL-G weights), the IMTL paper's main method."""
    return HybridIMTL(n_objectives)
