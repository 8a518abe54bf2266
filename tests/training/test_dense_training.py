"""Dense multi-task training on the Taskonomy fixture: learns, reports every metric, is
reproducible, works with gradient-based methods and conflict probes."""

import json

import pytest

from scalarize.benchmarks.fixtures import write_taskonomy
from scalarize.config import load_config
from scalarize.errors import ScalarizeError
from scalarize.launch import train_run
from scalarize.runs import RunDir
from scalarize.training import Trainer


@pytest.fixture(scope="module")
def options(tmp_path_factory):
    return write_taskonomy(tmp_path_factory.mktemp("taskonomy"))


def _config(options, *overrides):
    return load_config(None, ["benchmark.name=taskonomy",
                              f"benchmark.options={json.dumps(options)}",
                              "model.spec=resnet8-x0.5", "train.epochs=2",
                              "train.batch_size=4", "train.device=cpu", *overrides])


def test_dense_tasks_learn_and_report_their_metrics(options):
    trainer = Trainer(_config(options, "train.epochs=25", "train.lr=3e-3"), progress=False)
    summary = trainer.fit()
    assert trainer.history[-1]["train_objective"] < 0.3 * trainer.history[0]["train_objective"]
    metrics = summary.test.metrics
    assert set(metrics["depth_zbuffer"]) == {"score", "l1", "abs_rel"}
    assert set(metrics["normal"]) == {"score", "l1", "mean_angle"}
    assert set(metrics["segment_semantic"]) == {"score", "pixel_acc"}
    assert summary.test.acc["segment_semantic"] == metrics["segment_semantic"]["score"]
    assert summary.test.acc["segment_semantic"] > 0.5  # four quadrant classes
    assert metrics["normal"]["mean_angle"] < 30
    assert trainer.history[-1]["val_metrics"]["edge_texture"]["l1"] >= 0


def test_same_seed_same_dense_numbers(options):
    a = Trainer(_config(options), progress=False).fit()
    b = Trainer(_config(options), progress=False).fit()
    assert a.test == b.test


@pytest.mark.parametrize("method", ["upgrad", "gradnorm"])
def test_methods_and_probes_run_on_feature_maps(options, method, tmp_path):
    config = _config(options, f"method.name={method}", "model.spec=vit-d1-w16-p4",
                     "probes={conflicts: {every: 1}}")
    summary = train_run(config, tmp_path, progress=False)
    assert 0.0 <= summary.test.avg_acc <= 1.0
    records = RunDir(next(tmp_path.rglob("conflicts.jsonl")).parent).read_conflicts()
    assert records and len(records[0].cos) == 4  # 4 × 4 task cosines


def test_dense_tasks_flip_but_do_not_crop(options):
    with pytest.raises(ScalarizeError, match="dense targets do not follow"):
        Trainer(_config(options, "train.augment={padding: 2, flip: true}"), progress=False)
    plain = Trainer(_config(options), progress=False).fit()
    flipped = Trainer(_config(options, "train.augment={padding: 0, flip: true}"),
                      progress=False).fit()
    assert flipped.test.loss != plain.test.loss
