"""What every tracking backend does for one run, and the guard that keeps a failing backend from
stopping training.

A :class:`Backend` logs one run (a training run, or a search member) to one library: parameters
once, metrics per epoch, text, and a final status. It is opened on a :class:`RunRef` (the run's
name, a key unique to its folder, and the study it belongs to, if any) and says which epochs it
already holds (:class:`Seen`), so that a resumed run or a run tracked again never logs an epoch
twice. :class:`Guarded` wraps a backend: the first exception of a backend warns once
(:class:`TrackingWarning`) and switches that backend off for the rest of the run; training goes
on.

Example:
    >>> flat_params({"train": {"lr": 0.001, "augment": None}, "model": {"spec": "vit"}})
    {'train.lr': '0.001', 'train.augment': 'None', 'model.spec': 'vit'}
    >>> flat_metrics({"val_acc": {"a": 0.5}, "lr": 0.1, "weights": {"a": 1.0}, "epoch": 3})
    {'val_acc/a': 0.5, 'lr': 0.1, 'weights/a': 1.0}
"""

from __future__ import annotations

import json
import math
import re
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

Status = Literal["FINISHED", "FAILED", "RUNNING"]  # RUNNING: flush, leave it open
T = TypeVar("T")
EPOCH_KEY = "val_avg_acc"    # a metric every epoch logs: the epochs a backend holds
SUMMARY_KEY = "test/avg_acc"  # a metric the final summary logs: whether a backend holds it


class TrackingWarning(UserWarning):
    """A tracking backend failed (unreachable server, unwritable folder, ...); it is switched
    off for the rest of the run and training goes on. Shown once per backend and target."""


@dataclass(frozen=True)
class StudyRef:
    """The study a run belongs to: its kind (``sweep``, ``comparison``, ``search``), its folder
    (the key of its parent run) and a function that reads its config tree (the parent's
    parameters)."""

    kind: str
    path: Path
    read_config: Callable[[], dict[str, Any]] = field(compare=False, repr=False)

    @property
    def name(self) -> str:
        return self.path.name


@dataclass(frozen=True)
class RunRef:
    """One tracked run: ``name`` (its folder's name, or ``m03`` for a search member), ``key``
    (unique: the absolute path of its folder, or the search folder and member) and its study.
    With ``role="study"`` it is the study's own parent run (``study`` is then that study)."""

    name: str
    key: str
    study: StudyRef | None = None
    role: Literal["run", "study"] = "run"


@dataclass
class Seen:
    """What a backend already holds of a run: epochs and whether the final summary is there."""

    epochs: set[int] = field(default_factory=set)
    summary: bool = False


class Backend(ABC):
    """One tracking library logging one run."""

    kind: str = "backend"

    def __init__(self, where: str) -> None:
        self.where = where

    @abstractmethod
    def open(self, run: RunRef, params: Mapping[str, str], tags: Mapping[str, str]) -> Seen:
        """Start (or find again) the run; log ``params`` and ``tags``; say what it holds."""

    @abstractmethod
    def metrics(self, values: Mapping[str, float], step: int) -> None:
        """Log ``values`` at ``step`` (an epoch: 0 before training)."""

    @abstractmethod
    def text(self, key: str, text: str, step: int) -> None:
        """Log a piece of text (a config, an exploit, a summary)."""

    def tags(self, values: Mapping[str, str]) -> None:  # noqa: B027 (optional hook)
        """Set tags on the run (backends without tags ignore them)."""

    @abstractmethod
    def close(self, status: Status) -> None:
        """End the run (flush; mark it finished or failed, or leave it running)."""

    def finish_study(self, study: StudyRef) -> None:  # noqa: B027 (optional hook)
        """Every planned run of ``study`` has finished: end the study's parent run, where the
        backend has one."""


_warned: set[tuple[str, str]] = set()


class Guarded:
    """A backend whose failures warn once and switch it off (see the module doc)."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.alive = True

    def call(self, what: str, action: Callable[[Backend], T], default: T) -> T:
        if not self.alive:
            return default
        try:
            return action(self.backend)
        except Exception as exc:  # any failure of a tracking library: never stop training
            self.alive = False
            key = (self.backend.kind, self.backend.where)
            if key not in _warned:
                _warned.add(key)
                reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
                warnings.warn(f"tracking to {self.backend.kind} ({self.backend.where}) failed "
                              f"while it {what} ({type(exc).__name__}: {reason}); it is off for "
                              "this run, training goes on", TrackingWarning, stacklevel=2)
            return default


_KEY = re.compile(r"[^A-Za-z0-9_\-. /]")


def metric_key(*parts: str) -> str:
    """A metric or parameter name every backend accepts: ``/``-joined, odd characters as
    ``_``."""
    return "/".join(_KEY.sub("_", str(p)) for p in parts)


def _flat(tree: Any, prefix: tuple[str, ...]) -> Iterable[tuple[tuple[str, ...], Any]]:
    if isinstance(tree, Mapping):
        for key, value in tree.items():
            yield from _flat(value, (*prefix, str(key)))
    else:
        yield prefix, tree


def flat_params(tree: Mapping[str, Any]) -> dict[str, str]:
    """A config tree as ``section.field`` parameters (lists as JSON, ``None`` as ``None``)."""
    params = {}
    for path, value in _flat(tree, ()):
        if not path:
            continue
        text = json.dumps(value) if isinstance(value, list | tuple) else str(value)
        params[".".join(_KEY.sub("_", p) for p in path)] = text[:6000]  # MLflow's limit
    return params


def flat_metrics(tree: Mapping[str, Any], skip: Iterable[str] = ("epoch", "step")
                 ) -> dict[str, float]:
    """Every finite number of a record (nested mappings joined with ``/``), but ``skip``."""
    skipped = set(skip)
    metrics = {}
    for path, value in _flat({k: v for k, v in tree.items() if k not in skipped}, ()):
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if math.isfinite(value):
            metrics[metric_key(*path)] = float(value)
    return metrics
