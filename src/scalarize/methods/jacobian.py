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

Models with task-specific paths (features per objective, :mod:`scalarize.models.per_task`):
the Jacobian is that of the shared parameters (``StepContext.shared_params``), through every
objective's own features; the task-specific parameters (the heads and the encoder's
task-specific parts) get the gradient of the loss that reaches them, as the heads do here
(:func:`jacobian_backward`). MGDA-UB needs one shared feature tensor and refuses such models.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import torch
from torch import nn
from torchjd import Stateful
from torchjd.aggregation import Aggregator, MGDAWeighting, NashMTL, WeightedAggregator
from torchjd.autojac import jac_to_grad, mtl_backward

from scalarize.errors import ScalarizeError
from scalarize.methods.base import Method, StepContext
from scalarize.methods.shard import Shard
from scalarize.methods.state import TorchjdMethod, prepare

#: what a task's own head gets: ``plain`` ∇L_t, ``weighted`` α_t ∇L_t (see the module doc)
Heads = Literal["plain", "weighted"]
HEADS: tuple[str, ...] = ("plain", "weighted")


def check_heads(heads: str, name: str) -> None:
    """Refuse a ``heads`` option other than ``plain`` or ``weighted``."""
    if heads not in HEADS:
        raise ScalarizeError(f"method {name!r}: heads={heads!r} is not one of "
                             f"{', '.join(HEADS)}; set method.options.heads to one of them")


def head_params(ctx: StepContext) -> list[nn.Parameter]:
    """The model's trainable parameters outside the shared ones: the task heads (and, for a
    model with task-specific paths, the encoder's task-specific parts)."""
    shared = {id(p) for p in ctx.shared_params}
    return [p for p in ctx.model.parameters() if p.requires_grad and id(p) not in shared]


def weighted_head_backward(losses: list[torch.Tensor], alpha: torch.Tensor,
                           ctx: StepContext) -> None:
    """Head t gets α_t ∇L_t: back-propagate Σ α_t L_t into the heads only."""
    heads = head_params(ctx)
    if heads:
        total = torch.stack(losses) @ alpha.detach().to(losses[0].dtype)
        torch.autograd.backward(total, inputs=heads, retain_graph=True)


def jacobian_backward(rows: list[torch.Tensor], ctx: StepContext, *, heads: bool = True,
                      parallel_chunk_size: int | None = None) -> None:
    """``mtl_backward`` of ``rows`` (one loss per objective): each shared parameter's ``.jac``
    and, with ``heads``, each task-specific parameter's ``.grad`` (its own loss's gradient).
    Hard sharing takes torchjd's path unchanged; features per objective are handed to torchjd
    as a sequence and the task-specific parameters, which lie between the shared parameters and
    the features, get theirs in one backward pass of Σ L_t (each is reached by one loss)."""
    if not ctx.per_task:
        mtl_backward(rows, features=ctx.features,  # type: ignore[arg-type]
                     tasks_params=None if heads else [[] for _ in rows],
                     shared_params=ctx.shared_params, retain_graph=True,
                     parallel_chunk_size=parallel_chunk_size)
        return
    mtl_backward(rows, features=ctx.feature_tensors(), tasks_params=[[] for _ in rows],
                 shared_params=ctx.shared_params, retain_graph=True,
                 parallel_chunk_size=parallel_chunk_size)
    specific = head_params(ctx)
    if heads and specific:
        torch.autograd.backward(torch.stack(rows).sum(), inputs=specific, retain_graph=True)


class JacobianMethod(TorchjdMethod):
    """Aggregate the per-objective Jacobian of the shared parameters with ``aggregator``.

    Example:
        >>> from torchjd.aggregation import UPGrad
        >>> method = JacobianMethod(UPGrad())
    """

    #: each objective's gradient is summed over the processes before the aggregator
    distributes: ClassVar[bool | str] = True

    def __init__(self, aggregator: Aggregator, heads: str = "plain") -> None:
        super().__init__()
        check_heads(heads, type(aggregator).__name__)
        if heads == "weighted" and not isinstance(aggregator, WeightedAggregator):
            raise ScalarizeError(f"{type(aggregator).__name__} does not weight the rows of the "
                                 "Jacobian, so heads=weighted has no weights to use; use "
                                 "heads=plain")
        self.aggregator = aggregator
        self.heads = heads
        prepare(aggregator)
        #: its state is sized by the objectives: it sees every row, also a zero one
        self.keeps_rows = _stateful(aggregator)
        self._alpha: torch.Tensor | None = None  # the last step's weights (heads=weighted)
        if heads == "weighted":
            weighting = aggregator.weighting
            assert isinstance(weighting, nn.Module)  # checked above: it weights the rows
            weighting.register_forward_hook(self._record)

    def _record(self, module: nn.Module, args: Any, alpha: torch.Tensor) -> None:
        self._alpha = alpha

    def head_weights(self) -> torch.Tensor:
        """The weights α the heads get with ``heads=weighted``: the aggregator's, this step."""
        assert self._alpha is not None
        return self._alpha

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
        weighted = self.heads == "weighted"
        # weighted heads: mtl_backward leaves the heads alone; they follow once α is known
        jacobian_backward(rows, ctx, heads=not weighted, parallel_chunk_size=chunk)
        if ctx.shard is not None:
            _sum_jacobians(ctx.shared_params, ctx.shard)
        jac_to_grad(ctx.shared_params, self.aggregator)
        if ctx.shard is not None:  # the aggregate of the global Jacobian: counted once
            for param in ctx.shared_params:
                if param.grad is not None:
                    param.grad = ctx.shard.keep(param.grad)
        if weighted:
            weighted_head_backward(rows, self.head_weights(), ctx)
            self._alpha = None  # this step's weights only: not state a checkpoint must carry
        return torch.dot(weights.to(losses.dtype), losses.detach())


class NashMTLMethod(JacobianMethod):
    """Nash-MTL (Navon et al. 2022). The shared parameters move along Σ α_t ∇L_t with α the
    bargaining solution, clipped to norm ``max_norm`` (1, the official default); with
    ``heads=weighted`` (the default: the official code back-propagates Σ α_t L_t, as LibMTL does)
    head t moves along α_t ∇L_t with the *unclipped* α, as in the official code, where the
    clipping (``clip_grad_norm_`` on the shared parameters) comes after the backward pass.

    α solves the paper's G α = 1/α (G = J Jᵀ) by the official code's concave-convex procedure
    (torchjd's port: cvxpy/ECOS, at most ``optim_niter`` steps, warm-started from the last
    step's α, 1 at the first). One convention of that code is kept, not a bug of the port: its
    stopping rule tests ‖Ĝ α₀ − 1/α₀‖ < 1e-3 on the normalised Ĝ = G / ‖G‖_F with the warm
    start α₀ *before* solving, and returns α₀ unsolved where it holds. For T equal gradients
    (Ĝ = 11ᵀ/T) α stays 1 where the bargaining solution is 1/(‖g‖√T); otherwise α matches the
    exact solution to 1e-6 (tests/methods/oracles/test_nash_mtl.py)."""

    aggregator: NashMTL

    def head_weights(self) -> torch.Tensor:
        alpha = torch.from_numpy(self.aggregator.weighting.prvs_alpha.copy())
        return alpha.to(super().head_weights())


class FeatureMGDA(Method):
    """MGDA-UB (Sener & Koltun 2018): MGDA weights from the gradients of the losses with respect
    to the shared **features** (an upper bound that costs T small backward passes through the
    heads only), then one backward pass of the weighted sum Σ α_t L_t: the shared parameters
    move along Σ α_t ∇L_t (weights on the simplex: a convex combination, the paper's scale) and,
    with ``heads=weighted`` (the default, as the official code), head t along α_t ∇L_t;
    ``heads=plain`` gives head t ∇L_t (the paper's Algorithm 2, LibMTL). The min-norm problem is
    solved by Frank-Wolfe (the paper's Algorithm 2) until a step γ < ``epsilon`` (1e-3, as
    torchjd and the official code) or ``max_iters``; a smaller ``epsilon`` (1e-8) gets the exact
    min-norm weights to solver precision."""

    uses_weights: ClassVar[bool] = False
    compiles: ClassVar[bool] = True  # gradients w.r.t. the features only, then one backward
    needs_shared_features: ClassVar[bool] = True
    distributes: ClassVar[bool | str] = ("its weights come from the gradients of the shared "
                                         "features, which no process holds whole")

    def __init__(self, epsilon: float = 0.001, max_iters: int = 100,
                 heads: str = "weighted") -> None:
        super().__init__()
        check_heads(heads, "mgda_ub")
        self.heads = heads
        self.weighting = MGDAWeighting(epsilon=epsilon, max_iters=max_iters)

    def backward(self, losses: torch.Tensor, weights: torch.Tensor, ctx: StepContext
                 ) -> torch.Tensor:
        features = ctx.shared_features("mgda_ub")  # its bound is taken there
        logged = torch.dot(weights.to(losses.dtype), losses.detach())
        present = ctx.present()
        if present is not None:  # partial labels: solve over the present objectives only
            if not present:
                return logged
            losses = losses[present]
        rows = [torch.autograd.grad(loss, features, retain_graph=True)[0].flatten()
                for loss in losses.unbind()]
        jacobian = torch.stack(rows)
        alpha = self.weighting(jacobian @ jacobian.T).detach()
        loss = torch.dot(alpha.to(losses.dtype), losses)
        if self.heads == "weighted":
            loss.backward()
            return logged
        heads = head_params(ctx)
        torch.autograd.backward(loss, inputs=ctx.shared_params, retain_graph=bool(heads))
        if heads:
            torch.autograd.backward(losses.sum(), inputs=heads)
        return logged


def _sum_jacobians(params: list[nn.Parameter], shard: Shard) -> None:
    """Each parameter's ``.jac`` (torchjd's field: this process's share of every objective's
    gradient) summed over the processes in one collective, so that every process aggregates
    the global Jacobian."""
    held: list[Any] = [p for p in params if getattr(p, "jac", None) is not None]
    if not held:
        return
    flat = shard.all_reduce(torch.cat([p.jac.reshape(p.jac.shape[0], -1) for p in held], dim=1))
    offset = 0
    for param in held:
        size = param.jac[0].numel()
        param.jac = flat[:, offset:offset + size].reshape(param.jac.shape).to(param.jac.dtype)
        offset += size


def _stateful(module: nn.Module) -> bool:
    """Whether ``module`` holds a torchjd ``Stateful`` part."""
    return any(isinstance(part, Stateful) for part in module.modules())
