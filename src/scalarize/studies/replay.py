"""Replay (``scalarize replay SEARCH --member best``): retrain from scratch on the full training
split with a member's weight schedule and evaluate on test, as the paper does after PBT.

The replay is an ordinary run (``SEARCH/replay-m<id>/``) whose config carries the schedule in
``scalarization.schedule``, so ``scalarize train`` can repeat it and ``--resume`` continues it.
A static search (grid, random) gives a one-entry schedule: the member's fixed point.

*Search small, train big* (``--spec LARGER_SPEC``, ``--options '{width: 64}'``): the same
schedule retrained on another model, e.g. one or two capacity steps up from the one searched
(the paper found the ranking of weights stable across capacities). The run is
``SEARCH/replay-m<id>-<model label>`` (:func:`~scalarize.models.model_label`), next to the
replay at the searched capacity; a spec or options that do not build are refused in one line
before anything is written.

Example:
    >>> replay_name(3, "vit-d1-w16-p8", {}, "vit-d3-w48-p4", None)
    'replay-m03-vit-d3-w48-p4'
    >>> replay_name(3, "mymodels:build", {"width": 16}, None, {"width": 64})
    'replay-m03-build-width64'
    >>> replay_name(3, "vit-d1-w16-p8", {}, "vit-d1-w16-p8", None)  # the searched model
    'replay-m03'
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from scalarize.config import RunConfig, validation_message
from scalarize.errors import ScalarizeError
from scalarize.launch import train_run
from scalarize.models import model_label
from scalarize.runs.records import RunSummary
from scalarize.runs.store import SearchDir
from scalarize.search.spec import SearchConfig
from scalarize.weights import SimplexWeights


def replay_name(member: int, searched_spec: str, searched_options: Mapping[str, Any],
                spec: str | None, options: Mapping[str, Any] | None) -> str:
    """The run name of a replay of ``member``: ``replay-m<id>``, plus the model's label when
    ``spec`` or ``options`` change the searched model."""
    name = f"replay-m{member:02d}"
    new_spec = searched_spec if spec is None else spec
    new_options = dict(searched_options) if options is None else dict(options)
    if (new_spec, new_options) == (searched_spec, dict(searched_options)):
        return name
    return f"{name}-{model_label(new_spec, new_options)}"


def replay_config(folder: Path | str, member: str | int = "best", *, spec: str | None = None,
                  options: Mapping[str, Any] | None = None) -> RunConfig:
    """The run config that retrains ``member`` (``best`` or its number) of a finished search;
    on the model ``spec`` with ``options`` (the model's keyword options, replacing the
    search's) when given, else on the searched model."""
    search = SearchDir(folder)
    summary = search.read_summary()
    ids = [m.member for m in summary.members]
    chosen = summary.best_member if member == "best" else _member_id(member, ids)
    entry = summary.members[ids.index(chosen)]
    if entry.diverged:
        raise ScalarizeError(f"member {chosen} diverged during the search; replay another one")
    if spec is not None and not spec.strip():
        raise ScalarizeError("--spec is empty; give a model spec such as vit-d3-w48-p4")
    if options is not None and not isinstance(options, Mapping):
        raise ScalarizeError(f"--options must be a mapping such as '{{width: 64}}', got "
                             f"{type(options).__name__}")
    first = SimplexWeights.restore(dict(zip(summary.objectives, entry.schedule[0][1],
                                            strict=True)))  # as the search wrote it
    base = SearchConfig.model_validate(search.read_config()).base()
    name = replay_name(chosen, base.model.spec, base.model.options, spec, options)
    run = base.derive(weights=first, schedule=entry.schedule, spec=spec, name=name)
    if options is None:
        return run
    tree = run.model_dump()
    tree["model"]["options"] = dict(options)
    try:
        return RunConfig.model_validate(tree)
    except ValidationError as exc:
        raise ScalarizeError(validation_message(exc, "--options")) from None


def _member_id(member: str | int, ids: list[int]) -> int:
    try:
        value = int(member)
    except ValueError:
        raise ScalarizeError(f"--member {member!r}: give 'best' or a member number") from None
    if value not in ids:
        raise ScalarizeError(f"--member {value}: the search has members {ids[0]}..{ids[-1]}")
    return value


def replay(folder: Path | str, member: str | int = "best", *, spec: str | None = None,
           options: Mapping[str, Any] | None = None, resume: bool = False,
           overwrite: bool = False, progress: bool | None = None) -> RunSummary:
    """Retrain ``member`` of the search in ``folder`` into ``folder/replay-m<id>``, or on the
    model ``spec`` / ``options`` into ``folder/replay-m<id>-<model label>``."""
    return train_run(replay_config(folder, member, spec=spec, options=options), folder,
                     resume=resume, overwrite=overwrite, progress=progress)
