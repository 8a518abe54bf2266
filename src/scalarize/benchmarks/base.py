"""What every benchmark produces: labelled examples (images, or tabular, token or sequence
inputs: :mod:`scalarize.benchmarks.inputs`) split into train / val / test.

A split is either plain arrays in memory (:class:`Split`; the training loop indexes them
directly, no ``DataLoader``) or a map-style ``torch.utils.data.Dataset`` read lazily
(:class:`~scalarize.benchmarks.stream.StreamSplit`, served by a ``DataLoader``). The
*objectives* are what scalarization weights index: the tasks of a multi-task (MTL) view, or the
domains of a multi-domain (MDL) view.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

import numpy as np

from scalarize.benchmarks.inputs import InputSpec, check_tokens, infer_input, same_input
from scalarize.benchmarks.stream import StreamSplit
from scalarize.columns import Column
from scalarize.errors import ScalarizeError

View = Literal["mtl", "mdl"]
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Task:
    """One task: its name, number of classes (0 for a regression), and its ``kind``
    (``classification`` by default; ``segmentation``, ``depth``, ``normals``, ``regression``
    for dense tasks) with the kind's options (see :mod:`scalarize.training.task_kinds`)."""

    name: str
    num_classes: int
    description: str = ""
    kind: str = "classification"
    options: Mapping[str, Any] = field(default_factory=dict, hash=False)

    @property
    def kind_options(self) -> dict[str, Any]:
        """What the task kind is built with: the options, plus ``classes`` when it has some."""
        return {"classes": self.num_classes, **self.options} if self.num_classes else \
            dict(self.options)


@dataclass
class Split:
    """Inputs ``x`` (images N×C×H×W uint8; or N×F float features, N×L int64 token ids,
    N×L×F float sequences), one label array per task, and a domain index per example (``None``
    when the data has no domains)."""

    x: np.ndarray
    labels: dict[str, np.ndarray]
    domain: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def subset(self, index: np.ndarray) -> Split:
        """The rows ``index`` of this split."""
        return Split(
            x=self.x[index],
            labels={k: v[index] for k, v in self.labels.items()},
            domain=None if self.domain is None else self.domain[index],
        )

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of one image."""
        if self.x.ndim != 4:
            raise ScalarizeError(f"these inputs are not images (shape {self.x.shape[1:]} each); "
                                 "read their input instead")
        c, h, w = self.x.shape[1:]
        return int(c), int(h), int(w)

    def input_spec(self, vocab_size: int | None = None, standardize: bool = False,
                   where: str = "x") -> InputSpec:
        """What one example's input is (:func:`~scalarize.benchmarks.inputs.infer_input`)."""
        return infer_input(self.x, vocab_size=vocab_size, standardize=standardize, where=where)


#: A split in memory or streamed from a map-style dataset.
AnySplit: TypeAlias = Split | StreamSplit


@dataclass
class Dataset:
    """A benchmark's data: tasks, optional domains, and its ``train``/``val``/``test`` splits."""

    name: str
    view: View
    tasks: tuple[Task, ...]
    splits: Mapping[str, AnySplit]
    domains: tuple[str, ...] = ()
    info: dict[str, object] = field(default_factory=dict)
    columns: tuple[Column, ...] = ()  # the published table's columns, if the benchmark has one
    #: token inputs: the vocabulary (else the training split's largest id + 1)
    vocab_size: int | None = None
    #: float features (tabular, sequences): standardised with the training split's statistics
    standardize: bool = False
    _input: InputSpec | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.view == "mdl":
            if not self.domains:
                raise ScalarizeError(
                    f"benchmark {self.name!r} has no domains; use benchmark.view=mtl"
                )
            if len(self.tasks) != 1:
                raise ScalarizeError(
                    f"the multi-domain view needs exactly one task, got "
                    f"{[t.name for t in self.tasks]}; pick one with benchmark.tasks=[NAME]"
                )
        missing = [s for s in SPLITS if s not in self.splits]
        if missing:
            raise ScalarizeError(f"benchmark {self.name!r} lacks split(s) {missing}")
        if len(self.splits["train"]) == 0:
            raise ScalarizeError(f"benchmark {self.name!r} has no training examples; check "
                                 "its options (sizes, split)")
        train_domains = self.splits["train"].domain
        if self.view == "mdl" and train_domains is not None:
            counts = np.bincount(train_domains, minlength=len(self.domains))
            empty = [d for d, c in zip(self.domains, counts, strict=False) if c == 0]
            if empty:
                raise ScalarizeError(f"benchmark {self.name!r}: domain(s) {empty} have no "
                                     "training examples; give every domain some, or drop it")

    @property
    def objectives(self) -> tuple[str, ...]:
        """What the scalarization weights index: task names (MTL) or domain names (MDL)."""
        return tuple(t.name for t in self.tasks) if self.view == "mtl" else self.domains

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of one image."""
        return self.splits["train"].image_shape

    @property
    def input(self) -> InputSpec:
        """What one example's input is, read from the training split (the vocabulary of token
        inputs too); the other splits are checked against it once (same kind and shape, token
        ids inside the vocabulary), in one line each."""
        if self._input is None:
            specs = {name: split.input_spec(self.vocab_size, self.standardize, f"{name} inputs")
                     for name, split in self.splits.items()}
            same_input(specs)
            spec = specs["train"]
            if spec.kind == "tokens" and self.vocab_size is None:
                assert spec.vocab_size is not None
                for name, split in self.splits.items():
                    if name != "train" and isinstance(split, Split):
                        check_tokens(split.x, spec.vocab_size, f"{name} inputs")
            self._input = spec
        return self._input

    def summary(self) -> dict[str, object]:
        """Sizes, tasks and domains, for ``scalarize data info``."""
        spec = self.input
        shape: dict[str, object] = ({"image_shape": list(spec.shape)} if spec.is_image else
                                    {"input": spec.describe()})
        out: dict[str, object] = {
            "name": self.name,
            "view": self.view,
            **shape,
            "tasks": {t.name: t.num_classes for t in self.tasks},
            "objectives": list(self.objectives),
        }
        for split_name, split in self.splits.items():
            out[f"{split_name}_size"] = len(split)
            if self.domains and split.domain is not None:
                counts = np.bincount(split.domain, minlength=len(self.domains))
                out[f"{split_name}_per_domain"] = dict(
                    zip(self.domains, counts.tolist(), strict=True)
                )
        out.update(self.info)
        return out


def select_tasks(tasks: tuple[Task, ...], wanted: list[str] | None) -> tuple[Task, ...]:
    """The tasks named in ``wanted`` (all when ``None``), in the order given."""
    if wanted is None:
        return tasks
    by_name = {t.name: t for t in tasks}
    unknown = [n for n in wanted if n not in by_name]
    if unknown:
        raise ScalarizeError(
            f"unknown task(s) {unknown}; this benchmark has: {', '.join(by_name)}"
        )
    if not wanted:
        raise ScalarizeError("benchmark.tasks is empty; name at least one task")
    twice = sorted({n for n in wanted if wanted.count(n) > 1})
    if twice:
        raise ScalarizeError(f"benchmark.tasks names {twice} more than once; name each task once")
    return tuple(by_name[n] for n in wanted)


def seeded_split(n: int, share: float, rng: np.random.Generator
                 ) -> tuple[np.ndarray, np.ndarray]:
    """``(held, kept)``: a random ``share`` of ``range(n)`` and the rest, each sorted."""
    order = rng.permutation(n)
    cut = round(share * n)
    return np.sort(order[:cut]), np.sort(order[cut:])


def stratified_split(domain: np.ndarray | None, n: int, share: float, domains: int,
                     rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``(held, kept)`` indices of ``range(n)``: a seeded ``share`` held out, per domain when
    ``domain`` gives each example's domain index (``domains`` of them), each sorted."""
    groups = ([np.arange(n)] if domain is None or not domains
              else [np.flatnonzero(domain == d) for d in range(domains)])
    held, kept = [], []
    for group in groups:
        held_at, kept_at = seeded_split(len(group), share, rng)
        held.append(group[held_at])
        kept.append(group[kept_at])
    return np.sort(np.concatenate(held)), np.sort(np.concatenate(kept))


def domain_split(parts: list[tuple[np.ndarray, np.ndarray]], task: str = "label") -> Split:
    """One :class:`Split` from per-domain ``(images, labels)``; the domain index of each image
    is the position of its part."""
    return Split(x=np.concatenate([np.asarray(x) for x, _ in parts]),
                 labels={task: np.concatenate([y for _, y in parts])},
                 domain=np.concatenate([np.full(len(y), d, dtype=np.int64)
                                        for d, (_, y) in enumerate(parts)]))
