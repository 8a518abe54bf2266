"""Jacobian aggregators with options of their own: CAGrad's ``rescale``, Nash-MTL's heads, and
torchjd 0.18's newer aggregators: FairGrad, ExcessMTL, PCD and CR-MOGM.

Each is a torchjd :class:`~torchjd.aggregation.Aggregator` behind the same
:class:`~scalarize.methods.jacobian.JacobianMethod` as PCGrad or UPGrad (``mtl_backward``, then
``jac_to_grad``); none takes a preference vector, so the run's weights only scale what is logged.

- ``cagrad`` (Liu et al. 2021): d = g₀ + (√φ / ‖g_w‖) g_w with g₀ the **mean** gradient, c = 0.4
  (the paper's multi-task value), then divided by 1 (``rescale=0``, the default: torchjd's, and
  every run before the option existed), 1 + c² (``rescale=1``: the official code's and LibMTL's
  default) or 1 + c (``rescale=2``). The rescaling only changes the step length.
- ``nash_mtl`` (Navon et al. 2022): see :class:`~scalarize.methods.jacobian.NashMTLMethod`.
- ``fairgrad`` (Ban & Ji 2024): α-fair allocation of the update, α = 2 as in the authors' runs.
- ``excess_mtl`` (He et al. 2024): weights moved by each task's excess risk, estimated from
  running sums of squared gradients. Those sums have the shape of the Jacobian (T × shared
  parameters), so the method holds one more Jacobian-sized tensor, and checkpoints it.
- ``pcd`` (Priority-Constrained Descent): follows the **first** objective's gradient (the first
  task of ``benchmark.tasks``) while each other objective keeps a fraction τ of its own
  normalised progress; not symmetric in the tasks by design.
- ``cr_mogm`` (Zhou et al. 2022): an exponential moving average (α) of another Gramian
  weighting's weights across steps; ``base`` picks it (MGDA, the paper's main case, by default).
  Partial labels: the base weighting solves over the objectives present in the batch (an absent
  one gets weight 0 before smoothing); given the zero row, MGDA would put all its weight there
  and stop the shared parameters.

All four keep what they learn (running sums, moving averages, smoothed weights) in the method's
``state_dict()`` (:mod:`scalarize.methods.state`), so runs resume exactly.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torchjd import aggregation
from torchjd.aggregation import Weighting

from scalarize.errors import ScalarizeError
from scalarize.methods.base import StepContext
from scalarize.methods.jacobian import JacobianMethod, NashMTLMethod
from scalarize.methods.state import place

#: the Gramian weightings CR-MOGM can smooth (``cr_mogm``'s ``base`` option)
CR_MOGM_BASES: dict[str, Callable[[], Weighting]] = {
    "mgda": lambda: aggregation.MGDAWeighting(),
    "upgrad": lambda: aggregation.UPGradWeighting(),
    "cagrad": lambda: aggregation.CAGradWeighting(c=0.4),
    "imtl_g": lambda: aggregation.IMTLGWeighting(),
    "dualproj": lambda: aggregation.DualProjWeighting(),
    "aligned_mtl": lambda: aggregation.AlignedMTLWeighting(),
    "pcgrad": lambda: aggregation.PCGradWeighting(),
}


class PlacedJacobianMethod(JacobianMethod):
    """A :class:`JacobianMethod` whose aggregator keeps state beside the Jacobian: state restored
    from a checkpoint (loaded on the CPU) is moved to the losses' device before each step, or
    the aggregator would take it for another problem's and start afresh."""

    def backward(self, losses: torch.Tensor, weights: torch.Tensor, ctx: StepContext
                 ) -> torch.Tensor:
        place(self.aggregator, losses.device)
        return super().backward(losses, weights, ctx)


class _PresentOnly(Weighting[torch.Tensor]):
    """``weighting`` over the Gramian of the objectives in ``present`` (all when ``None``); the
    others get weight 0."""

    def __init__(self, weighting: Weighting) -> None:
        super().__init__()
        self.weighting = weighting
        self.present: list[int] | None = None

    def forward(self, gramian: torch.Tensor, /) -> torch.Tensor:
        if self.present is None:
            return self.weighting(gramian)
        index = torch.tensor(self.present, device=gramian.device)
        weights = gramian.new_zeros(gramian.shape[0])
        weights[index] = self.weighting(gramian[index][:, index])
        return weights


class _CRMOGMMethod(PlacedJacobianMethod):
    """CR-MOGM whose base weighting sees only the batch's present objectives."""

    def __init__(self, aggregator: aggregation.Aggregator, base: _PresentOnly) -> None:
        super().__init__(aggregator)
        self.base = base

    def backward(self, losses: torch.Tensor, weights: torch.Tensor, ctx: StepContext
                 ) -> torch.Tensor:
        self.base.present = ctx.present()
        return super().backward(losses, weights, ctx)


class _Rescaled(Weighting[torch.Tensor]):
    """``weighting``'s weights times ``factor``."""

    def __init__(self, weighting: Weighting, factor: float) -> None:
        super().__init__()
        self.inner = weighting
        self.factor = factor

    def forward(self, gramian: torch.Tensor, /) -> torch.Tensor:
        return self.inner(gramian) * self.factor


#: CAGrad's ``rescale``: the step is divided by 1, 1 + c² or 1 + c (the official code's options)
CAGRAD_RESCALE: dict[int, Callable[[float], float]] = {
    0: lambda c: 1.0, 1: lambda c: 1.0 + c * c, 2: lambda c: 1.0 + c}


def cagrad(n_objectives: int, c: float = 0.4, rescale: int = 0, norm_eps: float = 1e-4,
           heads: str = "plain") -> JacobianMethod:
    """CAGrad with radius ``c`` and the official code's ``rescale`` (0: none, today's default).

    Example:
        >>> round(cagrad(2, rescale=1).aggregator.gramian_weighting.factor, 6)  # 1 / (1 + 0.4²)
        0.862069
    """
    if rescale not in CAGRAD_RESCALE:
        raise ScalarizeError(f"method 'cagrad': rescale={rescale!r} is not one of 0, 1, 2 (the "
                             "step is divided by 1, 1 + c² or 1 + c); set method.options.rescale")
    cagrad_ = aggregation.CAGrad(c=c, norm_eps=norm_eps)
    if not rescale:
        return JacobianMethod(cagrad_, heads=heads)
    weighting = _Rescaled(cagrad_.gramian_weighting, 1.0 / CAGRAD_RESCALE[rescale](c))
    return JacobianMethod(aggregation.GramianWeightedAggregator(weighting), heads=heads)


def nash_mtl(n_objectives: int, max_norm: float = 1.0, update_weights_every: int = 1,
             optim_niter: int = 20, heads: str = "weighted") -> JacobianMethod:
    """Nash-MTL with the official code's defaults (``max_norm`` 1, weights solved every step,
    20 iterations of the concave-convex procedure) and its weighted heads."""
    return NashMTLMethod(aggregation.NashMTL(
        n_tasks=n_objectives, max_norm=max_norm, update_weights_every=update_weights_every,
        optim_niter=optim_niter), heads=heads)


def fairgrad(n_objectives: int, alpha: float = 2.0, max_iters: int | None = None,
             heads: str = "plain") -> JacobianMethod:
    """FairGrad with fairness ``alpha`` (0: the mean gradient; 1: proportional fairness)."""
    return JacobianMethod(aggregation.FairGrad(alpha=alpha, max_iters=max_iters), heads=heads)


def excess_mtl(n_objectives: int, robust_step_size: float = 1.0, n_warmup_steps: int = 0,
               heads: str = "plain") -> JacobianMethod:
    """ExcessMTL; ``n_warmup_steps`` > 0 averages the baseline excess risk over that many
    steps (the paper suggests three epochs' worth) instead of taking the first step's."""
    return PlacedJacobianMethod(aggregation.ExcessMTL(robust_step_size=robust_step_size,
                                                      n_warmup_steps=n_warmup_steps),
                                 heads=heads)


def pcd(n_objectives: int, tau: float = 0.02, beta: float = 0.999, eps: float = 1e-8,
        heads: str = "plain") -> JacobianMethod:
    """Priority-Constrained Descent with the first objective as the primary one."""
    return PlacedJacobianMethod(aggregation.PCD(tau=tau, beta=beta, eps=eps), heads=heads)


def cr_mogm(n_objectives: int, base: str = "mgda", alpha: float = 0.9) -> JacobianMethod:
    """CR-MOGM: weights of the Gramian weighting ``base`` smoothed by an EMA with ``alpha``."""
    if base not in CR_MOGM_BASES:
        raise ScalarizeError(f"method 'cr_mogm': unknown base {base!r}; choose one of: "
                             f"{', '.join(CR_MOGM_BASES)}")
    present_only = _PresentOnly(CR_MOGM_BASES[base]())
    weighting = aggregation.CRMOGMWeighting(present_only, alpha=alpha)
    return _CRMOGMMethod(aggregation.GramianWeightedAggregator(weighting), present_only)
