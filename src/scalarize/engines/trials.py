"""The in-process engine of the trial strategies (``scalarize search CONFIG --strategy tpe``).

The trial loop (:class:`~scalarize.search.trials.TrialSearch`: what Optuna is asked, when a
member stops, what is recorded) is the decisions'; this engine gives it its members: each a
:class:`~scalarize.search.member.Member` trained in this process on the held-out split loaded
here once.
"""

from __future__ import annotations

from scalarize.runs.store import SearchDir
from scalarize.search.member import Member, search_data
from scalarize.search.resolve import ResolvedStrategy
from scalarize.search.spec import SearchConfig
from scalarize.search.trials import TrialMember, TrialSearch
from scalarize.weights import SimplexWeights

ENGINE = "local"


def local_trials(config: SearchConfig, strategy: ResolvedStrategy, folder: SearchDir,
                 progress: bool | None = None) -> TrialSearch:
    """The trial search ``config`` of the resolved ``strategy`` into ``folder``, its members
    trained in this process."""
    data = search_data(config)

    def build(number: int, point: SimplexWeights) -> TrialMember:
        return Member.build(config, data, number, point)

    return TrialSearch(config, strategy, folder, progress, build_member=build,
                       objectives=data.objectives, view=data.view, engine=ENGINE)


__all__ = ["local_trials"]
