"""Float-map kinds (depth_map, normal_map): missing pixels count for nothing, metrics match
LibMTL's formulas computed by hand."""

import math

import numpy as np
import pytest
import torch

from scalarize.models.heads import DenseHead
from scalarize.training.dense_kinds import median_of
from scalarize.training.task_kinds import build_kind


def test_depth_map_loss_and_metrics_skip_missing_pixels():
    kind = build_kind("depth_map", {})
    assert kind.head() == DenseHead(1)
    target = torch.tensor([[[[2.0, 4.0], [1.0, 0.0]]]])  # one missing pixel
    pred = torch.tensor([[[[1.0, 5.0], [1.0, 99.0]]]])
    assert kind.loss(pred, target).item() == pytest.approx((1 + 1 + 0) / 3)
    metric = kind.metric()
    metric.update(pred, target)
    metric.update(pred, target[:, 0])  # B×H×W targets read the same
    result = metric.result()
    assert result["abs_err"] == pytest.approx(2 / 3)
    assert result["rel_err"] == pytest.approx((0.5 + 0.25 + 0) / 3)
    assert result["score"] == pytest.approx(1 / 3)  # 1/2 and 5/4 miss δ₁ < 1.25, 1/1 passes


def test_depth_map_nan_example_adds_nothing():
    kind = build_kind("depth_map", {})
    target = torch.tensor([[[[2.0]]], [[[math.nan]]]])
    pred = torch.tensor([[[[3.0]]], [[[1.0]]]])
    assert kind.loss(pred, target).tolist() == [1.0, 0.0]
    assert kind.labelled(target).tolist() == [True, False]
    metric = kind.metric()
    metric.update(pred, target)
    assert metric.result()["abs_err"] == pytest.approx(1.0)


def test_depth_map_refuses_integer_or_misshapen_targets():
    kind = build_kind("depth_map", {})
    output = torch.zeros(2, 1, 4, 4)
    assert kind.expect(output, torch.zeros(2, 1, 4, 4)) is None
    assert kind.expect(output, torch.zeros(2, 4, 4)) is None
    assert "floats" in kind.expect(output, torch.zeros(2, 1, 4, 4, dtype=torch.int64))
    assert "(2, 1, 4, 4)" in kind.expect(output, torch.zeros(2, 1, 4, 5))


def _normals(angles_deg: list[float]) -> torch.Tensor:
    """1×3×1×N unit vectors tilted from +z towards +x by the given angles."""
    a = torch.deg2rad(torch.tensor(angles_deg))
    return torch.stack([a.sin(), torch.zeros_like(a), a.cos()]).view(1, 3, 1, -1)


def test_normal_map_angles_match_libmtl_formulas():
    kind = build_kind("normal_map", {})
    assert kind.head() == DenseHead(3)
    errors = [5.0, 15.0, 25.0, 40.0]
    target = torch.cat([_normals([0.0] * 4), torch.zeros(1, 3, 1, 1)], dim=-1)  # + a missing
    pred = torch.cat([_normals(errors) * 3.0, torch.ones(1, 3, 1, 1)], dim=-1)  # any length
    metric = kind.metric()
    metric.update(pred, target)
    result = metric.result()
    assert result["mean_angle"] == pytest.approx(np.mean(errors), abs=1e-3)
    assert result["median_angle"] == pytest.approx(np.median(errors), abs=0.02)
    assert result["within_11_25"] == pytest.approx(0.25)
    assert result["within_22_5"] == pytest.approx(0.5)
    assert result["within_30"] == pytest.approx(0.75)
    assert result["score"] == result["within_11_25"]
    cosines = torch.deg2rad(torch.tensor(errors)).cos()
    assert kind.loss(pred, target).item() == pytest.approx(float((1 - cosines).mean()), abs=1e-6)


def test_normal_map_flip_negates_x_and_mirrors():
    kind = build_kind("normal_map", {})
    target = torch.arange(12, dtype=torch.float32).view(1, 3, 2, 2)
    flipped = kind.flip(target)
    assert torch.equal(flipped[:, 1:], target[:, 1:].flip(-1))
    assert torch.equal(flipped[:, 0], -target[:, 0].flip(-1))


def test_median_of_a_histogram_is_within_one_bin():
    values = np.random.default_rng(0).uniform(0, 90, 1001)
    histogram = torch.bincount(torch.from_numpy(values / 0.01).long(), minlength=18000)
    assert median_of(histogram) == pytest.approx(np.median(values), abs=0.01)
    assert median_of(torch.zeros(10)) == 0.0


def test_normal_map_without_any_valid_pixel_is_unlabelled():
    kind = build_kind("normal_map", {})
    target = torch.cat([_normals([0.0, 10.0]), torch.zeros(1, 3, 1, 2)])
    assert kind.labelled(target).tolist() == [True, False]
    assert kind.loss(torch.ones(2, 3, 1, 2), target)[1].item() == 0.0
