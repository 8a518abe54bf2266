"""Each analysis assembled once: ``<analysis>_tables(folder)`` reads a folder and returns a
frozen record of typed tables, which ``scalarize analyze``, the report and :mod:`scalarize.api`
render (each in its own way: a printed table, an HTML page, Python objects). A new table goes
here once and every output can show it; the outputs cannot drift apart.

A table is computed the first time it is asked for and kept (``cached_property``): an output
that shows a table pays for it, and a table that cannot be computed for a folder (no
multi-task run, say) fails only in the outputs that show it, as before.

Example:
    >>> import pandas as pd
    >>> from scalarize.analysis.tables import CompareTables
    >>> CompareTables(pd.DataFrame()).finished
    False
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import pandas as pd

from scalarize.analysis.capacity import (
    capacity_trend,
    gain_plane,
    load_sweep,
    per_capacity,
    rank_stability,
    summarize,
    transfer_regret,
    weighting_gains,
)
from scalarize.analysis.compare import compare_table, load_compare
from scalarize.analysis.conflicts import by_factor, conflict_epochs, plane, summary_table, trends


@dataclass(frozen=True)
class CapacityTables:
    """The capacity study of a sweep: its finished ``runs`` (:func:`load_sweep`) and the
    tables built on them."""

    runs: pd.DataFrame

    @property
    def objectives(self) -> list[str]:
        return list(self.runs.attrs["objectives"])

    @cached_property
    def gains(self) -> pd.DataFrame:
        """Each multi-task run's gain over its single-task baselines (:func:`weighting_gains`);
        empty while no weighting has its baselines."""
        return weighting_gains(self.runs)

    @cached_property
    def weightings(self) -> pd.DataFrame:
        """Every weighting per capacity (and data setting): mean gain over seeds with its
        interval (:func:`summarize`)."""
        return summarize(self.gains)

    @cached_property
    def per_capacity(self) -> pd.DataFrame:
        """The best and the uniform weighting per capacity (:func:`per_capacity`)."""
        return per_capacity(self.weightings)

    @property
    def by_data(self) -> bool:
        """Whether the sweep varies the benchmark's options (``sweep.data``)."""
        return "data" in self.per_capacity.columns

    @cached_property
    def planes(self) -> dict[str, pd.DataFrame]:
        """The best and the uniform gain over the (data setting × capacity) plane, keyed
        ``best_gain`` and ``uniform_gain``; empty for a sweep without ``sweep.data``."""
        if not self.by_data:
            return {}
        return {key: gain_plane(self.per_capacity, key) for key in ("best_gain", "uniform_gain")}

    @cached_property
    def trend(self) -> pd.DataFrame:
        """Spearman ρ of the per-seed gains against log parameters (:func:`capacity_trend`)."""
        return capacity_trend(self.gains, self.per_capacity)

    @cached_property
    def rank_stability(self) -> pd.DataFrame:
        """Kendall τ and Spearman ρ between the weight orderings of capacity pairs."""
        return rank_stability(self.weightings)

    @cached_property
    def transfer_regret(self) -> pd.DataFrame:
        """The regret of a smaller model's best weights on a larger one (Δ points)."""
        return transfer_regret(self.weightings)


def capacity_tables(folder: Path | str) -> CapacityTables:
    """The capacity study of the sweep in ``folder`` (its runs may be none yet)."""
    return CapacityTables(load_sweep(folder))


@dataclass(frozen=True)
class ConflictTables:
    """Gradient conflicts of probed runs: the per-epoch ``curves`` (:func:`conflict_epochs`)
    and the tables built on them."""

    curves: pd.DataFrame

    @cached_property
    def correlations(self) -> pd.DataFrame:
        """Each measure against validation accuracy, within and across runs."""
        return summary_table(self.curves)

    @cached_property
    def per_capacity(self) -> pd.DataFrame:
        return by_factor(self.curves, "capacity")

    @cached_property
    def per_weighting(self) -> pd.DataFrame:
        return by_factor(self.curves, "weights_label")

    @cached_property
    def trends(self) -> pd.DataFrame:
        """Spearman ρ of each run's mean measure against log parameters and against the
        weights' distance from uniform."""
        return trends(self.curves)

    @cached_property
    def plane(self) -> pd.DataFrame:
        """The conflict share per weighting and capacity (mean over seeds, interval)."""
        return plane(self.curves)


def conflict_tables(folder: Path | str) -> ConflictTables:
    """The conflict analysis of the probed runs under ``folder``; a
    :class:`~scalarize.errors.ScalarizeError` when none has conflict records."""
    return ConflictTables(conflict_epochs(folder))


@dataclass(frozen=True)
class CompareTables:
    """A method comparison: its finished ``runs`` (:func:`load_compare`) and its table."""

    runs: pd.DataFrame

    @property
    def finished(self) -> bool:
        """Whether any run of the comparison has finished."""
        return not self.runs.empty

    @cached_property
    def methods(self) -> pd.DataFrame:
        """One row per method label (:func:`compare_table`)."""
        return compare_table(self.runs)


def compare_tables(folder: Path | str) -> CompareTables:
    """The comparison in ``folder`` (its runs may be none yet)."""
    return CompareTables(load_compare(folder))


__all__ = ["CapacityTables", "CompareTables", "ConflictTables", "capacity_tables",
           "compare_tables", "conflict_tables"]
