"""The search study's table on hand-made cells: intervals, regret against the reference grid's
best point, paired tests against the best strategy, Holm's adjustment, the transfer table."""

from __future__ import annotations

import math

import pytest
from scipy import stats

from scalarize.analysis.search_study import (
    TABLE_COLUMNS,
    UNIFORM_COLUMNS,
    ReferenceCell,
    StudyCell,
    holm,
    read_cells,
    reference_scores,
    study_table,
    transfer_table,
    uniform_table,
    write_cell,
)
from scalarize.analysis.stats import mean_ci
from scalarize.errors import ScalarizeError, SelectionFallbackWarning

SCORES = {"tpe": [0.80, 0.82, 0.79, 0.81, 0.83], "random": [0.70, 0.75, 0.71, 0.74, 0.72],
          "grid": [0.79, 0.83, 0.78, 0.80, 0.84]}


def cell(strategy: str, seed: int, score: float, val: float | None = None,
         **transfer: float) -> StudyCell:
    return StudyCell(strategy=strategy, seed=seed, member_epochs=12, search_seconds=1.0,
                     weights=[0.5, 0.5], val_avg_acc=score, test_avg_acc=score,
                     test_acc={"a": score, "b": score}, transfer=transfer,
                     retrained_val_avg_acc=score if val is None else val)


def cells() -> list[StudyCell]:
    return [cell(s, seed, v) for s, values in SCORES.items() for seed, v in enumerate(values)]


def reference(val: dict[int, float] | None = None) -> list[ReferenceCell]:
    # point 1 is best on average (0.85); point 0 is better at seed 0 only; validation scores
    # as test unless ``val`` (point -> validation score) says otherwise
    values = {0: [0.90, 0.60, 0.60, 0.60, 0.60], 1: [0.84, 0.85, 0.86, 0.84, 0.86]}
    return [ReferenceCell(point=p, seed=s, weights=[p / 1, 1 - p / 1], test_avg_acc=v,
                          val_avg_acc=v if val is None else val[p])
            for p, row in values.items() for s, v in enumerate(row)]


def test_the_best_strategy_is_chosen_on_the_retrained_runs_validation_scores():
    """On test tpe is best (mean 0.810 against grid's 0.808); validation prefers grid, so the
    others are tested against grid."""
    val = {"tpe": 0.5, "random": 0.4, "grid": 0.9}
    table = study_table([cell(s, seed, v, val=val[s]) for s, values in SCORES.items()
                         for seed, v in enumerate(values)]).set_index("strategy")
    assert table.loc["grid", "diff_vs_best"] == 0.0
    assert table.loc["tpe", "diff_vs_best"] != 0.0


def test_cells_without_the_retrained_validation_score_fall_back_to_test_with_a_warning():
    old = [c.model_copy(update={"retrained_val_avg_acc": None}) for c in cells()]
    with pytest.warns(SelectionFallbackWarning, match="highest mean test score"):
        table = study_table(old).set_index("strategy")
    assert table.loc["tpe", "diff_vs_best"] == 0.0


def test_the_reference_grids_best_point_is_selected_on_validation():
    """Validation prefers point 0: its test scores are reported, though point 1 tests
    better."""
    ref, weights = reference_scores(reference(val={0: 0.9, 1: 0.5}))
    assert weights == [0.0, 1.0] and ref.tolist() == [0.90, 0.60, 0.60, 0.60, 0.60]


def test_reference_cells_without_validation_fall_back_to_test_with_a_warning():
    old = [c.model_copy(update={"val_avg_acc": None}) for c in reference()]
    with pytest.warns(SelectionFallbackWarning, match="selected on test"):
        _, weights = reference_scores(old)
    assert weights == [1.0, 0.0]


def test_the_table_has_intervals_regret_and_paired_tests_against_the_best():
    table = study_table(cells(), reference())
    assert list(table.columns) == TABLE_COLUMNS
    assert table.strategy.tolist() == ["tpe", "grid", "random"]  # best mean first
    row = table.set_index("strategy").loc["random"]
    mean, low, high = mean_ci(SCORES["random"])
    assert (row.test_avg_acc, row.test_low, row.test_high) == pytest.approx((mean, low, high))
    ref, weights = reference_scores(reference())
    assert weights == [1.0, 0.0] and ref.tolist() == [0.84, 0.85, 0.86, 0.84, 0.86]
    regret = mean_ci([r - v for r, v in zip(ref, SCORES["random"], strict=True)])
    assert (row.regret, row.regret_low, row.regret_high) == pytest.approx(regret)
    # paired over seeds against tpe, Holm over the two comparisons
    raw = {s: stats.ttest_rel(SCORES[s], SCORES["tpe"]).pvalue for s in ("random", "grid")}
    adjusted = dict(zip(raw, holm(list(raw.values())), strict=True))
    assert row.p_ttest == pytest.approx(adjusted["random"]) and bool(row.significant)
    grid = table.set_index("strategy").loc["grid"]
    assert grid.p_ttest == pytest.approx(adjusted["grid"]) and not bool(grid.significant)
    assert grid.diff_vs_best == pytest.approx(sum(SCORES["grid"]) / 5 - sum(SCORES["tpe"]) / 5)
    best = table.set_index("strategy").loc["tpe"]
    assert math.isnan(best.p_ttest) and best.diff_vs_best == 0 and not bool(best.significant)
    # with 5 seeds the exact two-sided Wilcoxon test cannot go below 1/16
    assert row.p_wilcoxon >= 0.0625


def test_without_a_reference_there_is_no_regret_and_one_seed_has_no_interval():
    table = study_table([cell("tpe", 0, 0.8), cell("random", 0, 0.7)])
    assert table.regret.isna().all() and table.test_low.isna().all()
    assert table.p_ttest.isna().all() and not table.significant.any()


def test_holm_adjusts_in_order_and_keeps_nan():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    kept = holm([0.2, math.nan])
    assert kept[0] == pytest.approx(0.2) and math.isnan(kept[1])


def test_transfer_table_and_cells_round_trip(tmp_path):
    written = [cell("tpe", s, 0.8 + s / 100, **{"vit-d2": 0.85 + s / 100}) for s in range(3)]
    written.append(ReferenceCell(point=0, seed=0, weights=[1.0, 0.0], test_avg_acc=0.9))
    for c in written:
        write_cell(tmp_path, c)
    found, ref = read_cells(tmp_path)
    assert found == written[:3] and ref == written[3:]
    transfer = transfer_table(found)
    assert transfer.spec.tolist() == ["vit-d2"] and transfer.seeds.tolist() == [3]
    assert transfer.test_avg_acc.iloc[0] == pytest.approx(0.86)


def test_a_corrupt_cell_or_an_empty_folder_is_one_line(tmp_path):
    with pytest.raises(ScalarizeError, match="holds no study cells"):
        read_cells(tmp_path)
    write_cell(tmp_path, cell("tpe", 0, 0.8))
    (tmp_path / "cells" / "tpe-s0.json").write_text("{")
    with pytest.raises(ScalarizeError, match=r"tpe-s0\.json is corrupt"):
        read_cells(tmp_path)


def test_against_uniform_paired_tests_holm_tost_and_verdicts():
    base = [0.70, 0.72, 0.71, 0.73, 0.69]
    offsets = {"better": [0.03, 0.035, 0.028, 0.032, 0.031],   # clearly above
               "same": [0.001, -0.002, 0.0, 0.002, -0.001],     # within ±0.01
               "noisy": [0.03, -0.04, 0.05, -0.03, 0.02]}       # neither
    made = [cell("uniform", s, v) for s, v in enumerate(base)]
    for name, row in offsets.items():
        made += [cell(name, s, base[s] + d) for s, d in enumerate(row)]
    table = uniform_table(made).set_index("strategy")
    assert list(table.reset_index().columns) == UNIFORM_COLUMNS
    verdicts = table.verdict.to_dict()
    assert verdicts == {"better": "better", "same": "equivalent", "noisy": "inconclusive",
                        "uniform": "reference"}
    raw = {name: stats.ttest_rel([base[s] + d for s, d in enumerate(row)], base).pvalue
           for name, row in offsets.items()}
    assert table.p_ttest.drop("uniform").to_dict() == pytest.approx(
        dict(zip(raw, holm(list(raw.values())), strict=True)))
    same = [b + d for b, d in zip(base, offsets["same"], strict=True)]
    diff = [a - b for a, b in zip(same, base, strict=True)]
    assert table.loc["same", "diff_vs_uniform"] == pytest.approx(sum(diff) / 5)
    assert table.loc["same", "p_tost"] <= 3 * max(  # Holm over three: at most 3 × raw
        stats.ttest_1samp(diff, -0.01, alternative="greater").pvalue,
        stats.ttest_1samp(diff, 0.01, alternative="less").pvalue) + 1e-12
    assert uniform_table([cell("tpe", 0, 0.5)]).empty  # no uniform: no table
