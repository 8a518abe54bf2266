"""The local engine's side-by-side runs: how many, the same runs as one at a time, errors."""

from __future__ import annotations

import pytest

from scalarize.engines.executors import LocalExecutor
from scalarize.errors import ScalarizeError
from scalarize.launch.pool import available_cores, resolve_jobs
from scalarize.runs.store import RunDir
from scalarize.studies.sweep import SweepConfig, run_sweep
from tests.conftest import tiny_config


def test_jobs_come_from_the_argument_the_environment_or_the_cores(monkeypatch):
    cpu = [tiny_config()] * 5
    assert resolve_jobs(3, cpu) == 3
    assert resolve_jobs(9, cpu[:2]) == 2  # never more than the runs
    monkeypatch.setenv("SCALARIZE_JOBS", "4")
    assert resolve_jobs(None, cpu) == 4
    monkeypatch.setenv("SCALARIZE_JOBS", "many")
    with pytest.raises(ScalarizeError, match="SCALARIZE_JOBS='many' is not a whole number"):
        resolve_jobs(None, cpu)
    monkeypatch.setenv("SCALARIZE_JOBS", "0")
    with pytest.raises(ScalarizeError, match="SCALARIZE_JOBS must be a whole number of at"):
        LocalExecutor()  # refused when the engine is built: before the study writes
    monkeypatch.delenv("SCALARIZE_JOBS")
    assert resolve_jobs(None, cpu) == min(available_cores(), 5)
    assert resolve_jobs(None, [tiny_config("train.device=cuda")] * 5) == 1  # they share a GPU
    # a run of two processes counts as two of the cores
    assert resolve_jobs(None, [tiny_config("train.nproc=2")] * 5) == max(
        1, min(available_cores() // 2, 5))
    for bad in (0, "2", 1.5, True):
        with pytest.raises(ScalarizeError, match="jobs must be a whole number of at least 1"):
            LocalExecutor(jobs=bad)


def _sweep(*overrides: str) -> SweepConfig:
    return SweepConfig.model_validate({
        **tiny_config("train.threads=1", "model.spec=resnet8-x0.125", *overrides).model_dump(),
        "sweep": {"capacities": ["resnet8-x0.125"], "single_task": False,
                  "weights": {"points": [[0.2, 0.2, 0.2, 0.2, 0.2], [0.6, 0.1, 0.1, 0.1, 0.1]]},
                  "seeds": [0, 1]}})


def test_side_by_side_runs_equal_runs_one_after_another(tmp_path):
    # with the same threads per run (train.threads=1) the numbers are the same to the bit
    run_sweep(_sweep(), tmp_path / "one", engine_options={"jobs": 1}, progress=False)
    run_sweep(_sweep(), tmp_path / "two", engine_options={"jobs": 2}, progress=False)
    names = sorted(p.name for p in (tmp_path / "one").iterdir() if p.is_dir())
    assert len(names) == 4
    assert names == sorted(p.name for p in (tmp_path / "two").iterdir() if p.is_dir())
    for name in names:
        one, two = RunDir(tmp_path / "one" / name), RunDir(tmp_path / "two" / name)
        assert one.read_summary().test == two.read_summary().test
        assert [r.val_loss for r in one.read_metrics()] == [r.val_loss for r in two.read_metrics()]
    # a finished study run again trains nothing: every run is skipped where it is
    before = {n: (tmp_path / "two" / n / "summary.json").stat().st_mtime_ns for n in names}
    run_sweep(_sweep(), tmp_path / "two", engine_options={"jobs": 2}, progress=False)
    assert before == {n: (tmp_path / "two" / n / "summary.json").stat().st_mtime_ns
                      for n in names}


def test_a_failing_run_in_a_worker_is_one_error_here(tmp_path):
    with pytest.raises(ScalarizeError, match="training diverged"):
        run_sweep(_sweep("train.lr=1e30"), tmp_path / "s", engine_options={"jobs": 2},
                  progress=False)


def test_jobs_on_the_command_line(tmp_path, capsys):
    from scalarize.cli import main

    assert main(["sweep", "configs/shapes_sharing.yaml", "--out", str(tmp_path / "s"),
                 "--engine", "ray", "--jobs", "2"]) == 2
    assert "--jobs is for --engine local" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()
    with pytest.raises(SystemExit) as exit_:
        main(["sweep", "configs/shapes_sharing.yaml", "--out", str(tmp_path / "s"), "--jobs",
              "0"])
    assert exit_.value.code == 2


def test_a_workers_spawned_run_processes_inherit_an_interruptible_sigint():
    """A pool worker ignores Ctrl-C; the processes of a train.nproc run it spawns must not,
    or torch's SIGINT on their parent's death would leave them running (orphans)."""
    import signal

    from scalarize.launch.pool import _interruptible

    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # as _start_worker sets it
    try:
        with _interruptible():
            assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)
