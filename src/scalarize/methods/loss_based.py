"""Loss-based multi-task methods: the weights come from the loss values, not the gradients.

Uncertainty weighting, DWA, RLW, FAMO and IMTL-L are torchjd scalarizers; GradNorm is written
here (no maintained library has it; torchjd does not). None of them uses the run's simplex
weights: each chooses its own.

Everything they learn is in the method's ``state_dict()``: UW's and IMTL-L's scales and FAMO's
logits as parameters, GradNorm's weights as buffers, and as extra state DWA's loss history,
FAMO's and GradNorm's inner Adam (see :mod:`scalarize.methods.state`), so runs resume exactly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import torch
from torchjd.scalarization import DWA, Scalarizer

from scalarize.methods.base import Method, StepContext
from scalarize.methods.state import (
    TorchjdMethod,
    load_optimizer,
    optimizer_state,
    place,
    prepare,
)


class ScalarizerMethod(TorchjdMethod):
    """Backpropagate ``scalarizer(losses)``; its learnable parameters join the optimiser."""

    def __init__(self, scalarizer: Scalarizer) -> None:
        super().__init__()
        self.scalarizer = scalarizer
        prepare(scalarizer)

    def wrapped(self) -> Scalarizer:
        return self.scalarizer

    def backward(self, losses: torch.Tensor, weights: torch.Tensor, ctx: StepContext
                 ) -> torch.Tensor:
        place(self.scalarizer, losses.device)
        loss = self.scalarizer(losses)
        loss.backward()
        return loss.detach()

    def after_step(self, recompute_losses: Callable[[], torch.Tensor]) -> None:
        """FAMO learns its weights from how the losses of the batch moved across the step."""
        update = getattr(self.scalarizer, "update", None)
        if update is not None:
            update(recompute_losses())

    def on_epoch_end(self) -> None:
        """DWA turns the epoch's loss sums into its history of mean losses."""
        if isinstance(self.scalarizer, DWA):
            self.scalarizer.step()


class GradNorm(Method):
    """GradNorm (Chen et al. 2018) on the shared features: learnable loss weights w_t are moved
    so that the gradient norms ‖∇_z w_t L_t‖ approach mean-norm × r_t^α, with r_t the task's
    relative inverse training rate L_t / L_t(0) normalised by its mean; the weights are then
    renormalised to sum to T. The weights have their own Adam (``lr``), as in the paper; its
    state is the method's extra state."""

    uses_weights: ClassVar[bool] = False
    log_w: torch.Tensor
    initial: torch.Tensor
    started: torch.Tensor

    def __init__(self, n_objectives: int, alpha: float = 1.5, lr: float = 0.025) -> None:
        super().__init__()
        self.alpha = alpha
        self.register_buffer("log_w", torch.zeros(n_objectives))
        self.register_buffer("initial", torch.zeros(n_objectives))
        self.register_buffer("started", torch.zeros((), dtype=torch.bool))
        self.lr = lr
        self._adam: torch.optim.Adam | None = None

    def get_extra_state(self) -> dict[str, Any]:
        return {"adam": optimizer_state(self._adam)}

    def set_extra_state(self, extra: dict[str, Any] | None) -> None:
        if extra is not None:
            self._adam = load_optimizer(self._new_adam, extra["adam"])

    def _new_adam(self) -> torch.optim.Adam:
        return torch.optim.Adam([self.log_w], lr=self.lr)

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
            self._adam = self._new_adam()
        self.log_w.grad = grad
        self._adam.step()
        self.log_w.grad = None
        with torch.no_grad():  # renormalise: Σ w = T
            w = self.log_w.exp()
            self.log_w.copy_((w * len(w) / w.sum()).log())

    def current_weights(self) -> torch.Tensor:
        return self.log_w.exp().detach()
