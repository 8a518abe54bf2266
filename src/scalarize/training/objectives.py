"""Objectives turn shared features into one loss per objective (task or domain).

Both views compute a per-example loss and correctness matrix of shape (T, B) with a mask saying
which examples count for which objective, so training losses, evaluation metrics and (later)
gradient probes all come from one place, with static shapes and no host synchronisation.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from scalarize.benchmarks.base import Dataset
from scalarize.training.data import Batch


@dataclass
class PerExample:
    """Loss and correctness of every example for every objective, and which ones count."""

    loss: torch.Tensor  # T×B
    correct: torch.Tensor  # T×B, bool
    mask: torch.Tensor  # T×B, float (1 where the example belongs to the objective)

    def mean_losses(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-objective mean loss over its examples (0 when it has none) and example counts."""
        counts = self.mask.sum(dim=1)
        return (self.loss * self.mask).sum(dim=1) / counts.clamp(min=1), counts


class Objectives:
    """Base: names of the objectives, the heads they need, and the per-example evaluation."""

    names: tuple[str, ...]

    def head_sizes(self) -> dict[str, int]:
        raise NotImplementedError

    def per_example(self, heads: nn.ModuleDict, features: torch.Tensor, batch: Batch
                    ) -> PerExample:
        raise NotImplementedError


class TaskObjectives(Objectives):
    """Multi-task view: one head and one cross-entropy per task, every example counts for all."""

    def __init__(self, data: Dataset) -> None:
        self.tasks = data.tasks
        self.names = tuple(t.name for t in data.tasks)

    def head_sizes(self) -> dict[str, int]:
        return {t.name: t.num_classes for t in self.tasks}

    def per_example(self, heads: nn.ModuleDict, features: torch.Tensor, batch: Batch
                    ) -> PerExample:
        losses, correct = [], []
        for name in self.names:
            logits = heads[name](features).float()
            target = batch.labels[name]
            losses.append(F.cross_entropy(logits, target, reduction="none"))
            correct.append(logits.argmax(dim=1) == target)
        loss = torch.stack(losses)
        return PerExample(loss, torch.stack(correct), torch.ones_like(loss))


class DomainObjectives(Objectives):
    """Multi-domain view: one label task; a head per domain (or one shared head); an example
    counts for its own domain's objective only."""

    def __init__(self, data: Dataset, shared_head: bool = False) -> None:
        self.names = data.domains
        self.task = data.tasks[0]
        self.shared_head = shared_head

    def head_sizes(self) -> dict[str, int]:
        if self.shared_head:
            return {"shared": self.task.num_classes}
        return {d: self.task.num_classes for d in self.names}

    def per_example(self, heads: nn.ModuleDict, features: torch.Tensor, batch: Batch
                    ) -> PerExample:
        assert batch.domain is not None, "multi-domain batches carry a domain index"
        target = batch.labels[self.task.name]
        mask = F.one_hot(batch.domain, len(self.names)).T.float()
        if self.shared_head:
            logits = heads["shared"](features).float()
            loss = F.cross_entropy(logits, target, reduction="none").expand(len(self.names), -1)
            correct = (logits.argmax(dim=1) == target).expand(len(self.names), -1)
            return PerExample(loss, correct, mask)
        losses, correct = [], []
        for name in self.names:
            logits = heads[name](features).float()
            losses.append(F.cross_entropy(logits, target, reduction="none"))
            correct.append(logits.argmax(dim=1) == target)
        return PerExample(torch.stack(losses), torch.stack(correct), mask)


def build_objectives(data: Dataset, shared_head: bool = False) -> Objectives:
    """The objectives of ``data``'s view."""
    return DomainObjectives(data, shared_head) if data.view == "mdl" else TaskObjectives(data)
