"""The summary of a finished search, the same for every engine (``summary.json``, a
:class:`~scalarize.runs.records.SearchSummary`): members, their schedules and lineage, the
member selected by held-out average accuracy, the held-out Pareto front and hypervolumes.

The readers of search folders (population, exploits, members as DataFrames) are in
:mod:`scalarize.analysis.search`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from scalarize.analysis.pareto import hypervolume, pareto_fronts
from scalarize.errors import ScalarizeError
from scalarize.runs.records import MemberResult, SearchSummary


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


__all__ = ["search_summary"]
