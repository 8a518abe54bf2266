"""The first batch is checked before training: targets against their task's kind, losses per
example. One line naming the task, what was seen and what was expected; no run folder."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import scalarize.api as sz
from scalarize.errors import ScalarizeError

RECIPE = {"train": {"epochs": 1, "batch_size": 8, "device": "cpu"}}


def _data(tasks, labels, n=24, size=8):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (n, 3, size, size), dtype=np.uint8)
    cut = n - 8
    return sz.from_arrays(tasks, train=(x[:cut], {k: v[:cut] for k, v in labels.items()}),
                          test=(x[cut:], {k: v[cut:] for k, v in labels.items()}),
                          val=(x[cut:], {k: v[cut:] for k, v in labels.items()}),
                          name="checked")


def _refused(data, tmp_path, match):
    out = tmp_path / "runs"
    with pytest.raises(ScalarizeError, match=match) as info:
        sz.train(data, "vit-d1-w16-p4", config=RECIPE, out=out, progress=False)
    assert "\n" not in str(info.value)
    assert not out.exists()  # refused before any folder was written


def test_a_dense_target_of_the_wrong_size_is_named(tmp_path):
    masks = np.zeros((24, 4, 4), dtype=np.uint8)  # images are 8×8
    data = _data([sz.task("mask", kind="segmentation", classes=2)], {"mask": masks})
    _refused(data, tmp_path, r"task 'mask': the first training batch has targets of shape "
                             r"\(2, 4, 4\) \(uint8\); it expects shape \(2, 8, 8\) of integer "
                             r"classes 0\.\.1")


def test_a_segmentation_class_out_of_range_is_named(tmp_path):
    masks = np.full((24, 8, 8), 5, dtype=np.uint8)
    data = _data([sz.task("mask", kind="segmentation", classes=2)], {"mask": masks})
    _refused(data, tmp_path, r"task 'mask'.*classes 0\.\.1 \(or -1: no label\), found 5")


class _Items(torch.utils.data.Dataset):
    """Streamed items whose ``digit`` labels are ``labels`` (the check sees them unfiltered)."""

    def __init__(self, labels):
        self.labels = labels

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return np.full((3, 8, 8), i, np.uint8), {"digit": int(self.labels[i]),
                                                 "size": float("nan") if i % 2 else 0.5}


def test_missing_markers_pass_and_a_bad_marker_is_named(tmp_path):
    tasks = [sz.task("digit", classes=3), sz.task("size", kind="regression", dense=False)]
    fine = sz.from_datasets(tasks, train=_Items([-1, 2] * 8), test=_Items([0, 1]),
                            val=_Items([0, 1]))
    sz.train(fine, "vit-d1-w16-p4", config=RECIPE, out=tmp_path / "ok", progress=False)
    bad = sz.from_datasets(tasks, train=_Items([-2, 2] * 8), test=_Items([0, 1]),
                           val=_Items([0, 1]))
    _refused(bad, tmp_path, r"task 'digit'.*it expects shape \(2,\) of integer class indices "
                            r"0\.\.2 \(or -1: no label\), found -2")


def test_a_per_image_regression_with_a_map_target_is_named(tmp_path):
    data = _data([sz.task("size", kind="regression", dense=False)],
                 {"size": np.zeros((24, 3), dtype=np.float32)})
    _refused(data, tmp_path, r"task 'size'.*shape \(2, 3\) \(float32\); it expects shape "
                             r"\(2,\) or \(2, 1\)")


def test_a_loss_that_is_not_per_example_is_refused(tmp_path):
    def mean_loss(output, target):
        return torch.nn.functional.mse_loss(output[:, 0], target)  # reduction='mean'

    data = _data([sz.task("size", loss=mean_loss)], {"size": np.zeros(24, np.float32)})
    _refused(data, tmp_path, r"task 'size': its loss returned shape \(\) \(float32\) for a "
                             r"batch of 2; a loss returns one value per example, shape \(2,\)")


def test_a_loss_that_raises_names_the_shapes(tmp_path):
    def broken(output, target):
        return (output[:, 0] - target[:, 5]).abs()  # targets have 3 columns

    data = _data([sz.task("vec", loss=broken)], {"vec": np.zeros((24, 3), np.float32)})
    _refused(data, tmp_path, r"task 'vec': its loss failed on the first training batch "
                             r"\(output shape \(2, 1\) \(float32\), targets shape \(2, 3\) "
                             r"\(float32\)\): IndexError")


def test_fitting_data_trains_and_the_check_leaves_training_unchanged(tmp_path, monkeypatch):
    labels = {"digit": np.arange(24) % 3, "mask": np.zeros((24, 8, 8), np.uint8)}
    data = _data([sz.task("digit", classes=3), sz.task("mask", kind="segmentation",
                                                       classes=2)], labels)
    checked = sz.train(data, "vit-d1-w16-p4", config=RECIPE, out=tmp_path / "a",
                       progress=False)
    import scalarize.training.trainer as trainer_module

    monkeypatch.setattr(trainer_module, "check_first_batch", lambda *args: None)
    unchecked = sz.train(data, "vit-d1-w16-p4", config=RECIPE, out=tmp_path / "b",
                         progress=False)
    assert checked.test == unchecked.test  # the check draws no random numbers, trains nothing
