"""The report's figure rules on hand-made tables: no fitted line under 10 points, no band
under 3 runs, a log axis with plain labels, legends outside the axes."""

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PolyCollection

from scalarize.report import capacity, conflicts


@pytest.fixture
def drawn(monkeypatch):
    """The figures the section modules save, kept open to look at."""
    figures = []

    def keep(fig, path):
        figures.append(fig)
        return path

    for module in (capacity, conflicts):
        monkeypatch.setattr(module, "save_figure", keep)
    return figures


def _epochs(runs_per_capacity: int, epochs: int = 4) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for c, (cap, params) in enumerate([("small", 2000), ("large", 20000)]):
        for r in range(runs_per_capacity):
            final = rng.random()
            for e in range(1, epochs + 1):
                rows.append({"run": f"{cap}-{r}", "multi_task": True, "capacity": cap,
                             "params": params, "weights_label": f"w{r}", "seed": 0,
                             "epoch": e, "conflict_share": rng.random(),
                             "cos_mean": rng.normal(), "gms_mean": rng.random(),
                             "val_avg_acc": rng.random(), "final_val_avg_acc": final + c})
    return pd.DataFrame(rows)


def _legend_is_outside(fig) -> bool:
    fig.canvas.draw()
    for ax in fig.axes:
        if ax.get_legend() is not None:
            return ax.get_legend().get_window_extent().x0 >= ax.get_window_extent().x1
    return False


@pytest.mark.parametrize(("runs", "line"), [(3, False), (5, True)])  # 6 and 10 points
def test_a_line_is_fitted_only_through_ten_points(drawn, tmp_path, runs, line):
    conflicts.conflict_vs_metric_figure(_epochs(runs), tmp_path / "x.png")
    (fig,) = drawn
    ax = fig.axes[0]
    assert bool(ax.get_lines()) is line
    assert ("no line under 10 runs" in ax.get_title()) is not line
    assert _legend_is_outside(fig)


@pytest.mark.parametrize(("runs", "bands"), [(2, 0), (3, 2)])
def test_conflict_curves_band_only_from_three_runs(drawn, tmp_path, runs, bands):
    conflicts.conflict_curves_figure(_epochs(runs), tmp_path / "x.png")
    (fig,) = drawn
    for ax in fig.axes:
        assert sum(isinstance(c, PolyCollection) for c in ax.collections) == bands
    assert _legend_is_outside(fig)


def _caps(seeds: int) -> pd.DataFrame:
    frame = pd.DataFrame({"capacity": ["resnet8-x0.125", "resnet8-x0.25", "resnet8-x1.0"],
                          "params": [1764, 5180, 77912], "best_gain": [1.0, 2.0, 8.0],
                          "uniform_gain": [0.0, 1.0, 4.0], "seeds": seeds,
                          "axis_width": [0.125, 0.25, 1.0]})
    for key in ("best_gain", "uniform_gain"):
        frame[f"{key}_lo"], frame[f"{key}_hi"] = frame[key] - 1, frame[key] + 1
    return frame.assign(extra_statistic=0.5)  # a column added by the analysis: ignored


@pytest.mark.parametrize(("seeds", "bars"), [(2, False), (3, True)])
def test_gain_over_capacity_reads_well(drawn, tmp_path, seeds, bars):
    capacity.gain_over_capacity_figure(_caps(seeds), tmp_path / "x.png")
    (fig,) = drawn
    ax = fig.axes[0]
    fig.canvas.draw()
    labels = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    assert labels and all("$" not in t for t in labels) and "10k" in labels
    # error bars: their segments have a length only where three seeds make an interval
    lengths = [np.ptp(seg[:, 1]) for c in ax.collections for seg in c.get_segments()]
    assert bool(max(lengths, default=0.0) > 0) is bars
    last = next(t for t in ax.texts if t.get_text() == "resnet8-x1.0")
    assert last.get_annotation_clip() is False  # the last label is drawn past the axes
    assert _legend_is_outside(fig)


def test_two_weightings_give_no_tau_table():
    pairs = pd.DataFrame({"capacity_a": ["s"], "capacity_b": ["l"], "kendall_tau": [1.0],
                          "kendall_p": [1.0], "weightings": [2]})
    two = pd.DataFrame({"weights_label": ["uniform", "w0.75-0.25"]})
    kept, note = capacity.ranked_pairs(pairs, two, ["a", "b"])
    assert kept.empty and "needs ≥ 3 weightings" in note
    three = pairs.assign(weightings=3)
    labels = pd.DataFrame({"weights_label": ["uniform", "a", "b"]})
    kept, note = capacity.ranked_pairs(three, labels, ["a", "b"])
    assert len(kept) == 1 and "one line of the simplex" in note
    kept, note = capacity.ranked_pairs(three, labels, ["a", "b", "c"])
    assert len(kept) == 1 and note == ""
