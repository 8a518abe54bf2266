"""Engines: where the runs of a study and the members of a search train. One registry,
``ENGINES``, serves the ``--engine`` flag of ``sweep``, ``compare`` and ``search``:

- ``local``: in this process; planned runs one after another sharing the loaded data set, a
  search's members by :class:`~scalarize.search.population.LocalPopulation`, or by
  :class:`~scalarize.search.trials.TrialSearch` for a trial strategy (tpe, gp, cmaes, nsga2,
  asha);
- ``ray``: on a local Ray instance or a cluster (``address``); planned runs as Ray tasks (each
  loads its data and writes its run folder itself, so ``out`` must be storage every node can
  reach), a search's members as Ray Tune trials
  (:class:`~scalarize.search.ray_population.RayPopulation`), and tpe, gp, asha and hyperband
  through Ray Tune's OptunaSearch and ASHAScheduler
  (:class:`~scalarize.search.ray_trials.RayTrials`); nsga2 and cmaes are refused there in one
  line before anything is written.

Both resume: finished runs are skipped, unfinished ones continue from their checkpoints. An
engine only runs members and carries scores and checkpoints; what a search decides is the
shared :class:`~scalarize.search.decide.PopulationPolicy`, whichever engine runs it.

Example:
    >>> ENGINES.names()
    ['local', 'ray']
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import yaml
from pydantic import BaseModel
from tqdm.auto import tqdm

from scalarize.config import RunConfig
from scalarize.errors import ScalarizeError
from scalarize.launch import check_run, check_study, train_run
from scalarize.methods import refuse_ignored_weights
from scalarize.registry import Registry, session_entries
from scalarize.runs.records import Record, RunSummary, SearchSummary
from scalarize.runs.store import SearchDir, StudyDir
from scalarize.search.local_pool import check_jobs, resolve_jobs, run_side_by_side
from scalarize.search.ray_session import CONNECT_TIMEOUT, check_address, ray_session
from scalarize.search.spec import SearchConfig
from scalarize.search.strategies import STRATEGIES
from scalarize.search.trials import check_search
from scalarize.search.user_code import user_modules
from scalarize.training import load_data


class Engine(Protocol):
    """What an engine does: train planned runs, and run a population search."""

    def run(self, configs: Sequence[RunConfig], out: Path, progress: bool | None = None
            ) -> list[RunSummary]: ...

    def search(self, config: SearchConfig, folder: SearchDir, progress: bool | None = None
               ) -> SearchSummary: ...


ENGINES: Registry[Engine] = Registry("engine")


@ENGINES.register("local")
class LocalExecutor:
    """Runs on this machine: the planned runs of a sweep or comparison ``jobs`` side by side
    in worker processes (default: one per core for CPU runs, ``SCALARIZE_JOBS`` or ``--jobs``
    to change; :mod:`scalarize.search.local_pool`), or one after another in this process with
    ``jobs=1``; a search's members in this process."""

    runs_trials = True  # the trial strategies (scalarize.search.trials) run on this engine

    def __init__(self, jobs: int | None = None, **options: Any) -> None:
        if options:
            raise ScalarizeError(f"the local engine takes no options but jobs, got "
                                 f"{sorted(options)}")
        self.jobs = check_jobs(jobs)  # a bad value is refused before the study writes

    def run(self, configs: Sequence[RunConfig], out: Path, progress: bool | None = None
            ) -> list[RunSummary]:
        jobs = resolve_jobs(self.jobs, configs)
        if jobs > 1:
            with tqdm(total=len(configs), desc=f"runs ({jobs} side by side)", unit="run",
                      disable=progress is False) as bar:
                return run_side_by_side(configs, out, jobs, on_done=lambda: bar.update(1))
        cache: dict[str, Any] = {}
        summaries = []
        for config in tqdm(configs, desc="runs", unit="run", disable=progress is False):
            key = config.benchmark.model_dump_json()
            if key not in cache:
                cache = {key: load_data(config)}  # keep one data set in memory at a time
            summaries.append(train_run(config, out, resume=True, data=cache[key],
                                       progress=False if progress is False else None))
        return summaries

    def search(self, config: SearchConfig, folder: SearchDir, progress: bool | None = None
               ) -> SearchSummary:
        from scalarize.search.trials import TrialSearch, trial_strategy

        if trial_strategy(config) is not None:
            return TrialSearch(config, folder, progress).run()
        from scalarize.search.population import LocalPopulation

        return LocalPopulation(config, folder, progress).run()


RETRIES = 2  # times a planned run (a Ray task) runs again after its worker died


def _train_remote(config_yaml: str, out: str, entries: Any = None) -> RunSummary:
    """One planned run on a Ray worker; a retry after the worker died resumes its run folder
    from the last checkpoint (``resume=True``), as a re-run of the command does. ``entries``
    are the driver's registry session entries (:func:`~scalarize.registry.session_entries`,
    typed ``Any`` here: Ray's typing of ``remote`` mis-reads the nested mapping), put back here
    before the run loads its data."""
    from scalarize.config import RunConfig as Config
    from scalarize.launch import train_run as train
    from scalarize.registry import restore_session

    if entries:
        restore_session(entries)

    return train(Config.model_validate(yaml.safe_load(config_yaml)), out, resume=True,
                 progress=False)


@ENGINES.register("ray")
class RayExecutor:
    """Runs as Ray tasks (planned runs) or Ray Tune trials (search members),
    ``cpus_per_run`` / ``gpus_per_run`` each, on ``address``; an address where no cluster
    answers within ``connect_timeout`` seconds is refused with one line, before any folder is
    written. A run or member whose worker process dies (killed, out of memory, a lost node) is
    retried (twice), resuming from its last checkpoint. The user's modules that the configs
    name by import target travel to the workers (Ray's ``py_modules``), and so do the
    objects registered for this process with ``Registry.add`` (session entries)."""

    def __init__(self, address: str | None = None, cpus_per_run: float = 1.0,
                 gpus_per_run: float = 0.0, connect_timeout: float = CONNECT_TIMEOUT) -> None:
        try:
            import ray  # noqa: F401
        except ImportError:
            raise ScalarizeError(
                "the ray engine needs Ray: pip install -c constraints.txt 'scalarize[ray]'"
            ) from None
        if address is not None:
            check_address(address, connect_timeout)
        self.address, self.connect_timeout = address, connect_timeout
        self.cpus, self.gpus = cpus_per_run, gpus_per_run

    def run(self, configs: Sequence[RunConfig], out: Path, progress: bool | None = None
            ) -> list[RunSummary]:
        import ray
        from ray.exceptions import RayTaskError, WorkerCrashedError

        modules = user_modules(configs)
        with ray_session(self.address, self.connect_timeout, modules):
            # a dead worker's task runs again (its run resumes from its checkpoint); an
            # exception in the run is its answer, never retried
            remote = ray.remote(num_cpus=self.cpus, num_gpus=self.gpus, max_retries=RETRIES,
                                retry_exceptions=False)(_train_remote)
            out_abs = str(Path(out).resolve())
            entries = session_entries()
            shared = ray.put(entries) if entries else None  # pickled once for every run
            refs = [remote.remote(c.to_yaml(), out_abs, shared) for c in configs]
            order = {ref: i for i, ref in enumerate(refs)}
            results: list[RunSummary | None] = [None] * len(refs)
            pending = list(refs)
            with tqdm(total=len(refs), desc="runs (ray)", unit="run",
                      disable=progress is False) as bar:
                while pending:
                    done, pending = ray.wait(pending, num_returns=1)
                    for ref in done:
                        try:
                            results[order[ref]] = ray.get(ref)
                        except RayTaskError as exc:  # a worker's one line, not Ray's trace
                            if isinstance(exc.cause, ScalarizeError):
                                raise ScalarizeError(str(exc.cause)) from None
                            raise
                        except WorkerCrashedError:
                            raise ScalarizeError(
                                f"the Ray worker of run {order[ref] + 1} of {len(refs)} in "
                                f"{out} died {RETRIES + 1} times (killed, out of memory, or "
                                "its node lost); run the same command again to resume it"
                            ) from None
                        bar.update(1)
            return [r for r in results if r is not None]

    runs_trials = True  # tpe, gp, asha, hyperband (ray_trials.ray_refusal says which not)

    @staticmethod
    def refusal(config: SearchConfig) -> str | None:
        """Why this engine cannot run the search ``config`` (``None``: it can)."""
        from scalarize.search.ray_trials import ray_refusal

        return ray_refusal(config)

    def search(self, config: SearchConfig, folder: SearchDir, progress: bool | None = None
               ) -> SearchSummary:
        from scalarize.search.trials import trial_strategy

        if trial_strategy(config) is not None:
            from scalarize.search.ray_trials import RayTrials

            return RayTrials(config, folder, progress=progress, address=self.address,
                             cpus_per_member=self.cpus, gpus_per_member=self.gpus,
                             connect_timeout=self.connect_timeout).run()
        from scalarize.search.ray_population import RayPopulation

        return RayPopulation(config, folder, progress=progress, address=self.address,
                             cpus_per_member=self.cpus, gpus_per_member=self.gpus,
                             connect_timeout=self.connect_timeout).run()


def build_engine(name: str, options: dict[str, Any] | None = None) -> Engine:
    """The engine ``name`` built with its ``options`` (e.g. a Ray ``address``)."""
    factory = ENGINES.get(name)
    try:
        return factory(**(options or {}))
    except TypeError as exc:
        raise ScalarizeError(f"the {name} engine: bad options {sorted(options or {})} ({exc})"
                             ) from None


def run_planned(study: StudyDir, config: BaseModel, plan: Record,
                configs: Sequence[RunConfig], engine: str = "local",
                engine_options: dict[str, Any] | None = None, progress: bool | None = None
                ) -> list[RunSummary]:
    """Run ``configs`` into the study folder after recording the study there
    (:meth:`~scalarize.runs.StudyDir.record`: a different study already there is refused)."""
    runner = build_engine(engine, engine_options)  # a dead cluster address fails first
    check_study(configs)
    with study.lock():
        study.record(config, plan)
        summaries = runner.run(configs, study.path, progress=progress)
    tracking = getattr(config, "tracking", None)
    if tracking is not None and tracking.enabled:
        from scalarize.tracking import finish_study

        finish_study(study.path, tracking)
    return summaries


def run_search(config: SearchConfig, out: Path | str, engine: str = "local",
               engine_options: dict[str, Any] | None = None, progress: bool | None = None
               ) -> SearchSummary:
    """Run (or continue) the search ``config`` into ``out`` on the engine ``engine``; returns
    its summary (a finished search's stored one, without loading data or building members)."""
    folder = SearchDir(out)
    if folder.is_finished and folder.holds(config):
        _track(config, folder)
        return folder.read_summary()
    refuse_ignored_weights(config.method.name, config, "the search")
    strategy = STRATEGIES.get(config.search.strategy)
    if getattr(strategy, "trial_based", False) and not getattr(ENGINES.get(engine),
                                                               "runs_trials", False):
        raise ScalarizeError(f"the {config.search.strategy} strategy is not on the {engine} "
                             "engine yet; run it with --engine local")
    refusal = getattr(ENGINES.get(engine), "refusal", None)
    if refusal is not None and refusal(config) is not None:
        raise ScalarizeError(refusal(config))
    runner = build_engine(engine, engine_options)  # a dead cluster address fails first
    data = load_data(config.base())
    check_run(config.base(), data)
    check_search(config, data.objectives)
    with folder.lock():
        summary = runner.search(config, folder, progress=progress)
    _track(config, folder)
    return summary


def _track(config: SearchConfig, folder: SearchDir) -> None:
    """Log a search's members and exploits to its trackers, from its folder (idempotent)."""
    if config.tracking.enabled:
        from scalarize.tracking import track_search

        track_search(folder.path, config.tracking)


__all__ = ["ENGINES", "Engine", "LocalExecutor", "RayExecutor", "build_engine",
           "run_planned", "run_search"]
