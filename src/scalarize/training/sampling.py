"""Seeded batch samplers. Each epoch's order is a pure function of ``(seed, epoch)``, so a
resumed run sees exactly the batches an uninterrupted one would.

- :class:`ShuffledSampler`: a fresh permutation each epoch (multi-task view).
- :class:`DomainMixtureSampler`: each batch draws its domain counts from Multinomial(B, p) and
  takes that many examples from each domain's own shuffled stream, reshuffled when exhausted, so
  small domains are revisited and large ones are not forced through (the paper's data resampling
  for imbalanced domain sizes). The weights may change between batches (population search does).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch


class ShuffledSampler:
    """Batches of a seeded permutation of ``range(n)``; the last batch may be smaller."""

    def __init__(self, n: int, batch_size: int, seed: int) -> None:
        self.n, self.batch_size, self.seed = n, batch_size, seed

    def __len__(self) -> int:
        return -(-self.n // self.batch_size)

    def set_weights(self, weights: np.ndarray) -> None:
        """Weights do not affect plain shuffling."""

    def iter_epoch(self, epoch: int) -> Iterator[torch.Tensor]:
        order = np.random.default_rng([self.seed, epoch]).permutation(self.n)
        for start in range(0, self.n, self.batch_size):
            yield torch.from_numpy(order[start:start + self.batch_size])


class DomainMixtureSampler:
    """Batches whose domain proportions follow the weights ``p`` in expectation.

    An epoch has ``ceil(N / B)`` batches, N being the total number of training examples.

    Example:
        >>> domains = np.array([0] * 90 + [1] * 10)
        >>> sampler = DomainMixtureSampler(domains, np.array([0.5, 0.5]), batch_size=20, seed=0)
        >>> batch = next(sampler.iter_epoch(0))
        >>> len(batch)
        20
    """

    def __init__(self, domain: np.ndarray, weights: np.ndarray, batch_size: int, seed: int
                 ) -> None:
        self.n_domains = len(weights)
        self.members = [np.flatnonzero(domain == d) for d in range(self.n_domains)]
        self.batch_size, self.seed = batch_size, seed
        self.n = len(domain)
        self.set_weights(weights)

    def __len__(self) -> int:
        return -(-self.n // self.batch_size)

    def set_weights(self, weights: np.ndarray) -> None:
        """Use ``weights`` (on the simplex) from the next batch on."""
        weights = np.asarray(weights, dtype=np.float64)
        empty = [d for d, m in enumerate(self.members) if len(m) == 0 and weights[d] > 0]
        if empty:
            raise ValueError(f"domains {empty} have positive weight but no training examples")
        self.weights = weights / weights.sum()

    def iter_epoch(self, epoch: int) -> Iterator[torch.Tensor]:
        rng = np.random.default_rng([self.seed, epoch])
        streams = [rng.permutation(m) for m in self.members]
        cursors = [0] * self.n_domains
        for _ in range(len(self)):
            counts = rng.multinomial(self.batch_size, self.weights)
            parts = []
            for d, k in enumerate(counts):
                while k > 0:
                    if cursors[d] == len(streams[d]):
                        streams[d], cursors[d] = rng.permutation(self.members[d]), 0
                    take = min(k, len(streams[d]) - cursors[d])
                    parts.append(streams[d][cursors[d]:cursors[d] + take])
                    cursors[d] += take
                    k -= take
            yield torch.from_numpy(np.concatenate(parts))
