"""The first batch, checked before training: the model's forward on real images, each task's
targets against what its kind expects (shape, dtype, label range), and each loss returning one
value per example. A user's data or loss that does not fit is one line naming the task, what
was seen and what was expected, before any run folder is written. A kind's declared missing
value (``-1`` for a class, NaN for a float target: partial labels) fits; any other value outside
the kind's range does not.

Example:
    >>> import torch
    >>> from scalarize.training.task_kinds import Classification
    >>> Classification(3).expect(torch.zeros(2, 3), torch.tensor([0, -1])) is None
    True
    >>> Classification(3).expect(torch.zeros(2, 3), torch.tensor([0, 5]))
    'shape (2,) of integer class indices 0..2 (or -1: no label), found 5'
"""

from __future__ import annotations

from typing import cast

import torch
from torch import nn

from scalarize.errors import ScalarizeError
from scalarize.training.data import Batch
from scalarize.training.objectives import Objectives


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__


def _seen(tensor: torch.Tensor) -> str:
    return f"shape {tuple(tensor.shape)} ({str(tensor.dtype).removeprefix('torch.')})"


def check_first_batch(objectives: Objectives, model: nn.Module, batch: Batch) -> None:
    """Raise one :class:`ScalarizeError` line when ``batch`` (a few training examples) does not
    fit ``model`` and ``objectives``. The model runs in eval mode without gradients, so nothing
    trains, no batch-norm statistics move and no random numbers are drawn."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            _check(objectives, model, batch)
    finally:
        model.train(was_training)


def _check(objectives: Objectives, model: nn.Module, batch: Batch) -> None:
    try:
        features = model(batch.x)
    except Exception as exc:
        raise ScalarizeError(f"model: forward on the first training batch (images "
                             f"{_seen(batch.x)}) failed: {_first_line(exc)}") from exc
    heads = cast(nn.ModuleDict, model.heads)
    for head, label, kind in objectives.tasks():
        if label not in batch.labels:
            raise ScalarizeError(f"task {label!r}: the training batches carry no target for "
                                 f"it (they carry {sorted(batch.labels)})")
        target = batch.labels[label]
        output = heads[head](features)
        wanted = kind.expect(output, target)
        if wanted is not None:
            raise ScalarizeError(f"task {label!r}: the first training batch has targets of "
                                 f"{_seen(target)}; it expects {wanted}")
        try:
            loss = kind.loss(output, target)
        except Exception as exc:
            raise ScalarizeError(f"task {label!r}: its loss failed on the first training batch "
                                 f"(output {_seen(output)}, targets {_seen(target)}): "
                                 f"{_first_line(exc)}") from exc
        n = target.shape[0] if target.ndim else 0
        if not isinstance(loss, torch.Tensor) or tuple(loss.shape) != (n,):
            got = _seen(loss) if isinstance(loss, torch.Tensor) else type(loss).__name__
            raise ScalarizeError(f"task {label!r}: its loss returned {got} for a batch of {n}; "
                                 f"a loss returns one value per example, shape ({n},) "
                                 "(use reduction='none')")


__all__ = ["check_first_batch"]
