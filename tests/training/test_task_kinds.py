"""Task kinds: losses skip invalid pixels, metrics match hand-computed values."""

import math

import pytest
import torch
import torch.nn.functional as F

from scalarize.errors import ScalarizeError
from scalarize.models.heads import DenseHead
from scalarize.training.task_kinds import TASK_KINDS, FunctionKind, build_kind


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


# -- partial labels: the declared missing values -------------------------------------------------

def _grad_of(kind, output, target):
    output = output.clone().requires_grad_(True)
    loss = kind.loss(output, target)
    loss.sum().backward()
    return loss, output.grad


def test_classification_minus_one_is_no_label():
    kind = build_kind("classification", {"classes": 3})
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 3.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    target = torch.tensor([0, -1, 1, -1])
    assert kind.labelled(target).tolist() == [True, False, True, False]
    loss, grad = _grad_of(kind, logits, target)
    assert loss[[1, 3]].tolist() == [0.0, 0.0] and not grad[[1, 3]].any()
    assert torch.allclose(loss[[0, 2]], F.cross_entropy(logits[[0, 2]], target[[0, 2]],
                                                        reduction="none"))
    metric = kind.metric()
    metric.update(logits, target)
    assert metric.result() == {"score": 0.5}  # 1 right of 2 labelled, not 1 of 4
    assert kind.expect(logits, target) is None
    assert "found -2" in kind.expect(logits, torch.tensor([0, -2, 1, 0]))


def test_a_nan_regression_value_is_no_label():
    kind = build_kind("regression", {"dense": False, "tolerance": 0.5})
    output = torch.tensor([[1.0], [5.0], [2.0]])
    target = torch.tensor([1.2, float("nan"), 3.0])
    assert kind.labelled(target).tolist() == [True, False, True]
    loss, grad = _grad_of(kind, output, target)
    assert loss.tolist() == pytest.approx([0.2, 0.0, 1.0]) and grad[1].item() == 0.0
    metric = kind.metric()
    metric.update(output, target)
    assert metric.result() == pytest.approx({"l1": 0.6, "score": 0.5})


def test_depth_nan_pixels_and_a_missing_map():
    kind = build_kind("depth", {})
    target = torch.ones(2, 2, 2)
    target[0, 0, 0] = float("nan")
    target[1] = float("nan")  # the whole map: no label
    output = torch.full((2, 1, 2, 2), 1.5)
    assert kind.labelled(target).tolist() == [True, False]
    loss, grad = _grad_of(kind, output, target)
    assert loss.tolist() == pytest.approx([0.5, 0.0])
    assert torch.isfinite(grad).all() and not grad[1].any() and grad[0, 0, 0, 0] == 0
    metric = kind.metric()
    metric.update(output, target)
    assert metric.sums["count"].item() == 3  # the three labelled pixels
    assert metric.result()["l1"] == pytest.approx(0.5)


def test_a_segmentation_map_of_minus_one_is_no_label():
    kind = build_kind("segmentation", {"classes": 2})
    target = torch.tensor([[[0, 1], [-1, 1]], [[-1, -1], [-1, -1]]])
    logits = _one_hot_logits(target.clamp(min=0), 2)
    assert kind.labelled(target).tolist() == [True, False]
    loss, grad = _grad_of(kind, logits, target)
    assert loss[1].item() == 0.0 and not grad[1].any()
    metric = kind.metric()
    metric.update(logits, target)
    assert metric.result() == {"score": 1.0, "pixel_acc": 1.0}  # 3 labelled pixels, all right


def test_a_users_kind_skips_all_nan_targets():
    from scalarize.training.task_kinds import FunctionKind

    kind = FunctionKind(lambda out, y: (out - y).abs().mean(dim=1), outputs=2)
    output = torch.tensor([[1.0, 1.0], [9.0, 9.0], [0.0, 2.0]])
    target = torch.tensor([[1.0, 2.0], [float("nan"), float("nan")], [0.0, 0.0]])
    assert kind.labelled(target).tolist() == [True, False, True]
    assert kind.labelled(torch.tensor([1, 2])).tolist() == [True, True]  # integers: all
    loss, grad = _grad_of(kind, output, target)
    assert loss.tolist() == [0.5, 0.0, 1.0] and not grad[1].any()
    metric = kind.metric()
    metric.update(output, target)
    assert metric.result()["loss"] == pytest.approx(0.75)


def test_a_users_metric_must_say_which_way_it_points():
    from scalarize.errors import ScalarizeError
    from scalarize.training.task_kinds import FunctionKind

    def error(out, y):
        return (out[:, 0] - y).abs()

    with pytest.raises(ScalarizeError, match=r"metric= needs higher_is_better=True or False"):
        FunctionKind(error, error)  # an error silently maximised before
    assert FunctionKind(error, error, higher_is_better=False).primary == ("metric", False)
    assert FunctionKind(error).primary == ("loss", False)  # the loss: lower is better


def test_a_lower_is_better_score_is_one_over_one_plus_the_splits_metric():
    """As documented: 1 / (1 + metric) of the split's mean metric (it ranks as the metric
    does), not the mean over examples of 1 / (1 + e)."""
    from scalarize.training.task_kinds import FunctionKind

    kind = FunctionKind(lambda out, y: (out[:, 0] - y).abs(),
                        lambda out, y: (out[:, 0] - y).abs(), higher_is_better=False)
    metric = kind.metric()
    metric.update(torch.tensor([[0.0], [0.0]]), torch.tensor([0.0, 4.0]))
    result = metric.result()
    assert result["metric"] == 2.0 and result["score"] == pytest.approx(1 / 3)
    higher = FunctionKind(lambda out, y: out[:, 0], lambda out, y: out[:, 0],
                          higher_is_better=True).metric()
    higher.update(torch.tensor([[0.2], [0.6]]), torch.tensor([0.0, 0.0]))
    assert higher.result()["score"] == pytest.approx(0.4)


def test_each_kind_predicts_in_its_units():
    logits = torch.tensor([[0.1, 2.0, -1.0], [3.0, 0.0, 0.0]])
    assert TASK_KINDS.get("classification")(classes=3).predict(logits).tolist() == [1, 0]
    maps = torch.zeros(2, 3, 4, 4)
    maps[:, 2] = 1.0
    segmented = TASK_KINDS.get("segmentation")(classes=3).predict(maps)
    assert segmented.shape == (2, 4, 4) and bool((segmented == 2).all())
    one_value = TASK_KINDS.get("regression")(dense=False).predict(torch.tensor([[0.5], [2.0]]))
    assert one_value.tolist() == [0.5, 2.0]
    two_values = TASK_KINDS.get("regression")(channels=2, dense=False)
    assert two_values.predict(torch.ones(3, 2)).shape == (3, 2)
    assert TASK_KINDS.get("depth")().predict(torch.ones(2, 1, 4, 4)).shape == (2, 1, 4, 4)
    for kind in (TASK_KINDS.get("normals")(), TASK_KINDS.get("normal_map")()):
        normals = kind.predict(torch.full((2, 3, 4, 4), 2.0))
        torch.testing.assert_close(normals.norm(dim=1), torch.ones(2, 4, 4))
    assert TASK_KINDS.get("depth_map")().predict(torch.ones(2, 1, 4, 4)).shape == (2, 1, 4, 4)
    mine = FunctionKind(lambda out, y: (out[:, 0] - y).abs())
    assert torch.equal(mine.predict(torch.ones(2, 1)), torch.ones(2, 1))
