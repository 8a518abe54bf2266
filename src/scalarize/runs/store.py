"""The run store: the folders of runs and studies, read and written through typed records.

A :class:`RunDir` is one run (``config.yaml``, ``metrics.jsonl``, ``checkpoint.pt``,
``summary.json``, ``conflicts.jsonl``); a :class:`StudyDir` is a sweep, comparison or search
folder (its config, its plan, its runs); a :class:`SearchDir` adds a search's population log,
state and summary. Lines are appended and flushed; whole files are replaced atomically
(:mod:`scalarize.files`), so a kill loses at most the current interval and never leaves a
half-written file. Nothing outside this package names a file of these folders
(:mod:`scalarize.runs.layout`).

Example:
    >>> import tempfile
    >>> run = RunDir(tempfile.mkdtemp())
    >>> run.read_summary() is None, run.read_metrics()  # nothing trained here yet
    (True, [])
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from scalarize.config import dump_yaml, same_config
from scalarize.errors import ScalarizeError
from scalarize.files import (
    append_lines,
    atomic_write_text,
    read_lines,
    write_lines,
)
from scalarize.runs import layout
from scalarize.runs.layout import StudyLayout
from scalarize.runs.records import (
    POPULATION_EVENT,
    ComparePlan,
    ConflictRecord,
    EpochRecord,
    PopulationEvent,
    Record,
    RunSummary,
    SearchPlan,
    SearchSummary,
    SweepPlan,
)
from scalarize.runs.torch_io import load_torch, save_torch

R = TypeVar("R", bound=Record)


def _read_record(path: Path, model: type[R]) -> R | None:
    """``path`` validated as ``model``; ``None`` when missing, a clear error when corrupt."""
    if not path.is_file():
        return None
    try:
        return model.model_validate_json(path.read_bytes())
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise ScalarizeError(f"{path} is not a valid {model.__name__} ({where}: "
                             f"{first['msg']}); delete it or re-run the command that wrote it"
                             ) from None


def _write_record(path: Path, record: Record) -> None:
    atomic_write_text(path, record.to_json(indent=2) + "\n")


def _validate_lines(path: Path, validate: Callable[[Any], R]) -> list[R]:
    try:
        return [validate(line) for line in read_lines(path)]
    except ValidationError as exc:
        raise ScalarizeError(f"{path} holds a line that is not a valid record "
                             f"({exc.errors()[0]['msg']}); delete the folder or re-run the "
                             "command that wrote it") from None


class RunDir:
    """The folder of one run and the files in it."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    @property
    def exists(self) -> bool:
        """True when a run was started here (its config was written)."""
        return (self.path / layout.CONFIG).is_file()

    @property
    def is_complete(self) -> bool:
        return (self.path / layout.SUMMARY).is_file()

    def prepare(self, config_yaml: str, resume: bool = False, overwrite: bool = False,
                same: Callable[[Any], bool] | None = None) -> bool:
        """Create the folder for a new run, or check it for ``resume``.

        Returns True when resuming an existing run. An existing run is never touched unless
        ``resume`` (same config required: ``same(saved tree)``, by default equality with
        ``config_yaml``'s tree) or ``overwrite`` is given.
        """
        if self.exists and not (resume or overwrite):
            raise ScalarizeError(
                f"run folder {self.path} already exists; pass --resume to continue it or "
                "--overwrite to replace it"
            )
        if self.exists and resume:
            is_same = same or (lambda tree: tree == yaml.safe_load(config_yaml))
            if not is_same(self.read_config()):
                raise ScalarizeError(
                    f"cannot resume {self.path}: its config.yaml differs from this config; "
                    "choose another --name or pass --overwrite"
                )
            return True
        if overwrite and self.path.exists():
            shutil.rmtree(self.path)
        self.path.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.path / layout.CONFIG, config_yaml)
        return False

    def read_config(self) -> dict[str, Any]:
        return yaml.safe_load((self.path / layout.CONFIG).read_text())

    # -- metrics.jsonl ------------------------------------------------------------------------
    def append_metrics(self, record: EpochRecord) -> None:
        """Append one epoch's line to ``metrics.jsonl`` and flush it to disk."""
        append_lines(self.path / layout.METRICS, [record.dump()])

    def read_metrics(self) -> list[EpochRecord]:
        """All complete epoch records (a torn last line from a kill is ignored)."""
        return _validate_lines(self.path / layout.METRICS, EpochRecord.model_validate)

    def truncate_metrics(self, epochs_done: int) -> None:
        """Keep only records of the first ``epochs_done`` epochs (used when resuming)."""
        kept = [r.dump() for r in self.read_metrics() if r.epoch <= epochs_done]
        write_lines(self.path / layout.METRICS, kept)

    # -- conflicts.jsonl ----------------------------------------------------------------------
    @property
    def has_conflicts(self) -> bool:
        return (self.path / layout.CONFLICTS).is_file()

    def append_conflicts(self, records: Sequence[ConflictRecord]) -> None:
        """Append probed steps to ``conflicts.jsonl`` and flush them to disk."""
        append_lines(self.path / layout.CONFLICTS, [r.dump() for r in records])

    def read_conflicts(self) -> list[ConflictRecord]:
        """Every complete conflict record (none when the run was not probed)."""
        return _validate_lines(self.path / layout.CONFLICTS, ConflictRecord.model_validate)

    def truncate_conflicts(self, before_step: int) -> None:
        """Keep the records of steps before ``before_step`` (used when resuming)."""
        if self.has_conflicts:
            kept = [r.dump() for r in self.read_conflicts() if r.step < before_step]
            write_lines(self.path / layout.CONFLICTS, kept)

    # -- checkpoint.pt, summary.json ----------------------------------------------------------
    def save_checkpoint(self, state: dict[str, Any]) -> None:
        """Atomically replace ``checkpoint.pt`` with ``state``."""
        save_torch(self.path / layout.CHECKPOINT, state)

    def load_checkpoint(self) -> dict[str, Any] | None:
        """The last checkpoint, or ``None`` when the run has none yet."""
        path = self.path / layout.CHECKPOINT
        if not path.is_file():
            return None
        return load_torch(path, "checkpoint", "delete it to restart the run or pass "
                                              "--overwrite")

    def write_summary(self, summary: RunSummary) -> None:
        _write_record(self.path / layout.SUMMARY, summary)

    def read_summary(self) -> RunSummary | None:
        """The summary of a finished run, ``None`` while it is not finished."""
        return _read_record(self.path / layout.SUMMARY, RunSummary)


def find_runs(root: Path | str) -> list[RunDir]:
    """Run folders (those holding a ``config.yaml``) under ``root``, sorted by path."""
    root = Path(root)
    if not root.is_dir():
        raise ScalarizeError(f"{root} is not a folder of runs")
    return [RunDir(p.parent) for p in sorted(root.rglob(layout.CONFIG))]


class StudyDir:
    """A study folder: its config (``<kind>.yaml``), its plan (``<kind>.json``), its runs."""

    def __init__(self, path: Path | str, study: StudyLayout) -> None:
        self.path = Path(path)
        self.study = study

    @property
    def config_path(self) -> Path:
        return self.path / self.study.config

    @property
    def is_study(self) -> bool:
        return (self.path / self.study.plan).is_file()

    def holds(self, config: BaseModel) -> bool:
        """True when the folder holds the study ``config``; a different study there is an
        error. The saved config is validated with ``config``'s own model before comparing, so
        a field added since (with its default) does not make an old study look different."""
        if not self.config_path.is_file():
            return False
        if not same_config(yaml.safe_load(self.config_path.read_text()), config):
            raise ScalarizeError(f"{self.path} holds a different {self.study.kind}; re-run it "
                                 f"with its own config ({self.config_path}) or choose another "
                                 "--out")
        return True

    def record(self, config: BaseModel, plan: Record) -> bool:
        """Record the study: its config and plan. Returns True when the folder already holds
        this study (to continue it); a different study there is refused and left untouched."""
        if self.holds(config):
            return True
        self.path.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.path / self.study.plan, plan.to_json(indent=1) + "\n")
        atomic_write_text(self.config_path, dump_yaml(config))
        return False

    def read_config(self) -> dict[str, Any]:
        return yaml.safe_load(self.config_path.read_text())

    def read_plan(self, model: type[R]) -> R:
        """The study's plan, with a clear error when the folder holds none."""
        plan = _read_record(self.path / self.study.plan, model)
        if plan is None:
            raise ScalarizeError(f"{self.path} holds no {self.study.plan}; run "
                                 f"'{self.study.command}' into it first")
        return plan

    def run(self, name: str) -> RunDir:
        return RunDir(self.path / name)


def sweep_runs(folder: Path | str) -> tuple[SweepPlan, list[tuple[Any, RunSummary]]]:
    """A sweep's plan and ``(planned run, summary)`` for each finished run."""
    study = StudyDir(folder, layout.SWEEP)
    plan = study.read_plan(SweepPlan)
    return plan, _finished(study, plan.runs)


def comparison_runs(folder: Path | str) -> tuple[ComparePlan, list[tuple[Any, RunSummary]]]:
    """A comparison's plan and ``(planned run, summary)`` for each finished run."""
    study = StudyDir(folder, layout.COMPARISON)
    plan = study.read_plan(ComparePlan)
    return plan, _finished(study, plan.runs)


def _finished(study: StudyDir, runs: Iterable[Any]) -> list[tuple[Any, RunSummary]]:
    done = []
    for run in runs:
        summary = study.run(run.name).read_summary()
        if summary is not None:
            done.append((run, summary))
    return done


class SearchDir(StudyDir):
    """A search folder: config, plan, ``population.jsonl``, engine state, summary."""

    def __init__(self, path: Path | str) -> None:
        super().__init__(path, layout.SEARCH)

    def record(self, config: BaseModel, plan: Record) -> bool:
        """As :meth:`StudyDir.record`; a search continues only on the engine that began it."""
        if not self.holds(config):
            return super().record(config, plan)
        saved = self.read_plan(SearchPlan)
        if isinstance(plan, SearchPlan) and saved.engine != plan.engine:
            raise ScalarizeError(f"{self.path} holds a search run by the {saved.engine} engine; "
                                 f"continue it with --engine {saved.engine} or choose another "
                                 "--out")
        return True

    def append_events(self, events: Sequence[PopulationEvent]) -> None:
        """Append population events (flushed to disk)."""
        append_lines(self.path / layout.POPULATION, [e.dump() for e in events])

    def read_events(self) -> list[PopulationEvent]:
        """Every complete line of ``population.jsonl``."""
        return _validate_lines(self.path / layout.POPULATION, POPULATION_EVENT.validate_python)

    def write_events(self, events: Sequence[PopulationEvent]) -> None:
        """Atomically replace ``population.jsonl`` with ``events``."""
        write_lines(self.path / layout.POPULATION, [e.dump() for e in events])

    @property
    def state_path(self) -> Path:
        return self.path / layout.SEARCH_STATE

    @property
    def ray_experiment(self) -> Path:
        return self.path / layout.RAY_EXPERIMENT

    def save_state(self, state: dict[str, Any]) -> None:
        save_torch(self.state_path, state)

    def load_state(self) -> dict[str, Any] | None:
        if not self.state_path.is_file():
            return None
        return load_torch(self.state_path, "search state", "delete the folder to restart")

    @property
    def is_finished(self) -> bool:
        return (self.path / layout.SUMMARY).is_file()

    def write_summary(self, summary: SearchSummary) -> None:
        _write_record(self.path / layout.SUMMARY, summary)

    def read_summary(self) -> SearchSummary:
        """The summary of a finished search, with a clear error otherwise."""
        if not self.is_study:
            raise ScalarizeError(f"{self.path} is not a search folder; run 'scalarize search' "
                                 "into it")
        summary = _read_record(self.path / layout.SUMMARY, SearchSummary)
        if summary is None:
            raise ScalarizeError(f"the search in {self.path} has not finished; run the same "
                                 "'scalarize search' command again to continue it")
        return summary

