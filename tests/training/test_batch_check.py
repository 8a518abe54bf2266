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
    # the whole in-memory split is checked first, naming the item
    _refused(data, tmp_path, r"^train split, item 0: task 'mask' has label 5; it takes classes "
                             r"0\.\.1 per pixel \(or -1: no label\)$")


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
    _refused(bad, tmp_path, r"^train split, item 0: task 'digit' has label -2; it takes class "
                            r"indices 0\.\.2 \(or -1: no label\)$")


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


# -- every batch of every split: streamed data checked as strictly as in-memory data ----------
class _Stream(torch.utils.data.Dataset):
    """``n`` streamed items; ``fault`` maps an item index to what it carries instead:
    a ``digit`` label, a ``size`` value, or ``"nan"`` (NaN pixels in a float image)."""

    def __init__(self, n, fault=None):
        self.n, self.fault = n, fault or {}

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        image = np.full((3, 8, 8), (i % 7) / 7, np.float32)
        digit, size = i % 3, float(i % 5)
        fault = self.fault.get(i)
        if fault == "nan":
            image[1, 2, 3] = np.nan
        elif isinstance(fault, float):
            size = fault
        elif fault is not None:
            digit = fault
        return image, {"digit": digit, "size": size}


STREAM_TASKS = [sz.task("digit", classes=3), sz.task("size", kind="regression", dense=False)]


def _streamed(train=None, val=None, test=None):
    return sz.from_datasets(STREAM_TASKS, train=_Stream(40, train), val=_Stream(16, val),
                            test=_Stream(16, test), name="streamed")


def _stream_refused(data, tmp_path, match, epochs=1):
    out = tmp_path / "runs"
    config = {"train": {**RECIPE["train"], "epochs": epochs, "workers": 0}}
    with pytest.raises(ScalarizeError, match=match) as info:
        sz.train(data, "vit-d1-w16-p4", config=config, out=out, progress=False)
    assert "\n" not in str(info.value)
    return out


def test_an_out_of_range_label_deep_in_a_streamed_train_split_is_one_line(tmp_path):
    out = _stream_refused(_streamed(train={37: 4}), tmp_path,
                          r"^train split, item 37 \(batch \d\): task 'digit' has label 4; it "
                          r"takes class indices 0\.\.2 \(or -1: no label\)$")
    assert not out.exists() or not any(out.iterdir())  # nothing half-written is left


def test_nan_pixels_in_a_streamed_item_are_named_not_a_divergence(tmp_path):
    _stream_refused(_streamed(train={29: "nan"}), tmp_path,
                    r"^train split, item 29 \(batch \d\): its image holds NaN or infinite "
                    r"values")


@pytest.mark.parametrize("value", [float("inf"), float("-inf")])
def test_an_infinite_regression_target_is_refused(tmp_path, value):
    _stream_refused(_streamed(val={11: value}), tmp_path,
                    rf"^val split, item 11 \(batch 1\): task 'size' has value {value!r}; it "
                    r"takes finite values \(or NaN: no label\)$")


def test_a_fault_in_the_test_split_keeps_the_training_and_a_run_again_finishes_it(tmp_path):
    out = _stream_refused(_streamed(test={13: 9}), tmp_path,
                          r"^test split, item 13 \(batch 1\): task 'digit' has label 9")
    (folder,) = [p for p in out.iterdir()]
    assert not (folder / "summary.json").exists()  # not finished, and does not look it
    assert (folder / "checkpoint.pt").is_file()
    config = {"train": {**RECIPE["train"], "workers": 0}}
    fixed = sz.train(_streamed(), "vit-d1-w16-p4", config=config, out=out, progress=False)
    clean = sz.train(_streamed(), "vit-d1-w16-p4", config=config, out=tmp_path / "clean",
                     progress=False)
    assert fixed.steps == clean.steps and fixed.test == clean.test  # continued, not retrained


def test_an_in_memory_split_is_checked_whole_before_anything_is_written(tmp_path):
    """A user's loader may hand over in-memory splits unchecked (``sz.from_arrays`` checks)."""
    from scalarize.benchmarks import Dataset, Split, Task

    rng = np.random.default_rng(0)

    def split(n, age):
        return Split(rng.integers(0, 256, (n, 3, 8, 8), dtype=np.uint8),
                     {"digit": np.arange(n) % 3, "age": age})

    bad = np.ones(8, np.float32)
    bad[5] = np.inf  # in the test split, read only after training
    data = Dataset("mine", "mtl", (Task("digit", 3), Task("age", 0, kind="regression",
                                                          options={"dense": False})),
                   {"train": split(16, np.ones(16, np.float32)),
                    "val": split(8, np.ones(8, np.float32)), "test": split(8, bad)})
    _refused(data, tmp_path, r"^test split, item 5: task 'age' has value inf; it takes finite "
                             r"values \(or NaN: no label\)$")


def test_the_batch_check_needs_no_device_sync_and_passes_missing_markers():
    from scalarize.training.batch_check import BatchCheck
    from scalarize.training.task_kinds import Classification, Regression, Segmentation

    check = BatchCheck("train", [("c", Classification(3)), ("r", Regression(dense=False)),
                                 ("s", Segmentation(2, ignore=255))])
    labels = {"c": torch.tensor([-1, 2]), "r": torch.tensor([float("nan"), 1e30]),
              "s": torch.tensor([[[255, 1]], [[-1, 0]]], dtype=torch.int16)}
    check(torch.zeros(2, 3, 1, 2, dtype=torch.uint8), labels, torch.tensor([0, 1]), 1)
    labels["s"] = torch.tensor([[[255, 2]], [[-1, 0]]], dtype=torch.int16)
    with pytest.raises(ScalarizeError, match=r"item 0 \(batch 1\): task 's' has label 2; it "
                                             r"takes classes 0\.\.1 per pixel"):
        check(torch.zeros(2, 3, 1, 2), labels, torch.tensor([0, 1]), 1)
    unsigned = {"c": torch.tensor([0, 2], dtype=torch.uint8)}
    BatchCheck("val", [("c", Classification(3))])(torch.zeros(2, 1), unsigned,
                                                 torch.tensor([0, 1]))


# -- the encoder contract and the first batch share one forward (issue 30's start cost) -------
class _Flat(torch.nn.Module):
    """A tabular encoder whose forward counts its calls; ``wide`` breaks the contract,
    ``raises`` fails every forward."""

    calls = 0

    def __init__(self, features, wide=False, raises=False):
        super().__init__()
        self.out_features, self.raises = 4, raises
        self.linear = torch.nn.Linear(features, 8 if wide else 4)

    def forward(self, x):
        type(self).calls += 1
        if self.raises:
            raise ValueError("no forward today")
        return self.linear(x)


def flat(input_shape, wide=False, raises=False):
    """``tests.training.test_batch_check:flat``: a :class:`_Flat` for ``input_shape`` (F,)."""
    return _Flat(input_shape[0], wide, raises)


def _tabular():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(24, 6)).astype(np.float32), np.arange(24) % 3
    return sz.from_arrays([sz.task("digit", classes=3)], train=(x[:16], {"digit": y[:16]}),
                          test=(x[16:], {"digit": y[16:]}), standardize=True)


def test_the_model_is_checked_in_one_forward_on_the_first_batch(monkeypatch):
    from scalarize.config import load_config
    from scalarize.training import Trainer

    cfg = load_config(None, ["model.spec=tests.training.test_batch_check:flat",
                             "train.device=cpu", "train.batch_size=8"])
    monkeypatch.setattr(_Flat, "calls", 0)
    trainer = Trainer(cfg, progress=False, data=_tabular())
    assert _Flat.calls == 1  # not a dummy batch's forward and then the first batch's
    trainer.train_step(torch.arange(8))
    assert _Flat.calls == 2


def test_a_contract_broken_on_the_first_batch_is_refused_as_on_a_dummy_one(tmp_path):
    out = tmp_path / "runs"
    with pytest.raises(ScalarizeError) as info:
        sz.train(_tabular(), "tests.training.test_batch_check:flat", config={
            "train": {"epochs": 1, "batch_size": 8, "device": "cpu"},
            "model": {"options": {"wide": True}}}, out=out, progress=False)
    assert str(info.value) == (
        "model tests.training.test_batch_check:flat: forward returns shape (2, 8) for a batch "
        "of 2 inputs; the contract is a tensor of (batch, out_features) = (2, 4)")
    assert not out.exists()


def test_a_forward_that_fails_on_any_batch_keeps_the_dummy_batch_refusal():
    from scalarize.config import load_config
    from scalarize.training import Trainer

    cfg = load_config(None, ["model.spec=tests.training.test_batch_check:flat",
                             "model.options={raises: true}", "train.device=cpu"])
    with pytest.raises(ScalarizeError) as info:  # not "forward on the first training batch"
        Trainer(cfg, progress=False, data=_tabular())
    assert str(info.value) == ("model tests.training.test_batch_check:flat: forward on a batch "
                               "of shape (2, 6) failed: ValueError: no forward today")


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_standardised_training_features_are_checked_through_their_statistics(tmp_path, bad):
    from scalarize.training.data import input_stats, stats_show_finite

    data = _tabular()
    train = data.splits["train"]
    mean, _ = input_stats(train, "tabular", standardize=True)
    assert stats_show_finite(train, "tabular", mean)  # the check need not sum them again
    train.x[11, 2] = bad
    mean, _ = input_stats(train, "tabular", standardize=True)
    assert not stats_show_finite(train, "tabular", mean)
    out = tmp_path / "runs"
    with pytest.raises(ScalarizeError) as info:  # the same line as without the statistics
        sz.train(data, "mlp-d1-w8", config=RECIPE, out=out, progress=False)
    assert str(info.value) == ("train split, item 11: its input holds NaN or infinite values; "
                               "give finite values (fill in missing features before)")
    assert not out.exists()
