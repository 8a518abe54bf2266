"""Replay (``scalarize replay SEARCH --member best``): retrain from scratch on the full training
split with a member's weight schedule and evaluate on test, as the paper does after PBT.

The replay is an ordinary run (``SEARCH/replay-m<id>/``) whose config carries the schedule in
``scalarization.schedule``, so ``scalarize train`` can repeat it and ``--resume`` continues it.
"""

from __future__ import annotations

from pathlib import Path

from scalarize.config import RunConfig
from scalarize.errors import ScalarizeError
from scalarize.runs.records import RunSummary
from scalarize.runs.store import SearchDir
from scalarize.search.spec import SearchConfig
from scalarize.training import train_run
from scalarize.weights import SimplexWeights


def replay_config(folder: Path | str, member: str | int = "best") -> RunConfig:
    """The run config that retrains ``member`` (``best`` or its number) of a finished search."""
    search = SearchDir(folder)
    summary = search.read_summary()
    ids = [m.member for m in summary.members]
    chosen = summary.best_member if member == "best" else _member_id(member, ids)
    entry = summary.members[ids.index(chosen)]
    if entry.diverged:
        raise ScalarizeError(f"member {chosen} diverged during the search; replay another one")
    first = SimplexWeights.restore(dict(zip(summary.objectives, entry.schedule[0][1],
                                            strict=True)))  # as the search wrote it
    base = SearchConfig.model_validate(search.read_config()).base()
    return base.derive(weights=first, schedule=entry.schedule, name=f"replay-m{chosen:02d}")


def _member_id(member: str | int, ids: list[int]) -> int:
    try:
        value = int(member)
    except ValueError:
        raise ScalarizeError(f"--member {member!r}: give 'best' or a member number") from None
    if value not in ids:
        raise ScalarizeError(f"--member {value}: the search has members {ids[0]}..{ids[-1]}")
    return value


def replay(folder: Path | str, member: str | int = "best", *, resume: bool = False,
           overwrite: bool = False, progress: bool | None = None) -> RunSummary:
    """Retrain ``member`` of the search in ``folder`` into ``folder/replay-m<id>``."""
    return train_run(replay_config(folder, member), folder, resume=resume, overwrite=overwrite,
                     progress=progress)
