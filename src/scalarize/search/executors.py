"""Executors run a list of independent training runs into one run store.

- ``local``: one after another in this process, sharing the loaded data set;
- ``ray``: as Ray tasks on a local Ray instance or on a cluster (``address``); each task loads
  its data and writes its run folder itself, so ``out`` must be storage every node can reach.

Both resume: finished runs are skipped, unfinished ones continue from their checkpoints.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel
from tqdm.auto import tqdm

from scalarize.config import RunConfig, dump_yaml, same_config
from scalarize.errors import ScalarizeError
from scalarize.registry import Registry
from scalarize.runs.store import atomic_write_text
from scalarize.training import load_data, train_run

Executor = Any
EXECUTORS: Registry[Executor] = Registry("engine")


@EXECUTORS.register("local")
class LocalExecutor:
    """Runs in this process, one after another."""

    def __init__(self, **options: Any) -> None:
        if options:
            raise ScalarizeError(f"the local engine takes no options, got {sorted(options)}")

    def run(self, configs: Sequence[RunConfig], out: Path, progress: bool | None = None
            ) -> list[dict[str, Any]]:
        cache: dict[str, Any] = {}
        summaries = []
        for config in tqdm(configs, desc="runs", unit="run", disable=progress is False):
            key = config.benchmark.model_dump_json()
            if key not in cache:
                cache = {key: load_data(config)}  # keep one data set in memory at a time
            summaries.append(train_run(config, out, resume=True, data=cache[key],
                                       progress=False if progress is False else None))
        return summaries


@contextmanager
def ray_session(address: str | None) -> Iterator[None]:
    """Ray connected to ``address`` (a new local instance when ``None``: never a stale cluster
    whose address file a ``ray start`` left behind) for the duration; shut down afterwards
    unless it was already running."""
    import ray

    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address or "local", include_dashboard=False, log_to_driver=False,
                 configure_logging=False)
    try:
        yield
    finally:
        if started_here:
            ray.shutdown()


def _train_remote(config_yaml: str, out: str) -> dict[str, Any]:
    from scalarize.config import RunConfig as Config
    from scalarize.training import train_run as train

    return train(Config.model_validate(yaml.safe_load(config_yaml)), out, resume=True,
                 progress=False)


@EXECUTORS.register("ray")
class RayExecutor:
    """Runs as Ray tasks, ``cpus_per_run`` / ``gpus_per_run`` each, on ``address``."""

    def __init__(self, address: str | None = None, cpus_per_run: float = 1.0,
                 gpus_per_run: float = 0.0) -> None:
        try:
            import ray  # noqa: F401
        except ImportError:
            raise ScalarizeError(
                "the ray engine needs Ray: pip install -c constraints.txt 'scalarize[ray]'"
            ) from None
        self.address = address
        self.cpus, self.gpus = cpus_per_run, gpus_per_run

    def run(self, configs: Sequence[RunConfig], out: Path, progress: bool | None = None
            ) -> list[dict[str, Any]]:
        import ray

        with ray_session(self.address):
            remote = ray.remote(num_cpus=self.cpus, num_gpus=self.gpus)(_train_remote)
            out_abs = str(Path(out).resolve())
            refs = [remote.remote(c.to_yaml(), out_abs) for c in configs]
            order = {ref: i for i, ref in enumerate(refs)}
            results: list[dict[str, Any] | None] = [None] * len(refs)
            pending = list(refs)
            with tqdm(total=len(refs), desc="runs (ray)", unit="run",
                      disable=progress is False) as bar:
                while pending:
                    done, pending = ray.wait(pending, num_returns=1)
                    for ref in done:
                        results[order[ref]] = ray.get(ref)
                        bar.update(1)
            return [r for r in results if r is not None]


def saved_study(out: Path, config_file: str, config: BaseModel, kind: str = "study") -> bool:
    """True when ``out`` holds the study ``config``; a different study there is an error.
    The saved file is validated with the same model before comparing, so a field added to the
    config since (with its default) does not make an old study look different."""
    saved = out / config_file
    if not saved.is_file():
        return False
    if not same_config(yaml.safe_load(saved.read_text()), config):
        raise ScalarizeError(f"{out} holds a different {kind}; re-run it with its own config "
                             f"({saved}) or choose another --out")
    return True


def record_study(out: Path, config_file: str, config: BaseModel, manifest: dict[str, Any],
                 kind: str = "study") -> bool:
    """Record a study in ``out``: its config as ``config_file`` and its plan as ``manifest``
    (``<config_file stem>.json``). Returns True when ``out`` already holds this study (to
    continue it); a different study already there is refused and left untouched."""
    if saved_study(out, config_file, config, kind):
        return True
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / f"{Path(config_file).stem}.json", json.dumps(manifest, indent=1)
                      + "\n")
    atomic_write_text(out / config_file, dump_yaml(config))
    return False


def run_planned(out: Path, config_file: str, config: BaseModel, manifest: dict[str, Any],
                configs: Sequence[RunConfig], engine: str = "local",
                engine_options: dict[str, Any] | None = None, progress: bool | None = None
                ) -> list[dict[str, Any]]:
    """Run ``configs`` into ``out`` after recording the study (see :func:`record_study`)."""
    executor = EXECUTORS.get(engine)(**(engine_options or {}))
    record_study(out, config_file, config, manifest)
    return executor.run(configs, out, progress=progress)
