"""Tasks and data from Python: :func:`task` declares a task (a built-in kind, or the user's own
loss and metric), :func:`from_arrays` wraps in-memory arrays as a
:class:`~scalarize.benchmarks.Dataset`. Everything a built-in benchmark produces, so the
trainer, the studies and the reports take it unchanged.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.integers(0, 256, (40, 3, 8, 8), dtype=np.uint8)
    >>> labels = {"digit": rng.integers(0, 3, 40), "area": rng.random(40)}
    >>> tasks = [task("digit", classes=3), task("area", kind="regression", dense=False)]
    >>> data = from_arrays(tasks, train=(x[:30], {k: v[:30] for k, v in labels.items()}),
    ...                    test=(x[30:], {k: v[30:] for k, v in labels.items()}), name="toy")
    >>> data.objectives, len(data.splits["train"]), len(data.splits["val"])
    (('digit', 'area'), 27, 3)
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch

from scalarize.benchmarks import Dataset, Split, Task
from scalarize.benchmarks.base import stratified_split
from scalarize.benchmarks.inputs import infer_input
from scalarize.benchmarks.stream import StreamSplit, stream_split
from scalarize.errors import ScalarizeError
from scalarize.training.task_kinds import MISSING_CLASS, TASK_KINDS, FunctionKind

Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
#: One split given as arrays: ``(images, {task: labels})``; for the multi-domain view a
#: mapping ``domain name -> (images, labels)``, where ``labels`` may be one array (one task).
ArraySplit = tuple[Any, Any] | Mapping[str, tuple[Any, Any]]

_CUSTOM = itertools.count()


def task(name: str, kind: str = "classification", *, classes: int = 0,
         loss: Loss | None = None, metric: Loss | None = None,
         higher_is_better: bool | None = None, outputs: int = 1, dense: bool | None = None,
         head: Callable[[int], torch.nn.Module] | None = None, description: str = "",
         **options: Any) -> Task:
    """A task named ``name``.

    Built-in kinds (``classification``, ``segmentation``, ``depth``, ``normals``,
    ``regression``; a plugin's; an import target ``package.module:Kind``) take ``classes`` and
    the kind's own options as keywords (``task("area", kind="regression", dense=False)``).

    A task of your own gives ``loss(output, target)`` returning one loss per example (shape
    B), optionally ``metric(output, target)`` (one value per example; ``higher_is_better``,
    required with it, says which way it points) and the head's ``outputs`` (``dense=True``:
    per pixel), or a head of its own, ``head(in_features) -> nn.Module`` (pooled features
    B×in_features, or with ``dense=True`` the feature map B×in_features×h×w). See
    :class:`~scalarize.training.task_kinds.FunctionKind`.

    Example:
        >>> task("digit", classes=10).kind_options
        {'classes': 10}
        >>> mine = task("size", loss=lambda out, y: (out[:, 0] - y) ** 2)
        >>> mine.kind.startswith("user.size.")
        True
    """
    if loss is None:
        if metric is not None or higher_is_better is not None or head is not None:
            raise ScalarizeError(f"task {name!r}: metric=, higher_is_better= and head= go with "
                                 "loss= (a task of your own); a built-in kind has its own")
        TASK_KINDS.get(kind)  # an unknown kind is named here, not at the first batch
        if dense is not None:  # a built-in kind's own option (regression)
            options["dense"] = dense
        return Task(name, classes, description, kind, dict(options))
    if not callable(loss) or (metric is not None and not callable(metric)):
        raise ScalarizeError(f"task {name!r}: loss= and metric= take functions "
                             "(output, target) -> one value per example")
    if metric is not None and higher_is_better is None:
        raise ScalarizeError(f"task {name!r}: metric= needs higher_is_better=True or False "
                             "(an error is lower-is-better); searches and rankings follow it")
    if head is not None and not callable(head):
        raise ScalarizeError(f"task {name!r}: head= takes a function in_features -> nn.Module")
    if options or classes:
        raise ScalarizeError(f"task {name!r} has its own loss; give outputs= (and dense=) "
                             f"instead of {sorted([*options, *(['classes'] if classes else [])])}")
    if outputs < 1:
        raise ScalarizeError(f"task {name!r}: outputs={outputs}; give at least 1")
    registered = TASK_KINDS.add(
        f"user.{name}.{next(_CUSTOM)}",
        lambda: FunctionKind(loss, metric, outputs=outputs, dense=bool(dense),
                             higher_is_better=higher_is_better, head=head))
    return Task(name, 0, description, registered)


def _images(x: Any, where: str) -> np.ndarray:
    """The inputs of one split: uint8 images N×C×H×W, N×F float features, N×L integer token
    ids or N×L×F float sequences (floats as float32, ids as int64)."""
    array = x.numpy() if isinstance(x, torch.Tensor) else x
    if not isinstance(array, np.ndarray) or array.ndim not in (2, 3, 4):
        shape = getattr(array, "shape", None)
        raise ScalarizeError(f"{where}: inputs must be an array N×F (features), N×L (token "
                             f"ids), N×L×F (sequences) or N×C×H×W (images), got "
                             f"{type(x).__name__} of shape {shape}")
    if array.ndim == 4:
        if array.dtype != np.uint8:
            raise ScalarizeError(f"{where}: in-memory images must be uint8 (0..255), got "
                                 f"{array.dtype}; scale them, or stream float images with "
                                 "from_datasets")
        return array
    infer_input(array, where=f"{where} inputs")  # refuses a kind it cannot take, in one line
    return array.astype(np.int64 if array.dtype.kind in "iu" else np.float32, copy=False)


def _labels(tasks: tuple[Task, ...], labels: Any, n: int, where: str) -> dict[str, np.ndarray]:
    if not isinstance(labels, Mapping):
        if len(tasks) != 1:
            raise ScalarizeError(f"{where}: give labels as {{task: array}} for the tasks "
                                 f"{[t.name for t in tasks]}")
        labels = {tasks[0].name: labels}
    missing = [t.name for t in tasks if t.name not in labels]
    if missing:
        raise ScalarizeError(f"{where}: no labels for task(s) {missing}; labels given for "
                             f"{list(labels)}")
    out: dict[str, np.ndarray] = {}
    for t in tasks:
        value = labels[t.name]
        array = np.asarray(value.numpy() if isinstance(value, torch.Tensor) else value)
        if array.ndim == 0 or array.shape[0] != n:
            raise ScalarizeError(f"{where}: task {t.name!r} has labels of shape "
                                 f"{array.shape} for {n} images; give one label per image")
        if t.kind == "classification":
            if not np.issubdtype(array.dtype, np.integer):
                raise ScalarizeError(f"{where}: task {t.name!r} is a classification; its "
                                     f"labels must be integers, got {array.dtype}")
            array = array.astype(np.int64)
            bad = array[((array < 0) & (array != MISSING_CLASS)) | (array >= t.num_classes)]
            if bad.size:
                raise ScalarizeError(f"{where}: task {t.name!r} has {t.num_classes} classes "
                                     f"but a label {int(bad[0])}; labels go 0..{t.num_classes - 1}"
                                     f" ({MISSING_CLASS}: no label)")
        out[t.name] = array
    return out


def _split(tasks: tuple[Task, ...], given: ArraySplit, domains: tuple[str, ...], where: str
           ) -> Split:
    if not domains:
        if not isinstance(given, tuple) or len(given) != 2:
            raise ScalarizeError(f"{where}: give (images, {{task: labels}})")
        x = _images(given[0], where)
        return Split(x, _labels(tasks, given[1], len(x), where))
    if not isinstance(given, Mapping) or list(given) != list(domains):
        got = list(given) if isinstance(given, Mapping) else type(given).__name__
        raise ScalarizeError(f"{where}: give {{domain: (images, labels)}} for the domains "
                             f"{list(domains)} in that order, got {got}")
    parts = []
    for d, name in enumerate(domains):
        x = _images(given[name][0], f"{where}[{name!r}]")
        labels = _labels(tasks, given[name][1], len(x), f"{where}[{name!r}]")
        parts.append(Split(x, labels, np.full(len(x), d, dtype=np.int64)))
    return Split(np.concatenate([p.x for p in parts]),
                 {t.name: np.concatenate([p.labels[t.name] for p in parts]) for t in tasks},
                 np.concatenate([p.domain for p in parts if p.domain is not None]))


def carve(train: Any, share: float, seed: int, domains: int = 0) -> tuple[Any, Any]:
    """``(train, val)``: a seeded ``share`` of ``train`` (any split with ``subset`` and
    ``domain``) held out as validation, per domain when it has domains."""
    if not 0 < share < 1:
        raise ScalarizeError(f"val_share={share}; give a share between 0 and 1, or a val split")
    held_idx, kept_idx = stratified_split(train.domain, len(train), share, domains,
                                          np.random.default_rng([seed, 104729]))
    if len(held_idx) == 0:
        raise ScalarizeError(f"val_share={share} of {len(train)} training examples holds out "
                             "none; give more data, a larger val_share, or a val split")
    return train.subset(kept_idx), train.subset(held_idx)


def _domains(train: Any) -> tuple[str, ...]:
    return tuple(str(d) for d in train) if isinstance(train, Mapping) else ()


def from_arrays(tasks: list[Task] | tuple[Task, ...], train: ArraySplit, test: ArraySplit,
                val: ArraySplit | None = None, *, name: str = "data", val_share: float = 0.1,
                seed: int = 0, standardize: bool = False, vocab_size: int | None = None
                ) -> Dataset:
    """A data set from in-memory arrays: inputs (uint8 images N×C×H×W; or N×F float
    features, N×L integer token ids, N×L×F float sequences: see
    :mod:`scalarize.benchmarks.inputs`) and one label array per task (integers for
    classification, floats for regressions, maps for dense tasks on images; a missing label is
    ``-1`` for a class, NaN for a float: partial labels). Without a ``val`` split, a seeded
    ``val_share`` of train becomes validation. Give each split as a mapping
    ``{domain: (inputs, labels)}`` for the multi-domain view (one task).

    Float features are taken as they are; ``standardize=True`` standardises each feature with
    the training split's mean and standard deviation (the run records them). Token ids go
    ``0..vocab_size-1``, the vocabulary being the training split's largest id + 1 unless
    ``vocab_size`` is given; a val or test id outside it is refused.

    Example (tabular: 64 features, two tasks):
        >>> from sklearn.datasets import load_digits
        >>> x, y = load_digits(return_X_y=True)
        >>> labels = {"digit": y, "high": (y >= 5).astype(int)}
        >>> data = from_arrays([task("digit", classes=10), task("high", classes=2)],
        ...                    train=(x[:1500], {k: v[:1500] for k, v in labels.items()}),
        ...                    test=(x[1500:], {k: v[1500:] for k, v in labels.items()}),
        ...                    standardize=True)
        >>> data.input.describe(), data.input.standardize
        ('tabular (64 features)', True)
    """
    tasks = tuple(tasks)
    if not tasks or not all(isinstance(t, Task) for t in tasks):
        raise ScalarizeError("tasks: give a list of scalarize.task(...) values")
    domains = _domains(train)
    splits = {"train": _split(tasks, train, domains, "train"),
              "test": _split(tasks, test, domains, "test")}
    if val is None:
        splits["train"], splits["val"] = carve(splits["train"], val_share, seed, len(domains))
    else:
        splits["val"] = _split(tasks, val, domains, "val")
    shapes = {k: s.x.shape[1:] for k, s in splits.items()}
    if len(set(shapes.values())) > 1:
        raise ScalarizeError(f"images differ in shape between splits: {shapes}")
    data = Dataset(name, "mdl" if domains else "mtl", tasks, splits, domains,
                   {"source": "arrays"}, vocab_size=vocab_size, standardize=standardize)
    _ = data.input  # the inputs' kind, vocabulary and options checked now, in one line
    return data


def _stream(given: Any, domains: tuple[str, ...], where: str) -> StreamSplit:
    if not domains:
        if isinstance(given, Mapping) or not hasattr(given, "__getitem__"):
            raise ScalarizeError(f"{where}: give a map-style torch.utils.data.Dataset (with "
                                 f"__len__ and __getitem__), got {type(given).__name__}")
        return StreamSplit(given)
    if not isinstance(given, Mapping) or list(given) != list(domains):
        got = list(given) if isinstance(given, Mapping) else type(given).__name__
        raise ScalarizeError(f"{where}: give {{domain: dataset}} for the domains "
                             f"{list(domains)} in that order, got {got}")
    return stream_split([given[d] for d in domains])


def from_datasets(tasks: list[Task] | tuple[Task, ...], train: Any, test: Any,
                  val: Any = None, *, name: str = "data", val_share: float = 0.1,
                  seed: int = 0, standardize: bool = False, vocab_size: int | None = None
                  ) -> Dataset:
    """A data set read lazily from map-style ``torch.utils.data.Dataset`` objects, one per
    split (``{domain: dataset}`` per split for the multi-domain view), for data larger than
    memory: ``dataset[i]`` returns ``(image C×H×W, {task: target})`` (see
    :mod:`scalarize.benchmarks.stream`). The trainer reads it through ``train.workers``
    DataLoader workers, in the same seeded order as in-memory data. Without ``val``, a seeded
    ``val_share`` of train becomes validation. An item's input may also be F float
    features, L token ids (give ``vocab_size``) or L×F floats; ``standardize`` as for
    :func:`from_arrays` (statistics from a seeded sample of the training items).

    Example:
        >>> class Toy(torch.utils.data.Dataset):
        ...     def __len__(self):
        ...         return 20
        ...     def __getitem__(self, i):
        ...         return np.full((3, 8, 8), i, np.uint8), {"odd": i % 2}
        >>> data = from_datasets([task("odd", classes=2)], train=Toy(), test=Toy())
        >>> len(data.splits["train"]), len(data.splits["val"]), data.image_shape
        (18, 2, (3, 8, 8))
    """
    tasks = tuple(tasks)
    if not tasks or not all(isinstance(t, Task) for t in tasks):
        raise ScalarizeError("tasks: give a list of scalarize.task(...) values")
    domains = _domains(train)
    splits: dict[str, Any] = {"train": _stream(train, domains, "train"),
                              "test": _stream(test, domains, "test")}
    if val is None:
        splits["train"], splits["val"] = carve(splits["train"], val_share, seed, len(domains))
    else:
        splits["val"] = _stream(val, domains, "val")
    shapes = {k: split.input_shape for k, split in splits.items()}
    if len(set(shapes.values())) > 1:
        raise ScalarizeError(f"images differ in shape between splits: {shapes}")
    data = Dataset(name, "mdl" if domains else "mtl", tasks, splits, domains,
                   {"source": "datasets"}, vocab_size=vocab_size, standardize=standardize)
    _ = data.input  # the inputs' kind, vocabulary and options checked now, in one line
    return data


__all__ = ["carve", "from_arrays", "from_datasets", "task"]
