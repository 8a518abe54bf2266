"""MoCo and DB-MTL: methods that track each task's gradient across steps.

Both keep, per task, a running estimate of its gradient on the **shared parameters** (a T × P
matrix, P the number of shared parameters) and move the shared parameters along a combination
of those estimates rather than of the batch's own gradients. The Jacobian comes from torchjd's
``mtl_backward`` (one row per task, as for every Jacobian method here); each head gets the
gradient of its own task's (transformed) loss, unweighted, as in LibMTL, whose code the authors
of both methods shared or wrote.

- ``moco`` (Fernando et al., ICLR 2023, "Mitigating Gradient Bias in Multi-objective Learning:
  A Provably Convergent Approach", Algorithm 1): tracked gradients
  y_t ← y_t − β_k (y_t − g_t), weights λ ← P(λ − γ_k (Y Yᵀ + ρ I) λ), direction Yᵀ λ, with the
  step sizes β_k = β / k^{β_σ}, γ_k = γ / k^{γ_σ} at step k = 1, 2, …, y = 0 and λ = 1/T at the
  start. Defaults are LibMTL's (β = 0.5, β_σ = 0.5, γ = 0.1, γ_σ = 0.5, ρ = 0), and so is the
  default form of the authors' code that LibMTL took: each g_t is first rescaled to the norm
  L_t (``normalize``) and P is a softmax (``projection: softmax``). ``normalize: false,
  projection: simplex`` is the paper's Algorithm 1 (P the Euclidean projection on the simplex).
  Scale: the direction is a convex combination of the tracked gradients (of norm L_t when
  normalised), so its scale is that of one task's gradient.
- ``db_mtl`` (Lin et al. 2023, "Dual-Balancing Multi-Task Learning"): loss-scale balancing by
  differentiating log(L_t + 10⁻⁸) instead of L_t, and gradient-magnitude balancing: an EMA of
  each task's gradient ĝ_t ← g_t + β_k (ĝ_t − g_t) (β_k = β / k^{β_σ}; LibMTL's β = 0.9,
  β_σ = 0), then the direction Σ_t α_t ĝ_t with α_t = max_s ‖ĝ_s‖ / (‖ĝ_t‖ + 10⁻⁸): every task
  contributes at the largest task's norm, so the scale is T times that of the largest one.

Partial labels: an objective absent from the batch has no new gradient, so its estimate stays as
it was (a batch without any objective changes nothing). The tracked gradients, the weights and
the step counter are the method's extra state, so runs resume exactly.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from scalarize.errors import ScalarizeError
from scalarize.methods.base import Method, StepContext
from scalarize.methods.jacobian import jacobian_backward


def project_simplex(v: torch.Tensor) -> torch.Tensor:
    """Euclidean projection of ``v`` on the probability simplex (sort-based, Duchi et al. 2008).

    Example:
        >>> project_simplex(torch.tensor([0.5, 0.2, -1.0]))
        tensor([0.6500, 0.3500, 0.0000])
    """
    u = v.sort(descending=True).values
    cumulative = u.cumsum(0) - 1
    k = torch.arange(1, len(v) + 1, device=v.device, dtype=v.dtype)
    rho = int((u - cumulative / k > 0).nonzero().max())
    theta = cumulative[rho] / (rho + 1)
    return (v - theta).clamp(min=0)


class TrackedGradientMethod(Method):
    """Shared parameters moved along :meth:`direction` of the tracked task gradients; the heads
    along the gradients of their own :meth:`transform`-ed losses."""

    uses_weights: ClassVar[bool] = False
    distributes: ClassVar[bool | str] = ("its tracked gradients are not summed over the "
                                         "processes yet")

    def __init__(self) -> None:
        super().__init__()
        self._step = 0  # steps taken (k in the papers' step sizes)
        self._tracked: torch.Tensor | None = None  # T × P, created at the first step

    def transform(self, losses: torch.Tensor) -> torch.Tensor:
        """What is differentiated per task (the losses themselves unless overridden)."""
        return losses

    def direction(self, jacobian: torch.Tensor, losses: torch.Tensor, present: torch.Tensor
                  ) -> torch.Tensor:
        """Update the state from the batch's ``jacobian`` (T × P) and return the direction."""
        raise NotImplementedError

    def _state(self) -> dict[str, Any]:
        return {}

    def _load(self, state: dict[str, Any]) -> None:
        pass

    def get_extra_state(self) -> dict[str, Any]:
        tracked = None if self._tracked is None else self._tracked.detach().clone()
        return {"step": self._step, "tracked": tracked, **self._state()}

    def set_extra_state(self, extra: dict[str, Any] | None) -> None:
        if extra is None:
            return
        self._step = int(extra["step"])
        tracked = extra["tracked"]
        self._tracked = None if tracked is None else tracked.detach().clone()
        self._load(extra)

    def _update(self, old: torch.Tensor, new: torch.Tensor, rate: float,
                present: torch.Tensor) -> torch.Tensor:
        """``old − rate (old − new)`` on the rows of the present objectives; the others stay."""
        moved = old - rate * (old - new)
        return moved.where(present.unsqueeze(1), old)

    def backward(self, losses: torch.Tensor, weights: torch.Tensor, ctx: StepContext
                 ) -> torch.Tensor:
        logged = torch.dot(weights.to(losses.dtype), losses.detach())
        present = (torch.ones_like(losses, dtype=torch.bool) if ctx.counts is None
                   else (ctx.counts > 0).to(losses.device))
        if ctx.counts is not None and not bool(present.any()):
            return logged  # no objective has an example: no step
        params = ctx.shared_params
        chunk = None if losses.device.type == "cuda" else 1
        jacobian_backward(list(self.transform(losses).unbind()), ctx,
                          parallel_chunk_size=chunk)
        jacobian = torch.cat([p.jac.flatten(1) for p in params], dim=1)  # type: ignore[attr-defined]
        for p in params:
            del p.jac  # type: ignore[attr-defined]
        self._step += 1
        if self._tracked is None:
            self._tracked = torch.zeros_like(jacobian)
        self._tracked = self._tracked.to(jacobian)
        vector = self.direction(jacobian, losses.detach().to(jacobian.dtype), present)
        offset = 0
        for p in params:
            grad = vector[offset:offset + p.numel()].view_as(p).to(p.dtype)
            p.grad = grad if p.grad is None else p.grad + grad
            offset += p.numel()
        return logged


class MoCo(TrackedGradientMethod):
    """MoCo: tracked gradients Y, weights λ by a projected step on ½ λᵀ(Y Yᵀ + ρI)λ, direction
    Yᵀ λ (see the module doc for the conventions and where the defaults come from).

    Example:
        >>> method = MoCo(3)
        >>> method.weights()
        tensor([0.3333, 0.3333, 0.3333])
    """

    def __init__(self, n_objectives: int, beta: float = 0.5, beta_sigma: float = 0.5,
                 gamma: float = 0.1, gamma_sigma: float = 0.5, rho: float = 0.0,
                 normalize: bool = True, projection: str = "softmax") -> None:
        super().__init__()
        if projection not in ("softmax", "simplex"):
            raise ScalarizeError(f"method 'moco': unknown projection {projection!r}; choose "
                                 "softmax (the authors' code, LibMTL) or simplex (the paper)")
        self.beta, self.beta_sigma = beta, beta_sigma
        self.gamma, self.gamma_sigma, self.rho = gamma, gamma_sigma, rho
        self.normalize, self.projection = normalize, projection
        self._lambda = torch.full((n_objectives,), 1.0 / n_objectives)

    def weights(self) -> torch.Tensor:
        """The current task weights λ."""
        return self._lambda.clone()

    def _state(self) -> dict[str, Any]:
        return {"lambda": self._lambda.detach().clone()}

    def _load(self, state: dict[str, Any]) -> None:
        self._lambda = state["lambda"].detach().clone()

    def direction(self, jacobian: torch.Tensor, losses: torch.Tensor, present: torch.Tensor
                  ) -> torch.Tensor:
        assert self._tracked is not None
        grads = jacobian
        if self.normalize:  # the authors' code: each gradient rescaled to the norm L_t
            grads = grads / (grads.norm(dim=1, keepdim=True) + 1e-8) * losses.unsqueeze(1)
        k = self._step
        self._tracked = self._update(self._tracked, grads, self.beta / k ** self.beta_sigma,
                                     present)
        y = self._tracked
        lam = self._lambda.to(y)
        eye = torch.eye(len(lam), dtype=y.dtype, device=y.device)
        moved = lam - self.gamma / k ** self.gamma_sigma * ((y @ y.T + self.rho * eye) @ lam)
        lam = moved.softmax(0) if self.projection == "softmax" else project_simplex(moved)
        self._lambda = lam
        return y.T @ lam


class DBMTL(TrackedGradientMethod):
    """DB-MTL: log-loss gradients, EMA-tracked, each scaled to the largest tracked norm (see
    the module doc for the conventions and where the defaults come from)."""

    def __init__(self, n_objectives: int, beta: float = 0.9, beta_sigma: float = 0.0) -> None:
        super().__init__()
        self.beta, self.beta_sigma = beta, beta_sigma

    def transform(self, losses: torch.Tensor) -> torch.Tensor:
        return torch.log(losses + 1e-8)

    def direction(self, jacobian: torch.Tensor, losses: torch.Tensor, present: torch.Tensor
                  ) -> torch.Tensor:
        assert self._tracked is not None
        rate = self.beta / self._step ** self.beta_sigma
        # ĝ ← g + β (ĝ − g), i.e. ĝ − (1 − β)(ĝ − g)
        self._tracked = self._update(self._tracked, jacobian, 1 - rate, present)
        norms = self._tracked.norm(dim=1)
        alpha = norms.max() / (norms + 1e-8)
        return alpha @ self._tracked


def moco(n_objectives: int, beta: float = 0.5, beta_sigma: float = 0.5, gamma: float = 0.1,
         gamma_sigma: float = 0.5, rho: float = 0.0, normalize: bool = True,
         projection: str = "softmax") -> MoCo:
    """MoCo with LibMTL's defaults (the authors' code); see :class:`MoCo`."""
    return MoCo(n_objectives, beta, beta_sigma, gamma, gamma_sigma, rho, normalize, projection)


def db_mtl(n_objectives: int, beta: float = 0.9, beta_sigma: float = 0.0) -> DBMTL:
    """DB-MTL with LibMTL's defaults; see :class:`DBMTL`."""
    return DBMTL(n_objectives, beta, beta_sigma)
