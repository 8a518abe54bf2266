"""The example project (examples/own_model) as a user runs it, from its own folder: its model
factory and data module are named by import target in configs (train, a sweep over the
factory's width, PBT / PB2 / MO-PBT search, replay, a comparison of three methods, the
conflict probe and the report) and passed as objects through the Python API. Nothing here
lives in src/: this is how a user's project meets scalarize."""

from __future__ import annotations

import importlib
import json
import shutil
import sys
from pathlib import Path

import pytest

from scalarize.cli import main
from scalarize.config import load_config
from scalarize.launch import train_run
from scalarize.training import Callback

EXAMPLE = Path(__file__).parents[2] / "examples" / "own_model"
SMALL = ["benchmark.options={n_train: 96, n_test: 32}", "train.epochs=2",
         "train.device=cpu", "--quiet"]


@pytest.fixture()
def project(tmp_path, monkeypatch):
    """A copy of the example project as the working directory, its modules imported fresh."""
    folder = tmp_path / "own_model"
    shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.chdir(folder)
    monkeypatch.syspath_prepend(str(folder))
    for name in ("toydata", "toymodel", "walkthrough"):
        sys.modules.pop(name, None)
    yield folder
    for name in ("toydata", "toymodel", "walkthrough"):
        sys.modules.pop(name, None)


def test_train_resume_and_conflicts_via_import_targets(project, capsys):
    assert main(["train", "configs/train.yaml", "--out", "runs", *SMALL]) == 0
    first = capsys.readouterr().out
    run = next(Path("runs").iterdir())
    assert run.name == "load-mtl-build-depth2-width16-uniform-static-s0"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["objectives"] == ["colour", "mask", "size"]
    assert set(summary["test"]["metrics"]["mask"]) == {"score", "pixel_acc"}
    assert set(summary["test"]["metrics"]["size"]) == {"score", "l1"}
    assert (run / "conflicts.jsonl").stat().st_size > 0
    assert main(["train", "configs/train.yaml", "--out", "runs", "--resume", *SMALL]) == 0
    assert capsys.readouterr().out == first  # finished: the stored summary, no retraining


def test_sweep_over_the_factory_width_with_conflicts_and_report(project, capsys):
    args = ["sweep", "configs/sweep.yaml", "--out", "sweeps/width", *SMALL,
            "sweep.capacities={options: {width: [4, 8]}}"]
    assert main(args) == 0
    capsys.readouterr()
    assert main(["analyze", "capacity", "sweeps/width", "--format", "json"]) == 0
    tables = capsys.readouterr().out
    assert "build-width4" in tables and "build-width8" in tables
    assert main(["analyze", "conflicts", "sweeps/width", "--format", "csv"]) == 0
    assert "build-width4" in capsys.readouterr().out
    assert main(["report", "sweeps/width"]) == 0
    assert (project / "sweeps/width/report/report.html").stat().st_size > 0


@pytest.mark.parametrize("strategy", ["pbt", "pb2", "mopbt"])
def test_search_strategies_on_the_users_model(project, capsys, strategy):
    out = f"searches/{strategy}"
    assert main(["search", "configs/search.yaml", "--out", out, "--strategy", strategy,
                 *SMALL, "search.population=3", "search.interval=1"]) == 0
    assert "best member" in capsys.readouterr().out
    assert main(["replay", out, "--member", "best", "--quiet"]) == 0
    assert "test avg_acc" in capsys.readouterr().out


def test_compare_three_methods_on_the_users_model(project, capsys):
    assert main(["compare", "configs/compare.yaml", "--out", "comparisons/methods",
                 *SMALL, "--format", "csv"]) == 0
    printed = capsys.readouterr().out
    for method in ("static", "pcgrad", "uw", "single-task"):
        assert f"\n{method}," in printed


class _Interrupt(Callback):
    """Stops training (as Ctrl-C would) at the first step after the first epoch's checkpoint."""

    def on_step_end(self, trainer, step, loss):
        if trainer.epoch == 1:
            raise KeyboardInterrupt


def test_streamed_data_resumes_like_an_uninterrupted_run(project, capsys):
    overrides = ["benchmark.name=toydata:stream", "train.workers=0", *SMALL[:-1]]
    assert main(["train", "configs/train.yaml", "--out", "whole", *overrides, "--quiet"]) == 0
    with pytest.raises(KeyboardInterrupt):
        train_run(load_config("configs/train.yaml", overrides), "cut", callbacks=[_Interrupt()],
                  progress=False)
    assert main(["train", "configs/train.yaml", "--out", "cut", *overrides, "--resume",
                 "--quiet"]) == 0
    whole = json.loads(next(Path("whole").iterdir()).joinpath("summary.json").read_text())
    resumed = json.loads(next(Path("cut").iterdir()).joinpath("summary.json").read_text())
    assert resumed["test"] == whole["test"]
    assert resumed["steps"] == whole["steps"]


def test_the_python_api_walkthrough(project, capsys):
    walkthrough = importlib.import_module("walkthrough")
    walkthrough.main("api", epochs=2, n_train=96)
    printed = capsys.readouterr().out
    assert "PBT best member" in printed and "pcgrad" in printed
    assert (project / "api/sweep/report/report.html").is_file()
    summaries = list((project / "api").glob("**/summary.json"))
    assert len(summaries) >= 1 + 8 + 1 + 6  # train, sweep, replay, comparison
