"""The Ray Tune engine: same store as the local engine, and a real two-node cluster on loopback.

Ray is installed by ``make test`` (the ``ray`` extra); these tests fail, not skip, without it.
"""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from scalarize.analysis.search import population_frame
from scalarize.runs import SearchDir, SearchSummary
from scalarize.search.spec import load_search_config
from scalarize.studies.replay import replay
from scalarize.studies.runner import run_search


def _events(folder):
    """``population.jsonl`` without what differs between engines by nature (time, node)."""
    lines = [e.dump() for e in SearchDir(folder).read_events()]
    return [{k: v for k, v in line.items() if k not in ("seconds", "node")} for line in lines]


def _same_search(local: SearchSummary, ray: SearchSummary) -> None:
    """Everything but the engine's name and the times."""
    skip = {"engine", "seconds", "train_seconds", "members"}
    assert ray.model_dump(exclude=skip) == local.model_dump(exclude=skip)
    for a, b in zip(local.members, ray.members, strict=True):
        assert a.model_dump(exclude={"train_seconds"}) == b.model_dump(exclude={"train_seconds"})


@pytest.mark.parametrize("strategy,overrides", [
    ("pbt", []), ("pb2", []), ("mopbt", []),
    # 6 members at a learning rate where some diverge (frozen, then replaced, or diverged at
    # the end: on this CPU at least; the equality holds either way)
    ("pbt", ["train.lr=135", "search.population=6"]),
], ids=["pbt", "pb2", "mopbt", "pbt-diverging"])
def test_ray_engine_decides_and_trains_exactly_as_the_local_engine(ray_search_file, tmp_path,
                                                                  local_ray, strategy,
                                                                  overrides):
    """The same config and seed on both engines: the same population.jsonl (every epoch's
    weights and held-out scores, every exploit with its parent and explored weights) and the
    same summary, to the last bit. It holds because Ray only transports: each trial runs the
    shared member runner (its own torch RNG state, restored with its checkpoint, weights never
    normalised twice), and the decisions are the shared policy's, fed the members' scores in
    member order whatever order Ray's results come in. One torch thread per member on both, so
    that the float reductions are the same; pb2 runs its Gaussian process from the second
    decision on (with three or more observations), mopbt ranks by Pareto front."""
    config = load_search_config(ray_search_file, [f"search.strategy={strategy}", *overrides])
    local = run_search(config, tmp_path / "local", progress=False)
    ray = run_search(config, tmp_path / "ray", engine="ray", progress=False)
    assert ray.engine == "ray" and ray.member_epochs == 4 * config.search.population
    assert _events(tmp_path / "ray") == _events(tmp_path / "local")
    assert any(e["event"] == "exploit" for e in _events(tmp_path / "ray"))
    _same_search(local, ray)
    assert population_frame(tmp_path / "ray").node.notna().all()


def test_a_finished_ray_search_is_not_run_again_and_replays(ray_search_file, tmp_path, local_ray):
    config = load_search_config(ray_search_file, ["search.strategy=random", "train.epochs=2"])
    first = run_search(config, tmp_path / "ray", engine="ray", progress=False)
    assert all(len(m.schedule) == 1 for m in first.members)
    again = run_search(config, tmp_path / "ray", engine="ray", progress=False)
    assert again.seconds == first.seconds
    replayed = replay(tmp_path / "ray", "best", progress=False)
    assert replayed.run == f"replay-m{first.best_member:02d}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_node(args: list[str], tmp_path: Path, name: str, temp_dir: str
                ) -> subprocess.Popen:
    ray = shutil.which("ray", path=os.path.dirname(sys.executable))
    assert ray, "the ray command is missing: install the ray extra"
    log = open(tmp_path / f"{name}.log", "w")  # noqa: SIM115 - closed with the process
    return subprocess.Popen([ray, "start", "--block", "--disable-usage-stats", "--num-cpus=2",
                             f"--temp-dir={temp_dir}", *args], stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)


def _stop(process: subprocess.Popen, temp_dir: str) -> None:
    """Kill a throwaway loopback node at once (SIGTERM made every teardown wait the 30 s it was
    given), then any process of its cluster Ray daemonised outside its process group, found by
    the cluster's temp dir in its command line."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    subprocess.run(["pkill", "-9", "-f", temp_dir], check=False)


def _wait_for_nodes(address: str, count: int, timeout: float = 90.0) -> None:
    """Poll from a subprocess: a Ray client in this process would keep the loopback cluster's
    settings (no auth token) for later tests that start a local Ray."""
    probe = (f"import ray; ray.init(address={address!r}, include_dashboard=False, "
             "log_to_driver=False, configure_logging=False); "
             "print(sum(n['Alive'] for n in ray.nodes()))")
    deadline = time.monotonic() + timeout
    while True:
        result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                                timeout=timeout)
        lines = result.stdout.strip().splitlines()
        if result.returncode == 0 and lines and int(lines[-1]) >= count:
            return
        assert time.monotonic() < deadline, f"{count} Ray nodes did not come up"
        time.sleep(1.0)


def test_pbt_on_a_two_node_cluster_through_address(ray_search_file, tmp_path, monkeypatch):
    # a loopback cluster of this test only: no token to distribute between its processes
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    port = _free_port()
    address = f"127.0.0.1:{port}"
    # a temp dir of its own (short: Ray's socket paths must stay under 108 characters), so the
    # cluster's address file never makes a later local ray.init() look for this cluster
    temp_dir = tempfile.mkdtemp(prefix="ray", dir="/tmp")
    head = _start_node(["--head", f"--port={port}", "--node-ip-address=127.0.0.1",
                        "--include-dashboard=false"], tmp_path, "head", temp_dir)
    worker = None
    try:
        _wait_for_nodes(address, 1)
        worker = _start_node([f"--address={address}", "--node-ip-address=127.0.0.1"],
                             tmp_path, "worker", temp_dir)
        _wait_for_nodes(address, 2)
        result = subprocess.run(
            [sys.executable, "-m", "scalarize.cli", "search", str(ray_search_file), "--engine",
             "ray", "--address", address, "--out", str(tmp_path / "cluster"), "--quiet",
             "--cpus-per-run", "2"],  # a whole node per member: two run at once, one per node
            capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-2000:]
        frame = population_frame(tmp_path / "cluster")
        assert frame.node.nunique() == 2, "trials did not run on both nodes"
        assert sorted(frame.groupby("member").epoch.max()) == [4, 4, 4, 4]
    finally:
        for process in (worker, head):
            if process is not None:
                _stop(process, temp_dir)
        shutil.rmtree(temp_dir, ignore_errors=True)
    assert head.poll() is not None and (worker is None or worker.poll() is not None)
