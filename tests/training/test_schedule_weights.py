import pytest

from scalarize.errors import ScalarizeError
from scalarize.launch import train_run
from scalarize.runs import RunDir
from scalarize.training import Callback, WeightSchedule
from tests.conftest import tiny_config


def test_schedule_changes_the_weights_at_epoch_boundaries(tmp_path):
    config = tiny_config("train.epochs=3", "benchmark.tasks=[shape, count]",
                         "scalarization.schedule=[[0, [0.5, 0.5]], [2, [0.9, 0.1]]]")
    summary = train_run(config, tmp_path, progress=False)
    used = [r.weights.as_dict()["shape"] for r in RunDir(tmp_path / summary.run).read_metrics()]
    assert used == pytest.approx([0.5, 0.5, 0.9])


class _KillInEpochTwo(Callback):
    def on_step_end(self, trainer, step, loss):
        if step == trainer.steps_per_epoch + 1:
            raise KeyboardInterrupt


def test_resumed_schedule_matches_an_uninterrupted_one(tmp_path):
    config = tiny_config("train.epochs=3", "benchmark.tasks=[shape, count]",
                         "scalarization.schedule=[[0, [0.5, 0.5]], [1, [0.2, 0.8]]]")
    whole = train_run(config, tmp_path / "a", progress=False)
    with pytest.raises(KeyboardInterrupt):
        train_run(config, tmp_path / "b", callbacks=[_KillInEpochTwo()], progress=False)
    resumed = train_run(config, tmp_path / "b", resume=True, progress=False)
    assert resumed.test == whole.test
    assert resumed.weights.as_dict() == pytest.approx({"shape": 0.2, "count": 0.8})


def test_schedule_must_start_at_epoch_zero():
    with pytest.raises(ScalarizeError, match="epoch 0"):
        WeightSchedule([(1, [0.5, 0.5])])
