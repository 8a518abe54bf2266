"""The search config: a run config (the recipe every member trains with; ``train.epochs`` is each
member's budget) plus a ``search`` section::

    search:
      strategy: pbt          # any registered strategy: pbt | pb2 | mopbt | grid | random
      population: 8          # members (grid: the number of grid points)
      interval: 2            # epochs between exploit/explore steps
      quantile: 0.25         # worst quarter copies a member of the best quarter
      explore: {scale: 0.5, resample_probability: 0.25}
      holdout: 0.3           # share of the training split that ranks members (seeded)

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


class SearchConfig(StudyConfig):
    """A run config (the recipe of every member) plus its ``search`` section."""

    search: SearchSpec = Field(default_factory=SearchSpec)


def load_search_config(path: Path | str, overrides: list[str] | None = None) -> SearchConfig:
    """A search config from YAML with overrides (see the module docstring)."""
    return load_study_config(SearchConfig, "search", "configs/shapes_pbt.yaml", path, overrides)


__all__ = ["SearchConfig", "SearchSpec", "load_search_config"]
