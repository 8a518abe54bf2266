"""A real two-node Ray cluster on loopback, for the tests that run searches through
``--address``: a head and a worker node started with ``ray start`` (2 CPUs each), in a temp
dir of their own, stopped afterwards."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from scalarize.launch.distributed import free_port


def _start_node(args: list[str], logs: Path, name: str, temp_dir: str, env: dict[str, str]
                ) -> subprocess.Popen:
    ray = shutil.which("ray", path=os.path.dirname(sys.executable))
    assert ray, "the ray command is missing: install the ray extra"
    log = open(logs / f"{name}.log", "w")  # noqa: SIM115 - closed with the process
    return subprocess.Popen([ray, "start", "--block", "--disable-usage-stats", "--num-cpus=2",
                             f"--temp-dir={temp_dir}", *args], stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True, env=env)


def stop_node(process: subprocess.Popen, temp_dir: str) -> None:
    """Kill a throwaway loopback node at once (SIGTERM made every teardown wait the 30 s it was
    given), then any process of its cluster Ray daemonised outside its process group, found by
    the cluster's temp dir in its command line."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    subprocess.run(["pkill", "-9", "-f", temp_dir], check=False)


def wait_for_nodes(address: str, count: int, env: dict[str, str] | None = None,
                   timeout: float = 90.0) -> list[str]:
    """Poll from a subprocess until ``count`` nodes are alive; their ids. A Ray client in this
    process would keep the loopback cluster's settings (no auth token) for later tests that
    start a local Ray."""
    probe = (f"import ray; ray.init(address={address!r}, include_dashboard=False, "
             "log_to_driver=False, configure_logging=False); "
             "print(' '.join(n['NodeID'] for n in ray.nodes() if n['Alive']))")
    deadline = time.monotonic() + timeout
    while True:
        result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                                timeout=timeout, env=env)
        lines = result.stdout.strip().splitlines()
        if result.returncode == 0 and lines and len(lines[-1].split()) >= count:
            return lines[-1].split()
        assert time.monotonic() < deadline, f"{count} Ray nodes did not come up"
        time.sleep(1.0)


@dataclass(frozen=True)
class Cluster:
    """A running loopback cluster: its address, the environment to run its clients in (no auth
    token to distribute between the processes of a loopback cluster) and the session ids of
    its nodes (their processes, workers included, are in those sessions), and their node ids."""

    address: str
    env: dict[str, str]
    sessions: tuple[int, ...]
    nodes: tuple[str, ...]  # their Ray node ids


@contextmanager
def loopback_cluster(logs: Path) -> Iterator[Cluster]:
    """A two-node :class:`Cluster` on loopback for the duration; the nodes' logs in ``logs``."""
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    port = free_port()
    address = f"127.0.0.1:{port}"
    # a temp dir of its own (short: Ray's socket paths must stay under 108 characters), so the
    # cluster's address file never makes a later local ray.init() look for this cluster
    temp_dir = tempfile.mkdtemp(prefix="ray", dir="/tmp")
    # a client-server port of its own too (Ray's default, 10001, is one per machine, and two
    # test modules may each have a cluster up at once)
    head = _start_node(["--head", f"--port={port}", f"--ray-client-server-port={free_port()}",
                        "--node-ip-address=127.0.0.1",
                        "--include-dashboard=false"], logs, "head", temp_dir, env)
    worker = None
    try:
        wait_for_nodes(address, 1, env)
        worker = _start_node([f"--address={address}", "--node-ip-address=127.0.0.1"],
                             logs, "worker", temp_dir, env)
        nodes = wait_for_nodes(address, 2, env)
        yield Cluster(address, env, (head.pid, worker.pid), tuple(nodes))
    finally:
        for process in (worker, head):
            if process is not None:
                stop_node(process, temp_dir)
        shutil.rmtree(temp_dir, ignore_errors=True)
    assert head.poll() is not None and (worker is None or worker.poll() is not None)
