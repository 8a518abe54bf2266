"""The gradient-conflict probe: a trainer callback that measures, every ``every`` steps, how the
objectives' gradients on the shared encoder agree, for the whole encoder and per block.

Records go to ``conflicts.jsonl`` in the run folder (one line per probed step, appended at the
end of each epoch so that the file and the checkpoint always agree), and each epoch's metrics
line gets the epoch means of ``conflict_share``, ``cos_mean`` and ``gms_mean``. The probe takes
its gradients with ``torch.autograd.grad`` on the step's own graph before the method's backward:
it changes neither ``.grad`` nor any state, so training follows the same trajectory.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import torch

from scalarize.probes.gradients import conflict_measures, gram_matrices, parameter_groups
from scalarize.runs.store import atomic_write_text
from scalarize.training.callbacks import Callback

FILE = "conflicts.jsonl"
EPOCH_KEYS = ("conflict_share", "cos_mean", "gms_mean")


class ConflictProbe(Callback):
    """Measure gradient conflicts every ``every`` steps (and at the first step)."""

    def __init__(self, every: int = 50, per_layer: bool = True, batched: bool | None = None
                 ) -> None:
        if every < 1:
            raise ValueError("every must be >= 1")
        self.every, self.per_layer, self.batched = every, per_layer, batched
        self.pending: list[dict[str, Any]] = []
        self.records: list[dict[str, Any]] = []

    def on_fit_start(self, trainer) -> None:
        self.groups = parameter_groups(trainer.model.encoder)
        self.pending = []
        if trainer.run_dir is not None:  # resuming: keep what the checkpoint covers
            path = trainer.run_dir.path / FILE
            kept = [r for r in read_conflicts(path) if r["step"] < trainer.step]
            if path.exists() or kept:
                atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in kept))

    def on_losses(self, trainer, losses, per_example, ctx) -> None:
        if ctx.step % self.every:
            return
        with torch.no_grad():
            counts = per_example.mask.sum(dim=1)
            weights = trainer.mixing.step_weights(trainer.weight_tensor, counts)
        grams = gram_matrices(losses, self.groups, self.batched)
        whole = sum(grams.values())
        record: dict[str, Any] = {"step": ctx.step, "epoch": trainer.epoch + 1,
                                  "objectives": list(trainer.objectives.names),
                                  **conflict_measures(whole, weights)}
        if self.per_layer:
            record["layers"] = {
                name: {k: v for k, v in conflict_measures(g, weights).items() if k != "cos"}
                for name, g in grams.items()
            }
        self.pending.append(record)

    def on_epoch_end(self, trainer, record: dict[str, Any]) -> None:
        epoch_records = self.pending
        for key in EPOCH_KEYS:
            values = [r[key] for r in epoch_records if not math.isnan(r[key])]
            record[key] = float(np.mean(values)) if values else None
        if trainer.run_dir is not None and epoch_records:
            with open(trainer.run_dir.path / FILE, "a") as handle:
                handle.write("".join(json.dumps(r) + "\n" for r in epoch_records))
        self.records += epoch_records
        self.pending = []


def read_conflicts(path) -> list[dict[str, Any]]:
    """Records of a ``conflicts.jsonl`` (a torn last line is ignored)."""
    records: list[dict[str, Any]] = []
    try:
        with open(path) as handle:
            lines = handle.read().splitlines()
    except FileNotFoundError:
        return records
    for line in lines:
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return records
