"""The gradient-conflict probe: a trainer callback that measures, every ``every`` steps, how the
objectives' gradients on the shared encoder agree, for the whole encoder and per block.

Records go to ``conflicts.jsonl`` in the run folder (one line per probed step, appended at the
end of each epoch so that the file and the checkpoint always agree), and each epoch's metrics
line gets the epoch means of ``conflict_share``, ``cos_mean`` and ``gms_mean``. The probe takes
its gradients with ``torch.autograd.grad`` on the step's own graph before the method's backward:
it changes neither ``.grad`` nor any state, so training follows the same trajectory.

Partial labels: an objective with no example in the probed batch has no gradient to compare; its
row is skipped, and the record names the objectives it measured (``objectives``, in the order of
``cos``, ``norms`` and ``cos_to_update``). A batch without any objective is not recorded.
"""

from __future__ import annotations

import functools
import math
import operator
from typing import Any

import numpy as np
import torch

from scalarize.probes.gradients import conflict_measures, gram_matrices, parameter_groups
from scalarize.runs.records import ConflictRecord
from scalarize.training.callbacks import Callback

EPOCH_KEYS = ("conflict_share", "cos_mean", "gms_mean")


class ConflictProbe(Callback):
    """Measure gradient conflicts every ``every`` steps (and at the first step)."""

    def __init__(self, every: int = 50, per_layer: bool = True, batched: bool | None = None
                 ) -> None:
        if every < 1:
            raise ValueError("every must be >= 1")
        self.every, self.per_layer, self.batched = every, per_layer, batched
        self.pending: list[ConflictRecord] = []
        self.records: list[ConflictRecord] = []

    def on_fit_start(self, trainer) -> None:
        self.groups = parameter_groups(trainer.model.encoder)
        self.pending = []
        if trainer.run_dir is not None:  # resuming: keep what the checkpoint covers
            trainer.run_dir.truncate_conflicts(trainer.step)

    def takes_gradients(self, step: int) -> bool:
        return step % self.every == 0

    def on_losses(self, trainer, losses, per_example, ctx) -> None:
        if not self.takes_gradients(ctx.step):
            return
        with torch.no_grad():
            counts = per_example.mask.sum(dim=1)
            weights = trainer.mixing.step_weights(trainer.weight_tensor, counts)
        names = list(trainer.objectives.names)
        present = ctx.present()
        if present is not None:  # partial labels: skip the rows of absent objectives
            if not present:
                return
            losses, weights = losses[present], weights[present]
            names = [names[i] for i in present]
        grams = gram_matrices(losses, self.groups, self.batched)
        whole = functools.reduce(operator.add, grams.values())  # the groups' Grams add up
        layers = None
        if self.per_layer:
            layers = {
                name: {k: v for k, v in conflict_measures(g, weights).items() if k != "cos"}
                for name, g in grams.items()
            }
        self.pending.append(ConflictRecord(
            step=ctx.step, epoch=trainer.epoch + 1, objectives=names,
            layers=layers, **conflict_measures(whole, weights)))

    def on_epoch_end(self, trainer, record: dict[str, Any]) -> None:
        epoch_records = self.pending
        for key in EPOCH_KEYS:
            values = [getattr(r, key) for r in epoch_records if not math.isnan(getattr(r, key))]
            record[key] = float(np.mean(values)) if values else None
        if trainer.run_dir is not None and epoch_records:
            trainer.run_dir.append_conflicts(epoch_records)
        self.records += epoch_records
        self.pending = []
