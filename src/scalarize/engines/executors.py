"""Engines: where the runs of a study and the members of a search train. One registry,
``ENGINES``, serves the ``--engine`` flag of ``sweep``, ``compare`` and ``search``:

- ``local``: this machine; planned runs by :func:`~scalarize.launch.pool.train_planned`, a
  search's members in this process (:class:`~scalarize.engines.population.LocalPopulation`,
  or :func:`~scalarize.engines.trials.local_trials` for a trial strategy);
- ``ray``: a local Ray instance or a cluster (``address``); planned runs as Ray tasks (each
  loads its data and writes its run folder itself, so ``out`` must be storage every node can
  reach), a search's members as Ray Tune trials
  (:class:`~scalarize.engines.ray_population.RayPopulation`, or
  :class:`~scalarize.engines.ray_trials.RayTrials` for tpe, gp, asha and hyperband; nsga2 and
  cmaes are refused there in one line before anything is written).

Both resume: finished runs are skipped, unfinished ones continue from their checkpoints. An
engine only runs members and carries scores and checkpoints; what a search decides is the
decisions' (:mod:`scalarize.search`), whichever engine runs it.

Example:
    >>> ENGINES.names()
    ['local', 'ray']
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import yaml
from tqdm.auto import tqdm

from scalarize.config import RunConfig
from scalarize.engines.population import LocalPopulation
from scalarize.engines.ray_session import CONNECT_TIMEOUT, check_address, ray_session
from scalarize.engines.trials import local_trials
from scalarize.errors import ScalarizeError
from scalarize.launch.pool import check_jobs, train_planned
from scalarize.registry import Registry, session_entries
from scalarize.runs.records import RunSummary, SearchSummary
from scalarize.runs.store import SearchDir
from scalarize.search.resolve import ResolvedStrategy
from scalarize.search.spec import SearchConfig
from scalarize.user_code import user_modules


class Engine(ABC):
    """What an engine does: train planned runs (:meth:`run`) and run a search (:meth:`search`).

    Its capabilities are stated on the class, so that a search is refused before the engine
    is built (a dead cluster address fails after the refusal): :attr:`runs_trials` (whether
    the trial strategies run on it) and :meth:`refusal` (why it cannot run a search, or
    ``None``). A registered factory that is not an :class:`Engine` states nothing: it is taken
    to run population searches only (:func:`engine_class`)."""

    runs_trials: ClassVar[bool] = False

    @classmethod
    def refusal(cls, engine: str, strategy: ResolvedStrategy, config: SearchConfig
                ) -> str | None:
        """Why the engine registered as ``engine`` cannot run the search ``config`` of the
        resolved ``strategy`` (``None``: it can)."""
        if config.train.nproc > 1:
            return nproc_refusal(config)
        if strategy.trial_based and not cls.runs_trials:
            return (f"the {config.search.strategy} strategy is not on the {engine} engine yet; "
                    "run it with --engine local")
        return None

    @abstractmethod
    def run(self, configs: Sequence[RunConfig], out: Path, progress: bool | None = None
            ) -> list[RunSummary]: ...

    @abstractmethod
    def search(self, config: SearchConfig, strategy: ResolvedStrategy, folder: SearchDir,
               progress: bool | None = None) -> SearchSummary:
        """Run (or continue) the search ``config`` into ``folder``; ``strategy`` is its
        strategy, resolved once by the command (the engine asks it, never the registry)."""


ENGINES: Registry[Engine] = Registry("engine")


def nproc_refusal(config: SearchConfig) -> str:
    """Why a search does not train its members on several processes: a member trains in the
    search's own process or trial (its checkpoints and scores go through the search), which
    spawns no process group."""
    return (f"train.nproc={config.train.nproc}: a search trains each member in one process "
            "(the search's, or its trial's); set train.nproc=1 for searches (sweeps and "
            "comparisons train their runs on several)")


@ENGINES.register("local")
class LocalExecutor(Engine):
    """Runs on this machine: the planned runs of a sweep or comparison ``jobs`` side by side
    in worker processes (default: one per core for CPU runs, ``SCALARIZE_JOBS`` or ``--jobs``
    to change; :mod:`scalarize.launch.pool`), or one after another in this process with
    ``jobs=1``; a search's members in this process."""

    runs_trials = True  # the trial strategies (scalarize.engines.trials) run on this engine

    def __init__(self, jobs: int | None = None, **options: Any) -> None:
        if options:
            raise ScalarizeError(f"the local engine takes no options but jobs, got "
                                 f"{sorted(options)}")
        self.jobs = check_jobs(jobs)  # a bad value is refused before the study writes

    def run(self, configs: Sequence[RunConfig], out: Path, progress: bool | None = None
            ) -> list[RunSummary]:
        return train_planned(configs, out, self.jobs, progress)

    def search(self, config: SearchConfig, strategy: ResolvedStrategy, folder: SearchDir,
               progress: bool | None = None) -> SearchSummary:
        if strategy.trial_based:
            return local_trials(config, strategy, folder, progress).run()
        return LocalPopulation(config, strategy, folder, progress).run()


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
class RayExecutor(Engine):
    """Runs as Ray tasks (planned runs) or Ray Tune trials (search members), ``cpus_per_run`` /
    ``gpus_per_run`` each, on ``address`` (a planned run of ``train.nproc`` > 1 processes: as
    Ray Train's workers, :mod:`scalarize.engines.ray_train`); an address where no cluster
    answers within ``connect_timeout`` seconds is refused with one line, before any folder is
    written. A run or member whose worker process dies (killed, out of memory, a lost node) is
    retried (twice), resuming from its last checkpoint. The user's modules that the configs name
    by import target travel to the workers (Ray's ``py_modules``), and so do the objects
    registered for this process with ``Registry.add`` (session entries)."""

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

        from scalarize.engines.ray_train import ray_train_run

        modules = user_modules(configs)
        with ray_session(self.address, self.connect_timeout, modules):
            # a dead worker's task runs again (its run resumes from its checkpoint); an
            # exception in the run is its answer, never retried
            remote = ray.remote(num_cpus=self.cpus, num_gpus=self.gpus, max_retries=RETRIES,
                                retry_exceptions=False)(_train_remote)
            out_abs = str(Path(out).resolve())
            entries = session_entries()
            shared = ray.put(entries) if entries else None  # pickled once for every run
            refs = {remote.remote(c.to_yaml(), out_abs, shared): i
                    for i, c in enumerate(configs) if c.train.nproc == 1}
            order = dict(refs)
            results: list[RunSummary | None] = [None] * len(configs)
            pending = list(refs)
            with tqdm(total=len(configs), desc="runs (ray)", unit="run",
                      disable=progress is False) as bar:
                # a run of several processes (train.nproc): Ray Train's workers, one run at a
                # time while the one-process runs go on as tasks beside it
                for i, config in enumerate(configs):
                    if config.train.nproc > 1:
                        results[i] = ray_train_run(config, out_abs, config.train.nproc,
                                                   resume=True, address=self.address,
                                                   connect_timeout=self.connect_timeout)
                        bar.update(1)
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
                                f"the Ray worker of run {order[ref] + 1} of {len(configs)} in "
                                f"{out} died {RETRIES + 1} times (killed, out of memory, or "
                                "its node lost); run the same command again to resume it"
                            ) from None
                        bar.update(1)
            return [r for r in results if r is not None]

    runs_trials = True  # tpe, gp, asha, hyperband (ray_trials.ray_refusal says which not)

    @classmethod
    def refusal(cls, engine: str, strategy: ResolvedStrategy, config: SearchConfig
                ) -> str | None:
        from scalarize.engines.ray_trials import ray_refusal  # imports Ray

        if config.train.nproc > 1:
            return nproc_refusal(config)
        return ray_refusal(strategy, config)

    def search(self, config: SearchConfig, strategy: ResolvedStrategy, folder: SearchDir,
               progress: bool | None = None) -> SearchSummary:
        from scalarize.engines.ray_population import RayPopulation  # these import Ray
        from scalarize.engines.ray_trials import RayTrials

        search = RayTrials if strategy.trial_based else RayPopulation
        return search(config, strategy, folder, progress=progress, address=self.address,
                      cpus_per_member=self.cpus, gpus_per_member=self.gpus,
                      connect_timeout=self.connect_timeout).run()


def engine_class(name: str) -> type[Engine]:
    """The class of the engine registered as ``name``, whose capabilities a search asks
    before building it; a plain factory states none, so it is taken as :class:`Engine`."""
    factory = ENGINES.get(name)
    return factory if isinstance(factory, type) and issubclass(factory, Engine) else Engine


def build_engine(name: str, options: dict[str, Any] | None = None) -> Engine:
    """The engine ``name`` built with its ``options`` (e.g. a Ray ``address``)."""
    factory = ENGINES.get(name)
    try:
        return factory(**(options or {}))
    except TypeError as exc:
        raise ScalarizeError(f"the {name} engine: bad options {sorted(options or {})} ({exc})"
                             ) from None


__all__ = ["ENGINES", "Engine", "LocalExecutor", "RayExecutor", "build_engine", "engine_class"]
