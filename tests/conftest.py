"""Shared fixtures: an isolated data cache and tiny, fast configs."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import torch
import yaml

from scalarize.config import RunConfig, load_config

TINY = [
    "model.spec=vit-d1-w16-p8",
    "benchmark.options={n_train: 96, n_val: 32, n_test: 32, image_size: 16}",
    "train.epochs=2",
    "train.batch_size=32",
    "train.device=cpu",
]


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("SCALARIZE_CACHE", str(tmp_path_factory.mktemp("cache")))
    # studies run in this process (monkeypatches and callbacks reach them); the side-by-side
    # runs of the local engine are tested with an explicit jobs=2 (tests/launch/test_pool)
    monkeypatch.setenv("SCALARIZE_JOBS", "1")


def tiny_config(*overrides: str) -> RunConfig:
    """A config that trains in well under a second."""
    return load_config(None, [*TINY, *overrides])


# --- how the suite is split for speed (`make check`, `make test`) ------------------------------
# `slow`: what `make check` leaves out (Ray, killed processes, the headless browser, full-size
# presets, compiled training: inductor's first compile in a process costs 20 to 60 s here).
# `processes`: the tests that start Ray or start and kill processes. `make test` runs them after
# the others, also on two workers (beside the others, tried on 2026-12-07/08 with four workers, the
# suite took 12 to 13 min against 11: they are not mostly waiting, a Ray worker or a started
# process imports torch and Ray first, 4 CPU-s each; alone on one worker they kept 1.4 cores
# busy). Each module is one group (its module fixtures and caches are built once; a group per
# test, tried, was 8% slower in all), and the slow groups go first (no long one is started
# last, while the other worker has nothing left).
PROCESSES = "processes"
_RAY_FIXTURES = {"local_ray", "cluster", "ray_search_file"}
# fault tests that start, kill or lock out other processes (the others only run the CLI here)
_KILLING_MODULES = tuple(f"tests/faults/test_{name}.py" for name in (
    "code_execution", "data_safety", "hangs", "killed_workers", "locks", "untidy"))
_SLOW_MODULES = ("tests/faults/", "tests/report/test_page.py", "tests/test_presets.py",
                 "tests/test_demo.py", "tests/examples/", "tests/tracking/",
                 "tests/launch/test_pool.py", "tests/benchmarks/test_shapes_sharing.py",
                 "tests/analysis/test_search_many.py", "tests/methods/test_resume.py",
                 "tests/report/test_demo_report.py", "tests/training/test_compiling.py")
# modules sharing one session fixture (tests/report/conftest.py's demo run): one xdist group,
# so that the demo runs once, in one worker
_SHARED_GROUPS = {"tests/report/test_page.py": "tests/report/demo",
                  "tests/report/test_demo_report.py": "tests/report/demo"}
# whole trainings (seconds each) in modules that are otherwise fast
_SLOW_TESTS = ("tests/methods/test_methods.py::test_every_method_learns_beyond_chance",
               "tests/analysis/test_search_anytime.py::test_a_real_pbt_search",
               "tests/benchmarks/test_nyuv2.py::test_smoke_compare",
               "tests/benchmarks/test_cityscapes.py::test_smoke_compare",
               # train.compile=true
               "tests/launch/test_train.py::test_resume_equals_uninterrupted[mtl-true]",
               "tests/training/test_trainer.py::test_same_seed_same_numbers_and_other_seed_differs[true]",
               "tests/training/test_per_task.py::test_an_mmoe_trains_compiled_as_it_does_eagerly")

# Ray starts its workers at nice 15 (its `worker_niceness`): beside busy pytest-xdist workers
# (nice 0) they got almost no CPU, and a Ray search of 6 s took 164 s (two busy loops beside
# it, 2026-12-07). The tests' Ray instances, and the clusters they start, inherit this.
os.environ.setdefault("RAY_worker_niceness", "0")
# One torch (OpenMP) thread in every process the tests start (CLI runs, Ray workers, spawned
# ranks) unless a config or the code says how many: two workers already fill the two cores. The
# Ray and killed-process tests on two workers: 335 to 388 s with it (three passes), 380 s
# without (2026-12-08). A test that sets threads still gets them.
os.environ.setdefault("OMP_NUM_THREADS", "1")


def _uses_ray(item: pytest.Item) -> bool:
    words = set(re.split(r"[^a-z0-9]+", item.nodeid.lower()))
    return "ray" in words or bool(_RAY_FIXTURES & set(getattr(item, "fixturenames", ())))


def pytest_configure(config: pytest.Config) -> None:
    """One torch thread in each pytest-xdist worker: the workers already fill the cores, and two
    workers of two threads each on two cores wait on each other's threads."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        torch.set_num_threads(1)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the slow tests, give each test its pytest-xdist group (see above) and order the
    groups: those holding Ray or killed-process tests, then the other slow ones, then the rest,
    each in collection order (`make test` keeps it with --no-loadscope-reorder)."""
    root = Path(str(config.rootpath))
    rank: dict[str, int] = {}  # group -> 0 (Ray or killed processes), 1 (slow) or 2
    first: dict[str, int] = {}  # group -> the order it was first met in
    groups: dict[str, str] = {}  # test -> its group
    for item in items:
        path = Path(str(item.path)).resolve().relative_to(root).as_posix()
        # a test may say it itself: those that spawn processes (tests/launch/test_distributed)
        processes = (_uses_ray(item) or path.startswith(_KILLING_MODULES)
                     or item.get_closest_marker(PROCESSES) is not None)
        test = f"{path}::{item.name}"
        if processes:
            item.add_marker(pytest.mark.processes)
        slow = processes or path.startswith(_SLOW_MODULES) or test.startswith(_SLOW_TESTS)
        if slow:
            item.add_marker(pytest.mark.slow)
        group = groups[item.nodeid] = _SHARED_GROUPS.get(path, path)
        item.add_marker(pytest.mark.xdist_group(group))
        rank[group] = min(rank.get(group, 2), 0 if processes else 1 if slow else 2)
        first.setdefault(group, len(first))
    items.sort(key=lambda item: (rank[groups[item.nodeid]], first[groups[item.nodeid]]))


def tiny_study(depth: list[int] | None = None, width: list[int] | None = None,
               step: float = 0.5, seeds: list[int] | None = None,
               **sections: dict[str, object]) -> str:
    """The tests' tiny study (shapes, colour and count, 64 training images, ViTs of depth
    ``depth`` × width ``width``, a weight grid of ``step``) as YAML; each keyword section
    (``train=``, ``probes=``, ``sweep=``, ...) updates that section's keys.

    Example:
        >>> import yaml
        >>> yaml.safe_load(tiny_study(width=[8], train={"epochs": 2}))["train"]["epochs"]
        2
    """
    study: dict[str, dict[str, object]] = {
        "benchmark": {"name": "shapes", "tasks": ["colour", "count"],
                      "options": {"n_train": 64, "n_val": 16, "n_test": 16, "image_size": 16}},
        "train": {"epochs": 1, "batch_size": 32, "device": "cpu"},
        "sweep": {"capacities": {"template": "vit-d{depth}-w{width}-p8",
                                 "axes": {"depth": depth or [1], "width": width or [8, 16]}},
                  "weights": {"step": step}, "seeds": [0, 1] if seeds is None else seeds},
    }
    for name, keys in sections.items():
        study[name] = {**study.get(name, {}), **keys}
    return yaml.safe_dump(study, sort_keys=False, default_flow_style=None)


def tiny_compare(methods: list[object], seeds: list[int]) -> str:
    """The tests' tiny comparison (the tiny study's data, one small ViT, one epoch) of
    ``methods`` over ``seeds``, as YAML."""
    study = yaml.safe_load(tiny_study())
    del study["sweep"]
    study["model"] = {"spec": "vit-d1-w8-p8"}
    study["compare"] = {"methods": methods, "seeds": seeds}
    return yaml.safe_dump(study, sort_keys=False, default_flow_style=None)

