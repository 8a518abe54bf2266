"""Objectives turn the model's features into one loss per objective (task or domain); each head
reads the shared features, or its own where the model gives features per task.

Both views compute a per-example loss matrix of shape (T, B) with a mask saying which examples
count for which objective, so training losses, evaluation metrics and gradient probes all come
from one place, with static shapes and no host synchronisation. An example counts for a task
when it carries the task's label (:meth:`~scalarize.training.task_kinds.TaskKind.labelled`:
partial labels) and, in the multi-domain view, for its own domain's objective only. Each
objective's loss is the sum over the examples that count divided by their number (0, with no
gradient, when a batch has none: the step's ``counts`` say so to the methods). Evaluation goes
through a :class:`Meter`, which accumulates each objective's metrics over a split on the device.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from scalarize.benchmarks.base import Dataset
from scalarize.errors import ScalarizeError
from scalarize.models.heads import HeadSpec, is_dense
from scalarize.models.per_task import Features, features_for
from scalarize.training.data import Batch
from scalarize.training.task_kinds import TaskKind, build_kind


@dataclass
class PerExample:
    """Loss of every example for every objective, which ones count, and each objective's head
    output (what its metric reads)."""

    loss: torch.Tensor  # T×B
    mask: torch.Tensor  # T×B, float (1 where the example belongs to the objective)
    outputs: dict[str, torch.Tensor]

    def mean_losses(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-objective mean loss over its examples (0, with a zero gradient, when it has
        none) and example counts."""
        counts = self.mask.sum(dim=1)
        return (self.loss * self.mask).sum(dim=1) / counts.clamp(min=1), counts


class Meter:
    """Accumulates, over the batches of a split, each objective's mean loss and its metrics;
    ``result`` gives ``acc`` (each objective's score, higher is better), ``loss``, ``avg_acc``,
    ``metrics`` (every named metric of every objective) and ``primary`` (the metric the gain Δ
    compares, and whether higher is better)."""

    def __init__(self, names: tuple[str, ...], kinds: dict[str, TaskKind],
                 targets: dict[str, str], device: torch.device, masked: bool) -> None:
        self.names = names
        self.kinds = kinds
        self.metrics = {name: kinds[name].metric() for name in names}
        self.targets = targets
        self.masked = masked
        self.loss = torch.zeros(len(names), device=device)
        self.count = torch.zeros(len(names), device=device)

    def update(self, out: PerExample, batch: Batch) -> None:
        self.loss += (out.loss * out.mask).sum(dim=1)
        self.count += out.mask.sum(dim=1)
        for i, name in enumerate(self.names):
            output, target = out.outputs[name], batch.labels[self.targets[name]]
            if self.masked:
                rows = out.mask[i] > 0
                output, target = output[rows], target[rows]
            self.metrics[name].update(output, target)

    def result(self) -> dict[str, object]:
        # an objective that saw no batch (an empty split) scores 0, as an empty count did
        metrics = {name: self.metrics[name].result() if self.metrics[name].sums
                   else {"score": 0.0} for name in self.names}
        acc = {name: metrics[name]["score"] for name in self.names}
        loss = (self.loss / self.count.clamp(min=1)).tolist()
        primary = {name: {"metric": self.kinds[name].primary[0],
                          "higher_is_better": self.kinds[name].primary[1]} for name in self.names}
        return {"acc": acc, "loss": dict(zip(self.names, loss, strict=True)),
                "avg_acc": float(np.mean(list(acc.values()))), "metrics": metrics,
                "primary": primary}


class Objectives:
    """Base: names of the objectives, the heads they need, the per-example evaluation and a
    meter for evaluating a split."""

    names: tuple[str, ...]

    def head_specs(self) -> dict[str, HeadSpec]:
        raise NotImplementedError

    def per_example(self, heads: nn.ModuleDict, features: Features, batch: Batch
                    ) -> PerExample:
        raise NotImplementedError

    def meter(self, device: torch.device) -> Meter:
        raise NotImplementedError

    def membership(self, batch: Batch) -> torch.Tensor:
        """Which examples of ``batch`` count for which objective (T×B bool), from its labels
        and domains alone (no model): the mask :meth:`per_example` uses, and what a probe that
        draws its own examples per objective reads."""
        raise NotImplementedError

    def target_flips(self) -> dict[str, Callable[[torch.Tensor], torch.Tensor]]:
        """Label name -> how its target mirrors with the image, for labels that do (dense)."""
        return {}

    def tasks(self) -> list[tuple[str, str, TaskKind]]:
        """``(head, label, kind)`` of each distinct task: which head's output and which label
        a kind's loss compares (what the first-batch check tries)."""
        raise NotImplementedError


class TaskObjectives(Objectives):
    """Multi-task view: one head and one loss per task, as its kind says; an example counts for
    every task whose label it carries."""

    def __init__(self, data: Dataset) -> None:
        self.names = tuple(t.name for t in data.tasks)
        self.kinds: dict[str, TaskKind] = {t.name: build_kind(t.kind, t.kind_options)
                                           for t in data.tasks}

    def head_specs(self) -> dict[str, HeadSpec]:
        return {name: kind.head() for name, kind in self.kinds.items()}

    def per_example(self, heads: nn.ModuleDict, features: Features, batch: Batch
                    ) -> PerExample:
        outputs = {name: heads[name](features_for(features, name)) for name in self.names}
        loss = torch.stack([self.kinds[name].loss(outputs[name], batch.labels[name])
                            for name in self.names])
        return PerExample(loss, self.membership(batch).to(loss.dtype), outputs)

    def membership(self, batch: Batch) -> torch.Tensor:
        return torch.stack([self.kinds[name].labelled(batch.labels[name])
                            for name in self.names])

    def target_flips(self) -> dict[str, Callable[[torch.Tensor], torch.Tensor]]:
        return {name: cast(Callable[[torch.Tensor], torch.Tensor], kind.flip)  # dense: a map
                for name, kind in self.kinds.items() if is_dense(kind.head())}

    def meter(self, device: torch.device) -> Meter:
        return Meter(self.names, self.kinds,
                     {n: n for n in self.names}, device, masked=False)

    def tasks(self) -> list[tuple[str, str, TaskKind]]:
        return [(name, name, self.kinds[name]) for name in self.names]


class DomainObjectives(Objectives):
    """Multi-domain view: one classification task; a head per domain (or one shared head); an
    example counts for its own domain's objective only, when it carries the task's label."""

    def __init__(self, data: Dataset, shared_head: bool = False) -> None:
        self.names = data.domains
        self.task = data.tasks[0]
        self.kind = build_kind(self.task.kind, self.task.kind_options)
        if is_dense(self.kind.head()):
            raise ScalarizeError(f"the multi-domain view needs a per-image task; "
                                 f"{self.task.name!r} is a dense {self.task.kind} task")
        self.shared_head = shared_head

    def head_specs(self) -> dict[str, HeadSpec]:
        if self.shared_head:
            return {"shared": self.task.num_classes}
        return {d: self.task.num_classes for d in self.names}

    def per_example(self, heads: nn.ModuleDict, features: Features, batch: Batch
                    ) -> PerExample:
        assert batch.domain is not None, "multi-domain batches carry a domain index"
        target = batch.labels[self.task.name]
        mask = self.membership(batch).float()
        if self.shared_head:
            logits = heads["shared"](features_for(features, "shared"))
            loss = self.kind.loss(logits, target).expand(len(self.names), -1)
            return PerExample(loss, mask, dict.fromkeys(self.names, logits))
        outputs = {name: heads[name](features_for(features, name)) for name in self.names}
        loss = torch.stack([self.kind.loss(outputs[name], target) for name in self.names])
        return PerExample(loss, mask, outputs)

    def membership(self, batch: Batch) -> torch.Tensor:
        assert batch.domain is not None, "multi-domain batches carry a domain index"
        own = F.one_hot(batch.domain, len(self.names)).T.bool()
        return own & self.kind.labelled(batch.labels[self.task.name])

    def meter(self, device: torch.device) -> Meter:
        return Meter(self.names, dict.fromkeys(self.names, self.kind),
                     dict.fromkeys(self.names, self.task.name), device, masked=True)

    def tasks(self) -> list[tuple[str, str, TaskKind]]:
        return [("shared" if self.shared_head else self.names[0], self.task.name, self.kind)]


def build_objectives(data: Dataset, shared_head: bool = False) -> Objectives:
    """The objectives of ``data``'s view."""
    return DomainObjectives(data, shared_head) if data.view == "mdl" else TaskObjectives(data)
