"""The run store: the folders of runs and studies, read and written through typed records.

A :class:`RunDir` is one run (``config.yaml``, ``metrics.jsonl``, ``checkpoint.pt``,
``summary.json``, ``conflicts.jsonl``); a :class:`StudyDir` is a sweep, comparison or search
folder (its config, its plan, its runs); a :class:`SearchDir` adds a search's population log,
state and summary. Lines are appended and flushed; whole files are replaced atomically
(:mod:`scalarize.files`), so a kill loses at most the current interval and never leaves a
half-written file; the temporaries such a kill leaves are removed when the folder is taken up
again. A folder being written is locked (:meth:`RunDir.lock`, :meth:`StudyDir.lock`) so that a
second process on it is refused. Every read of a corrupt, unreadable or misplaced file raises a
one-line :class:`~scalarize.errors.ScalarizeError` naming the file; readers over many runs
skip such a run with one :class:`~scalarize.errors.SkippedRunWarning` (:func:`read_or_skip`).
Nothing outside this package names a file of these folders (:mod:`scalarize.runs.layout`).

Example:
    >>> import tempfile
    >>> run = RunDir(tempfile.mkdtemp())
    >>> run.read_summary() is None, run.read_metrics()  # nothing trained here yet
    (True, [])
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from scalarize.config import dump_yaml, same_config
from scalarize.errors import ScalarizeError, SkippedRunWarning
from scalarize.files import (
    append_lines,
    atomic_write_text,
    empty_folder,
    folder_lock,
    read_lines,
    remove_temporaries,
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
T = TypeVar("T")

# the files of a run and of a study folder whose temporaries a kill may leave behind
RUN_FILES = (layout.CONFIG, layout.METRICS, layout.SUMMARY, layout.CHECKPOINT, layout.CONFLICTS)
STUDY_FILES = tuple({s.config for s in (layout.SWEEP, layout.COMPARISON, layout.SEARCH)}
                    | {s.plan for s in (layout.SWEEP, layout.COMPARISON, layout.SEARCH)}
                    | {layout.POPULATION, layout.SEARCH_STATE, layout.SUMMARY})


def _unreadable(path: Path, exc: BaseException, remedy: str) -> ScalarizeError:
    """The one-line error for a file that exists but cannot be read as text."""
    if isinstance(exc, IsADirectoryError) or path.is_dir():
        reason = "is a folder, not a file"
    elif isinstance(exc, UnicodeDecodeError):
        reason = "is not UTF-8 text"
    elif isinstance(exc, OSError):
        reason = f"is unreadable ({exc.strerror or type(exc).__name__})"
    else:
        reason = f"is unreadable ({type(exc).__name__})"
    return ScalarizeError(f"{path} {reason}; {remedy}")


def _read_bytes(path: Path, remedy: str) -> bytes | None:
    """The bytes of ``path``; ``None`` when missing, a one-line error when it is a folder or
    unreadable."""
    if not path.exists() and not path.is_symlink():
        return None
    try:
        return path.read_bytes()
    except OSError as exc:
        raise _unreadable(path, exc, remedy) from None


def read_yaml_mapping(path: Path, remedy: str) -> dict[str, Any]:
    """A YAML file that must hold a mapping, with a one-line error naming ``path`` when it is
    missing, a folder, unreadable, not UTF-8, not YAML, or not a mapping."""
    data = _read_bytes(path, remedy)
    if data is None:
        raise ScalarizeError(f"{path} is missing; {remedy}")
    try:
        tree = yaml.safe_load(data.decode())
    except UnicodeDecodeError as exc:
        raise _unreadable(path, exc, remedy) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ScalarizeError(f"{path} is not valid YAML{where}; {remedy}") from None
    if not isinstance(tree, dict):
        raise ScalarizeError(f"{path} does not hold a mapping of settings; {remedy}")
    return tree


def _read_record(path: Path, model: type[R]) -> R | None:
    """``path`` validated as ``model``; ``None`` when missing, a clear error when corrupt."""
    remedy = "delete it or re-run the command that wrote it"
    data = _read_bytes(path, remedy)
    if data is None:
        return None
    try:
        return model.model_validate_json(data)
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
    except (OSError, UnicodeDecodeError) as exc:
        raise _unreadable(path, exc, "delete the folder or re-run the command that wrote it"
                          ) from None
    except ValidationError as exc:
        raise ScalarizeError(f"{path} holds a line that is not a valid record "
                             f"({exc.errors()[0]['msg']}); delete the folder or re-run the "
                             "command that wrote it") from None


def read_or_skip(folder: Path, read: Callable[[], T], what: str = "run") -> T | None:
    """``read()``, or ``None`` with one :class:`SkippedRunWarning` naming ``folder`` and the
    reason when it raises a :class:`ScalarizeError` (a corrupt or unreadable file). Readers
    over many runs (or searches: ``what``) use it so that one bad run does not hide the
    others."""
    try:
        return read()
    except ScalarizeError as exc:
        warnings.warn(f"skipped {what} {folder}: {exc}", SkippedRunWarning, stacklevel=2)
        return None


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

        Returns True when resuming an existing run. A finished run (one with a summary) is
        never touched unless ``resume`` (same config required: ``same(saved tree)``, by default
        equality with ``config_yaml``'s tree) or ``overwrite`` is given. A run that stopped
        before its summary (killed, or a refusal mid-training) is taken up without a flag: it
        starts over when it has no checkpoint, and resumes from its checkpoint when its config
        is the same; one with a checkpoint and another config is refused as before.
        """
        config = self.path / layout.CONFIG
        if self.path.exists() and not self.path.is_dir():
            raise ScalarizeError(f"run folder {self.path} is a file; remove it or choose "
                                 "another --out")
        if config.is_dir() and not overwrite:
            raise ScalarizeError(f"{config} is a folder, not a file; remove it or pass "
                                 "--overwrite")
        is_same = same or (lambda tree: tree == yaml.safe_load(config_yaml))
        if self.exists and not (resume or overwrite or self.is_complete):
            # a run that stopped before its summary (killed, or refused mid-way): it starts
            # over when it kept no checkpoint (nothing trained is lost), and continues from its
            # checkpoint when its config is this one (what running it again asks for)
            if not self.checkpoint_path.exists():
                overwrite = True
            elif self._holds_same_config(is_same):
                resume = True
        if self.exists and not (resume or overwrite):
            if not self._holds_same_config(is_same):  # --resume would be refused: say so now
                raise ScalarizeError(
                    f"run folder {self.path} already exists with another config (its "
                    "config.yaml differs from this one); choose another name= or --out, or "
                    "pass --overwrite to replace it")
            raise ScalarizeError(
                f"run folder {self.path} already exists; pass --resume to continue it or "
                "--overwrite to replace it"
            )
        if self.exists and resume:
            if not is_same(self.read_config()):
                raise ScalarizeError(
                    f"cannot resume {self.path}: its config.yaml differs from this config; "
                    "choose another name= or --out, or remove that run folder (scalarize "
                    "train --overwrite replaces it)"
                )
            remove_temporaries(self.path, RUN_FILES)
            return True
        if overwrite:
            empty_folder(self.path)
        self.path.mkdir(parents=True, exist_ok=True)
        remove_temporaries(self.path, RUN_FILES)
        atomic_write_text(self.path / layout.CONFIG, config_yaml)
        return False

    def _holds_same_config(self, same: Callable[[Any], bool]) -> bool:
        """Whether the stored config is one ``same`` accepts; an unreadable one counts as the
        same (the refusal then points to --resume, which names what is wrong with it)."""
        try:
            return bool(same(self.read_config()))
        except ScalarizeError:
            return True

    def finished_summary(self, same: Callable[[Any], bool]) -> RunSummary | None:
        """The stored summary of this run when it finished with a config that ``same`` accepts
        (``same(saved tree)``): what resuming it returns without training again; else ``None``."""
        return self.read_summary() if self.is_complete and same(self.read_config()) else None

    @contextmanager
    def training(self, config_yaml: str, *, resume: bool = False, overwrite: bool = False,
                 same: Callable[[Any], bool]) -> Iterator[tuple[bool, RunSummary | None]]:
        """Hold this run folder (:meth:`lock`) and prepare it for the run of ``config_yaml``
        (:meth:`prepare`) for a ``with`` block, which gets whether the run resumes and, when
        it resumes a finished run, its stored summary. A refusal (:class:`ScalarizeError`)
        raised in the block while a new run has no checkpoint yet (the user's data, at the
        batch that carries it) removes what it wrote, leaving the folder itself, which the lock
        removes as it created it: no folder is left (a run with a checkpoint is kept)."""
        with self.lock():
            resuming = self.prepare(config_yaml, resume=resume, overwrite=overwrite, same=same)
            try:
                yield resuming, (self.finished_summary(same) if resuming else None)
            except ScalarizeError:
                if not (resuming or self.is_complete or self.checkpoint_path.exists()):
                    empty_folder(self.path)
                raise

    def lock(self) -> AbstractContextManager[Path]:
        """Hold this run folder (created when missing) for a ``with`` block; a second process
        on it is refused with one line (:func:`scalarize.files.folder_lock`)."""
        return folder_lock(self.path, "run folder")

    def read_config(self) -> dict[str, Any]:
        """The run's ``config.yaml``, with a one-line error when it is corrupt."""
        return read_yaml_mapping(self.path / layout.CONFIG,
                                 "delete the run folder or train it again with --overwrite")

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

    @property
    def checkpoint_path(self) -> Path:
        return self.path / layout.CHECKPOINT

    def load_checkpoint(self) -> dict[str, Any] | None:
        """The last checkpoint, or ``None`` when the run has none yet."""
        path = self.checkpoint_path
        if path.exists() and not path.is_file():
            raise ScalarizeError(f"checkpoint {path} is not a file; remove it to restart the "
                                 "run or pass --overwrite")
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
    if not root.exists():
        raise ScalarizeError(f"{root} does not exist; give a folder of runs (the --out of "
                             "'scalarize train', a sweep or a comparison)")
    if not root.is_dir():
        raise ScalarizeError(f"{root} is a file, not a folder of runs; give the folder that "
                             "holds the runs")
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
        if not self.config_path.exists():
            return False
        if not same_config(self.read_config(), config):
            raise ScalarizeError(f"{self.path} holds a different {self.study.kind}; re-run it "
                                 f"with its own config ({self.config_path}) or choose another "
                                 "--out")
        return True

    def record(self, config: BaseModel, plan: Record) -> bool:
        """Record the study: its config and plan. Returns True when the folder already holds
        this study (to continue it); a different study there is refused and left untouched."""
        self._check_folder()
        if self.holds(config):
            remove_temporaries(self.path, STUDY_FILES)
            return True
        self.path.mkdir(parents=True, exist_ok=True)
        remove_temporaries(self.path, STUDY_FILES)
        atomic_write_text(self.path / self.study.plan, plan.to_json(indent=1) + "\n")
        atomic_write_text(self.config_path, dump_yaml(config))
        return False

    def lock(self) -> AbstractContextManager[Path]:
        """Hold this study folder (created when missing) for a ``with`` block; a second
        process on it is refused with one line (:func:`scalarize.files.folder_lock`)."""
        return folder_lock(self.path, f"{self.study.kind} folder")

    def read_config(self) -> dict[str, Any]:
        """The study's config (``<kind>.yaml``), with a one-line error when it is corrupt."""
        return read_yaml_mapping(self.config_path, "delete the folder or choose another --out")

    def _check_folder(self) -> None:
        if self.path.exists() and not self.path.is_dir():
            raise ScalarizeError(f"{self.path} is a file, not a {self.study.kind} folder; give "
                                 f"the folder '{self.study.command}' wrote (its --out)")

    def read_plan(self, model: type[R]) -> R:
        """The study's plan, with a clear error when the folder holds none."""
        if not self.path.exists():
            raise ScalarizeError(f"{self.path} does not exist; give a {self.study.kind} folder "
                                 f"(the --out of '{self.study.command}')")
        self._check_folder()
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
    """Planned runs with their summaries; a run whose summary is corrupt is skipped with one
    :class:`SkippedRunWarning`."""
    done = []
    for run in runs:
        folder = study.run(run.name)
        summary = read_or_skip(folder.path, folder.read_summary)
        if summary is not None:
            done.append((run, summary))
    return done


class SearchDir(StudyDir):
    """A search folder: config, plan, ``population.jsonl``, engine state, summary."""

    def __init__(self, path: Path | str) -> None:
        super().__init__(path, layout.SEARCH)

    def record(self, config: BaseModel, plan: Record) -> bool:
        """As :meth:`StudyDir.record`; a search continues only on the engine that began it."""
        self._check_folder()
        if not self.holds(config):
            return super().record(config, plan)
        saved = self.read_plan(SearchPlan)
        if isinstance(plan, SearchPlan) and saved.engine != plan.engine:
            raise ScalarizeError(f"{self.path} holds a search run by the {saved.engine} engine; "
                                 f"continue it with --engine {saved.engine} or choose another "
                                 "--out")
        remove_temporaries(self.path, STUDY_FILES)
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

    # -- the trial strategies (scalarize.search.trials) ----------------------------------------
    @property
    def optuna_journal(self) -> Path:
        """Optuna's journal storage of a trial search (appended by Optuna itself)."""
        return self.path / layout.OPTUNA_JOURNAL

    def journal_size(self) -> int:
        """Bytes in the journal (0 when there is none yet)."""
        return self.optuna_journal.stat().st_size if self.optuna_journal.is_file() else 0

    def truncate_journal(self, size: int) -> None:
        """Cut the journal back to its first ``size`` bytes (the study as it was when the
        search state was saved; ``0`` removes it): what a kill cut short is done again."""
        path = self.optuna_journal
        if size == 0:
            path.unlink(missing_ok=True)
            return
        if self.journal_size() < size:
            raise ScalarizeError(f"{path} is shorter than the search state says ({size} "
                                 "bytes); delete the folder to restart the search")
        with path.open("r+b") as handle:
            handle.truncate(size)

    def member_checkpoint(self, member: int) -> Path:
        return self.path / layout.MEMBER_CHECKPOINTS / f"m{member:02d}.pt"

    def save_member_checkpoint(self, member: int, state: dict[str, Any]) -> None:
        """Atomically write the state of trial ``member`` when it finished or stopped."""
        path = self.member_checkpoint(member)
        path.parent.mkdir(parents=True, exist_ok=True)
        save_torch(path, state)

    def load_member_checkpoint(self, member: int) -> dict[str, Any] | None:
        """The state of trial ``member`` when it finished or stopped (``None``: none)."""
        path = self.member_checkpoint(member)
        if not path.is_file():
            return None
        return load_torch(path, "member checkpoint", "delete it (the search does not need "
                                                     "it to continue)")

    @property
    def is_finished(self) -> bool:
        return (self.path / layout.SUMMARY).is_file()

    def write_summary(self, summary: SearchSummary) -> None:
        _write_record(self.path / layout.SUMMARY, summary)

    def read_summary(self) -> SearchSummary:
        """The summary of a finished search, with a clear error otherwise."""
        if not self.path.exists():
            raise ScalarizeError(f"{self.path} does not exist; give a search folder (the --out "
                                 "of 'scalarize search')")
        self._check_folder()
        if not self.is_study:
            raise ScalarizeError(f"{self.path} is not a search folder; run 'scalarize search' "
                                 "into it")
        summary = _read_record(self.path / layout.SUMMARY, SearchSummary)
        if summary is None:
            raise ScalarizeError(f"the search in {self.path} has not finished; run the same "
                                 "'scalarize search' command again to continue it")
        return summary

