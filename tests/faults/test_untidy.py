"""Untidy files: temporaries a kill leaves behind are removed when the folder is taken up again
(and nothing else is), atomic writes fsync the data before the rename and the folder after it,
and files scalarize writes honour the umask as ``open()`` does."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from scalarize.files import (
    append_lines,
    atomic_write_bytes,
    atomic_write_text,
    atomic_write_with,
    remove_temporaries,
)
from scalarize.runs import RunDir, SearchDir, StudyDir
from scalarize.runs.layout import SWEEP
from scalarize.runs.records import SearchPlan, SweepPlan
from tests.conftest import tiny_config
from tests.faults.conftest import TINY

REPO = Path(__file__).resolve().parents[2]


def _temporary(folder: Path, name: str, suffix: str = "ab12cd_9") -> Path:
    path = folder / f".{name}.{suffix}"
    path.write_bytes(b"half a file")
    return path


def _others(folder: Path) -> list[Path]:
    """Look-alikes that are not scalarize's temporaries: they must survive."""
    keep = [folder / ".notes.txt.ab12cd_9",  # not a store file
            folder / ".checkpoint.pt.short",  # not 8 characters
            folder / ".checkpoint.pt.AB12CD_9",  # not tempfile's alphabet
            folder / "checkpoint.pt.ab12cd_9"]  # no leading dot
    for path in keep:
        path.write_text("mine")
    (folder / ".summary.json.dir12345").mkdir()  # a folder of that name is not a temporary
    return [*keep, folder / ".summary.json.dir12345"]


def test_resume_removes_only_the_run_temporaries(tmp_path):
    run = RunDir(tmp_path / "r")
    run.prepare("seed: 0\n")
    stray = [_temporary(run.path, n) for n in
             ("checkpoint.pt", "summary.json", "metrics.jsonl", "config.yaml")]
    keep = _others(run.path)
    assert run.prepare("seed: 0\n", resume=True) is True
    assert not any(p.exists() for p in stray)
    assert all(p.exists() for p in keep)
    assert run.read_config() == {"seed": 0}


def test_refused_prepare_leaves_temporaries_alone(tmp_path):
    run = RunDir(tmp_path / "r")
    run.prepare("seed: 0\n")
    (run.path / "summary.json").write_text("{}")  # finished: a run again without flags is refused
    stray = _temporary(run.path, "checkpoint.pt")
    with pytest.raises(Exception, match="already exists"):
        run.prepare("seed: 0\n")
    assert stray.exists()


def test_a_crashed_run_without_checkpoint_starts_over_and_clears_its_temporaries(tmp_path):
    """Killed before its first checkpoint: nothing trained is lost, so it starts over."""
    run = RunDir(tmp_path / "r")
    run.prepare("seed: 0\n")
    stray = _temporary(run.path, "checkpoint.pt")
    assert run.prepare("seed: 0\n") is False
    assert not stray.exists()
    assert sorted(p.name for p in run.path.iterdir()) == ["config.yaml"]


def test_a_new_run_in_a_folder_with_temporaries_clears_them(tmp_path):
    folder = tmp_path / "r"
    folder.mkdir()
    stray = _temporary(folder, "config.yaml")  # killed while writing the very first file
    RunDir(folder).prepare("seed: 0\n")
    assert not stray.exists()


def _sweep_plan() -> SweepPlan:
    return SweepPlan(objectives=["a", "b"], runs=[])


def test_continuing_a_study_removes_its_temporaries(tmp_path):
    config = tiny_config()
    study = StudyDir(tmp_path / "s", SWEEP)
    assert study.record(config, _sweep_plan()) is False
    stray = [_temporary(study.path, n) for n in ("sweep.json", "sweep.yaml")]
    keep = _others(study.path)
    (study.path / "run-1").mkdir()
    run_temp = _temporary(study.path / "run-1", "checkpoint.pt")
    assert study.record(config, _sweep_plan()) is True
    assert not any(p.exists() for p in stray)
    assert all(p.exists() for p in keep)
    assert run_temp.exists()  # a run's own temporaries go when that run is resumed


def test_continuing_a_search_removes_its_temporaries(tmp_path):
    config = tiny_config()
    plan = SearchPlan(strategy="pbt", engine="local", objectives=["a", "b"], population=2,
                      epochs=2, interval=1, initial_weights=[[0.5, 0.5], [0.2, 0.8]])
    search = SearchDir(tmp_path / "s")
    search.record(config, plan)
    stray = [_temporary(search.path, n) for n in ("state.pt", "population.jsonl",
                                                  "summary.json")]
    assert search.record(config, plan) is True
    assert not any(p.exists() for p in stray)


_KILLED_WRITER = """
import sys, time
from pathlib import Path
from scalarize.files import atomic_write_with

def write(tmp):
    with open(tmp, "wb") as handle:
        handle.write(b"x" * 1000)
        handle.flush()
    print("writing", flush=True)
    time.sleep(60)

atomic_write_with(Path(sys.argv[1]), write)
"""


def test_a_kill_mid_write_leaves_a_temporary_that_resume_removes(tmp_path):
    run = RunDir(tmp_path / "r")
    run.prepare("seed: 0\n")
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_WRITER,
                             str(run.path / "checkpoint.pt")], stdout=subprocess.PIPE,
                            cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO / "src")})
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"writing\n"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    left = [p.name for p in run.path.iterdir() if p.name.startswith(".checkpoint.pt.")]
    assert len(left) == 1 and not (run.path / "checkpoint.pt").exists()
    assert run.prepare("seed: 0\n", resume=True)
    assert sorted(p.name for p in run.path.iterdir()) == ["config.yaml"]


def test_train_resume_through_the_cli_removes_temporaries(tmp_path, cli, config_file):
    out = tmp_path / "runs"
    config = config_file()
    argv = ["train", config, *TINY, "--out", out, "--quiet"]
    assert cli(*argv).status == 0
    (folder,) = [p.parent for p in out.glob("*/config.yaml")]
    (folder / "summary.json").unlink()  # as if killed before the end
    stray = _temporary(folder, "checkpoint.pt")
    result = cli(*argv, "--resume")
    assert result.status == 0, result.err
    assert not stray.exists() and (folder / "summary.json").is_file()


def test_remove_temporaries_of_a_missing_folder_is_nothing(tmp_path):
    assert remove_temporaries(tmp_path / "missing", ["checkpoint.pt"]) == []


# -- durability ---------------------------------------------------------------------------------
@pytest.fixture
def calls(monkeypatch):
    """Record ``os.fsync`` (by the path of the descriptor) and ``os.replace`` in order."""
    log: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        log.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        return real_fsync(fd)

    def replace(src, dst, **kwargs):
        log.append(("replace", f"{Path(src).name} -> {Path(dst).name}"))
        return real_replace(src, dst, **kwargs)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    return log


def _assert_data_rename_folder(log: list[tuple[str, str]], path: Path) -> None:
    assert [kind for kind, _ in log] == ["fsync", "replace", "fsync"], log
    tmp = Path(log[0][1])
    assert tmp.parent == path.parent and tmp.name.startswith(f".{path.name}.")
    assert log[1][1] == f"{tmp.name} -> {path.name}"
    assert log[2][1] == str(path.parent)


def test_atomic_write_fsyncs_data_then_renames_then_fsyncs_the_folder(tmp_path, calls):
    path = tmp_path / "summary.json"
    atomic_write_text(path, "{}")
    _assert_data_rename_folder(calls, path)
    assert path.read_text() == "{}"


def test_atomic_write_with_fsyncs_what_the_writer_wrote(tmp_path, calls):
    path = tmp_path / "checkpoint.pt"
    atomic_write_with(path, lambda tmp: Path(tmp).write_bytes(b"state"))
    _assert_data_rename_folder(calls, path)
    assert path.read_bytes() == b"state"


def test_checkpoint_through_torch_is_durable(tmp_path, calls):
    run = RunDir(tmp_path)
    run.save_checkpoint({"epoch": 1})
    _assert_data_rename_folder(calls, tmp_path / "checkpoint.pt")


def test_first_append_fsyncs_the_file_then_the_folder(tmp_path, calls):
    path = tmp_path / "metrics.jsonl"
    append_lines(path, [{"epoch": 1}])
    assert calls == [("fsync", str(path)), ("fsync", str(tmp_path))]
    calls.clear()
    append_lines(path, [{"epoch": 2}])
    assert calls == [("fsync", str(path))]  # the folder entry is already on disk


def test_a_failed_write_leaves_no_temporary(tmp_path):
    def fail(tmp: str) -> None:
        Path(tmp).write_bytes(b"half")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        atomic_write_with(tmp_path / "checkpoint.pt", fail)
    assert list(tmp_path.iterdir()) == []


# -- umask ----------------------------------------------------------------------------------------
@pytest.fixture(params=[0o022, 0o002, 0o077])
def umask(request):
    previous = os.umask(request.param)
    yield request.param
    os.umask(previous)


def test_written_files_honour_the_umask(tmp_path, umask):
    expected = 0o666 & ~umask
    run = RunDir(tmp_path / "r")
    run.prepare("seed: 0\n")
    run.save_checkpoint({"epoch": 1})
    append_lines(run.path / "metrics.jsonl", [{"epoch": 1}])
    atomic_write_bytes(run.path / "summary.json", b"{}")
    for name in ("config.yaml", "checkpoint.pt", "metrics.jsonl", "summary.json"):
        mode = stat.S_IMODE((run.path / name).stat().st_mode)
        assert mode == expected, (name, oct(mode), oct(expected))
    assert stat.S_IMODE(run.path.stat().st_mode) == 0o777 & ~umask


def test_a_replaced_file_takes_the_umask_not_the_old_mode(tmp_path, umask):
    path = tmp_path / "summary.json"
    path.write_text("old")
    path.chmod(0o600)
    atomic_write_text(path, "new")
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
