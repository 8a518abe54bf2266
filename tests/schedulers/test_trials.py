"""The trial strategies' searcher on Ray: Optuna's proposals within the member-epoch budget."""

from scalarize.schedulers.trials import BudgetSearch
from scalarize.search.optuna_sampling import distributions, to_weights


def test_the_budget_searcher_holds_the_population_and_the_budget():
    import optuna
    from ray.tune.search import Searcher
    from ray.tune.search.optuna import OptunaSearch

    inner = OptunaSearch(space=distributions(3), metric="score", mode="max",
                         sampler=optuna.samplers.RandomSampler(seed=0), study_name="s")
    search = BudgetSearch(inner, "tpe", 7, 3, population=2, startup=2, epochs=3, budget=10)
    a, b = search.suggest("a"), search.suggest("b")
    assert a is not None and b is not None and (a["member"], b["member"]) == (0, 1)
    assert search.suggest("c") is None  # two running: the population
    assert len(to_weights(a, 3)) == 3
    search.on_trial_result("a", {"training_iteration": 1, "score": 0.2})
    search.on_trial_complete("a", {"training_iteration": 1, "score": 0.2})  # stopped early
    c = search.suggest("c")  # 1 spent + 3 claimed by b: 4 of 10, a whole trial fits
    assert c is not None and c["member"] == 2
    assert search.suggest("d") is None  # population full
    search.on_trial_complete("b", {"training_iteration": 3, "score": 0.5})
    d = search.suggest("d")  # 4 spent + 3 claimed by c: 3 left, a whole trial fits
    assert d is not None and d["member"] == 3
    search.on_trial_complete("c", {"training_iteration": 3, "score": 0.4})
    assert search.suggest("e") is None  # 7 spent + 3 claimed by d: none fits, d runs
    search.on_trial_complete("d", {"training_iteration": 3, "diverged": True})
    assert search.suggest("e") == Searcher.FINISHED  # 10 spent, nothing runs
    states = [t.state.name for t in inner._ot_study.get_trials(deepcopy=False)]
    assert states == ["PRUNED", "COMPLETE", "COMPLETE", "FAIL"]
