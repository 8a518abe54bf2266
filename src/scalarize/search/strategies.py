"""Search strategies: where a population starts, how members are ranked, how weights move.

Every engine (in-process or Ray Tune) uses these; a strategy never trains anything. The
population strategies (``pbt``, the paper's method, ``pb2``, ``mopbt``, and the fixed-weight
baselines ``grid`` and ``random``) exploit and explore through
:class:`~scalarize.search.decide.PopulationPolicy`. The *trial* strategies
(:class:`TrialStrategy`: Optuna's ``tpe``, ``gp``, ``cmaes`` and ``nsga2``, and ``asha`` and
``hyperband``, which stop members early) propose static weights one member at a time until the
search's budget of member-epochs is spent (:mod:`scalarize.search.trials`; the simplex
coordinates are in :mod:`scalarize.search.optuna_sampling`). Each class below says what it
does; ``docs/search-strategies.md`` compares them.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from scalarize.errors import ScalarizeError
from scalarize.registry import Registry
from scalarize.search.explore import SimplexExplore
from scalarize.search.policy import Key, pareto_keys
from scalarize.search.simplex import simplex_grid


@dataclass
class Observation:
    """One member over one interval: when it ended, its weights, how much its score changed."""

    epoch: int
    weights: list[float]
    change: float


@dataclass
class Strategy:
    """Fixed weights (no exploit, no explore); subclasses adapt them."""

    explorer: SimplexExplore = field(default_factory=SimplexExplore)
    alpha: float = 1.0
    grid_step: float = 0.25
    adaptive = False
    trial_based = False  # True: proposals one trial at a time (search.trials), no population

    def initial_weights(self, population: int, n_objectives: int, rng: np.random.Generator
                        ) -> list[np.ndarray]:
        return [rng.dirichlet([self.alpha] * n_objectives) for _ in range(population)]

    def keys(self, val_acc: np.ndarray) -> list[Key]:
        """Ranking keys from per-member, per-objective held-out accuracies (rows: members)."""
        return [float(row.mean()) if np.all(np.isfinite(row)) else float("-inf")
                for row in val_acc]

    def explore(self, weights: np.ndarray, rng: np.random.Generator, epoch: int,
                history: list[Observation]) -> np.ndarray:
        return self.explorer.perturb(weights, rng)

    def options(self) -> dict[str, Any]:
        return {}


STRATEGIES: Registry[Strategy] = Registry("search strategy")


@STRATEGIES.register("random")
class RandomSearch(Strategy):
    """Dirichlet(α) samples, trained for the whole budget without exploit or explore: a
    baseline at a stated compute."""


@STRATEGIES.register("grid")
class GridSearch(Strategy):
    """Every point of a regular simplex grid (``search.grid_step``), trained for the budget."""

    def initial_weights(self, population: int, n_objectives: int, rng: np.random.Generator
                        ) -> list[np.ndarray]:
        return [np.array(p) for p in simplex_grid(n_objectives, self.grid_step)]


@STRATEGIES.register("pbt")
class PBT(Strategy):
    """Population-based training, the paper's method: members start at Dirichlet samples; at
    each interval the worst quantile copies a member of the best (by average held-out
    accuracy) and perturbs its weights in log space
    (:class:`~scalarize.search.explore.SimplexExplore`)."""

    adaptive = True


@STRATEGIES.register("mopbt")
class MultiObjectivePBT(PBT):
    """PBT ranked by Pareto front, then crowding distance, over the per-objective held-out
    accuracies instead of their average (the paper's suggested future work)."""

    def keys(self, val_acc: np.ndarray) -> list[Key]:
        return pareto_keys(val_acc)


@STRATEGIES.register("pb2")
class PB2(PBT):
    """PBT whose explore is a GP bandit (Parker-Holder et al. 2020): a Gaussian process
    (scikit-learn) models the change of the held-out score over an interval from (time,
    weights); the new weights maximise its upper confidence bound among candidates near the
    copied point and across the simplex."""

    candidates: int = 128
    kappa: float = 2.0

    def explore(self, weights: np.ndarray, rng: np.random.Generator, epoch: int,
                history: list[Observation]) -> np.ndarray:
        if len(history) < 3:  # too little data for a GP: explore like PBT
            return self.explorer.perturb(weights, rng)
        try:
            from sklearn.exceptions import ConvergenceWarning
            from sklearn.gaussian_process import GaussianProcessRegressor
            from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel
        except ImportError:
            raise ScalarizeError("the pb2 strategy needs scikit-learn: "
                                 "pip install -c constraints.txt 'scalarize[ray]'") from None
        x = np.array([[o.epoch, *o.weights] for o in history], dtype=np.float64)
        y = np.array([o.change for o in history], dtype=np.float64)
        scale = max(1.0, float(x[:, 0].max()))
        x[:, 0] /= scale
        kernel = (ConstantKernel(1.0) * RBF(0.5, length_scale_bounds=(0.05, 10.0))
                  + WhiteKernel(1e-2, noise_level_bounds=(1e-6, 1.0)))
        gp = GaussianProcessRegressor(kernel, normalize_y=True, random_state=0,
                                      n_restarts_optimizer=0)
        with warnings.catch_warnings():  # a few noisy points: bounds are hit, that is fine
            warnings.simplefilter("ignore", ConvergenceWarning)
            gp.fit(x, y)
        half = self.candidates // 2
        pool = [self.explorer.perturb(weights, rng) for _ in range(half)]
        pool += list(rng.dirichlet([self.alpha] * len(weights), size=self.candidates - half))
        grid = np.array([[epoch / scale, *p] for p in pool])
        mean, std = gp.predict(grid, return_std=True)
        return np.asarray(pool[int(np.argmax(mean + self.kappa * std))])


class TrialStrategy(Strategy):
    """Static weights proposed by an Optuna sampler one trial at a time
    (:mod:`scalarize.search.trials` runs them; nothing of the population's exploit/explore
    applies: ``adaptive`` is False, so a population engine's policy never moves a member)."""

    trial_based = True
    sampler: str = "random"      # the Optuna sampler (scalarize.search.optuna_sampling)
    multi_objective = False      # True: one held-out score per objective is told to Optuna
    pruner: str | None = None    # the early-stopping rule (optuna_sampling.PRUNERS), if any

    @property
    def prunes(self) -> bool:
        """Whether members stop early at epoch rungs (``search.sampler`` proposes them)."""
        return self.pruner is not None


@STRATEGIES.register("tpe")
class TPESearch(TrialStrategy):
    """Optuna's Tree-structured Parzen Estimator (multivariate, constant liar)."""

    sampler = "tpe"


@STRATEGIES.register("gp")
class GPSearch(TrialStrategy):
    """Optuna's Gaussian-process sampler (log expected improvement)."""

    sampler = "gp"


@STRATEGIES.register("cmaes")
class CmaEsSearch(TrialStrategy):
    """Optuna's CMA-ES sampler with its own generation size, started at the centre of the
    simplex coordinates (three objectives or more)."""

    sampler = "cmaes"


@STRATEGIES.register("nsga2")
class NSGA2Search(TrialStrategy):
    """Optuna's NSGA-II over the per-objective held-out scores (a generation of
    ``search.population`` trials): a Pareto front of static weights, like ``mopbt``'s."""

    sampler = "nsga2"
    multi_objective = True


@STRATEGIES.register("asha")
class ASHASearch(TrialStrategy):
    """Asynchronous successive halving over static weights proposed by ``search.sampler``
    (random, tpe, gp, cmaes): members that rank low at an epoch rung (``search.fidelity``)
    stop early."""

    pruner = "asha"


@STRATEGIES.register("hyperband")
class HyperbandSearch(TrialStrategy):
    """Hyperband (Li et al. 2018): ASHA in ``⌊log_reduction(epochs / min_epochs)⌋ + 1``
    brackets of later and later first rungs, a trial's bracket drawn from its number, over
    static weights proposed by ``search.sampler``; the last bracket trains every trial to the
    end. Hedges against a first rung too early to rank weights."""

    pruner = "hyperband"


def build_strategy(name: str, explorer: SimplexExplore, alpha: float, grid_step: float
                   ) -> Strategy:
    """The strategy ``name`` with the search section's settings."""
    return STRATEGIES.get(name)(explorer=explorer, alpha=alpha, grid_step=grid_step)
