"""The equal-compute search study (``scalarize study search CONFIG --budget B --seeds N``):
which weight search finds the best weights for this problem at this compute, and how sure.

Every strategy of the study (:data:`DEFAULT_STRATEGIES`, or those named) searches the weights
of the same config with the same budget of ``B`` member-epochs at each of ``N`` seeds
(``seed`` = the config's seed + 0 … N−1); each search's selected weights (the best member by
held-out score; its weight schedule for the PBT family) are then retrained on the full
training split (:func:`~scalarize.studies.replay.replay`) and scored on test. ``uniform`` is
no search: the uniform weights, trained once per seed. A multi-task optimisation method named
instead of a strategy (``famo``, ``uw``, ``imtl_l``…, any of :data:`~scalarize.methods.METHODS`
but ``static``, or your own as ``module:attr``, labelled ``attr``) is no search either: that
method with uniform weights, trained once per seed like ``uniform`` (the same member-epochs
in the final model as a search's retrained weights).

Seeds: ``--seed-offset K`` starts them at the config's seed + K (seeds kept apart from those
used while designing a regime); ``--vary-data`` also sets the data's seed
(``benchmark.seed``) to each cell's seed, so that the seeds vary the data draw as well as the
initialisation. With ``pure_noise`` objectives in the data (``Dataset.info``, as the shapes
attributes plant them), every cell records the share of its selected weights on them
(*recovery*: zero is the known best).

How each strategy spends ``B`` (``E`` = ``train.epochs``, each member's length):

- trial strategies (``tpe``, ``gp``, ``cmaes``, ``nsga2``, ``asha+S``, ``hyperband+S``):
  ``search.budget = B``, ``search.population`` trials at a time (``S``: the sampler);
- population strategies (``random``, ``pbt``, ``pb2``, ``mopbt``): ``⌊B / E⌋`` members;
- ``grid``: the finest simplex grid (step ``1/n``) with at most ``⌊B / E⌋`` points.

With ``--reference-grid K`` the study also trains the finest simplex grid of at most ``K``
points at every seed on the full training split (a dense grid of ``K`` points for two
objectives): its best point is the reference for regret
(:mod:`scalarize.analysis.search_study`). ``--transfer-spec SPEC`` retrains each cell's
selected weights on the model ``SPEC`` too (search small, train big).

The study folder: ``study.json`` (the config, seed, budget and, once given, the reference
grid's size; a re-run with another config, seed, budget or reference grid is refused: the
reference cells are numbered by grid point), ``<label>/seed<s>/`` (the search, its
``replay-m<id>`` runs), ``uniform/seed<s>/`` and ``reference/seed<s>/`` (runs), ``cells/``
(one record per finished cell: a re-run skips them, so a killed study continues where it
stopped; a search or run killed half-way resumes from its own checkpoints), and the table and
the anytime plot, written by :func:`scalarize.report.search_study.write_study_outputs`.

Example:
    >>> [s.label for s in parse_strategies(["tpe", "asha+tpe", "asha"])]
    ['tpe', 'asha+tpe', 'asha+random']
    >>> grid_steps(3, 10)  # 3 objectives, at most 10 points: step 1/3 gives 10
    3
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from tqdm.auto import tqdm

from scalarize.analysis.search_study import (
    CELLS,
    ReferenceCell,
    StudyCell,
    cell_name,
    write_cell,
)
from scalarize.config import MethodConfig, RunConfig
from scalarize.errors import ScalarizeError
from scalarize.launch import train_run
from scalarize.methods import METHODS
from scalarize.registry import is_import_target, target_label
from scalarize.runs.records import RunSummary
from scalarize.search.optuna_sampling import SINGLE_OBJECTIVE
from scalarize.search.resolve import ResolvedStrategy, resolve_strategy
from scalarize.search.simplex import simplex_grid
from scalarize.search.spec import SearchConfig
from scalarize.search.strategies import STRATEGIES
from scalarize.studies.replay import replay
from scalarize.studies.runner import run_search
from scalarize.training import load_data
from scalarize.weights import SimplexWeights, parse_weights

STUDY_FILE = "study.json"
#: The strategies a study runs unless told otherwise (the issue's list).
DEFAULT_STRATEGIES = ("uniform", "grid", "random", "tpe", "gp", "asha+random", "asha+tpe",
                      "pbt", "pb2", "mopbt", "nsga2")
PRUNING = ("asha", "hyperband")  # strategies that take a sampler after '+'


@dataclass(frozen=True)
class StudyStrategy:
    """One row of the study: a registered strategy (``None``: the uniform weights, no
    search) and, for a pruning strategy, its sampler."""

    label: str
    strategy: str | None
    sampler: str | None = None
    method: str | None = None  # a multi-task optimisation method trained with uniform weights


def parse_strategies(names: Sequence[str]) -> list[StudyStrategy]:
    """The study's strategies from their labels (``uniform``, a registered strategy, or
    ``asha+SAMPLER`` / ``hyperband+SAMPLER``); one-line error for an unknown one."""
    out: list[StudyStrategy] = []
    methods = [m for m in METHODS.names() if m != "static"]
    known = ["uniform", *STRATEGIES.names()]
    for name in names:
        strategy, _, sampler = name.strip().partition("+")
        if strategy == "uniform" and not sampler:
            entry = StudyStrategy("uniform", None)
        elif strategy in PRUNING:
            sampler = sampler or "random"
            if sampler not in SINGLE_OBJECTIVE:
                raise ScalarizeError(f"--strategies {name!r}: {strategy} takes a sampler of "
                                     f"{', '.join(SINGLE_OBJECTIVE)} after '+'")
            entry = StudyStrategy(f"{strategy}+{sampler}", strategy, sampler)
        elif strategy in STRATEGIES.names() and not sampler:
            entry = StudyStrategy(strategy, strategy)
        elif (strategy in methods or is_import_target(strategy)) and not sampler:
            METHODS.get(strategy)  # a user's method (module:attr) is imported now, or refused
            entry = StudyStrategy(target_label(strategy), None, method=strategy)
        else:
            raise ScalarizeError(f"--strategies: unknown strategy {name!r}; choose from "
                                 f"{', '.join(known)}, asha+SAMPLER, hyperband+SAMPLER, or a "
                                 f"method: {', '.join(methods)}")
        if entry.label in [e.label for e in out]:
            raise ScalarizeError(f"--strategies names {entry.label} twice")
        out.append(entry)
    if not out:
        raise ScalarizeError("--strategies is empty; name at least one strategy")
    return out


def grid_steps(n_objectives: int, points: int) -> int:
    """The largest ``n`` whose simplex grid of step ``1/n`` has at most ``points`` points
    (``C(n + K − 1, K − 1)``); 0 when even the corners (``n = 1``) are too many."""
    n = 0
    while math.comb(n + n_objectives, n_objectives - 1) <= points:
        n += 1
    return n


@dataclass(frozen=True)
class CellSearch:
    """One strategy's search in the study, the same at every seed: its config (at the base
    config's seed) and its strategy, resolved once for the whole study and handed to
    :func:`~scalarize.studies.runner.run_search`, which does not resolve it again."""

    config: SearchConfig
    strategy: ResolvedStrategy

    def at(self, seed: int, vary_data: bool = False) -> SearchConfig:
        """The search at ``seed``; with ``vary_data`` the data's seed is ``seed`` too."""
        return with_data_seed(self.config, seed, vary_data).model_copy(update={"seed": seed})


def cell_search(base: SearchConfig, entry: StudyStrategy, budget: int, n_objectives: int
                ) -> CellSearch:
    """The search of ``entry`` spending ``budget`` member-epochs (see the module docstring).
    The strategy is resolved once, with the settings it is built with (``search.grid_step``
    among them); the budget and the population it then sets are the search's, not the
    strategy's."""
    if entry.strategy is None:
        raise ValueError(f"{entry.label} runs no search")
    epochs = base.train.epochs
    search = base.search.model_copy(update={"strategy": entry.strategy, "points": None,
                                            "sampler": entry.sampler, "budget": None})
    members = budget // epochs
    grid = entry.strategy == "grid"
    if grid:
        n = grid_steps(n_objectives, members)
        if n == 0:
            raise ScalarizeError(f"--budget {budget}: the grid needs at least {n_objectives} "
                                 f"members × train.epochs={epochs}; raise --budget")
        search = search.model_copy(update={"grid_step": 1.0 / n})
    strategy = resolve_strategy(search)
    if strategy.trial_based:
        search = search.model_copy(update={"budget": budget})
    elif not grid:
        if members < 2:
            raise ScalarizeError(f"--budget {budget} gives {entry.label} {members} member(s) of "
                                 f"train.epochs={epochs}; a population needs 2: raise --budget")
        search = search.model_copy(update={"population": members})
    return CellSearch(base.model_copy(update={"search": search}), strategy)


C = TypeVar("C", bound=RunConfig)


def with_data_seed(config: C, seed: int, vary_data: bool) -> C:
    """``config`` with its data drawn at ``seed`` when ``vary_data`` (else unchanged)."""
    if not vary_data:
        return config
    return config.model_copy(update={"benchmark": config.benchmark.model_copy(
        update={"seed": seed})})


class SearchStudy:
    """The study of the module docstring in ``out``."""

    def __init__(self, config: SearchConfig, out: Path | str, budget: int, seeds: int,
                 strategies: Sequence[str] = DEFAULT_STRATEGIES, reference_grid: int = 0,
                 transfer_specs: Sequence[str] = (), progress: bool | None = None,
                 seed_offset: int = 0, vary_data: bool = False) -> None:
        if budget < 1:
            raise ScalarizeError(f"--budget {budget}: give a positive number of member-epochs")
        if seeds < 1:
            raise ScalarizeError(f"--seeds {seeds}: give at least one seed")
        if seed_offset < 0:
            raise ScalarizeError(f"--seed-offset {seed_offset}: give zero or more")
        if reference_grid < 0:
            raise ScalarizeError(f"--reference-grid {reference_grid}: give a number of points")
        self.entries = parse_strategies(strategies)
        self.config, self.out, self.budget = config, Path(out), budget
        self.seeds = [config.seed + seed_offset + i for i in range(seeds)]
        self.seed_offset, self.vary_data = seed_offset, vary_data
        self.reference_grid, self.transfer_specs = reference_grid, list(transfer_specs)
        self.progress = progress
        data = load_data(config.base())
        self.objectives = list(data.objectives)
        noise = data.info.get("pure_noise", [])
        self.pure_noise = [o for o in self.objectives if o in noise]  # type: ignore[operator]
        # each strategy's search, resolved once for every seed (what cannot run is refused
        # here, before anything is written)
        self.searches = {entry.label: cell_search(config, entry, budget, len(self.objectives))
                         for entry in self.entries if entry.strategy is not None}
        if reference_grid and grid_steps(len(self.objectives), reference_grid) == 0:
            raise ScalarizeError(f"--reference-grid {reference_grid} is fewer points than the "
                                 f"{len(self.objectives)} corners; raise it")

    # -- the record ---------------------------------------------------------------------------
    def _record(self) -> None:
        """Write ``study.json``, or check that the one there is this study's."""
        mine: dict[str, object] = {
            "config": self.config.model_dump(mode="json", exclude={"seed"}),
            "seed": self.config.seed, "budget": self.budget}
        mine.update(seed_offset=self.seed_offset, vary_data=self.vary_data)
        if self.pure_noise:
            mine.update(objectives=self.objectives, pure_noise=self.pure_noise)
        path = self.out / STUDY_FILE
        if path.is_file():
            try:
                there = json.loads(path.read_text())
            except ValueError:
                raise ScalarizeError(f"{path} is corrupt; delete it (or the folder) to start "
                                     "the study again") from None
            defaults = {"seed_offset": 0, "vary_data": False}  # older studies lack these keys
            if {k: there.get(k, defaults.get(k)) for k in mine} != mine:
                raise ScalarizeError(f"{self.out} holds another study (a different config, seed, "
                                     "--budget, --seed-offset or --vary-data); choose another "
                                     "--out")
            grid = there.get("reference_grid")
            if self.reference_grid and grid and grid != self.reference_grid:
                raise ScalarizeError(f"{self.out} holds a reference grid of {grid} points; "
                                     f"give --reference-grid {grid} or choose another --out")
            if not self.reference_grid or grid:
                return
        if self.reference_grid:
            mine["reference_grid"] = self.reference_grid
        self.out.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(mine, indent=1))
        tmp.replace(path)

    def _done(self, name: str) -> bool:
        return (self.out / CELLS / name).is_file()

    # -- the cells ----------------------------------------------------------------------------
    def run(self) -> Path:
        """Run every unfinished cell; the study folder."""
        self._record()
        todo: list[tuple[StudyStrategy | int, int]] = []
        for entry in self.entries:
            todo += [(entry, s) for s in self.seeds
                     if not self._done(cell_name(entry.label, s)) or self._transfer_missing(
                         entry.label, s)]
        points = (simplex_grid(len(self.objectives),
                               1.0 / grid_steps(len(self.objectives), self.reference_grid))
                  if self.reference_grid else [])
        todo += [(i, s) for s in self.seeds for i in range(len(points))
                 if not self._done(f"reference-p{i}-s{s}.json")]
        with tqdm(total=len(todo), unit="cell", desc="study", dynamic_ncols=True,
                  disable=None if self.progress is None else not self.progress) as bar:
            for what, seed in todo:
                if isinstance(what, StudyStrategy):
                    bar.set_postfix_str(f"{what.label} seed {seed}")
                    write_cell(self.out, self._cell(what, seed))
                else:
                    assert isinstance(what, int)
                    bar.set_postfix_str(f"reference point {what} seed {seed}")
                    write_cell(self.out, self._reference(what, points[what], seed))
                bar.update(1)
        return self.out

    def _transfer_missing(self, label: str, seed: int) -> bool:
        path = self.out / CELLS / cell_name(label, seed)
        if not path.is_file() or not self.transfer_specs:
            return False
        cell = StudyCell.model_validate_json(path.read_text())
        return any(spec not in cell.transfer for spec in self.transfer_specs)

    def _cell(self, entry: StudyStrategy, seed: int) -> StudyCell:
        folder = self.out / entry.label / f"seed{seed}"
        if entry.strategy is None:
            return self._uniform(folder, seed, entry)
        search = self.searches[entry.label]
        summary = run_search(search.at(seed, self.vary_data), folder, progress=False,
                             strategy=search.strategy)
        retrained = replay(folder, "best", resume=True, progress=False)
        transfer = {spec: replay(folder, "best", spec=spec, resume=True,
                                 progress=False).test.avg_acc
                    for spec in self.transfer_specs}
        return StudyCell(strategy=entry.label, seed=seed, member_epochs=summary.member_epochs,
                         search_seconds=summary.seconds, weights=list(summary.best_weights),
                         val_avg_acc=summary.val_avg_acc, test_avg_acc=retrained.test.avg_acc,
                         test_acc=dict(retrained.test.acc),
                         retrained_val_avg_acc=retrained.val.avg_acc, transfer=transfer,
                         noise_share=self._noise_share(summary.best_weights))

    def _noise_share(self, weights: Sequence[float]) -> float | None:
        """The share of ``weights`` on the pure-noise objectives (``None`` without any)."""
        if not self.pure_noise:
            return None
        return float(sum(w for o, w in zip(self.objectives, weights, strict=True)
                         if o in self.pure_noise) / sum(weights))

    def _train(self, weights: SimplexWeights, seed: int, folder: Path, name: str,
               spec: str | None = None, method: str | None = None) -> RunSummary:
        base = with_data_seed(self.config.base(), seed, self.vary_data)
        run = base.derive(seed=seed, weights=weights, spec=spec, name=name,
                          method=None if method is None else MethodConfig(name=method))
        return train_run(run, folder, resume=True, progress=False)

    def _uniform(self, folder: Path, seed: int, entry: StudyStrategy) -> StudyCell:
        """Uniform weights, with the entry's method (or the config's), trained once. A method
        reweights the objectives itself, so its cell records no noise share."""
        uniform = parse_weights("uniform", self.objectives)
        summary = self._train(uniform, seed, folder, entry.label, method=entry.method)
        transfer = {spec: self._train(uniform, seed, folder, f"{entry.label}-{_safe(spec)}",
                                      spec, method=entry.method).test.avg_acc
                    for spec in self.transfer_specs}
        return StudyCell(strategy=entry.label, seed=seed, member_epochs=0, search_seconds=0.0,
                         weights=list(uniform.values), val_avg_acc=None,
                         test_avg_acc=summary.test.avg_acc, test_acc=dict(summary.test.acc),
                         retrained_val_avg_acc=summary.val.avg_acc, transfer=transfer,
                         noise_share=None if entry.method else self._noise_share(uniform.values))

    def _reference(self, index: int, point: tuple[float, ...], seed: int) -> ReferenceCell:
        weights = SimplexWeights(tuple(self.objectives), point)
        summary = self._train(weights, seed, self.out / "reference" / f"seed{seed}",
                              f"p{index:03d}")
        return ReferenceCell(point=index, seed=seed, weights=list(weights.values),
                             test_avg_acc=summary.test.avg_acc,
                             val_avg_acc=summary.val.avg_acc)


def _safe(spec: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in spec)


__all__ = ["DEFAULT_STRATEGIES", "STUDY_FILE", "CellSearch", "SearchStudy", "StudyStrategy",
           "cell_search", "grid_steps", "parse_strategies", "with_data_seed"]
