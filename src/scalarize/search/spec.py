"""The search config: a run config (the recipe every member trains with; ``train.epochs`` is each
member's budget) plus a ``search`` section::

    search:
      strategy: pbt          # any registered strategy: pbt | pb2 | mopbt | grid | random |
                             # tpe | gp | cmaes | nsga2 | asha | hyperband
      population: 8          # members (grid: the number of grid points)
      interval: 2            # epochs between exploit/explore steps
      quantile: 0.25         # worst quarter copies a member of the best quarter
      explore: {scale: 0.5, resample_probability: 0.25}
      holdout: 0.3           # share of the training split that ranks members (seeded)
      budget: 32             # member-epochs (default: population × train.epochs)

The trial strategies (``tpe``, ``gp``, ``cmaes``, ``nsga2``, ``asha``, ``hyperband``; see
:mod:`scalarize.search.trials`) train ``population`` members at a time, each with static
weights proposed by an Optuna sampler, until ``budget`` member-epochs are spent; ``interval``
is then the epochs between saved states. ``asha`` and ``hyperband`` propose with ``sampler``
(random, tpe, gp or cmaes) and stop members early at the rungs of ``fidelity`` (Hyperband: the
first rung of each bracket)::

      strategy: asha
      sampler: tpe
      fidelity: {min_epochs: 1, reduction: 3}   # rank at epochs 1, 3, 9, …; keep the best third
      startup: 8             # tpe/gp: random until 8 trials finished (default: population)

Example:
    >>> config = SearchConfig.model_validate({"search": {"strategy": "pb2", "population": 4}})
    >>> config.search.strategy, config.search.interval, config.base().train.epochs
    ('pb2', 2, 10)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field

from scalarize.config import StudyConfig, _Section, load_study_config
from scalarize.search.explore import SimplexExplore


class Fidelity(_Section):
    """The rungs of successive halving (strategies ``asha``, ``hyperband``): members are
    ranked at epochs ``min_epochs · reduction^k`` and only the best ``1/reduction`` at each
    rung go on."""

    min_epochs: int = Field(1, ge=1, description="epochs before the first rung")
    reduction: int = Field(3, ge=2, description="rung spacing and the share kept (1/reduction)")


class SearchSpec(_Section):
    """The ``search`` section (see the module docstring)."""

    strategy: str = "pbt"
    population: int = Field(8, ge=2, description="members (a search needs at least two)")
    interval: int = Field(2, ge=1, description="epochs between exploit/explore steps")
    quantile: float = Field(0.25, gt=0, le=0.5)
    explore: SimplexExplore = Field(default_factory=SimplexExplore)
    holdout: float = Field(0.3, gt=0, lt=1, description="share of train that ranks members")
    alpha: float = Field(1.0, gt=0, description="Dirichlet concentration of initial points")
    grid_step: float = Field(0.25, gt=0, le=1, description="grid strategy: simplex grid step")
    points: list[Any] | None = Field(None, description="explicit initial weights (any "
                                     "weights spec), instead of the strategy's")
    budget: int | None = Field(None, ge=1, description="member-epochs the search may spend "
                               "(default: population × train.epochs)")
    sampler: str | None = Field(None, description="asha, hyperband: the proposals (random | "
                                "tpe | gp | cmaes; default random)")
    fidelity: Fidelity = Field(default_factory=Fidelity)
    startup: int | None = Field(None, ge=0, description="tpe/gp: random proposals until this "
                                "many trials finished (default: population)")


class SearchConfig(StudyConfig):
    """A run config (the recipe of every member) plus its ``search`` section."""

    search: SearchSpec = Field(default_factory=SearchSpec)


def load_search_config(path: Path | str, overrides: list[str] | None = None) -> SearchConfig:
    """A search config from YAML with overrides (see the module docstring)."""
    return load_study_config(SearchConfig, "search", "configs/shapes_pbt.yaml", path, overrides)


__all__ = ["Fidelity", "SearchConfig", "SearchSpec", "load_search_config"]
