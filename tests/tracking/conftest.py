"""Helpers of the tracking tests: tiny studies, and what was logged read back with the real
libraries (MLflow's client, TensorBoard's event reader)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from scalarize.runs import RunDir
from tests.conftest import tiny_study
from tests.search.conftest import SEARCH  # the search tests' tiny PBT

SWEEP = tiny_study(width=[8], step=1.0, seeds=[0])


@pytest.fixture()
def sweep_file(tmp_path: Path) -> Path:
    path = tmp_path / "sweep.yaml"
    path.write_text(SWEEP)
    return path


@pytest.fixture(scope="session")
def _finished_search(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A PBT search run once, without tracking (a search is tracked from its folder)."""
    from scalarize.search.spec import load_search_config
    from scalarize.studies.runner import run_search

    root = tmp_path_factory.mktemp("search")
    (root / "search.yaml").write_text(SEARCH)
    run_search(load_search_config(root / "search.yaml"), root / "pbt", progress=False)
    return root / "pbt"


@pytest.fixture()
def finished_search(tmp_path: Path, _finished_search: Path) -> Path:
    """This test's copy of a finished 4-member PBT search folder (``pbt``)."""
    return Path(shutil.copytree(_finished_search, tmp_path / "pbt"))


def kill_after_logging(monkeypatch: pytest.MonkeyPatch, epoch: int) -> None:
    """Stand for a kill after epoch ``epoch`` was logged everywhere (trackers, metrics.jsonl)
    but before its checkpoint was written: the resumed run trains that epoch again."""
    save = RunDir.save_checkpoint

    def killed(run: RunDir, state: dict[str, Any]) -> None:
        if state["epoch"] == epoch:
            monkeypatch.setattr(RunDir, "save_checkpoint", save)
            raise KeyboardInterrupt
        save(run, state)

    monkeypatch.setattr(RunDir, "save_checkpoint", killed)


@pytest.fixture(scope="session")
def _empty_mlflow_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MLflow SQLite store with its tables made (MLflow takes seconds to create them)."""
    mlflow = pytest.importorskip("mlflow", reason="the tracking extra is not installed")
    path = tmp_path_factory.mktemp("mlflow") / "empty.db"
    mlflow.tracking.MlflowClient(f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture()
def mlflow_uri(tmp_path: Path, _empty_mlflow_db: Path) -> str:
    """A fresh MLflow SQLite store of this test (a copy of an empty one)."""
    path = tmp_path / "mlflow.db"
    shutil.copyfile(_empty_mlflow_db, path)
    return f"sqlite:///{path}"
