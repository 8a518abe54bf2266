"""The comparison table in a benchmark's published columns: scaled means, Δm% over every
column against the single-task runs of the same seed."""

import math

import numpy as np
import pandas as pd
import pytest

from scalarize.analysis.compare import column_name, compare_table
from scalarize.runs.records import TableColumn

COLUMNS = [TableColumn(group="Segmentation", label="mIoU", task="seg", metric="score",
                       higher_is_better=True, scale=100.0),
           TableColumn(group="Depth", label="Abs Err", task="depth", metric="abs_err",
                       higher_is_better=False)]


def _run(label, seed, single, seg, depth):
    return {"label": label, "seed": seed, "single_task": single, "avg_acc": seg,
            "step_ms": 1.0, "peak_memory_mb": np.nan, "m_seg": seg, "s_seg": seg,
            "m_depth": depth, "s_depth": 0.5, "c0": seg, "c1": depth}


def _frame(rows):
    frame = pd.DataFrame(rows)
    frame.attrs.update(objectives=["seg", "depth"], columns=COLUMNS,
                       lower_is_better={"seg": False, "depth": True})
    return frame


def test_published_columns_and_delta_m_by_hand():
    runs = _frame([_run("static", 0, None, 0.44, 0.45), _run("static", 1, None, 0.40, 0.60),
                   _run("single-seg", 0, "seg", 0.40, 9.0), _run("single-depth", 0, "depth",
                                                                 0.1, 0.50),
                   _run("single-seg", 1, "seg", 0.40, 9.0), _run("single-depth", 1, "depth",
                                                                 0.1, 0.50)])
    table = compare_table(runs)
    assert list(table.columns[:4]) == ["method", "Segmentation mIoU ↑", "Depth Abs Err ↓", "Δm%"]
    static = table.iloc[0]
    assert static["Segmentation mIoU ↑"] == pytest.approx(42.0)  # mean of seeds, × 100
    assert static["Depth Abs Err ↓"] == pytest.approx(0.525)
    # seed 0: (+10% mIoU, +10% better depth) → 10; seed 1: (0, −20%) → −10; mean 0
    assert static["Δm%"] == pytest.approx(0.0, abs=1e-9)
    single = table.iloc[-1]
    assert single.method == "single-task"
    assert single["Segmentation mIoU ↑"] == pytest.approx(40.0)
    assert single["Depth Abs Err ↓"] == pytest.approx(0.5)  # from the depth runs only
    assert "gain_pct" not in table and "seg" not in table  # the published columns replace them


def test_delta_m_is_undefined_without_a_baseline_for_every_column():
    table = compare_table(_frame([_run("static", 0, None, 0.44, 0.45),
                                  _run("single-seg", 0, "seg", 0.40, 9.0)]))
    assert math.isnan(table.iloc[0]["Δm%"])


def test_column_name_shows_the_direction():
    assert [column_name(c) for c in COLUMNS] == ["Segmentation mIoU ↑", "Depth Abs Err ↓"]


def test_a_lower_is_better_objective_column_is_marked_with_a_legend():
    runs = _frame([_run("static", 0, None, 0.44, 0.45), _run("single-seg", 0, "seg", 0.40, 9.0),
                   _run("single-depth", 0, "depth", 0.1, 0.50)])
    runs.attrs["columns"] = []  # no published table: one primary metric per objective
    table = compare_table(runs)
    assert list(table.columns[:4]) == ["method", "seg", "depth ↓", "gain_pct"]
    assert table.iloc[0]["depth ↓"] == pytest.approx(0.45)
    assert table.iloc[-1]["depth ↓"] == pytest.approx(0.50)
    assert table.attrs["legend"] == ("↓: lower is better (an error); ↑ or no marker: higher "
                                     "is better")
    runs.attrs["lower_is_better"] = {"seg": False, "depth": False}
    assert "legend" not in compare_table(runs).attrs  # nothing to mark, no legend
