"""GradDrop at the activations (Chen et al. 2020, "Just Pick a Sign"), as the paper defines it.

GradDrop acts on the gradients of the losses with respect to the shared **activations** (the
features the heads read), not on the shared parameters: for each feature coordinate it sums each
task's gradient over the batch after multiplying it by the sign of the activation (the paper's
batch-separated "sign correction", which makes the sign meaningful for inputs of either sign),
forms the positive-sign purity P = ½ (1 + Σ_t g_t / Σ_t |g_t|), draws U ~ Uniform(0, 1) per
coordinate and keeps task t's gradient where (P > U and g_t > 0) or (P < U and g_t < 0); a
``leak`` ∈ [0, 1] lets that share of every gradient through regardless (0, the paper's and
LibMTL's default). The kept gradients, summed over the tasks (the paper's scale: a sum, not a
mean), are back-propagated once through the encoder. Heads get their own loss's gradient.

The masks are drawn from the generator of the features' device (torch's CPU generator on the
CPU), which the trainer checkpoints, so runs resume exactly. ``graddrop_params`` keeps the
earlier variant (torchjd's ``GradDrop``: masks per coordinate of the shared-parameter Jacobian,
no sign correction).

Example:
    >>> method = ActivationGradDrop(leak=0.0)
    >>> method.leak
    0.0
"""

from __future__ import annotations

from typing import ClassVar

import torch

from scalarize.errors import ScalarizeError
from scalarize.methods.base import Method, StepContext
from scalarize.methods.jacobian import head_params

#: added to Σ_t |g_t| so that a coordinate no task moves gives P = ½ (LibMTL's 1e-7)
EPS = 1e-7


class ActivationGradDrop(Method):
    """GradDrop on the shared features with the batch sign correction (see the module doc)."""

    uses_weights: ClassVar[bool] = False
    distributes: ClassVar[bool | str] = ("it drops the signs of each example's feature "
                                         "gradients with one draw over the batch, not sharded")
    compiles: ClassVar[bool] = True  # gradients w.r.t. the features, then one backward
    needs_shared_features: ClassVar[bool] = True

    def __init__(self, leak: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= leak <= 1.0:
            raise ScalarizeError(f"method 'graddrop': leak={leak} is outside [0, 1]; set "
                                 "method.options.leak between 0 and 1")
        self.leak = float(leak)

    def backward(self, losses: torch.Tensor, weights: torch.Tensor, ctx: StepContext
                 ) -> torch.Tensor:
        features = ctx.shared_features("graddrop")  # it drops gradients coordinate-wise there
        logged = torch.dot(weights.to(losses.dtype), losses.detach())
        present = ctx.present()
        rows = list(losses.unbind())
        if present is not None:  # partial labels: the present objectives only
            if not present:
                return logged
            rows = [rows[i] for i in present]
        grads = torch.stack([
            torch.autograd.grad(loss, features, retain_graph=True, allow_unused=True,
                                materialize_grads=True)[0]
            for loss in rows])  # [T, batch, *feature]
        heads = head_params(ctx)
        if heads:
            torch.autograd.backward(torch.stack(rows).sum(), inputs=heads, retain_graph=True)
        signed = (grads * features.detach().sign()).sum(dim=1)  # [T, *feature]
        purity = 0.5 * (1 + signed.sum(dim=0) / (signed.abs().sum(dim=0) + EPS))
        draw = torch.rand_like(purity)
        kept = ((purity > draw) & (signed > 0)) | ((purity < draw) & (signed < 0))
        keep = self.leak + (1 - self.leak) * kept.to(grads.dtype)
        gradient = (grads * keep.unsqueeze(1)).sum(dim=0)
        torch.autograd.backward(features, gradient, inputs=ctx.shared_params)
        return logged


def graddrop(n_objectives: int, leak: float = 0.0) -> ActivationGradDrop:
    """GradDrop at the activations with ``leak`` (0: the paper's)."""
    return ActivationGradDrop(leak=leak)
