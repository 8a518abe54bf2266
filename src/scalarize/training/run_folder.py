"""What a trainer and its callbacks write of their run, and read back to resume it.

:class:`RunFolder` is the run folder as the trainer sees it: one epoch's line and checkpoint,
the summary, the probes' conflict records. :class:`~scalarize.runs.store.RunDir` is one; the
trainer depends on what it records, not on the store's files and their names, and the launch
layer (:mod:`scalarize.launch`), which owns the folder (its name, lock and preparation), hands
it to the trainer.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from scalarize.runs.records import ConflictRecord, EpochRecord, RunSummary


class RunFolder(Protocol):
    """Where a run's records go: :class:`~scalarize.runs.store.RunDir` (``path.name`` is the
    run's name)."""

    path: Path

    @property
    def checkpoint_path(self) -> Path: ...

    def load_checkpoint(self) -> dict[str, Any] | None: ...

    def save_checkpoint(self, state: dict[str, Any]) -> None: ...

    def append_metrics(self, record: EpochRecord) -> None: ...

    def truncate_metrics(self, epochs_done: int) -> None: ...

    def append_conflicts(self, records: Sequence[ConflictRecord]) -> None: ...

    def truncate_conflicts(self, before_step: int) -> None: ...

    def write_summary(self, summary: RunSummary) -> None: ...


__all__ = ["RunFolder"]
