"""The user's own code on Ray workers: modules named by import target travel as Ray
``py_modules``, objects registered with ``Registry.add`` (session entries) as task and trial
arguments.

The end-to-end tests run on a loopback two-node cluster whose nodes start in a folder of their
own, without the user's project on ``PYTHONPATH``. The driver finds the project on its
``PYTHONPATH`` and runs from yet another folder: Ray puts the driver's working directory on
every worker's ``sys.path`` (it assumes the same folders on every machine), which on one
machine would import the project from there and hide whether ``py_modules`` reached the
workers. Each user module logs, when imported, the file it was imported from and the Ray node
it runs on, so the tests see that workers on both nodes imported Ray's uploaded copy.

Ray is installed by ``make test`` (the ``ray`` extra); these tests fail, not skip, without it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from scalarize.config import RunConfig
from scalarize.engines.ray_session import runtime_env
from scalarize.errors import ScalarizeError
from scalarize.launch.distributed import free_port
from tests.engines.cluster import stop_node as _stop
from tests.engines.cluster import wait_for_nodes as _wait_for_nodes
from tests.search.conftest import search_yaml

# -- shipping to Ray (the module finder: tests/test_user_code.py) ------------------------


def test_runtime_env_adds_py_modules_to_what_the_user_gives_ray(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAY_JOB_CONFIG_JSON_ENV_VAR", raising=False)
    monkeypatch.setenv("RAY_RUNTIME_ENV", json.dumps({"pip": ["rich"], "py_modules": ["a.zip"]}))
    assert runtime_env(None, []) is None
    assert runtime_env("10.0.0.5:6379", ["/p/m.py"]) == {"py_modules": ["/p/m.py"]}
    # a Ray Client connection reads RAY_RUNTIME_ENV only when ray.init is given none
    assert runtime_env("ray://10.0.0.5", ["/p/m.py"]) == {"pip": ["rich"],
                                                          "py_modules": ["a.zip", "/p/m.py"]}
    # ray job submit: Ray merges the job's runtime env with the driver's
    monkeypatch.setenv("RAY_JOB_CONFIG_JSON_ENV_VAR", json.dumps(
        {"runtime_env": {"working_dir": "gcs://w.zip", "py_modules": ["gcs://x.zip"]}}))
    assert runtime_env("auto", ["/p/pkg"]) == {"py_modules": ["gcs://x.zip", "/p/pkg"]}
    monkeypatch.setenv("RAY_RUNTIME_ENV", "[1]")
    with pytest.raises(ScalarizeError, match="RAY_RUNTIME_ENV is not a JSON object"):
        monkeypatch.delenv("RAY_JOB_CONFIG_JSON_ENV_VAR")
        runtime_env("ray://h:1", ["/p/m.py"])


# -- on a two-node cluster -----------------------------------------------------------------

LOGGED = '''
import os

import ray


def _log():
    node = ray.get_runtime_context().get_node_id() if ray.is_initialized() else "driver"
    with open({log!r}, "a") as out:
        out.write(f"{{node}} {{os.path.abspath(__file__)}}\\n")


_log()
'''

MYDATA = '''
import time

from scalarize.benchmarks import load_benchmark


_PASSED = []


def _on_both_nodes():
    """A barrier: a Ray worker waits until workers on both nodes have imported these modules
    (once, at most 120 s), so that the runs are spread over both nodes however loaded the
    machine is (else a run finished before the other node's worker started can leave its
    worker free for the next run, which Ray Tune then reuses)."""
    if _PASSED or not ray.is_initialized() or (
            ray.get_runtime_context().worker.mode != ray.WORKER_MODE):
        return  # passed, or the driver
    _PASSED.append(True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with open({log!r}) as lines:
            if len({{line.split(" ", 1)[0] for line in lines}} - {{"driver"}}) >= 2:
                return
        time.sleep(0.1)


def load(view="mtl", tasks=None, seed=0, **options):
    _on_both_nodes()
    return load_benchmark("shapes", view=view, tasks=tasks, seed=seed, cache=False, **options)
'''

MYMODELS = '''
from torch import nn


class Net(nn.Module):
    def __init__(self, channels, width):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(channels, width, 3, padding=1), nn.ReLU())
        self.out_features = width

    def forward(self, x):
        return self.body(x).mean(dim=(2, 3))


def build(image_shape, width=8):
    return Net(image_shape[0], width)
'''

OPTIONS = {"n_train": 64, "n_val": 16, "n_test": 16, "image_size": 16}
TRAIN = {"epochs": 1, "batch_size": 32, "device": "cpu", "threads": 1}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A loopback two-node cluster (two CPUs a node) started in a folder without the user's
    code, with no ``PYTHONPATH``; yields the environment its drivers run with."""
    home = tmp_path_factory.mktemp("nodes")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "RAY_ADDRESS")}
    env["RAY_AUTH_MODE"] = "disabled"  # a loopback cluster: no token between its processes
    port = free_port()
    address = f"127.0.0.1:{port}"
    temp_dir = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths
    ray = str(Path(sys.executable).parent / "ray")
    nodes: list[subprocess.Popen[bytes]] = []

    def start(args: list[str], name: str) -> None:
        log = open(home / f"{name}.log", "w")  # noqa: SIM115 - closed with the process
        nodes.append(subprocess.Popen(
            [ray, "start", "--block", "--disable-usage-stats", "--num-cpus=2",
             f"--temp-dir={temp_dir}", "--node-ip-address=127.0.0.1", *args],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=home, env=env))

    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("RAY_AUTH_MODE", "disabled")
            # ports of its own (tests/engines/cluster.py says why)
            start(["--head", f"--port={port}", f"--ray-client-server-port={free_port()}",
                   "--include-dashboard=false"], "head")
            _wait_for_nodes(address, 1)
            start([f"--address={address}"], "worker")
            _wait_for_nodes(address, 2)
        yield {**env, "SCALARIZE_TEST_ADDRESS": address, "SCALARIZE_TEST_RAY_TEMP": temp_dir}
    finally:
        for process in reversed(nodes):
            _stop(process, temp_dir)
        import shutil

        shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.fixture()
def user_project(tmp_path: Path) -> tuple[Path, Path]:
    """The user's project folder (``mydata.py``, ``mymodels.py``, each logging where it was
    imported) and the log."""
    folder = tmp_path / "project"
    folder.mkdir()
    log = tmp_path / "imports.log"
    for name, code in (("mydata", MYDATA), ("mymodels", MYMODELS)):
        (folder / f"{name}.py").write_text((LOGGED + code).format(log=str(log)))
    return folder, log


def _driver(args: list[str], env: dict[str, str], cwd: Path, project: Path | None = None
            ) -> None:
    """Run a driver (a Python command) from ``cwd``, with ``project`` on its PYTHONPATH."""
    run_env = {**env, **({"PYTHONPATH": str(project)} if project else {})}
    result = subprocess.run([sys.executable, *args], cwd=cwd, env=run_env, capture_output=True,
                            text=True, timeout=400)
    assert result.returncode == 0, result.stderr[-3000:]


def _imports(log: Path, temp_dir: str) -> dict[str, set[str]]:
    """Node -> the folders each user module was imported from there."""
    found: dict[str, set[str]] = {}
    for line in log.read_text().splitlines():
        node, path = line.split(" ", 1)
        found.setdefault(node, set()).add(str(Path(path).parent))
    assert temp_dir  # the uploaded copies live in the cluster's own temp dir
    return found


def _only_uploaded_copies(log: Path, project: Path, temp_dir: str) -> None:
    """The driver imported the project's files; workers on both nodes Ray's uploaded copies
    (``runtime_resources/py_modules_files`` in the cluster's temp dir), never the project."""
    imports = _imports(log, temp_dir)
    assert imports.pop("driver") == {str(project)}
    assert len(imports) == 2, f"the user's modules were imported on {len(imports)} node(s)"
    for folders in imports.values():
        assert all(f.startswith(temp_dir) and "py_modules_files" in f for f in folders), folders


def test_a_sweep_on_the_users_code_runs_on_both_nodes(cluster, user_project, tmp_path):
    project, log = user_project
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    config = tmp_path / "sweep.yaml"
    config.write_text(yaml.safe_dump({
        "benchmark": {"name": "mydata:load", "tasks": ["colour", "count"], "options": OPTIONS},
        "model": {"spec": "mymodels:build", "options": {"width": 4}},
        "train": TRAIN,
        "sweep": {"capacities": {"options": {"width": [4, 8]}},
                  "weights": {"include_uniform": True}, "single_task": False}}))
    out = tmp_path / "sweep"
    _driver(["-m", "scalarize.cli", "sweep", str(config), "--engine", "ray", "--address",
             cluster["SCALARIZE_TEST_ADDRESS"], "--cpus-per-run", "2", "--out", str(out),
             "--quiet"], cluster, elsewhere, project)
    summaries = sorted(out.glob("*/summary.json"))
    assert [s.parent.name for s in summaries] == ["load-mtl-build-width4-uniform-static-s0",
                                                  "load-mtl-build-width8-uniform-static-s0"]
    _only_uploaded_copies(log, project, cluster["SCALARIZE_TEST_RAY_TEMP"])


def test_a_pbt_search_on_the_users_code_runs_on_both_nodes(cluster, user_project, tmp_path):
    from scalarize.analysis.search import population_frame

    project, log = user_project
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    tree = yaml.safe_load(search_yaml(**{**TRAIN, "epochs": 2}))
    tree["benchmark"] = {"name": "mydata:load", "tasks": ["shape", "count"], "options": OPTIONS}
    tree["model"] = {"spec": "mymodels:build"}
    tree["search"].update(population=2, quantile=0.5)
    config = tmp_path / "search.yaml"
    config.write_text(yaml.safe_dump(tree))
    out = tmp_path / "search"
    _driver(["-m", "scalarize.cli", "search", str(config), "--engine", "ray", "--address",
             cluster["SCALARIZE_TEST_ADDRESS"], "--cpus-per-run", "2", "--out", str(out),
             "--quiet"], cluster, elsewhere, project)
    assert (out / "summary.json").is_file()
    assert sorted(population_frame(out).groupby("member").epoch.max()) == [2, 2]
    _only_uploaded_copies(log, project, cluster["SCALARIZE_TEST_RAY_TEMP"])


SCRIPT = '''
import sys

from scalarize.benchmarks import BENCHMARKS, load_benchmark
from scalarize.studies.sweep import SweepConfig, run_sweep


def loader(view="mtl", tasks=None, seed=0, **options):
    """A benchmark of the script itself: Ray ships it by value with the session entries."""
    return load_benchmark("shapes", view=view, tasks=tasks, seed=seed, cache=False, **options)


if __name__ == "__main__":
    BENCHMARKS.add("mine", loader)
    config = SweepConfig.model_validate({{
        "benchmark": {{"name": "mine", "tasks": ["colour", "count"], "options": {options!r}}},
        "model": {{"spec": "vit-d1-w16-p8"}}, "train": {train!r},
        "sweep": {{"capacities": ["vit-d1-w16-p8"], "weights": {{"points": [[0.25, 0.75]]}},
                   "single_task": False}}}})
    plan = run_sweep(config, sys.argv[2], engine="ray",
                     engine_options={{"address": sys.argv[1], "cpus_per_run": 2}},
                     progress=False)
    print(len(plan))
'''


def test_a_session_entry_of_a_script_reaches_the_workers(cluster, tmp_path):
    script = tmp_path / "driver.py"
    script.write_text(SCRIPT.format(options=OPTIONS, train=TRAIN))
    out = tmp_path / "runs"
    _driver([str(script), cluster["SCALARIZE_TEST_ADDRESS"], str(out)], cluster, tmp_path)
    names = sorted(s.parent.name for s in out.glob("*/summary.json"))
    assert len(names) == 2 and all(n.startswith("mine-mtl-") for n in names), names


def test_a_workers_one_line_error_stays_one_line(tmp_path):
    """A run whose worker cannot import the user's module says so in one line (here a module
    that is nowhere, on a local Ray), not with Ray's remote traceback."""
    from scalarize.engines.executors import RayExecutor

    config = RunConfig.model_validate({"benchmark": {"name": "nosuchmodule_xyz:load"}})
    with pytest.raises(ScalarizeError, match="no module named 'nosuchmodule_xyz'") as info:
        RayExecutor().run([config], tmp_path, progress=False)
    assert "\n" not in str(info.value) and "ray::" not in str(info.value)
