"""Figure plumbing shared by the report sections: a headless backend, one way to save, and the
rules every figure keeps so that it reads well at a report's width.

- A log axis has a few major ticks with plain labels (``2k``, ``20k``: :func:`log_axis`), never
  matplotlib's crowded ``10^3``-and-minor-labels default.
- A fitted line needs :data:`MIN_FIT_POINTS` points (:func:`can_fit`), a band or an error bar
  over runs needs :data:`MIN_BAND_RUNS` of them (:func:`can_band`): fewer say nothing.
- A legend sits outside the axes (:func:`legend_outside`), so it never hides data.
- Saving keeps every label: the figure is cut to its drawn contents (``bbox_inches="tight"``),
  so an annotation at the last point is not clipped.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # reports are written on servers and in CI: never ask for a display
import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter, NullLocator

#: a least-squares line is drawn through at least this many points
MIN_FIT_POINTS = 10
#: a band (standard error, interval) is drawn where at least this many runs make a point
MIN_BAND_RUNS = 3
#: at most this many labelled ticks on a log axis
MAX_LOG_TICKS = 6


def save_figure(fig: plt.Figure, path: Path) -> Path:
    """Lay out, write as PNG (cut to what is drawn, legends outside the axes included),
    close; returns ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not fig.get_constrained_layout():
        fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight", pad_inches=0.1)
    plt.close(fig)
    return path


def compact(value: float) -> str:
    """A tick label for a count: ``950``, ``2k``, ``1.5k``, ``20k``, ``1.2M``.

    Example:
        >>> [compact(v) for v in (950, 2000, 1500, 20000, 1_200_000, 0.5)]
        ['950', '2k', '1.5k', '20k', '1.2M', '0.5']
    """
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:.3g}{suffix}"
    return f"{value:.3g}"


def log_ticks(low: float, high: float, most: int = MAX_LOG_TICKS) -> list[float]:
    """At most ``most`` round ticks (1, 2, 5 times a power of ten; fewer mantissas, then every
    other decade, when the span is wide) covering ``[low, high]``.

    Example:
        >>> log_ticks(1764, 77912)
        [2000.0, 5000.0, 10000.0, 20000.0, 50000.0]
        >>> log_ticks(10, 1e7)  # seven decades: every other one
        [10.0, 1000.0, 100000.0, 10000000.0]
        >>> log_ticks(300, 400)  # no round number inside: the ends
        [300.0, 400.0]
    """
    if not (low > 0 and high >= low):
        return []
    decades = range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1)
    for mantissas in ((1.0, 2.0, 5.0), (1.0, 3.0), (1.0,)):
        ticks = [m * 10.0**d for d in decades for m in mantissas
                 if low * 0.999 <= m * 10.0**d <= high * 1.001]
        if 2 <= len(ticks) <= most:
            return ticks
    if len(ticks) > most:
        stride = math.ceil(len(ticks) / most)
        return ticks[::stride]
    return [float(f"{low:.2g}"), float(f"{high:.2g}")]


def log_axis(ax: Axes, values: object, axis: str = "x") -> None:
    """A log scale on ``axis`` of ``ax`` whose labelled ticks are :func:`log_ticks` of the
    values' range with :func:`compact` labels; minor ticks unlabelled."""
    numbers = [float(v) for v in values if float(v) > 0]  # type: ignore[attr-defined]
    target = ax.xaxis if axis == "x" else ax.yaxis
    (ax.set_xscale if axis == "x" else ax.set_yscale)("log")
    if not numbers:
        return
    target.set_major_locator(FixedLocator(log_ticks(min(numbers), max(numbers))))
    target.set_major_formatter(FuncFormatter(lambda v, _: compact(v)))
    target.set_minor_locator(NullLocator())
    target.set_minor_formatter(NullFormatter())


def legend_outside(ax: Axes, title: str | None = None) -> None:
    """The legend of ``ax`` to the right of its axes, off the data (nothing when nothing is
    labelled)."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.01, 1.0),
                  borderaxespad=0.0, fontsize=8, title=title, title_fontsize=8)


def can_fit(points: int) -> bool:
    """Whether ``points`` points are enough for a fitted line (:data:`MIN_FIT_POINTS`)."""
    return points >= MIN_FIT_POINTS


def can_band(runs: int) -> bool:
    """Whether ``runs`` runs are enough for a band or error bar (:data:`MIN_BAND_RUNS`)."""
    return runs >= MIN_BAND_RUNS


__all__ = ["MAX_LOG_TICKS", "MIN_BAND_RUNS", "MIN_FIT_POINTS", "can_band", "can_fit",
           "compact", "legend_outside", "log_axis", "log_ticks", "plt", "save_figure"]
