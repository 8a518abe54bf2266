"""Names and every other path element from a config stay inside ``--out``; inputs that used to
be accepted though wrong (a depth-0 ViT, a sweep or comparison that plans nothing, a search of
one member) are refused in one line before anything is written."""

from __future__ import annotations

import pytest

from tests.faults.conftest import TINY, assert_one_line_error, assert_unchanged, snapshot

UNSAFE_NAMES = ["../../x", "../x", "..", ".", "/tmp/abs-run", "a/b", "a\\\\b", "'a\\nb'",
                "'a\\tb'", "x" * 121, "' '"]


@pytest.mark.parametrize("name", UNSAFE_NAMES)
def test_unsafe_run_names_are_refused(cli, config_file, tmp_path, name):
    config = config_file()
    work = tmp_path / "work"
    work.mkdir()
    before = snapshot(tmp_path)
    result = cli("train", config, *TINY, f"name={name}", "--out", work / "runs")
    assert_one_line_error(result, "name")
    assert_unchanged(before, tmp_path)
    assert not (work / "runs").exists()


def test_unsafe_name_in_the_config_file(cli, config_file, tmp_path):
    config = config_file("name: ../../escaped\n")
    before = snapshot(tmp_path)
    result = cli("train", config, *TINY, "--out", tmp_path / "a" / "b" / "runs")
    assert_one_line_error(result, "name", "escaped")
    assert_unchanged(before, tmp_path)


def test_a_safe_name_writes_only_inside_out(cli, config_file, tmp_path):
    config = config_file()
    before = snapshot(tmp_path)
    result = cli("train", config, *TINY, "name=my-run.v2", "--out", tmp_path / "runs",
                 "--quiet")
    assert result.status == 0, result.err
    assert_unchanged(before, tmp_path, allowed=["runs/my-run.v2/"])
    assert (tmp_path / "runs" / "my-run.v2" / "summary.json").is_file()


COMPARE = """\
compare:
  methods: [static, {{name: static, weights: [2, 1, 1, 1, 1], label: "{label}"}}]
  seeds: [0]
  single_task: false
"""


@pytest.mark.parametrize("label", ["../escape", "/abs", "a/b", ".."])
def test_unsafe_compare_labels_are_refused(cli, config_file, tmp_path, label):
    config = config_file(COMPARE.format(label=label))
    before = snapshot(tmp_path)
    result = cli("compare", config, *TINY, "--out", tmp_path / "cmp")
    assert_one_line_error(result, "label")
    assert_unchanged(before, tmp_path)


# -- accepted but wrong ----------------------------------------------------------------------

SWEEPS = {
    "no-capacities": ("sweep: {capacities: []}\n", "capacities"),
    "empty-axis": ("sweep: {capacities: {template: 'vit-d{d}-w16-p8', axes: {d: []}}}\n",
                   "axes"),
    "no-axes": ("sweep: {capacities: {template: 'vit-d1-w16-p8', axes: {}}}\n", "axes"),
    "no-seeds": ("sweep: {capacities: [vit-d1-w16-p8], seeds: []}\n", "seeds"),
    "negative-seed": ("sweep: {capacities: [vit-d1-w16-p8], seeds: [-1]}\n", "seeds"),
    "nothing-planned": ("sweep: {capacities: [vit-d1-w16-p8], single_task: false, "
                        "weights: {include_uniform: false}}\n", "plans no runs"),
    "depth-zero": ("sweep: {capacities: [vit-d1-w16-p8, vit-d0-w16-p8]}\n", "vit-d0-w16-p8"),
    "template-axis": ("sweep: {capacities: {template: 'vit-d{depth}-w16-p8', "
                      "axes: {width: [1]}}}\n", "width"),
    "duplicate-seeds": ("sweep: {capacities: [vit-d1-w16-p8], seeds: [0, 1, 0]}\n", "[0]"),
    "duplicate-capacities": ("sweep: {capacities: [vit-d1-w16-p8, vit-d1-w16-p8]}\n",
                             "vit-d1-w16-p8"),
    "template-unused-axis": ("sweep: {capacities: {template: 'vit-d{depth}-w16-p8', "
                             "axes: {depth: [1], width: [16]}}}\n", "['width']"),
}


@pytest.mark.parametrize("case", sorted(SWEEPS))
def test_sweeps_that_plan_nothing_or_wrong(cli, config_file, tmp_path, case):
    text, culprit = SWEEPS[case]
    config = config_file(text)
    before = snapshot(tmp_path)
    result = cli("sweep", config, *TINY, "--out", tmp_path / "sweep", "--quiet")
    assert_one_line_error(result, culprit)
    assert_unchanged(before, tmp_path)
    assert not (tmp_path / "sweep").exists()


COMPARES = {
    "no-methods": ("compare: {methods: []}\n", "methods"),
    "no-seeds": ("compare: {methods: [static], seeds: []}\n", "seeds"),
    "unknown-method-last": ("compare: {methods: [static, pcgrad, nope]}\n", "nope"),
    "bad-option-last": ("compare: {methods: [static, {name: cagrad, options: {zz: 1}}]}\n",
                        "zz"),
    "same-labels": ("compare: {methods: [static, static]}\n", "labels"),
}


@pytest.mark.parametrize("case", sorted(COMPARES))
def test_comparisons_that_are_wrong(cli, config_file, tmp_path, case):
    text, culprit = COMPARES[case]
    config = config_file(text)
    before = snapshot(tmp_path)
    result = cli("compare", config, *TINY, "--out", tmp_path / "cmp", "--quiet")
    assert_one_line_error(result, culprit)
    assert_unchanged(before, tmp_path)
    assert not (tmp_path / "cmp").exists()


SEARCHES = {
    "population-one": ("search: {population: 1}\n", "population"),
    "population-zero": ("search: {population: 0}\n", "population"),
    "unknown-strategy": ("search: {strategy: annealing}\n", "annealing"),
    "holdout-one": ("search: {holdout: 1.0}\n", "holdout"),
    "interval-zero": ("search: {interval: 0}\n", "interval"),
    "bad-spec": ("search: {population: 2}\nmodel: {spec: vit-d1-w16-p5}\n", "patch size 5"),
    "bad-method": ("search: {population: 2}\nmethod: {name: nope}\n", "nope"),
}


@pytest.mark.parametrize("case", sorted(SEARCHES))
def test_searches_that_are_wrong(cli, config_file, tmp_path, case):
    text, culprit = SEARCHES[case]
    config = config_file(text)
    tiny = [o for o in TINY if not o.startswith("model.spec") or "spec" not in text]
    before = snapshot(tmp_path)
    result = cli("search", config, *tiny, "--out", tmp_path / "search", "--quiet")
    assert_one_line_error(result, culprit)
    assert_unchanged(before, tmp_path)
    assert not (tmp_path / "search").exists()
