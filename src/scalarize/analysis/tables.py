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

from dataclasses import dataclass, field
from functools import cached_property, partial
from pathlib import Path

import pandas as pd

from scalarize.analysis.capacity import (
    capacity_plane,
    capacity_trend,
    gain_plane,
    load_sweep,
    per_capacity,
    rank_stability,
    selected_vs_uniform,
    summarize,
    transfer_regret,
    weighting_gains,
)
from scalarize.analysis.compare import compare_table, load_compare
from scalarize.analysis.conflicts import (
    by_factor,
    conflict_epochs,
    conflict_layers,
    floor_table,
    partial_table,
    per_layer,
    plane,
    summary_table,
    trends,
)
from scalarize.analysis.search import (
    MANY_OBJECTIVES,
    anytime,
    by_strategy,
    exploit_frame,
    find_searches,
    members_display,
    members_frame,
    population_frame,
    searches_table,
    weights_text,
)
from scalarize.runs.records import SearchSummary
from scalarize.runs.store import SearchDir, read_or_skip


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
        """The weighting selected on validation (its test gain) and the uniform weighting per
        capacity (:func:`per_capacity`)."""
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
    def capacity_planes(self) -> dict[str, pd.DataFrame]:
        """The selected and the uniform test gain over the plane of two capacity axes (depth ×
        width; :func:`capacity_plane`), keyed ``selected`` and ``uniform``; empty unless the
        sweep varies exactly two numeric capacity axes."""
        planes = {key: capacity_plane(self.gains, self.per_capacity, key)
                  for key in ("selected", "uniform")}
        return {key: frame for key, frame in planes.items() if not frame.empty}

    @cached_property
    def trend(self) -> pd.DataFrame:
        """Spearman ρ of the capacity means of the gains against log parameters (and each
        capacity axis), exact permutation p, Holm-adjusted (:func:`capacity_trend`)."""
        return capacity_trend(self.gains, self.per_capacity)

    @cached_property
    def vs_uniform(self) -> pd.DataFrame:
        """The selected weights against uniform over capacities: exact sign-flip test
        (:func:`selected_vs_uniform`)."""
        return selected_vs_uniform(self.per_capacity)

    @cached_property
    def rank_stability(self) -> pd.DataFrame:
        """Kendall τ (exact p, Holm across pairs, bootstrap interval over seeds) and Spearman
        ρ between the weight orderings of capacity pairs (:func:`rank_stability`)."""
        return rank_stability(self.weightings, self.gains)

    @cached_property
    def transfer_regret(self) -> pd.DataFrame:
        """The regret of a smaller model's best weights on a larger one (Δ points)."""
        return transfer_regret(self.weightings)


def capacity_tables(folder: Path | str) -> CapacityTables:
    """The capacity study of the sweep in ``folder`` (its runs may be none yet)."""
    return CapacityTables(load_sweep(folder))


@dataclass(frozen=True)
class ConflictTables:
    """Gradient conflicts of probed runs: the per-epoch ``curves`` (:func:`conflict_epochs`),
    the per-block ``layers`` of every probed step (:func:`conflict_layers`) and the tables built
    on them. Where the runs recorded the same-objective control (``probes.conflicts.examples``)
    every share stands next to its floor."""

    curves: pd.DataFrame
    layers: pd.DataFrame = field(default_factory=pd.DataFrame)

    @cached_property
    def correlations(self) -> pd.DataFrame:
        """Each measure against validation accuracy, within and across runs."""
        return summary_table(self.curves)

    @cached_property
    def per_capacity(self) -> pd.DataFrame:
        """The conflict share per capacity (and its control share where recorded)."""
        return by_factor(self.curves, "capacity")

    @cached_property
    def floor(self) -> pd.DataFrame:
        """Per capacity: cross-objective share and cosine next to the same-objective floor
        (empty without the control)."""
        return floor_table(self.curves)

    @cached_property
    def per_layer(self) -> pd.DataFrame:
        """Per capacity and encoder block: conflict share and control share."""
        return per_layer(self.layers)

    @cached_property
    def partial(self) -> pd.DataFrame:
        """Each measure against final validation accuracy with capacity held fixed (Holm)."""
        return partial_table(self.curves)

    @cached_property
    def per_weighting(self) -> pd.DataFrame:
        return by_factor(self.curves, "weights_label")

    @cached_property
    def trends(self) -> pd.DataFrame:
        """Spearman ρ of capacity means against log parameters and of weighting means against
        the weights' distance from uniform (exact permutation p, Holm)."""
        return trends(self.curves)

    @cached_property
    def plane(self) -> pd.DataFrame:
        """The conflict share per weighting and capacity (mean over seeds, interval)."""
        return plane(self.curves)


def conflict_tables(folder: Path | str) -> ConflictTables:
    """The conflict analysis of the probed runs under ``folder``; a
    :class:`~scalarize.errors.ScalarizeError` when none has conflict records."""
    return ConflictTables(conflict_epochs(folder), conflict_layers(folder))


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


@dataclass(frozen=True)
class SearchTables:
    """A search ``folder``, or a folder of searches, and the tables read from it.

    Tables of the folder: :attr:`anytime` and :attr:`table` (what ``scalarize analyze
    search`` prints), :attr:`finished` (each finished search's own :class:`SearchTables`),
    :attr:`curves`, :attr:`finished_table` and :attr:`by_strategy` (what the report shows).
    Tables of one search (``folder`` itself a search): :attr:`summary`, :attr:`population`,
    :attr:`exploits`, :attr:`members` (and its :attr:`members_display`), :attr:`front`,
    :attr:`best` and the selected weights in prose (:meth:`weights`).

    The folder's tables differ in how far down they look and how they treat a corrupt search
    because the outputs did before they shared this object (no output changed): :attr:`table`
    lists the finished searches in ``folder`` and one level down, :attr:`finished` those
    :func:`~scalarize.analysis.search.find_searches` finds (two levels down).
    """

    folder: Path

    @property
    def is_search(self) -> bool:
        """Whether ``folder`` is itself a search (finished or not)."""
        return SearchDir(self.folder).is_study

    @cached_property
    def found(self) -> list[Path]:
        """``folder`` when it is a search, else the finished searches up to two levels down
        (:func:`~scalarize.analysis.search.find_searches`)."""
        return find_searches(self.folder)

    @cached_property
    def finished(self) -> tuple[SearchTables, ...]:
        """The finished searches of :attr:`found`, each as its own tables (``self`` for a
        search folder); in a folder of searches, one whose summary is corrupt is skipped with
        one :class:`~scalarize.errors.SkippedRunWarning`."""
        done = [self if path == self.folder else SearchTables(path) for path in self.found
                if SearchDir(path).is_finished]
        if self.found != [self.folder]:
            done = [one for one in done
                    if read_or_skip(one.folder, partial(getattr, one, "summary"), "search")
                    is not None]
        return tuple(done)

    def relative(self, search: SearchTables) -> str:
        """Where ``search`` lies below ``folder`` (``.`` for the folder itself)."""
        return search.folder.relative_to(self.folder).as_posix()

    @cached_property
    def anytime(self) -> pd.DataFrame:
        """The anytime curve of the search, or every finished search's curve with its
        ``search`` (:func:`~scalarize.analysis.search.anytime`: a lone search's corrupt files
        raise, a folder's corrupt search is skipped with a warning)."""
        return anytime(self.folder)

    @cached_property
    def table(self) -> pd.DataFrame:
        """One row per finished search in ``folder`` and one level down
        (:func:`~scalarize.analysis.search.searches_table`)."""
        return searches_table(self.folder)

    @cached_property
    def curves(self) -> pd.DataFrame:
        """The anytime curves of the :attr:`finished` searches with their ``search`` (the path
        below ``folder``); a curve that cannot be read is skipped with a warning, an empty one
        left out; an empty frame when none is left."""
        frames = []
        for one in self.finished:
            curve = read_or_skip(one.folder, partial(getattr, one, "anytime"), "search")
            if curve is None or curve.empty:
                continue
            frames.append(curve.assign(search=self.relative(one)))
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    @cached_property
    def finished_table(self) -> pd.DataFrame:
        """The :attr:`table` row(s) of every :attr:`finished` search, with its ``search`` (the
        path below ``folder``)."""
        return pd.concat([one.table.assign(search=str(one.folder.relative_to(self.folder)))
                          for one in self.finished], ignore_index=True)

    @cached_property
    def by_strategy(self) -> pd.DataFrame:
        """:attr:`finished_table` per strategy over seeds, one row each
        (:func:`~scalarize.analysis.search.by_strategy`)."""
        return by_strategy(self.finished_table).reset_index()

    @cached_property
    def summary(self) -> SearchSummary:
        """The summary of the finished search (an error for anything else)."""
        return SearchDir(self.folder).read_summary()

    @property
    def objectives(self) -> list[str]:
        return list(self.summary.objectives)

    @property
    def many(self) -> bool:
        """Whether the search has more than :data:`~scalarize.analysis.search.MANY_OBJECTIVES`
        objectives (then its displays are compact)."""
        return len(self.objectives) > MANY_OBJECTIVES

    @cached_property
    def population(self) -> pd.DataFrame:
        """One row per member-epoch (:func:`~scalarize.analysis.search.population_frame`)."""
        return population_frame(self.folder)

    @cached_property
    def exploits(self) -> pd.DataFrame:
        """One row per exploit (:func:`~scalarize.analysis.search.exploit_frame`)."""
        return exploit_frame(self.folder)

    @cached_property
    def members(self) -> pd.DataFrame:
        """One row per member, every final weight
        (:func:`~scalarize.analysis.search.members_frame`)."""
        return members_frame(self.folder)

    @cached_property
    def members_display(self) -> pd.DataFrame:
        """:attr:`members` for reading: compact past many objectives
        (:func:`~scalarize.analysis.search.members_display`)."""
        return members_display(self.members)

    @cached_property
    def front(self) -> pd.DataFrame:
        """The members on the Pareto front of held-out accuracy."""
        return self.members[self.members.pareto]

    @cached_property
    def best(self) -> pd.DataFrame:
        """The selected member's row."""
        return self.members[self.members.best]

    def weights(self, joiner: str = "=") -> str:
        """The selected member's final weights for prose
        (:func:`~scalarize.analysis.search.weights_text`)."""
        return weights_text(self.objectives, self.summary.best_weights, joiner=joiner)


def search_tables(folder: Path | str) -> SearchTables:
    """The search analysis of ``folder``: a search (finished or not) or a folder of
    searches."""
    return SearchTables(Path(folder))


__all__ = ["CapacityTables", "CompareTables", "ConflictTables", "SearchTables",
           "capacity_tables", "compare_tables", "conflict_tables", "search_tables"]
