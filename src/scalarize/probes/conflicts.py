"""The gradient-conflict probe: a trainer callback that measures, every ``every`` steps, how the
objectives' gradients on the shared encoder agree, for the whole encoder and per block (on a
model with task-specific paths, its shared parameters: :mod:`scalarize.models.per_task`).

Records go to ``conflicts.jsonl`` in the run folder (one line per probed step, appended at the
end of each epoch so that the file and the checkpoint always agree), and each epoch's metrics
line gets the epoch means of ``conflict_share``, ``cos_mean`` and ``gms_mean``. The probe takes
its gradients with ``torch.autograd.grad`` on the step's own graph before the method's backward:
it changes neither ``.grad`` nor any state, so training follows the same trajectory.

Partial labels: an objective with no example in the probed batch has no gradient to compare; its
row is skipped, and the record names the objectives it measured (``objectives``, in the order of
``cos``, ``norms`` and ``cos_to_update``). A batch without any objective is not recorded.

With ``examples`` (``probes: {conflicts: {every: 21, examples: 32}}``) the probe draws its own
batch instead, ``examples`` labelled training examples per objective and twice that for the
same-objective control (:mod:`scalarize.probes.draw`): the cross-objective measures compare the
objectives' gradients on equal numbers of examples, whatever the weights, and each objective's
gradients on two disjoint halves give ``control_cos`` and ``control_share`` (the share of
negative same-objective cosines), the floor that sampling noise alone gives. The probe's forward
and backward leave training as it was: the global RNG is forked (dropout draws nothing that
training sees), every buffer (BatchNorm's running statistics) is put back, ``.grad`` is never
written, and the model's mode is restored. The step's weights for ``cos_to_update`` are then the
configured ones, not the batch's shares. Each epoch's metrics line also gets ``control_share``
and ``control_cos_mean``.

On several processes (data parallel) the probe measures what one process would: on the step's
batch, each objective's gradient is summed over the processes before the Gram matrices
(:func:`~scalarize.probes.gradients.gram_matrices`), so the measures are the global batch's;
its own batch (``examples``) is drawn from the seed and the step alone, so every process draws,
and measures, the whole of it (no communication; the other processes would otherwise wait at
the step's next all-reduce). Every process holds the same records; rank 0 writes them.
"""

from __future__ import annotations

import functools
import math
import operator
from typing import Any

import numpy as np
import torch

from scalarize.probes.draw import draw_probe, objective_pools
from scalarize.probes.gradients import (
    conflict_measures,
    control_measures,
    gram_matrices,
    parameter_groups,
)
from scalarize.runs.records import ConflictRecord
from scalarize.training.callbacks import Callback

EPOCH_KEYS = ("conflict_share", "cos_mean", "gms_mean")
CONTROL_KEYS = ("control_share", "control_cos_mean")


class _Forward(torch.nn.Module):
    """The trainer's forward as one module call (what ``functional_call`` swaps buffers for):
    a batch to its per-example losses."""

    def __init__(self, model: torch.nn.Module, objectives: Any) -> None:
        super().__init__()
        self.model = model
        self.objectives = objectives

    def forward(self, batch: Any) -> Any:
        features = self.model(batch.x)
        return self.objectives.per_example(self.model.heads, features, batch)


class ConflictProbe(Callback):
    """Measure gradient conflicts every ``every`` steps (and at the first step): on the step's
    own batch, or with ``examples`` on a batch of its own with that many examples per objective
    and a same-objective control."""

    def __init__(self, every: int = 50, per_layer: bool = True, batched: bool | None = None,
                 examples: int | None = None) -> None:
        if every < 1:
            raise ValueError("every must be >= 1")
        if examples is not None and examples < 1:
            raise ValueError("examples must be >= 1 (or left out: the step's own batch)")
        self.every, self.per_layer, self.batched = every, per_layer, batched
        self.examples = examples
        self.pending: list[ConflictRecord] = []
        self.records: list[ConflictRecord] = []

    def on_fit_start(self, trainer) -> None:
        # the shared parameters only: a per-task model's task-specific ones have one gradient
        self.groups = parameter_groups(trainer.model.encoder, trainer.shared_params,
                                       nested=trainer.model.per_task)
        self.pending = []
        if self.examples is not None:
            self.pools = objective_pools(trainer.objectives, trainer.splits["train"])
        if trainer.run_dir is not None:  # resuming: keep what the checkpoint covers
            trainer.run_dir.truncate_conflicts(trainer.step)

    def takes_gradients(self, step: int) -> bool:
        # a probe batch of its own leaves the step's graph (and a compiled step) alone
        return self.examples is None and step % self.every == 0

    def on_losses(self, trainer, losses, per_example, ctx) -> None:
        if ctx.step % self.every:
            return
        if self.examples is not None:
            record = self._probe_own_batch(trainer, ctx.step)
            if record is not None:
                self.pending.append(record)
            return
        with torch.no_grad():  # the step's (global) counts, as the method's weights take
            counts = ctx.counts if ctx.counts is not None else per_example.mask.sum(dim=1)
            weights = trainer.mixing.step_weights(trainer.weight_tensor, counts)
        names = list(trainer.objectives.names)
        present = ctx.present()
        if present is not None:  # partial labels: skip the rows of absent objectives
            if not present:
                return
            losses, weights = losses[present], weights[present]
            names = [names[i] for i in present]
        grams = gram_matrices(losses, self.groups, self.batched, ctx.shard)
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

    def _probe_own_batch(self, trainer, step: int) -> ConflictRecord | None:
        """Measure on ``examples`` drawn per objective (two halves each), leaving the model,
        its buffers, ``.grad`` and every RNG as they were."""
        assert self.examples is not None
        draw = draw_probe(self.pools, self.examples, trainer.config.seed, step)
        present = [i for i, n in enumerate(draw.counts) if n > 0]
        if not present:
            return None
        batch = trainer.splits["train"].batch(draw.index)
        model = trainer.model
        # copies of the buffers take BatchNorm's updates; the originals (which the step's
        # graph may have saved) are never written, so training cannot tell the probe ran
        buffers = {name: b.detach().clone() for name, b in model.named_buffers()}
        probed = _Forward(model, trainer.objectives)
        was_training = model.training
        devices = [trainer.device] if trainer.device.type == "cuda" else []
        try:
            with torch.random.fork_rng(devices=devices):
                model.train()
                with trainer.autocast:
                    out = torch.func.functional_call(probed, {f"model.{k}": v for k, v in
                                                              buffers.items()}, (batch,))
        finally:
            model.train(was_training)
        halves, start = [], 0
        for k, size in enumerate([*draw.counts, *draw.counts]):  # a halves, then b halves
            halves.append((k % len(draw.counts), start, start + size))
            start += size
        losses = torch.stack([out.loss[t, lo:hi].float().mean() for t, lo, hi in halves
                              if t in present])  # a of the present objectives, then b
        grams = gram_matrices(losses, self.groups, self.batched)
        m = len(present)
        weights = trainer.weight_tensor[present]
        names = [trainer.objectives.names[i] for i in present]

        def measures(gram: torch.Tensor, cos: bool = True) -> dict[str, Any]:
            cross = conflict_measures(gram[:m, :m], weights)
            if not cos:
                cross.pop("cos")
            return {**cross, **control_measures(gram, m)}

        whole = functools.reduce(operator.add, grams.values())
        layers = ({name: measures(g, cos=False) for name, g in grams.items()}
                  if self.per_layer else None)
        return ConflictRecord(step=step, epoch=trainer.epoch + 1, objectives=names,
                              layers=layers, examples=[draw.counts[i] for i in present],
                              **measures(whole))

    def on_epoch_end(self, trainer, record: dict[str, Any]) -> None:
        epoch_records = self.pending
        keys = EPOCH_KEYS + (CONTROL_KEYS if self.examples is not None else ())
        for key in keys:
            values = [v for r in epoch_records
                      if (v := getattr(r, key)) is not None and not math.isnan(v)]
            record[key] = float(np.mean(values)) if values else None
        if trainer.run_dir is not None and epoch_records:
            trainer.run_dir.append_conflicts(epoch_records)
        self.records += epoch_records
        self.pending = []
