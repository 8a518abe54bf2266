"""The engine contract: the same scores give the same decisions on every engine.

For every registered strategy, the in-process engine's boundary step
(:meth:`LocalPopulation._boundary` over stand-in members) and the Ray engine's scheduler
(:class:`PolicyPBT`, driven through Ray's own ``on_trial_result`` with stand-in trials and
controller, no cluster) are fed the same held-out scores over several interval boundaries — ties
at the top and the bottom, a whole population that ties, a diverged member — with the same seed.
Both must make the same exploits (who copies whom) and move the copies to the same weights, bit
for bit, and log the same exploit events. The Ray side gets its trials and results in a shuffled
order, as a cluster would deliver them.
"""

from __future__ import annotations

import math
import random
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from ray.tune.schedulers import TrialScheduler
from ray.tune.schedulers.pbt import _PBTTrialState

from scalarize.engines.population import LocalPopulation
from scalarize.runs import SearchDir
from scalarize.runs.records import ExploitEvent
from scalarize.schedulers.population import PolicyPBT
from scalarize.search.decide import PopulationPolicy
from scalarize.search.resolve import resolve_strategy
from scalarize.search.spec import SearchConfig
from scalarize.search.strategies import STRATEGIES
from scalarize.weights import SimplexWeights

OBJECTIVES = ("a", "b", "c")
N, EPOCHS, SEED = 8, 6, 3

_rng = np.random.default_rng(11)
START = [SimplexWeights(OBJECTIVES, tuple(float(v) for v in _rng.dirichlet([1.0] * 3)))
         for _ in range(N)]
DIVERGED = None
SCORES: list[list[list[float] | None]] = [
    # epoch 1: ties at the top (m0, m1) and at the bottom (m2, m4); m3 diverged
    [[0.6, 0.4, 0.5], [0.6, 0.4, 0.5], [0.3, 0.3, 0.3], DIVERGED, [0.3, 0.3, 0.3],
     [0.9, 0.1, 0.5], [0.1, 0.9, 0.5], [0.5, 0.5, 0.5]],
    # epoch 2: the whole population ties, but for m1, which diverged
    [[0.5, 0.5, 0.5], DIVERGED, [0.5, 0.5, 0.5], [0.5, 0.5, 0.5], [0.5, 0.5, 0.5],
     [0.5, 0.5, 0.5], [0.5, 0.5, 0.5], [0.5, 0.5, 0.5]],
    # epochs 3-5: scattered scores (pb2's bandit has observations from here on)
    *[[list(row) for row in np.random.default_rng(e).uniform(0.2, 0.9, (N, 3))]
      for e in (3, 4, 5)],
]


def _policy(strategy: str) -> PopulationPolicy:
    config = SearchConfig.model_validate({"seed": SEED, "search": {"strategy": strategy}})
    return PopulationPolicy(resolve_strategy(config.search).strategy, 0.25, OBJECTIVES, SEED)


# -- the in-process engine, its members standing in ----------------------------------------------
class StandInMember:
    """What the local engine asks of a member at a boundary, without a trainer."""

    def __init__(self, member: int, weights: SimplexWeights) -> None:
        self.id, self.weights = member, weights
        self.current: list[float] | None = None
        self.copied: tuple[int, SimplexWeights] | None = None

    def scores(self) -> list[float] | None:
        return self.current

    def state_dict(self) -> dict[str, Any]:
        return {"member": self.id}

    def copy_from(self, state: dict[str, Any], parent: int, epoch: int,
                  weights: SimplexWeights) -> None:
        assert state == {"member": parent}
        self.copied, self.weights = (parent, weights), weights


def local_decisions(strategy: str, folder: SearchDir) -> list[dict[int, tuple[int, Any]]]:
    engine = LocalPopulation.__new__(LocalPopulation)  # no data, no trainers: the boundary only
    engine.policy, engine.epochs, engine.folder = _policy(strategy), EPOCHS, folder
    engine.members = [StandInMember(i, w) for i, w in enumerate(START)]
    decisions = []
    for epoch, scores in enumerate(SCORES, start=1):
        for member, row in zip(engine.members, scores, strict=True):
            member.current, member.copied = row, None
        engine._boundary(epoch)
        decisions.append({m.id: (m.copied[0], m.copied[1].values)
                          for m in engine.members if m.copied is not None})
    return decisions


# -- the Ray engine: its scheduler through Ray's own hooks, trials standing in ------------------
class StandInTrial:
    """The parts of a Tune trial that Ray's PBT touches."""

    def __init__(self, member: int) -> None:
        self.trial_id = f"search_{member:05d}"
        self.config: dict[str, Any] = {"member": member}
        self.status = "PAUSED"
        self.checkpoint: str | None = None
        self.experiment_tag = f"m{member}"
        self.temporary_state = SimpleNamespace(saving_to=None)
        self.is_saving = False  # a save here is done at once (StandInController)
        self.run_metadata = SimpleNamespace(
            checkpoint_manager=SimpleNamespace(_latest_checkpoint_result=None))
        self.weights = START[member]  # what its member trains with (restored from the config)

    def is_finished(self) -> bool:
        return False

    def set_experiment_tag(self, tag: str) -> None:
        self.experiment_tag = tag

    def set_config(self, config: dict[str, Any]) -> None:
        self.config = config

    def __repr__(self) -> str:
        return self.trial_id


class StandInController:
    def __init__(self, trials: list[StandInTrial], epoch: int) -> None:
        self.trials, self.epoch = trials, epoch

    def get_trials(self) -> list[StandInTrial]:
        return self.trials

    def get_live_trials(self) -> list[StandInTrial]:
        return self.trials

    def pause_trial(self, trial: StandInTrial, should_checkpoint: bool = True) -> None:
        trial.status = "PAUSED"

    def _schedule_trial_train(self, trial: StandInTrial) -> None:
        assert trial.status == "RUNNING"  # a member that waited at the boundary goes on

    def _schedule_trial_save(self, trial: StandInTrial, result: dict[str, Any] | None = None
                             ) -> str:
        return _checkpoint(trial, self.epoch)


def _checkpoint(trial: StandInTrial, epoch: int) -> str:
    return f"{trial.config['member']}@{epoch}"


def _result(trial: StandInTrial, epoch: int, row: list[float] | None) -> dict[str, Any]:
    """What the trainable reports at a boundary (``MemberTrainable.step``)."""
    member = int(trial.trial_id.rsplit("_", 1)[-1])
    return {"member": member, "epoch": epoch, "training_iteration": epoch,
            "diverged": row is None, "score": math.nan if row is None else sum(row) / len(row),
            **{f"val_{o}": math.nan if row is None else v
               for o, v in zip(OBJECTIVES, row or [math.nan] * 3, strict=True)},
            **{f"w_{o}": w for o, w in zip(OBJECTIVES, trial.weights.values, strict=True)}}


def ray_decisions(strategy: str, recorded: list[ExploitEvent]
                  ) -> list[dict[int, tuple[int, Any]]]:
    scheduler = PolicyPBT(_policy(strategy), N, EPOCHS, 1, recorded.extend)
    trials = [StandInTrial(i) for i in range(N)]
    shuffled = random.Random(5).sample(trials, N)  # Ray's own order, not the members'
    for trial in shuffled:
        scheduler._trial_state[trial] = _PBTTrialState(trial)
    decisions = []
    for epoch, scores in enumerate(SCORES, start=1):
        controller = StandInController(shuffled, epoch)
        order = random.Random(epoch).sample(shuffled, N)  # results arrive in any order
        for trial in trials:
            trial.status = "PAUSED"
            trial.run_metadata.checkpoint_manager._latest_checkpoint_result = None
        for k, trial in enumerate(order):  # two slots: this member and the next one run
            trial.status = "RUNNING"
            if k + 1 < N:
                order[k + 1].status = "RUNNING"
            trial.checkpoint = _checkpoint(trial, epoch)
            result = _result(trial, epoch, scores[int(trial.trial_id[-5:])])
            decision = scheduler.on_trial_result(controller, trial, result)
            if decision == TrialScheduler.PAUSE:
                trial.status = "PAUSED"  # Tune checkpoints and pauses it
            else:  # the second last waits holding its slot, the last one goes on
                assert k >= N - 2 and trial.status == "RUNNING"
        scheduler.choose_trial_to_run(controller)  # targets paused at the boundary copy now
        decision = {}
        for trial in trials:
            copied = trial.run_metadata.checkpoint_manager._latest_checkpoint_result
            if copied is None:
                continue
            source, at = copied.checkpoint.split("@")
            assert int(at) == epoch
            weights = SimplexWeights.restore({o: trial.config[f"w{i}"]
                                              for i, o in enumerate(OBJECTIVES)})
            trial.weights = weights  # as the trainable restores it
            decision[int(trial.trial_id[-5:])] = (int(source), weights.values)
        decisions.append(decision)
    return decisions


@pytest.mark.parametrize("strategy", STRATEGIES.names())
def test_both_engines_make_the_same_decisions(strategy, tmp_path):
    folder = SearchDir(tmp_path)
    local = local_decisions(strategy, folder)
    recorded: list[ExploitEvent] = []
    ray = ray_decisions(strategy, recorded)
    assert ray == local
    assert recorded == folder.read_events()  # the same exploit lines in population.jsonl
    if not _policy(strategy).adaptive:
        assert local == [{}] * len(SCORES)
        return
    assert sum(len(d) for d in local) >= 5
    first, ties, *_ = local
    assert 3 in first and 1 in ties  # a diverged member is always replaced...
    assert 3 not in {s for s, _ in first.values()} and 1 not in {s for s, _ in ties.values()}
    keys = _policy(strategy).strategy.keys(np.full((N, 3), 0.5))
    if len(set(keys)) == 1:  # ...and where equal scores rank equal, ties copy nobody else
        assert set(ties) == {1}
    for decision in local:
        for target, (source, weights) in decision.items():
            assert target != source and math.isclose(sum(weights), 1.0)
