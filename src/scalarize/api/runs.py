"""Train, sweep, search, compare, replay and report from Python, on a data set and a model
given as Python objects. Each call fills the matching config (the same fields as the YAML
files, given as ``config=`` and the study's own section) and runs the same code as the command
line, so results land in the same run store and every guarantee holds (checks before any
write, locks, resume).

The data set and a model factory defined in a script are registered for this process
(:meth:`~scalarize.registry.Registry.add`); a factory importable from a module is named by its
import target instead, so the stored config also resumes from the command line.

Example:
    >>> import numpy as np
    >>> from scalarize.api import from_arrays, task
    >>> rng = np.random.default_rng(0)
    >>> x = rng.integers(0, 256, (48, 3, 8, 8), dtype=np.uint8)
    >>> y = rng.integers(0, 2, (48,))
    >>> data = from_arrays([task("a", classes=2), task("b", classes=2)],
    ...                    train=(x[:40], {"a": y[:40], "b": 1 - y[:40]}),
    ...                    test=(x[40:], {"a": y[40:], "b": 1 - y[40:]}), name="toy")
    >>> import tempfile
    >>> out = tempfile.mkdtemp()
    >>> summary = train(data, "vit-d1-w16-p4", out=out, progress=False,
    ...                 config={"train": {"epochs": 1, "device": "cpu"}})
    >>> summary.objectives
    ['a', 'b']
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd
from pydantic import BaseModel, ValidationError

from scalarize.benchmarks import BENCHMARKS, Dataset
from scalarize.benchmarks.base import select_tasks
from scalarize.config import RunConfig, validation_message
from scalarize.errors import ScalarizeError
from scalarize.launch import train_run
from scalarize.models import FAMILIES
from scalarize.registry import resolve_target
from scalarize.runs.records import RunSummary
from scalarize.search.spec import SearchConfig
from scalarize.studies.compare import CompareConfig, run_compare
from scalarize.studies.replay import replay as replay_search
from scalarize.studies.runner import run_search
from scalarize.studies.sweep import SweepConfig, run_sweep

ConfigT = TypeVar("ConfigT", bound=BaseModel)


@dataclass(frozen=True)
class Model:
    """A model: a spec (``vit-d3-w48-p4``, ``resnet20``, ``package.module:factory``) or a
    factory ``factory(image_shape=(C, H, W), **options)`` (``input_shape=`` for inputs that
    are not images) returning an encoder (see
    :mod:`scalarize.models`), with its keyword ``options`` (capacity knobs such as ``width``)."""

    factory: str | Callable[..., Any]
    options: dict[str, Any] = field(default_factory=dict)


def model(factory: str | Callable[..., Any], **options: Any) -> Model:
    """A :class:`Model` from a spec or factory and its options: ``model(build, width=32)``."""
    return Model(factory, options)


ModelLike = str | Callable[..., Any] | Model


def _factory_name(factory: Callable[..., Any]) -> str:
    """The spec that names ``factory``: its import target when importable from its module,
    else a name registered for this process (letters only: a spec's family part)."""
    module, qualname = getattr(factory, "__module__", None), getattr(factory, "__qualname__", "")
    if module and module != "__main__" and "<" not in qualname:
        target = f"{module}:{qualname}"
        try:
            if resolve_target(target) is factory:
                return target
        except ScalarizeError:
            pass
    letters = re.sub(r"[^a-z]", "", getattr(factory, "__name__", "").lower()) or "model"
    name = f"user{letters}"
    while FAMILIES.session().get(name, factory) is not factory:  # another factory's name
        name += "x"
    FAMILIES.add(name, factory)
    return name


def _model_section(given: ModelLike) -> dict[str, Any]:
    ref = given if isinstance(given, Model) else Model(given)
    spec = ref.factory if isinstance(ref.factory, str) else _factory_name(ref.factory)
    return {"spec": spec, "options": dict(ref.options)}


def _register(data: Dataset) -> str:
    """Register ``data`` as a benchmark of this process under its name."""
    if not isinstance(data, Dataset):
        raise ScalarizeError(f"data: give a scalarize Dataset (from_arrays, from_datasets or a "
                             f"benchmark loader), got {type(data).__name__}")

    def load(view: str = data.view, tasks: list[str] | None = None, seed: int = 0,
             **options: Any) -> Dataset:
        if options:
            raise ScalarizeError(f"data {data.name!r} was given from Python; it takes no "
                                 f"benchmark.options (got {sorted(options)})")
        if view != data.view:
            raise ScalarizeError(f"data {data.name!r} has the {data.view} view, not {view}")
        if tasks is None:
            return data
        return Dataset(data.name, data.view, select_tasks(data.tasks, tasks), data.splits,
                       data.domains, data.info, vocab_size=data.vocab_size,
                       standardize=data.standardize)

    if BENCHMARKS.session().get(data.name) is not None or data.name not in BENCHMARKS:
        return BENCHMARKS.add(data.name, load)
    raise ScalarizeError(f"data name {data.name!r} is a built-in benchmark; name your data "
                         "set something else (name=...)")


def _tree(data: Dataset, model: ModelLike, config: Mapping[str, Any] | None) -> dict[str, Any]:
    tree = copy.deepcopy(dict(config or {}))
    for section, given in (("benchmark", {"name", "view"}), ("model", {"spec"})):
        clash = given & set(tree.get(section) or {})
        if clash:
            raise ScalarizeError(f"config.{section} sets {sorted(clash)}, which the data and "
                                 "model arguments give; leave them out")
    tree["benchmark"] = {**(tree.get("benchmark") or {}), "name": _register(data),
                         "view": data.view}
    given_model = _model_section(model)
    options = {**given_model["options"], **((tree.get("model") or {}).get("options") or {})}
    tree["model"] = {**(tree.get("model") or {}), "spec": given_model["spec"],
                     "options": options}
    return tree


def _validate(cls: type[ConfigT], tree: dict[str, Any], what: str) -> ConfigT:
    try:
        return cls.model_validate(tree)
    except ValidationError as exc:
        raise ScalarizeError(validation_message(exc, f"invalid {what}")) from None


def train(data: Dataset, model: ModelLike = "vit-d3-w48-p4", *,
          config: Mapping[str, Any] | None = None, out: Path | str = "runs",
          resume: bool = False, overwrite: bool = False, progress: bool | None = None
          ) -> RunSummary:
    """Train ``model`` on ``data`` into ``out/<run name>``; ``config`` holds any other field
    of a run config (``{"train": {"epochs": 5}, "scalarization": {"weights": [0.7, 0.3]}}``)."""
    run_config = _validate(RunConfig, _tree(data, model, config), "config")
    return train_run(run_config, out, resume=resume, overwrite=overwrite, progress=progress)


def _in_process(engine: str, options: Mapping[str, Any] | None) -> dict[str, Any]:
    """From Python the local engine trains in the caller's process unless ``jobs`` (or
    ``$SCALARIZE_JOBS``) asks for runs side by side: worker processes would re-run a script
    without an ``if __name__ == "__main__":`` guard, and copy in-memory data into each."""
    import os

    from scalarize.launch.pool import JOBS_VARIABLE

    chosen = dict(options or {})
    if engine == "local" and "jobs" not in chosen and not os.environ.get(JOBS_VARIABLE):
        chosen["jobs"] = 1
    return chosen


def sweep(data: Dataset, model: ModelLike, sweep: Mapping[str, Any], *,
          config: Mapping[str, Any] | None = None, out: Path | str = "sweeps/sweep",
          engine: str = "local", engine_options: Mapping[str, Any] | None = None,
          progress: bool | None = None) -> pd.DataFrame:
    """A capacity × weights × seeds sweep (the ``sweep`` section of a sweep config, e.g.
    ``{"capacities": {"options": {"width": [16, 32]}}, "seeds": [0, 1]}``); returns
    :func:`scalarize.analysis.load_sweep` of ``out``."""
    from scalarize.analysis.tables import capacity_tables

    tree = {**_tree(data, model, config), "sweep": dict(sweep)}
    run_sweep(_validate(SweepConfig, tree, "sweep config"), out, engine=engine,
              engine_options=_in_process(engine, engine_options), progress=progress)
    return capacity_tables(out).runs


def search(data: Dataset, model: ModelLike, search: Mapping[str, Any] | None = None, *,
           config: Mapping[str, Any] | None = None, out: Path | str = "searches/search",
           engine: str = "local", engine_options: Mapping[str, Any] | None = None,
           progress: bool | None = None) -> Any:
    """A weight search (the ``search`` section: ``{"strategy": "pbt", "population": 8}``);
    returns its :class:`~scalarize.runs.records.SearchSummary`."""
    tree = {**_tree(data, model, config), "search": dict(search or {})}
    return run_search(_validate(SearchConfig, tree, "search config"), out, engine=engine,
                      engine_options=dict(engine_options or {}), progress=progress)


def compare(data: Dataset, model: ModelLike, methods: list[Any], *,
            seeds: list[int] | None = None, config: Mapping[str, Any] | None = None,
            out: Path | str = "comparisons/compare", engine: str = "local",
            engine_options: Mapping[str, Any] | None = None, single_task: bool = True,
            progress: bool | None = None, models: list[ModelLike] | None = None
            ) -> pd.DataFrame:
    """Compare ``methods`` (names, or entries ``{"name": ..., "options": ...}``) over
    ``seeds``; returns the comparison table (:func:`scalarize.analysis.compare.compare_table`).
    With ``models`` (specs, factories or :func:`model`), every model trains with every method
    (a ``model`` column names it); ``model`` then trains the single-task baselines."""
    from scalarize.analysis.tables import compare_tables

    section: dict[str, Any] = {"methods": list(methods), "single_task": single_task}
    if models is not None:
        section["models"] = [_model_section(m) for m in models]
    if seeds is not None:
        section["seeds"] = list(seeds)
    tree = {**_tree(data, model, config), "compare": section}
    run_compare(_validate(CompareConfig, tree, "compare config"), out, engine=engine,
                engine_options=_in_process(engine, engine_options), progress=progress)
    return compare_tables(out).methods


def replay(folder: Path | str, member: str | int = "best", *, spec: str | None = None,
           options: Mapping[str, Any] | None = None, resume: bool = False,
           overwrite: bool = False, progress: bool | None = None) -> RunSummary:
    """Retrain a search's member (``best`` by default) with its weight schedule from the start,
    into the search folder (the same as ``scalarize replay``). ``spec`` and ``options`` (the
    model's options, replacing the search's) retrain it on another model, e.g. a larger one
    than the search used (``replay-m<id>-<model label>``)."""
    return replay_search(folder, member, spec=spec, options=options, resume=resume,
                         overwrite=overwrite, progress=progress)


def report(folder: Path | str, out: Path | str | None = None) -> tuple[Path, Path]:
    """Write the HTML and Markdown report of a run store, sweep, comparison or search."""
    from scalarize.report import build_report

    return build_report(folder, out)


def capacity(folder: Path | str) -> dict[str, pd.DataFrame]:
    """The capacity study of the sweep in ``folder``, as ``scalarize analyze capacity``
    prints it (every column, as its csv and json formats): the gain per capacity (weights
    selected on validation, test gain reported), its trend over capacities (exact permutation
    p over capacity means, Holm-adjusted), the selected weights against uniform, rank
    stability, transfer regret and every weighting; with ``sweep.data``, also the best and
    the uniform gain over the data × capacity plane; with two capacity axes (depth × width),
    the selected and the uniform gain over that plane (``selected_capacity_plane``,
    ``uniform_capacity_plane``)."""
    from scalarize.analysis.tables import capacity_tables

    tables = capacity_tables(folder)
    if tables.runs.empty:
        raise ScalarizeError(f"no finished run in {folder} yet")
    return {"per_capacity": tables.per_capacity, "capacity_trend": tables.trend,
            "selected_vs_uniform": tables.vs_uniform,
            "rank_stability": tables.rank_stability, "transfer_regret": tables.transfer_regret,
            "weightings": tables.weightings,
            **{f"{key}_plane": frame for key, frame in tables.planes.items()},
            **{f"{key}_capacity_plane": frame
               for key, frame in tables.capacity_planes.items()}}


def conflicts(folder: Path | str) -> dict[str, pd.DataFrame]:
    """The conflict analysis of the probed runs under ``folder`` (train with
    ``config={"probes": {"conflicts": {"every": 10, "examples": 32}}}``): correlations, per
    capacity, the floor (each share next to its same-objective control), per encoder block,
    the partial correlations with capacity held fixed, per weighting, the trends, the weights ×
    capacity plane and the per-epoch curves, as ``scalarize analyze conflicts`` prints them."""
    from scalarize.analysis.tables import conflict_tables

    tables = conflict_tables(folder)
    return {"correlations": tables.correlations, "per_capacity": tables.per_capacity,
            "floor": tables.floor, "per_layer": tables.per_layer, "partial": tables.partial,
            "per_weighting": tables.per_weighting, "trends": tables.trends,
            "plane": tables.plane, "curves": tables.curves}


def searches(folder: Path | str) -> dict[str, pd.DataFrame]:
    """The search analysis of a search folder or a folder of searches, as ``scalarize analyze
    search`` reads it (every row of the anytime curves, as its ``--all-rows``): ``searches``
    (one row per finished search here and one level down; empty while none has finished) and
    ``anytime``; for a finished search folder, also its ``members`` (every final weight),
    ``front`` (the members on the Pareto front), ``population`` (one row per member-epoch) and
    ``exploits``."""
    from scalarize.analysis.tables import search_tables

    tables = search_tables(folder)
    frames = {"searches": tables.table, "anytime": tables.anytime}
    if tables.is_search and tables.finished:
        frames.update(members=tables.members, front=tables.front,
                      population=tables.population, exploits=tables.exploits)
    return frames


__all__ = ["Model", "capacity", "compare", "conflicts", "model", "replay", "report", "search",
           "searches", "sweep", "train"]
