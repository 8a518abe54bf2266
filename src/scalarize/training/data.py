"""Batches on the device, from in-memory arrays or from a streamed dataset.

- :class:`TensorSplit` (in-memory :class:`Split`): no ``DataLoader``; the images already sit in
  memory as uint8, so a batch is one gather, one copy and one fused normalisation, which keeps
  the data path far below the cost of a training step.
- :class:`LoaderSplit` (:class:`StreamSplit`): one ``DataLoader`` per split, built once, whose
  batch sampler yields the index batches the trainer's seeded sampler chose for the epoch (so
  the order stays a pure function of ``(seed, epoch)``, whatever the number of workers);
  ``train.workers`` processes read and stack the items (uint8 stays uint8), then the batch is
  copied to the device (pinned memory and non-blocking copies on CUDA) and normalised there
  exactly like a :class:`TensorSplit` batch. Workers draw no random numbers: augmentation runs
  on the device from the main process's seeded RNG.

Both serve ``batches(indices)`` (one batch per index tensor, in order), ``sequential(size)``
(evaluation) and ``batch(index)``. Both take an optional ``check`` (a
:class:`~scalarize.training.batch_check.BatchCheck`): a :class:`TensorSplit` runs it once over
the whole split when built, a :class:`LoaderSplit` on every batch as the loader hands it over,
on the host, before the copy to the device.

Inputs that are not images (:mod:`scalarize.benchmarks.inputs`) take the same path without
the image steps: float features become float32, standardised per feature (``x - mean) / std``
with the training split's statistics, :func:`input_stats`) when the data asks for it, token
ids stay int64.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol, TypeAlias

import numpy as np
import torch
from torch.utils.data import DataLoader

from scalarize.benchmarks.base import AnySplit, Split
from scalarize.benchmarks.inputs import InputKind, InputSpec
from scalarize.benchmarks.stream import StreamSplit, collate
from scalarize.errors import ScalarizeError


@dataclass
class Batch:
    """Normalised float inputs (int64 token ids), labels per task, and domain indices (or
    ``None``)."""

    x: torch.Tensor
    labels: dict[str, torch.Tensor]
    domain: torch.Tensor | None

    def __len__(self) -> int:
        return int(self.x.shape[0])


class Check(Protocol):
    """What the splits call to check their values (see
    :class:`~scalarize.training.batch_check.BatchCheck`)."""

    def __call__(self, x: torch.Tensor, labels: dict[str, torch.Tensor], index: torch.Tensor,
                 batch: int | None = None) -> None: ...

    def whole(self, x: torch.Tensor, labels: dict[str, torch.Tensor]) -> None: ...


def channel_stats(x: np.ndarray, max_images: int = 10_000) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std (in [0, 1] units) from at most ``max_images`` images."""
    sample = x[:max_images].astype(np.float32) / 255.0
    mean = sample.mean(axis=(0, 2, 3))
    std = sample.std(axis=(0, 2, 3)) + 1e-6
    return mean, std


def feature_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and std of float features N×F or sequences N×L×F (over examples and
    positions), in float64 then float32; a constant feature gets std 1 (it is only centred)."""
    flat = np.asarray(x, dtype=np.float64).reshape(-1, x.shape[-1])
    mean, std = flat.mean(axis=0), flat.std(axis=0)
    std[std < 1e-12] = 1.0
    return mean.astype(np.float32), std.astype(np.float32)


class Normalise:
    """What a batch of inputs becomes on the device: uint8 images scaled by the channel
    statistics (streamed float images as they are: ``float_images_as_given``), float features
    standardised when ``mean`` and ``std`` are given (as they are otherwise), token ids left
    int64."""

    def __init__(self, kind: InputKind, mean: np.ndarray | None, std: np.ndarray | None,
                 device: torch.device, float_images_as_given: bool = True) -> None:
        self.kind = kind
        self.float_images_as_given = float_images_as_given
        self.scale: torch.Tensor | None = None
        self.shift: torch.Tensor | None = None
        if mean is None or std is None or kind == "tokens":
            return
        if kind == "image":
            shape: tuple[int, ...] = (1, -1, 1, 1)
            scale, shift = 1.0 / (255.0 * std), -mean / std
        else:
            shape = (1, -1) if kind == "tabular" else (1, 1, -1)
            scale, shift = 1.0 / std, -mean / std
        self.scale = torch.as_tensor(scale, device=device).view(shape)
        self.shift = torch.as_tensor(shift, device=device).view(shape)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "tokens":
            return x.long()
        if self.kind == "image" and x.dtype != torch.uint8 and self.float_images_as_given:
            return x.float()  # streamed float images: the dataset normalised them
        x = x.float()
        if self.shift is None or self.scale is None:
            return x
        return torch.addcmul(self.shift, x, self.scale)


class TensorSplit:
    """A :class:`Split` as torch tensors, served as normalised batches on ``device``."""

    def __init__(self, split: Split, device: torch.device, mean: np.ndarray | None,
                 std: np.ndarray | None, check: Check | None = None,
                 kind: InputKind = "image") -> None:
        self.device = device
        # a read-only array (a memory-mapped cache) is copied: torch needs writable memory
        self.x = torch.from_numpy(np.require(split.x, requirements=["C", "W"]))
        self.labels = {k: torch.from_numpy(v) for k, v in split.labels.items()}
        if check is not None:
            check.whole(self.x, self.labels)
        self.domain = None if split.domain is None else torch.from_numpy(split.domain)
        self.domain_np = split.domain
        # in-memory images are scaled whatever their dtype, as they always were
        self.normalise = Normalise(kind, mean, std, device, float_images_as_given=False)

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def batch(self, index: torch.Tensor | slice) -> Batch:
        """The examples at ``index``, normalised, on the device."""
        device = self.device
        x = self.normalise(self.x[index].to(device, non_blocking=True))
        labels = {k: v[index].to(device, non_blocking=True) for k, v in self.labels.items()}
        domain = (None if self.domain is None
                  else self.domain[index].to(device, non_blocking=True))
        return Batch(x=x, labels=labels, domain=domain)

    def batches(self, indices: Iterable[torch.Tensor]) -> Iterator[Batch]:
        """One batch per index tensor of ``indices``, in order (a training epoch)."""
        return (self.batch(index) for index in indices)

    def sequential(self, batch_size: int) -> Iterator[Batch]:
        """Batches in order, for evaluation."""
        for start in range(0, len(self), batch_size):
            yield self.batch(slice(start, start + batch_size))


_STATS: weakref.WeakKeyDictionary[StreamSplit, tuple[np.ndarray, np.ndarray]] = \
    weakref.WeakKeyDictionary()


def split_stats(split: AnySplit) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std (in [0, 1] units) of a training split's images: from the
    in-memory array, or from a seeded sample of at most 512 items of a streamed split (computed
    once per split; zeros and ones for floating-point images, which are taken as they are)."""
    if isinstance(split, Split):
        return channel_stats(split.x)
    if split not in _STATS:
        sample = split.sample()
        c = sample.shape[1]
        _STATS[split] = (channel_stats(sample) if sample.dtype == np.uint8
                         else (np.zeros(c, np.float32), np.ones(c, np.float32)))
    return _STATS[split]


def refuse_augment(augment: bool, inputs: InputSpec) -> None:
    """Refuse ``train.augment`` (crops and flips of images) on inputs that are not images."""
    if augment and not inputs.is_image:
        raise ScalarizeError(f"train.augment crops and flips images; these inputs are "
                             f"{inputs.describe()}: remove train.augment")


def input_stats(split: AnySplit, kind: InputKind, standardize: bool = False
                ) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The statistics a training split's inputs are normalised with: the channel statistics
    of images (:func:`split_stats`), the per-feature mean and std of float features or
    sequences when ``standardize`` (:func:`feature_stats`; a streamed split's from its seeded
    sample), ``(None, None)`` otherwise (taken as they are)."""
    if kind == "image":
        return split_stats(split)
    if not standardize or kind == "tokens":
        return None, None
    return feature_stats(split.x if isinstance(split, Split) else split.sample())


def stats_show_finite(split: AnySplit, kind: InputKind, mean: np.ndarray | None) -> bool:
    """Whether ``mean``, the :func:`input_stats` of ``split``, already shows every input value
    of it finite: the feature statistics of an in-memory split sum all its values in float64,
    where a NaN or an infinity stays one, so the split's value check need not sum them again
    (statistics that are not finite prove nothing: the check runs). Image statistics come from
    a sample: never."""
    return (mean is not None and kind != "image" and isinstance(split, Split)
            and bool(np.isfinite(mean).all()))


class _EpochBatches:
    """A ``DataLoader`` batch sampler: the index lists set for the current pass."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


def _one_line(exc: ScalarizeError) -> ScalarizeError:
    """A data error raised in a worker process: the worker's traceback reduced to its message."""
    text = str(exc)
    if "\n" not in text:
        return exc
    last = [line for line in text.splitlines() if line.strip()][-1]
    return ScalarizeError(last.split("Error: ", 1)[-1].strip())


class LoaderSplit:
    """A :class:`StreamSplit` served as normalised batches on ``device`` through ``workers``
    loader processes (see the module doc)."""

    def __init__(self, split: StreamSplit, device: torch.device, mean: np.ndarray | None,
                 std: np.ndarray | None, workers: int = 0, check: Check | None = None,
                 kind: InputKind = "image") -> None:
        self.split = split
        self.check = check
        self.device = device
        self.workers = workers
        self.domain = None if split.domain is None else torch.from_numpy(split.domain)
        self.domain_np = split.domain
        self.normalise = Normalise(kind, mean, std, device)
        self._order = _EpochBatches()
        self._loader: DataLoader[Any] | None = None
        self._busy = False

    def __len__(self) -> int:
        return len(self.split)

    def _make_loader(self) -> DataLoader[Any]:
        return DataLoader(
            self.split.dataset, batch_sampler=self._order, num_workers=self.workers,
            collate_fn=collate, pin_memory=self.device.type == "cuda",
            # workers start with each pass and end with it: a local population search holds
            # a trainer (three splits) per member, whose idle workers would otherwise stay
            persistent_workers=False,
            generator=torch.Generator(),  # its seed draw leaves the global torch RNG alone
        )

    def _to_device(self, x: torch.Tensor, labels: dict[str, torch.Tensor],
                   index: torch.Tensor) -> Batch:
        device = self.device
        x = self.normalise(x.to(device, non_blocking=True))
        labels = {k: v.to(device, non_blocking=True) for k, v in labels.items()}
        domain = (None if self.domain is None
                  else self.domain[index].to(device, non_blocking=True))
        return Batch(x=x, labels=labels, domain=domain)

    def batches(self, indices: Iterable[torch.Tensor]) -> Iterator[Batch]:
        """One batch per index tensor of ``indices``, in order. The index tensors are drawn up
        front (the loader reads ahead), so weights set while the batches are consumed apply
        from the next pass on."""
        if self._busy:
            raise RuntimeError("a LoaderSplit serves one pass at a time; finish (or close) "
                               "the previous batches() before starting another")
        order = [torch.as_tensor(index) for index in indices]
        self._order.batches = [index.tolist() for index in order]
        if self._loader is None:
            self._loader = self._make_loader()
        self._busy = True
        try:
            for number, ((x, labels), index) in enumerate(zip(self._loader, order,
                                                               strict=True), start=1):
                if self.check is not None:
                    self.check(x, labels, index, number)
                yield self._to_device(x, labels, index)
        except ScalarizeError as exc:
            raise _one_line(exc) from None
        finally:
            self._busy = False

    def batch(self, index: torch.Tensor | slice) -> Batch:
        """The examples at ``index``, read in this process, normalised, on the device."""
        rows = torch.arange(len(self))[index] if isinstance(index, slice) else \
            torch.as_tensor(index)
        x, labels = collate([self.split.dataset[i] for i in rows.tolist()])
        if self.check is not None:
            self.check(x, labels, rows)
        return self._to_device(x, labels, rows)

    def sequential(self, batch_size: int) -> Iterator[Batch]:
        """Batches in order, for evaluation."""
        n = len(self)
        return self.batches(torch.arange(start, min(start + batch_size, n))
                            for start in range(0, n, batch_size))


#: What the trainer serves a split as.
ServedSplit: TypeAlias = TensorSplit | LoaderSplit


def serve(split: AnySplit, device: torch.device, mean: np.ndarray | None,
          std: np.ndarray | None, workers: int = 0, check: Check | None = None,
          kind: InputKind = "image") -> ServedSplit:
    """``split`` served on ``device``: a :class:`TensorSplit` for arrays in memory, a
    :class:`LoaderSplit` (``workers`` loader processes) for a streamed split; ``check`` runs
    on its values (see the module doc); inputs of ``kind`` normalised with ``mean`` and
    ``std`` (see :class:`Normalise`)."""
    if isinstance(split, Split):
        return TensorSplit(split, device, mean, std, check, kind)
    return LoaderSplit(split, device, mean, std, workers, check, kind)
