"""torchjd 0.18's scalarizers that replace the weighted sum: STCH, PBI, COSMOS, geometric mean.

STCH, PBI and COSMOS take a preference vector; the run's scalarization weights are that vector,
given afresh at every step (so a search or a schedule that moves the weights moves the
preference too). These methods therefore *use* the weights, as ``static`` does, and sweeps and
searches may vary them. The geometric mean of the losses (GLS) takes none and chooses its own.

- ``stch`` (Lin et al. 2024): μ log Σ exp(p_t (L_t − z_t) / μ), a smooth weighted maximum of the
  losses; μ = 0.1 (torchjd has no default; the paper tried 0.01–1 and found small μ good). The
  ideal point z is 0 (losses are non-negative) unless ``reference`` gives one. The paper's MTL
  recipe (log-losses divided by a nadir point averaged over warm-up epochs) is not torchjd's and
  is not reproduced here.
- ``pbi`` (Zhang & Li 2007): distance along the preference direction plus θ = 5 times the
  distance to it (the paper's θ).
- ``cosmos`` (Ruchte & Grabocka 2021): Σ p_t L_t − λ cos(p, L), λ = 1. Only the objective:
  the paper also feeds the preference to the model and samples it from a Dirichlet each step.
- ``geometric_mean``: (Π L_t)^{1/T}; the losses must be positive.

None of them keeps state between steps.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import torch
from torchjd import scalarization
from torchjd.scalarization import Scalarizer

from scalarize.errors import ScalarizeError
from scalarize.methods.base import StepContext
from scalarize.methods.loss_based import ScalarizerMethod


class PreferenceScalarizerMethod(ScalarizerMethod):
    """Backpropagate ``scalarizer(losses)`` with the step's scalarization weights as the
    scalarizer's preference vector (its ``weights``).

    Example:
        >>> from torchjd.scalarization import STCH
        >>> method = PreferenceScalarizerMethod(STCH(mu=0.1))
        >>> losses = torch.tensor([1.0, 2.0], requires_grad=True)
        >>> method.backward(losses, torch.tensor([0.9, 0.1]), None)  # ≈ max(0.9 × 1, 0.1 × 2)
        tensor(0.9001)
        >>> losses.grad  # the gradient follows the larger weighted loss
        tensor([8.9918e-01, 9.1105e-05])
    """

    uses_weights: ClassVar[bool] = True

    def backward(self, losses: torch.Tensor, weights: torch.Tensor, ctx: StepContext
                 ) -> torch.Tensor:
        self.scalarizer.weights = weights.detach().to(losses.dtype)
        return super().backward(losses, weights, ctx)


def _reference(name: str, n_objectives: int, values: Sequence[float] | None
               ) -> torch.Tensor | None:
    if values is None:
        return None
    if len(values) != n_objectives:
        raise ScalarizeError(f"method {name!r}: reference has {len(values)} values for "
                             f"{n_objectives} objectives; give one per objective")
    return torch.tensor([float(v) for v in values])


def _uniform(n_objectives: int) -> torch.Tensor:
    """A placeholder preference until the first step brings the run's weights."""
    return torch.full((n_objectives,), 1.0 / n_objectives)


def stch(n_objectives: int, mu: float = 0.1, reference: Sequence[float] | None = None
         ) -> ScalarizerMethod:
    """Smooth Tchebycheff scalarization with smoothing ``mu`` and ideal point ``reference``."""
    return PreferenceScalarizerMethod(scalarization.STCH(
        mu=mu, weights=_uniform(n_objectives),
        reference=_reference("stch", n_objectives, reference)))


def pbi(n_objectives: int, theta: float = 5.0, reference: Sequence[float] | None = None
        ) -> ScalarizerMethod:
    """Penalty-based boundary intersection with penalty ``theta``."""
    return PreferenceScalarizerMethod(scalarization.PBI(
        theta=theta, weights=_uniform(n_objectives),
        reference=_reference("pbi", n_objectives, reference)))


def cosmos(n_objectives: int, lambda_: float = 1.0) -> ScalarizerMethod:
    """The COSMOS objective with cosine penalty ``lambda_``."""
    return PreferenceScalarizerMethod(scalarization.COSMOS(lambda_=lambda_,
                                                           weights=_uniform(n_objectives)))


def geometric_mean(n_objectives: int) -> ScalarizerMethod:
    """The geometric mean of the losses (GLS); it chooses its own weights."""
    scalarizer: Scalarizer = scalarization.GeometricMean()
    return ScalarizerMethod(scalarizer)
