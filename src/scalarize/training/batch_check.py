"""Batches checked against the model and the task kinds, so the user's data fails in one line.

- :func:`check_first_batch`, before training: the model's forward on real images, each task's
  targets against what its kind expects (shape, dtype, label range), and each loss returning one
  value per example. A user's data or loss that does not fit is one line naming the task, what
  was seen and what was expected, before any run folder is written.
- :class:`BatchCheck`, every batch of every split (streamed splits, as the loader serves them)
  and every in-memory split once: finite images and each task's values in its kind's range
  (:meth:`~scalarize.training.task_kinds.TaskKind.out_of_range`), one vectorised test per task
  on the host before the copy to the device (no device synchronisation). A fault is one line
  naming the split, the item and the task, at the batch that carries it, before its loss is
  computed: an out-of-range class is not a raw ``IndexError`` from the loss, NaN pixels are
  not "training diverged; lower train.lr", an infinite target is not a silent 1e+35 loss.

A kind's declared missing value (``-1`` for a class, NaN for a float target: partial labels)
fits; any other value outside the kind's range does not.

Example:
    >>> import torch
    >>> from scalarize.training.task_kinds import Classification
    >>> Classification(3).expect(torch.zeros(2, 3), torch.tensor([0, -1])) is None
    True
    >>> Classification(3).expect(torch.zeros(2, 3), torch.tensor([0, 5]))
    'shape (2,) of integer class indices 0..2 (or -1: no label), found 5'
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TypeAlias, cast

import torch
from torch import nn

from scalarize.errors import ScalarizeError
from scalarize.models.per_task import features_for
from scalarize.training.data import Batch
from scalarize.training.objectives import Objectives
from scalarize.training.task_kinds import TaskKind

#: A check of a forward's features on a batch of the given size (raises one line).
Contract: TypeAlias = Callable[[object, int], None]

#: Elements an in-memory split is checked in at a time (bounds the memory of the check).
CHUNK_ELEMENTS = 1 << 22


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__


def _seen(tensor: torch.Tensor) -> str:
    return f"shape {tuple(tensor.shape)} ({str(tensor.dtype).removeprefix('torch.')})"


def check_first_batch(objectives: Objectives, model: nn.Module, batch: Batch,
                      contract: Contract | None = None) -> None:
    """Raise one :class:`ScalarizeError` line when ``batch`` (a few training examples) does not
    fit ``model`` and ``objectives``. The model runs in eval mode without gradients, so nothing
    trains, no batch-norm statistics move and no random numbers are drawn. ``contract``, when
    given, checks the forward's features (and the batch's size) before the heads read them:
    the encoder contract's check on this batch, so one forward serves both checks (the trainer
    builds the model without its dummy-batch forward and checks it here)."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            _check(objectives, model, batch, contract)
    finally:
        model.train(was_training)


def _check(objectives: Objectives, model: nn.Module, batch: Batch,
           contract: Contract | None) -> None:
    try:
        features = model(batch.x)
    except Exception as exc:
        raise ScalarizeError(f"model: forward on the first training batch (images "
                             f"{_seen(batch.x)}) failed: {_first_line(exc)}") from exc
    if contract is not None:
        contract(features, len(batch))
    heads = cast(nn.ModuleDict, model.heads)
    for head, label, kind in objectives.tasks():
        if label not in batch.labels:
            raise ScalarizeError(f"task {label!r}: the training batches carry no target for "
                                 f"it (they carry {sorted(batch.labels)})")
        target = batch.labels[label]
        output = heads[head](features_for(features, head))
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


def _shown(value: torch.Tensor) -> str:
    number = value.item()
    return str(int(number)) if not value.is_floating_point() else repr(float(number))


class BatchCheck:
    """The values of one split's batches checked (see the module doc): ``split`` names the
    split, ``tasks`` the ``(label, kind)`` of each task its batches carry.

    Example:
        >>> from scalarize.training.task_kinds import Classification
        >>> check = BatchCheck("test", [("digit", Classification(4))])
        >>> check(torch.zeros(2, 1, 2, 2), {"digit": torch.tensor([1, 4])}, torch.tensor([6, 7]),
        ...       batch=3)
        Traceback (most recent call last):
        ...
        scalarize.errors.ScalarizeError: test split, item 7 (batch 3): task 'digit' has label 4; \
it takes class indices 0..3 (or -1: no label)
    """

    def __init__(self, split: str, tasks: Sequence[tuple[str, TaskKind]],
                 vocab_size: int | None = None, finite_inputs: bool = False) -> None:
        self.split = split
        self.tasks = list(tasks)
        self.vocab_size = vocab_size  # token inputs: ids must lie in 0..vocab_size-1
        # the inputs are known finite (:func:`~scalarize.training.data.stats_show_finite`):
        # only the labels are left to check
        self.finite_inputs = finite_inputs

    def _where(self, index: torch.Tensor | None, row: int, batch: int | None) -> str:
        item = int(index[row]) if index is not None and index.numel() > row else row
        return f"{self.split} split, item {item}" + (f" (batch {batch})" if batch else "")

    def __call__(self, x: torch.Tensor, labels: dict[str, torch.Tensor],
                 index: torch.Tensor | None, batch: int | None = None) -> None:
        """Raise one :class:`ScalarizeError` line when the images ``x`` or the ``labels`` of
        the items ``index`` (of the split; ``None``: items ``0..len(x) - 1``) hold a value
        that training cannot take; ``batch`` is the batch's position in its pass (1 = first),
        ``None`` for a whole split."""
        # uint8 images are finite by their type: nothing to test. A float batch's sum is
        # finite when every pixel is (one reduction, no mask); only a sum that is not (a NaN,
        # an infinity, or an overflow of huge values) is looked at pixel by pixel. (The sum
        # read as a Python float: a third of torch.isfinite's cost on one value)
        if (not self.finite_inputs and x.is_floating_point()
                and not math.isfinite(x.sum().item())):
            bad = ~torch.isfinite(x)
            if bool(bad.any()):
                row = int(bad.reshape(bad.shape[0], -1).any(dim=1).nonzero()[0])
                if x.ndim != 4:  # features or sequences: no pixels, no uint8
                    raise ScalarizeError(f"{self._where(index, row, batch)}: its input holds "
                                         "NaN or infinite values; give finite values (fill "
                                         "in missing features before)")
                raise ScalarizeError(f"{self._where(index, row, batch)}: its image holds NaN or "
                                     "infinite values; give finite pixel values (or uint8)")
        if self.vocab_size is not None and not x.is_floating_point():
            bad = (x < 0) | (x >= self.vocab_size)
            if bool(bad.any()):
                row = int(bad.reshape(bad.shape[0], -1).any(dim=1).nonzero()[0])
                raise ScalarizeError(
                    f"{self._where(index, row, batch)}: token id {int(x[row][bad[row]][0])} is "
                    f"outside the vocabulary 0..{self.vocab_size - 1}; map unseen ids to one id "
                    "of your own, or give a larger vocab_size")
        for label, kind in self.tasks:
            target = labels.get(label)
            if target is None or target.ndim == 0:  # the first-batch check says what is wrong
                continue
            mask = kind.out_of_range(target)
            if mask is None or not bool(mask.any()):
                continue
            row = int(mask.reshape(mask.shape[0], -1).any(dim=1).nonzero()[0])
            value = _shown(target[row][mask[row]].reshape(-1)[0])
            what = "label" if not target.is_floating_point() else "value"
            raise ScalarizeError(f"{self._where(index, row, batch)}: task {label!r} has {what} "
                                 f"{value}; it takes {kind.value_rule()}")

    def whole(self, x: torch.Tensor, labels: dict[str, torch.Tensor]) -> None:
        """Check an in-memory split once, in chunks of at most :data:`CHUNK_ELEMENTS` elements
        per tensor (the item index in a refusal is the split's)."""
        n = int(x.shape[0])
        if n == 0:
            return
        per_row = max([math.prod(x.shape[1:]), *(math.prod(v.shape[1:])
                                                 for v in labels.values())])
        rows = max(1, CHUNK_ELEMENTS // max(1, per_row))
        if rows >= n:  # one chunk (most splits): the tensors as they are, items 0..n-1
            self(x, labels, None)
            return
        for start in range(0, n, rows):
            part = slice(start, min(start + rows, n))
            self(x[part],
                 {k: v[part] for k, v in labels.items()}, torch.arange(n)[part])


__all__ = ["CHUNK_ELEMENTS", "BatchCheck", "Contract", "check_first_batch"]
