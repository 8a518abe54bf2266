"""The search command's entry (:func:`scalarize.studies.runner.run_search`): its strategy
resolved once, and that object handed down to the checks, the engine and its decisions."""

import pytest

from scalarize.search.resolve import resolve_strategy
from scalarize.search.spec import load_search_config
from scalarize.studies.runner import run_search

# the shared tiny search (tests/search/conftest.py), shrunk to two members of two epochs
SMALL = ["search.population=2", "train.epochs=2", "train.threads=1"]


@pytest.mark.parametrize("strategy", ["pbt", "grid", "tpe"])
def test_one_search_resolves_its_strategy_once(strategy, search_file, tmp_path, resolutions):
    if strategy == "tpe":
        pytest.importorskip("optuna")
    config = load_search_config(search_file, [*SMALL, f"search.strategy={strategy}",
                                              "search.grid_step=1.0"])
    resolutions.clear()  # the config's loading is not the search's
    summary = run_search(config, tmp_path / "out", progress=False)
    assert summary.member_epochs > 0
    assert resolutions == {"resolve": 1, "build": 1}


def test_a_strategy_resolved_for_another_search_is_refused(search_file, tmp_path):
    config = load_search_config(search_file, SMALL)
    other = resolve_strategy(config.search.model_copy(update={"strategy": "random"}))
    with pytest.raises(ValueError, match="resolved for another search"):
        run_search(config, tmp_path / "out", progress=False, strategy=other)
    assert not (tmp_path / "out").exists()
