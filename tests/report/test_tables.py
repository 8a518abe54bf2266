import math

import numpy as np
import pandas as pd

from scalarize.analysis.conflicts import summary_table
from scalarize.report.tables import (
    MISSING,
    display_frame,
    format_interval,
    format_value,
    interval_columns,
)


def test_no_cell_reads_nan():
    for value in (math.nan, np.float32("nan"), None, pd.NA, "nan", "NaN"):
        assert format_value(value) == MISSING
    assert format_value(np.int64(3)) == "3" and format_value(0.12345) == "0.123"
    assert format_value(True) == "True" and format_value("uniform") == "uniform"


def test_an_interval_reads_as_one_cell():
    assert format_interval(1.0, 0.5, 1.5) == "1.000 [0.500, 1.500]"
    assert format_interval(1.0, math.nan, math.nan) == "1.000 (n=1)"
    assert format_interval(math.nan, math.nan, math.nan) == MISSING


def test_interval_columns_are_found_by_name_or_by_position():
    columns = ["measure", "within_pearson_mean", "within_lo", "within_hi", "runs",
               "across_pearson", "across_lo", "across_hi", "across_spearman",
               "across_spearman_lo", "across_spearman_hi", "across_n"]
    assert interval_columns(columns) == [
        ("within_pearson_mean", "within_lo", "within_hi"),
        ("across_pearson", "across_lo", "across_hi"),
        ("across_spearman", "across_spearman_lo", "across_spearman_hi")]
    assert interval_columns(["x_lo", "x_hi"]) == []  # no value column: left alone
    assert interval_columns(["gain", "gain_lo"]) == []


def test_display_frame_merges_intervals_and_keeps_the_other_columns_in_order():
    frame = pd.DataFrame({"capacity": ["a", "b"], "gain": [1.0, math.nan],
                          "gain_lo": [0.5, math.nan], "gain_hi": [1.5, math.nan],
                          "acc": [0.5, math.nan], "seeds": [2, 1]})
    shown = display_frame(frame)
    assert list(shown.columns) == ["capacity", "gain", "acc", "seeds"]
    assert shown.gain.tolist() == ["1.000 [0.500, 1.500]", MISSING]
    assert shown.acc.tolist() == ["0.500", MISSING]


def test_a_conflict_summary_shows_without_nan():
    rows = [{"run": f"r{i}", "multi_task": True, "capacity": "c", "params": 1,
             "weights_label": "u", "seed": i, "epoch": e, "conflict_share": 0.1 * e,
             "cos_mean": 0.1 * i, "gms_mean": 0.5, "val_avg_acc": 0.3,
             "final_val_avg_acc": 0.1 * i} for i in range(2) for e in range(1, 3)]
    shown = display_frame(summary_table(pd.DataFrame(rows)))
    cells = shown.to_numpy().ravel().tolist()
    assert not [c for c in cells if "nan" in c.lower()] and MISSING in cells
