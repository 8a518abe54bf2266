"""Anytime curves of searches (:func:`scalarize.analysis.search.anytime`): best held-out score
and hypervolume so far against member-epochs spent, from ``population.jsonl``."""

from __future__ import annotations

import numpy as np
import pytest

from scalarize.analysis.pareto import hypervolume
from scalarize.analysis.search import anytime, anytime_curve, curve_changes, population_frame
from scalarize.cli import main
from scalarize.errors import ScalarizeError
from scalarize.runs.records import DivergedEvent, EpochEvent, ExploitEvent, SearchPlan
from scalarize.runs.store import SearchDir
from scalarize.search.spec import SearchConfig, load_search_config
from scalarize.studies.runner import run_search
from tests.search.conftest import SEARCH

OBJECTIVES = ["a", "b", "c"]
W = {"a": 0.2, "b": 0.3, "c": 0.5}


def _epoch(member: int, epoch: int, *scores: float) -> EpochEvent:
    return EpochEvent(member=member, epoch=epoch, weights=W,
                      val_acc=dict(zip(OBJECTIVES, scores, strict=True)),
                      val_avg_acc=sum(scores) / 3, seconds=1.0)


# three members, interval 1, in the order the in-process engine writes them: interval by
# interval, member by member, then the interval's exploits
EVENTS = [
    _epoch(0, 1, 0.5, 0.5, 0.5),   # box 0.125
    _epoch(1, 1, 0.9, 0.2, 0.4),   # + 0.072 - overlap (0.5, 0.2, 0.4) 0.04 = 0.157
    DivergedEvent(member=2, epoch=1),  # a spent epoch without a score
    ExploitEvent(member=2, epoch=1, parent=0, weights_before=W, weights=W),  # costs nothing
    _epoch(0, 2, 0.4, 0.4, 0.4),   # dominated by m0's epoch 1: nothing changes
    _epoch(1, 2, 0.2, 0.9, 0.1),   # + 0.018 - (0.01 + 0.004 - 0.004) = 0.165
    _epoch(2, 2, 0.6, 0.6, 0.6),   # m2 continues from m0's copy: 0.216 + 0.072 + 0.018
                                   # - 0.048 - 0.012 - 0.004 + 0.004 = 0.246
    _epoch(0, 1, 0.5, 0.5, 0.5),   # a repeat (a restored Ray trial): counted once
]


def test_hand_made_events_give_the_exact_curve():
    curve = anytime_curve(EVENTS, OBJECTIVES)
    assert curve.member_epochs.tolist() == [1, 2, 3, 4, 5, 6]
    assert curve.best_val_avg_acc.tolist() == pytest.approx([0.5, 0.5, 0.5, 0.5, 0.5, 0.6])
    assert curve.hypervolume.tolist() == pytest.approx(
        [0.125, 0.157, 0.157, 0.157, 0.165, 0.246], abs=1e-12)


def test_the_hand_checked_hypervolume_is_the_exact_one():
    points = np.array([[0.6, 0.6, 0.6], [0.9, 0.2, 0.4], [0.2, 0.9, 0.1], [0.5, 0.5, 0.5]])
    assert hypervolume(points) == pytest.approx(0.246)
    assert hypervolume(points[[1, 2]]) == pytest.approx(0.072 + 0.018 - 0.004)


def test_a_curve_starting_with_a_diverged_epoch_has_no_score_yet():
    curve = anytime_curve([DivergedEvent(member=0, epoch=1), _epoch(1, 1, 0.3, 0.3, 0.3)],
                          OBJECTIVES)
    assert np.isnan(curve.best_val_avg_acc[0]) and curve.hypervolume[0] == 0.0
    assert curve.best_val_avg_acc[1] == pytest.approx(0.3)


def test_curve_changes_keep_the_steps_and_the_last_row():
    curve = anytime_curve(EVENTS, OBJECTIVES).assign(strategy="mopbt")
    assert curve_changes(curve).member_epochs.tolist() == [1, 2, 5, 6]
    flat = anytime_curve(EVENTS[:4], OBJECTIVES).assign(strategy="pbt")
    assert curve_changes(flat).member_epochs.tolist() == [1, 2, 3]


def test_anytime_of_a_search_folder_written_by_hand(tmp_path):
    folder = SearchDir(tmp_path / "mo")
    config = SearchConfig.model_validate({"search": {"strategy": "mopbt", "population": 3}})
    plan = SearchPlan(strategy="mopbt", engine="local", objectives=OBJECTIVES, population=3,
                      epochs=2, interval=1, initial_weights=[[0.2, 0.3, 0.5]] * 3)
    folder.record(config, plan)
    folder.append_events(EVENTS)
    curve = anytime(folder.path)  # an unfinished search has a curve too
    assert list(curve.columns) == ["member_epochs", "best_val_avg_acc", "hypervolume",
                                   "strategy"]
    assert curve.strategy.unique().tolist() == ["mopbt"]
    assert curve.hypervolume.iloc[-1] == pytest.approx(0.246)


@pytest.fixture(scope="module")
def searches(tmp_path_factory):
    root = tmp_path_factory.mktemp("searches")
    (root / "search.yaml").write_text(SEARCH)
    summaries = {}
    for strategy in ["pbt", "random"]:
        config = load_search_config(root / "search.yaml", [f"search.strategy={strategy}"])
        summaries[strategy] = run_search(config, root / "study" / strategy, progress=False)
    return root / "study", summaries


def test_a_real_pbt_search_has_a_monotone_curve_ending_at_its_best_member_epoch(searches):
    study, summaries = searches
    summary = summaries["pbt"]
    assert any(m.lineage for m in summary.members), "no exploit happened"
    curve = anytime(study / "pbt")
    pop = population_frame(study / "pbt")
    assert curve.member_epochs.tolist() == list(range(1, summary.member_epochs + 1))
    assert np.all(np.diff(curve.best_val_avg_acc) >= 0)
    assert np.all(np.diff(curve.hypervolume) >= 0)
    # the curve ends at the best held-out score of any member-epoch; the summary's
    # val_avg_acc is the selected member's last epoch, which can be lower
    assert curve.best_val_avg_acc.iloc[-1] == pytest.approx(pop.val_avg_acc.max())
    assert curve.best_val_avg_acc.iloc[-1] >= summary.val_avg_acc
    points = pop[[f"val_{o}" for o in summary.objectives]].to_numpy()
    assert curve.hypervolume.iloc[-1] == pytest.approx(hypervolume(points))
    assert curve.hypervolume.iloc[-1] >= summary.hypervolume_val


def test_anytime_of_a_folder_of_searches_and_the_command(searches, capsys):
    study, summaries = searches
    curves = anytime(study)
    assert sorted(curves.search.unique()) == ["pbt", "random"]
    assert curves.groupby("search").member_epochs.max().to_dict() == {
        "pbt": summaries["pbt"].member_epochs, "random": summaries["random"].member_epochs}
    assert main(["analyze", "search", str(study), "--format", "csv", "--all-rows"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "search,strategy,member_epochs,best_val_avg_acc,hypervolume" in lines
    rows = [line for line in lines if line.startswith(f"{study}/pbt,pbt,")]
    assert sum(len(row.split(",")) == 5 for row in rows) == 16  # and one row of the table
    assert main(["analyze", "search", str(study / "pbt"), str(study / "random")]) == 0
    printed = capsys.readouterr().out
    assert "== searches ==" in printed and "== anytime" in printed and "random" in printed


def test_analyze_search_refuses_what_holds_no_search(tmp_path, capsys):
    with pytest.raises(ScalarizeError, match="no finished search"):
        anytime(tmp_path)
    assert main(["analyze", "search", str(tmp_path / "missing")]) == 2
    assert main(["analyze", "search", str(tmp_path)]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 2 and all(e.startswith("scalarize: error: ") for e in errors)


def test_the_anytime_hypervolume_at_forty_objectives_grows_and_matches_an_estimate():
    """Past the exact regime each new front point adds an estimate of the volume only it
    dominates: the curve never decreases and ends where an estimate of the whole front is."""
    from scalarize.analysis.pareto import karp_luby, pareto_fronts

    rng = np.random.default_rng(0)
    names = [f"t{i}" for i in range(40)]
    base = rng.uniform(0.6, 0.9, 40)
    points = np.clip(base + rng.normal(0, 0.02, (30, 40)), 0, 1)
    events = [EpochEvent(member=i, epoch=1, weights=dict.fromkeys(names, 1 / 40),
                         val_acc=dict(zip(names, p, strict=True)), val_avg_acc=float(p.mean()),
                         seconds=1) for i, p in enumerate(points)]
    curve = anytime_curve(events, names)
    assert (curve.hypervolume.diff().dropna() >= 0).all()
    value, _ = karp_luby(points[pareto_fronts(points)[0]], 2**17)
    assert abs(curve.hypervolume.iloc[-1] - value) < 0.03 * value
