"""A user's model factory named by an import target: ``model.spec=mymodels:build`` with
``model.options``, trained through the command line, refused in one line when it breaks the
contract, and swept over its options in a capacity study."""

from __future__ import annotations

import sys

import pytest
import torch

from scalarize.cli import main
from scalarize.errors import ScalarizeError
from scalarize.models import DenseHead, build_model, check_model, model_label

FACTORIES = '''
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self, channels, width, depth):
        super().__init__()
        layers, c = [], channels
        for _ in range(depth):
            layers += [nn.Conv2d(c, width, 3, padding=1), nn.ReLU()]
            c = width
        self.body = nn.Sequential(*layers)
        self.out_features = width

    def feature_map(self, x):
        return self.body(x)

    def forward(self, x):
        return self.body(x).mean(dim=(2, 3))


def build(image_shape, width=8, depth=1):
    return Net(image_shape[0], width, depth)


def needs_width(image_shape, width):
    return Net(image_shape[0], width, 1)


def no_out_features(image_shape):
    return nn.Sequential(nn.Conv2d(image_shape[0], 4, 3), nn.Flatten())


def wrong_shape(image_shape):
    net = Net(image_shape[0], 4, 1)
    net.forward = net.feature_map  # forgets to pool
    return net


def not_a_module(image_shape):
    return "an encoder"


def no_image_shape(width=8):
    return Net(3, width, 1)


def raises(image_shape):
    raise ValueError("width must be even\\nmore details")


def reads_values(image_shape):
    net = Net(image_shape[0], 8, 1)
    if float(net.body[0].weight.detach().abs().sum()) < 0:  # needs real values: fails on meta
        raise AssertionError
    return net


class Branchy(Net):
    def forward(self, x):  # data-dependent control flow: fails on meta tensors
        return super().forward(x if x.sum() >= 0 else -x)


def branchy(image_shape):
    return Branchy(image_shape[0], 8, 1)
'''

TINY = ["train.epochs=1", "train.batch_size=32", "train.device=cpu", "--quiet",
        "benchmark.options={n_train: 64, n_val: 16, n_test: 16, image_size: 16}"]


@pytest.fixture()
def mymodels(tmp_path, monkeypatch):
    """``mymodels`` in a folder on sys.path, forgotten afterwards."""
    folder = tmp_path / "code"
    folder.mkdir()
    (folder / "mymodels.py").write_text(FACTORIES)
    monkeypatch.syspath_prepend(str(folder))
    yield folder
    sys.modules.pop("mymodels", None)


def test_options_reach_the_factory_and_heads_are_added(mymodels):
    model = build_model("mymodels:build", (3, 16, 16), {"a": 4, "seg": DenseHead(2)},
                        {"width": 12, "depth": 2})
    assert model.encoder.out_features == 12 and len(model.encoder.body) == 4
    features = model(torch.zeros(2, 3, 16, 16))
    assert model.heads["seg"](features).shape == (2, 2, 16, 16)
    assert model.heads["a"](features).shape == (2, 4)
    assert check_model("mymodels:build", (3, 16, 16), {"a": 4}, options={"width": 12}) == \
        sum(p.numel() for p in build_model("mymodels:build", (3, 16, 16), {"a": 4},
                                           {"width": 12}).parameters())


@pytest.mark.parametrize("target", ["mymodels:reads_values", "mymodels:branchy"])
def test_a_factory_that_cannot_run_on_meta_is_checked_on_the_cpu(mymodels, target):
    assert check_model(target, (3, 16, 16), {"a": 2}) > 0


@pytest.mark.parametrize("target,options,expected", [
    ("mymodels:build", {"height": 3}, "takes no option 'height'; it takes: width, depth"),
    ("mymodels:needs_width", {}, "needs option 'width'; give it in model.options"),
    ("mymodels:no_out_features", {}, "the encoder has no out_features"),
    ("mymodels:wrong_shape", {}, r"forward returns shape \(2, 4, 16, 16\) for a batch of 2 "
                                 r"images; the contract is a tensor of \(batch, out_features\)"),
    ("mymodels:not_a_module", {}, "returned a str, not a torch.nn.Module encoder"),
    ("mymodels:no_image_shape", {}, "must take image_shape=\\(C, H, W\\)"),
    ("mymodels:raises", {}, "its factory raised ValueError: width must be even$"),
    ("mymodels:biuld", {}, "module 'mymodels' has no attribute 'biuld'"),
    ("vit-d1-w16-p8", {"width": 3}, "takes no option 'width'"),
])
def test_contract_violations_are_one_line(mymodels, target, options, expected):
    for check in (lambda: check_model(target, (3, 16, 16), {"a": 2}, options=options),
                  lambda: build_model(target, (3, 16, 16), {"a": 2}, options)):
        with pytest.raises(ScalarizeError, match=expected) as info:
            check()
        assert "\n" not in str(info.value)


def test_labels_are_readable_safe_and_distinct():
    assert model_label("mymodels:build", {"width": 64, "depth": 4}) == "build-depth4-width64"
    assert model_label("vit-d3-w48-p4") == "vit-d3-w48-p4"
    odd = [model_label("a.b:build", {"act": v}) for v in ("x/y", "x:y", "x_y")]
    assert len(set(odd)) == 3
    assert all(":" not in label and "/" not in label for label in odd)


def _config(tmp_path, text: str = "benchmark: {name: shapes, tasks: [colour, count]}\n"):
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return str(path)


def test_train_one_epoch_through_the_command_line(mymodels, tmp_path, capsys):
    out = tmp_path / "runs"
    argv = ["train", _config(tmp_path), "--out", str(out), "model.spec=mymodels:build",
            "model.options={width: 16}", *TINY]
    assert main(argv) == 0
    (run,) = out.iterdir()
    assert run.name == "shapes-mtl-build-width16-uniform-static-s0"
    assert (run / "summary.json").is_file()
    assert "width: 16" in (run / "config.yaml").read_text()
    capsys.readouterr()
    assert main([*argv[:-len(TINY)], *TINY[:-1], "model.options={height: 16}"]) == 2
    assert "takes no option 'height'" in capsys.readouterr().err


def test_the_command_line_imports_from_the_working_directory(mymodels, monkeypatch, capsys):
    monkeypatch.chdir(mymodels)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(mymodels))])
    assert main(["model", "info", "mymodels:build", "--image-size", "16"]) == 0
    assert "mymodels:build:" in capsys.readouterr().out


SWEEP = """
benchmark:
  name: shapes
  tasks: [colour, count]
model: {spec: "mymodels:build", options: {depth: 1}}
sweep:
  capacities: {options: {width: [4, 8]}}
  weights: {include_uniform: true}
"""


def test_a_sweep_over_options_trains_and_analyses_per_option(mymodels, tmp_path, capsys):
    from scalarize.studies.sweep import load_sweep_config, plan_sweep

    config = load_sweep_config(_config(tmp_path, SWEEP))
    plan = plan_sweep(config, ("colour", "count"))
    assert {p.capacity for p, _ in plan} == {"build-width4", "build-width8"}
    assert {p.axes["width"] for p, _ in plan} == {4, 8}
    assert {c.model.options["width"] for _, c in plan} == {4, 8}
    assert all(c.model.options["depth"] == 1 for _, c in plan)  # merged over model.options
    out = tmp_path / "sweep"
    assert main(["sweep", _config(tmp_path, SWEEP), "--out", str(out), *TINY,
                 "probes={conflicts: {every: 1}}"]) == 0
    capsys.readouterr()
    assert main(["analyze", "capacity", str(out), "--format", "json"]) == 0
    printed = capsys.readouterr().out
    assert "build-width4" in printed and "build-width8" in printed
    assert '"axis_width"' in printed
    # the conflict analysis groups by the same labels (every run has spec mymodels:build)
    from scalarize.analysis.conflicts import conflict_epochs

    assert set(conflict_epochs(out).capacity) == {"build-width4", "build-width8"}


def test_option_values_listed_twice_are_refused(mymodels, tmp_path):
    from scalarize.studies.sweep import load_sweep_config

    text = SWEEP.replace("[4, 8]", "[4, 4]")
    with pytest.raises(ScalarizeError, match=r"options\.width lists a value more than once"):
        load_sweep_config(_config(tmp_path, text))
