"""The in-process engine of population search (``scalarize search CONFIG``, the default engine).

It trains the members (:class:`~scalarize.search.member.Member`) in this process, one after
another each interval, and between intervals asks the shared
:class:`~scalarize.search.decide.PopulationPolicy` who copies whom; an exploit copies a member's
state in memory. The search folder (:class:`~scalarize.runs.SearchDir`) gets the config and plan,
``population.jsonl`` (one line per member-epoch and per exploit, appended and flushed), the
summary at the end and, after every interval, the engine state (every member's model,
optimiser, weights and RNG, and the policy's RNG and history, written atomically) from which a
killed search continues with the same result.
"""

from __future__ import annotations

import copy
import math
import time
from typing import Any

from tqdm.auto import tqdm

from scalarize.runs.records import EpochEvent, PopulationEvent, SearchPlan, SearchSummary
from scalarize.runs.store import SearchDir
from scalarize.search.decide import PopulationPolicy, initial_points, search_plan
from scalarize.search.member import Member, search_data
from scalarize.search.resolve import ResolvedStrategy
from scalarize.search.results import search_summary
from scalarize.search.spec import SearchConfig

ENGINE = "local"


class LocalPopulation:
    """Trains the population of the search ``config`` (its ``strategy`` resolved once) in this
    process, member after member each interval. Deterministic: the same config and seed give
    the same result, also across a kill and a re-run."""

    def __init__(self, config: SearchConfig, strategy: ResolvedStrategy, folder: SearchDir,
                 progress: bool | None = None) -> None:
        self.config, self.folder, self.progress = config, folder, progress
        self.spec = config.search
        self.data = search_data(config)
        self.objectives = self.data.objectives
        self.points = initial_points(config, self.objectives, strategy.strategy)
        self.members = [Member.build(config, self.data, i, point)
                        for i, point in enumerate(self.points)]
        self.policy = PopulationPolicy.for_search(config, self.objectives, strategy.strategy)
        self.generation = 0
        self.epochs = config.train.epochs

    def plan(self) -> SearchPlan:
        return search_plan(self.config, ENGINE, self.data.view, self.points)

    # -- persistence --------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"generation": self.generation, **self.policy.state_dict(),
                "members": [m.state_dict() for m in self.members]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generation = state["generation"]
        self.policy.load_state_dict(state)
        for member, saved in zip(self.members, state["members"], strict=True):
            member.load_state_dict(saved)

    def _restore(self) -> None:
        """Continue from the saved state; drop the lines of the interval a kill cut short."""
        state = self.folder.load_state()
        if state is not None:
            self.load_state_dict(state)
        done_epoch = min(self.epochs, self.generation * self.spec.interval)
        self.folder.write_events([e for e in self.folder.read_events() if e.epoch <= done_epoch])

    # -- the search ---------------------------------------------------------------------------
    def run(self) -> SearchSummary:
        if self.folder.record(self.config, self.plan()):
            self._restore()
        start = time.perf_counter()
        n_gen = math.ceil(self.epochs / self.spec.interval)
        done = min(self.epochs, self.generation * self.spec.interval) * len(self.members)
        with tqdm(total=len(self.members) * self.epochs, initial=done, unit="member-epoch",
                  desc=f"search ({self.spec.strategy})", dynamic_ncols=True,
                  disable=None if self.progress is None else not self.progress) as bar:
            while self.generation < n_gen:
                begin = self.generation * self.spec.interval
                end = min(self.epochs, begin + self.spec.interval)
                for member in self.members:
                    self._train(member, begin, end, bar)
                self._boundary(end)
                self.generation += 1
                self.folder.save_state(self.state_dict())
        return self._finish(time.perf_counter() - start)

    def _train(self, member: Member, begin: int, end: int, bar: tqdm) -> None:
        """Train ``member`` from epoch ``begin`` to ``end``, logging its events."""
        shown = 0
        for event in member.advance(end):
            self._log([event])
            if isinstance(event, EpochEvent):
                bar.update(1)
                shown += 1
        bar.update(end - begin - shown)  # a diverged member's frozen epochs

    def _log(self, events: list[PopulationEvent]) -> None:
        self.folder.append_events(events)

    def _boundary(self, epoch: int) -> None:
        """Every member has trained to ``epoch``: exploit and explore if the strategy does."""
        if self.policy.decides_at(epoch, self.epochs):
            self._exploit_explore(epoch)

    def _exploit_explore(self, epoch: int) -> None:
        decision = self.policy.decide(epoch, [m.scores() for m in self.members],
                                      [m.weights for m in self.members])
        for target, source in decision.pairs.items():
            self.members[target].copy_from(copy.deepcopy(self.members[source].state_dict()),
                                           source, epoch, decision.weights[target])
        self._log(list(decision.events()))

    def _finish(self, seconds: float) -> SearchSummary:
        summary = search_summary(self.spec.strategy, ENGINE, list(self.objectives),
                                 self.epochs, [m.result() for m in self.members], seconds)
        self.folder.write_summary(summary)
        return summary


__all__ = ["LocalPopulation"]
