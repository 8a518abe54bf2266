"""How a report shows a table: numbers rounded, a value and its interval in one cell, and no
cell that reads ``nan``.

An analysis frame carries an interval as three columns, ``X`` and ``X_lo``/``X_hi`` (or the value
column right before ``<prefix>_lo``, as ``within_pearson_mean``, ``within_lo``, ``within_hi``).
For display they become one column ``X`` whose cells read ``0.412 [0.371, 0.455]``; a value
without an interval (a mean of one seed) reads ``0.412 (n=1)``; a missing value reads ``—``.
Three columns become one, so wide tables get narrower as well as easier to read.

Example:
    >>> frame = pd.DataFrame({"gain": [1.5, 2.0], "gain_lo": [1.0, math.nan],
    ...                       "gain_hi": [2.0, math.nan], "seeds": [3, 1]})
    >>> display_frame(frame).to_dict("list")
    {'gain': ['1.500 [1.000, 2.000]', '2.000 (n=1)'], 'seeds': ['3', '1']}
"""

from __future__ import annotations

import math
from numbers import Integral, Real

import pandas as pd

MISSING = "—"
NO_INTERVAL = "(n=1)"
LEGEND = (f"A cell 'v [lo, hi]' is a value and its 95% interval; 'v {NO_INTERVAL}' has one "
          f"value, so no interval; '{MISSING}' means undefined or missing.")


def format_value(value: object) -> str:
    """One cell: floats to three decimals, missing or NaN values as ``—``."""
    if value is None or value is pd.NA or value is pd.NaT:
        return MISSING
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, Integral):
        return str(int(value))
    if isinstance(value, Real):
        number = float(value)
        return MISSING if math.isnan(number) else f"{number:.3f}"
    text = str(value)
    return MISSING if text.strip().lower() in {"nan", "none", "<na>"} else text


def format_interval(value: object, low: object, high: object) -> str:
    """A value with its interval, ``v [lo, hi]``; ``v (n=1)`` without one; ``—`` without a
    value."""
    shown = format_value(value)
    if shown == MISSING:
        return MISSING
    ends = format_value(low), format_value(high)
    if MISSING in ends:
        return f"{shown} {NO_INTERVAL}"
    return f"{shown} [{ends[0]}, {ends[1]}]"


def interval_columns(columns: list[str]) -> list[tuple[str, str, str]]:
    """``(value, low, high)`` column triples: ``P_lo`` and ``P_hi`` with the value column ``P``,
    or else the column right before ``P_lo`` when its name starts with ``P``."""
    triples = []
    for position, name in enumerate(columns):
        if not name.endswith("_lo"):
            continue
        prefix = name.removesuffix("_lo")
        if f"{prefix}_hi" not in columns:
            continue
        if prefix in columns:
            triples.append((prefix, name, f"{prefix}_hi"))
        elif position > 0 and columns[position - 1].startswith(prefix):
            triples.append((columns[position - 1], name, f"{prefix}_hi"))
    return triples


def display_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame as text cells: intervals merged into their value column, every cell
    formatted (no ``nan`` anywhere)."""
    columns = [str(c) for c in frame.columns]
    frame = frame.set_axis(columns, axis=1)
    merged: dict[str, tuple[str, str]] = {v: (lo, hi) for v, lo, hi in interval_columns(columns)}
    dropped = {end for ends in merged.values() for end in ends}
    out = {}
    for name in columns:
        if name in dropped:
            continue
        if name in merged:
            low, high = merged[name]
            out[name] = [format_interval(v, lo, hi) for v, lo, hi in
                         zip(frame[name], frame[low], frame[high], strict=True)]
        else:
            out[name] = [format_value(v) for v in frame[name]]
    return pd.DataFrame(out, columns=list(out))


__all__ = ["LEGEND", "MISSING", "NO_INTERVAL", "display_frame", "format_interval",
           "format_value", "interval_columns"]
