import sys

import numpy as np
import pytest

from scalarize.errors import ScalarizeError
from scalarize.trained import FORMATS, export_model, load_run, run_exported
from scalarize.trained.load import run_data
from scalarize.trained.predict import split_inputs
from tests.trained.conftest import train

USER_MODEL = '''
import torch
from torch import nn


class Small(nn.Module):
    def __init__(self, channels, width):
        super().__init__()
        self.out_features = width
        self.body = nn.Sequential(nn.Conv2d(channels, width, 3, padding=1), nn.BatchNorm2d(width),
                                  nn.ReLU())

    def feature_map(self, x):
        return self.body(x)

    def forward(self, x):
        return self.feature_map(x).mean(dim=(2, 3))


def build(image_shape, width=8):
    return Small(image_shape[0], width)
'''


def _check_round_trip(model, x, path, fmt):
    expected = model.outputs(x)
    export_model(model, path, fmt)
    got = run_exported(path, fmt, x)
    assert len(got) == len(model.head_names)
    for name, out in zip(model.head_names, got, strict=True):
        np.testing.assert_allclose(out, expected[name].numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("fmt", FORMATS)
def test_an_exported_builtin_model_gives_the_runs_outputs_on_test_inputs(tmp_path, vit_run,
                                                                         fmt):
    model = load_run(vit_run)
    x, _ = split_inputs(run_data(model.source), "test")
    _check_round_trip(model, x, tmp_path / f"model.{fmt}", fmt)
    # the batch size is free: another one than the export's example
    assert run_exported(tmp_path / f"model.{fmt}", fmt, x[:5])[0].shape[0] == 5


@pytest.fixture(scope="module")
def user_run(tmp_path_factory):
    where = tmp_path_factory.mktemp("user")
    (where / "p30_user_models.py").write_text(USER_MODEL)
    sys.path.insert(0, str(where))
    try:
        yield train(where / "runs", "model.spec=p30_user_models:build", "model.options={width: 6}",
                    "benchmark.tasks=[shape, size]")
    finally:
        sys.path.remove(str(where))


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_users_import_target_model_round_trips(tmp_path, user_run, fmt):
    model = load_run(user_run)
    assert model.config.model.spec == "p30_user_models:build"
    x, _ = split_inputs(run_data(model.source), "test")
    _check_round_trip(model, x, tmp_path / f"user.{fmt}", fmt)


def test_a_users_model_that_is_not_importable_is_one_line(user_run, monkeypatch):
    monkeypatch.delitem(sys.modules, "p30_user_models")
    monkeypatch.setattr(sys, "path", [p for p in sys.path if str(user_run.parent.parent) != p])
    with pytest.raises(ScalarizeError, match="no module named 'p30_user_models'") as caught:
        load_run(user_run)
    assert "\n" not in str(caught.value)


def test_one_domains_path_exports_alone(tmp_path, mdl_run):
    model = load_run(mdl_run)
    domain = model.domains[1]
    x, _ = split_inputs(run_data(model.source), "test")
    one = model.restricted([domain])
    _check_round_trip(one, x, tmp_path / "one.onnx", "onnx")
    np.testing.assert_allclose(run_exported(tmp_path / "one.onnx", "onnx", x)[0],
                               model.outputs(x)[domain].numpy(), rtol=1e-4, atol=1e-5)


def test_an_existing_file_is_kept_unless_overwrite(tmp_path, vit_run):
    model = load_run(vit_run)
    path = tmp_path / "model.pt"
    path.write_text("mine")
    with pytest.raises(ScalarizeError, match="already exists"):
        export_model(model, path, "torchscript")
    assert path.read_text() == "mine"
    export_model(model, path, "torchscript", overwrite=True)
    assert run_exported(path, "torchscript", np.zeros((1, 3, 16, 16), np.uint8))
    with pytest.raises(ScalarizeError, match="give one of"):
        export_model(model, tmp_path / "m.x", "keras")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_an_mtan_with_features_per_task_round_trips(tmp_path_factory, fmt):
    """A model with task-specific paths (MTAN: each head reads its own attended features)
    exports and predicts like any other."""
    folder = train(tmp_path_factory.mktemp("mtan"), "model.spec=mtan-resnet8-x0.25")
    model = load_run(folder)
    assert model.model.per_task
    x, _ = split_inputs(run_data(model.source), "test")
    _check_round_trip(model, x, tmp_path_factory.mktemp("out") / f"model.{fmt}", fmt)
