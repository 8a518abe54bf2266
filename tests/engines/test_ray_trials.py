"""The trial strategies on the Ray engine (Ray Tune's OptunaSearch and ASHAScheduler) on a
local Ray, and the parts that need no cluster: the budget searcher, the bracket draw, refusals.

Ray is installed by ``make test`` (the ``ray`` extra); these tests fail, not skip, without it.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
import tempfile
import time

import pytest

from scalarize.engines.ray_trials import ray_refusal
from scalarize.engines.ray_tune import torn_state
from scalarize.errors import ScalarizeError
from scalarize.runs import SearchDir
from scalarize.runs.records import EpochEvent
from scalarize.search.optuna_sampling import hyperband_brackets
from scalarize.search.resolve import resolve_strategy
from scalarize.search.spec import SearchConfig, load_search_config
from scalarize.studies.runner import run_search
from tests.engines.cluster import stop_node

pytest.importorskip("optuna")

TRIALS = ["train.epochs=3", "search.population=2", "search.budget=15", "search.startup=2",
          "search.interval=1", "benchmark.options={n_train: 96, n_val: 16, n_test: 32, "
          "image_size: 16}", "train.batch_size=32"]


@pytest.mark.parametrize("strategy,sampler", [("asha", "tpe"), ("hyperband", "random")])
def test_optuna_with_asha_on_ray_spends_its_budget_into_the_local_engines_store(
        ray_search_file, tmp_path, local_ray, strategy, sampler):
    config = load_search_config(ray_search_file, [*TRIALS, f"search.strategy={strategy}",
                                              f"search.sampler={sampler}"])
    out = tmp_path / "ray"
    summary = run_search(config, out, engine="ray", progress=False)
    folder = SearchDir(out)
    assert summary.engine == "ray" and summary.strategy == strategy
    lines = [(e.member, e.epoch) for e in folder.read_events() if isinstance(e, EpochEvent)]
    assert len(lines) == len(set(lines)) == summary.member_epochs <= 15
    members = {m.member: m for m in summary.members}
    assert sorted(members) == list(range(len(members))) and len(members) >= 5
    for m in summary.members:  # every member: valid static weights, its epochs, its state
        assert math.isclose(sum(m.weights), 1.0) and min(m.weights) >= 0
        trained = max(e for n, e in lines if n == m.member)
        assert trained == (3 if m.stopped_epoch is None else m.stopped_epoch)
        assert m.schedule == [(0, m.weights)] and folder.member_checkpoint(m.member).is_file()
        assert (m.test_avg_acc is None) == (m.stopped_epoch is not None)
    best = members[summary.best_member]
    assert best.stopped_epoch is None and summary.best_weights == best.weights
    assert summary.val_avg_acc == max(m.val_avg_acc for m in summary.members
                                      if m.stopped_epoch is None)
    # a finished search is read back, not run again
    again = run_search(config, out, engine="ray", progress=False)
    assert again.model_dump() == summary.model_dump()


def test_a_ray_trial_search_killed_from_outside_resumes_and_spends_its_budget(
        ray_search_file, tmp_path):
    """A user's kill -9 in the middle of an ASHA+TPE search on Ray, then the same command
    again: Tune restores its experiment from the search folder and the search ends with the
    budget spent once, every epoch recorded once, and a best member that trained to the end.
    The same killed folder with Tune's searcher state cut short (a kill while Tune copied it)
    is refused in one line and left as it was."""
    out = tmp_path / "ray"
    command = [sys.executable, "-m", "scalarize.cli", "search", str(ray_search_file),
               "--engine", "ray", "--out", str(out), "--quiet", *TRIALS,
               "search.strategy=asha", "search.sampler=tpe"]
    ray_dir = tempfile.mkdtemp(prefix="rayk", dir="/tmp")  # short: Ray's socket paths
    env = {**os.environ, "RAY_TMPDIR": ray_dir, "RAY_AUTH_MODE": "disabled"}
    events = out / "population.jsonl"

    def epochs_recorded() -> int:
        lines = events.read_text().splitlines() if events.is_file() else []
        return sum('"event": "epoch"' in line for line in lines)

    first = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True, env=env)
    try:
        deadline = time.monotonic() + 180
        while epochs_recorded() < 4:
            assert first.poll() is None, "the search ended before it could be killed"
            assert time.monotonic() < deadline, "no epoch was recorded within 3 minutes"
            time.sleep(0.1)
    finally:
        stop_node(first, ray_dir)  # its process group, then what Ray daemonised outside it
    killed_at = epochs_recorded()
    assert not (out / "summary.json").exists()  # killed half-way, not finished
    torn = out.parent / "torn"  # the same killed search, its searcher's state then cut short
    shutil.copytree(out, torn)
    cut = sorted(SearchDir(torn).ray_experiment.glob("searcher-state-*.pkl"))[-1]
    cut.write_bytes(cut.read_bytes()[:10])
    refused = subprocess.run([*command[:command.index("--out") + 1], str(torn),
                              *command[command.index("--out") + 2:]],
                             capture_output=True, text=True, timeout=300, env=env)
    assert refused.returncode == 2, refused.stderr[-2000:]
    assert refused.stderr.strip() == (
        f"scalarize: error: cannot continue the Ray search in {torn}: it was killed while Ray "
        f"Tune copied its state ({cut.name} is cut short); delete the folder to start again")
    assert not (torn / "summary.json").exists() and len(cut.read_bytes()) == 10  # untouched
    # the kill itself may fall in Tune's copy of its state (pass 6 of a make test-flaky count:
    # Tune then started the search again with part of its old state and ended it early)
    cut_by_kill = torn_state(SearchDir(out).ray_experiment)
    again = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    subprocess.run(["pkill", "-9", "-f", ray_dir], check=False)
    if cut_by_kill is not None:  # refused in one line, as above
        assert again.returncode == 2 and cut_by_kill in again.stderr, again.stderr[-2000:]
        return
    assert again.returncode == 0, again.stderr[-2000:]
    folder = SearchDir(out)
    summary = folder.read_summary()
    lines = [(e.member, e.epoch) for e in folder.read_events() if isinstance(e, EpochEvent)]
    assert len(lines) >= killed_at
    assert len(lines) == len(set(lines)) == summary.member_epochs <= 15
    members = {m.member: m for m in summary.members}
    assert sorted(members) == list(range(len(members))) and len(members) >= 5
    for m in summary.members:
        assert math.isclose(sum(m.weights), 1.0) and min(m.weights) >= 0
        assert max(e for n, e in lines if n == m.member) == (
            3 if m.stopped_epoch is None else m.stopped_epoch)
    assert members[summary.best_member].stopped_epoch is None


def test_hyperband_brackets_match_the_local_rule():
    assert hyperband_brackets(1, 3, 9) == 3 and hyperband_brackets(1, 3, 3) == 2
    assert hyperband_brackets(1, 2, 8) == 4


@pytest.mark.parametrize(("strategy", "extra", "message"), [
    ("nsga2", [], "the nsga2 strategy is not on the ray engine"),
    ("cmaes", ["benchmark.tasks=[shape, count, size]"], "the cmaes strategy is not on the ray"),
    ("asha", ["search.sampler=cmaes", "benchmark.tasks=[shape, count, size]"],
     "search.sampler=cmaes is not on the ray engine"),
])
def test_what_ray_does_not_run_is_refused_before_writing_anything(ray_search_file, tmp_path,
                                                                  strategy, extra, message):
    config = load_search_config(ray_search_file, [*TRIALS, f"search.strategy={strategy}", *extra])
    assert ray_refusal(resolve_strategy(config.search), config) is not None
    with pytest.raises(ScalarizeError, match=message):
        run_search(config, tmp_path / "out", engine="ray")
    assert not (tmp_path / "out").exists()


def test_population_strategies_are_not_refused():
    config = SearchConfig.model_validate({"search": {"strategy": "pbt"}})
    assert ray_refusal(resolve_strategy(config.search), config) is None
