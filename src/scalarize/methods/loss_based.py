"""Loss-based multi-task methods: the weights come from the loss values, not the gradients.

Uncertainty weighting, DWA, RLW, FAMO and IMTL-L are torchjd scalarizers; GradNorm is written
here (no maintained library has it; torchjd does not). None of them uses the run's simplex
weights: each chooses its own.

Everything they learn is in the method's ``state_dict()``: UW's and IMTL-L's scales and FAMO's
logits as parameters, GradNorm's weights as buffers, and as extra state DWA's loss history,
FAMO's and GradNorm's inner Adam (see :mod:`scalarize.methods.state`), so runs resume exactly.

Partial labels: an objective with no example in the batch (``StepContext.counts``) has a loss
of 0 that says nothing about it. The torchjd scalarizers get its last seen loss in its place,
carried and detached (the mean of the batch's present losses before it was ever seen): no
gradient reaches the model from it, and the loss histories (DWA's epoch sums, FAMO's step
ratios, UW's and IMTL-L's scales) continue as if the loss had stayed where it was. The carried
values are extra state, so runs resume exactly. GradNorm moves its weights only on batches where
every objective has examples (a task without one has no gradient norm to balance), and takes a
task's initial loss from the first batch that has it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import torch
from torchjd.scalarization import DWA, Scalarizer

from scalarize.methods.base import StepContext
from scalarize.methods.state import OwnAdamMethod, TorchjdMethod, place, prepare


class ScalarizerMethod(TorchjdMethod):
    """Backpropagate ``scalarizer(losses)``; its learnable parameters join the optimiser. An
    objective absent from the batch enters with its carried last loss (see the module doc)."""

    compiles: ClassVar[bool] = True  # one backward of one scalar
    #: a function of the global losses: the processes' shares of its gradient add up
    distributes: ClassVar[bool | str] = True

    def __init__(self, scalarizer: Scalarizer) -> None:
        super().__init__()
        self.scalarizer = scalarizer
        prepare(scalarizer)
        self._last: torch.Tensor | None = None  # each objective's last seen loss
        self._seen: torch.Tensor | None = None  # whether it was ever seen
        self._present: torch.Tensor | None = None  # the last step's present objectives

    def wrapped(self) -> Scalarizer:
        return self.scalarizer

    def get_extra_state(self) -> dict[str, Any]:
        extra = super().get_extra_state()
        if self._last is not None:
            extra[_CARRIED] = {"last": self._last.clone(), "seen": self._seen,
                               "present": self._present}
        return extra

    def set_extra_state(self, extra: dict[str, Any] | None) -> None:
        super().set_extra_state(extra)
        carried = (extra or {}).get(_CARRIED)
        if carried is not None:
            self._last, self._seen = carried["last"], carried["seen"]
            self._present = carried["present"]

    def _carry(self, losses: torch.Tensor, counts: torch.Tensor | None) -> torch.Tensor:
        """``losses`` with each absent objective's replaced by its carried value (no host
        synchronisation; the same values and gradients when every objective is present)."""
        if counts is None:
            self._present = None
            return losses
        detached = losses.detach()
        present = counts > 0
        if self._last is None or self._seen is None:
            self._last = torch.zeros_like(detached)
            self._seen = torch.zeros_like(present)
        self._last, self._seen = self._last.to(detached), self._seen.to(present.device)
        mean = (detached * present).sum() / present.sum().clamp(min=1)
        fill = self._last.where(self._seen, mean)
        self._last = detached.where(present, fill)
        self._seen = self._seen | present
        self._present = present
        return losses.where(present, fill)

    def backward(self, losses: torch.Tensor, weights: torch.Tensor, ctx: StepContext
                 ) -> torch.Tensor:
        place(self.scalarizer, losses.device)
        counts = ctx.counts if ctx is not None else None  # tests call it without a context
        loss = self.scalarizer(self._carry(losses, counts))
        loss.backward()
        return loss.detach()

    def after_step(self, recompute_losses: Callable[[], torch.Tensor]) -> None:
        """FAMO learns its weights from how the losses of the batch moved across the step (an
        absent objective's did not move: its carried loss stands on both sides)."""
        update = getattr(self.scalarizer, "update", None)
        if update is not None:
            losses = recompute_losses()
            if self._present is not None and self._last is not None:
                losses = losses.where(self._present, self._last.to(losses))
            update(losses)

    def on_epoch_end(self) -> None:
        """DWA turns the epoch's loss sums into its history of mean losses."""
        if isinstance(self.scalarizer, DWA):
            self.scalarizer.step()


_CARRIED = "scalarize.carried"  # the carried losses' key in the extra state


class GradNorm(OwnAdamMethod):
    """GradNorm (Chen et al. 2018) on the shared features: learnable loss weights w_t are moved
    so that the gradient norms ‖∇_z w_t L_t‖ approach mean-norm × r_t^α, with r_t the task's
    relative inverse training rate L_t / L_t(0) normalised by its mean; the weights are then
    renormalised to sum to T. The weights have their own Adam (``lr``); its state is the
    method's extra state. The model steps along Σ w_t ∇L_t with the weights from before their
    update (so head t along w_t ∇L_t).

    Two conventions differ from the paper (Algorithm 1), and are checked as such
    (tests/methods/oracles/test_gradnorm.py): the norms are taken on the shared **features**
    (one backward through the heads only; the paper: on the weights of the last shared layer),
    and log w is stepped (by Adam, with ∂/∂log w = w ∂/∂w; the paper steps w itself), which keeps
    the weights positive without clipping. α = 1.5 is the paper's NYUv2 value; the weights' lr
    0.025 is scalarize's choice."""

    uses_weights: ClassVar[bool] = False
    distributes: ClassVar[bool | str] = ("its weights follow the norms of each task's gradient, "
                                         "which no process holds whole")
    compiles: ClassVar[bool] = True  # gradients w.r.t. the features only, then one backward
    adam_target: ClassVar[str] = "log_w"
    needs_shared_features: ClassVar[bool] = True
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

    def backward(self, losses: torch.Tensor, weights: torch.Tensor, ctx: StepContext
                 ) -> torch.Tensor:
        if ctx is not None and ctx.per_task:  # the norms are taken at shared features
            ctx.shared_features("gradnorm")
        detached = losses.detach()
        # a task's initial loss is the one of the first batch that has it (partial labels:
        # not every batch does); 0 until then, never 0 once set
        has = (torch.ones_like(self.started) if ctx is None or ctx.counts is None
               else ctx.counts.to(self.initial.device) > 0)
        self.initial.copy_(detached.clamp(min=1e-8).where(has & (self.initial == 0),
                                                          self.initial))
        self.started.fill_(True)
        present = ctx.present() if ctx is not None else None
        if present is not None:
            loss = torch.dot(self.log_w.exp().to(losses.dtype), losses)
            loss.backward()  # the weights stay: an absent task has no norm to balance
            return loss.detach()
        w = self.log_w.exp().detach().requires_grad_(True)
        norms = torch.stack([
            torch.autograd.grad(loss, ctx.shared_features("gradnorm"), retain_graph=True)[0]
            .norm()
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
        self.adam_step(grad)
        with torch.no_grad():  # renormalise: Σ w = T
            w = self.log_w.exp()
            self.log_w.copy_((w * len(w) / w.sum()).log())

    def current_weights(self) -> torch.Tensor:
        return self.log_w.exp().detach()
