"""One run tracked on every backend its config names: :class:`RunTracker`, the backends built
from a :class:`~scalarize.config.TrackingConfig`, and the study a run folder belongs to.

Example:
    >>> from scalarize.config import TrackingConfig
    >>> backends(TrackingConfig())  # nothing configured: nothing tracked
    []
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from scalarize.config import TrackingConfig
from scalarize.runs import layout
from scalarize.runs.records import ComparePlan, RunSummary, SweepPlan
from scalarize.runs.store import RunDir, SearchDir, StudyDir
from scalarize.tracking import _mlflow, _tensorboard, _wandb
from scalarize.tracking._base import (
    Backend,
    Guarded,
    RunRef,
    Seen,
    Status,
    StudyRef,
    flat_metrics,
)

BACKENDS = ("mlflow", "tensorboard", "wandb")


def check(tracking: TrackingConfig) -> None:
    """Refuse, in one line and before anything trains, a backend whose library is missing."""
    if tracking.tensorboard:
        _tensorboard.check()
    if tracking.mlflow:
        _mlflow.check()
    if tracking.wandb is not None:
        _wandb.check()


def backends(tracking: TrackingConfig) -> list[Backend]:
    """A fresh backend for every library ``tracking`` names (for one run)."""
    made: list[Backend] = []
    if tracking.tensorboard:
        made.append(_tensorboard.TensorBoardBackend(tracking.tensorboard))
    if tracking.mlflow:
        made.append(_mlflow.MlflowBackend(tracking.mlflow, tracking.experiment))
    if tracking.wandb is not None:
        made.append(_wandb.WandbBackend(tracking.wandb))
    return made


_STUDIES = (layout.SWEEP, layout.COMPARISON, layout.SEARCH)
_PLANS: dict[str, type[SweepPlan] | type[ComparePlan]] = {
    layout.SWEEP.kind: SweepPlan, layout.COMPARISON.kind: ComparePlan}


def study_at(folder: Path) -> StudyRef | None:
    """The study (sweep, comparison, search) in ``folder``, if it holds one."""
    folder = folder.resolve()
    for kind in _STUDIES:
        study = SearchDir(folder) if kind is layout.SEARCH else StudyDir(folder, kind)
        if study.is_study:
            return StudyRef(kind.kind, folder, study.read_config)
    return None


def study_of(run_folder: Path) -> StudyRef | None:
    """The study whose folder holds ``run_folder``, if any."""
    return study_at(run_folder.resolve().parent)


def finish_study(folder: Path, tracking: TrackingConfig) -> None:
    """End the parent run of the sweep or comparison in ``folder`` on every backend of
    ``tracking``, once every planned run in it is finished. Called by the process that ran the
    study after all its runs returned (on any engine): runs finishing side by side on Ray
    workers cannot tell which of them is the last."""
    study = study_at(folder)
    model = _PLANS.get(study.kind) if study is not None else None
    if study is None or model is None:
        return
    kind = next(k for k in _STUDIES if k.kind == study.kind)
    names = [r.name for r in StudyDir(study.path, kind).read_plan(model).runs]
    if not all(RunDir(study.path / n).is_complete for n in names):
        return
    for backend in backends(tracking):
        Guarded(backend).call("closed the study", lambda b: b.finish_study(study), None)


def summary_metrics(summary: RunSummary) -> dict[str, float]:
    """The final numbers of a run: test scores, losses and metrics, model size, timings."""
    tree = summary.dump()
    return flat_metrics({
        "test": {k: tree["test"].get(k) for k in ("acc", "loss", "avg_acc", "metrics")},
        "model": {k: tree["model"].get(k) for k in ("params", "encoder_params", "flops")},
        **{k: tree.get(k) for k in ("train_seconds", "step_seconds", "peak_memory_mb",
                                    "best_val_avg_acc", "best_epoch", "steps")}})


class RunTracker:
    """Logs one run to ``backends``, each guarded (a failure warns once and switches it off),
    never logging an epoch a backend already holds."""

    def __init__(self, backends: Sequence[Backend], run: RunRef) -> None:
        self.guards = [Guarded(b) for b in backends]
        self.run = run
        self.seen = [Seen() for _ in self.guards]
        self.held: list[set[int]] = [set() for _ in self.guards]

    def start(self, params: Mapping[str, str], tags: Mapping[str, str],
              history: Sequence[Mapping[str, Any]] = ()) -> None:
        """Open the run everywhere, then log the epochs of ``history`` a backend lacks."""
        self.seen = [g.call("opened the run", lambda b: b.open(self.run, params, tags), Seen())
                     for g in self.guards]
        self.held = [set(seen.epochs) for seen in self.seen]
        for record in history:
            self.epoch(record)

    def epoch(self, record: Mapping[str, Any]) -> None:
        """Log one epoch record (every number in it, against its epoch)."""
        epoch = int(record["epoch"])
        values = flat_metrics(record)
        for guard, seen in zip(self.guards, self.seen, strict=True):
            if epoch not in seen.epochs:
                guard.call(f"logged epoch {epoch}", lambda b: b.metrics(values, epoch), None)
                seen.epochs.add(epoch)

    def at_epoch(self, values: Mapping[str, float], epoch: int) -> None:
        """Log more numbers at ``epoch`` where a backend did not hold that epoch when opened
        (an event logged with its epoch, such as an exploit)."""
        for guard, held in zip(self.guards, self.held, strict=True):
            if epoch not in held:
                guard.call(f"logged epoch {epoch}", lambda b: b.metrics(values, epoch), None)

    def text(self, key: str, text: str, step: int = 0) -> None:
        for guard in self.guards:
            guard.call(f"logged {key}", lambda b: b.text(key, text, step), None)

    def tags(self, values: Mapping[str, str]) -> None:
        for guard in self.guards:
            guard.call("set tags", lambda b: b.tags(values), None)

    def summary(self, values: Mapping[str, float], step: int, text: str | None = None) -> None:
        """Log the final numbers (once per backend) and, if given, the summary as text."""
        for guard, seen in zip(self.guards, self.seen, strict=True):
            if not seen.summary:
                guard.call("logged the summary", lambda b: b.metrics(values, step), None)
                seen.summary = True
        if text is not None:
            self.text("summary.json", text, step)

    def close(self, status: Status = "FINISHED") -> None:
        """End the run everywhere."""
        for guard in self.guards:
            guard.call("closed the run", lambda b: b.close(status), None)
