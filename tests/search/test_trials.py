"""The trial strategies end to end, training tiny members: from the command line, killed and
resumed, replayed, and nsga2 refused on the Ray engine."""

from __future__ import annotations

import math

import pytest

from scalarize.cli import main
from scalarize.errors import ScalarizeError
from scalarize.runs import SearchDir
from scalarize.runs.records import EpochEvent
from scalarize.search.spec import load_search_config
from scalarize.search.trials import TrialSearch
from scalarize.studies.replay import replay, replay_config
from scalarize.studies.runner import run_search

pytest.importorskip("optuna")

TINY = ["model.spec=vit-d1-w16-p8",
        "benchmark.options={n_train: 96, n_val: 32, n_test: 32, image_size: 16}",
        "train.batch_size=32", "train.device=cpu"]
# 3 members of 2 epochs, 2 at a time; asha ranks them after epoch 1
TRIALS = [*TINY, "train.epochs=2", "search.population=2", "search.budget=6", "search.startup=1",
          "search.interval=1"]


def epochs_of(folder) -> list[tuple[int, int]]:
    return [(e.member, e.epoch) for e in SearchDir(folder).read_events()
            if isinstance(e, EpochEvent)]


@pytest.mark.parametrize(("strategy", "extra"), [
    ("tpe", []), ("gp", []), ("nsga2", []), ("asha", ["search.sampler=tpe"]),
    ("hyperband", ["search.sampler=random"]),
    ("cmaes", ["benchmark.tasks=[shape, count, size]"]),
])
def test_each_trial_strategy_runs_from_the_command_line(strategy, extra, search_file,
                                                        tmp_path, capsys):
    out = tmp_path / strategy
    assert main(["search", str(search_file), "--strategy", strategy, "--out", str(out),
                 "--quiet", *TRIALS, *extra]) == 0
    summary = SearchDir(out).read_summary()
    lines = epochs_of(out)
    assert summary.strategy == strategy and summary.engine == "local"
    assert len(lines) == len(set(lines)) == summary.member_epochs <= 6
    assert {m for m, _ in lines} == {m.member for m in summary.members}
    best = next(m for m in summary.members if m.member == summary.best_member)
    assert best.stopped_epoch is None and best.schedule == [(0, best.weights)]
    assert math.isclose(sum(summary.best_weights), 1.0) and len(summary.best_weights) == len(
        summary.objectives)
    assert summary.pareto_front and summary.best_member in {m.member for m in summary.members}
    assert f"scalarize replay {out} --member best" in capsys.readouterr().out
    assert main(["report", str(out)]) == 0  # the report's count of what the search spent
    page = (out / "report" / "report.md").read_text()
    stopped = sum(m.stopped_epoch is not None for m in summary.members)
    spent = (f"{summary.population} members × 2 epochs = {summary.member_epochs} member-epochs"
             if summary.population * 2 == summary.member_epochs and not stopped else
             f"{summary.population} trials of up to 2 epochs ({stopped} stopped early): "
             f"{summary.member_epochs} member-epochs")
    assert spent in page


@pytest.mark.parametrize(("strategy", "extra"), [("tpe", []), ("asha", ["search.sampler=tpe"])])
def test_a_killed_search_resumes_as_an_uninterrupted_one(strategy, extra, search_file,
                                                         tmp_path, monkeypatch):
    config = load_search_config(search_file, [*TRIALS, f"search.strategy={strategy}",
                                              "search.budget=8", *extra])
    whole = run_search(config, tmp_path / "whole", progress=False)
    real = TrialSearch._step
    calls = {"n": 0}

    def killed(self, slot, number):
        calls["n"] += 1
        if calls["n"] == 4:  # the second member's second epoch: after a saved round
            raise KeyboardInterrupt
        return real(self, slot, number)

    monkeypatch.setattr(TrialSearch, "_step", killed)
    with pytest.raises(KeyboardInterrupt):
        run_search(config, tmp_path / "killed", progress=False)
    monkeypatch.setattr(TrialSearch, "_step", real)
    resumed = run_search(config, tmp_path / "killed", progress=False)

    def lines(folder):
        return [e.model_dump(exclude={"seconds"}) for e in SearchDir(folder).read_events()]

    assert lines(tmp_path / "killed") == lines(tmp_path / "whole")
    assert [(m.member, m.weights, m.stopped_epoch, m.test_acc) for m in resumed.members] == [
        (m.member, m.weights, m.stopped_epoch, m.test_acc) for m in whole.members]
    assert resumed.best_member == whole.best_member
    assert resumed.member_epochs == whole.member_epochs
    # a finished search is not trained again
    assert run_search(config, tmp_path / "killed", progress=False).seconds == resumed.seconds


def test_the_best_trial_replays_with_its_static_weights(search_file, tmp_path):
    out = tmp_path / "tpe"
    config = load_search_config(search_file, [*TRIALS, "search.strategy=tpe"])
    summary = run_search(config, out, progress=False)
    run = replay_config(out, "best")
    assert [list(s) for s in run.scalarization.schedule or []] == [[0, summary.best_weights]]
    replayed = replay(out, "best", progress=False)
    assert replayed.weights.values == pytest.approx(summary.best_weights)


def test_the_ray_engine_refuses_nsga2_before_writing_anything(search_file, tmp_path, capsys):
    config = load_search_config(search_file, [*TRIALS, "search.strategy=nsga2"])
    out = tmp_path / "ray"
    with pytest.raises(ScalarizeError, match="the nsga2 strategy is not on the ray engine"):
        run_search(config, out, engine="ray")
    assert main(["search", str(search_file), "--strategy", "nsga2", "--engine", "ray",
                 "--out", str(out), "--quiet", *TRIALS]) == 2
    assert "not on the ray engine" in capsys.readouterr().err
    assert not out.exists()


def test_bad_search_sections_are_refused_before_a_folder_is_written(search_file, tmp_path,
                                                                    capsys):
    out = tmp_path / "bad"
    assert main(["search", str(search_file), "--strategy", "cmaes", "--out", str(out),
                 "--quiet", *TRIALS]) == 2
    assert "needs at least 3 objectives" in capsys.readouterr().err
    assert main(["search", str(search_file), "--out", str(out), "--quiet", *TINY,
                 "search.budget=7"]) == 2  # pbt: 4 members × 4 epochs
    assert "set train.epochs=1 or remove search.budget" in capsys.readouterr().err
    assert not out.exists()
