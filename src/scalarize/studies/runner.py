"""Where the commands meet the engines: :func:`run_planned` trains the planned runs of a study
(sweep, comparison) and :func:`run_search` runs a search, each on the engine ``--engine``
names (:data:`~scalarize.engines.executors.ENGINES`). A search's strategy is resolved once
(:func:`~scalarize.search.resolve.resolve_strategy`), here or by the study that calls
:func:`run_search`, and that one object goes down: the engine's class says whether it runs it,
before the engine is built or any folder is written, the checks read it, and the engine
(``Engine.search``) and its decisions take it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from scalarize.config import RunConfig
from scalarize.engines.executors import build_engine, engine_class
from scalarize.errors import ScalarizeError
from scalarize.launch import check_run, check_study
from scalarize.methods import refuse_ignored_weights
from scalarize.runs.records import Record, RunSummary, SearchSummary
from scalarize.runs.store import SearchDir, StudyDir
from scalarize.search.resolve import ResolvedStrategy, check_search, resolve_strategy
from scalarize.search.spec import SearchConfig
from scalarize.training import load_data


def run_planned(study: StudyDir, config: BaseModel, plan: Record,
                configs: Sequence[RunConfig], engine: str = "local",
                engine_options: dict[str, Any] | None = None, progress: bool | None = None
                ) -> list[RunSummary]:
    """Run ``configs`` into the study folder after recording the study there
    (:meth:`~scalarize.runs.StudyDir.record`: a different study already there is refused)."""
    runner = build_engine(engine, engine_options)  # a dead cluster address fails first
    check_study(configs)
    with study.lock():
        study.record(config, plan)
        summaries = runner.run(configs, study.path, progress=progress)
    tracking = getattr(config, "tracking", None)
    if tracking is not None and tracking.enabled:
        from scalarize.tracking import finish_study

        finish_study(study.path, tracking)
    return summaries


def run_search(config: SearchConfig, out: Path | str, engine: str = "local",
               engine_options: dict[str, Any] | None = None, progress: bool | None = None,
               strategy: ResolvedStrategy | None = None) -> SearchSummary:
    """Run (or continue) the search ``config`` into ``out`` on the engine ``engine``; returns
    its summary (a finished search's stored one, without loading data or building members).
    ``strategy``: the config's strategy when the caller has resolved it already (a study's
    cell); by default it is resolved here, once."""
    folder = SearchDir(out)
    if folder.is_finished and folder.holds(config):
        _track(config, folder)
        return folder.read_summary()
    refuse_ignored_weights(config.method.name, config, "the search")
    if strategy is None:
        strategy = resolve_strategy(config.search)
    elif strategy.name != config.search.strategy:
        raise ValueError(f"the strategy {strategy.name} was resolved for another search than "
                         f"{config.search.strategy}'s")
    refusal = engine_class(engine).refusal(engine, strategy, config)
    if refusal is not None:
        raise ScalarizeError(refusal)
    runner = build_engine(engine, engine_options)  # a dead cluster address fails first
    data = load_data(config.base())
    check_run(config.base(), data)
    check_search(config, data.objectives, strategy)
    with folder.lock():
        summary = runner.search(config, strategy, folder, progress=progress)
    _track(config, folder)
    return summary


def _track(config: SearchConfig, folder: SearchDir) -> None:
    """Log a search's members and exploits to its trackers, from its folder (idempotent)."""
    if config.tracking.enabled:
        from scalarize.tracking import track_search

        track_search(folder.path, config.tracking)


__all__ = ["run_planned", "run_search"]
