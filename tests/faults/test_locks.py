"""Folder locks: a second process on the same run, sweep, comparison or search folder is refused
with one line naming the folder and the holder's pid, nothing changes, and a killed holder
leaves no stale lock (the kernel drops an ``flock`` with its process)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from scalarize.errors import ScalarizeError
from scalarize.files import folder_lock
from scalarize.runs import RunDir, SearchDir, StudyDir
from scalarize.runs.layout import COMPARISON, SWEEP
from tests.conftest import tiny_compare, tiny_study
from tests.faults.conftest import TINY, assert_one_line_error, assert_unchanged, snapshot

REPO = Path(__file__).resolve().parents[2]
ENV = {"PYTHONPATH": str(REPO / "src")}

_HOLDER = """
import sys, time
from scalarize.runs import RunDir, SearchDir, StudyDir
from scalarize.runs.layout import COMPARISON, SWEEP

path, kind = sys.argv[1], sys.argv[2]
folder = {"run": lambda: RunDir(path), "sweep": lambda: StudyDir(path, SWEEP),
          "comparison": lambda: StudyDir(path, COMPARISON),
          "search": lambda: SearchDir(path)}[kind]()
try:
    with folder.lock():
        print("locked", flush=True)
        time.sleep(float(sys.argv[3]) if len(sys.argv) > 3 else 60)
except Exception as exc:
    print(f"refused: {exc}", flush=True)
    sys.exit(2)
"""


def _python(*args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, *args], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**os.environ, **ENV}, **kwargs)


@contextmanager
def holder(path: Path, kind: str = "run") -> Iterator[subprocess.Popen]:
    """Another process holding ``path``'s lock until the block ends (then SIGKILLed)."""
    proc = _python("-c", _HOLDER, str(path), kind)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line == b"locked\n", (line, proc.stderr.read() if proc.stderr else b"")
        yield proc
    finally:
        proc.kill()
        proc.wait()


def _refused_elsewhere(folder: Path, kind: str = "run") -> str:
    """What another process taking ``folder``'s lock prints; it must be refused."""
    proc = _python("-c", _HOLDER, str(folder), kind, "0")
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 2, out
    return out.decode()


def test_a_second_process_is_refused_naming_the_folder_and_pid(tmp_path):
    folder = tmp_path / "r"
    with holder(folder) as proc, pytest.raises(ScalarizeError) as exc, RunDir(folder).lock():
        pass
    message = str(exc.value)
    assert "\n" not in message
    assert f"run folder {folder} is in use by another scalarize process (pid {proc.pid})" in message
    assert "wait for it to finish" in message


def test_a_killed_holder_leaves_no_stale_lock(tmp_path):
    folder = tmp_path / "r"
    with holder(folder) as proc:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        with RunDir(folder).lock():  # free at once: nothing to clean up, nothing to wait for
            assert list(folder.iterdir()) == []


def test_a_lock_held_here_refuses_another_process(tmp_path):
    folder = tmp_path / "sweep"
    with StudyDir(folder, SWEEP).lock():
        out = _refused_elsewhere(folder, "sweep")
    assert out.startswith(f"refused: sweep folder {folder} is in use")
    assert f"(pid {os.getpid()})" in out


def test_a_released_lock_is_free_for_another_process(tmp_path):
    folder = tmp_path / "search"
    with SearchDir(folder).lock():
        pass
    proc = _python("-c", _HOLDER, str(folder), "search", "0")
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0 and out == b"locked\n"


def test_the_lock_creates_the_folder_nests_and_leaves_nothing(tmp_path):
    folder = tmp_path / "a" / "b"
    with folder_lock(folder, "run folder") as path:
        assert path == folder and folder.is_dir()
        with RunDir(folder).lock():  # the same process may nest (a sweep locking its run)
            pass
        assert "in use" in _refused_elsewhere(folder)  # still held by the outer block
    assert not folder.exists()  # created by the lock and left empty: removed
    assert (tmp_path / "a").is_dir()


def test_a_folder_that_was_there_or_got_files_stays(tmp_path):
    with RunDir(tmp_path).lock():
        pass
    assert tmp_path.is_dir()
    with RunDir(tmp_path / "r").lock() as path:
        (path / "config.yaml").write_text("seed: 0\n")
    assert (tmp_path / "r" / "config.yaml").is_file()


def test_overwrite_keeps_the_locked_folder(tmp_path):
    run = RunDir(tmp_path / "r")
    with run.lock():
        run.prepare("seed: 0\n")
        (run.path / "sub").mkdir()
        (run.path / "sub" / "x").write_text("x")
        (run.path / "checkpoint.pt").write_bytes(b"old")
        inode = run.path.stat().st_ino
        run.prepare("seed: 1\n", overwrite=True)
        assert run.path.stat().st_ino == inode
        assert sorted(p.name for p in run.path.iterdir()) == ["config.yaml"]
        assert "in use" in _refused_elsewhere(run.path)


# -- the command line -----------------------------------------------------------------------------
def _train_argv(config: Path, out: Path, *extra: str) -> list[str]:
    return ["train", str(config), *TINY, "name=locked", "--out", str(out), "--quiet", *extra]


def test_train_is_refused_while_another_process_holds_the_run(tmp_path, cli, config_file):
    out = tmp_path / "runs"
    config = config_file()
    assert cli(*_train_argv(config, out)).status == 0
    before = snapshot(out)
    with holder(out / "locked") as proc:
        result = cli(*_train_argv(config, out, "--overwrite"))
        assert_one_line_error(result, f"run folder {out / 'locked'} is in use", f"pid {proc.pid}")
        assert_unchanged(before, out)
        result = cli(*_train_argv(config, out, "--resume", "train.epochs=2"))  # to continue
        assert_one_line_error(result, f"run folder {out / 'locked'} is in use", f"pid {proc.pid}")
        assert_unchanged(before, out)


_SCALARIZE = "import sys; from scalarize.cli import main; sys.exit(main(sys.argv[1:]))"


def _wait_for(path: Path, proc: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else b""
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.01)


def test_scalarize_train_in_another_process_holds_its_run(tmp_path, cli, config_file):
    """End to end: ``scalarize train`` in a subprocess; a second ``scalarize train
    --overwrite`` on its run is refused and changes nothing; once the first is SIGKILLed the
    folder is free."""
    out = tmp_path / "runs"
    config = config_file()
    argv = _train_argv(config, out)
    proc = _python("-c", _SCALARIZE, *argv, "train.epochs=500")
    try:
        _wait_for(out / "locked" / "metrics.jsonl", proc)  # training under the lock
        proc.send_signal(signal.SIGSTOP)  # hold still while we look
        before = snapshot(out)
        result = cli(*argv, "--overwrite")
        assert_one_line_error(result, f"run folder {out / 'locked'} is in use",
                              f"pid {proc.pid}")
        assert_unchanged(before, out)
    finally:
        proc.kill()
        proc.wait()
    result = cli(*argv, "--overwrite")  # the killed holder left no stale lock
    assert result.status == 0, result.err


STUDIES = {
    "sweep": tiny_study(width=[8], seeds=[0]),
    "compare": tiny_compare(["static"], [0]),
    "search": """
benchmark:
  name: shapes
  tasks: [shape, count]
  options: {n_train: 64, n_val: 16, n_test: 16, image_size: 16}
model: {spec: vit-d1-w8-p8}
train: {epochs: 2, batch_size: 32, device: cpu}
search: {strategy: pbt, population: 2, interval: 1, quantile: 0.5}
""",
}
KIND = {"sweep": "sweep", "compare": "comparison", "search": "search"}


@pytest.mark.parametrize("command", STUDIES)
def test_a_study_is_refused_while_another_process_holds_its_folder(tmp_path, cli,
                                                                   config_file, command):
    config = config_file(STUDIES[command], f"{command}.yaml")
    out = tmp_path / "out"
    with holder(out, KIND[command]) as proc:
        before = snapshot(out)
        result = cli(command, config, "--out", out, "--quiet")
        assert_one_line_error(result, f"{KIND[command]} folder {out} is in use",
                              f"pid {proc.pid}")
        assert_unchanged(before, out)
        assert list(out.iterdir()) == []


def test_lock_descriptors_do_not_leak(tmp_path):
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(20):
        with StudyDir(tmp_path / "c", COMPARISON).lock():
            pass
    assert len(os.listdir("/proc/self/fd")) == before
