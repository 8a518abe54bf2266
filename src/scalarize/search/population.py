"""Population-based search of scalarization weights (``scalarize search CONFIG``).

A search config is a run config (the recipe every member trains with; ``train.epochs`` is each
member's budget) plus a ``search`` section::

    search:
      strategy: pbt          # pbt | pb2 | mopbt | grid | random
      population: 8          # members (grid: the number of grid points)
      interval: 2            # epochs between exploit/explore steps
      quantile: 0.25         # worst quarter copies a member of the best quarter
      explore: {scale: 0.5, resample_probability: 0.25}
      holdout: 0.3           # share of the training split that ranks members (seeded)

Members train on the other 70% of the training split and are ranked on the held-out 30%, never on
the test split. The folder gets ``search.yaml`` (the config), ``search.json`` (the plan),
``population.jsonl`` (one line per member-epoch and per exploit, appended and flushed),
``summary.json`` at the end, and, for the in-process engine, ``state.pt`` (every member's model,
optimiser and weights, written atomically after each interval) from which a killed search
continues with the same result.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import Field
from tqdm.auto import tqdm

from scalarize.benchmarks import Dataset
from scalarize.benchmarks.base import seeded_split
from scalarize.config import RunConfig, _Section, load_study_config
from scalarize.errors import ScalarizeError
from scalarize.runs.store import RunDir, append_jsonl, atomic_torch_save, write_jsonl
from scalarize.search.executors import record_study, saved_study
from scalarize.search.explore import SimplexExplore
from scalarize.search.policy import exploit_pairs
from scalarize.search.results import (
    CONFIG_FILE,
    POPULATION,
    read_population,
    search_summary,
)
from scalarize.search.strategies import Observation, Strategy, build_strategy
from scalarize.training import Trainer, TrainingDiverged, load_data
from scalarize.weights import SimplexWeights, parse_weights

STATE = "state.pt"


class SearchSpec(_Section):
    """The ``search`` section (see the module docstring)."""

    strategy: str = "pbt"
    population: int = Field(8, ge=1)
    interval: int = Field(2, ge=1, description="epochs between exploit/explore steps")
    quantile: float = Field(0.25, gt=0, le=0.5)
    explore: SimplexExplore = Field(default_factory=SimplexExplore)
    holdout: float = Field(0.3, gt=0, lt=1, description="share of train that ranks members")
    alpha: float = Field(1.0, gt=0, description="Dirichlet concentration of initial points")
    grid_step: float = Field(0.25, gt=0, le=1, description="grid strategy: simplex grid step")
    points: list[Any] | None = Field(None, description="explicit initial weights (any "
                                     "weights spec), instead of the strategy's")


class SearchConfig(RunConfig):
    """A run config (the recipe of every member) plus its ``search`` section."""

    search: SearchSpec = Field(default_factory=SearchSpec)

    def base(self) -> RunConfig:
        return RunConfig.model_validate(self.model_dump(exclude={"search"}))


def load_search_config(path: Path | str, overrides: list[str] | None = None) -> SearchConfig:
    """A search config from YAML with overrides (see the module docstring)."""
    return load_study_config(SearchConfig, "search", "configs/shapes_pbt.yaml", path, overrides)


def holdout_split(data: Dataset, share: float, seed: int) -> Dataset:
    """``data`` with ``val`` replaced by a seeded ``share`` of the training split (and ``train``
    by the rest); ``test`` is untouched. Stratified by domain when the data has domains."""
    train = data.splits["train"]
    rng = np.random.default_rng([seed, 7919])
    groups = [np.arange(len(train))] if train.domain is None else [
        np.flatnonzero(train.domain == d) for d in range(len(data.domains))]
    held, kept = [], []
    for group in groups:
        held_at, kept_at = seeded_split(len(group), share, rng)
        held.append(group[held_at])
        kept.append(group[kept_at])
    held_idx, kept_idx = np.sort(np.concatenate(held)), np.sort(np.concatenate(kept))
    if len(held_idx) == 0 or len(kept_idx) == 0:
        empty = "held-out" if len(held_idx) == 0 else "training"
        raise ScalarizeError(f"search.holdout={share} leaves no {empty} examples out of "
                             f"{len(train)}; change search.holdout or the data size")
    splits = dict(data.splits, train=train.subset(kept_idx), val=train.subset(held_idx))
    return Dataset(data.name, data.view, data.tasks, splits, data.domains,
                   dict(data.info, holdout=share))


def member_seed(seed: int, member: int) -> int:
    """Seed of member ``member`` of a search seeded ``seed`` (distinct across study seeds)."""
    return seed * 1000 + member


def member_config(base: RunConfig, seed: int, member: int, weights: np.ndarray) -> RunConfig:
    tree = base.model_dump(mode="json")
    tree.update(seed=member_seed(seed, member), name=f"m{member:02d}")
    tree["scalarization"]["weights"] = [float(w) for w in weights]
    return RunConfig.model_validate(tree)


@dataclass
class Member:
    """One member of the population and its history."""

    id: int
    trainer: Trainer
    schedule: list[list[Any]]            # [[epoch from which they apply, weights], ...]
    lineage: list[list[int]] = field(default_factory=list)  # [[epoch, copied member], ...]
    rng: torch.Tensor = field(default_factory=torch.get_rng_state)
    diverged: bool = False

    @property
    def weights(self) -> list[float]:
        return list(self.trainer.weights.values)


def plan(config: SearchConfig, objectives: tuple[str, ...]) -> tuple[Strategy, list[np.ndarray]]:
    """The strategy and every member's initial weights."""
    spec = config.search
    strategy = build_strategy(spec.strategy, spec.explore, spec.alpha, spec.grid_step)
    if spec.points is not None:
        points = [np.array(parse_weights(p, objectives).values) for p in spec.points]
    else:
        rng = np.random.default_rng([config.seed, 104729])
        points = strategy.initial_weights(spec.population, len(objectives), rng)
    if not points:
        raise ScalarizeError("the search has no members; set search.population or search.points")
    return strategy, points


def prepare_folder(out: Path, config: SearchConfig, manifest: dict[str, Any]) -> bool:
    """Record the search in ``out``; True when it already holds this search (to continue)."""
    return record_study(out, CONFIG_FILE, config, manifest, kind="search")


class LocalPopulation:
    """Trains the population in this process, member after member each interval; exploit
    copies a member's state in memory. Deterministic: the same config and seed give the same
    result, also across a kill and a re-run (from ``state.pt``)."""

    def __init__(self, config: SearchConfig, out: Path, progress: bool | None = None) -> None:
        self.config, self.out, self.progress = config, out, progress
        self.spec = config.search
        base = config.base()
        self.data = holdout_split(load_data(base), self.spec.holdout, config.benchmark.seed)
        self.objectives = self.data.objectives
        self.strategy, points = plan(config, self.objectives)
        self.rng = np.random.default_rng([config.seed, 15485863])
        self.members = []
        for i, point in enumerate(points):
            trainer = Trainer(member_config(base, config.seed, i, point), data=self.data,
                              progress=False)
            start = [float(w) for w in trainer.weights.values]
            self.members.append(Member(i, trainer, [[0, start]]))
        self.history: list[Observation] = []
        self.last_score: dict[int, float] = {}
        self.generation = 0
        self.epochs = base.train.epochs

    # -- persistence --------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"generation": self.generation, "rng": self.rng.bit_generator.state,
                "history": [vars(o) for o in self.history], "last_score": self.last_score,
                "members": [{"trainer": m.trainer.state_dict(), "schedule": m.schedule,
                             "lineage": m.lineage, "rng": m.rng, "diverged": m.diverged}
                            for m in self.members]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generation = state["generation"]
        self.rng.bit_generator.state = state["rng"]
        self.history = [Observation(**o) for o in state["history"]]
        self.last_score = {int(k): v for k, v in state["last_score"].items()}
        for member, saved in zip(self.members, state["members"], strict=True):
            member.trainer.load_state_dict(saved["trainer"])
            member.schedule, member.lineage = saved["schedule"], saved["lineage"]
            member.rng, member.diverged = saved["rng"], saved["diverged"]

    def _save(self) -> None:
        atomic_torch_save(self.out / STATE, self.state_dict())

    def _restore(self) -> None:
        path = self.out / STATE
        if path.is_file():
            try:
                state = torch.load(path, map_location="cpu", weights_only=False)
            except Exception as exc:
                raise ScalarizeError(f"search state {path} is unreadable "
                                     f"({type(exc).__name__}); delete the folder to restart"
                                     ) from None
            self.load_state_dict(state)
        done_epoch = min(self.epochs, self.generation * self.spec.interval)
        lines = [r for r in read_population(self.out) if r["epoch"] <= done_epoch]
        write_jsonl(self.out / POPULATION, lines)

    def _log(self, record: dict[str, Any]) -> None:
        append_jsonl(self.out / POPULATION, record)

    # -- the search ---------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        manifest = {"strategy": self.spec.strategy, "engine": "local",
                    "objectives": list(self.objectives), "view": self.data.view,
                    "population": len(self.members), "epochs": self.epochs,
                    "interval": self.spec.interval,
                    "initial_weights": [m.schedule[0][1] for m in self.members]}
        if prepare_folder(self.out, self.config, manifest):
            self._restore()
        start = time.perf_counter()
        n_gen = math.ceil(self.epochs / self.spec.interval)
        done = sum(m.trainer.epoch for m in self.members)
        with tqdm(total=len(self.members) * self.epochs, initial=done, unit="member-epoch",
                  desc=f"search ({self.spec.strategy})", dynamic_ncols=True,
                  disable=None if self.progress is None else not self.progress) as bar:
            while self.generation < n_gen:
                end = min(self.epochs, (self.generation + 1) * self.spec.interval)
                for member in self.members:
                    self._train(member, end, bar)
                if end < self.epochs and self.strategy.adaptive:
                    self._exploit_explore(end)
                self.generation += 1
                self._save()
        summary = self._finish(time.perf_counter() - start)
        return summary

    def _train(self, member: Member, end: int, bar: tqdm) -> None:
        trainer = member.trainer
        if member.diverged:
            bar.update(end - trainer.epoch)
            return
        torch.set_rng_state(member.rng)
        while trainer.epoch < end:
            try:
                record = trainer.train_epochs(1)[0]
            except TrainingDiverged:
                member.diverged = True
                self._log({"event": "diverged", "member": member.id,
                           "epoch": trainer.epoch + 1})
                bar.update(end - trainer.epoch)
                break
            self._log({"event": "epoch", "member": member.id, "epoch": record["epoch"],
                       "weights": record["weights"], "val_acc": record["val_acc"],
                       "val_avg_acc": record["val_avg_acc"],
                       "train_objective": record["train_objective"],
                       "seconds": record["epoch_seconds"]})
            bar.update(1)
        member.rng = torch.get_rng_state()

    def _scores(self) -> np.ndarray:
        rows = []
        for member in self.members:
            last = member.trainer.history[-1] if member.trainer.history else None
            if member.diverged or last is None:
                rows.append([math.nan] * len(self.objectives))
            else:
                rows.append([last["val_acc"][o] for o in self.objectives])
        return np.array(rows)

    def _exploit_explore(self, epoch: int) -> None:
        acc = self._scores()
        avg = acc.mean(axis=1)
        for member in self.members:
            score = float(avg[member.id])
            if math.isfinite(score) and member.id in self.last_score:
                self.history.append(Observation(epoch, member.weights,
                                                score - self.last_score[member.id]))
            self.last_score[member.id] = score
        pairs = exploit_pairs(self.strategy.keys(acc), self.spec.quantile, self.rng)
        for target_id, source_id in pairs.items():
            target, source = self.members[target_id], self.members[source_id]
            before = target.weights
            target.trainer.load_state_dict(copy.deepcopy(source.trainer.state_dict()))
            new = self.strategy.explore(np.array(source.weights), self.rng, epoch, self.history)
            target.trainer.set_weights(SimplexWeights(self.objectives,
                                                      tuple(float(w) for w in new)))
            target.schedule = [*copy.deepcopy(source.schedule), [epoch, target.weights]]
            target.lineage = [*copy.deepcopy(source.lineage), [epoch, source_id]]
            target.diverged = False
            target.rng = source.rng.clone()
            self.last_score[target_id] = self.last_score.get(source_id, math.nan)
            self._log({"event": "exploit", "member": target_id, "epoch": epoch,
                       "parent": source_id, "weights_before": dict(zip(self.objectives, before,
                                                                       strict=True)),
                       "weights": dict(zip(self.objectives, target.weights, strict=True))})

    def _finish(self, seconds: float) -> dict[str, Any]:
        members = []
        for member in self.members:
            entry: dict[str, Any] = {"member": member.id, "schedule": member.schedule,
                                     "lineage": member.lineage, "diverged": member.diverged,
                                     "weights": member.weights,
                                     "train_seconds": member.trainer.train_seconds}
            if not member.diverged:
                last = member.trainer.history[-1]
                test = member.trainer.evaluate("test")
                entry.update(val_acc=last["val_acc"], val_avg_acc=last["val_avg_acc"],
                             test_acc=test["acc"], test_avg_acc=test["avg_acc"])
            members.append(entry)
        summary = search_summary(self.spec.strategy, "local", list(self.objectives),
                                 self.epochs, members, seconds)
        RunDir(self.out).write_summary(summary)
        return summary


ENGINES = ("local", "ray")


def run_search(config: SearchConfig, out: Path | str, engine: str = "local",
               engine_options: dict[str, Any] | None = None, progress: bool | None = None
               ) -> dict[str, Any]:
    """Run (or continue) the search into ``out``; returns its summary (a finished search's
    stored one, without loading data or building members)."""
    out = Path(out)
    summary = RunDir(out).read_summary()
    if summary is not None and saved_study(out, CONFIG_FILE, config, kind="search"):
        return summary
    if engine == "local":
        if engine_options:
            raise ScalarizeError(f"the local engine takes no options, got "
                                 f"{sorted(engine_options)}")
        return LocalPopulation(config, out, progress).run()
    if engine == "ray":
        from scalarize.search.ray_population import RayPopulation

        return RayPopulation(config, out, progress=progress, **(engine_options or {})).run()
    raise ScalarizeError(f"unknown engine {engine!r}; choose one of: {', '.join(ENGINES)}")
