"""What the two Ray Tune engines share (:mod:`~scalarize.engines.ray_population` for the
population strategies, :mod:`~scalarize.engines.ray_trials` for the trial strategies), so that
neither imports the other: the driver's recorder of ``population.jsonl``, Tune without its
own logs, the trainable with its resources, the Tuner restored or refused, the run config, the
trials' one-line error and what a worker reports of a member after each epoch.
"""

from __future__ import annotations

import json
import logging
import math
import os
import pickletools
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ray.tune.experiment import Trial
from tqdm.auto import tqdm

from scalarize.engines.ray_session import CONNECT_TIMEOUT, ray_session
from scalarize.errors import ScalarizeError
from scalarize.registry import session_entries
from scalarize.runs.records import POPULATION_EVENT, EpochEvent, PopulationEvent
from scalarize.runs.store import SearchDir
from scalarize.search.member import Member
from scalarize.search.resolve import ResolvedStrategy
from scalarize.search.spec import SearchConfig
from scalarize.user_code import user_modules

ENGINE = "ray"
MEMBER_FILE = "member.pt"  # inside a Tune checkpoint directory (Tune owns that layout)


class RaySearch:
    """The search ``config`` of the resolved ``strategy`` run as Ray Tune trials
    (``cpus_per_member`` / ``gpus_per_member`` each) on a local Ray or the cluster at
    ``address``; subclasses build the Tuner."""

    def __init__(self, config: SearchConfig, strategy: ResolvedStrategy, folder: SearchDir,
                 progress: bool | None = None, address: str | None = None,
                 cpus_per_member: float = 1.0, gpus_per_member: float = 0.0,
                 connect_timeout: float = CONNECT_TIMEOUT) -> None:
        self.config, self.strategy, self.progress = config, strategy, progress
        self.connect_timeout = connect_timeout
        self.folder = SearchDir(Path(folder.path).resolve())
        self.address, self.cpus, self.gpus = address, cpus_per_member, gpus_per_member
        self.spec, self.epochs = config.search, config.train.epochs

    def trainable(self, cls: type, **parameters: Any) -> Any:
        """``cls`` with its resources and parameters: the search's YAML, the torch threads of
        a member, the driver's registry session entries and ``parameters``."""
        from ray import tune

        return tune.with_resources(
            tune.with_parameters(cls, search_yaml=self.config.to_yaml(), **parameters,
                                 threads=max(1, int(self.cpus)), entries=session_entries()),
            {"cpu": self.cpus, "gpu": self.gpus})

    def restored_or(self, trainable: Any, build: Callable[[], Any], refuse: str | None = None
                    ) -> Any:
        """The Tuner of a killed search in the folder, restored, or ``build()``'s new one;
        ``refuse``: the one-line reason why this search cannot continue (``None``: it can)."""
        from ray import tune

        experiment = self.folder.ray_experiment
        if not tune.Tuner.can_restore(str(experiment)):
            return build()
        if refuse is not None:
            raise ScalarizeError(refuse)
        torn = torn_state(experiment)
        if torn is not None:
            raise ScalarizeError(f"cannot continue the Ray search in {self.folder.path}: it was "
                                 f"killed while Ray Tune copied its state ({torn} is cut "
                                 "short); delete the folder to start again")
        try:
            return tune.Tuner.restore(str(experiment), trainable, resume_errored=True)
        except Exception as exc:  # e.g. a Tune experiment written by another release
            raise ScalarizeError(f"cannot continue the Ray search in {self.folder.path} "
                                 f"({type(exc).__name__}); delete the folder to start "
                                 "again") from None

    def run_config(self, total: int, checkpoint: Any, failure: Any, stop: Any = None) -> Any:
        """Tune's run config: the experiment in the search folder, ``train.epochs`` per
        trial (or the Tune stopper ``stop``), the recorder of ``total`` member-epochs."""
        from ray import tune

        experiment = self.folder.ray_experiment
        return tune.RunConfig(
            name=experiment.name, storage_path=str(experiment.parent), verbose=0,
            stop=stop if stop is not None else {"training_iteration": self.epochs},
            callbacks=[recorder(self.folder, total,
                                None if self.progress is None else not self.progress)],
            checkpoint_config=checkpoint, failure_config=failure)

    def fit(self, build: Callable[[], Any]) -> Any:
        """The results of the Tuner ``build()`` makes, fitted in a Ray session (the user's
        modules shipped to the workers) without Tune's own logs."""
        with (ray_session(self.address, self.connect_timeout, user_modules([self.config])),
              without_tune_logs()):
            return build().fit()


def _whole_pickle(data: bytes) -> None:
    """Walk a pickle's opcodes up to its STOP without running any (``ValueError`` when cut
    short): checked, never loaded, since it is Tune's to load."""
    for _ in pickletools.genops(data):
        pass


#: Ray Tune's state files in an experiment folder, newest per pattern, and how each is read.
_STATE_FILES: dict[str, Callable[[bytes], object]] = {
    "experiment_state-*.json": json.loads, "search_gen_state-*.json": _whole_pickle,
    "searcher-state-*.pkl": _whole_pickle}


def torn_state(experiment: Path) -> str | None:
    """The name of a state file of the Tune experiment ``experiment`` that cannot be read (a
    kill while Tune copied it there: Tune copies its driver's state into the storage folder
    with no rename), ``None`` when the newest of each reads. Tune itself, given a torn file,
    logs the failure and starts the experiment again with part of its old state: a search
    that silently ends early."""
    for pattern, read in _STATE_FILES.items():
        files = sorted(experiment.glob(pattern))
        if not files:
            continue
        try:
            read(files[-1].read_bytes())
        except Exception:  # cut short anywhere: EOF, a bad pickle opcode, invalid JSON
            return files[-1].name
    return None


def failures(results: Any) -> tuple[list[Any], str]:
    """The errors of the trials that failed, and the last line of the first one."""
    errors = [r.error for r in results if r.error is not None]
    if not errors:
        return errors, ""
    return errors, (str(errors[0]).strip().splitlines() or [type(errors[0]).__name__])[-1]


def recorder(folder: SearchDir, total: int, disable: bool | None) -> Any:
    """A Tune callback in the driver: appends each result's events to ``population.jsonl`` as
    they come and moves a tqdm bar over member-epochs."""
    from ray.tune import Callback

    class Recorder(Callback):
        def __init__(self) -> None:
            self.bar = tqdm(total=total, unit="member-epoch", desc="search (ray)",
                            dynamic_ncols=True, disable=disable)

        def on_trial_result(self, iteration: int, trials: list[Trial], trial: Trial,
                            result: dict[str, Any], **info: Any) -> None:
            events = [POPULATION_EVENT.validate_python(e) for e in json.loads(result["events"])]
            folder.append_events(events)
            self.bar.update(1)

        def on_experiment_end(self, trials: list[Trial], **info: Any) -> None:
            self.bar.close()

    return Recorder()


@contextmanager
def without_tune_logs() -> Iterator[None]:
    """Tune without its per-trial CSV, JSON and TensorBoard logs, its console tables and its
    warnings about them: ``population.jsonl`` and the progress bar are the record, and Tune's
    logs of paused and restored trials only cost time. Errors surface once, on one line, as
    the engines raise the trials' errors (not as Tune's logged tracebacks)."""
    settings = {"TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1", "RAY_AIR_NEW_OUTPUT": "0"}
    before = {key: os.environ.get(key) for key in settings}
    tune_logger = logging.getLogger("ray.tune")
    level = tune_logger.level
    os.environ.update(settings)
    tune_logger.setLevel(logging.CRITICAL)  # a failed trial: the engine says it once
    try:
        yield
    finally:
        tune_logger.setLevel(level)
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def step_metrics(member: Member, member_id: int, epoch: int, events: list[PopulationEvent],
                 objectives: Sequence[str], missing: float) -> dict[str, Any]:
    """What a worker reports to Tune after a member's epoch: its events (tagged with this
    node), its held-out scores and their average (``missing`` when it has none)."""
    import ray

    node = ray.get_runtime_context().get_node_id()
    for event in events:
        if isinstance(event, EpochEvent):
            event.node = node
    scores = member.scores()
    row = scores if scores is not None else [math.nan] * len(objectives)
    return {"member": member_id, "epoch": epoch, "diverged": member.diverged,
            "score": missing if scores is None else sum(scores) / len(scores),
            "events": json.dumps([e.dump() for e in events]),
            **{f"val_{o}": v for o, v in zip(objectives, row, strict=True)}}


__all__ = ["ENGINE", "MEMBER_FILE", "RaySearch", "failures", "recorder", "step_metrics",
           "torn_state", "without_tune_logs"]
