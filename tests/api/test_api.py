"""The Python API on Python objects: tasks of every kind and of the user's own (loss, metric,
head), arrays and datasets, a model factory, and train / search / sweep through the same run
store; bad input is one clear line."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml
from torch import nn

import scalarize.api as sz
from scalarize.errors import ScalarizeError
from scalarize.training import Trainer

RECIPE = {"train": {"epochs": 1, "batch_size": 16, "device": "cpu"}}


class Net(nn.Module):
    def __init__(self, image_shape, width=8):
        super().__init__()
        self.out_features, self.conv = width, nn.Conv2d(image_shape[0], width, 3, padding=1)

    def feature_map(self, x):
        return self.conv(x).relu()

    def forward(self, x):
        return self.feature_map(x).mean(dim=(2, 3))


def build(image_shape, width=8):
    """A factory importable as tests.api.test_api:build."""
    return Net(image_shape, width)


def _arrays(n=40, size=8, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n, 3, size, size), dtype=np.uint8)
    return x, {"digit": rng.integers(0, 3, n), "level": rng.random(n).astype(np.float32),
               "mask": (x[:, 0] > 127).astype(np.uint8)}


def _data(tasks, name="apidata"):
    x, labels = _arrays()
    cut = 32
    return sz.from_arrays(tasks, train=(x[:cut], {k: v[:cut] for k, v in labels.items()}),
                          test=(x[cut:], {k: v[cut:] for k, v in labels.items()}), name=name)


def _l1(output, target):
    return (output[:, 0] - target).abs()


def test_a_task_of_ones_own_with_its_own_heads_trains(tmp_path):
    def dense_head(features):  # the feature map is 8×8 here, the image's own size
        return nn.Conv2d(features, 2, 1)

    def seg_loss(output, target):
        return nn.functional.cross_entropy(output, target.long(), reduction="none").mean((1, 2))

    tasks = [sz.task("level", loss=_l1, head=lambda d: nn.Sequential(nn.Linear(d, 4), nn.ReLU(),
                                                                     nn.Linear(4, 1))),
             sz.task("mask", loss=seg_loss, dense=True, head=dense_head)]
    data = _data(tasks)
    config = sz.runs._validate(sz.runs.RunConfig, sz.runs._tree(data, build, RECIPE), "config")
    trainer = Trainer(config, data=data, progress=False)
    assert isinstance(trainer.model.heads["level"][1], nn.Sequential)  # pooled, then the user's
    assert isinstance(trainer.model.heads["mask"], nn.Conv2d)
    summary = sz.train(data, build, config=RECIPE, out=tmp_path, progress=False)
    assert set(summary.test.metrics["level"]) == {"loss", "score"}
    assert summary.test.primary["level"].model_dump() == {"metric": "loss",
                                                          "higher_is_better": False}


def test_an_importable_factory_is_stored_as_its_import_target(tmp_path):
    data = _data([sz.task("digit", classes=3)])
    sz.train(data, sz.model(build, width=4), config=RECIPE, out=tmp_path, progress=False)
    run = next(tmp_path.iterdir())
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["model"] == {"spec": "tests.api.test_api:build", "options": {"width": 4},
                              "shared_head": False}
    assert run.name == "apidata-mtl-build-width4-onehot-digit-static-s0"


def test_a_factory_defined_in_a_script_is_registered_for_the_process(tmp_path):
    namespace: dict = {"__name__": "__main__", "nn": nn, "Net": Net}
    exec("def make_net(image_shape, width=8):\n    return Net(image_shape, width)", namespace)
    data = _data([sz.task("digit", classes=3)])
    summary = sz.train(data, sz.model(namespace["make_net"], width=4), config=RECIPE,
                       out=tmp_path, progress=False)
    assert summary.run == "apidata-mtl-usermakenet-width4-onehot-digit-static-s0"


def test_the_multi_domain_view_from_arrays_per_domain(tmp_path):
    (xa, la), (xb, lb) = _arrays(30, seed=1), _arrays(12, seed=2)
    data = sz.from_arrays([sz.task("digit", classes=3)],
                          train={"big": (xa, la["digit"]), "small": (xb, lb["digit"])},
                          test={"big": (xa[:6], la["digit"][:6]),
                                "small": (xb[:6], lb["digit"][:6])}, name="domains")
    assert data.objectives == ("big", "small")
    assert len(data.splits["val"]) == 3 + 1  # 10% of each domain, rounded
    summary = sz.train(data, build, config={**RECIPE, "scalarization": {"weights": [0.5, 0.5]}},
                       out=tmp_path, progress=False)
    assert summary.objectives == ["big", "small"]


@pytest.mark.parametrize("strategy", ["pbt", "pb2", "mopbt"])
def test_search_then_replay_from_python(tmp_path, strategy):
    data = _data([sz.task("digit", classes=3), sz.task("level", kind="regression", dense=False)])
    config = {"train": {"epochs": 2, "batch_size": 16, "device": "cpu"}}
    found = sz.search(data, build, {"strategy": strategy, "population": 2, "interval": 1},
                      config=config, out=tmp_path / "s", progress=False)
    assert found.objectives == ["digit", "level"]
    replayed = sz.replay(tmp_path / "s", progress=False)
    assert replayed.objectives == ["digit", "level"]


def test_streamed_datasets_train_like_arrays(tmp_path):
    x, labels = _arrays()

    class Items(torch.utils.data.Dataset):
        def __init__(self, rows):
            self.rows = rows

        def __len__(self):
            return len(self.rows)

        def __getitem__(self, i):
            r = self.rows[i]
            return x[r], {"digit": labels["digit"][r], "level": labels["level"][r]}

    tasks = [sz.task("digit", classes=3), sz.task("level", kind="regression", dense=False)]
    streamed = sz.from_datasets(tasks, train=Items(range(32)), test=Items(range(32, 40)),
                                name="streamed")
    memory = sz.from_arrays(tasks, train=(x[:32], {k: labels[k][:32] for k in ("digit", "level")}),
                            test=(x[32:], {k: labels[k][32:] for k in ("digit", "level")}),
                            name="inmemory")
    config = {"train": {**RECIPE["train"], "workers": 0}}
    a = sz.train(streamed, build, config=config, out=tmp_path / "a", progress=False)
    b = sz.train(memory, build, config=config, out=tmp_path / "b", progress=False)
    assert a.test.acc == pytest.approx(b.test.acc)
    assert a.test.loss == pytest.approx(b.test.loss, rel=1e-5)


@pytest.mark.parametrize(("call", "message"), [
    (lambda: sz.task("t", kind="classifcation"), r"unknown task kind 'classifcation'"),
    (lambda: sz.task("t", classes=2, metric=_l1), r"metric=, higher_is_better= and head= go "
                                                  "with loss="),
    (lambda: sz.task("t", loss=_l1, classes=3), r"has its own loss; give outputs="),
    (lambda: sz.task("t", loss=_l1, metric=_l1), r"task 't': metric= needs "
                                                 r"higher_is_better=True or False"),
    (lambda: sz.task("t", loss=_l1, outputs=0), r"outputs=0; give at least 1"),
    (lambda: sz.from_arrays([sz.task("digit", classes=3)], train=(np.zeros((4, 3, 8, 8)), {}),
                            test=None), r"in-memory images must be uint8"),
    (lambda: sz.from_arrays([sz.task("digit", classes=2)],
                            train=(np.zeros((4, 3, 8, 8), np.uint8), np.array([0, 1, 2, 0])),
                            test=(np.zeros((4, 3, 8, 8), np.uint8), np.zeros(4, int))),
     r"train: task 'digit' has 2 classes but a label 2"),
    (lambda: sz.from_arrays([sz.task("digit", classes=2)],
                            train=(np.zeros((4, 3, 8, 8), np.uint8), np.zeros(3, int)),
                            test=(np.zeros((4, 3, 8, 8), np.uint8), np.zeros(4, int))),
     r"labels of shape \(3,\) for 4 images"),
    (lambda: sz.from_arrays([sz.task("digit", classes=2)],
                            train=(np.zeros((4, 3, 8, 8), np.uint8), {"other": np.zeros(4)}),
                            test=None), r"no labels for task\(s\) \['digit'\]"),
    (lambda: sz.train(_data([sz.task("digit", classes=3)], name="shapes"), build),
     r"data name 'shapes' is a built-in benchmark"),
    (lambda: sz.train(_data([sz.task("digit", classes=3)]), build,
                      config={"model": {"spec": "resnet8"}}), r"config.model sets \['spec'\]"),
    (lambda: sz.train(_data([sz.task("digit", classes=3)]), build,
                      config={"train": {"epochs": 0}}), r"invalid config: train.epochs"),
])
def test_bad_input_is_one_line(call, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ScalarizeError, match=message) as info:
        call()
    assert "\n" not in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_architectures_side_by_side_from_python(tmp_path):
    from tests.models.two_tower import build as two_tower

    data = _data([sz.task("digit", classes=3), sz.task("level", kind="regression",
                                                         dense=False)])
    table = sz.compare(data, build, ["static", "pcgrad"], seeds=[0], config=RECIPE,
                       out=tmp_path / "c", models=["mmoe-e2-w8", sz.model(two_tower, width=4)],
                       progress=False)
    assert list(zip(table.model, table.method, strict=True))[:4] == [
        ("mmoe-e2-w8", "static"), ("mmoe-e2-w8", "pcgrad"),
        ("build-width4", "static"), ("build-width4", "pcgrad")]
