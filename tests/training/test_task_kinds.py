"""Task kinds: losses skip invalid pixels, metrics match hand-computed values."""

import math

import pytest
import torch
import torch.nn.functional as F

from scalarize.errors import ScalarizeError
from scalarize.models.heads import DenseHead
from scalarize.training.task_kinds import TASK_KINDS, build_kind


def _one_hot_logits(classes: torch.Tensor, n: int) -> torch.Tensor:
    """B×n×H×W logits that predict ``classes`` (B×H×W)."""
    return F.one_hot(classes, n).permute(0, 3, 1, 2).float() * 10


def test_registry_lists_the_kinds():
    # kinds made from a user's functions (scalarize.api.task(loss=...)) live for the process
    assert [n for n in TASK_KINDS.names() if n not in TASK_KINDS.session()] == [
        "classification", "depth", "depth_map", "normal_map", "normals", "regression",
        "segmentation"]
    with pytest.raises(ScalarizeError, match="unknown task kind 'keypoints'"):
        build_kind("keypoints", {})


def test_segmentation_miou_and_pixel_accuracy_by_hand():
    kind = build_kind("segmentation", {"classes": 3, "ignore": 255})
    assert kind.head() == DenseHead(3)
    target = torch.tensor([[[0, 0], [1, 255]]])
    pred = torch.tensor([[[0, 1], [1, 2]]])
    metric = kind.metric()
    metric.update(_one_hot_logits(pred, 3), target)
    result = metric.result()
    # valid pixels: (0→0), (0→1), (1→1); the ignored one predicted 2 does not count.
    # IoU class 0 = 1/2, class 1 = 1/2, class 2 absent from both → mIoU 0.5
    assert result["score"] == pytest.approx(0.5)
    assert result["pixel_acc"] == pytest.approx(2 / 3)


def test_segmentation_loss_ignores_ignored_pixels():
    kind = build_kind("segmentation", {"classes": 3, "ignore": 255})
    logits = torch.randn(1, 3, 2, 2)
    target = torch.tensor([[[0, 2], [1, 255]]])
    logits_changed = logits.clone()
    logits_changed[0, :, 1, 1] = 100.0  # only the ignored pixel's output changes
    assert torch.allclose(kind.loss(logits, target), kind.loss(logits_changed, target))
    by_hand = F.cross_entropy(logits[0].reshape(3, -1).T[:3], torch.tensor([0, 2, 1]))
    assert torch.allclose(kind.loss(logits, target), by_hand)


def test_depth_skips_invalid_pixels_and_scores_delta1():
    kind = build_kind("depth", {"scale": 0.5, "invalid": 9})
    target = torch.tensor([[[[2, 4], [6, 9]]]])  # values 1, 2, 3 and one invalid
    pred = torch.tensor([[[[1.2, 2.0], [4.0, -50.0]]]])
    assert kind.loss(pred, target).item() == pytest.approx((0.2 + 0 + 1.0) / 3)
    metric = kind.metric()
    metric.update(pred, target)
    result = metric.result()
    assert result["score"] == pytest.approx(2 / 3)  # 1.2/1 and 2/2 are within 1.25, 4/3 is not
    assert result["l1"] == pytest.approx(0.4)
    assert result["abs_rel"] == pytest.approx((0.2 + 0 + 1 / 3) / 3)


def test_normals_angle_within_11_25_degrees():
    kind = build_kind("normals", {})
    assert kind.head() == DenseHead(3)
    up = torch.tensor([127.5, 127.5, 255.0])  # decodes to (0, 0, 1)
    target = up.view(1, 3, 1, 1).expand(1, 3, 1, 2).round().to(torch.uint8)
    tilted = math.radians(20)
    pred = torch.tensor([[[[0.0, math.sin(tilted)]], [[0.0, 0.0]], [[1.0, math.cos(tilted)]]]])
    metric = kind.metric()
    metric.update(pred, target)
    result = metric.result()
    assert result["score"] == pytest.approx(0.5)
    assert result["mean_angle"] == pytest.approx(10.0, abs=0.5)


def test_regression_tolerance_and_per_example_loss():
    kind = build_kind("regression", {"scale": 0.1, "tolerance": 0.15})
    target = torch.tensor([[[[10, 20]]], [[[0, 0]]]], dtype=torch.int32)  # 1.0, 2.0 / 0, 0
    pred = torch.tensor([[[[1.1, 2.5]]], [[[0.0, 0.0]]]])
    assert kind.loss(pred, target).tolist() == pytest.approx([0.3, 0.0])
    metric = kind.metric()
    metric.update(pred, target)
    assert metric.result()["score"] == pytest.approx(3 / 4)


def test_classification_accuracy_accumulates_over_batches():
    kind = build_kind("classification", {"classes": 3})
    metric = kind.metric()
    metric.update(torch.eye(3)[[0, 1]], torch.tensor([0, 2]))
    metric.update(torch.eye(3)[[2]], torch.tensor([2]))
    assert metric.result() == {"score": pytest.approx(2 / 3)}
