"""Target contracts: what the targets of each task kind look like, said once for every reader.

The task kinds (:mod:`scalarize.training.task_kinds`) decide the loss and metrics of a task; the
loaders (:mod:`~scalarize.benchmarks.npz`, :mod:`~scalarize.benchmarks.image_files`) read
targets from users' files; and the trainer checks the first batch against the head's output.
All three ask the kind's :class:`TargetContract`, which says how its targets must look (dtype,
shape relative to the image or the head's output, range given the number of classes) and how a
file's targets are checked and stored, with one line that says what is wrong:

- :meth:`TargetContract.expect`: whether a batch fits the head's output (the trainer's check);
- :meth:`TargetContract.fit`: one array of targets from an array file, checked and converted to
  its compact stored form (kinds with :attr:`~TargetContract.options`; npz member names);
- :meth:`TargetContract.cell`: one target from a text table cell (kinds with a
  :attr:`~TargetContract.column_dtype`: one number per image), and :meth:`~TargetContract.task`
  the task of such a column.

A contract is registered per kind in :data:`TARGETS` (in the order the npz loader lists its
kinds): a new kind is one class here and one registry line, next to its
:class:`~scalarize.training.task_kinds.TaskKind`, and the loaders need no change.

Example:
    >>> import numpy as np
    >>> at = ArrayTarget("digit", np.array([0, 2, -1]), image_hw=(8, 8), declared=False)
    >>> task, labels = TARGETS["classification"].fit(at, {})
    >>> task.num_classes, labels.dtype.name
    (3, 'int64')
    >>> try:
    ...     TARGETS["classification"].cell("-2", "digit")
    ... except CellError as exc:
    ...     print(exc.shown, "->", exc.advice)
    -2 -> class labels are 0, 1, 2, ... (empty or -1: no label)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from scalarize.benchmarks.base import Task

#: A class label (or segmentation pixel) that says "no label for this task".
MISSING_LABEL = -1
MAX_CLASSES = 2**31  # labels are class indices; more classes than this is a mistake
MAX_SEGMENT_CLASSES = 1024  # segmentation keeps a classes × classes confusion matrix


class TargetError(Exception):
    """A target that does not fit its kind: the one-line problem, which the loader prefixes
    with where it is (the file, the table)."""


class CellError(TargetError):
    """A table cell that does not fit its kind: what the cell ``shown`` holds, and ``advice``."""

    def __init__(self, shown: object, advice: str) -> None:
        super().__init__(shown)
        self.shown, self.advice = shown, advice


class KindOptions(BaseModel):
    """The options a file may declare for a task of a kind (none unless a kind adds some)."""

    model_config = ConfigDict(extra="forbid")


class ClassificationOptions(KindOptions):
    classes: int | None = Field(None, ge=1, lt=MAX_CLASSES)


class SegmentationOptions(KindOptions):
    classes: int | None = Field(None, ge=1, le=MAX_SEGMENT_CLASSES)
    ignore: int | None = Field(None, ge=-(2**31), lt=2**31)


class DepthOptions(KindOptions):
    scale: float = Field(1.0, gt=0, allow_inf_nan=False)
    invalid: int | float | None = Field(None, allow_inf_nan=False)


class RegressionOptions(DepthOptions):
    tolerance: float = Field(0.1, gt=0, allow_inf_nan=False)


class NormalsOptions(KindOptions):
    invalid: int | None = Field(None, ge=0, le=255)


@dataclass(frozen=True)
class ArrayTarget:
    """The targets of task ``name`` as an array file gives them (N first), the images' height
    and width, and whether the file ``declared`` the kind (else it was inferred)."""

    name: str
    y: np.ndarray
    image_hw: tuple[int, int]
    declared: bool

    @property
    def key(self) -> str:
        """The array's member name in the file."""
        return f"y_{self.name}"

    @property
    def integer(self) -> bool:
        return self.y.dtype.kind in "iu"

    @property
    def one_map(self) -> bool:
        """One map per image: N×H×W or N×1×H×W."""
        return self.y.ndim == 3 or (self.y.ndim == 4 and self.y.shape[1] == 1)

    def misfit(self, kind: str, needs: str) -> TargetError:
        """The shape does not fit ``kind``, which ``needs`` another."""
        said = f"'kind_{self.name}' declares {kind} but " if self.declared else ""
        return TargetError(f"{said}'{self.key}' has shape {self.y.shape}; {kind} needs {needs}")


def compact(y: np.ndarray, extra: int | float | None = None) -> np.ndarray:
    """Integer targets in the smallest of uint8, int16, int32, int64 that holds them (and
    ``extra``, a value they are compared with)."""
    lo, hi = (int(y.min()), int(y.max())) if y.size else (0, 0)
    if isinstance(extra, int):
        lo, hi = min(lo, extra), max(hi, extra)
    for dtype in (np.uint8, np.int16, np.int32):
        limits = np.iinfo(dtype)
        if limits.min <= lo and hi <= limits.max:
            return y.astype(dtype)
    return y.astype(np.int64)


def outside(labels: torch.Tensor, classes: int, wanted: str) -> str | None:
    """``wanted`` plus the first label outside ``0..classes - 1``, if there is one."""
    bad = labels[(labels < 0) | (labels >= classes)]
    return f"{wanted}, found {int(bad[0])}" if bad.numel() else None


class TargetContract:
    """How the targets of one task kind look (see the module doc). The base takes any target
    and reads none from files; a kind overrides what it supports."""

    kind: ClassVar[str]
    #: What an array file may declare for the kind; ``None``: array files cannot hold it.
    options: ClassVar[type[KindOptions] | None] = None
    #: How a column of one number per image is stored; ``None``: tables cannot hold the kind.
    column_dtype: ClassVar[type[np.generic] | None] = None
    #: The stored value of an empty cell (a missing label).
    column_missing: ClassVar[int | float] = MISSING_LABEL

    def expect(self, output: torch.Tensor, target: torch.Tensor, classes: int = 0,
               ignore: int | None = None) -> str | None:
        """What a batch of targets must look like against the head's ``output``, said when
        ``target`` does not fit (``None`` when it fits); ``classes`` and ``ignore`` are the
        task's, for kinds that have them."""
        return None

    def read_options(self, raw: dict[str, Any] | None, name: str) -> dict[str, Any]:
        """``raw`` (a file's options for task ``name``) checked against what the kind takes;
        only the options given are kept."""
        model = self.options or KindOptions
        try:
            return model.model_validate(raw or {}).model_dump(exclude_unset=True)
        except ValidationError as exc:
            error = exc.errors()[0]
            field = ".".join(str(part) for part in error["loc"])
            if error["type"] == "extra_forbidden":
                raise TargetError(f"'options_{name}' has option {field!r}, which a {self.kind} "
                                  f"task does not take (it takes: "
                                  f"{', '.join(model.model_fields)})") from None
            raise TargetError(f"'options_{name}': {field}: {error['msg']}") from None

    def fit(self, at: ArrayTarget, opts: dict[str, Any]) -> tuple[Task, np.ndarray]:
        """The task and its targets in their stored (compact) form, from an array file's
        targets ``at`` and the options read by :meth:`read_options`; a target that does not
        fit the kind raises :class:`TargetError`."""
        raise TargetError(f"'{at.key}': array files cannot hold {self.kind} targets")

    def cell(self, text: str, name: str) -> int | float:
        """The target a table cell's (non-empty) ``text`` holds for task ``name``; one that
        does not fit raises :class:`CellError`."""
        raise CellError(text, f"tables cannot hold {self.kind} targets")

    def task(self, name: str, columns: list[np.ndarray]) -> Task:
        """The task of a column read with :meth:`cell`, from its values in every split."""
        return Task(name, 0, kind=self.kind)


class AnyTargets(TargetContract):
    """The contract of a kind that declares none (a user's functions, a plugin): any target
    fits, and files cannot hold it."""

    kind = "any"


C = TypeVar("C", bound=type[TargetContract])

#: The contract of each kind, in the order the npz loader lists its kinds.
TARGETS: dict[str, TargetContract] = {}


def register(kind: str) -> Callable[[C], C]:
    """Class decorator: the contract of ``kind`` (one instance, in :data:`TARGETS`)."""

    def decorate(cls: C) -> C:
        if kind in TARGETS:
            raise ValueError(f"target contract {kind!r} is registered twice")
        cls.kind = kind
        TARGETS[kind] = cls()
        return cls

    return decorate


def array_kinds() -> tuple[str, ...]:
    """The kinds array files can hold (those with options), in registry order."""
    return tuple(kind for kind, contract in TARGETS.items() if contract.options is not None)


def fit_array(at: ArrayTarget, kind: str, raw: dict[str, Any] | None
              ) -> tuple[Task, np.ndarray]:
    """Task ``at.name`` of ``kind`` and its targets in a compact dtype, after the options
    ``raw`` and the per-pixel maps' size are checked (:meth:`TargetContract.fit`)."""
    contract = TARGETS[kind]
    opts = contract.read_options(raw, at.name)
    y, (h, w) = at.y, at.image_hw
    if y.ndim in (3, 4) and tuple(y.shape[-2:]) != (h, w):
        raise TargetError(f"'{at.key}' has maps of {y.shape[-2]}×{y.shape[-1]} but the images "
                          f"in 'x' are {h}×{w}; per-pixel targets need one value per pixel")
    return contract.fit(at, opts)


@register("classification")
class ClassificationTargets(TargetContract):
    """One integer class label per image, ``0..K-1``; ``-1``: no label."""

    options = ClassificationOptions
    column_dtype = np.int64
    column_missing = MISSING_LABEL

    def expect(self, output: torch.Tensor, target: torch.Tensor, classes: int = 0,
               ignore: int | None = None) -> str | None:
        wanted = (f"shape ({output.shape[0]},) of integer class indices 0..{classes - 1} "
                  f"(or {MISSING_LABEL}: no label)")
        if target.ndim != 1 or target.is_floating_point() or target.dtype == torch.bool:
            return wanted
        return outside(target[target != MISSING_LABEL], classes, wanted)

    def fit(self, at: ArrayTarget, opts: dict[str, Any]) -> tuple[Task, np.ndarray]:
        y, key = at.y, at.key
        if y.ndim != 1:
            raise at.misfit(self.kind, "one integer label per image (shape N)")
        if not at.integer:
            raise TargetError(f"'{key}' has dtype {y.dtype}; labels must be integers")
        if y.size and y.min() < MISSING_LABEL:
            raise TargetError(f"'{key}' holds label {int(y.min())}; classes must be 0..K-1 "
                              f"({MISSING_LABEL} marks a missing label)")
        known = y[y != MISSING_LABEL]
        if known.size and int(known.max()) >= MAX_CLASSES:
            raise TargetError(f"'{key}' holds label {int(known.max())}; classes must be "
                              f"0..K-1 with K below {MAX_CLASSES:,}")
        classes = opts.get("classes") or (int(known.max()) + 1 if known.size else 1)
        if known.size and int(known.max()) >= classes:
            raise TargetError(f"'{key}' holds label {int(known.max())} but 'options_{at.name}' "
                              f"gives {classes} classes")
        return Task(at.name, classes), y.astype(np.int64)

    def cell(self, text: str, name: str) -> int | float:
        try:
            value = int(text)
        except ValueError:
            raise CellError(repr(text), f"declare benchmark.options.kinds={{{name}: "
                            "regression} for numbers") from None
        if value < MISSING_LABEL:
            raise CellError(value, "class labels are 0, 1, 2, ... (empty or -1: no label)")
        return value

    def task(self, name: str, columns: list[np.ndarray]) -> Task:
        return Task(name, max(int(column.max(initial=0)) for column in columns) + 1)


@register("segmentation")
class SegmentationTargets(TargetContract):
    """One integer class map per image (N×H×W); ``-1`` or the declared ``ignore`` class: a
    pixel that counts for nothing."""

    options = SegmentationOptions

    def expect(self, output: torch.Tensor, target: torch.Tensor, classes: int = 0,
               ignore: int | None = None) -> str | None:
        b, _, h, w = output.shape
        ignored = f", {ignore}: ignored" if ignore is not None else ""
        wanted = (f"shape ({b}, {h}, {w}) of integer classes 0..{classes - 1} "
                  f"(or {MISSING_LABEL}: no label{ignored})")
        if (target.ndim != 3 or tuple(target.shape[1:]) != (h, w)
                or target.is_floating_point() or target.dtype == torch.bool):
            return wanted
        labels = target.long()
        valid = labels != MISSING_LABEL
        valid = valid if ignore is None else valid & (labels != ignore)
        return outside(target[valid], classes, wanted)

    def fit(self, at: ArrayTarget, opts: dict[str, Any]) -> tuple[Task, np.ndarray]:
        y, key, (h, w) = at.y, at.key, at.image_hw
        if not at.one_map:
            raise at.misfit(self.kind, "one class map per image (N×H×W)")
        if not at.integer:
            raise TargetError(f"'{key}' has dtype {y.dtype}; class maps must be integers")
        y = y.reshape(y.shape[0], h, w)
        ignore = opts.get("ignore")
        counted = y[y != MISSING_LABEL] if ignore is None else \
            y[(y != ignore) & (y != MISSING_LABEL)]
        if counted.size and counted.min() < 0:
            raise TargetError(f"'{key}' holds class {int(counted.min())}; classes must be "
                              f"0..K-1 ({MISSING_LABEL} marks a missing pixel, or mark pixels "
                              f"to leave out with 'options_{at.name}' {{\"ignore\": V}})")
        top = int(counted.max()) if counted.size else 0
        classes = opts.get("classes") or top + 1
        if top >= classes:
            raise TargetError(f"'{key}' holds class {top} but 'options_{at.name}' gives "
                              f"{classes} classes")
        if classes > MAX_SEGMENT_CLASSES:
            raise TargetError(f"'{key}' has {classes} classes; segmentation takes at most "
                              f"{MAX_SEGMENT_CLASSES}")
        return (Task(at.name, classes, kind=self.kind, options={"ignore": ignore}),
                compact(y, ignore))  # -1 (missing) keeps a signed dtype


def _values_expect(output: torch.Tensor, target: torch.Tensor) -> str | None:
    """What value targets (per image or per pixel, ``channels`` as the head's) expect."""
    b, c = output.shape[:2]
    shapes: list[tuple[int, ...]]
    if output.ndim == 2:  # one value (or channels values) per image
        shapes = [(b,), (b, c)] if c == 1 else [(b, c)]
    else:
        h, w = output.shape[-2:]
        shapes = [(b, h, w), (b, c, h, w)] if c == 1 else [(b, c, h, w)]
    if tuple(target.shape) in shapes:
        return None
    return "shape " + " or ".join(str(s) for s in shapes)


class _ValueTargets(TargetContract):
    """Values, float (NaN: missing) or integer (decoded as value × ``scale``; the declared
    ``invalid`` value: missing)."""

    def expect(self, output: torch.Tensor, target: torch.Tensor, classes: int = 0,
               ignore: int | None = None) -> str | None:
        return _values_expect(output, target)

    def fit(self, at: ArrayTarget, opts: dict[str, Any]) -> tuple[Task, np.ndarray]:
        if at.integer:
            return Task(at.name, 0, kind=self.kind, options=opts), compact(at.y,
                                                                           opts.get("invalid"))
        values = at.y.astype(np.float32)
        if np.isinf(values).any():
            raise TargetError(f"'{at.key}' holds infinite values (in float32); mark a missing "
                              "value with NaN")
        return Task(at.name, 0, kind=self.kind, options=opts), values


@register("depth")
class DepthTargets(_ValueTargets):
    """One depth map per image (N×H×W or N×1×H×W)."""

    options = DepthOptions

    def fit(self, at: ArrayTarget, opts: dict[str, Any]) -> tuple[Task, np.ndarray]:
        if not at.one_map:
            raise at.misfit(self.kind, "one depth map per image (N×H×W or N×1×H×W)")
        return super().fit(at, opts)


@register("regression")
class RegressionTargets(_ValueTargets):
    """Values per image (N, N×K) or per pixel (N×H×W, N×C×H×W); in a table, one float per
    image (empty or nan: no label)."""

    options = RegressionOptions
    column_dtype = np.float32
    column_missing = math.nan

    def fit(self, at: ArrayTarget, opts: dict[str, Any]) -> tuple[Task, np.ndarray]:
        y = at.y
        if not 1 <= y.ndim <= 4:
            raise at.misfit(self.kind, "N, N×K (per image), N×H×W or N×C×H×W (per pixel) "
                            "values")
        channels = 1 if y.ndim in (1, 3) else int(y.shape[1])
        if channels < 1:
            raise at.misfit(self.kind, "at least one value per image")
        return super().fit(at, {**opts, "channels": channels, "dense": y.ndim in (3, 4)})

    def cell(self, text: str, name: str) -> int | float:
        try:
            value = float(text)
        except ValueError:
            raise CellError(repr(text), "give a number") from None
        if np.isinf(value):
            raise CellError(repr(text), "give a finite number (empty or nan: no label)")
        return value

    def task(self, name: str, columns: list[np.ndarray]) -> Task:
        return Task(name, 0, kind=self.kind, options={"dense": False})


@register("normals")
class NormalsTargets(TargetContract):
    """N×3×H×W normal maps, uint8 (value / 255 × 2 − 1) or float in [−1, 1] (stored as
    uint8)."""

    options = NormalsOptions

    def expect(self, output: torch.Tensor, target: torch.Tensor, classes: int = 0,
               ignore: int | None = None) -> str | None:
        return _values_expect(output, target)

    def fit(self, at: ArrayTarget, opts: dict[str, Any]) -> tuple[Task, np.ndarray]:
        y, key = at.y, at.key
        if y.ndim != 4 or y.shape[1] != 3:
            raise at.misfit(self.kind, "N×3×H×W normal maps")
        if y.dtype != np.uint8:
            if at.integer:
                raise TargetError(f"'{key}' has dtype {y.dtype}; normals are uint8 "
                                  "(value / 255 × 2 − 1) or float in [-1, 1]")
            if not np.isfinite(y).all():
                raise TargetError(f"'{key}' holds NaN or infinite values; mark missing "
                                  f"pixels with 'options_{at.name}' {{\"invalid\": V}} (uint8)")
            if y.size and (y.min() < -1 or y.max() > 1):
                raise TargetError(f"float '{key}' spans [{y.min():.3g}, {y.max():.3g}]; "
                                  "normals are unit vectors, in [-1, 1]")
            y = np.rint((y.astype(np.float32) + 1) * 127.5).astype(np.uint8)
        return Task(at.name, 0, kind=self.kind, options=opts), y


def _float_maps(output: torch.Tensor, target: torch.Tensor, channels: int) -> str | None:
    """What a float-map kind expects, when ``target`` does not fit ``output`` (B×C×H×W)."""
    b, _, h, w = output.shape
    shapes = [(b, channels, h, w), *([(b, h, w)] if channels == 1 else [])]
    wanted = " or ".join(str(s) for s in shapes) + " of floats (0 = missing)"
    if tuple(target.shape) not in shapes or not target.is_floating_point():
        return f"shape {wanted}"
    return None


@register("depth_map")
class DepthMapTargets(TargetContract):
    """Float depth maps B×1×H×W (or B×H×W), 0 = missing (read by their own benchmarks)."""

    def expect(self, output: torch.Tensor, target: torch.Tensor, classes: int = 0,
               ignore: int | None = None) -> str | None:
        return _float_maps(output, target, 1)


@register("normal_map")
class NormalMapTargets(TargetContract):
    """Float normal maps B×3×H×W, a zero vector = missing (read by their own benchmarks)."""

    def expect(self, output: torch.Tensor, target: torch.Tensor, classes: int = 0,
               ignore: int | None = None) -> str | None:
        return _float_maps(output, target, 3)


__all__ = ["MISSING_LABEL", "TARGETS", "AnyTargets", "ArrayTarget", "CellError", "KindOptions",
           "TargetContract", "TargetError", "array_kinds", "compact", "fit_array", "register"]
