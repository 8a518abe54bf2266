"""Loss-based multi-task methods: the weights come from the loss values, not the gradients.

Uncertainty weighting, DWA, RLW, FAMO and IMTL-L are torchjd scalarizers; GradNorm is written
here (no maintained library has it; torchjd does not).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torchjd.scalarization import Scalarizer

from scalarize.methods.base import Method, StepContext


class ScalarizerMethod(Method):
    """Backpropagate ``scalarizer(losses)``; its learnable parameters join the optimiser."""

    def __init__(self, scalarizer: Scalarizer) -> None:
        super().__init__()
        self.scalarizer = scalarizer

    def backward(self, losses: torch.Tensor, weights: torch.Tensor, ctx: StepContext
                 ) -> torch.Tensor:
        loss = self.scalarizer(losses)
        loss.backward()
        return loss.detach()

    def after_step(self, recompute_losses: Callable[[], torch.Tensor]) -> None:
        """FAMO learns its weights from how the losses of the batch moved across the step."""
        update = getattr(self.scalarizer, "update", None)
        if update is not None:
            update(recompute_losses())


class GradNorm(Method):
    """GradNorm (Chen et al. 2018) on the shared features: learnable loss weights w_t are moved
    so that the gradient norms ‖∇_z w_t L_t‖ approach mean-norm × r_t^α, with r_t the task's
    relative inverse training rate L_t / L_t(0) normalised by its mean; the weights are then
    renormalised to sum to T. The weights have their own Adam (``lr``), as in the paper."""

    def __init__(self, n_objectives: int, alpha: float = 1.5, lr: float = 0.025) -> None:
        super().__init__()
        self.alpha = alpha
        self.register_buffer("log_w", torch.zeros(n_objectives))
        self.register_buffer("initial", torch.zeros(n_objectives))
        self.register_buffer("started", torch.zeros((), dtype=torch.bool))
        self.lr = lr
        self._adam: torch.optim.Adam | None = None

    def backward(self, losses: torch.Tensor, weights: torch.Tensor, ctx: StepContext
                 ) -> torch.Tensor:
        detached = losses.detach()
        if not bool(self.started):
            self.initial.copy_(detached.clamp(min=1e-8))
            self.started.fill_(True)
        w = self.log_w.exp().detach().requires_grad_(True)
        norms = torch.stack([
            torch.autograd.grad(loss, ctx.features, retain_graph=True)[0].norm()
            for loss in losses.unbind()
        ]).detach()
        ratio = detached / self.initial
        target = (norms * w.detach()).mean() * (ratio / ratio.mean()) ** self.alpha
        gradnorm_loss = (norms * w - target).abs().sum()
        (w_grad,) = torch.autograd.grad(gradnorm_loss, w)
        loss = torch.dot(w.detach().to(losses.dtype), losses)
        loss.backward()
        self._step_weights(w_grad * w.detach())  # chain rule into log-space
        return loss.detach()

    def _step_weights(self, grad: torch.Tensor) -> None:
        if self._adam is None:
            self._adam = torch.optim.Adam([self.log_w], lr=self.lr)
        self.log_w.grad = grad
        self._adam.step()
        self.log_w.grad = None
        with torch.no_grad():  # renormalise: Σ w = T
            w = self.log_w.exp()
            self.log_w.copy_((w * len(w) / w.sum()).log())

    def current_weights(self) -> torch.Tensor:
        return self.log_w.exp().detach()
