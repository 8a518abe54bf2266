"""The conflict probe's own batch: ``examples`` labelled training examples per objective, twice.

With ``probes.conflicts.examples`` the probe does not measure on the training step's batch
(where an objective weighted 0.1 may have three examples): at each probed step it draws, for
every objective, ``2 × examples`` distinct training examples that count for it (MDL: of its
domain; MTL: labelled for its task), whatever the weights, and splits them into two halves
``a`` and ``b`` of ``examples`` each. The cross-objective cosines compare the objectives'
gradients on their ``a`` halves; the same-objective control compares each objective's gradient
on ``a`` with its gradient on ``b``. Both cosines are then between gradients of ``examples``
examples each, drawn independently, so the control is the share of negative cosines that
sampling noise alone gives at the same batch size: the floor to read a cross-objective share
against. (Halves of one draw rather than a third batch: every gradient the probe takes enters a
comparison, and the ``a`` halves serve both.)

The draw is a pure function of ``(seed, step)`` (its own NumPy generator, never the training
RNG), so a resumed run probes exactly the examples an uninterrupted one does.

Example:
    >>> pools = [np.arange(0, 10), np.arange(10, 13)]
    >>> draw = draw_probe(pools, examples=2, seed=0, step=4)
    >>> [len(a) for a in draw.a], [len(b) for b in draw.b]
    ([2, 1], [2, 1])
    >>> draw.counts  # the second pool holds 3 examples: 1 per half, and the rest goes unused
    [2, 1]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from scalarize.errors import ScalarizeError
from scalarize.training.data import Batch, ServedSplit, TensorSplit
from scalarize.training.objectives import Objectives

#: Mixed into the probe's seed so that its stream differs from every other seeded stream.
PROBE_STREAM = 0x70726F6265


@dataclass(frozen=True)
class ProbeDraw:
    """Per objective, the training indices of the two halves (``a``, ``b``); an objective
    with fewer than two examples to draw has empty halves."""

    a: list[np.ndarray]
    b: list[np.ndarray]

    @property
    def counts(self) -> list[int]:
        """Examples per half, per objective (equal halves by construction)."""
        return [len(a) for a in self.a]

    @property
    def index(self) -> torch.Tensor:
        """Every drawn index, ``a`` halves then ``b`` halves, objective by objective."""
        return torch.from_numpy(np.concatenate([*self.a, *self.b]).astype(np.int64))


def objective_pools(objectives: Objectives, split: ServedSplit) -> list[np.ndarray]:
    """Per objective, the training indices that count for it (its domain, its labels)."""
    if not isinstance(split, TensorSplit):
        raise ScalarizeError("probes.conflicts.examples draws from the training split in "
                             "memory, and this benchmark streams it; remove examples from "
                             "probes.conflicts to probe the training batches")
    whole = Batch(x=split.x[:0], labels=split.labels, domain=split.domain)
    members = objectives.membership(whole).cpu().numpy()
    return [np.flatnonzero(row) for row in members]


def draw_probe(pools: list[np.ndarray], examples: int, seed: int, step: int) -> ProbeDraw:
    """Two disjoint halves of ``examples`` indices per pool (fewer, still equal, where a pool
    holds fewer than ``2 × examples``), drawn without replacement from a generator seeded by
    ``(seed, step)`` alone."""
    rng = np.random.default_rng([seed, step, PROBE_STREAM])
    a, b = [], []
    for pool in pools:
        half = min(examples, len(pool) // 2)
        chosen = rng.choice(pool, 2 * half, replace=False) if half else pool[:0]
        a.append(chosen[:half])
        b.append(chosen[half:])
    return ProbeDraw(a, b)
