"""The summary of a finished search, the same for every engine (``summary.json``, a
:class:`~scalarize.runs.records.SearchSummary`): members, their schedules and lineage, the
member selected by held-out average accuracy, the held-out Pareto front and hypervolumes.

The readers of search folders (population, exploits, members as DataFrames) are in
:mod:`scalarize.analysis.search`. The engines' records are put in one order here too: a
trial search's summary (:func:`trials_summary`), a stopped member's result, the events of a
restored Ray trial once (:func:`dedupe`, :func:`local_order`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from scalarize.analysis.pareto import hypervolume, pareto_fronts
from scalarize.errors import ScalarizeError
from scalarize.runs.records import ExploitEvent, MemberResult, PopulationEvent, SearchSummary


def search_summary(strategy: str, engine: str, objectives: list[str], epochs: int,
                   members: Sequence[MemberResult], seconds: float) -> SearchSummary:
    """The summary of a finished search from its members' results."""
    alive = [m for m in members if not m.diverged]
    if not alive:
        raise ScalarizeError("every member of the population diverged; lower train.lr or set "
                             "train.grad_clip")
    scores = [_scores(m) for m in alive]
    at = max(range(len(alive)), key=lambda i: (scores[i].val_avg, -alive[i].member))
    best, chosen = alive[at], scores[at]
    val = np.array([[s.val[o] for o in objectives] for s in scores])
    test = np.array([[s.test[o] for o in objectives] for s in scores])
    front = [alive[i].member for i in pareto_fronts(val)[0]]
    return SearchSummary(
        strategy=strategy, engine=engine, objectives=objectives, population=len(members),
        epochs=epochs, member_epochs=len(members) * epochs, best_member=best.member,
        best_weights=best.weights, best_schedule=best.schedule, val_avg_acc=chosen.val_avg,
        test_acc=chosen.test, test_avg_acc=chosen.test_avg, pareto_front=sorted(front),
        hypervolume_val=hypervolume(val), hypervolume_test=hypervolume(test), seconds=seconds,
        train_seconds=float(sum(m.train_seconds for m in members)), members=list(members))


def trials_summary(strategy: str, engine: str, objectives: list[str], epochs: int,
                   members: Sequence[MemberResult], spent: int, seconds: float) -> SearchSummary:
    """The summary of a trial search: the best member and the front among the members that
    trained all their epochs, every member listed, ``spent`` member-epochs."""
    finished = [m for m in members if m.stopped_epoch is None]
    if not finished:
        raise ScalarizeError("no member of the search trained all its epochs; raise "
                             "search.budget")
    summary = search_summary(strategy, engine, objectives, epochs, finished, seconds)
    return summary.model_copy(update={
        "population": len(members), "member_epochs": spent, "members": list(members),
        "train_seconds": float(sum(m.train_seconds for m in members))})


def stopped_result(metrics: dict[str, Any], objectives: list[str], weights: list[float]
                   ) -> MemberResult:
    """The result of a member the scheduler stopped at its last reported epoch (held-out
    scores only: a stopped member is not scored on test)."""
    val = {o: float(metrics[f"val_{o}"]) for o in objectives}
    return MemberResult(member=int(metrics["member"]), schedule=[(0, weights)], lineage=[],
                        diverged=False, weights=weights,
                        train_seconds=float(metrics["train_seconds"]), val_acc=val,
                        val_avg_acc=float(np.mean(list(val.values()))),
                        stopped_epoch=int(metrics["epoch"]))


def dedupe(events: list[PopulationEvent]) -> list[PopulationEvent]:
    """``events`` in arrival order, an epoch a restored trial reported again once (its last
    report)."""
    unique: dict[tuple[str, int, int], PopulationEvent] = {}
    for e in events:
        unique[(e.event, e.member, e.epoch)] = e
    return list(unique.values())


def local_order(events: Sequence[PopulationEvent], interval: int) -> list[PopulationEvent]:
    """``events`` without repeats (a restored trial may report an epoch again), in the order the
    in-process engine writes them: interval by interval, every member's epochs (member by
    member), then the interval's exploits."""
    unique = {(e.event, e.member, e.epoch): e for e in events}

    def key(e: PopulationEvent) -> tuple[int, int, int, int]:
        if isinstance(e, ExploitEvent):
            return (e.epoch // interval, 1, e.member, e.epoch)
        return (math.ceil(e.epoch / interval), 0, e.member, e.epoch)

    return sorted(unique.values(), key=key)


class _Scores(NamedTuple):
    val: dict[str, float]
    test: dict[str, float]
    val_avg: float
    test_avg: float


def _scores(member: MemberResult) -> _Scores:
    """A member that did not diverge: its held-out and test scores (all present)."""
    if (member.val_acc is None or member.test_acc is None or member.val_avg_acc is None
            or member.test_avg_acc is None):
        raise ScalarizeError(f"member {member.member} has no scores although it did not "
                             "diverge; delete the search folder and run it again")
    return _Scores(member.val_acc, member.test_acc, member.val_avg_acc, member.test_avg_acc)


__all__ = ["dedupe", "local_order", "search_summary", "stopped_result", "trials_summary"]
