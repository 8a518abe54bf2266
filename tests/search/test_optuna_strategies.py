"""The Optuna strategies without training: the simplex coordinates, every sampler's proposals,
the successive-halving rule on hand-made scores, NSGA-II's front and the trial loop's budget
and resume, on scripted members (:class:`Scripted`) that score a point without a model."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

from scalarize.errors import ScalarizeError
from scalarize.runs import SearchDir
from scalarize.runs.records import DivergedEvent, EpochEvent, MemberResult, PopulationEvent
from scalarize.search.optuna_sampling import (
    build_pruner,
    build_sampler,
    distributions,
    journal_storage,
    quiet_optuna,
    rungs,
    to_params,
    to_weights,
    trial_seed,
)
from scalarize.search.resolve import check_search, resolve_strategy
from scalarize.search.spec import SearchConfig
from scalarize.search.strategies import STRATEGIES, TrialStrategy
from scalarize.search.trials import TrialSearch
from scalarize.weights import SimplexWeights

optuna = pytest.importorskip("optuna")

TRIAL_STRATEGIES = [n for n in STRATEGIES.names()
                    if isinstance(STRATEGIES.get(n)(), TrialStrategy)]
Score = Callable[[tuple[float, ...], int, int], list[float]]  # (weights, epoch, member)


def bracket_of(pruner: Any, study: Any, number: int) -> int:
    """The Hyperband bracket of trial ``number`` (0 for every other rule): its first rung is
    ``min_epochs · reduction^bracket``, read from Optuna's own (private) assignment, so that the
    tests check what the pruner does."""
    if not isinstance(pruner, optuna.pruners.HyperbandPruner):
        return 0
    if not pruner._pruners:  # built on first use
        pruner._try_initialization(study)
    trial = study.get_trials(deepcopy=False)[number]
    return int(pruner._get_bracket_id(study, trial))


def bowl(weights: tuple[float, ...], epoch: int, member: int) -> list[float]:
    """Per-objective scores peaking at weights (0.6, 0.3, 0.1, …), rising with the epochs."""
    target = np.array([0.6, 0.3, 0.1, 0.0, 0.0][:len(weights)])
    target = target / target.sum()
    gap = float(np.sum((np.array(weights) - target) ** 2))
    return [1.0 - gap - 0.5 / epoch - 0.01 * i for i in range(len(weights))]


class Scripted:
    """A member whose held-out scores are ``score(weights, epoch, member)``: no model."""

    def __init__(self, member: int, weights: SimplexWeights, score: Score) -> None:
        self.id, self.weights, self.score = member, weights, score
        self.diverged, self._epoch = False, 0
        self.names = weights.names

    @property
    def epoch(self) -> int:
        return self._epoch

    def advance(self, end: int) -> Iterator[PopulationEvent]:
        while self._epoch < end:
            self._epoch += 1
            acc = self.scores()
            if acc is None or not all(math.isfinite(a) for a in acc):
                self.diverged = True
                yield DivergedEvent(member=self.id, epoch=self._epoch)
                return
            yield EpochEvent(member=self.id, epoch=self._epoch, weights=self.weights,
                             val_acc=dict(zip(self.names, acc, strict=True)),
                             val_avg_acc=float(np.mean(acc)), seconds=0.0)

    def scores(self) -> list[float] | None:
        if self.diverged or self._epoch == 0:
            return None
        return self.score(self.weights.values, self._epoch, self.id)

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self._epoch, "diverged": self.diverged}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._epoch, self.diverged = state["epoch"], state["diverged"]

    def result(self) -> MemberResult:
        acc = self.scores()
        scores: dict[str, Any] = {}
        if acc is not None:
            named = dict(zip(self.names, acc, strict=True))
            scores = {"val_acc": named, "val_avg_acc": float(np.mean(acc)),
                      "test_acc": named, "test_avg_acc": float(np.mean(acc))}
        return MemberResult(member=self.id, schedule=[(0, list(self.weights.values))],
                            lineage=[], diverged=self.diverged,
                            weights=list(self.weights.values), train_seconds=0.0, **scores)


def config(strategy: str, objectives: int = 3, **search: Any) -> SearchConfig:
    tasks = ["shape", "count", "size", "color", "position"][:objectives]
    return SearchConfig.model_validate({
        "seed": 7, "benchmark": {"tasks": tasks}, "train": {"epochs": search.pop("epochs", 3)},
        "search": {"strategy": strategy, "population": 3, "interval": 1, **search}})


def scripted_search(cfg: SearchConfig, folder, score: Score = bowl) -> TrialSearch:
    tasks = cfg.benchmark.tasks or []
    return TrialSearch(cfg, resolve_strategy(cfg.search), SearchDir(folder), progress=False,
                       objectives=tasks, engine="local",
                       build_member=lambda n, w: Scripted(n, w, score))


def proposals(folder) -> list[tuple[float, ...]]:
    """Every member's weights, by member (from ``population.jsonl``)."""
    seen: dict[int, tuple[float, ...]] = {}
    for event in SearchDir(folder).read_events():
        if isinstance(event, EpochEvent):
            seen.setdefault(event.member, event.weights.values)
    return [seen[m] for m in sorted(seen)]


def study(folder):
    return optuna.load_study(study_name="scalarize",
                             storage=journal_storage(SearchDir(folder).optuna_journal))


# -- the simplex coordinates -------------------------------------------------------------------
@pytest.mark.parametrize("k", [2, 3, 5])
def test_every_coordinate_gives_a_valid_weight_vector(k):
    rng = np.random.default_rng(k)
    corners = [np.zeros(k - 1), np.ones(k - 1), np.eye(k - 1)[0]]
    for z in [*rng.uniform(size=(200, k - 1)), *corners]:
        w = to_weights({f"z{i}": v for i, v in enumerate(z)}, k)
        assert len(w) == k and all(math.isfinite(v) and v >= 0 for v in w)
        assert math.isclose(sum(w), 1.0, abs_tol=1e-12)
        SimplexWeights(tuple(map(str, range(k))), w)  # the project's own check


@pytest.mark.parametrize("k", [2, 3, 4])
def test_coordinates_round_trip_and_are_uniform_on_the_simplex(k):
    rng = np.random.default_rng(0)
    z = rng.uniform(size=(4000, k - 1))
    w = np.array([to_weights({f"z{i}": v for i, v in enumerate(row)}, k) for row in z])
    back = np.array([list(to_params(row).values()) for row in w[:50]])
    assert np.allclose(back, z[:50], atol=1e-9)
    # Dirichlet(1, …, 1): each weight has mean 1/k and variance (k − 1) / (k² (k + 1))
    assert np.allclose(w.mean(axis=0), 1 / k, atol=0.02)
    assert np.allclose(w.var(axis=0), (k - 1) / (k * k * (k + 1)), rtol=0.1)
    assert to_params([1.0, 0.0, 0.0]) == {"z0": 1.0, "z1": 0.0}  # a corner: nothing left


def test_a_search_of_one_objective_is_refused():
    with pytest.raises(ScalarizeError, match="at least two objectives"):
        to_weights({}, 1)


@pytest.mark.parametrize("name", ["random", "tpe", "gp", "cmaes", "nsga2"])
def test_every_sampler_proposes_valid_weights_and_a_seed_repeats_them(name):
    def run(seed: int) -> list[tuple[float, ...]]:
        directions = ["maximize"] * (3 if name == "nsga2" else 1)
        s = optuna.create_study(directions=directions)
        out = []
        for number in range(6):
            s.sampler = build_sampler(name, trial_seed(seed, number), 3, 3, 3)
            trial = s.ask(distributions(3))
            w = to_weights(trial.params, 3)
            out.append(w)
            scores = bowl(w, 1, number)
            s.tell(trial, scores if name == "nsga2" else float(np.mean(scores)))
        return out

    with quiet_optuna():
        first, again, other = run(1), run(1), run(2)
    for w in first:
        assert len(w) == 3 and min(w) >= 0 and math.isclose(sum(w), 1.0, abs_tol=1e-12)
    assert first == again and first != other


# -- successive halving on hand-made scores ------------------------------------------------------
def test_rungs_and_the_asha_rule_on_hand_made_scores():
    assert rungs(1, 3, 9) == [1, 3] and rungs(1, 2, 9) == [1, 2, 4, 8] and rungs(2, 3, 2) == []
    s = optuna.create_study(direction="maximize", pruner=build_pruner(1, 3))

    def reach(values: dict[int, float]) -> bool:
        """A new trial reports ``values`` (epoch: score); whether it is stopped at the last."""
        trial = s.ask(distributions(2))
        for epoch, value in values.items():
            trial.report(value, epoch)
        stopped = trial.should_prune()
        s.tell(trial, state=optuna.trial.TrialState.PRUNED if stopped else
               optuna.trial.TrialState.COMPLETE, values=None if stopped else value)
        return stopped

    # rung epoch 1, keep the best third of the scores seen at that rung so far (ties go on)
    assert not reach({1: 0.50})            # the first at a rung always goes on
    assert reach({1: 0.40})                # 2 at the rung: the best one (0.50) goes on
    assert not reach({1: 0.60})            # 3 at the rung: the best one goes on
    assert reach({1: 0.55})                # 4 at the rung: only 0.60 is in the best third
    assert not reach({1: 0.60})            # a tie with the best third goes on
    assert not reach({1: 0.7, 2: 0.7, 3: 0.71})  # best at epoch 1 and first at rung 3
    assert reach({1: 0.7, 2: 0.7, 3: 0.50})     # best at 1, behind at 3 (2 there: keep 1)


def test_asha_stops_low_members_at_the_rungs_and_counts_member_epochs(tmp_path):
    def score(weights, epoch, member):  # members 0, 3, 6 are good; the rest are poor
        good = member % 3 == 0
        return [0.9 if good else 0.1 + 0.01 * member] * len(weights)

    cfg = config("asha", 2, epochs=9, budget=45, fidelity={"min_epochs": 1, "reduction": 3})
    summary = scripted_search(cfg, tmp_path, score).run()
    stopped = {m.member: m.stopped_epoch for m in summary.members}
    # members 0-2 start together: 0 is first at the rung, 1 is behind it, 2 behind 0
    assert stopped[0] is None and stopped[1] == 1 and stopped[2] == 1
    assert all(stopped[m] is None for m in stopped if m % 3 == 0)
    epochs = {m: max(e.epoch for e in SearchDir(tmp_path).read_events()
                     if isinstance(e, EpochEvent) and e.member == m) for m in stopped}
    assert all(epochs[m] == (9 if s is None else s) for m, s in stopped.items())
    assert summary.member_epochs == sum(epochs.values()) <= 45
    assert summary.population == len(summary.members) > 3  # stopped members freed budget
    assert summary.best_member % 3 == 0
    assert [t.state.name for t in study(tmp_path).trials].count("PRUNED") == sum(
        s is not None for s in stopped.values())


def test_the_hyperband_rule_on_hand_made_scores():
    """9 epochs, rungs every ×3 from 1: bracket 0 ranks at epochs 1 and 3, bracket 1 at 3 only,
    bracket 2 never. In each bracket a first trial scores 0.9 at every epoch and finishes;
    every later trial scores below all trials before it: the worst at its rung, it stops at
    its bracket's first rung, and only there, as it is compared with its own bracket's trials
    only (in bracket 1 it passes epoch 1, where bracket 0 stops it)."""
    pruner = build_pruner(1, 3, "hyperband", 9)
    s = optuna.create_study(study_name="scalarize", direction="maximize", pruner=pruner)
    first_rung = {0: 1, 1: 3, 2: None}
    leaders: set[int] = set()
    seen: dict[int, int] = {}
    for n in range(40):
        trial = s.ask(distributions(2))
        bracket = bracket_of(pruner, s, trial.number)
        good = bracket not in leaders
        value = 0.9 if good else 0.5 - 0.01 * n
        stopped_at = None
        for epoch in range(1, 9):
            trial.report(value, epoch)
            if trial.should_prune():
                stopped_at = epoch
                break
        if stopped_at is None:
            s.tell(trial, value)
        else:
            s.tell(trial, state=optuna.trial.TrialState.PRUNED)
        leaders.add(bracket)
        seen[bracket] = seen.get(bracket, 0) + 1
        assert stopped_at == (None if good else first_rung[bracket]), (trial.number, bracket)
    assert sorted(seen) == [0, 1, 2]  # every bracket was drawn
    assert seen[0] > seen[2]  # the aggressive bracket gets the most trials


def test_hyperband_stops_members_only_at_their_brackets_rungs(tmp_path):
    def score(weights, epoch, member):  # members 0, 3, 6, … are good; the rest are poor
        return [0.9 if member % 3 == 0 else 0.1 + 0.01 * member] * len(weights)

    cfg = config("hyperband", 2, epochs=9, budget=90,
                 fidelity={"min_epochs": 1, "reduction": 3})
    summary = scripted_search(cfg, tmp_path, score).run()
    s = study(tmp_path)
    pruner = build_pruner(1, 3, "hyperband", 9)
    brackets = {m.member: bracket_of(pruner, s, m.member) for m in summary.members}
    stopped = {m.member: m.stopped_epoch for m in summary.members}
    assert {brackets[m] for m in stopped} == {0, 1, 2}
    for member, epoch in stopped.items():
        if epoch is not None:
            assert epoch in rungs(3 ** brackets[member], 3, 9), (member, brackets[member])
    assert any(e is not None for e in stopped.values())
    assert all(stopped[m] is None for m in stopped if brackets[m] == 2)
    assert summary.member_epochs <= 90 and summary.best_member % 3 == 0
    again = scripted_search(cfg, tmp_path / "again", score).run()
    assert again.model_dump(exclude={"seconds"}) == summary.model_dump(exclude={"seconds"})


# -- the loop ------------------------------------------------------------------------------------
@pytest.mark.parametrize("strategy", TRIAL_STRATEGIES)
def test_each_trial_strategy_spends_its_budget_with_valid_reproducible_proposals(strategy,
                                                                                 tmp_path):
    budget = 18 if strategy == "gp" else 27  # a GP proposal takes ~0.5 s on 2 cores
    cfg = config(strategy, 3, budget=budget, startup=3)
    summary = scripted_search(cfg, tmp_path / "a").run()
    again = scripted_search(cfg, tmp_path / "b").run()
    points = proposals(tmp_path / "a")
    assert points == proposals(tmp_path / "b")
    assert summary.model_dump(exclude={"seconds"}) == again.model_dump(exclude={"seconds"})
    for w in points:
        assert len(w) == 3 and min(w) >= 0 and math.isclose(sum(w), 1.0, abs_tol=1e-9)
    params = [tuple(t.params.values()) for t in study(tmp_path / "a").trials]
    if strategy != "nsga2":  # NSGA-II's children may copy a parent (no crossover, mutation)
        assert len(set(params)) == len(params)  # trials asked together are not all alike
    assert all(p == pytest.approx(to_weights(dict(zip(("z0", "z1"), z, strict=True)), 3))
               for p, z in zip(points, params, strict=True))
    assert summary.member_epochs <= budget and summary.strategy == strategy
    if not STRATEGIES.get(strategy)().prunes:
        assert summary.member_epochs == budget and summary.population == budget // 3
    for member in summary.members:
        assert member.schedule == [(0, member.weights)] and member.lineage == []
    # every member-epoch is a line, with the member's id and epoch
    lines = [(e.member, e.epoch) for e in SearchDir(tmp_path / "a").read_events()]
    assert len(lines) == summary.member_epochs == len(set(lines))
    assert (tmp_path / "a" / "members" / "m00.pt").is_file()


@pytest.mark.parametrize("strategy", ["tpe", "asha", "hyperband", "nsga2", "cmaes"])
def test_a_killed_search_resumes_with_the_proposals_of_an_uninterrupted_one(strategy,
                                                                          tmp_path,
                                                                          monkeypatch):
    cfg = config(strategy, 3, epochs=3, budget=36, interval=2,
                 **({"sampler": "tpe"} if strategy in ("asha", "hyperband") else {}))
    whole = scripted_search(cfg, tmp_path / "whole").run()
    real = TrialSearch._step
    calls = {"n": 0}

    def killed(self, slot, number):
        calls["n"] += 1
        if calls["n"] == 17:  # mid-round, after an unsaved round
            raise KeyboardInterrupt
        return real(self, slot, number)

    monkeypatch.setattr(TrialSearch, "_step", killed)
    with pytest.raises(KeyboardInterrupt):
        scripted_search(cfg, tmp_path / "killed").run()
    monkeypatch.setattr(TrialSearch, "_step", real)
    resumed = scripted_search(cfg, tmp_path / "killed").run()
    assert proposals(tmp_path / "killed") == proposals(tmp_path / "whole")
    assert resumed.model_dump(exclude={"seconds"}) == whole.model_dump(exclude={"seconds"})

    def lines(folder):
        return [e.model_dump(exclude={"seconds"}) for e in SearchDir(folder).read_events()]

    assert lines(tmp_path / "killed") == lines(tmp_path / "whole")
    states = [[(t.number, t.state.name, t.values, t.intermediate_values) for t in
               study(tmp_path / f).trials] for f in ("killed", "whole")]
    assert states[0] == states[1]


def test_nsga2_reports_the_pareto_front_of_its_finished_members(tmp_path):
    def trade_off(weights, epoch, member):  # each objective's score is its weight
        return [0.2 + 0.8 * w for w in weights]

    cfg = config("nsga2", 2, epochs=1, budget=12, population=4)
    summary = scripted_search(cfg, tmp_path, trade_off).run()
    s = study(tmp_path)
    assert s.directions == [optuna.study.StudyDirection.MAXIMIZE] * 2
    assert sorted(t.number for t in s.best_trials) == summary.pareto_front
    assert len(summary.pareto_front) == 12  # on a pure trade-off every member is on it
    assert summary.hypervolume_val > 0


def test_a_diverged_trial_fails_and_the_search_goes_on(tmp_path):
    def nan_for_one(weights, epoch, member):
        return [math.nan] * len(weights) if member == 1 else bowl(weights, epoch, member)

    summary = scripted_search(config("tpe", 3, budget=18), tmp_path, nan_for_one).run()
    assert summary.members[1].diverged and summary.best_member != 1
    assert study(tmp_path).trials[1].state.name == "FAIL"
    # the diverged trial spent one epoch and freed its slot; 2 were left over at the end
    assert summary.member_epochs == 16 and summary.population == 6


def test_explicit_points_are_the_first_trials(tmp_path):
    cfg = config("gp", 3, budget=18, points=["uniform", [0.5, 0.5, 0.0]])
    scripted_search(cfg, tmp_path).run()
    first = proposals(tmp_path)[:2]
    assert np.allclose(first, [[1 / 3] * 3, [0.5, 0.5, 0.0]], atol=1e-12)


# -- refusals ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("strategy", "search", "objectives", "message"), [
    ("pbt", {"sampler": "tpe"}, 2, "search.sampler is for the asha and hyperband strategies"),
    ("hyperband", {"sampler": "nsga2"}, 2, "hyperband takes one of random, tpe, gp, cmaes"),
    ("hyperband", {"fidelity": {"min_epochs": 3}}, 2, "leaves no rung below train.epochs=3"),
    ("tpe", {"sampler": "random"}, 2, "tpe proposes with its own sampler"),
    ("asha", {"sampler": "nsga2"}, 2, "asha takes one of random, tpe, gp, cmaes"),
    ("cmaes", {}, 2, "cmaes sampler needs at least 3 objectives"),
    ("asha", {"sampler": "cmaes"}, 2, "cmaes sampler needs at least 3 objectives"),
    ("tpe", {"budget": 2}, 2, "less than one member"),
    ("asha", {"fidelity": {"min_epochs": 3}}, 2, "leaves no rung below train.epochs=3"),
    ("pbt", {"budget": 10}, 2, r"3 members × train.epochs=3 = 9; set train.epochs=3"),
    ("grid", {"budget": 10, "grid_step": 0.5}, 2, "3 members"),
])
def test_a_search_section_a_strategy_cannot_run_is_refused(strategy, search, objectives,
                                                           message):
    cfg = config(strategy, objectives, **search)
    with pytest.raises(ScalarizeError, match=message):
        check_search(cfg, (cfg.benchmark.tasks or [])[:objectives], resolve_strategy(cfg.search))


def test_a_population_budget_that_matches_is_accepted():
    cfg = config("pbt", 2, budget=9)
    check_search(cfg, ["shape", "count"], resolve_strategy(cfg.search))
