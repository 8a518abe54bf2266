"""The decisions of a population search, one piece of code for every engine.

At each interval boundary an engine hands :meth:`PopulationPolicy.decide` the members'
per-objective held-out scores (``None`` for a member that diverged) and their current weights;
the policy ranks them with the strategy's keys, draws who copies whom
(:func:`~scalarize.search.policy.exploit_pairs`) and explores the copied weights
(:meth:`~scalarize.search.strategies.Strategy.explore`), keeping its own RNG and the observation
history PB2's bandit learns from. The in-process engine calls it between intervals; the Ray
engine calls it from Ray Tune's PBT hooks. The same scores, seed and history give the same
:class:`Decision` on both, which ``tests/engines/test_engine_contract.py`` checks.

Example:
    >>> from scalarize.search.strategies import build_strategy
    >>> from scalarize.search.explore import SimplexExplore
    >>> policy = PopulationPolicy(build_strategy("pbt", SimplexExplore(), 1.0, 0.25), 0.25,
    ...                           ("a", "b"), seed=0)
    >>> w = SimplexWeights(("a", "b"), (0.5, 0.5))
    >>> decision = policy.decide(1, [[0.9, 0.8], [0.5, 0.5], [0.6, 0.7], None], [w] * 4)
    >>> decision.pairs
    {3: 0}
    >>> decision.weights[3] != w
    True
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from scalarize.errors import ScalarizeError
from scalarize.runs.records import ExploitEvent, SearchPlan
from scalarize.search.policy import exploit_pairs
from scalarize.search.spec import SearchConfig
from scalarize.search.strategies import Observation, Strategy
from scalarize.weights import SimplexWeights, parse_weights

Scores = Sequence[float] | None  # one member's held-out score per objective; None: diverged


@dataclass(frozen=True)
class Decision:
    """One exploit/explore step: who copies whom and the weights each copy moves to."""

    epoch: int
    pairs: dict[int, int]                  # {replaced member: member it copies}
    weights: dict[int, SimplexWeights]     # {replaced member: its explored weights}
    before: dict[int, SimplexWeights]      # {replaced member: its weights until now}

    def events(self) -> list[ExploitEvent]:
        """The ``population.jsonl`` lines of this step, by replaced member."""
        return [ExploitEvent(member=target, epoch=self.epoch, parent=source,
                             weights_before=self.before[target], weights=self.weights[target])
                for target, source in self.pairs.items()]


class PopulationPolicy:
    """Exploit and explore for one search: the strategy, the quantile, a seeded RNG, the
    history of observations and each member's last score. Its state (:meth:`state_dict`)
    travels with the engine's, so a resumed search decides as an uninterrupted one."""

    def __init__(self, strategy: Strategy, quantile: float, objectives: Sequence[str],
                 seed: int) -> None:
        self.strategy, self.quantile = strategy, quantile
        self.objectives = tuple(objectives)
        self.rng = np.random.default_rng([seed, 15485863])
        self.history: list[Observation] = []
        self.last_score: dict[int, float] = {}

    @classmethod
    def for_search(cls, config: SearchConfig, objectives: Sequence[str], strategy: Strategy
                   ) -> PopulationPolicy:
        """The policy of the search ``config`` deciding with its resolved ``strategy``."""
        return cls(strategy, config.search.quantile, objectives, config.seed)

    @property
    def adaptive(self) -> bool:
        """False for fixed-weight strategies (grid, random): no step ever changes a member."""
        return bool(self.strategy.adaptive)

    def decides_at(self, epoch: int, epochs: int) -> bool:
        """Whether an exploit/explore step follows ``epoch`` (never after the last one)."""
        return self.adaptive and epoch < epochs

    def decide(self, epoch: int, scores: Sequence[Scores], weights: Sequence[SimplexWeights]
               ) -> Decision:
        """The step after ``epoch`` from member ``i``'s ``scores[i]`` and ``weights[i]``."""
        if len(scores) != len(weights):
            raise ValueError(f"{len(scores)} members scored but {len(weights)} weighted")
        acc = np.array([[math.nan] * len(self.objectives) if s is None else list(s)
                        for s in scores], dtype=np.float64)
        avg = acc.mean(axis=1)
        for member in range(len(scores)):
            score = float(avg[member])
            if math.isfinite(score) and member in self.last_score:
                self.history.append(Observation(epoch, list(weights[member].values),
                                                score - self.last_score[member]))
            self.last_score[member] = score
        pairs = exploit_pairs(self.strategy.keys(acc), self.quantile, self.rng)
        explored: dict[int, SimplexWeights] = {}
        for target, source in pairs.items():
            new = self.strategy.explore(np.array(weights[source].values), self.rng, epoch,
                                        self.history)
            explored[target] = SimplexWeights(self.objectives, tuple(float(w) for w in new))
            self.last_score[target] = self.last_score.get(source, math.nan)
        return Decision(epoch, pairs, explored, {t: weights[t] for t in pairs})

    def state_dict(self) -> dict[str, Any]:
        return {"rng": self.rng.bit_generator.state,
                "history": [vars(o) for o in self.history], "last_score": self.last_score}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]
        self.history = [Observation(**o) for o in state["history"]]
        self.last_score = {int(k): v for k, v in state["last_score"].items()}


def initial_points(config: SearchConfig, objectives: Sequence[str], strategy: Strategy
                   ) -> list[SimplexWeights]:
    """Every member's initial weights: ``search.points`` or the seeded points of ``strategy``
    (the search's, resolved once: :func:`~scalarize.search.resolve.resolve_strategy`).

    A strategy's point is kept exactly as drawn (a Dirichlet sample sums to one up to
    rounding): each member's trainer normalises it once, as every search of this release
    did, so the same seed gives the same members."""
    spec = config.search
    if spec.points is not None:
        points = [parse_weights(p, objectives) for p in spec.points]
    else:
        rng = np.random.default_rng([config.seed, 104729])
        drawn = strategy.initial_weights(spec.population, len(objectives), rng)
        points = [SimplexWeights.restore(dict(zip(objectives, (float(w) for w in p),
                                                  strict=True))) for p in drawn]
    if not points:
        raise ScalarizeError("the search has no members; set search.population or "
                             "search.points")
    return points


def search_plan(config: SearchConfig, engine: str, view: str,
                points: Sequence[SimplexWeights]) -> SearchPlan:
    """``search.json`` of the search ``config`` on ``engine``: its initial weights as each
    member's trainer holds them (normalised once)."""
    return SearchPlan(strategy=config.search.strategy, engine=engine,
                      objectives=list(points[0].names), view=view, population=len(points),
                      epochs=config.train.epochs, interval=config.search.interval,
                      initial_weights=[list(SimplexWeights(p.names, p.values).values)
                                       for p in points])


__all__ = ["Decision", "PopulationPolicy", "Scores", "initial_points", "search_plan"]
