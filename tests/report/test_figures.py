import itertools

import matplotlib.pyplot as plt
import numpy as np
import pytest

from scalarize.report.figures import (
    can_band,
    can_fit,
    compact,
    legend_outside,
    log_axis,
    log_ticks,
    save_figure,
)


def _overlap(boxes) -> bool:
    boxes = sorted(boxes, key=lambda b: b.x0)
    return any(a.x1 > b.x0 for a, b in itertools.pairwise(boxes))


@pytest.mark.parametrize("params", [[1764, 5180, 77912], [900, 3e6], [2000, 2100, 2300]])
def test_a_log_axis_has_few_plain_labels_that_do_not_touch(params):
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(params, np.arange(len(params)), "o")
    log_axis(ax, params)
    fig.canvas.draw()
    labels = [t for t in ax.get_xticklabels() if t.get_text() and t.get_visible()]
    inside = [t for t in labels if ax.get_xlim()[0] <= t.get_position()[0] <= ax.get_xlim()[1]]
    assert 2 <= len(inside) <= 6
    assert all("$" not in t.get_text() for t in inside)  # "2k", not mathtext 10^3
    renderer = fig.canvas.get_renderer()
    assert not _overlap([t.get_window_extent(renderer) for t in inside])
    assert not [t for t in ax.get_xticklabels(minor=True) if t.get_text()]
    plt.close(fig)


def test_ticks_and_labels():
    assert log_ticks(1764, 77912) == [2000, 5000, 10000, 20000, 50000]
    assert len(log_ticks(1, 1e12)) <= 6
    assert compact(20000) == "20k" and compact(77912) == "77.9k"


def test_the_thresholds_of_lines_and_bands():
    assert not can_fit(9) and can_fit(10)
    assert not can_band(2) and can_band(3)


def test_a_legend_outside_the_axes_and_kept_in_the_saved_figure(tmp_path):
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot([0, 1], [0, 1], label="a rather long label for a capacity")
    legend_outside(ax)
    save_figure(fig, tmp_path / "f.png")
    fig.canvas.draw()  # the layout the figure was saved with
    box, axes = ax.get_legend().get_window_extent(), ax.get_window_extent()
    assert box.x0 >= axes.x1  # right of the axes: off the data
    assert box.x1 <= fig.bbox.x1  # and inside the saved figure
