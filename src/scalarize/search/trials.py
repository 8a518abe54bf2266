"""The trial strategies' loop: Optuna proposes, members train, their held-out scores are told
back.

A *trial* strategy (``tpe``, ``gp``, ``cmaes``, ``nsga2``, ``asha``, ``hyperband``;
:class:`~scalarize.search.strategies.TrialStrategy`) has no population that lives through the
search: an Optuna sampler proposes static weights (:mod:`scalarize.search.optuna_sampling`), a
member trains with them on the held-out split, and its held-out score is told to Optuna
(ask/tell), which proposes the next members from it. :class:`TrialSearch` decides what to ask,
when to stop a member and what to record; the engine gives it the members (the local engine's
train in this process: :mod:`scalarize.engines.trials`). How it spends its budget
(``search.budget`` member-epochs, ``search.population`` trials at a time), stops members early
(``asha``, ``hyperband``), scores, records and resumes (bit for bit, from Optuna's journal in the
search folder) is in ``docs/search-strategies.md`` ("The trial loop", "Files, resume, replay").

Example (``configs/shapes_tpe_asha.yaml``)::

    scalarize search configs/shapes_tpe_asha.yaml --out searches/asha
    scalarize search configs/shapes_pbt.yaml --strategy tpe search.budget=64 --out searches/tpe
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

import numpy as np
from tqdm.auto import tqdm

from scalarize.errors import ScalarizeError
from scalarize.runs.records import MemberResult, PopulationEvent, SearchPlan, SearchSummary
from scalarize.runs.store import SearchDir
from scalarize.search.optuna_sampling import (
    build_pruner,
    build_sampler,
    distributions,
    import_optuna,
    journal_storage,
    quiet_optuna,
    to_params,
    to_weights,
    trial_seed,
)
from scalarize.search.resolve import ResolvedStrategy, budget_of, check_search
from scalarize.search.results import trials_summary
from scalarize.search.spec import SearchConfig
from scalarize.weights import SimplexWeights, parse_weights

STUDY = "scalarize"  # the study's name in the journal


class TrialMember(Protocol):
    """What the loop asks of a member (a :class:`~scalarize.search.member.Member`; tests stand
    one in with scripted scores)."""

    id: int
    diverged: bool

    @property
    def epoch(self) -> int: ...

    def advance(self, end: int) -> Iterator[PopulationEvent]: ...

    def scores(self) -> list[float] | None: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...

    def result(self) -> MemberResult: ...


BuildMember = Callable[[int, SimplexWeights], TrialMember]


class TrialSearch:
    """The trial loop of the module docstring for the search ``config`` of the ``resolved``
    strategy, recorded as run on ``engine``: ``build_member`` gives the member of a trial's
    number and weights over ``objectives`` of the data's ``view`` (tests give scripted members,
    which train nothing)."""

    def __init__(self, config: SearchConfig, resolved: ResolvedStrategy, folder: SearchDir,
                 progress: bool | None = None, *, build_member: BuildMember,
                 objectives: Sequence[str], engine: str, view: str = "mtl") -> None:
        strategy = resolved.trials
        if strategy is None:
            raise ScalarizeError(f"{config.search.strategy} is not a trial strategy")
        self.config, self.folder, self.progress = config, folder, progress
        self.spec, self.strategy, self.engine = config.search, strategy, engine
        self.objectives, self.view, self.build_member = tuple(objectives), view, build_member
        check_search(config, self.objectives, resolved)
        self.sampler = resolved.sampler(config.search.sampler)
        self.epochs = config.train.epochs
        self.budget = budget_of(config)
        self.startup = self.spec.population if self.spec.startup is None else self.spec.startup
        self.space = distributions(len(self.objectives))
        # the engine state (saved every search.interval rounds)
        self.rounds = 0
        self.spent = 0
        self.slots: list[int | None] = [None] * self.spec.population
        self.members: dict[int, TrialMember] = {}
        self.results: list[MemberResult] = []
        self.events = 0
        self.study: Any = None

    # -- the plan, the study ------------------------------------------------------------------
    def points(self) -> list[SimplexWeights]:
        """``search.points``, the first trials (enqueued in the study), as members hold them."""
        if self.spec.points is None:
            return []
        return [parse_weights(p, self.objectives) for p in self.spec.points]

    def plan(self) -> SearchPlan:
        return SearchPlan(strategy=self.spec.strategy, engine=self.engine,
                          objectives=list(self.objectives), view=self.view,
                          population=self.spec.population, epochs=self.epochs,
                          interval=self.spec.interval,
                          initial_weights=[list(p.values) for p in self.points()])

    def _open_study(self, state: dict[str, Any] | None) -> None:
        """The study in the folder's journal: cut back to the saved state, or a new one."""
        optuna = import_optuna(f"the {self.spec.strategy} strategy")
        if state is None:
            self.folder.truncate_journal(0)
            self.folder.write_events([])
        else:
            self.folder.truncate_journal(state["journal_bytes"])
            self.folder.write_events(self.folder.read_events()[:state["events"]])
        directions = (["maximize"] * len(self.objectives) if self.strategy.multi_objective
                      else ["maximize"])
        fidelity = self.spec.fidelity
        pruner = (build_pruner(fidelity.min_epochs, fidelity.reduction, self.strategy.pruner,
                               self.epochs)
                  if self.strategy.pruner is not None else optuna.pruners.NopPruner())
        self.study = optuna.create_study(
            storage=journal_storage(self.folder.optuna_journal), study_name=STUDY,
            directions=directions, pruner=pruner, load_if_exists=True,
            sampler=optuna.samplers.RandomSampler(seed=self.config.seed))
        if state is None:
            for point in self.points():
                self.study.enqueue_trial(to_params(point.values))
            self.save()
        else:
            self.load_state_dict(state)

    # -- persistence --------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"rounds": self.rounds, "spent": self.spent, "slots": list(self.slots),
                "members": {n: m.state_dict() for n, m in self.members.items()},
                "results": [r.dump() for r in self.results],
                "journal_bytes": self.folder.journal_size(), "events": self.events}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rounds, self.spent = state["rounds"], state["spent"]
        self.slots, self.events = list(state["slots"]), state["events"]
        self.results = [MemberResult.model_validate(r) for r in state["results"]]
        self.members = {}
        for number, saved in state["members"].items():
            member = self._member(int(number))
            member.load_state_dict(saved)
            self.members[int(number)] = member

    def save(self) -> None:
        self.folder.save_state(self.state_dict())

    # -- the loop -----------------------------------------------------------------------------
    def run(self) -> SearchSummary:
        resumed = self.folder.record(self.config, self.plan())
        start = time.perf_counter()
        with quiet_optuna():
            self._open_study(self.folder.load_state() if resumed else None)
            with tqdm(total=self.budget, initial=self.spent, unit="member-epoch",
                      desc=f"search ({self.spec.strategy})", dynamic_ncols=True,
                      disable=None if self.progress is None else not self.progress) as bar:
                while self._fill():
                    for slot, number in enumerate(self.slots):
                        if number is not None:
                            self._step(slot, number)
                            bar.update(1)
                    self.rounds += 1
                    if self.rounds % self.spec.interval == 0:
                        self.save()
        return self._finish(time.perf_counter() - start)

    def committed(self) -> int:
        """Member-epochs spent plus those the running trials may still spend."""
        return self.spent + sum(self.epochs - m.epoch for m in self.members.values())

    def _fill(self) -> bool:
        """Ask a trial into every free slot while a whole one fits in the budget; whether any
        trial is running."""
        for slot, number in enumerate(self.slots):
            if number is None and self.budget - self.committed() >= self.epochs:
                self.slots[slot] = self._ask()
        return any(n is not None for n in self.slots)

    def _ask(self) -> int:
        """The next proposal: a new member (its number is the trial's)."""
        trials = self.study.get_trials(deepcopy=False)
        waiting = [t.number for t in trials if t.state.name == "WAITING"]  # search.points
        number = waiting[0] if waiting else len(trials)
        self._use_sampler(number)
        trial = self.study.ask(self.space)
        if trial.number != number:
            raise ScalarizeError(f"{self.folder.optuna_journal} holds trials this search did "
                                 "not ask; delete the folder to restart the search")
        self.members[number] = self._member(number)
        return int(number)

    def _use_sampler(self, number: int) -> None:
        """The study's sampler is trial ``number``'s (seeded by the number) while it is asked
        and told, so that a resumed study proposes as an uninterrupted one."""
        self.study.sampler = build_sampler(
            self.sampler, trial_seed(self.config.seed, number), len(self.objectives),
            self.spec.population, self.startup)

    def _member(self, number: int) -> TrialMember:
        params = self.study.get_trials(deepcopy=False)[number].params
        point = SimplexWeights(self.objectives, to_weights(params, len(self.objectives)))
        return self.build_member(number, point)

    def _trial(self, number: int) -> Any:
        optuna = import_optuna("a trial strategy")
        frozen = self.study.get_trials(deepcopy=False)[number]
        return optuna.trial.Trial(self.study, frozen._trial_id)

    def _step(self, slot: int, number: int) -> None:
        """Train trial ``number`` one epoch; tell Optuna when it finished, stopped or
        diverged."""
        member = self.members[number]
        events = list(member.advance(member.epoch + 1))
        self.folder.append_events(events)
        self.events += len(events)
        self.spent += 1
        scores = member.scores()
        if member.diverged or scores is None:
            self._tell(number, state="FAIL")
            self._done(slot, number, None)
            return
        average = float(np.mean(scores))
        if member.epoch >= self.epochs:
            self._tell(number, values=[float(s) for s in scores]
                       if self.strategy.multi_objective else [average])
            self._done(slot, number, None)
        elif self.strategy.prunes:
            trial = self._trial(number)
            trial.report(average, member.epoch)
            if trial.should_prune():
                self._tell(number, state="PRUNED")
                self._done(slot, number, member.epoch)

    def _tell(self, number: int, values: list[float] | None = None, state: str = "COMPLETE"
              ) -> None:
        optuna = import_optuna("a trial strategy")
        self._use_sampler(number)
        self.study.tell(number, values, state=optuna.trial.TrialState[state])

    def _done(self, slot: int, number: int, stopped: int | None) -> None:
        member = self.members.pop(number)
        self.folder.save_member_checkpoint(number, member.state_dict())
        result = member.result()
        self.results.append(result.model_copy(update={"stopped_epoch": stopped}))
        self.slots[slot] = None

    def _finish(self, seconds: float) -> SearchSummary:
        members = sorted(self.results, key=lambda r: r.member)
        summary = trials_summary(self.spec.strategy, self.engine, list(self.objectives),
                                 self.epochs, members, self.spent, seconds)
        self.folder.write_summary(summary)
        return summary


__all__ = ["BuildMember", "TrialMember", "TrialSearch"]
