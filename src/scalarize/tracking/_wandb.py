"""Weights & Biases, where ``wandb`` is installed (it is not a dependency of scalarize).

Offline by default (``tracking: {wandb: {project: P}}`` writes ``./wandb/offline-run-*``; upload
with ``wandb sync``). One W&B run per scalarize run, its id derived from the run's folder (so a
resume continues it: W&B drops steps it already holds), grouped by study.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from scalarize.config import WandbTracking
from scalarize.errors import ScalarizeError
from scalarize.tracking._base import Backend, RunRef, Seen, Status


def _wandb() -> Any:
    try:
        import wandb
    except ImportError:
        raise ScalarizeError("tracking.wandb needs wandb, which scalarize does not install: pip "
                             "install wandb (or drop tracking.wandb)") from None
    return wandb


def check() -> None:
    """Refuse (one line) when wandb is missing."""
    _wandb()


class WandbBackend(Backend):
    """Logs to W&B with the settings ``options`` (project, mode, entity, dir)."""

    kind = "wandb"

    def __init__(self, options: WandbTracking) -> None:
        super().__init__(f"{options.project}, {options.mode}")
        self.options = options
        self.run: Any = None

    def open(self, run: RunRef, params: Mapping[str, str], tags: Mapping[str, str]) -> Seen:
        wandb = _wandb()
        self.run = wandb.init(
            project=self.options.project, entity=self.options.entity, mode=self.options.mode,
            dir=self.options.dir, name=run.name,
            id=hashlib.sha1(run.key.encode()).hexdigest()[:16], resume="allow",
            group=run.study.name if run.study is not None else None,
            job_type=run.study.kind if run.study is not None and run.role == "run" else run.role,
            config={**params, **tags}, reinit="create_new")
        return Seen()

    def metrics(self, values: Mapping[str, float], step: int) -> None:
        self.run.log(dict(values), step=step)

    def text(self, key: str, text: str, step: int) -> None:
        self.run.summary[key] = text

    def close(self, status: Status) -> None:
        if self.run is not None:
            self.run.finish(exit_code=1 if status == "FAILED" else 0)
            self.run = None
