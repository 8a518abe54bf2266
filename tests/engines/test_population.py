import json

import numpy as np
import pytest
import torch

from scalarize.analysis.search import members_frame, population_frame
from scalarize.engines.population import LocalPopulation
from scalarize.errors import ScalarizeError
from scalarize.runs import SearchDir
from scalarize.search.decide import Decision, PopulationPolicy
from scalarize.search.resolve import resolve_strategy
from scalarize.search.spec import load_search_config
from scalarize.studies.runner import run_search
from scalarize.weights import SimplexWeights


def _config(search_file, *overrides):
    return load_search_config(search_file, list(overrides))


def read_population(folder):
    """Every ``population.jsonl`` line as written (a dict)."""
    return [e.dump() for e in SearchDir(folder).read_events()]


def test_pbt_search_writes_population_schedules_and_summary(search_file, tmp_path):
    out = tmp_path / "pbt"
    summary = run_search(_config(search_file), out, progress=False)
    frame = population_frame(out)
    assert len(frame) == 4 * 4 and set(frame.member) == {0, 1, 2, 3}
    exploits = [r for r in read_population(out) if r["event"] == "exploit"]
    assert exploits, "PBT with 4 members and 3 exploit steps exploited nobody"
    best = summary.members[summary.best_member]
    assert summary.best_schedule == best.schedule
    assert summary.member_epochs == 16
    for member in summary.members:
        assert member.schedule[0][0] == 0
        assert len(member.schedule) == len(member.lineage) + 1
        for _, weights in member.schedule:
            assert sum(weights) == pytest.approx(1.0)
    assert 0 < summary.hypervolume_val <= 1
    assert members_frame(out).best.sum() == 1
    assert SearchDir(out).read_summary() == summary
    for event in SearchDir(out).read_events():  # exploits say where the member came from
        if event.event == "exploit":
            assert event.weights_before is not None
            assert event.weights_before.names == ("shape", "count")


def test_exploit_copies_weights_model_and_optimiser_state(search_file, tmp_path, monkeypatch):
    config = _config(search_file, "search.population=2")
    engine = LocalPopulation(config, resolve_strategy(config.search), SearchDir(tmp_path / "s"),
                             progress=False)
    (tmp_path / "s").mkdir()
    for member in engine.members:
        member.trainer.train_epochs(1)
    source, target = engine.members
    moved = SimplexWeights(("shape", "count"), (0.3, 0.7))

    def decide(self, epoch, scores, weights):
        return Decision(epoch, {1: 0}, {1: moved}, {1: weights[1]})

    monkeypatch.setattr(PopulationPolicy, "decide", decide)
    engine._exploit_explore(epoch=1)
    for p_src, p_dst in zip(source.trainer.model.parameters(),
                            target.trainer.model.parameters(), strict=True):
        assert torch.equal(p_src, p_dst) and p_src.data_ptr() != p_dst.data_ptr()
    s_opt, t_opt = source.trainer.optimizer.state_dict(), target.trainer.optimizer.state_dict()
    for key, state in s_opt["state"].items():
        assert torch.equal(state["exp_avg"], t_opt["state"][key]["exp_avg"])
        assert state["exp_avg"].data_ptr() != t_opt["state"][key]["exp_avg"].data_ptr()
    assert target.trainer.step == source.trainer.step
    assert target.weights == moved and source.weights != moved  # the decided weights
    assert target.lineage == [[1, 0]]
    assert target.schedule[0] == source.schedule[0] and target.schedule[1][0] == 1
    # training the copy does not touch the source
    before = [p.clone() for p in source.trainer.model.parameters()]
    target.trainer.train_epochs(1)
    assert all(torch.equal(a, b) for a, b in zip(before, source.trainer.model.parameters(),
                                                 strict=True))


def test_a_member_that_diverges_is_replaced_not_fatal(search_file, tmp_path):
    config = _config(search_file, "train.epochs=3")
    engine = LocalPopulation(config, resolve_strategy(config.search), SearchDir(tmp_path / "nan"),
                             progress=False)
    with torch.no_grad():
        for param in engine.members[2].trainer.model.parameters():
            param.fill_(float("nan"))
    summary = engine.run()
    events = read_population(tmp_path / "nan")
    assert {"event": "diverged", "member": 2, "epoch": 1} in events
    assert any(r["event"] == "exploit" and r["member"] == 2 and r["epoch"] == 1 for r in events)
    member = summary.members[2]
    assert not member.diverged and np.isfinite(member.test_avg_acc)


def test_kill_and_resume_equals_an_uninterrupted_search(search_file, tmp_path, monkeypatch):
    config = _config(search_file)
    whole = run_search(config, tmp_path / "whole", progress=False)

    real_train = LocalPopulation._train
    calls = {"n": 0}

    def killed(self, member, begin, end, bar):
        calls["n"] += 1
        if calls["n"] == 11:  # generation 2, member 2: mid-interval
            raise KeyboardInterrupt
        return real_train(self, member, begin, end, bar)

    monkeypatch.setattr(LocalPopulation, "_train", killed)
    with pytest.raises(KeyboardInterrupt):
        run_search(config, tmp_path / "killed", progress=False)
    monkeypatch.setattr(LocalPopulation, "_train", real_train)
    resumed = run_search(config, tmp_path / "killed", progress=False)

    def strip(records):
        return [{k: v for k, v in r.items() if k != "seconds"} for r in records]

    assert strip(read_population(tmp_path / "killed")) == strip(read_population(tmp_path / "whole"))
    for a, b in zip(whole.members, resumed.members, strict=True):
        assert a.schedule == b.schedule and a.lineage == b.lineage
        assert a.test_acc == b.test_acc
    assert resumed.best_member == whole.best_member
    # a finished search is not trained again
    assert run_search(config, tmp_path / "killed", progress=False).seconds == resumed.seconds


def test_grid_and_random_keep_their_weights(search_file, tmp_path):
    grid = run_search(_config(search_file, "search.strategy=grid", "search.grid_step=0.5",
                              "train.epochs=2"), tmp_path / "grid", progress=False)
    assert [m.weights for m in grid.members] == [[0.0, 1.0], [0.5, 0.5], [1.0, 0.0]]
    assert not [r for r in read_population(tmp_path / "grid") if r["event"] == "exploit"]
    rand = run_search(_config(search_file, "search.strategy=random", "train.epochs=2",
                              "search.population=3"), tmp_path / "random", progress=False)
    assert all(len(m.schedule) == 1 for m in rand.members)


@pytest.mark.parametrize("strategy", ["pb2", "mopbt"])
def test_other_adaptive_strategies_run_and_stay_on_the_simplex(search_file, tmp_path, strategy):
    summary = run_search(_config(search_file, f"search.strategy={strategy}", "train.epochs=5",
                                 "search.population=4"), tmp_path / strategy, progress=False)
    assert summary.strategy == strategy
    for member in summary.members:
        for _, weights in member.schedule:
            assert min(weights) >= 0 and sum(weights) == pytest.approx(1.0)
    assert summary.pareto_front


def test_explicit_points_and_a_different_search_in_the_same_folder(search_file, tmp_path):
    config = _config(search_file, "search.strategy=grid", "search.points=[uniform]",
                     "train.epochs=1")
    summary = run_search(config, tmp_path / "u", progress=False)
    assert summary.population == 1 and summary.best_weights == [0.5, 0.5]
    saved = (tmp_path / "u" / "summary.json").read_text()
    with pytest.raises(ScalarizeError, match="different search"):
        run_search(_config(search_file, "train.epochs=2"), tmp_path / "u", progress=False)
    assert (tmp_path / "u" / "summary.json").read_text() == saved
    assert json.loads(saved)["engine"] == "local"


def test_unknown_strategy_is_a_clear_error(search_file, tmp_path):
    with pytest.raises(ScalarizeError, match="unknown search strategy 'pbx'"):
        run_search(_config(search_file, "search.strategy=pbx"), tmp_path / "x", progress=False)


def test_searching_the_weights_of_a_method_that_ignores_them_is_refused(search_file, tmp_path):
    with pytest.raises(ScalarizeError, match="the search sets the scalarization weights, but "
                       "famo ignores them"):
        run_search(_config(search_file, "method.name=famo"), tmp_path / "s", progress=False)
    assert not (tmp_path / "s").exists()


def test_a_search_folder_continues_only_on_its_own_engine(search_file, tmp_path):
    from scalarize.runs.records import SearchPlan

    config = _config(search_file)
    folder = SearchDir(tmp_path / "s")
    plan = SearchPlan(strategy="pbt", engine="ray", objectives=["a"], population=1, epochs=1,
                      interval=1, initial_weights=[[1.0]])
    folder.record(config, plan)
    with pytest.raises(ScalarizeError, match="run by the ray engine; continue it with "
                       "--engine ray"):
        folder.record(config, plan.model_copy(update={"engine": "local"}))


def test_a_search_on_several_processes_is_refused_in_one_line(search_file, tmp_path):
    with pytest.raises(ScalarizeError, match=r"^train\.nproc=2: a search trains each member in "
                       "one process") as err:
        run_search(_config(search_file, "train.nproc=2"), tmp_path / "s", progress=False)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "s").exists()
