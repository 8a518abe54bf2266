"""Streamed splits: examples read lazily from any map-style ``torch.utils.data.Dataset``.

A :class:`StreamSplit` stands where an in-memory :class:`~scalarize.benchmarks.base.Split`
does (``len``, ``subset``, ``domain``, ``image_shape``), so the samplers, the held-out split of
population search and the trainer take it unchanged; the trainer serves it through one
``DataLoader`` per split (``train.workers`` worker processes) in the order its seeded sampler
decides.

The contract for one item: ``dataset[i]`` returns ``(input, targets)`` where

- ``input`` is a numpy array or tensor, every item of one shape and dtype: an image C×H×W,
  either ``uint8`` (0..255; normalised on the device exactly like in-memory images, with a
  per-channel mean and std taken from a seeded sample of at most 512 training items) or
  floating point (taken as it is: the dataset normalised it); or F float features (tabular),
  L integer token ids (give the vocabulary: ``from_datasets(..., vocab_size=V)``) or L×F
  floats (a sequence), see :mod:`scalarize.benchmarks.inputs`;
- ``targets`` is a dict ``task name -> label``: a python int or float, a numpy scalar or
  array, or a tensor. A per-image integer label becomes int64, a float one float32; dense
  targets are arrays H×W or C×H×W and keep their dtype (e.g. uint8 segmentation maps). Every
  item names every task; one without a task's label gives the missing value instead: ``-1``
  for a class, ``float("nan")`` (or a map of NaN) for a float target (partial labels; see
  :mod:`scalarize.training.task_kinds`).

The domain of each example (multi-domain view) is not part of the item: the split carries it
as an int64 array, as :func:`stream_split` builds from one dataset per domain. Items hold no
randomness: augmentation runs on the device, from the main process's seeded RNG.

Example:
    >>> import numpy as np
    >>> class Toy(torch.utils.data.Dataset):
    ...     def __len__(self):
    ...         return 10
    ...     def __getitem__(self, i):
    ...         return np.full((3, 8, 8), i, np.uint8), {"digit": i % 2}
    >>> split = stream_split([Toy(), Toy()])
    >>> len(split), split.image_shape, split.domain[[0, 19]].tolist()
    (20, (3, 8, 8), [0, 1])
    >>> len(split.subset(np.array([1, 2, 3])))
    3
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import ConcatDataset, IterableDataset, Subset
from torch.utils.data import Dataset as TorchDataset

from scalarize.benchmarks.inputs import InputSpec, infer_input
from scalarize.errors import ScalarizeError

#: Items sampled for the per-channel mean and std of uint8 images.
STATS_ITEMS = 512


def image_array(image: Any) -> np.ndarray:
    """An item's input (a C×H×W image, uint8 or float; F or L×F floats; L integer ids; an
    array or tensor) as a numpy array (token ids as int64)."""
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu().numpy()
    if not isinstance(image, np.ndarray):
        raise ScalarizeError(f"a streamed item's input is a {type(image).__name__}; give a "
                             "numpy array or tensor (see scalarize.benchmarks.stream)")
    if image.ndim == 3 or np.issubdtype(image.dtype, np.floating):
        if not 1 <= image.ndim <= 3 or min(image.shape) < 1:
            raise ScalarizeError(f"a streamed input has shape {image.shape}; give C×H×W "
                                 "images, F features or L×F sequences, one shape for every "
                                 "item")
        if image.dtype != np.uint8 and not np.issubdtype(image.dtype, np.floating):
            raise ScalarizeError(f"a streamed image has dtype {image.dtype}; give uint8 "
                                 "(0-255) or floating point (normalised by the dataset)")
        return image
    if image.ndim == 1 and image.dtype.kind in "iu" and image.size:
        return image.astype(np.int64)
    raise ScalarizeError(f"a streamed input has shape {image.shape} and dtype {image.dtype}; "
                         "give C×H×W images, F float features, L integer token ids or L×F "
                         "float sequences")


def target_array(value: Any) -> np.ndarray:
    """One target as a numpy array: a per-image integer as int64, a per-image float as float32,
    arrays (dense targets) in their own dtype."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    array = np.asarray(value)
    if array.dtype == np.bool_:
        array = array.astype(np.int64)
    if array.dtype.kind not in "iuf":
        raise ScalarizeError(f"a streamed target has dtype {array.dtype}; give numbers "
                             "(an int, a float, or a numeric array)")
    if array.ndim == 0:
        return array.astype(np.int64 if array.dtype.kind in "iu" else np.float32)
    if array.dtype == np.float64:
        return array.astype(np.float32)
    return array


def read_item(item: Any) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """A dataset's item checked against the contract: ``(image, {task: target})`` as arrays."""
    if not isinstance(item, tuple | list) or len(item) != 2 or not isinstance(item[1], Mapping):
        raise ScalarizeError(f"a streamed item is a {type(item).__name__}; dataset[i] must "
                             "return (image, {task name: label})")
    image, targets = item
    return image_array(image), {str(k): target_array(v) for k, v in targets.items()}


def collate(items: Sequence[Any]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Items stacked into a batch: images N×C×H×W (uint8 stays uint8) and one tensor per task."""
    read = [read_item(item) for item in items]
    images = [image for image, _ in read]
    kinds = sorted({f"{image.dtype} {image.shape}" for image in images})
    if len(kinds) > 1:
        raise ScalarizeError(f"streamed images differ ({', '.join(kinds[:2])}); every item "
                             "of a dataset must have one shape and dtype")
    names = read[0][1].keys()
    if any(t.keys() != names for _, t in read):
        raise ScalarizeError(f"streamed items name different tasks (first: {sorted(names)}); "
                             "every item must give the same tasks")
    labels = {}
    for name in names:
        try:
            labels[name] = torch.from_numpy(np.stack([t[name] for _, t in read]))
        except ValueError:
            raise ScalarizeError(f"streamed targets of task {name!r} differ in shape; every "
                                 "item must give one shape per task") from None
    return torch.from_numpy(np.stack(images)), labels


class StreamSplit:
    """A split read lazily from the map-style ``dataset``, with an optional int64 ``domain``
    index per example (see the module doc for what an item holds)."""

    def __init__(self, dataset: TorchDataset[Any], domain: np.ndarray | None = None) -> None:
        try:
            if isinstance(dataset, IterableDataset):
                raise TypeError
            n = len(dataset)  # type: ignore[arg-type]
        except TypeError:
            raise ScalarizeError(f"a streamed dataset ({type(dataset).__name__}) must be "
                                 "map-style: define __len__ and __getitem__") from None
        if domain is not None:
            domain = np.asarray(domain)
            if domain.shape != (n,) or domain.dtype.kind not in "iu" or (
                    n and domain.min() < 0):
                raise ScalarizeError(f"a streamed split's domain must be {n} non-negative "
                                     f"integers, one per example (got {domain.dtype} "
                                     f"{domain.shape})")
            domain = domain.astype(np.int64)
        self.dataset = dataset
        self.domain = domain
        self._n = int(n)
        self._shape: tuple[int, ...] | None = None

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, i: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Example ``i`` as arrays, checked against the item contract."""
        return read_item(self.dataset[i])

    def subset(self, index: np.ndarray) -> StreamSplit:
        """The examples ``index`` of this split (a ``torch.utils.data.Subset``)."""
        index = np.asarray(index, dtype=np.int64)
        part = StreamSplit(Subset(self.dataset, index.tolist()),
                           None if self.domain is None else self.domain[index])
        part._shape = self._shape
        return part

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of the first example's image."""
        shape = self.input_shape
        if len(shape) != 3:
            raise ScalarizeError(f"these inputs are not images (shape {shape} each); read "
                                 "their input instead")
        c, h, w = shape
        return c, h, w

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The shape of the first example's input."""
        if self._shape is None:
            if self._n == 0:
                raise ScalarizeError("a streamed split has no examples, so no input shape")
            self._shape = tuple(int(d) for d in self[0][0].shape)
        return self._shape

    def input_spec(self, vocab_size: int | None = None, standardize: bool = False,
                   where: str = "x") -> InputSpec:
        """What one example's input is, read from the first example; token inputs need
        ``vocab_size`` (a streamed split is not read whole to find it)."""
        if self._n == 0:
            raise ScalarizeError("a streamed split has no examples, so no input")
        first = self[0][0][None]
        if first.ndim == 2 and first.dtype.kind in "iu" and vocab_size is None:
            raise ScalarizeError(f"{where} are streamed token ids; give the vocabulary, e.g. "
                                 "from_datasets(..., vocab_size=V) (ids 0..V-1)")
        return infer_input(first, vocab_size=vocab_size, standardize=standardize, where=where)

    def sample(self, max_items: int = STATS_ITEMS, seed: int = 0) -> np.ndarray:
        """The images of a seeded sample of at most ``max_items`` examples, in index order
        (every example, in order, when the split has no more)."""
        n = len(self)
        rng = np.random.default_rng([seed, 5381])
        index = (np.arange(n) if n <= max_items
                 else np.sort(rng.choice(n, max_items, replace=False)))
        return collate([self.dataset[int(i)] for i in index])[0].numpy()


def stream_split(datasets_per_domain: Sequence[TorchDataset[Any]]) -> StreamSplit:
    """One :class:`StreamSplit` over one dataset per domain (a ``ConcatDataset``); the domain
    index of an example is the position of its dataset."""
    if not datasets_per_domain:
        raise ScalarizeError("stream_split needs at least one dataset (one per domain)")
    sizes = [len(d) for d in datasets_per_domain]  # type: ignore[arg-type]
    domain = np.repeat(np.arange(len(sizes), dtype=np.int64), sizes)
    return StreamSplit(ConcatDataset(datasets_per_domain), domain)


__all__ = ["STATS_ITEMS", "StreamSplit", "collate", "image_array", "read_item", "stream_split",
           "target_array"]
