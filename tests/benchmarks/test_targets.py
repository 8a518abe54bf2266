"""Target contracts: each kind's targets checked and stored once, for the loaders and the kinds."""

import math
import typing

import numpy as np
import pytest
import torch

import scalarize.training.dense_kinds  # noqa: F401  (registers depth_map, normal_map)
from scalarize.benchmarks import image_files, npz
from scalarize.benchmarks.targets import (
    MISSING_LABEL,
    TARGETS,
    AnyTargets,
    ArrayTarget,
    CellError,
    TargetError,
    array_kinds,
    compact,
    fit_array,
)
from scalarize.training.task_kinds import MISSING_CLASS, TASK_KINDS, FunctionKind


def _fit(kind, y, raw=None, hw=(2, 3), declared=True):
    return fit_array(ArrayTarget("t", np.asarray(y), hw, declared), kind, raw)


def _refused(kind, y, raw=None, hw=(2, 3), declared=True):
    with pytest.raises(TargetError) as caught:
        _fit(kind, y, raw, hw, declared)
    return str(caught.value)


# --- the registry: every kind has a contract, and the loaders list theirs from it -------------

def test_every_registered_task_kind_has_its_target_contract():
    built_in = [n for n in TASK_KINDS.names() if n not in TASK_KINDS.session()]
    assert sorted(TARGETS) == built_in
    for name in built_in:
        contract = TASK_KINDS.get(name).targets
        assert contract is TARGETS[name], name
        assert contract.kind == name


def test_a_kind_without_a_contract_takes_any_target():
    kind = FunctionKind(lambda out, y: (out[:, 0] - y).abs())
    assert isinstance(kind.targets, AnyTargets)
    assert kind.expect(torch.zeros(2, 1), torch.zeros(5, 7)) is None


def test_the_loaders_list_the_kinds_whose_contracts_read_their_files():
    assert array_kinds() == npz.KINDS == (
        "classification", "segmentation", "depth", "regression", "normals")
    for kind in typing.get_args(image_files.Kind):
        assert TARGETS[kind].column_dtype is not None, kind
    assert {k for k, c in TARGETS.items() if c.column_dtype is not None} == \
        set(typing.get_args(image_files.Kind))


def test_one_missing_class_label():
    assert MISSING_CLASS == MISSING_LABEL == -1


def test_compact_takes_the_smallest_integer_dtype_holding_the_values_and_extra():
    assert compact(np.array([0, 200])).dtype == np.uint8
    assert compact(np.array([-1, 200])).dtype == np.int16
    assert compact(np.array([0, 3]), extra=70000).dtype == np.int32
    assert compact(np.array([0, 2**40])).dtype == np.int64
    assert compact(np.array([0, 3]), extra=0.5).dtype == np.uint8  # a float extra is no bound


# --- arrays (the npz loader) --------------------------------------------------------------------

def test_options_are_checked_against_what_the_kind_takes():
    assert _refused("classification", [0, 1], {"scale": 2}) == (
        "'options_t' has option 'scale', which a classification task does not take "
        "(it takes: classes)")
    assert _refused("segmentation", np.zeros((2, 2, 3), int), {"classes": 2000}).startswith(
        "'options_t': classes: Input should be less than or equal to 1024")


def test_per_pixel_targets_need_the_images_size():
    assert _refused("depth", np.zeros((2, 4, 3))) == (
        "'y_t' has maps of 4×3 but the images in 'x' are 2×3; per-pixel targets need one value "
        "per pixel")


def test_classification_contract():
    task, y = _fit("classification", np.array([0, 4, -1], np.int8))
    assert (task.num_classes, task.kind, y.dtype, y.tolist()) == (5, "classification",
                                                                  np.int64, [0, 4, -1])
    assert _fit("classification", [0, 1], {"classes": 7})[0].num_classes == 7
    assert _fit("classification", [-1, -1])[0].num_classes == 1
    assert _refused("classification", np.zeros((2, 2), int)) == (
        "'kind_t' declares classification but 'y_t' has shape (2, 2); classification needs "
        "one integer label per image (shape N)")
    assert _refused("classification", np.zeros((2, 2), int), declared=False).startswith(
        "'y_t' has shape (2, 2)")
    assert _refused("classification", [0.0, 1.0]) == "'y_t' has dtype float64; labels must " \
        "be integers"
    assert _refused("classification", [0, -2]) == (
        "'y_t' holds label -2; classes must be 0..K-1 (-1 marks a missing label)")
    assert _refused("classification", [0, 2**31]).endswith("with K below 2,147,483,648")
    assert _refused("classification", [0, 3], {"classes": 3}) == (
        "'y_t' holds label 3 but 'options_t' gives 3 classes")


def test_segmentation_contract():
    maps = np.array([[[0, 1, 2], [255, -1, 0]]] * 2)[:, None]  # N×1×H×W
    task, y = _fit("segmentation", maps, {"ignore": 255})
    assert (task.num_classes, dict(task.options), y.shape, y.dtype) == (
        3, {"ignore": 255}, (2, 2, 3), np.int16)
    assert _fit("segmentation", np.ones((2, 2, 3), np.int64))[1].dtype == np.uint8
    assert _refused("segmentation", np.zeros((2, 2), int)).endswith(
        "segmentation needs one class map per image (N×H×W)")
    assert _refused("segmentation", np.zeros((2, 2, 3))) == (
        "'y_t' has dtype float64; class maps must be integers")
    assert _refused("segmentation", np.full((2, 2, 3), -3)).startswith(
        "'y_t' holds class -3; classes must be 0..K-1")
    assert _refused("segmentation", np.full((2, 2, 3), 4), {"classes": 4}) == (
        "'y_t' holds class 4 but 'options_t' gives 4 classes")
    assert _refused("segmentation", np.full((2, 2, 3), 1024)) == (
        "'y_t' has 1025 classes; segmentation takes at most 1024")


def test_depth_contract():
    task, y = _fit("depth", np.full((2, 1, 2, 3), 300), {"scale": 0.01, "invalid": 0})
    assert (task.kind, dict(task.options), y.dtype) == ("depth", {"scale": 0.01, "invalid": 0},
                                                        np.int16)
    assert _fit("depth", np.full((2, 2, 3), 1.5))[1].dtype == np.float32
    assert _refused("depth", np.zeros((2, 3, 2, 3))).endswith(
        "depth needs one depth map per image (N×H×W or N×1×H×W)")
    with np.errstate(over="ignore"):  # 1e39 overflows float32, as the message says
        too_big = _refused("depth", np.array([[[1e39] * 3] * 2] * 2))
    assert too_big == (
        "'y_t' holds infinite values (in float32); mark a missing value with NaN")


def test_regression_contract():
    per_image, y = _fit("regression", np.array([0.5, math.nan]))
    assert dict(per_image.options) == {"channels": 1, "dense": False}
    assert np.isnan(y[1])
    vectors = _fit("regression", np.zeros((2, 4)), {"tolerance": 0.2})[0]
    assert dict(vectors.options) == {"tolerance": 0.2, "channels": 4, "dense": False}
    pixels = _fit("regression", np.zeros((2, 5, 2, 3), np.uint8))
    assert dict(pixels[0].options) == {"channels": 5, "dense": True}
    assert pixels[1].dtype == np.uint8
    assert _refused("regression", np.zeros((2, 1, 1, 2, 3))).endswith(
        "regression needs N, N×K (per image), N×H×W or N×C×H×W (per pixel) values")
    assert _refused("regression", np.zeros((2, 0))).endswith(
        "regression needs at least one value per image")


def test_normals_contract():
    task, y = _fit("normals", np.stack([np.full((3, 2, 3), v) for v in (-1.0, 1.0)]))
    assert (task.kind, y.dtype, int(y[0].max()), int(y[1].min())) == ("normals", np.uint8,
                                                                      0, 255)
    assert _fit("normals", np.zeros((2, 3, 2, 3), np.uint8), {"invalid": 0})[0].options == \
        {"invalid": 0}
    assert _refused("normals", np.zeros((2, 1, 2, 3))).endswith(
        "normals needs N×3×H×W normal maps")
    assert _refused("normals", np.zeros((2, 3, 2, 3), np.int16)).startswith(
        "'y_t' has dtype int16; normals are uint8")
    assert _refused("normals", np.full((2, 3, 2, 3), math.nan)).startswith(
        "'y_t' holds NaN or infinite values")
    assert _refused("normals", np.full((2, 3, 2, 3), 2.0)) == (
        "float 'y_t' spans [2, 2]; normals are unit vectors, in [-1, 1]")


def test_kinds_read_by_their_own_benchmarks_refuse_array_files():
    for kind in ("depth_map", "normal_map"):
        assert kind not in array_kinds()
        with pytest.raises(TargetError, match=f"array files cannot hold {kind} targets"):
            TARGETS[kind].fit(ArrayTarget("t", np.zeros((2, 2, 3)), (2, 3), True), {})


# --- table cells (the image_files loader) -------------------------------------------------------

def _cell_refused(kind, text):
    with pytest.raises(CellError) as caught:
        TARGETS[kind].cell(text, "age")
    return caught.value.shown, caught.value.advice


def test_classification_cells():
    contract = TARGETS["classification"]
    assert (contract.column_dtype, contract.column_missing) == (np.int64, -1)
    assert contract.cell("3", "age") == 3 and contract.cell("-1", "age") == -1
    assert _cell_refused("classification", "2.5") == (
        "'2.5'", "declare benchmark.options.kinds={age: regression} for numbers")
    assert _cell_refused("classification", "-2") == (
        -2, "class labels are 0, 1, 2, ... (empty or -1: no label)")
    task = contract.task("age", [np.array([0, 4, -1]), np.array([2])])
    assert (task.num_classes, task.kind) == (5, "classification")
    assert contract.task("age", [np.array([], np.int64)]).num_classes == 1


def test_regression_cells():
    contract = TARGETS["regression"]
    assert contract.column_dtype == np.float32 and math.isnan(contract.column_missing)
    assert contract.cell("0.25", "age") == 0.25 and math.isnan(contract.cell("nan", "age"))
    assert _cell_refused("regression", "abc") == ("'abc'", "give a number")
    assert _cell_refused("regression", "-inf") == (
        "'-inf'", "give a finite number (empty or nan: no label)")
    task = contract.task("age", [np.array([0.5])])
    assert (task.num_classes, task.kind, dict(task.options)) == (0, "regression",
                                                                 {"dense": False})


# --- batches (the trainer's first-batch check) --------------------------------------------------

def test_class_batches():
    logits = torch.zeros(3, 4)
    contract = TARGETS["classification"]
    assert contract.expect(logits, torch.tensor([0, 3, -1]), 4) is None
    assert contract.expect(logits, torch.tensor([0, 4, -1]), 4) == (
        "shape (3,) of integer class indices 0..3 (or -1: no label), found 4")
    assert contract.expect(logits, torch.tensor([0.0, 1.0, 2.0]), 4).startswith("shape (3,)")
    maps = torch.zeros(2, 3, 4, 5)
    segmentation = TARGETS["segmentation"]
    target = torch.full((2, 4, 5), 255, dtype=torch.uint8)
    assert segmentation.expect(maps, target, 3, 255) is None
    assert segmentation.expect(maps, target, 3) == (
        "shape (2, 4, 5) of integer classes 0..2 (or -1: no label), found 255")
    assert segmentation.expect(maps, target[:, :3], 3, 255) == (
        "shape (2, 4, 5) of integer classes 0..2 (or -1: no label, 255: ignored)")


def test_value_batches():
    for kind in ("regression", "depth", "normals"):
        assert TARGETS[kind].expect(torch.zeros(2, 1), torch.zeros(2)) is None
        assert TARGETS[kind].expect(torch.zeros(2, 3, 4, 5), torch.zeros(2, 3, 4, 5)) is None
    assert TARGETS["regression"].expect(torch.zeros(2, 1, 4, 5), torch.zeros(2, 4, 4)) == (
        "shape (2, 4, 5) or (2, 1, 4, 5)")
    assert TARGETS["depth_map"].expect(torch.zeros(2, 1, 4, 5), torch.zeros(2, 4, 5)) is None
    assert TARGETS["normal_map"].expect(torch.zeros(2, 3, 4, 5), torch.zeros(2, 3, 4, 5,
                                                                            dtype=torch.uint8)
                                        ) == "shape (2, 3, 4, 5) of floats (0 = missing)"
