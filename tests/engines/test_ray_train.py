"""One run on two Ray Train workers (``scalarize train --nproc 2 --engine ray``) is the run on
two spawned processes: the same metrics, the same test scores, rank 0's folder."""

from __future__ import annotations

import json
from pathlib import Path

from scalarize.config import load_config, with_nproc
from scalarize.engines.executors import RayExecutor
from scalarize.engines.ray_session import ray_session
from scalarize.engines.ray_train import ray_train_run
from scalarize.launch.distributed import spawn_run

TINY = ["model.spec=vit-d1-w16-p8", "method.name=upgrad", "train.epochs=1",
        "benchmark.options={n_train: 32, n_val: 8, n_test: 8, image_size: 16, cache: false}",
        "train.batch_size=16", "train.warmup_epochs=0", "train.device=cpu", "train.threads=1"]


def _metrics(out: Path) -> list[dict]:
    (run,) = out.iterdir()
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in row.items() if not k.endswith("seconds")} for row in rows]


def test_a_run_on_two_ray_train_workers_is_the_run_on_two_processes(tmp_path):
    config = load_config(None, TINY)
    with ray_session(None):  # one Ray for both paths
        on_ray = ray_train_run(config, tmp_path / "ray", 2)
        # a sweep's or comparison's run of train.nproc=2 on the ray engine: Ray Train too
        (planned,) = RayExecutor().run([with_nproc(config, 2)], tmp_path / "planned",
                                       progress=False)
    spawned = spawn_run(config, tmp_path / "spawned", 2)
    assert spawned is not None
    assert on_ray.world_size == planned.world_size == 2
    assert on_ray.test == spawned.test == planned.test
    assert _metrics(tmp_path / "ray") == _metrics(tmp_path / "spawned")
    assert _metrics(tmp_path / "planned") == _metrics(tmp_path / "spawned")
