"""Auto-Lambda (Liu, James, Davison & Johns, TMLR 2022, "Auto-Lambda: Disentangling Dynamic Task
Relationships"): task weights λ learned by a bilevel meta-step on a held-out batch.

Each step, before the model moves:

1. a **virtual step** of the whole model (shared parameters and heads) under the training loss
   Σ λ_t L_t^A of the batch's first half A: θ' = θ − α ∇_θ Σ λ_t L_t^A(θ), α the optimiser's
   learning rate of the step (``virtual_lr`` to fix it);
2. the **validation loss** Σ_{t primary} L_t^B(θ') of the second half B at θ', and its gradient
   d = ∇_θ' (all tasks are primary unless ``primary`` lists objective indices: the paper's
   auxiliary-learning setting);
3. the meta-gradient ∇_λ = −α ∇²_{λ,θ} L^A · d, the mixed second derivative by a central finite
   difference, (L^A(θ + εd) − L^A(θ − εd)) / 2ε with ε = 0.01 / ‖d‖, as in the official code
   (github.com/lorenmt/auto-lambda, ``auto_lambda.py``);
4. one Adam step on λ (lr 10⁻⁴, the official dense-prediction default; λ starts at 0.1, the
   official ``autol_init``; λ is not constrained, as there).

Then the model takes the run's step on Σ λ_t L_t over the **whole** batch (heads weighted by λ,
as in the official code, where each head's gradient is λ_t ∇L_t).

The held-out batch: the official code draws it from a second, independently shuffled loader over
the *training* set (not the validation split). scalarize hands a method one batch per step, so,
as MoDo and SDMGrad do (:mod:`scalarize.methods.two_batch`), the batch's two halves are the two
independent batches: A for the virtual step, B for the validation loss. The run's validation
split stays untouched, so model selection and the search's fitness never see the data that
moved λ.

Differences from the official code: the virtual step is plain gradient descent (the official
one adds SGD's momentum and weight decay, and takes Adam's learning rate with the raw gradient
when the model is trained with Adam, as here); the look-ahead leaves the model exactly as it was
(parameters swapped back; BatchNorm's running statistics are those of the step's own
forward pass: the look-ahead's evaluations update copies).

Cost: besides the step itself, three evaluations of the batch (the virtual step's, θ's + and −)
and two backward passes (``benchmarks/method_cost.py`` measures it). It needs the trainer's
look-ahead (:attr:`~scalarize.methods.base.StepContext.per_example`), so it runs eagerly
(``train.compile`` is declined). λ and its Adam are in the method's ``state_dict()``, so runs
resume exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import torch

from scalarize.errors import ScalarizeError
from scalarize.methods.base import StepContext
from scalarize.methods.state import OwnAdamMethod


class AutoLambda(OwnAdamMethod):
    """Task weights λ moved by a one-step look-ahead meta-gradient (see the module doc)."""

    uses_weights: ClassVar[bool] = False
    adam_target: ClassVar[str] = "meta_weights"
    distributes: ClassVar[bool | str] = ("its virtual step evaluates the batch again, which "
                                         "no process holds whole")
    meta_weights: torch.Tensor
    primary: torch.Tensor

    def __init__(self, n_objectives: int, weight_init: float = 0.1, lr: float = 1e-4,
                 primary: Sequence[int] | None = None, virtual_lr: float | None = None
                 ) -> None:
        super().__init__()
        chosen = list(range(n_objectives)) if primary is None else [int(i) for i in primary]
        if not chosen or any(not 0 <= i < n_objectives for i in chosen):
            raise ScalarizeError(f"method 'auto_lambda': primary {list(primary or [])} must "
                                 f"list objective indices in 0..{n_objectives - 1}")
        self.register_buffer("meta_weights", torch.full((n_objectives,), float(weight_init)))
        mask = torch.zeros(n_objectives)
        mask[chosen] = 1.0
        self.register_buffer("primary", mask)
        self.lr = lr
        self.virtual_lr = virtual_lr

    def backward(self, losses: torch.Tensor, weights: torch.Tensor, ctx: StepContext
                 ) -> torch.Tensor:
        if ctx is None or ctx.per_example is None:
            raise ScalarizeError("method 'auto_lambda' evaluates the batch again after a "
                                 "virtual step; it needs the trainer's StepContext.per_example")
        alpha = self.virtual_lr if self.virtual_lr is not None else ctx.lr
        if alpha is None:
            raise ScalarizeError("method 'auto_lambda': no learning rate for the virtual step; "
                                 "set method.options.virtual_lr")
        size = ctx.batch_size()
        if size < 2:
            raise ScalarizeError(f"method 'auto_lambda' splits each batch in two halves; a "
                                 f"batch of {size} example cannot be split: raise "
                                 "train.batch_size")
        self._meta_step(ctx, float(alpha), size)
        lam = self.meta_weights.to(losses.dtype)
        torch.dot(lam, losses).backward()
        return torch.dot(weights.to(losses.dtype), losses.detach())

    def _meta_step(self, ctx: StepContext, alpha: float, size: int) -> None:
        """Move λ by one Adam step on its look-ahead meta-gradient; the model is left as it was."""
        assert ctx.per_example is not None
        per_example = ctx.per_example
        params = [p for p in ctx.model.parameters() if p.requires_grad]
        original = [p.data for p in params]  # swapped back at the end: exactly θ again
        # the look-ahead's evaluations update copies of the buffers (BatchNorm's running
        # statistics): the step's graph saved the originals, which must stay untouched
        buffers = [(module, name, buffer) for module in ctx.model.modules()
                   for name, buffer in module.named_buffers(recurse=False)]
        for module, name, buffer in buffers:
            setattr(module, name, buffer.clone())
        first = torch.zeros(size, dtype=torch.bool, device=ctx.feature_tensors()[0].device)
        first[:size // 2] = True

        def half_means(part: torch.Tensor) -> torch.Tensor:
            loss = per_example()
            mask = (torch.ones_like(loss) if ctx.mask is None else ctx.mask.to(loss)) * part
            return (loss * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1)

        def move(step: Sequence[torch.Tensor], scale: float) -> None:
            for p, base, s in zip(params, original, step, strict=True):
                p.data = base + scale * s

        try:
            lam = self.meta_weights.detach()
            train = half_means(first)
            grads = _grads(torch.dot(lam.to(train.dtype), train), params)
            move(grads, -alpha)  # θ' = θ − α ∇θ Σ λ L^A
            val = half_means(~first)
            d = _grads(torch.dot(self.primary.to(val.dtype), val), params)
            norm = torch.cat([g.flatten() for g in d]).norm()
            if not bool(norm > 0):  # the validation loss does not move: nothing to learn
                return
            eps = float(0.01 / norm)
            with torch.no_grad():
                move(d, eps)
                plus = half_means(first)
                move(d, -eps)
                minus = half_means(first)
        finally:
            for p, base in zip(params, original, strict=True):
                p.data = base
            for module, name, buffer in buffers:
                setattr(module, name, buffer)
        meta_grad = -alpha * (plus - minus) / (2 * eps)
        self.adam_step(meta_grad)

    def current_weights(self) -> torch.Tensor:
        """The task weights λ."""
        return self.meta_weights.detach().clone()


def _grads(loss: torch.Tensor, params: list[torch.nn.Parameter]) -> list[torch.Tensor]:
    """∇ ``loss`` for each of ``params`` (zeros for those it does not reach)."""
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    return [torch.zeros_like(p) if g is None else g.detach() for p, g in zip(params, grads,
                                                                           strict=True)]


def auto_lambda(n_objectives: int, weight_init: float = 0.1, lr: float = 1e-4,
                primary: Sequence[int] | None = None, virtual_lr: float | None = None
                ) -> AutoLambda:
    """Auto-Lambda with the official defaults (λ₀ = 0.1, meta lr 10⁻⁴, every task primary)."""
    return AutoLambda(n_objectives, weight_init, lr, primary, virtual_lr)
