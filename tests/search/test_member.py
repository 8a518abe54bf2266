"""The member of a search: its held-out split (members rank on it, never on test)."""

import numpy as np

from scalarize.search.member import holdout_split
from scalarize.search.spec import load_search_config
from scalarize.training import load_data


def _config(search_file, *overrides):
    return load_search_config(search_file, list(overrides))


def test_holdout_comes_from_train_and_never_from_test(search_file):
    config = _config(search_file)
    data = load_data(config.base())
    split = holdout_split(data, 0.3, seed=0)
    assert len(split.splits["val"]) == 48 and len(split.splits["train"]) == 112
    assert split.splits["test"] is data.splits["test"]
    rows = {x.tobytes() for x in data.splits["train"].x}
    assert all(x.tobytes() in rows for x in split.splits["val"].x)
    again = holdout_split(data, 0.3, seed=0)
    assert np.array_equal(again.splits["val"].x, split.splits["val"].x)


def test_holdout_is_stratified_by_domain(search_file):
    config = _config(search_file, "benchmark.view=mdl", "benchmark.tasks=null",
                     "benchmark.options.n_train=[60, 20]",
                     "benchmark.options.domains=[flat, sketch]")
    split = holdout_split(load_data(config.base()), 0.25, seed=0)
    assert np.bincount(split.splits["val"].domain).tolist() == [15, 5]
