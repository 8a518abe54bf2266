"""MLflow: one MLflow run per scalarize run, nested under one parent run per study.

The run is found again by its tag ``scalarize.key`` (its folder), so a resumed run, or a run
tracked again, continues the same MLflow run and skips the epochs it already holds. The parent
of a study's runs is found or created lazily by the first of them, by the tag
``scalarize.study`` (the study folder); children carry ``mlflow.parentRunId``. Finding or
creating runs and the experiment holds a lock on this machine, so Ray workers sharing a SQLite
or file store on one machine create one parent. Everything goes through ``MlflowClient`` (no
global active run), so several runs may be tracked in one process.
"""

from __future__ import annotations

import fcntl
import hashlib
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from scalarize.errors import ScalarizeError
from scalarize.tracking._base import (
    EPOCH_KEY,
    SUMMARY_KEY,
    Backend,
    RunRef,
    Seen,
    Status,
    StudyRef,
    flat_params,
)

KEY_TAG = "scalarize.key"
STUDY_TAG = "scalarize.study"
PARENT_TAG = "mlflow.parentRunId"
BATCH = 1000  # metrics per log_batch call (MLflow's limit)
PARAMS_BATCH = 100


def _client_class() -> Any:
    try:
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise ScalarizeError("tracking.mlflow needs MLflow: pip install -c constraints.txt "
                             "'scalarize[tracking]'") from None
    return MlflowClient


def check() -> None:
    """Refuse (one line) when MLflow is missing."""
    _client_class()


@contextmanager
def machine_lock(*parts: str) -> Iterator[None]:
    """An exclusive lock, on this machine, named by ``parts`` (a store and a study)."""
    digest = hashlib.sha1("\0".join(parts).encode()).hexdigest()[:20]
    path = Path(tempfile.gettempdir()) / f"scalarize-tracking-{digest}.lock"
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _quoted(value: str) -> str | None:
    """``value`` as a string literal of MLflow's filter syntax (``None``: cannot be quoted)."""
    for quote in ("'", '"'):
        if quote not in value:
            return f"{quote}{value}{quote}"
    return None


def _artifact_root(uri: str) -> str | None:
    """For a SQLite store, artifacts next to the database (MLflow's default is a folder in the
    working directory, which differs between Ray workers)."""
    if uri.startswith("sqlite:///"):
        return (Path(uri.removeprefix("sqlite:///")).parent / "mlartifacts").as_uri()
    return None


class MlflowBackend(Backend):
    """Logs to the MLflow tracking store at ``where`` in the experiment ``experiment``."""

    kind = "mlflow"

    def __init__(self, where: str, experiment: str = "scalarize") -> None:
        super().__init__(where)
        self.experiment = experiment
        self.client: Any = None
        self.experiment_id = ""
        self.run_id = ""
        self.parent_id: str | None = None

    # -- finding runs -------------------------------------------------------------------------
    def _connect(self) -> None:
        if self.client is not None:
            return
        with machine_lock(self.where, self.experiment):  # the first use may create tables
            self.client = _client_class()(tracking_uri=self.where)
            found = self.client.get_experiment_by_name(self.experiment)
            self.experiment_id = (found.experiment_id if found is not None else
                                  self.client.create_experiment(
                                      self.experiment, artifact_location=_artifact_root(
                                          self.where)))

    def _find(self, tag: str, value: str) -> Any | None:
        quoted = _quoted(value)
        if quoted is not None:
            runs = self.client.search_runs([self.experiment_id],
                                           filter_string=f"tags.`{tag}` = {quoted}",
                                           max_results=1)
            return runs[0] if runs else None
        token = None
        while True:  # a value no literal can hold: look through the experiment
            page = self.client.search_runs([self.experiment_id], page_token=token)
            for run in page:
                if run.data.tags.get(tag) == value:
                    return run
            token = page.token
            if not token:
                return None

    def _parent(self, study: StudyRef) -> str:
        with machine_lock(self.where, self.experiment, str(study.path)):
            found = self._find(STUDY_TAG, str(study.path))
            if found is not None:
                return str(found.info.run_id)
            run = self.client.create_run(self.experiment_id, run_name=study.name,
                                         tags={STUDY_TAG: str(study.path),
                                               "scalarize.kind": study.kind})
            tree = {k: v for k, v in study.read_config().items() if k != "tracking"}
            self._params(run.info.run_id, flat_params(tree), {})
            return str(run.info.run_id)

    def _params(self, run_id: str, params: Mapping[str, str], existing: Mapping[str, str]
                ) -> None:
        from mlflow.entities import Param

        new = [Param(k, v) for k, v in params.items() if k not in existing]
        for i in range(0, len(new), PARAMS_BATCH):
            self.client.log_batch(run_id, params=new[i:i + PARAMS_BATCH])

    # -- the backend --------------------------------------------------------------------------
    def open(self, run: RunRef, params: Mapping[str, str], tags: Mapping[str, str]) -> Seen:
        self._connect()
        all_tags = dict(tags)
        if run.role == "study" and run.study is not None:  # the study's own parent run
            found = self.client.get_run(self._parent(run.study))
        else:
            all_tags[KEY_TAG] = run.key
            if run.study is not None:
                self.parent_id = self._parent(run.study)
                all_tags[PARENT_TAG] = self.parent_id
            with machine_lock(self.where, self.experiment, run.key):
                found = self._find(KEY_TAG, run.key)
                if found is None:
                    found = self.client.create_run(self.experiment_id, run_name=run.name,
                                                   tags=all_tags)
        self.run_id = found.info.run_id
        seen = Seen()
        if found.data.metrics:
            seen.epochs = {m.step for m in self.client.get_metric_history(self.run_id,
                                                                          EPOCH_KEY)}
            seen.summary = SUMMARY_KEY in found.data.metrics
            self.client.update_run(self.run_id, status="RUNNING")
        self.tags(all_tags)
        self._params(self.run_id, params, found.data.params)
        return seen

    def metrics(self, values: Mapping[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        batch = [Metric(k, v, now, step) for k, v in values.items()]
        for i in range(0, len(batch), BATCH):
            self.client.log_batch(self.run_id, metrics=batch[i:i + BATCH])

    def text(self, key: str, text: str, step: int) -> None:
        """An artifact: ``key`` when it names a file (``summary.json``), else one file per
        step (``exploits/epoch-0004.md``)."""
        self.client.log_text(self.run_id, text, key if "." in key else f"{key}/epoch-{step:04d}.md")

    def tags(self, values: Mapping[str, str]) -> None:
        from mlflow.entities import RunTag

        if values:
            self.client.log_batch(self.run_id, tags=[RunTag(k, v[:5000])
                                                     for k, v in values.items()])

    def close(self, status: Status) -> None:
        if self.run_id and status != "RUNNING":
            self.client.set_terminated(self.run_id, status=status)

    def finish_study(self, study: StudyRef) -> None:
        """Mark the study's parent run finished (found, or made if no run of it was tracked)."""
        self._connect()
        self.client.set_terminated(self._parent(study), status="FINISHED")
