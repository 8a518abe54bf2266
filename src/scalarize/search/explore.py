"""Explore: move a point of the simplex to a nearby point of the simplex.

Ray Tune's default perturbation multiplies a value by 0.8 or 1.2; applied to every weight and
renormalised it is a no-op, so scalarization weights are perturbed in log space instead: each
log-weight gets independent Gaussian noise and the result is mapped back by a softmax. The point
always moves (the noise is continuous) and never leaves the simplex. With probability
``resample_probability`` the point is instead drawn afresh from a symmetric Dirichlet(α).

Example:
    >>> rng = np.random.default_rng(0)
    >>> new = SimplexExplore(scale=0.5).perturb(np.array([0.5, 0.5]), rng)
    >>> bool(abs(new.sum() - 1) < 1e-12 and (new > 0).all() and new[0] != 0.5)
    True
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from scalarize.config import _Section


class SimplexExplore(_Section):
    """Log-space Gaussian perturbation with a Dirichlet resample (``search.explore``)."""

    scale: float = Field(0.5, gt=0, description="std of the noise added to each log-weight")
    resample_probability: float = Field(0.25, ge=0, le=1,
                                        description="chance of a fresh Dirichlet draw instead")
    alpha: float = Field(1.0, gt=0, description="Dirichlet concentration of a resample")
    floor: float = Field(1e-3, gt=0, lt=1,
                         description="weights below this count as this in log space, so a "
                                     "zero weight can come back")

    def perturb(self, weights: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A new point of the simplex near ``weights`` (or a fresh one on a resample)."""
        weights = np.asarray(weights, dtype=np.float64)
        if rng.random() < self.resample_probability:
            return rng.dirichlet([self.alpha] * len(weights))
        logits = np.log(np.maximum(weights, self.floor))
        logits = logits + rng.normal(0.0, self.scale, size=len(weights))
        logits -= logits.max()
        out = np.exp(logits)
        return out / out.sum()
