"""Ray Tune's searcher and scheduler of the trial strategies on the Ray engine
(:mod:`scalarize.engines.ray_trials`): Optuna's proposals within a member-epoch budget
(:class:`BudgetSearch`) and ASHA drawing a trial's bracket from the search seed
(:class:`SeededASHA`). :class:`BudgetSearch` keeps ``search.population`` trials running within
the member-epoch budget and tells Optuna a stopped member as *pruned*, a diverged one as
*failed*.
"""

from __future__ import annotations

import pickle
from typing import Any, cast

import numpy as np
from ray.tune.experiment import Trial
from ray.tune.schedulers import ASHAScheduler
from ray.tune.search import Searcher

from scalarize.search.optuna_sampling import build_sampler, quiet_optuna, trial_seed


class BudgetSearch(Searcher):
    """Ray's :class:`~ray.tune.search.optuna.OptunaSearch` (``inner``) asked for at most
    ``population`` trials at a time while a whole trial fits in ``budget`` member-epochs (see
    the module docstring); ``FINISHED`` once nothing fits and nothing runs."""

    def __init__(self, inner: Any, sampler: str, seed: int, n_objectives: int,
                 population: int, startup: int, epochs: int, budget: int) -> None:
        super().__init__(metric="score", mode="max")
        self.inner = inner
        self.sampler, self.seed, self.n_objectives = sampler, seed, n_objectives
        self.population, self.startup = population, startup
        self.epochs, self.budget = epochs, budget
        self.asked = 0                          # trials asked: the next member's number
        self.spent = 0                          # member-epochs of finished trials
        self.live: dict[str, list[int]] = {}    # trial id -> [member, epochs trained]

    def committed(self) -> int:
        return self.spent + len(self.live) * self.epochs

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        if len(self.live) >= self.population:
            return None
        if self.budget - self.committed() < self.epochs:
            return None if self.live else cast(Any, Searcher.FINISHED)
        number = self.asked
        self.inner._ot_study.sampler = build_sampler(  # seeded by the trial's number
            self.sampler, trial_seed(self.seed, number), self.n_objectives, self.population,
            self.startup)
        with quiet_optuna():
            params = self.inner.suggest(trial_id)
        if params is None or params == Searcher.FINISHED:
            return params
        self.asked += 1
        self.live[trial_id] = [number, 0]
        return {**params, "member": number}

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        if trial_id in self.live:
            self.live[trial_id][1] = int(result["training_iteration"])
            if not result.get("diverged"):
                self.inner.on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None,
                          error: bool = False) -> None:
        if trial_id not in self.live:
            return
        _, trained = self.live.pop(trial_id)
        if result is not None:
            trained = int(result.get("training_iteration", trained))
        self.spent += trained
        with quiet_optuna():
            if error or result is None or result.get("diverged"):
                self.inner.on_trial_complete(trial_id, None, error=True)   # failed
            elif trained < self.epochs:
                self.inner.on_trial_complete(trial_id, None, error=False)  # pruned
            else:
                self.inner.on_trial_complete(trial_id, result)

    def save(self, checkpoint_path: str) -> None:
        state = {k: v for k, v in self.__dict__.items() if k != "inner"}
        with open(checkpoint_path, "wb") as out:
            pickle.dump({"own": state, "inner": self.inner.__dict__.copy()}, out)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as saved:
            state = pickle.load(saved)
        self.inner.__dict__.update(state["inner"])
        self.__dict__.update(state["own"])


class SeededASHA(ASHAScheduler):
    """Ray's :class:`~ray.tune.schedulers.ASHAScheduler`, drawing a trial's bracket with Ray's
    probabilities from ``(seed, member)`` instead of NumPy's global generator."""

    def __init__(self, seed: int, **options: Any) -> None:
        super().__init__(**options)
        self.seed = seed

    def on_trial_add(self, tune_controller: Any, trial: Trial) -> None:
        sizes = np.array([len(b._rungs) for b in self._brackets])
        probs = np.e ** (sizes - sizes.max())
        rng = np.random.default_rng([self.seed, 104729, int(trial.config.get("member", 0))])
        index = int(rng.choice(len(self._brackets), p=probs / probs.sum()))
        self._trial_info[trial.trial_id] = self._brackets[index]


__all__ = ["BudgetSearch", "SeededASHA"]
