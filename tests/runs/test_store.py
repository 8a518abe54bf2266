import pytest

from scalarize.errors import ScalarizeError
from scalarize.runs import EpochRecord, RunDir, load_runs
from scalarize.training import train_run
from scalarize.weights import parse_weights
from tests.conftest import tiny_config


def _epoch(epoch: int) -> EpochRecord:
    return EpochRecord(epoch=epoch, step=epoch, lr=0.1, train_loss={"a": 1.0},
                       train_objective=1.0, val_acc={"a": 0.5}, val_loss={"a": 1.0},
                       val_avg_acc=0.5, weights=parse_weights("uniform", ["a"]),
                       epoch_seconds=1.0, step_seconds=1.0)


def test_existing_run_is_never_touched_without_a_flag(tmp_path):
    run = RunDir(tmp_path / "r")
    run.prepare("a: 1\n")
    run.append_metrics(_epoch(1))
    with pytest.raises(ScalarizeError, match="--resume to continue it or --overwrite"):
        run.prepare("a: 1\n")
    with pytest.raises(ScalarizeError, match="differs from this config"):
        run.prepare("a: 2\n", resume=True)
    assert run.read_metrics() == [_epoch(1)]
    assert run.prepare("a: 1\n", resume=True) is True
    run.prepare("a: 2\n", overwrite=True)
    assert run.read_metrics() == [] and run.read_config() == {"a": 2}


def test_torn_metrics_line_is_ignored(tmp_path):
    run = RunDir(tmp_path / "r")
    run.prepare("a: 1\n")
    run.append_metrics(_epoch(1))
    with open(run.path / "metrics.jsonl", "a") as handle:
        handle.write('{"epoch": 2, "val')
    assert run.read_metrics() == [_epoch(1)]


def test_checkpoint_is_atomic_and_corruption_is_reported(tmp_path):
    run = RunDir(tmp_path / "r")
    run.prepare("a: 1\n")
    run.save_checkpoint({"epoch": 1})
    run.save_checkpoint({"epoch": 2})
    assert run.load_checkpoint() == {"epoch": 2}
    assert sorted(p.name for p in run.path.iterdir()) == ["checkpoint.pt", "config.yaml"]
    (run.path / "checkpoint.pt").write_bytes(b"garbage")
    with pytest.raises(ScalarizeError, match="unreadable"):
        run.load_checkpoint()


def test_load_runs_gives_a_dataframe(tmp_path):
    train_run(tiny_config("train.epochs=1"), tmp_path, progress=False)
    train_run(tiny_config("train.epochs=1", "scalarization.weights=onehot:colour"), tmp_path,
              progress=False)
    frame = load_runs(tmp_path)
    assert len(frame) == 2
    assert set(frame["weights"]) == {"uniform", "onehot-colour"}
    assert frame["test_avg_acc"].between(0, 1).all()
    assert (frame["status"] == "complete").all()
    assert {"test_acc_shape", "w_shape", "params", "flops"} <= set(frame.columns)
    with pytest.raises(ScalarizeError, match="does not exist; give a folder of runs"):
        load_runs(tmp_path / "missing")
