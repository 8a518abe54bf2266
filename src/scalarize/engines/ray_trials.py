"""The Ray Tune engine of the trial strategies (``tpe``, ``gp``, ``asha``, ``hyperband``):
Optuna proposes through Ray Tune's :class:`~ray.tune.search.optuna.OptunaSearch`, Ray Tune's
:class:`~ray.tune.schedulers.ASHAScheduler` stops members early.

Each proposal is a Ray Tune trial (:class:`TrialTrainable`, ``cpus_per_member`` /
``gpus_per_member`` each) that trains one :class:`~scalarize.search.member.Member` (the same
trainer, held-out split, events and results as on the local engine) one epoch per Tune step,
and reports the average held-out score (``score``) as Tune's metric. :class:`BudgetSearch`
keeps ``search.population`` trials running within the member-epoch budget and tells Optuna a
stopped member as *pruned*, a diverged one as *failed*; :class:`SeededASHA` draws a trial's
Hyperband bracket from the search seed and its member number. The search folder is the local
engine's. What this engine decides differently from the local one (Ray's ASHA rule, timing)
and how far a killed search resumes (``Tuner.restore``: the same budget and records, not the
same next proposals) is in ``docs/search-strategies.md`` ("On Ray").
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import torch
import yaml
from ray.tune.experiment import Trial
from ray.tune.trainable import Trainable

from scalarize.benchmarks import Dataset
from scalarize.engines.ray_tune import ENGINE, MEMBER_FILE, RaySearch, failures, step_metrics
from scalarize.errors import ScalarizeError
from scalarize.registry import restore_session
from scalarize.runs.records import (
    MemberResult,
    SearchPlan,
    SearchSummary,
)
from scalarize.runs.store import SearchDir
from scalarize.schedulers.trials import BudgetSearch, SeededASHA
from scalarize.search.member import Member, search_data
from scalarize.search.optuna_sampling import (
    build_sampler,
    distributions,
    hyperband_brackets,
    import_optuna,
    to_weights,
    trial_seed,
)
from scalarize.search.resolve import ResolvedStrategy, budget_of
from scalarize.search.results import dedupe, stopped_result, trials_summary
from scalarize.search.spec import SearchConfig
from scalarize.training import load_data
from scalarize.weights import SimplexWeights

#: The trial strategies this engine runs (nsga2 and cmaes stay on the local engine).
RAY_TRIAL_STRATEGIES = ("tpe", "gp", "asha", "hyperband")


def ray_refusal(resolved: ResolvedStrategy, config: SearchConfig) -> str | None:
    """Why the Ray engine cannot run the search ``config`` of the ``resolved`` strategy
    (``None``: it can)."""
    strategy = resolved.trials
    if strategy is None:
        return None
    name = config.search.strategy
    if strategy.multi_objective or name not in RAY_TRIAL_STRATEGIES:
        return (f"the {name} strategy is not on the ray engine; run it with --engine local "
                f"(on ray: pbt, pb2, mopbt, grid, random, {', '.join(RAY_TRIAL_STRATEGIES)})")
    sampler = resolved.sampler(config.search.sampler)
    if sampler not in ("random", "tpe", "gp"):
        return (f"search.sampler={sampler} is not on the ray engine; use random, "
                "tpe or gp, or --engine local")
    return None


# -- the trainable: one proposal, one member ----------------------------------------------------
_DATA: dict[str, Dataset] = {}  # a worker's held-out data, by search config (one at a time)


class TrialTrainable(Trainable):
    """One proposal: a member with the config's static weights, one epoch per ``step``; its
    state goes to ``members/m<id>.pt`` after every epoch."""

    def setup(self, config: dict[str, Any], search_yaml: str = "", folder: str = "",
              threads: int = 1, entries: dict[str, dict[str, bytes | None]] | None = None
              ) -> None:
        if entries:
            restore_session(entries)
        if search_yaml not in _DATA:
            _DATA.clear()
            _DATA[search_yaml] = search_data(
                SearchConfig.model_validate(yaml.safe_load(search_yaml)))
        self.search = SearchConfig.model_validate(yaml.safe_load(search_yaml))
        self.data, self.folder = _DATA[search_yaml], SearchDir(folder)
        if self.search.train.threads is None:
            torch.set_num_threads(threads)
        self._start(config)

    def _start(self, config: dict[str, Any]) -> None:
        self.member_id = int(config["member"])
        objectives = self.data.objectives
        params = {k: v for k, v in config.items() if k != "member"}
        point = SimplexWeights(objectives, to_weights(params, len(objectives)))
        self.member = Member.build(self.search, self.data, self.member_id, point)

    def reset_config(self, new_config: dict[str, Any]) -> bool:
        self._start(new_config)  # a reused actor: another proposal
        return True

    def step(self) -> dict[str, Any]:
        member = self.member
        events = list(member.advance(member.epoch + 1))
        self.folder.save_member_checkpoint(self.member_id, member.state_dict())
        metrics = step_metrics(member, self.member_id, member.epoch, events,
                               self.data.objectives, missing=-math.inf)
        metrics["train_seconds"] = member.trainer.train_seconds
        if member.diverged:
            metrics["result"] = member.result().to_json()
            metrics["done"] = True
        elif member.epoch >= self.search.train.epochs:
            metrics["result"] = member.result().to_json()
        return metrics

    def save_checkpoint(self, checkpoint_dir: str) -> None:
        torch.save(self.member.state_dict(), Path(checkpoint_dir) / MEMBER_FILE)

    def load_checkpoint(self, checkpoint: Any) -> None:
        state = torch.load(Path(checkpoint) / MEMBER_FILE, weights_only=False)
        self.member.load_state_dict(state)


class RayTrials(RaySearch):
    """Runs a trial search as Ray Tune trials; see the module docstring."""

    def __init__(self, config: SearchConfig, strategy: ResolvedStrategy, folder: SearchDir,
                 progress: bool | None = None, **options: Any) -> None:
        refusal = ray_refusal(strategy, config)
        if refusal is not None:
            raise ScalarizeError(refusal)
        trials = strategy.trials
        assert trials is not None
        super().__init__(config, strategy, folder, progress, **options)
        self.trials, self.sampler = trials, strategy.sampler(config.search.sampler)

    def _searcher(self, objectives: list[str]) -> BudgetSearch:
        import_optuna(f"the {self.spec.strategy} strategy")
        from ray.tune.search.optuna import OptunaSearch

        startup = self.spec.population if self.spec.startup is None else self.spec.startup
        sampler = self.sampler
        inner = OptunaSearch(space=distributions(len(objectives)), metric="score", mode="max",
                             sampler=build_sampler(sampler, trial_seed(self.config.seed, 0),
                                                   len(objectives), self.spec.population,
                                                   startup),
                             study_name="scalarize")
        return BudgetSearch(inner, sampler, self.config.seed, len(objectives),
                            self.spec.population, startup, self.epochs, budget_of(self.config))

    def _scheduler(self) -> SeededASHA | None:
        if self.trials.pruner is None:
            return None
        fidelity = self.spec.fidelity
        brackets = (1 if self.trials.pruner == "asha" else
                    hyperband_brackets(fidelity.min_epochs, fidelity.reduction, self.epochs))
        return SeededASHA(self.config.seed, time_attr="training_iteration", metric="score",
                          mode="max", max_t=self.epochs, grace_period=fidelity.min_epochs,
                          reduction_factor=fidelity.reduction, brackets=brackets)

    def _tuner(self, objectives: list[str]) -> Any:
        from ray import tune

        trainable = self.trainable(TrialTrainable, folder=str(self.folder.path))
        return self.restored_or(trainable, lambda: tune.Tuner(
            trainable,
            tune_config=tune.TuneConfig(
                search_alg=self._searcher(objectives), scheduler=self._scheduler(),
                num_samples=-1, reuse_actors=True,
                trial_name_creator=_trial_name, trial_dirname_creator=_trial_name),
            run_config=self.run_config(
                budget_of(self.config),
                tune.CheckpointConfig(num_to_keep=2, checkpoint_frequency=self.spec.interval),
                tune.FailureConfig(max_failures=2))))

    def plan(self, objectives: list[str], view: str) -> SearchPlan:
        return SearchPlan(strategy=self.spec.strategy, engine=ENGINE, objectives=objectives,
                          view=view, population=self.spec.population, epochs=self.epochs,
                          interval=self.spec.interval, initial_weights=[])

    def run(self) -> SearchSummary:
        data = load_data(self.config.base())
        objectives = list(data.objectives)
        self.folder.record(self.config, self.plan(objectives, data.view))
        start = time.perf_counter()
        results = self.fit(lambda: self._tuner(objectives))
        errors, last = failures(results)
        if errors:
            raise ScalarizeError(f"{len(errors)} member(s) of the Ray search failed: {last}; "
                                 "run the same command again to continue") from None
        members = []
        for r in results:
            metrics = r.metrics
            if "result" in metrics:
                members.append(MemberResult.model_validate_json(metrics["result"]))
            else:
                point = to_weights({k: v for k, v in r.config.items() if k != "member"},
                                   len(objectives))
                members.append(stopped_result(metrics, objectives, list(point)))
        members.sort(key=lambda m: m.member)
        self.folder.write_events(dedupe(self.folder.read_events()))
        spent = sum(int(r.metrics["training_iteration"]) for r in results)  # one epoch a step
        summary = trials_summary(self.spec.strategy, ENGINE, objectives, self.epochs, members,
                                 spent, time.perf_counter() - start)
        self.folder.write_summary(summary)
        return summary


def _trial_name(trial: Trial) -> str:
    return f"m{int(trial.config.get('member', 0)):02d}"


__all__ = ["RAY_TRIAL_STRATEGIES", "RayTrials", "TrialTrainable", "ray_refusal"]
