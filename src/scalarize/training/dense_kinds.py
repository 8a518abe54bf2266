"""Dense task kinds for float maps with missing pixels, measured as the NYUv2 / Cityscapes tables.

The preprocessed NYUv2 and Cityscapes of MTAN (lorenmt/mtan), LibMTL and Nash-MTL store depth
and surface normals as float maps in which a zero marks a missing pixel. These kinds read such
maps as they are (no integer encoding) and compute the losses and metrics of LibMTL's
``examples/nyu/utils.py`` (``DepthLoss``, ``NormalLoss``, ``DepthMetric``, ``NormalMetric``):

=========== ================================ ================================ ============
kind        loss (valid pixels of an image)  metrics (valid pixels of a split) Δ compares
=========== ================================ ================================ ============
depth_map   L1                               abs_err, rel_err; score δ₁        abs_err ↓
normal_map  1 − cos(pred/‖pred‖, target)     mean_angle, median_angle,         mean_angle ↓
                                             within_11_25, within_22_5,
                                             within_30; score within 11.25°
=========== ================================ ================================ ============

Semantic segmentation needs no new kind: ``segmentation`` with ``ignore: -1`` is LibMTL's
``SegMetric`` (mIoU and pixel accuracy over the labelled pixels) and ``SegLoss``.

Missing pixels count for neither loss nor metrics: depth 0 (LibMTL's mask
``sum(gt, dim=1) != 0``), a zero normal vector (LibMTL sums the three components; a vector
whose components merely sum to zero is kept here, as it is a real direction), and anything
not finite. A map without any valid pixel (e.g. all NaN) is an example without that task's
label (``labelled``): it adds nothing to the task's loss or metrics. Two departures from
LibMTL: a loss averages over each image's valid pixels, then over images (a per-example loss,
which the scalarize methods need), where LibMTL averages over the batch's valid pixels (the
same when images have as many valid pixels); and the median angle comes from a histogram of
0.01° bins accumulated on the device (each value at its bin's centre: within 0.005° of the
exact median) instead of keeping every pixel's error on the host. The metrics themselves are
LibMTL's sums over the split's valid pixels.

Example:
    >>> import torch
    >>> kind = TASK_KINDS.get("depth_map")()
    >>> metric = kind.metric()
    >>> metric.update(torch.tensor([[[[1.0, 3.0]]]]), torch.tensor([[[[2.0, 0.0]]]]))
    >>> metric.result()["abs_err"], metric.result()["rel_err"]
    (1.0, 0.5)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from scalarize.benchmarks.targets import TARGETS
from scalarize.models.heads import DenseHead, HeadSpec
from scalarize.training.task_kinds import TASK_KINDS, Metric, TaskKind, flip_map

#: Thresholds (degrees) of the normals tables' "within" columns, and their metric names.
WITHIN = {11.25: "within_11_25", 22.5: "within_22_5", 30.0: "within_30"}
#: Width (degrees) of the bins of the median angle's histogram.
ANGLE_BIN = 0.01
_BINS = round(180 / ANGLE_BIN)


def masked_mean(values: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Per-example mean of ``values`` (B×…) over ``valid`` entries, 0 for an example with none;
    invalid entries may hold NaN (they are replaced, not multiplied by 0)."""
    dims = tuple(range(1, values.ndim))
    total = torch.where(valid, values, torch.zeros_like(values)).sum(dim=dims)
    return total / valid.sum(dim=dims).clamp(min=1).to(values.dtype)


class _Sums(Metric):
    """Sums divided by the summed ``count`` of valid pixels."""

    def result(self) -> dict[str, float]:
        count = self.sums["count"].clamp(min=1)
        return {name: float(value / count) for name, value in self.sums.items()
                if name not in ("count", "histogram")}


@TASK_KINDS.register("depth_map")
class DepthMap(TaskKind):
    """Depth (or inverse depth) as a float map B×1×H×W (or B×H×W), 0 = missing; values are
    multiplied by ``scale``. Loss: L1 over the valid pixels of each image. Metrics: absolute
    error ``abs_err`` and relative error ``rel_err`` (|pred − true| / true) over the split's
    valid pixels, and the score δ₁ (share with max(pred/true, true/pred) < 1.25)."""

    primary = ("abs_err", False)
    targets = TARGETS["depth_map"]

    def __init__(self, scale: float = 1.0) -> None:
        self.scale = scale

    def head(self) -> HeadSpec:
        return DenseHead(1)

    def predict(self, output: torch.Tensor) -> torch.Tensor:
        """Depth maps B×1×H×W in the units the loss compares (raw × ``scale``)."""
        return output.float()[:, :1]

    def flip(self, target: torch.Tensor) -> torch.Tensor | None:
        return flip_map(target)

    def decode(self, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Values (B×1×H×W) and the mask of valid pixels."""
        value = (target.unsqueeze(1) if target.ndim == 3 else target).float()
        return value * self.scale, (value != 0) & torch.isfinite(value)

    def labelled(self, target: torch.Tensor) -> torch.Tensor:
        """An example whose map has no valid pixel carries no depth label."""
        return self.decode(target)[1].flatten(1).any(dim=1)

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        value, valid = self.decode(target)
        return masked_mean((output.float()[:, :1] - value).abs(), valid)

    def metric(self) -> Metric:
        return _DepthSums(self)


class _DepthSums(_Sums):
    def __init__(self, kind: DepthMap) -> None:
        super().__init__()
        self.kind = kind

    def update(self, output: torch.Tensor, target: torch.Tensor) -> None:
        value, valid = self.kind.decode(target)
        true, pred = value[valid], output.float()[:, :1][valid]
        error = (pred - true).abs()
        positive = pred.clamp(min=1e-6)
        ratio = torch.maximum(positive / true, true / positive)
        self.add(count=valid.sum(), abs_err=error.sum(), rel_err=(error / true.abs()).sum(),
                 score=(ratio < 1.25).sum())


@TASK_KINDS.register("normal_map")
class NormalMap(TaskKind):
    """Surface normals as a float map B×3×H×W of unit vectors (x, y, z), a zero vector =
    missing. Loss: 1 − cosine between the normalised prediction and the target, averaged over
    each image's valid pixels. Metrics over the split's valid pixels: the angle error's mean
    and median (degrees) and the shares within 11.25°, 22.5° and 30°; the score is the share
    within 11.25°. A mirrored image negates x (LibMTL's flip)."""

    primary = ("mean_angle", False)
    targets = TARGETS["normal_map"]

    def head(self) -> HeadSpec:
        return DenseHead(3)

    def predict(self, output: torch.Tensor) -> torch.Tensor:
        """Unit normal vectors B×3×H×W (the prediction normalised, as the metrics read it)."""
        return F.normalize(output.float(), dim=1, eps=1e-12)

    def flip(self, target: torch.Tensor) -> torch.Tensor | None:
        mirrored = target.flip(-1).clone()
        mirrored[:, 0] = -mirrored[:, 0]
        return mirrored

    @staticmethod
    def decode(target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Target vectors and the B×H×W mask of valid pixels."""
        target = target.float()
        valid = (target != 0).any(dim=1) & torch.isfinite(target).all(dim=1)
        return target, valid

    @staticmethod
    def cosine(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """B×H×W cosine of the normalised prediction with the target (as LibMTL: the target
        is taken as unit length)."""
        pred = F.normalize(output.float(), dim=1, eps=1e-12)
        return (pred * torch.nan_to_num(target)).sum(dim=1)

    def labelled(self, target: torch.Tensor) -> torch.Tensor:
        """An example whose map has no valid pixel carries no normals label."""
        return self.decode(target)[1].flatten(1).any(dim=1)

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        target, valid = self.decode(target)
        return masked_mean(1.0 - self.cosine(output, target), valid)

    def metric(self) -> Metric:
        return _AngleSums()


class _AngleSums(_Sums):
    def update(self, output: torch.Tensor, target: torch.Tensor) -> None:
        target, valid = NormalMap.decode(target)
        cosine = NormalMap.cosine(output, target)[valid]
        angle = torch.rad2deg(torch.arccos(cosine.clamp(-1.0, 1.0)))
        bins = (angle / ANGLE_BIN).long().clamp(0, _BINS - 1)
        self.add(count=valid.sum(), mean_angle=angle.sum(),
                 histogram=torch.bincount(bins, minlength=_BINS),
                 score=(angle < 11.25).sum(),
                 **{name: (angle < limit).sum() for limit, name in WITHIN.items()})

    def result(self) -> dict[str, float]:
        out = super().result()
        out["median_angle"] = median_of(self.sums["histogram"]) if "histogram" in self.sums \
            else 0.0
        return out


def median_of(histogram: torch.Tensor, width: float = ANGLE_BIN) -> float:
    """The median of values counted in ``histogram`` (bins of ``width`` from 0), as numpy's
    (the middle value, or the mean of the two middle ones), each value taken at its bin's
    centre: within half a bin of the exact median (0 when empty).

    Example:
        >>> median_of(torch.tensor([1, 1, 2, 0]), width=1.0)
        2.0
    """
    counts = histogram.round().long()
    total = int(counts.sum())
    if total == 0:
        return 0.0
    cumulative = counts.cumsum(0)
    ranks = torch.tensor([(total + 1) // 2, total // 2 + 1], device=cumulative.device)
    bins = torch.searchsorted(cumulative, ranks)  # the bins holding the middle values
    return float((bins.double() + 0.5).mean()) * width


__all__ = ["ANGLE_BIN", "WITHIN", "DepthMap", "NormalMap", "masked_mean", "median_of"]
