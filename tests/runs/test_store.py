import pytest

from scalarize.errors import ScalarizeError, SkippedRunWarning
from scalarize.launch import train_run
from scalarize.runs import EpochRecord, RunDir, SearchDir, StudyDir, SweepPlan, find_runs, load_runs
from scalarize.runs.layout import SWEEP
from scalarize.runs.store import read_or_skip
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
    (run.path / "summary.json").write_text("{}")  # a finished run
    with pytest.raises(ScalarizeError, match="--resume to continue it or --overwrite"):
        run.prepare("a: 1\n")
    with pytest.raises(ScalarizeError, match="differs from this config"):
        run.prepare("a: 2\n", resume=True)
    assert run.read_metrics() == [_epoch(1)]
    assert run.prepare("a: 1\n", resume=True) is True
    run.prepare("a: 2\n", overwrite=True)
    assert run.read_metrics() == [] and run.read_config() == {"a": 2}


def test_a_crashed_run_is_taken_up_without_a_flag(tmp_path):
    """No summary: without a checkpoint it starts over (even with another config: nothing
    trained is kept); with one it resumes under the same config and is refused under another
    (that would throw its training away)."""
    run = RunDir(tmp_path / "r")
    run.prepare("a: 1\n")
    run.append_metrics(_epoch(1))  # killed between the metrics line and the checkpoint
    assert run.prepare("a: 2\n") is False
    assert run.read_config() == {"a": 2} and run.read_metrics() == []
    run.append_metrics(_epoch(1))
    run.save_checkpoint({"epoch": 1})
    assert run.prepare("a: 2\n") is True  # continues from its checkpoint
    assert run.read_metrics() == [_epoch(1)] and run.load_checkpoint() == {"epoch": 1}
    with pytest.raises(ScalarizeError, match=r"another config .*--overwrite"):
        run.prepare("a: 3\n")
    assert run.read_config() == {"a": 2} and run.load_checkpoint() == {"epoch": 1}


def test_a_finished_summary_needs_a_summary_and_the_same_config(tmp_path):
    run = RunDir(tmp_path / "r")
    run.prepare("a: 1\n")
    assert run.finished_summary(lambda saved: True) is None  # not finished yet
    summary = train_run(tiny_config("train.epochs=1"), tmp_path / "runs", progress=False)
    run = RunDir(tmp_path / "runs" / summary.run)
    assert run.finished_summary(lambda saved: saved["seed"] == 0) == summary
    assert run.finished_summary(lambda saved: False) is None


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


def test_overwrite_empties_the_folder_in_place(tmp_path):
    run = RunDir(tmp_path / "r")
    run.prepare("a: 1\n")
    (run.path / "nested").mkdir()
    (run.path / "nested" / "f").write_text("x")
    (run.path / "link").symlink_to(tmp_path)  # a link is removed, not followed
    inode = run.path.stat().st_ino
    run.prepare("a: 2\n", overwrite=True)
    assert run.path.stat().st_ino == inode
    assert sorted(p.name for p in run.path.iterdir()) == ["config.yaml"]
    assert tmp_path.is_dir()


@pytest.mark.parametrize("text,says", [
    (b"a: [1\n", r"config\.yaml is not valid YAML at line 2"),
    (b"\xff\xfe", r"config\.yaml is not UTF-8 text"),
    (b"- a\n", r"config\.yaml does not hold a mapping"),
    (b"", r"config\.yaml does not hold a mapping"),
])
def test_corrupt_run_config_is_one_line(tmp_path, text, says):
    run = RunDir(tmp_path / "r")
    run.prepare("a: 1\n")
    (run.path / "config.yaml").write_bytes(text)
    with pytest.raises(ScalarizeError, match=says) as exc:
        run.read_config()
    assert "\n" not in str(exc.value) and "--overwrite" in str(exc.value)


def test_files_in_the_wrong_place_name_the_path_and_the_fix(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ScalarizeError, match=r"run folder .*file is a file; remove it"):
        RunDir(tmp_path / "file").prepare("a: 1\n")
    run = RunDir(tmp_path / "r")
    (run.path / "config.yaml").mkdir(parents=True)
    with pytest.raises(ScalarizeError, match=r"config\.yaml is a folder, not a file"):
        run.prepare("a: 1\n")
    run.prepare("a: 1\n", overwrite=True)
    (run.path / "summary.json").mkdir()
    with pytest.raises(ScalarizeError, match=r"summary\.json is a folder, not a file"):
        run.read_summary()
    (run.path / "metrics.jsonl").write_bytes(b"\xff\n")
    with pytest.raises(ScalarizeError, match=r"metrics\.jsonl is not UTF-8 text"):
        run.read_metrics()
    with pytest.raises(ScalarizeError, match="is a file, not a folder of runs"):
        find_runs(tmp_path / "file")


def test_study_files_corrupt_or_misplaced_are_one_line(tmp_path):
    config = tiny_config()
    study = StudyDir(tmp_path / "s", SWEEP)
    with pytest.raises(ScalarizeError, match="does not exist; give a sweep folder"):
        study.read_plan(SweepPlan)
    study.record(config, SweepPlan(objectives=["a"], runs=[]))
    study.config_path.write_bytes(b"seed: {")
    with pytest.raises(ScalarizeError, match=r"sweep\.yaml is not valid YAML"):
        study.record(config, SweepPlan(objectives=["a"], runs=[]))
    (tmp_path / "f").write_text("x")
    with pytest.raises(ScalarizeError, match="is a file, not a sweep folder"):
        StudyDir(tmp_path / "f", SWEEP).read_plan(SweepPlan)
    with pytest.raises(ScalarizeError, match="is a file, not a search folder"):
        SearchDir(tmp_path / "f").record(config, SweepPlan(objectives=["a"], runs=[]))


def test_read_or_skip_warns_once_and_passes_good_reads(tmp_path):
    def bad() -> int:
        raise ScalarizeError("x.json is corrupt; delete it")

    assert read_or_skip(tmp_path, lambda: 3) == 3
    with pytest.warns(SkippedRunWarning, match=f"skipped run {tmp_path}: x.json is corrupt"):
        assert read_or_skip(tmp_path, bad) is None
