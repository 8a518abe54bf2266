"""A Ray worker SIGKILLed mid-training is retried from its last checkpoint, and the study ends
exactly as without the kill: a Tune trial of a fixed-weight search
(``FailureConfig(max_failures=2)``, restored from the member's last checkpoint), a member of
an adaptive search (pbt, pb2, mopbt on a two-node loopback cluster: restored from its
checkpoint of the last decision, the policy's state kept in the driver) and a Ray task of a
sweep (``max_retries=2``; the retry resumes the run folder from its ``checkpoint.pt``). A
member that cannot be restored ends the search with one line.

The kill comes from outside, as the kernel's OOM killer or an operator would, at a point the
store shows, never at a time: the test watches the output folder (the first checkpoint, or an
epoch recorded in ``population.jsonl``) and kills the process training there (a sweep run's
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
import subprocess
import sys
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
from tests.engines.cluster import Cluster

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


def _trainables(sessions: tuple[int, ...] = ()) -> list[int]:
    """Pids of the Tune trial workers of this test's Ray (the member trainable with its
    resources is Tune's ``ResourceTrainable``; its process title names it): those descended
    from this process (a local Ray's workers are its raylet's children), or in ``sessions``
    (a cluster's nodes). Never another Ray's on this machine: other tests run beside these,
    in pytest-xdist workers of this session."""
    trainables = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            title = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if title.startswith((b"ray::ResourceTrainable", b"ray::MemberTrainable")):
            trainables.append(int(proc.name))
    return sorted(pid for pid in trainables
                  if (_in_sessions(pid, sessions) if sessions else _descends_from_us(pid)))


def _in_sessions(pid: int, sessions: tuple[int, ...]) -> bool:
    try:
        return os.getsid(pid) in sessions
    except OSError:
        return False


def _descends_from_us(pid: int) -> bool:
    """Whether ``pid``'s chain of parents reaches this process."""
    while pid > 1:
        try:  # "pid (comm) state ppid ...": comm may hold spaces and parentheses
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            return False
        if pid == os.getpid():
            return True
    return False


def _trial_failures(experiment: Path) -> int:
    """Failures of the trials, from Tune's experiment state (its own JSON layout)."""
    (state,) = experiment.glob("experiment_state-*.json")
    return sum(json.loads(meta)["num_failures"]
               for _, meta in json.loads(state.read_text())["trial_data"])


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


# two members, one exploit per boundary, decisions after epochs 1 and 2
ADAPTIVE = ["search.population=2", "search.quantile=0.5", "train.epochs=3"]


def _reported(out: Path, epoch: int) -> bool:
    """Whether the driver has recorded a member's ``epoch`` in ``population.jsonl`` (so the
    decision after the epoch before it is taken and its checkpoints saved)."""
    path = out / "population.jsonl"
    if not path.exists():
        return False
    for line in path.read_text().splitlines():
        try:
            event = json.loads(line)
        except ValueError:  # a line being appended
            continue
        if event.get("event") == "epoch" and event.get("epoch") == epoch:
            return True
    return False


def _every_trial_worker_after(out: Path, epoch: int, sessions: tuple[int, ...] = ()
                              ) -> Callable[[], int | None]:
    """Once ``epoch`` is reported: SIGKILL every trial worker but the first, and name it (the
    :class:`Killer` kills that one), so that every member dies, wherever each one is: training
    the next epoch, waiting at the boundary, saving, or restoring a copy."""

    def ready() -> int | None:
        if not _reported(out, epoch):
            return None
        pids = _trainables(sessions)
        for pid in pids[1:]:
            os.kill(pid, signal.SIGKILL)
        return pids[0] if pids else None

    return ready


def _same_search(killed: Path, unkilled: Path) -> None:
    """The same population file and summary, but for times, node names and the engine."""
    def events(folder: Path) -> list[dict]:
        return [{k: v for k, v in e.dump().items() if k not in ("seconds", "node")}
                for e in SearchDir(folder).read_events()]

    assert events(killed) == events(unkilled)
    a, b = SearchDir(killed).read_summary(), SearchDir(unkilled).read_summary()
    assert a is not None and b is not None
    skip = {"engine", "seconds", "train_seconds", "members"}
    assert a.model_dump(exclude=skip) == b.model_dump(exclude=skip)
    for x, y in zip(a.members, b.members, strict=True):
        assert x.model_dump(exclude={"train_seconds"}) == y.model_dump(exclude={"train_seconds"})


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[Cluster]:
    """A two-node Ray cluster on loopback for the killed-member tests of this module."""
    from tests.engines.cluster import loopback_cluster

    with loopback_cluster(tmp_path_factory.mktemp("cluster")) as started:
        yield started


@pytest.mark.parametrize("strategy", ["pbt", "pb2", "mopbt"])
def test_a_killed_adaptive_member_is_restored_and_the_search_ends_as_unkilled(tmp_path, cluster,
                                                                             strategy):
    """An adaptive search on a two-node cluster (one member a node) whose every member's
    worker is SIGKILLed once epoch 2 is reported: each member restarts on a new worker from
    its checkpoint of the last decision (the policy's state stayed in the driver, and the
    results a restored member reports again are ignored), and the search ends with the same
    population file and summary as an unkilled one (the local engine's, which the Ray engine
    matches bit for bit: tests/engines/test_ray_population.py)."""
    path = tmp_path / "search.yaml"
    path.write_text(SEARCH)
    overrides = [f"search.strategy={strategy}", *ADAPTIVE]
    run_search(load_search_config(path, overrides), tmp_path / "unkilled", progress=False)
    out = tmp_path / "killed"
    with Killer(_every_trial_worker_after(out, 2, cluster.sessions)) as killer:
        result = subprocess.run(
            [sys.executable, "-m", "scalarize.cli", "search", str(path), *overrides,
             "--engine", "ray", "--address", cluster.address, "--out", str(out), "--quiet",
             "--cpus-per-run", "2"],
            capture_output=True, text=True, timeout=300, env=cluster.env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert killer.killed is not None and not _alive(killer.killed)
    assert _trial_failures(out / "ray") >= 1  # a member died, and Tune restored it
    _same_search(out, tmp_path / "unkilled")


def test_a_member_that_cannot_be_restored_stops_the_search_with_one_line(tmp_path, local_ray,
                                                                         monkeypatch):
    """A member whose worker dies more often than it may restart (here: at all) ends the
    search at once with one line naming the member, and a re-run is refused with the same
    advice (the policy's state was in the driver of the stopped search)."""
    from scalarize.engines import ray_population

    monkeypatch.setattr(ray_population, "MAX_FAILURES", 0)
    path = tmp_path / "search.yaml"
    path.write_text(SEARCH)
    config = load_search_config(path, ["search.strategy=pbt", *ADAPTIVE])
    out = tmp_path / "killed"
    with Killer(_every_trial_worker_after(out, 2)) as killer, \
            pytest.raises(ScalarizeError) as raised:
        run_search(config, out, engine="ray", progress=False)
    assert killer.killed is not None
    message = str(raised.value)
    assert "\n" not in message and "the worker process died" in message
    assert message.startswith(("member 0 of the Ray pbt search failed after 0 restart(s)",
                               "member 1 of", "members 0, 1 of"))
    assert "run the search again in an empty folder" in message
    with pytest.raises(ScalarizeError, match="cannot continue on Ray"):
        run_search(config, out, engine="ray", progress=False)
