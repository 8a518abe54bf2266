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


def test_holdout_keeps_the_inputs_vocabulary_and_standardisation():
    from scalarize.api import from_arrays, task

    rng = np.random.default_rng(0)
    ids = rng.integers(0, 6, (60, 5))
    ids[0, 0] = 9  # the largest id: wherever the held-out cut puts it, the vocabulary stays
    labels = rng.integers(0, 2, 60)
    tokens = from_arrays([task("a", classes=2)], train=(ids[:50], labels[:50]),
                         test=(ids[50:], labels[50:]), val=(ids[50:], labels[50:]))
    held = holdout_split(tokens, 0.3, seed=0)
    assert held.input.vocab_size == tokens.input.vocab_size == 10
    features = from_arrays([task("a", classes=2)], train=(rng.random((50, 3)), labels[:50]),
                           test=(rng.random((10, 3)), labels[50:]), standardize=True)
    assert holdout_split(features, 0.3, seed=0).input.standardize
