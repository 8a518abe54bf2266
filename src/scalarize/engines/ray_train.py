"""One run on several Ray workers: Ray Train's ``TorchTrainer`` places ``workers`` processes
(one GPU each where the cluster has them), sets up their process group, and each trains its
slice of every global batch as under ``--nproc`` (:func:`~scalarize.launch.process.
train_process`). Rank 0 writes the run folder, which must be where this machine reads it back (a
local Ray, or a folder every node shares).

``scalarize train CONFIG --nproc N --engine ray [--address HOST:PORT]``; a sweep's or
comparison's runs with ``train.nproc: N`` on ``--engine ray`` go the same way (searches train
each member on one process).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from scalarize.config import RunConfig
from scalarize.engines.ray_session import CONNECT_TIMEOUT, ray_session
from scalarize.errors import ScalarizeError
from scalarize.runs.records import RunSummary
from scalarize.user_code import user_modules


def _loop(options: dict[str, Any]) -> None:
    """One Ray Train worker: its shard of the run (the process group is Ray's)."""
    import ray.train

    from scalarize.launch.process import train_process
    from scalarize.methods.shard import Shard

    context = ray.train.get_context()
    shard = Shard(context.get_world_rank(), context.get_world_size())
    try:
        train_process(options["config"], options["out"], shard, resume=options["resume"],
                      overwrite=options["overwrite"], progress=False)
    except ScalarizeError as exc:  # Ray wraps it: keep the line to raise it on the driver
        raise RuntimeError(f"{_REFUSED}{exc}") from None


_REFUSED = "scalarize refused: "


def ray_train_run(config: RunConfig, out: Path | str, workers: int, *, resume: bool = False,
                  overwrite: bool = False, address: str | None = None,
                  connect_timeout: float = CONNECT_TIMEOUT) -> RunSummary:
    """Train ``config`` into ``out/<run name>`` on ``workers`` Ray Train workers; return its
    summary (rank 0's, read back from the run folder)."""
    import ray
    import ray.train
    from ray.train.torch import TorchTrainer

    from scalarize.launch.train import default_run_name
    from scalarize.runs.store import RunDir
    from scalarize.training.parallel import check_layout
    from scalarize.training.plan import load_data

    check_layout(config, workers)
    out = Path(out).resolve()
    name = default_run_name(config, load_data(config).objectives)
    device = config.train.device
    with ray_session(address, connect_timeout, user_modules([config])), \
            tempfile.TemporaryDirectory() as storage:
        # "auto" trains on GPUs where the cluster has them, as the local --nproc path does
        gpu = device == "cuda" or (device == "auto"
                                   and ray.cluster_resources().get("GPU", 0) >= workers)
        trainer = TorchTrainer(
            _loop,
            train_loop_config={"config": config, "out": str(out), "resume": resume,
                               "overwrite": overwrite},
            scaling_config=ray.train.ScalingConfig(num_workers=workers, use_gpu=gpu),
            run_config=ray.train.RunConfig(name=name, storage_path=storage))
        try:
            trainer.fit()
        except Exception as exc:  # Ray's TrainingFailedError around the worker's
            text = str(exc)
            if _REFUSED in text:
                line = text.split(_REFUSED, 1)[1].splitlines()[0]
                raise ScalarizeError(line) from None
            lines = [line for line in text.splitlines() if line.strip()]
            raise ScalarizeError(f"the Ray Train run failed: {lines[-1] if lines else exc}"
                                 ) from None
    run = RunDir(out / name)  # the run folder, as the workers' rank 0 left it
    summary = run.read_summary()
    if summary is None:
        raise ScalarizeError(f"the Ray Train workers wrote no summary into {run.path}; on a "
                             "cluster, give --out a folder every node shares")
    return summary


__all__ = ["ray_train_run"]
