"""One member of a population search, the same on every engine.

A :class:`Member` is a :class:`~scalarize.training.Trainer` built from the search config, the
member's number and its initial weights, plus its history: the weight schedule, the lineage (whom
it copied, when), its torch RNG state and whether it diverged. Engines train it an interval at a
time (:meth:`Member.advance`, which yields its ``population.jsonl`` events), snapshot and restore
it (:meth:`Member.state_dict`), make it copy another member (:meth:`Member.copy_from`) and
collect its result (:meth:`Member.result`). The in-process engine keeps every member in memory;
the Ray engine builds one per trial and moves its state through Tune checkpoints.

Members train on the other 70% of the training split and are ranked on the held-out 30%
(:func:`holdout_split`), never on the test split.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from scalarize.benchmarks import Dataset
from scalarize.benchmarks.base import stratified_split
from scalarize.errors import ScalarizeError
from scalarize.runs.records import DivergedEvent, EpochEvent, MemberResult, PopulationEvent
from scalarize.search.spec import SearchConfig
from scalarize.training import Trainer, TrainingDiverged, load_data
from scalarize.weights import SimplexWeights


def holdout_split(data: Dataset, share: float, seed: int) -> Dataset:
    """``data`` with ``val`` replaced by a seeded ``share`` of the training split (and ``train``
    by the rest); ``test`` is untouched. Stratified by domain when the data has domains."""
    train = data.splits["train"]
    held_idx, kept_idx = stratified_split(train.domain, len(train), share, len(data.domains),
                                          np.random.default_rng([seed, 7919]))
    if len(held_idx) == 0 or len(kept_idx) == 0:
        empty = "held-out" if len(held_idx) == 0 else "training"
        raise ScalarizeError(f"search.holdout={share} leaves no {empty} examples out of "
                             f"{len(train)}; change search.holdout or the data size")
    splits = dict(data.splits, train=train.subset(kept_idx), val=train.subset(held_idx))
    # the inputs as the whole data has them: its vocabulary (token ids), its standardisation
    return Dataset(data.name, data.view, data.tasks, splits, data.domains,
                   dict(data.info, holdout=share), vocab_size=data.input.vocab_size,
                   standardize=data.standardize)


def search_data(config: SearchConfig) -> Dataset:
    """The data every member of ``config`` trains on: the held-out split in place of ``val``."""
    return holdout_split(load_data(config.base()), config.search.holdout, config.benchmark.seed)


def member_seed(seed: int, member: int) -> int:
    """Seed of member ``member`` of a search seeded ``seed`` (distinct across study seeds)."""
    return seed * 1000 + member


class Member:
    """One member of the population, its trainer and its history (see the module doc)."""

    def __init__(self, member: int, trainer: Trainer) -> None:
        self.id = member
        self.trainer = trainer
        self.schedule: list[list[Any]] = [[0, list(trainer.weights.values)]]  # [[epoch, w]]
        self.lineage: list[list[int]] = []      # [[epoch, copied member], ...]
        self.rng: torch.Tensor = torch.get_rng_state()
        self.diverged = False

    @classmethod
    def build(cls, config: SearchConfig, data: Dataset, member: int, point: SimplexWeights
              ) -> Member:
        """Member ``member`` of the search ``config``, starting at ``point``."""
        run = config.base().derive(seed=member_seed(config.seed, member), weights=point,
                                   name=f"m{member:02d}")
        return cls(member, Trainer(run, data=data, progress=False))

    @property
    def weights(self) -> SimplexWeights:
        return self.trainer.weights

    @property
    def epoch(self) -> int:
        """Epochs trained (a diverged member stays where it diverged)."""
        return self.trainer.epoch

    def advance(self, end: int) -> Iterator[PopulationEvent]:
        """Train up to epoch ``end``, yielding an event per epoch; a diverged member is frozen
        (it trains nothing until an exploit replaces it). The member's own torch RNG state is
        used and kept, so on CPU the order in which an engine trains members does not matter
        (on CUDA, augmentation, GradDrop and RLW share the device's generator)."""
        if self.diverged:
            return
        torch.set_rng_state(self.rng)
        try:
            while self.trainer.epoch < end:
                try:
                    record = self.trainer.train_epochs(1)[0]
                except TrainingDiverged:
                    self.diverged = True
                    yield DivergedEvent(member=self.id, epoch=self.trainer.epoch + 1)
                    return
                yield EpochEvent(member=self.id, epoch=record["epoch"], weights=record["weights"],
                                 val_acc=record["val_acc"], val_avg_acc=record["val_avg_acc"],
                                 train_objective=record["train_objective"],
                                 seconds=record["epoch_seconds"])
        finally:
            self.rng = torch.get_rng_state()

    def scores(self) -> list[float] | None:
        """The last epoch's held-out score per objective (``None``: diverged or untrained)."""
        history = self.trainer.history
        if self.diverged or not history:
            return None
        return [history[-1]["val_acc"][o] for o in self.trainer.objectives.names]

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue this member (or to copy it) exactly."""
        return {"trainer": self.trainer.state_dict(), "schedule": self.schedule,
                "lineage": self.lineage, "rng": self.rng, "diverged": self.diverged}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Inverse of :meth:`state_dict`, bit for bit."""
        self.trainer.load_state_dict(state["trainer"])
        self.schedule, self.lineage = state["schedule"], state["lineage"]
        self.rng, self.diverged = state["rng"], state["diverged"]

    def copy_from(self, state: dict[str, Any], parent: int, epoch: int,
                  weights: SimplexWeights) -> None:
        """Exploit: continue from member ``parent``'s ``state`` (not shared afterwards: pass a
        copy) at ``epoch``, with the explored ``weights``."""
        self.trainer.load_state_dict(state["trainer"])
        self.trainer.set_weights(weights)
        self.schedule = [*state["schedule"], [epoch, list(self.trainer.weights.values)]]
        self.lineage = [*state["lineage"], [epoch, parent]]
        self.rng, self.diverged = state["rng"], False

    def result(self) -> MemberResult:
        """The member at the end of the search (scored on test unless it diverged)."""
        scores: dict[str, Any] = {}
        if not self.diverged:
            last = self.trainer.history[-1]
            test = self.trainer.evaluate("test")
            scores = {"val_acc": last["val_acc"], "val_avg_acc": last["val_avg_acc"],
                      "test_acc": test.acc, "test_avg_acc": test.avg_acc}
        return MemberResult(member=self.id, schedule=self.schedule, lineage=self.lineage,
                            diverged=self.diverged, weights=list(self.weights.values),
                            train_seconds=self.trainer.train_seconds, **scores)


__all__ = ["Member", "holdout_split", "member_seed", "search_data"]
