"""A benchmark loader (a user's, named by import target) is checked before it is called and
what it returns before anything is written: one line saying what a loader must look like,
exit status 2 through the CLI."""

from __future__ import annotations

import pytest

from scalarize.benchmarks import load_benchmark, load_shapes
from scalarize.errors import ScalarizeError

SMALL = {"n_train": 16, "n_val": 8, "n_test": 8, "cache": False}


def returns_a_tuple(view="mtl", tasks=None, seed=0, **options):
    data = load_shapes(view=view, tasks=tasks, seed=seed, **options)
    return data.tasks, data.splits


def without_keywords(path):
    raise AssertionError("never called")


def fixed_options(view, tasks, seed, n_train=16):
    return load_shapes(view=view, tasks=tasks, seed=seed, n_train=n_train, n_val=8, n_test=8,
                       cache=False)


def needs_root(view, tasks, seed, root):
    raise AssertionError("never called")


HERE = __name__


def _refused(name, match, **options):
    with pytest.raises(ScalarizeError, match=match) as info:
        load_benchmark(f"{HERE}:{name}", **options)
    assert "\n" not in str(info.value)
    return str(info.value)


def test_a_loader_returning_a_tuple_is_one_line():
    said = _refused("returns_a_tuple", r"its loader returned a tuple; a loader is def "
                                       r"load\(view, tasks, seed, \*\*options\) returning a "
                                       r"scalarize\.benchmarks\.Dataset", **SMALL)
    assert "objectives" not in said  # not the AttributeError it was


def test_a_loader_without_the_keywords_is_refused_before_it_is_called():
    _refused("without_keywords", r"its loader\(path\) does not take view=, tasks=, seed=; a "
                                 r"loader is def load")


def test_options_a_loader_does_not_take_or_needs_are_named():
    _refused("fixed_options", r"takes no option 'width' \(given in benchmark\.options\)",
             width=3)
    _refused("needs_root", r"needs 'root'; give it in benchmark\.options")


def test_a_fitting_loader_loads():
    assert load_benchmark(f"{HERE}:fixed_options", n_train=12).splits["train"].x.shape[0] == 12
    assert load_benchmark("shapes", **SMALL).objectives[0] == "shape"


def test_the_cli_refuses_a_tuple_loader_with_status_2(capsys, tmp_path):
    from scalarize.cli import main

    config = tmp_path / "c.yaml"
    config.write_text(f"benchmark: {{name: '{HERE}:returns_a_tuple', options: "
                      "{n_train: 16, n_val: 8, n_test: 8, cache: false}}\n")
    status = main(["train", str(config), "--out", str(tmp_path / "runs"), "--quiet"])
    err = capsys.readouterr().err
    assert status == 2 and "returned a tuple" in err, err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()
