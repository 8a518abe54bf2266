"""TensorBoard: one event folder per run, ``DIR/<run>`` or ``DIR/<study>/<run>``.

Scalars are logged against the epoch. A run's event folder is a view of its run folder:
every time the run is opened (a fresh start, a resume, a finished run or a search tracked
again) the event files directly in that folder are replaced and the run's history is logged
again from the run store (the checkpoint's history, ``metrics.jsonl``, ``population.jsonl``),
so TensorBoard shows each epoch and each text once, also the epoch a kill cut short after it
was logged but before it was checkpointed. (TensorBoard's own ``purge_step`` hides scalars
only, not text.) Nothing else in the folder is touched.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from scalarize.errors import ScalarizeError
from scalarize.tracking._base import Backend, RunRef, Seen, Status

EVENTS = "events.out.tfevents."  # how TensorBoard names its event files


def _writer_class() -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise ScalarizeError("tracking.tensorboard needs the tensorboard package: pip install "
                             "-c constraints.txt 'scalarize[tracking]'") from None
    return SummaryWriter


def check() -> None:
    """Refuse (one line) when the tensorboard package is missing."""
    _writer_class()


def run_folder(root: str, run: RunRef) -> Path:
    """Where ``run``'s events go under ``root``."""
    base = Path(root)
    if run.study is None:
        return base / run.name
    return base / run.study.name if run.role == "study" else base / run.study.name / run.name


class TensorBoardBackend(Backend):
    """Logs to TensorBoard event files under the folder ``where``."""

    kind = "tensorboard"

    def __init__(self, where: str) -> None:
        super().__init__(where)
        self.writer: Any = None

    def open(self, run: RunRef, params: Mapping[str, str], tags: Mapping[str, str]) -> Seen:
        folder = run_folder(self.where, run)
        folder.mkdir(parents=True, exist_ok=True)
        writer = _writer_class()
        for old in folder.glob(f"{EVENTS}*"):
            if old.is_file():
                old.unlink()
        self.writer = writer(str(folder), flush_secs=10)
        if params:
            table = "| parameter | value |\n|---|---|\n" + "\n".join(
                f"| {k} | `{v}` |" for k, v in params.items())
            self.writer.add_text("config", table, 0)
        return Seen()  # an empty folder: log the whole history again

    def metrics(self, values: Mapping[str, float], step: int) -> None:
        for key, value in values.items():
            self.writer.add_scalar(key, value, step)
        self.writer.flush()

    def text(self, key: str, text: str, step: int) -> None:
        self.writer.add_text(key, text, step)
        self.writer.flush()

    def close(self, status: Status) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
