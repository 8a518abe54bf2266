"""How the simplex weights act on training: by weighting losses or by resampling data.

- ``loss``: batches are plain shuffles and the step's weights are ``p`` (MTL, and MDL with
  ``scalarization.mdl_mode=loss``);
- ``resample``: batches are drawn with domain proportions ``p`` and the step's weights are the
  batch's actual domain shares, so the optimised loss is the plain batch mean (the paper's MDL).
"""

from __future__ import annotations

import numpy as np
import torch

from scalarize.benchmarks.base import AnySplit
from scalarize.registry import Registry
from scalarize.training.sampling import DomainMixtureSampler, ShuffledSampler


class LossWeighting:
    """Shuffle the data; weight the per-objective losses by ``p``."""

    def sampler(self, split: AnySplit, weights: np.ndarray, batch_size: int, seed: int
                ) -> ShuffledSampler:
        return ShuffledSampler(len(split), batch_size, seed)

    def step_weights(self, weights: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
        return weights


class DataResampling:
    """Draw batches with domain proportions ``p``; average the loss over the batch."""

    def sampler(self, split: AnySplit, weights: np.ndarray, batch_size: int, seed: int
                ) -> DomainMixtureSampler:
        assert split.domain is not None, "data resampling needs domain labels"
        return DomainMixtureSampler(split.domain, weights, batch_size, seed)

    def step_weights(self, weights: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
        # counts are labelled examples: a batch without any (partial labels) weighs nothing
        return counts / counts.sum().clamp(min=1)


MIXING: Registry[LossWeighting | DataResampling] = Registry("scalarization mode")
MIXING.register("loss")(LossWeighting)
MIXING.register("resample")(DataResampling)
