"""Task kinds: how one task's head output becomes a per-example loss and evaluation metrics.

A benchmark's :class:`~scalarize.benchmarks.Task` names its ``kind`` (``classification`` by
default) and the kind's options; the kind decides the head, the loss and the metrics. Every kind
reports a ``score`` (higher is better, in [0, 1]) that plays the part of accuracy wherever the
paper ranks by average accuracy, plus its own named metrics:

============== ===================== ================ =======================
kind           score                 other metrics    Δ compares
============== ===================== ================ =======================
classification accuracy              —                accuracy ↑
segmentation   mIoU                  pixel_acc        mIoU ↑
depth          δ₁ (max ratio < 1.25) l1, abs_rel      l1 ↓
regression     |error| ≤ tolerance   l1               l1 ↓
normals        angle ≤ 11.25°        l1, mean_angle   mean_angle ↓
============== ===================== ================ =======================

Dense targets stay in their compact on-disk integer encoding until they reach the device;
each kind decodes them there (``scale``, ``invalid`` value, ``ignore`` class). Pixels marked
invalid or ignored count for neither the loss nor the metrics.

**Partial labels.** An example may lack a task's label. The label itself says so, with the
kind's declared missing value: ``-1`` for a class (:data:`MISSING_CLASS`; per example for
classification, per pixel for segmentation), NaN for a float target (a per-image regression
value, a depth or regression pixel), and for integer-encoded maps their ``invalid`` value or
``ignore`` class. A map whose every pixel is missing is a missing map. :meth:`TaskKind.labelled`
says which examples of a batch carry a label; the loss of one that carries none is a finite 0
(the objectives leave it out of the task's mean, so it gives no gradient) and the metrics count
labelled examples (pixels) only.

Adding a kind means one class here and one registry line. What its targets look like (the
batch check before training, and how a file's targets are read, if files may hold it) is the
kind's target contract, :attr:`TaskKind.targets`: one class and one registry line in
:mod:`scalarize.benchmarks.targets`, which the loaders read below the training stack.

Example:
    >>> import torch
    >>> kind = TASK_KINDS.get("classification")()
    >>> metric = kind.metric()
    >>> metric.update(torch.tensor([[2.0, 0.0], [0.0, 1.0]]), torch.tensor([0, 0]))
    >>> metric.result()
    {'score': 0.5}
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from scalarize.benchmarks.targets import MISSING_LABEL, TARGETS, AnyTargets, TargetContract
from scalarize.errors import ScalarizeError
from scalarize.models.heads import DenseHead, HeadSpec, UserHead
from scalarize.registry import Registry


class Metric:
    """Accumulates one task's metrics over a split, on the device; ``result`` syncs once."""

    def __init__(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}

    def add(self, **values: torch.Tensor) -> None:
        for name, value in values.items():
            value = value.detach().double()
            self.sums[name] = self.sums[name] + value if name in self.sums else value

    def update(self, output: torch.Tensor, target: torch.Tensor) -> None:
        raise NotImplementedError

    def result(self) -> dict[str, float]:
        raise NotImplementedError


class TaskKind:
    """Base: the head a task needs, its per-example loss and its metric. ``primary`` names the
    metric the multi-task gain Δ compares with the single-task baseline (and whether higher is
    better): the score for classification and segmentation, an error for the regressions (a
    score can be 0 for a weak baseline, which leaves Δ undefined). ``targets`` is the kind's
    target contract (registered under the kind's name; a kind without one takes any target)."""

    primary: tuple[str, bool] = ("score", True)
    targets: ClassVar[TargetContract] = AnyTargets()

    def head(self) -> HeadSpec:
        raise NotImplementedError

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Per-example loss (shape B) of ``output`` against the raw ``target``."""
        raise NotImplementedError

    def metric(self) -> Metric:
        raise NotImplementedError

    def predict(self, output: torch.Tensor) -> torch.Tensor:
        """The head's ``output`` (a batch) as predictions in the task's units: what
        ``load_run(...).predict`` and ``scalarize predict`` hand out. By default the output as
        it is (a user's kind: what its loss compares); class ids for the classifications,
        decoded values for the regressions, unit vectors for normals."""
        return output

    def flip(self, target: torch.Tensor) -> torch.Tensor | None:
        """The raw ``target`` of the left-right mirrored image (last axis is width), or ``None``
        when a flip leaves the label unchanged (per-image labels)."""
        return None

    def expect(self, output: torch.Tensor, target: torch.Tensor) -> str | None:
        """What targets this kind expects, said when ``target`` (a batch, against the head's
        ``output``) does not fit it; ``None`` when it fits. The trainer asks this of its first
        batch, so a wrong shape, dtype or label range is one clear line before training. The
        kind's target contract says it."""
        return self.targets.expect(output, target)

    def labelled(self, target: torch.Tensor) -> torch.Tensor:
        """Which examples of the batch ``target`` carry a label for this task (bool, shape B);
        every one unless the kind declares a missing value. :meth:`loss` must be finite (0) for
        an example that carries none: the objectives leave it out of the task's mean."""
        return torch.ones(target.shape[0], dtype=torch.bool, device=target.device)

    def out_of_range(self, target: torch.Tensor) -> torch.Tensor | None:
        """Which values of the batch ``target`` this kind never takes (a bool mask of its
        shape; its declared missing values fit), or ``None`` when it takes every value. The
        trainer asks this of every batch of every split (one cheap vectorised test on the host,
        before the copy to the device), so a wrong label deep in a streamed test split is one
        line, not a loss that raises or a silent NaN. By default: a float target's infinite
        values (NaN is a missing label)."""
        return torch.isinf(target) if target.is_floating_point() else None

    def value_rule(self) -> str:
        """What :meth:`out_of_range` accepts, as the refusal says it."""
        return "finite values (or NaN: no label)"


def flip_map(target: torch.Tensor) -> torch.Tensor:
    """A batch of maps mirrored left-right (the last axis is width)."""
    if target.dtype == torch.uint16:  # torch has no CPU flip for uint16: move the bits
        return target.view(torch.int16).flip(-1).view(torch.uint16)
    return target.flip(-1)


class _Dense(TaskKind):
    """Targets are maps: they mirror with the image."""

    def flip(self, target: torch.Tensor) -> torch.Tensor | None:
        return flip_map(target)


TASK_KINDS: Registry[TaskKind] = Registry("task kind")

#: The class label (and segmentation pixel) that says "no label for this task".
MISSING_CLASS = MISSING_LABEL


def _any_valid(valid: torch.Tensor) -> torch.Tensor:
    """Per example (B), whether a B×… mask of valid entries holds any."""
    return valid.reshape(valid.shape[0], -1).any(dim=1)


def _rows(mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A per-example mask (B) shaped to broadcast against ``like`` (B×…)."""
    return mask.view(-1, *([1] * (like.ndim - 1)))


def _masked_mean(values: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Per-example mean of ``values`` (B×…) over ``valid`` entries; 0 for an example with none."""
    dims = tuple(range(1, values.ndim))
    valid = valid.to(values.dtype)
    return (values * valid).sum(dim=dims) / valid.sum(dim=dims).clamp(min=1)


class _Mean(Metric):
    """Metrics that are sums divided by the summed ``count`` (of examples or pixels); ``sums``
    maps one batch's ``(output, target)`` to those sums (``count`` among them)."""

    def __init__(self, sums: Callable[[torch.Tensor, torch.Tensor], dict[str, torch.Tensor]]
                 ) -> None:
        super().__init__()
        self.sums_of = sums

    def update(self, output: torch.Tensor, target: torch.Tensor) -> None:
        self.add(**self.sums_of(output, target))

    def result(self) -> dict[str, float]:
        count = self.sums["count"].clamp(min=1)
        return {name: float(value / count) for name, value in self.sums.items()
                if name != "count"}


@TASK_KINDS.register("classification")
class Classification(TaskKind):
    """One label per example, cross-entropy, accuracy; label ``-1`` means no label."""

    targets = TARGETS["classification"]

    def __init__(self, classes: int = 2) -> None:
        self.classes = classes

    def head(self) -> HeadSpec:
        return self.classes

    def predict(self, output: torch.Tensor) -> torch.Tensor:
        """The class id of each example (B, int64)."""
        return output.argmax(dim=1)

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(output.float(), target, reduction="none",
                               ignore_index=MISSING_CLASS)  # 0, and no gradient, when missing

    def labelled(self, target: torch.Tensor) -> torch.Tensor:
        return target != MISSING_CLASS

    def expect(self, output: torch.Tensor, target: torch.Tensor) -> str | None:
        return self.targets.expect(output, target, self.classes)

    def out_of_range(self, target: torch.Tensor) -> torch.Tensor | None:
        above = target >= self.classes
        # an unsigned target is never negative (and comparing it with -1 would wrap around)
        return above | (target < MISSING_CLASS) if target.is_signed() else above

    def value_rule(self) -> str:
        return f"class indices 0..{self.classes - 1} (or {MISSING_CLASS}: no label)"

    def metric(self) -> Metric:
        return _Mean(self.sums)

    def sums(self, output: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        # a missing label (-1) never equals a prediction, so only ``count`` needs the mask
        return {"count": self.labelled(target).sum(),
                "score": (output.argmax(dim=1) == target).sum()}


@TASK_KINDS.register("segmentation")
class Segmentation(_Dense):
    """A class per pixel (targets B×H×W); pixels equal to ``ignore`` or ``-1`` do not count (a
    map of such pixels only is a missing label). Per-pixel cross-entropy averaged per image;
    mIoU over the classes present in the predictions or the
    targets of the split (confusion matrix accumulated on the device)."""

    targets = TARGETS["segmentation"]

    def __init__(self, classes: int, ignore: int | None = None) -> None:
        self.classes = classes
        self.ignore = ignore

    def head(self) -> HeadSpec:
        return DenseHead(self.classes)

    def predict(self, output: torch.Tensor) -> torch.Tensor:
        """The class id of each pixel (B×H×W, int64)."""
        return output.argmax(dim=1)

    def _valid(self, target: torch.Tensor) -> torch.Tensor:
        valid = target != MISSING_CLASS
        return valid if self.ignore is None else valid & (target != self.ignore)

    def labelled(self, target: torch.Tensor) -> torch.Tensor:
        return _any_valid(self._valid(target.long()))

    def expect(self, output: torch.Tensor, target: torch.Tensor) -> str | None:
        return self.targets.expect(output, target, self.classes, self.ignore)

    def out_of_range(self, target: torch.Tensor) -> torch.Tensor | None:
        if target.is_floating_point():  # a float map: the first-batch check names the dtype
            return ~torch.isfinite(target)
        labels = target.long()
        return self._valid(labels) & ((labels < 0) | (labels >= self.classes))

    def value_rule(self) -> str:
        ignored = f", {self.ignore}: ignored" if self.ignore is not None else ""
        return (f"classes 0..{self.classes - 1} per pixel (or {MISSING_CLASS}: no "
                f"label{ignored})")

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        target = target.long()
        valid = self._valid(target)
        pixel = F.cross_entropy(output.float(), target.where(valid, 0), reduction="none")
        return _masked_mean(pixel, valid)

    def metric(self) -> Metric:
        return _Confusion(self)


class _Confusion(Metric):
    def __init__(self, kind: Segmentation) -> None:
        super().__init__()
        self.kind = kind

    def update(self, output: torch.Tensor, target: torch.Tensor) -> None:
        target = target.long()
        valid = self.kind._valid(target)
        n = self.kind.classes
        pairs = target[valid] * n + output.argmax(dim=1)[valid]
        self.add(confusion=torch.bincount(pairs, minlength=n * n).view(n, n))

    def result(self) -> dict[str, float]:
        confusion = self.sums["confusion"]
        hits = confusion.diagonal()
        union = confusion.sum(dim=0) + confusion.sum(dim=1) - hits
        present = union > 0
        miou = float((hits[present] / union[present]).mean()) if present.any() else 0.0
        total = float(confusion.sum())
        return {"score": miou, "pixel_acc": float(hits.sum()) / total if total else 0.0}


class _PixelRegression(_Dense):
    """Targets B×C×H×W stored as integers (or floats); value = raw × ``scale``; raw ==
    ``invalid``, or NaN, marks a missing pixel (in any channel). L1 loss over the valid pixels
    of each image; an image without one carries no label."""

    def __init__(self, channels: int = 1, scale: float = 1.0, invalid: int | None = None
                 ) -> None:
        self.channels = channels
        self.scale = scale
        self.invalid = invalid

    def head(self) -> HeadSpec:
        return DenseHead(self.channels)

    def predict(self, output: torch.Tensor) -> torch.Tensor:
        """Values in the units the loss compares (raw × ``scale``): B×C×H×W maps (B×C per
        image, B for one value per image)."""
        output = output.float()
        return output[:, 0] if output.ndim == 2 and output.shape[1] == 1 else output

    def decode(self, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Target values (float; 0 where missing) and the B×1×H×W mask of valid pixels (B×1
        for per-image values)."""
        if target.ndim in (1, 3):  # one value per image, or one channel per pixel
            target = target.unsqueeze(1)
        if self.invalid is None:
            valid = torch.ones_like(target[:, :1], dtype=torch.bool)
        else:
            valid = (target != self.invalid).all(dim=1, keepdim=True)
        if target.is_floating_point():  # NaN: missing; 0 keeps the loss and its gradient finite
            valid = valid & ~target.isnan().any(dim=1, keepdim=True)
            target = target.nan_to_num(nan=0.0)
        return target.float() * self.scale, valid

    def labelled(self, target: torch.Tensor) -> torch.Tensor:
        return _any_valid(self.decode(target)[1])

    @staticmethod
    def error(output: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        """Per-pixel absolute error, averaged over channels (B×1×H×W)."""
        return (output.float() - value).abs().mean(dim=1, keepdim=True)

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        value, valid = self.decode(target)
        return _masked_mean(self.error(output, value), valid)

    def metric(self) -> Metric:
        return _Mean(self.sums)

    def sums(self, output: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        """One batch's metric sums over its valid pixels (``count`` among them)."""
        raise NotImplementedError


@TASK_KINDS.register("regression")
class Regression(_PixelRegression):
    """Per-pixel values (e.g. edges), or with ``dense=False`` ``channels`` values per image
    (targets B or B×C, a linear head); score = share of valid pixels (or images) within
    ``tolerance``."""

    primary = ("l1", False)
    targets = TARGETS["regression"]

    def __init__(self, channels: int = 1, scale: float = 1.0, invalid: int | None = None,
                 tolerance: float = 0.1, dense: bool = True) -> None:
        super().__init__(channels, scale, invalid)
        self.tolerance = tolerance
        self.dense = dense

    def head(self) -> HeadSpec:
        return DenseHead(self.channels) if self.dense else self.channels

    def flip(self, target: torch.Tensor) -> torch.Tensor | None:
        return super().flip(target) if self.dense else None

    def sums(self, output: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        value, valid = self.decode(target)
        error = self.error(output, value)[valid]
        return {"count": valid.sum(), "l1": error.sum(),
                "score": (error <= self.tolerance).sum()}


@TASK_KINDS.register("depth")
class Depth(_PixelRegression):
    """Depth (one channel): L1 loss; score δ₁ = share of valid pixels with
    max(pred/true, true/pred) < 1.25; also L1 and absolute relative error."""

    primary = ("l1", False)
    targets = TARGETS["depth"]

    def sums(self, output: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        value, valid = self.decode(target)
        valid = valid & (value > 0)
        true, pred = value[valid], output.float()[:, :1][valid].clamp(min=1e-3)
        ratio = torch.maximum(pred / true, true / pred)
        return {"count": valid.sum(), "l1": (pred - true).abs().sum(),
                "abs_rel": ((pred - true).abs() / true).sum(), "score": (ratio < 1.25).sum()}


@TASK_KINDS.register("normals")
class Normals(_PixelRegression):
    """Surface normals stored as 8-bit RGB (value / 255 × 2 − 1): L1 loss; score = share of
    valid pixels whose predicted direction is within 11.25° of the true one; also L1 and the
    mean angle in degrees."""

    primary = ("mean_angle", False)
    targets = TARGETS["normals"]

    def __init__(self, invalid: int | None = None) -> None:
        super().__init__(channels=3, scale=2.0 / 255.0, invalid=invalid)

    def decode(self, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        value, valid = super().decode(target)
        return value - 1.0, valid

    def predict(self, output: torch.Tensor) -> torch.Tensor:
        """Unit normal vectors (B×3×H×W, components in [−1, 1]): the direction the metrics
        score."""
        return F.normalize(output.float(), dim=1, eps=1e-12)

    def flip(self, target: torch.Tensor) -> torch.Tensor | None:
        """Mirrored normals point the other way along x: raw 255 − x decodes to −x."""
        mirrored = target.flip(-1).clone()
        mirrored[:, 0] = 255 - mirrored[:, 0]
        return mirrored

    def sums(self, output: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        value, valid = self.decode(target)
        cosine = F.cosine_similarity(output.float(), value, dim=1, eps=1e-6).unsqueeze(1)[valid]
        angle = torch.rad2deg(torch.arccos(cosine.clamp(-1.0, 1.0)))
        return {"count": valid.sum(), "l1": self.error(output, value)[valid].sum(),
                "mean_angle": angle.sum(), "score": (angle <= 11.25).sum()}


Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class FunctionKind(TaskKind):
    """A kind made of a user's functions (what :func:`scalarize.api.task` registers for a task
    given ``loss=``): ``loss(output, target)`` returns one loss per example (shape B), and the
    optional ``metric(output, target)`` one value per example, averaged over a split's labelled
    examples; without a metric, the loss is the metric (lower is better). A float target that is
    NaN all through (a value, a vector or a whole map) is a missing label: the functions see 0
    there, and its loss and metric count for nothing (NaN in part of a target is the user's
    functions' to handle). The head is a linear layer with
    ``outputs`` outputs, or with ``dense`` a decoder with ``outputs`` channels per pixel, or
    the user's own ``head(in_features) -> nn.Module`` (see
    :class:`~scalarize.models.heads.UserHead`).

    A ``metric`` must say which way it points: ``higher_is_better`` is required with it (an
    error maximised by searches and rankings would be silently wrong); the loss as metric is
    lower-is-better. The kind's ``score`` (what ranks runs and members, higher is better) is the
    split's metric when ``higher_is_better``, else ``1 / (1 + metric)`` of the split's mean
    metric (for errors ≥ 0), so it ranks runs exactly as the metric does; the gain Δ compares
    the metric itself, under ``metric_name``.

    Example:
        >>> kind = FunctionKind(lambda out, y: (out[:, 0] - y).abs(), outputs=1)
        >>> metric = kind.metric()
        >>> metric.update(torch.tensor([[1.0], [3.0]]), torch.tensor([1.0, 2.0]))
        >>> {name: round(value, 4) for name, value in metric.result().items()}
        {'loss': 0.5, 'score': 0.6667}
    """

    def __init__(self, loss: Loss, metric: Loss | None = None, *, outputs: int = 1,
                 dense: bool = False, higher_is_better: bool | None = None,
                 metric_name: str | None = None,
                 head: Callable[[int], nn.Module] | None = None) -> None:
        self.loss_fn, self.metric_fn, self.head_fn = loss, metric, head
        self.outputs, self.dense = outputs, dense
        if metric is not None and higher_is_better is None:
            raise ScalarizeError("a task's own metric= needs higher_is_better=True or False "
                                 "(an error is lower-is-better); searches and rankings follow it")
        higher = False if metric is None else bool(higher_is_better)
        self.metric_name = metric_name or ("metric" if metric is not None else "loss")
        self.primary = (self.metric_name, higher)

    def head(self) -> HeadSpec:
        if self.head_fn is not None:
            return UserHead(self.head_fn, self.dense)
        return DenseHead(self.outputs) if self.dense else self.outputs

    def flip(self, target: torch.Tensor) -> torch.Tensor | None:
        return flip_map(target) if self.dense else None

    def labelled(self, target: torch.Tensor) -> torch.Tensor:
        if not target.is_floating_point():
            return super().labelled(target)
        return ~target.isnan().reshape(target.shape[0], -1).all(dim=1)

    def _filled(self, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``target`` with its missing labels set to 0, and which examples are labelled."""
        labelled = self.labelled(target)
        if target.is_floating_point():
            target = target.where(_rows(labelled, target), 0.0)
        return target, labelled

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if not target.is_floating_point():
            return self.loss_fn(output, target)
        target, labelled = self._filled(target)
        loss = self.loss_fn(output, target)
        if not isinstance(loss, torch.Tensor) or loss.shape != labelled.shape:
            return loss  # not one loss per example: the first-batch check says so
        return loss.where(labelled, 0.0)

    def metric(self) -> Metric:
        return _FunctionMean(self.sums, self.metric_name, self.primary[1])

    def sums(self, output: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        target, labelled = self._filled(target)
        values = (self.metric_fn or self.loss_fn)(output, target).detach().double()
        return {"count": labelled.sum(), self.metric_name: values.where(labelled, 0.0).sum()}


class _FunctionMean(_Mean):
    """A :class:`FunctionKind`'s metric averaged over a split, and its score from that mean:
    the metric itself, or ``1 / (1 + metric)`` when lower is better."""

    def __init__(self, sums: Callable[[torch.Tensor, torch.Tensor], dict[str, torch.Tensor]],
                 name: str, higher: bool) -> None:
        super().__init__(sums)
        self.name, self.higher = name, higher

    def result(self) -> dict[str, float]:
        result = super().result()
        value = result[self.name]
        result["score"] = value if self.higher else 1.0 / (1.0 + value)
        return result


def build_kind(kind: str, options: dict[str, object]) -> TaskKind:
    """The :class:`TaskKind` registered as ``kind``, made with ``options``."""
    return TASK_KINDS.get(kind)(**options)


__all__ = ["MISSING_CLASS", "TASK_KINDS", "FunctionKind", "Metric", "TaskKind", "build_kind"]
