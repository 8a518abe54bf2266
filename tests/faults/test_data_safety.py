"""Nothing already written is lost or blocked by a mistake: ``--overwrite`` with a bad config
keeps the old run, a refused config leaves no folder in the way of the corrected command, a
study validates every entry before it trains the first."""

from __future__ import annotations

import pytest

from tests.faults.conftest import TINY, assert_one_line_error, assert_unchanged, snapshot


@pytest.fixture
def finished(cli, config_file, tmp_path):
    config = config_file()
    out = tmp_path / "runs"
    result = cli("train", config, *TINY, "name=r", "--out", out, "--quiet")
    assert result.status == 0, result.err
    return config, out


@pytest.mark.parametrize("bad,culprit", [
    ("model.spec=vit-d1-w16-p5", "patch size 5"),
    ("method.name=nope", "nope"),
    ("scalarization.weights=[1, 2]", "weights"),
    ("train.lr=-1", "train.lr"),
    ("benchmark.tasks=[smell]", "smell"),
    ("probes={conflicts: {every: 0}}", "every"),
])
def test_overwrite_with_an_invalid_config_keeps_the_old_run(cli, finished, bad, culprit):
    config, out = finished
    before = snapshot(out)
    result = cli("train", config, *TINY, "name=r", bad, "--out", out, "--overwrite")
    assert_one_line_error(result, culprit)
    assert_unchanged(before, out)


def test_overwrite_with_a_valid_config_replaces_the_run(cli, finished):
    config, out = finished
    result = cli("train", config, *TINY, "name=r", "seed=3", "--out", out, "--overwrite",
                 "--quiet")
    assert result.status == 0, result.err
    assert "seed: 3" in (out / "r" / "config.yaml").read_text()


@pytest.mark.parametrize("bad", ["model.spec=vit-d1-w16-p5", "method.name=nope",
                                 "scalarization.weights=[1, 2]"])
def test_a_refused_config_leaves_nothing_in_the_way(cli, config_file, tmp_path, bad):
    config = config_file()
    out = tmp_path / "runs"
    assert_one_line_error(cli("train", config, *TINY, "name=r", bad, "--out", out))
    assert not (out / "r").exists()
    result = cli("train", config, *TINY, "name=r", "--out", out, "--quiet")
    assert result.status == 0, result.err  # the corrected command is not blocked


def test_a_sweep_validates_its_last_entry_before_training_the_first(cli, config_file, tmp_path):
    config = config_file("sweep: {capacities: [vit-d1-w16-p8, vit-d1-w32-p8, vit-d1-w16-p7], "
                         "single_task: false}\n")
    before = snapshot(tmp_path)
    result = cli("sweep", config, *TINY, "--out", tmp_path / "sweep", "--quiet")
    assert_one_line_error(result, "vit-d1-w16-p7")
    assert_unchanged(before, tmp_path)


def test_a_sweep_validates_its_weights_points(cli, config_file, tmp_path):
    config = config_file("sweep: {capacities: [vit-d1-w16-p8], single_task: false, "
                         "weights: {points: [[1, 1, 1, 1, 1], [1, -2, 1, 1, 1]]}}\n")
    before = snapshot(tmp_path)
    result = cli("sweep", config, *TINY, "--out", tmp_path / "sweep", "--quiet")
    assert_one_line_error(result, ">= 0")
    assert_unchanged(before, tmp_path)


def test_a_comparison_validates_every_entry_first(cli, config_file, tmp_path):
    config = config_file("compare: {methods: [static, pcgrad, {name: static, "
                         "weights: [1, 2], label: two}], single_task: false}\n")
    before = snapshot(tmp_path)
    result = cli("compare", config, *TINY, "--out", tmp_path / "cmp", "--quiet")
    assert_one_line_error(result, "weights")
    assert_unchanged(before, tmp_path)


def test_a_different_study_in_the_folder_is_refused_and_kept(cli, config_file, tmp_path):
    first = config_file("sweep: {capacities: [vit-d1-w16-p8], single_task: false}\n", "a.yaml")
    out = tmp_path / "sweep"
    assert cli("sweep", first, *TINY, "--out", out, "--quiet").status == 0
    second = config_file("sweep: {capacities: [vit-d1-w32-p8], single_task: false}\n",
                         "b.yaml")
    before = snapshot(out)
    result = cli("sweep", second, *TINY, "--out", out, "--quiet")
    assert_one_line_error(result, "different sweep")
    assert "--overwrite" not in result.err  # the sweep has no such flag: do not suggest it
    assert_unchanged(before, out)


def test_resume_with_another_config_is_refused_and_kept(cli, finished):
    config, out = finished
    (out / "r" / "summary.json").unlink()
    before = snapshot(out)
    result = cli("train", config, *TINY, "name=r", "seed=9", "--out", out, "--resume")
    assert_one_line_error(result, "differs")
    assert_unchanged(before, out)


def test_a_run_again_without_flags_is_refused_and_kept(cli, finished):
    config, out = finished
    before = snapshot(out)
    result = cli("train", config, *TINY, "name=r", "--out", out)
    assert_one_line_error(result, "already exists", "--resume")
    assert_unchanged(before, out)


def test_a_changed_config_is_told_it_differs_before_it_tries_resume(cli, finished):
    config, out = finished
    before = snapshot(out)
    result = cli("train", config, *TINY, "name=r", "seed=9", "--out", out)
    assert_one_line_error(result, "already exists", "differs", "--overwrite")
    assert "--resume" not in result.err
    assert_unchanged(before, out)


def test_a_damaged_line_inside_a_log_is_an_error_not_a_silent_cut(cli, finished):
    """A torn last line is what a kill leaves (ignored); a bad line before it is damage."""
    config, out = finished
    metrics = out / "r" / "metrics.jsonl"
    lines = metrics.read_text().splitlines()
    metrics.write_text("\n".join(["{broken", *lines]) + "\n")
    (out / "r" / "summary.json").unlink()
    before = snapshot(out)
    result = cli("train", config, *TINY, "name=r", "--out", out, "--resume")
    assert_one_line_error(result, "metrics.jsonl", "line 1")
    assert_unchanged(before, out)


def test_analysis_survives_a_baseline_that_scored_zero():
    """A single-task run at 0 makes Δ undefined (NaN) for its capacity: the tables show it as
    missing, the other capacities are analysed, nothing raises."""
    import math

    import pandas as pd

    from scalarize.analysis import per_capacity, transfer_regret
    from scalarize.analysis.gain import multitask_gain

    assert math.isnan(multitask_gain({"a": 0.5, "b": 0.5}, {"a": 0.0, "b": 0.4}))
    nan = float("nan")
    summary = pd.DataFrame([
        {"capacity": "small", "weights_label": label, "gain": nan, "gain_lo": nan,
         "gain_hi": nan, "params": 10, "seeds": 1, "w_a": wa, "w_b": 1 - wa}
        for label, wa in (("uniform", 0.5), ("w0.8-0.2", 0.8))
    ] + [
        {"capacity": "big", "weights_label": label, "gain": gain, "gain_lo": gain,
         "gain_hi": gain, "params": 100, "seeds": 1, "w_a": wa, "w_b": 1 - wa}
        for label, wa, gain in (("uniform", 0.5, 2.0), ("w0.8-0.2", 0.8, 3.0))
    ])
    table = per_capacity(summary).set_index("capacity")
    assert math.isnan(table.loc["small", "best_gain"])
    assert table.loc["big", "best_weights"] == "w0.8-0.2"
    assert transfer_regret(summary).empty  # nothing to transfer from an undefined best
