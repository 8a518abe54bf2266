"""The Ray Tune engine: same store as the local engine, and a real two-node cluster on loopback.

Ray is installed by ``make test`` (the ``ray`` extra); these tests fail, not skip, without it.
"""

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

from scalarize.search.population import load_search_config, run_search
from scalarize.search.replay import replay
from scalarize.search.results import population_frame, read_population
from tests.search.conftest import search_yaml


@pytest.fixture()
def search_file(tmp_path):
    """The shared tiny search, one torch thread per member (Ray runs members side by side)."""
    path = tmp_path / "search.yaml"
    path.write_text(search_yaml(threads=1))
    return path


def test_ray_engine_writes_the_local_engines_store(search_file, tmp_path):
    config = load_search_config(search_file)
    local = run_search(config, tmp_path / "local", progress=False)
    ray_summary = run_search(config, tmp_path / "ray", engine="ray", progress=False)
    assert set(ray_summary) == set(local)
    assert ray_summary["engine"] == "ray" and ray_summary["member_epochs"] == 16
    frame = population_frame(tmp_path / "ray")
    assert sorted(frame.groupby("member").epoch.max()) == [4, 4, 4, 4]
    events = {r["event"] for r in read_population(tmp_path / "ray")}
    assert "exploit" in events
    for member in ray_summary["members"]:
        assert len(member["schedule"]) == len(member["lineage"]) + 1
        for _, weights in member["schedule"]:
            assert sum(weights) == pytest.approx(1.0)
    # the same search, finished, is not run again; its best member replays
    again = run_search(config, tmp_path / "ray", engine="ray", progress=False)
    assert again["seconds"] == ray_summary["seconds"]
    replayed = replay(tmp_path / "ray", "best", progress=False)
    assert replayed["run"] == f"replay-m{ray_summary['best_member']:02d}"


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


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


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


def test_pbt_on_a_two_node_cluster_through_address(search_file, tmp_path, monkeypatch):
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
            [sys.executable, "-m", "scalarize.cli", "search", str(search_file), "--engine",
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
                _stop(process)
        shutil.rmtree(temp_dir, ignore_errors=True)
    assert head.poll() is not None and (worker is None or worker.poll() is not None)
