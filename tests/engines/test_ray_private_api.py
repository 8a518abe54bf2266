"""The private parts of Ray Tune (and of Ray's Optuna searcher) that the Ray engines rely on,
checked by name and signature: Ray may change them in any release, so ``ray[tune]`` is pinned to
the tested range (``constraints.txt``, the ``ray`` extra), and an upgrade that moves one fails
here with the names to look at, instead of deep inside a search.

- :class:`~scalarize.schedulers.population.PolicyPBT` overrides and calls private methods of
  :class:`~ray.tune.schedulers.PopulationBasedTraining`, reads its private state, and asks
  Tune's controller to go on with a waiting trial (no public "go on" exists; one still
  saving its checkpoint of the decision goes on once the save is in), to save a
  restored source again, to hold a requeued target paused and to requeue a member Tune
  stopped for good when a dead idle actor was reused for it (ending that actor's reset, which
  Tune leaves unfinished, and counting the death once although Tune reports it twice); it reads
  a requeued trial's restore point and failures, and waits for a save's future with a
  deadline;
- :class:`~scalarize.schedulers.trials.SeededASHA` draws the bracket of a trial in place of
  :class:`~ray.tune.schedulers.ASHAScheduler`'s ``on_trial_add``;
- :class:`~scalarize.schedulers.trials.BudgetSearch` re-seeds the sampler of Ray's
  :class:`~ray.tune.search.optuna.OptunaSearch` study per trial.
"""

from __future__ import annotations

import inspect
from types import SimpleNamespace
from typing import Any

import pytest

pytest.importorskip("ray.tune")

# name -> the parameters (after self) the engines call or override it with
PBT_METHODS = {
    "_quantiles": [],
    "_exploit": ["tune_controller", "trial", "trial_to_clone"],
    "_checkpoint_or_exploit": ["trial", "tune_controller", "upper_quantile", "lower_quantile"],
    "_get_new_config": ["trial", "trial_to_clone"],
    "_save_trial_state": ["state", "time", "result", "trial"],
    # a killed member's trial, requeued by Tune: Ray's on_trial_add resets its state
    "on_trial_add": ["tune_controller", "trial"],
    "on_trial_error": ["tune_controller", "trial"],
}
PBT_STATE = ["_trial_state", "_time_attr", "_metric", "_perturbation_interval",
             "_next_perturbation_sync"]
PBT_TRIAL_STATE = ["last_perturbation_time", "last_train_time", "last_result",
                   "last_checkpoint"]


def _parameters(function: Any) -> list[str]:
    return [p for p in inspect.signature(function).parameters if p != "self"]


def _changed(owner: type, expected: dict[str, list[str]]) -> list[str]:
    """``name(parameters)`` of each expected method that is missing or takes others."""
    out = []
    for name, parameters in expected.items():
        method = getattr(owner, name, None)
        if method is None:
            out.append(f"{owner.__qualname__}.{name} (missing)")
        elif _parameters(method) != parameters:
            out.append(f"{owner.__qualname__}.{name}{tuple(_parameters(method))}, expected "
                       f"{tuple(parameters)}")
    return out


def _missing(obj: object, names: list[str]) -> list[str]:
    return [f"{type(obj).__qualname__}.{n} (missing)" for n in names if not hasattr(obj, n)]


def _fail_on(changed: list[str]) -> None:
    if changed:
        import ray

        pytest.fail(f"Ray {ray.__version__} changed private names the Ray engines rely on: "
                    f"{'; '.join(changed)}. Adapt scalarize/schedulers/ and "
                    "scalarize/engines/ray_*.py to it, or keep ray[tune] in the range pinned "
                    "in constraints.txt and pyproject's ray extra.")


def test_population_based_training_keeps_the_private_hooks_policy_pbt_overrides():
    from ray.tune.schedulers import PopulationBasedTraining, pbt

    changed = _changed(PopulationBasedTraining, PBT_METHODS)
    scheduler = PopulationBasedTraining(time_attr="training_iteration", metric="score",
                                        mode="max", perturbation_interval=1,
                                        custom_explore_fn=lambda config: config, synch=True)
    changed += _missing(scheduler, PBT_STATE)
    state_type = getattr(pbt, "_PBTTrialState", None)
    if state_type is None:
        changed.append("ray.tune.schedulers.pbt._PBTTrialState (missing)")
    else:
        state = state_type(SimpleNamespace(experiment_tag="m00"))  # a trial's one field
        changed += _missing(state, PBT_TRIAL_STATE)
    future = getattr(pbt, "_FutureTrainingResult", None)
    if future is None or not hasattr(future, "resolve"):
        changed.append("ray.tune.schedulers.pbt._FutureTrainingResult.resolve (missing)")
    elif not hasattr(future(None), "future"):  # the ObjectRef PolicyPBT waits on
        changed.append("ray.tune.schedulers.pbt._FutureTrainingResult.future (missing)")
    _fail_on(changed)


def test_the_tune_controller_still_schedules_a_trial_to_train():
    from ray.tune.execution.tune_controller import TuneController

    changed = _changed(TuneController, {"_schedule_trial_train": ["trial"],
                                       "_schedule_trial_save": ["trial", "result"],
                                       "_set_trial_status": ["trial", "status"],
                                       "_requeue_trial": ["trial"],
                                       "_unstage_trial_with_resources": ["trial"]})
    source = inspect.getsource(TuneController.__init__)  # attributes set there
    for name in ("_staged_trials", "_resetting_trials", "_trial_to_actor",
                 "_cached_trial_decisions"):
        if f"self.{name}" not in source:
            changed.append(f"TuneController.{name} (missing)")
    reuse = inspect.getsource(TuneController._maybe_reuse_cached_actor)
    ended = inspect.getsource(TuneController._on_trial_reset)
    if ("self._resetting_trials" not in reuse  # a resetting trial gets no new actor, and
            or "self._resetting_trials.remove" not in ended):  # only its reset's result ends
        changed.append("TuneController._resetting_trials (how a reset ends changed)")
    # a decision cached while a trial saves runs once the save is in
    saved = inspect.getsource(TuneController._process_trial_save)
    after = inspect.getsource(TuneController._on_saving_result)
    if ("self._cached_trial_decisions.pop" not in saved
            or "self._maybe_execute_queued_decision" not in after):
        changed.append("TuneController._cached_trial_decisions (a save no longer runs it)")
    _fail_on(changed)


def test_a_trial_still_says_whether_it_recovers_and_from_where():
    from ray.tune.experiment import Trial, trial

    changed = _changed(Trial, {"should_recover": []})
    if not hasattr(Trial, "latest_checkpoint_result"):
        changed.append("Trial.latest_checkpoint_result (missing)")
    metadata = getattr(trial, "_TrainingRunMetadata", None)  # a trial's run_metadata
    if metadata is None:
        changed.append("ray.tune.experiment.trial._TrainingRunMetadata (missing)")
    else:
        changed += _missing(metadata(), ["num_failures"])
    _fail_on(changed)


def test_asha_keeps_the_brackets_seeded_asha_draws_from():
    from ray.tune.schedulers import ASHAScheduler

    scheduler = ASHAScheduler(time_attr="training_iteration", metric="score", mode="max",
                              max_t=4, grace_period=1, reduction_factor=2, brackets=2)
    changed = _missing(scheduler, ["_brackets", "_trial_info"])
    if not changed:
        changed += _missing(scheduler._brackets[0], ["_rungs"])
    changed += _changed(ASHAScheduler, {"on_trial_add": ["tune_controller", "trial"]})
    _fail_on(changed)


def test_optuna_search_keeps_its_study_where_budget_search_reseeds_it():
    pytest.importorskip("optuna")
    from optuna.distributions import FloatDistribution
    from ray.tune.search.optuna import OptunaSearch

    from scalarize.search.optuna_sampling import quiet_optuna

    with quiet_optuna():
        searcher = OptunaSearch(space={"z0": FloatDistribution(0.0, 1.0)}, metric="score",
                                mode="max")
    _fail_on(_missing(searcher, ["_ot_study"]))


def test_a_changed_name_fails_with_the_names_to_look_at():
    class Changed:
        def _quantiles(self, extra: int) -> None: ...

    changed = _changed(Changed, {"_quantiles": [], "_exploit": ["trial"]})
    assert changed == ["test_a_changed_name_fails_with_the_names_to_look_at.<locals>.Changed"
                       "._quantiles('extra',), expected ()",
                       "test_a_changed_name_fails_with_the_names_to_look_at.<locals>.Changed"
                       "._exploit (missing)"]
    with pytest.raises(pytest.fail.Exception, match=r"Ray .* changed private names .*"
                       r"_exploit \(missing\)"):
        _fail_on(changed)
