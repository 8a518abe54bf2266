"""A Ray worker SIGKILLed mid-training is retried from its last checkpoint, and the study ends
exactly as without the kill: a Tune trial of a fixed-weight search
(``FailureConfig(max_failures=2)``, restored from the member's last checkpoint) and a Ray task
of a sweep (``max_retries=2``; the retry resumes the run folder from its ``checkpoint.pt``). An
adaptive search (pbt) cannot restore a member exactly on Ray: it stops with one line instead.

The kill comes from outside, as the kernel's OOM killer or an operator would: the test watches
the output folder for the first checkpoint and kills the process training there (a sweep run's
worker holds the ``flock`` on its run folder, listed in ``/proc/locks``; a Tune trial's worker
is a ``ray::ResourceTrainable`` process: the member trainable with its resources). On the
local engine members run in the driver itself; killing that whole process and re-running the
command is covered by the resume tests.

Ray is installed by ``make test`` (the ``ray`` extra); these tests fail, not skip, without it.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from scalarize.errors import ScalarizeError
from scalarize.files import _lock_holder
from scalarize.runs import RunDir, SearchDir
from scalarize.search.spec import load_search_config
from scalarize.studies.runner import run_search
from scalarize.studies.sweep import load_sweep_config, run_sweep

BASE = """
seed: 0
benchmark:
  name: shapes
  tasks: [shape, count]
  options: {n_train: 256, n_val: 16, n_test: 16, image_size: 16}
model: {spec: vit-d1-w16-p8}
"""
SWEEP = BASE + """
train: {epochs: 6, batch_size: 32, device: cpu, threads: 1}
sweep: {capacities: [vit-d1-w16-p8], single_task: false}
"""
SEARCH = BASE + """
train: {epochs: 4, batch_size: 32, device: cpu, threads: 1, lr: 3.0e-3}
search: {strategy: random, population: 2, interval: 1, quantile: 0.5}
"""


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    """One local Ray (2 CPUs) for the runs of this module, killed and not."""
    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
             configure_logging=False)
    yield
    ray.shutdown()


class Killer(threading.Thread):
    """Waits for ``ready()`` to name a process (polling every few ms), then SIGKILLs it."""

    def __init__(self, ready: Callable[[], int | None], timeout: float = 120.0) -> None:
        super().__init__(daemon=True)
        self.ready, self.timeout = ready, timeout
        self.killed: int | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        deadline = time.monotonic() + self.timeout
        while not self.stop.is_set() and time.monotonic() < deadline:
            pid = self.ready()
            if pid is not None:
                os.kill(pid, signal.SIGKILL)
                self.killed = pid
                return
            time.sleep(0.002)

    def __enter__(self) -> Killer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.join()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _summary_fields(summary) -> dict:
    """A run summary without its times (they differ between any two runs)."""
    dump = summary.model_dump()
    return {k: v for k, v in dump.items() if "seconds" not in k}


def test_a_killed_sweep_task_resumes_its_run_and_ends_as_unkilled(tmp_path, local_ray):
    path = tmp_path / "sweep.yaml"
    path.write_text(SWEEP)
    config = load_sweep_config(path)
    run_sweep(config, tmp_path / "unkilled", engine="ray", progress=False)
    out = tmp_path / "killed"
    epochs_at_kill = []

    def training_worker() -> int | None:
        """The worker holding a run folder that has a checkpoint and no summary yet."""
        for run in out.glob("*/checkpoint.pt"):
            if not (run.parent / "summary.json").exists():
                epochs_at_kill.append(len(RunDir(run.parent).read_metrics()))
                return _lock_holder(os.stat(run.parent))
        return None

    with Killer(training_worker) as killer:
        run_sweep(config, out, engine="ray", progress=False)
    assert killer.killed is not None and killer.killed != os.getpid()
    assert not _alive(killer.killed)
    assert 1 <= epochs_at_kill[-1] < config.train.epochs  # killed mid-run, after a checkpoint
    (run,) = [p for p in out.iterdir() if p.is_dir()]
    killed, unkilled = RunDir(run).read_summary(), RunDir(tmp_path / "unkilled" / run.name
                                                          ).read_summary()
    assert killed is not None and unkilled is not None
    assert _summary_fields(killed) == _summary_fields(unkilled)
    assert ([r.model_dump(exclude={"epoch_seconds", "step_seconds"})
             for r in RunDir(run).read_metrics()] ==
            [r.model_dump(exclude={"epoch_seconds", "step_seconds"})
             for r in RunDir(tmp_path / "unkilled" / run.name).read_metrics()])


def _trainables() -> list[int]:
    """Pids of this machine's Tune trial workers (the member trainable with its resources is
    Tune's ``ResourceTrainable``; its process title names it)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if cmdline.startswith((b"ray::ResourceTrainable", b"ray::MemberTrainable")):
            pids.append(int(proc.name))
    return pids


def _trial_failures(experiment: Path) -> int:
    """Failures of the trials, from Tune's experiment state (its own JSON layout)."""
    (state,) = experiment.glob("experiment_state-*.json")
    return sum(json.loads(meta)["num_failures"]
               for _, meta in json.loads(state.read_text())["trial_data"])


def _every_trial_worker(out: Path) -> int | None:
    """Once a member has a checkpoint: SIGKILL every trial worker but the first, and name it
    (the :class:`Killer` kills that one)."""
    if not any(out.glob("ray/m*/checkpoint_*/member.pt")):
        return None
    pids = _trainables()
    if not pids:
        return None
    for pid in pids[1:]:
        os.kill(pid, signal.SIGKILL)
    return pids[0]


def _trial_killer(out: Path) -> Killer:
    def trial_worker() -> int | None:
        """A trial worker, once a member has a checkpoint (and the search is not over)."""
        if not any(out.glob("ray/m*/checkpoint_*/member.pt")):
            return None
        return next(iter(_trainables()), None)

    return Killer(trial_worker)


def test_a_killed_tune_trial_restarts_from_its_checkpoint_and_ends_as_unkilled(tmp_path,
                                                                               local_ray):
    """A fixed-weight search (random here, grid alike) checkpoints every member every
    interval: the killed member's trial restarts there on a new worker."""
    path = tmp_path / "search.yaml"
    path.write_text(SEARCH)
    config = load_search_config(path)
    unkilled = run_search(config, tmp_path / "unkilled", engine="ray", progress=False)
    out = tmp_path / "killed"
    with _trial_killer(out) as killer:
        killed = run_search(config, out, engine="ray", progress=False)
    assert killer.killed is not None and not _alive(killer.killed)
    assert _trial_failures(out / "ray") == 1  # one trial died, and Tune restored it
    skip = {"engine", "seconds", "train_seconds", "members"}
    assert killed.model_dump(exclude=skip) == unkilled.model_dump(exclude=skip)
    for a, b in zip(unkilled.members, killed.members, strict=True):
        assert a.model_dump(exclude={"train_seconds"}) == b.model_dump(exclude={"train_seconds"})
    events = [{k: v for k, v in e.dump().items() if k not in ("seconds", "node")}
              for e in SearchDir(out).read_events()]
    assert events == [{k: v for k, v in e.dump().items() if k not in ("seconds", "node")}
                      for e in SearchDir(tmp_path / "unkilled").read_events()]


def test_a_killed_adaptive_search_stops_at_once_with_one_line(tmp_path, local_ray):
    """pbt (pb2, mopbt alike) members checkpoint only for exploits and its policy lives in the
    driver, so Tune cannot restore a killed member exactly (it would retry a checkpoint still
    being saved, for ever): the search stops at the first dead worker, with one line saying
    so, and a re-run is refused with the same advice."""
    path = tmp_path / "search.yaml"
    path.write_text(SEARCH)
    config = load_search_config(path, ["search.strategy=pbt"])
    out = tmp_path / "killed"
    start = time.monotonic()
    # every trial worker at once: one of them may be an idle actor Tune keeps for reuse, whose
    # death no trial notices (killing only that one let the search finish: the flaky failure
    # of issue 32); with all of them, a member that is training dies
    with Killer(lambda: _every_trial_worker(out)) as killer, \
            pytest.raises(ScalarizeError) as raised:
        run_search(config, out, engine="ray", progress=False)
    assert killer.killed is not None and time.monotonic() - start < 120
    message = str(raised.value)
    assert "\n" not in message and "worker process died" in message
    assert "cannot continue on Ray" in message and "delete the folder" in message
    with pytest.raises(ScalarizeError, match="cannot continue on Ray"):
        run_search(config, out, engine="ray", progress=False)
