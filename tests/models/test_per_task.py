"""The per-task contract (models/per_task.py) and the built-in families with task-specific paths:
MTAN, Cross-stitch, MMoE, PLE/CGC; a user's own two-tower model through an import target."""

from __future__ import annotations

import pytest
import torch

from scalarize.errors import ScalarizeError
from scalarize.models import DenseHead, build_model, check_model, describe
from scalarize.models.per_task import reached_by_several

SHAPE = (3, 16, 16)
HEADS = {"a": 3, "b": 2, "c": 4}
FAMILIES = ["mtan-resnet8-x0.25", "cross-stitch-resnet8-x0.25", "mmoe-e3-w16", "ple-l2-e2-w16",
            "cgc-e2-w8-d1", "ple-l3-e1-w8"]


def _ids(params) -> set[int]:
    return {id(p) for p in params}


@pytest.mark.parametrize("spec", FAMILIES)
def test_features_per_task_and_the_shared_parameters_are_those_several_tasks_reach(spec):
    model = build_model(spec, SHAPE, HEADS)
    features = model(torch.randn(4, *SHAPE))
    out = model.encoder.out_features
    assert model.per_task and {k: tuple(v.shape) for k, v in features.items()} == \
        dict.fromkeys(HEADS, (4, out))
    shared = model.shared_parameters()
    # what a family names (MTAN, Cross-stitch, MMoE) is what its graph says; PLE uses the graph
    assert _ids(shared) == _ids(reached_by_several(model.encoder, tuple(HEADS),
                                                   torch.zeros(2, *SHAPE)))
    specific = _ids(model.encoder.parameters()) - _ids(shared)
    assert shared and specific  # every family has both
    assert check_model(spec, SHAPE, HEADS) == sum(p.numel() for p in model.parameters())
    assert describe(model, SHAPE)["flops"] > 0


@pytest.mark.parametrize("small,large", [
    ("mtan-resnet8-x0.25", "mtan-resnet8-x0.5"), ("mtan-resnet8", "mtan-resnet14"),
    ("cross-stitch-resnet8-x0.25", "cross-stitch-resnet8-x0.5"),
    ("mmoe-e2-w16", "mmoe-e4-w16"), ("mmoe-e2-w16", "mmoe-e2-w32"),
    ("ple-l1-e1-w16", "ple-l2-e1-w16"), ("ple-l2-e1-w16", "ple-l2-e2-w16"),
    ("cgc-e1-w8", "cgc-e1-w8-d3")])
def test_capacity_knobs_grow_the_model(small, large):
    assert check_model(small, SHAPE, HEADS) < check_model(large, SHAPE, HEADS)


def test_cgc_is_ple_with_one_level():
    assert check_model("cgc-e2-w8", SHAPE, HEADS) == check_model("ple-l1-e2-w8", SHAPE, HEADS)


def test_mtan_and_cross_stitch_feed_dense_heads_with_their_own_maps():
    for spec in ("mtan-resnet8-x0.25", "cross-stitch-resnet8-x0.25"):
        model = build_model(spec, SHAPE, {"a": 3, "seg": DenseHead(5)})
        features = model(torch.randn(2, *SHAPE))
        assert features["seg"].ndim == 4 and not torch.equal(features["a"], features["seg"])
        assert model.heads["seg"](features["seg"]).shape == (2, 5, 16, 16)
        assert model.heads["a"](features["a"]).shape == (2, 3)


def test_cross_stitch_units_start_as_the_paper_says():
    model = build_model("cross-stitch-resnet8-x0.25", SHAPE, HEADS)
    unit = model.encoder.units[0].detach()
    assert torch.allclose(unit.diagonal(), torch.full((3,), 0.9))
    assert torch.allclose(unit.sum(dim=1), torch.ones(3))


@pytest.mark.parametrize("spec,message", [
    ("mtan-resnet9", "unsupported ResNet depth 9"),
    ("mtan-d3", r"cannot read mtan spec 'mtan-d3'; write mtan-resnet<depth>\[-x<width>\]"),
    ("cross-stitch-resnet8-y2", "cannot read cross-stitch spec"),
    ("mmoe-e4", r"write mmoe-e<experts>-w<width>\[-d<depth>\], e.g. mmoe-e4-w64"),
    ("ple-e2-w8", r"write ple-l<levels>-e<experts>-w<width>"),
    ("mmoe-e0-w8", "experts must be at least 1"),
])
def test_bad_specs_are_one_line(spec, message):
    with pytest.raises(ScalarizeError, match=message) as info:
        check_model(spec, SHAPE, HEADS)
    assert "\n" not in str(info.value)


def test_experts_have_no_feature_map_for_dense_heads():
    with pytest.raises(ScalarizeError, match="has no feature map, so it cannot feed dense"):
        build_model("mmoe-e2-w8", SHAPE, {"a": 2, "seg": DenseHead(3)})


def test_a_users_two_tower_model_names_its_tasks_and_shared_parameters():
    model = build_model("tests.models.two_tower:build", SHAPE, {"a": 2, "b": 3},
                        {"width": 6})
    assert model.encoder.tasks == ("a", "b") and model.encoder.out_features == 6
    assert _ids(model.shared_parameters()) == _ids(model.encoder.stem.parameters())
    unsaid = build_model("tests.models.two_tower:unsaid", SHAPE, {"a": 2, "b": 3})
    assert _ids(unsaid.shared_parameters()) == _ids(unsaid.encoder.stem.parameters())


@pytest.mark.parametrize("target,message", [
    ("one_tensor", r"names tasks \['a', 'b'\], so its forward must return a dict with one "
                   "tensor per task; it returns a Tensor"),
    ("missing_task", r"makes features for tasks \['a'\] but the heads are \['a', 'b'\]"),
])
def test_a_per_task_model_breaking_the_contract_is_refused_in_one_line(target, message):
    spec = f"tests.models.two_tower:{target}"
    for check in (lambda: check_model(spec, SHAPE, {"a": 2, "b": 3}),
                  lambda: build_model(spec, SHAPE, {"a": 2, "b": 3})):
        with pytest.raises(ScalarizeError, match=message) as info:
            check()
        assert "\n" not in str(info.value)


def test_hard_sharing_keeps_one_tensor_and_all_encoder_parameters():
    model = build_model("resnet8-x0.25", SHAPE, HEADS)
    assert not model.per_task and isinstance(model(torch.zeros(2, *SHAPE)), torch.Tensor)
    assert _ids(model.shared_parameters()) == _ids(model.encoder.parameters())


@pytest.mark.parametrize("spec", ["ple-l2-e1-w8", "mmoe-e2-w8", "mtan-resnet8-x0.25",
                                  "cross-stitch-resnet8-x0.25"])
def test_with_one_head_every_parameter_is_shared(spec):
    """One head serving every objective (MDL's shared head): nothing is one task's own, also
    for the families that name their shared parameters themselves."""
    model = build_model(spec, SHAPE, {"shared": 3})
    assert _ids(model.shared_parameters()) == _ids(model.encoder.parameters())
