"""Readers of search folders as pandas DataFrames, through the run store's
:class:`~scalarize.runs.SearchDir` and its records (whatever engine wrote the folder).

:func:`anytime` is a search's anytime curve: the best held-out score found so far against the
member-epochs spent, read from ``population.jsonl``, so that searches of different strategies
compare at equal compute.

Example:
    >>> frame = population_frame("searches/pbt")  # doctest: +SKIP
    >>> frame.pivot(index="epoch", columns="member", values="val_avg_acc")  # doctest: +SKIP
    >>> anytime("searches/pbt").tail(1)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from scalarize.analysis.pareto import exact_is_cheap, exclusive_volume, hypervolume_with_error
from scalarize.errors import ScalarizeError
from scalarize.runs.records import (
    DivergedEvent,
    EpochEvent,
    ExploitEvent,
    PopulationEvent,
    SearchPlan,
    SearchSummary,
)
from scalarize.runs.store import SearchDir, read_or_skip

EXPLOIT_COLUMNS = ["epoch", "member", "parent", "weights_before", "weights"]
#: Above this many objectives, displays are compact: the members table shows each member's
#: largest weights and effective number of objectives instead of one ``w_*`` column per
#: objective (:func:`members_display`), prose names the largest weights only
#: (:func:`weights_text`), and the report draws heatmaps instead of one plot per objective.
MANY_OBJECTIVES = 8
#: How many of the largest weights prose names (:func:`weights_text`) and the members table's
#: ``top_weights`` column shows, past :data:`MANY_OBJECTIVES` objectives.
TOP_WEIGHTS, TOP_WEIGHTS_COLUMN = 5, 3
ANYTIME_COLUMNS = ["member_epochs", "best_val_avg_acc", "hypervolume", "strategy"]
#: Samples of each new front point's estimated exclusive volume in an anytime curve.
ANYTIME_SAMPLES = 2**12


def is_search(folder: Path | str) -> bool:
    """Whether ``folder`` holds a search (finished or not)."""
    return SearchDir(folder).is_study


def find_searches(folder: Path | str) -> list[Path]:
    """``folder`` itself when it is a search, else the finished searches up to two levels
    down."""
    folder = Path(folder)
    if is_search(folder):
        return [folder]
    found = [p for p in {*folder.glob("*/"), *folder.glob("*/*/")}
             if SearchDir(p).is_finished and is_search(p)]
    return sorted(found)


def population_frame(folder: Path | str) -> pd.DataFrame:
    """One row per member-epoch: member, epoch, weights (``w_<objective>``), held-out accuracy
    per objective (``val_<objective>``) and on average, and the node that trained it."""
    rows = []
    for event in SearchDir(folder).read_events():
        if not isinstance(event, EpochEvent):
            continue
        row: dict[str, Any] = {"member": event.member, "epoch": event.epoch,
                               "val_avg_acc": event.val_avg_acc, "node": event.node}
        row.update({f"w_{k}": v for k, v in event.weights.as_dict().items()})
        row.update({f"val_{k}": v for k, v in event.val_acc.items()})
        rows.append(row)
    return pd.DataFrame(rows)


def exploit_frame(folder: Path | str) -> pd.DataFrame:
    """One row per exploit: epoch, member replaced, member copied, weights before and after."""
    rows = [{"epoch": e.epoch, "member": e.member, "parent": e.parent,
             "weights_before": None if e.weights_before is None else e.weights_before.as_dict(),
             "weights": e.weights.as_dict()}
            for e in SearchDir(folder).read_events() if isinstance(e, ExploitEvent)]
    return pd.DataFrame(rows, columns=EXPLOIT_COLUMNS)


def members_frame(folder: Path | str) -> pd.DataFrame:
    """One row per member of a finished search: final weights, held-out and test accuracy,
    number of exploits, on the Pareto front or not."""
    summary = SearchDir(folder).read_summary()
    rows = []
    for m in summary.members:
        row: dict[str, Any] = {"member": m.member, "diverged": m.diverged,
                               "exploits": len(m.lineage), "val_avg_acc": m.val_avg_acc,
                               "test_avg_acc": m.test_avg_acc,
                               "pareto": m.member in summary.pareto_front,
                               "best": m.member == summary.best_member}
        row.update({f"w_{o}": w for o, w in zip(summary.objectives, m.weights, strict=True)})
        rows.append(row)
    return pd.DataFrame(rows)


def weights_text(objectives: Sequence[str], weights: Sequence[float], top: int = TOP_WEIGHTS,
                 joiner: str = "=") -> str:
    """Weights for prose: every ``name=weight`` in objective order up to
    :data:`MANY_OBJECTIVES` objectives; beyond, the ``top`` largest (largest first) and how
    many more there are (``joiner`` goes between a name and its weight).

    Example:
        >>> weights_text(["a", "b"], [0.25, 0.75])
        'a=0.250, b=0.750'
        >>> weights_text([f"t{i}" for i in range(10)], [0.09] * 9 + [0.19], top=2, joiner=" ")
        't9 0.190, t0 0.090, … and 8 more (all in summary.json)'
    """
    pairs = list(zip(objectives, weights, strict=True))
    if len(pairs) <= MANY_OBJECTIVES:
        return ", ".join(f"{o}{joiner}{w:.3f}" for o, w in pairs)
    largest = sorted(pairs, key=lambda pair: -pair[1])[:top]
    shown = ", ".join(f"{o}{joiner}{w:.3f}" for o, w in largest)
    return f"{shown}, … and {len(pairs) - len(largest)} more (all in summary.json)"


def effective_objectives(weights: Sequence[float] | np.ndarray) -> float:
    """The effective number of objectives of a weighting: the exponential of the Shannon
    entropy of the (normalised) weights; ``T`` for uniform weights over ``T`` objectives, 1 for
    a one-hot (rounded to nine decimals, so that these come out exact). NaN when no weight is
    positive.

    Example:
        >>> effective_objectives([0.25] * 4), effective_objectives([0.0, 1.0, 0.0])
        (4.0, 1.0)
    """
    w = np.clip(np.asarray(weights, dtype=np.float64), 0.0, None)
    total = w.sum()
    if not total > 0:
        return float("nan")
    p = w[w > 0] / total
    return round(float(np.exp(-np.sum(p * np.log(p)))), 9)


def members_display(members: pd.DataFrame, top: int = TOP_WEIGHTS_COLUMN) -> pd.DataFrame:
    """:func:`members_frame` for reading: unchanged up to :data:`MANY_OBJECTIVES` objectives;
    beyond, its ``w_<objective>`` columns replaced by ``top_weights`` (the ``top`` largest
    final weights, ``"name 0.123, ..."``) and ``effective_objectives``
    (:func:`effective_objectives`). ``members_frame`` itself keeps every weight.

    Example:
        >>> frame = pd.DataFrame({"member": [0], **{f"w_t{i}": [0.1] for i in range(10)}})
        >>> members_display(frame).iloc[0].to_dict()
        {'member': 0, 'top_weights': 't0 0.100, t1 0.100, t2 0.100', 'effective_objectives': 10.0}
    """
    columns = [c for c in members.columns if str(c).startswith("w_")]
    if len(columns) <= MANY_OBJECTIVES:
        return members
    names = [str(c).removeprefix("w_") for c in columns]
    weights = members[columns].to_numpy(dtype=np.float64)
    top_weights = [", ".join(f"{names[i]} {row[i]:.3f}"
                             for i in np.argsort(-row, kind="stable")[:top]) for row in weights]
    return members.drop(columns=columns).assign(
        top_weights=top_weights,
        effective_objectives=[effective_objectives(row) for row in weights])


def _summary_and_config(search: SearchDir) -> tuple[SearchSummary, dict[str, Any]]:
    return search.read_summary(), search.read_config()


def searches_table(folder: Path | str) -> pd.DataFrame:
    """Finished searches in ``folder`` and its sub-folders, one row each: strategy, seed,
    member-epochs, the selected member's held-out and test accuracy, test hypervolume. A search
    whose summary or config is corrupt is skipped with one
    :class:`~scalarize.errors.SkippedRunWarning`."""
    root = Path(folder)
    rows = []
    for path in sorted([root, *root.glob("*/")]):
        search = SearchDir(path)
        if not (search.is_finished and search.is_study):
            continue
        read = read_or_skip(path, partial(_summary_and_config, search), "search")
        if read is None:
            continue
        summary, config = read
        rows.append({"search": path.name, "strategy": summary.strategy,
                     "engine": summary.engine, "seed": config.get("seed", 0),
                     "population": summary.population,
                     "member_epochs": summary.member_epochs,
                     "val_avg_acc": summary.val_avg_acc,
                     "test_avg_acc": summary.test_avg_acc,
                     "hypervolume_test": summary.hypervolume_test,
                     "seconds": summary.seconds})
    return pd.DataFrame(rows)


def by_strategy(table: pd.DataFrame) -> pd.DataFrame:
    """:func:`searches_table` summarised per strategy over seeds (mean; std of the test
    accuracy). The strategy is the folder name without its ``-s<seed>`` suffix, so that, e.g.,
    ``uniform-s0`` (a one-point grid) and ``grid-s0`` stay apart."""
    label = table.search.str.replace(r"-s\d+$", "", regex=True)
    return table.assign(strategy=label).groupby("strategy", sort=False).agg(
        member_epochs=("member_epochs", "first"),
        test_avg_acc=("test_avg_acc", "mean"), test_std=("test_avg_acc", "std"),
        val_avg_acc=("val_avg_acc", "mean"),
        hypervolume_test=("hypervolume_test", "mean"),
        seconds=("seconds", "mean"), seeds=("seed", "nunique"))


def spent_epochs(events: Sequence[PopulationEvent]
                 ) -> Iterator[tuple[int, EpochEvent | DivergedEvent]]:
    """Each member-epoch a search spent, in the order trained, with the count spent so far:
    every epoch event (a repeat of the same member and epoch, which a restored Ray trial may
    report, counts once) and every epoch during which a member diverged. What the anytime and
    recovery curves put on their x axis."""
    seen: set[tuple[int, int]] = set()
    for event in events:
        if isinstance(event, EpochEvent | DivergedEvent) and (event.member,
                                                               event.epoch) not in seen:
            seen.add((event.member, event.epoch))
            yield len(seen), event


def anytime_curve(events: Sequence[PopulationEvent], objectives: Sequence[str]
                  ) -> pd.DataFrame:
    """The anytime curve of a search from its population events, in the order the engine
    trained them (the order of ``population.jsonl``): one row per member-epoch spent.

    ``member_epochs`` counts the member-epochs actually trained so far: each epoch a member
    trained (an :class:`~scalarize.runs.records.EpochEvent`; a repeat of the same member and
    epoch, which a restored Ray trial may report, counts once) and each epoch during which a
    member diverged (trained, but without a score). An exploit costs nothing: the member that
    copied another continues from the copied state, and only the epochs it trains from there
    count; a diverged member's frozen epochs are not trained and do not count.
    ``best_val_avg_acc`` is the best held-out average accuracy of any member-epoch so far (NaN
    before the first score); ``hypervolume`` is the hypervolume
    (:func:`~scalarize.analysis.pareto.hypervolume_with_error`, reference point 0: scores are
    accuracies in [0, 1], higher is better) of the per-objective held-out scores of every
    member-epoch so far: exact where that is cheap; beyond (more than five objectives and
    eight points on the front), each new front point adds an unbiased estimate of the volume
    only it dominates (:func:`~scalarize.analysis.pareto.exclusive_volume`, from
    :data:`ANYTIME_SAMPLES` samples), so that the curve never decreases either.

    Example:
        >>> from scalarize.runs.records import EpochEvent
        >>> def epoch(member, n, a, b):
        ...     return EpochEvent(member=member, epoch=n, weights={"a": 0.5, "b": 0.5},
        ...                       val_acc={"a": a, "b": b}, val_avg_acc=(a + b) / 2, seconds=1)
        >>> curve = anytime_curve([epoch(0, 1, 0.5, 0.5), epoch(1, 1, 0.8, 0.2),
        ...                        epoch(0, 2, 0.6, 0.6)], ["a", "b"])
        >>> curve.member_epochs.tolist(), curve.best_val_avg_acc.tolist()
        ([1, 2, 3], [0.5, 0.5, 0.6])
        >>> curve.hypervolume.round(4).tolist()  # (0.6, 0.6) dominates (0.5, 0.5)
        [0.25, 0.31, 0.4]
    """
    front = np.empty((0, len(objectives)))
    best, volume = float("nan"), 0.0
    rows: list[tuple[int, float, float]] = []
    for spent, event in spent_epochs(events):
        if isinstance(event, EpochEvent):
            best = float(np.fmax(best, event.val_avg_acc))
            point = np.array([event.val_acc[o] for o in objectives], dtype=np.float64)
            if np.all(np.isfinite(point)) and not _dominated(point, front):
                before = front
                keep = ~np.all(point >= front, axis=1)  # drop what the new point dominates
                front = np.vstack([front[keep], point])
                if volume and not exact_is_cheap(front):
                    volume += exclusive_volume(np.clip(point, 0, None), before,
                                               ANYTIME_SAMPLES, seed=spent)[0]
                else:
                    volume = hypervolume_with_error(front).value
        rows.append((spent, best, volume))
    return pd.DataFrame(rows, columns=ANYTIME_COLUMNS[:3])


def _dominated(point: np.ndarray, front: np.ndarray) -> bool:
    """Whether a point of ``front`` is at least as good as ``point`` on every objective (then
    ``point`` adds no hypervolume)."""
    return bool(np.any(np.all(front >= point, axis=1)))


def anytime(folder: Path | str) -> pd.DataFrame:
    """The anytime curve of the search in ``folder`` (finished or not; see
    :func:`anytime_curve`), with its ``strategy``; for a folder of searches, every finished
    search's curve, with its ``search`` (the path below ``folder``). A search whose files are
    corrupt is skipped there with one :class:`~scalarize.errors.SkippedRunWarning`.

    Columns: ``member_epochs``, ``best_val_avg_acc``, ``hypervolume``, ``strategy`` (and
    ``search`` for a folder of searches).
    """
    folder = Path(folder)
    if is_search(folder):
        return _anytime_of(SearchDir(folder))
    if not folder.is_dir():
        raise ScalarizeError(f"{folder} is not a folder; give a search folder (the --out of "
                             "'scalarize search') or a folder of searches")
    frames = []
    for path in find_searches(folder):
        curve = read_or_skip(path, partial(_anytime_of, SearchDir(path)), "search")
        if curve is not None:
            frames.append(curve.assign(search=path.relative_to(folder).as_posix()))
    if not frames:
        raise ScalarizeError(f"{folder} holds no finished search; run 'scalarize search' into "
                             "it (or a sub-folder) first")
    return pd.concat(frames, ignore_index=True)


def _anytime_of(search: SearchDir) -> pd.DataFrame:
    plan = search.read_plan(SearchPlan)
    curve = anytime_curve(search.read_events(), plan.objectives)
    return curve.assign(strategy=plan.strategy)[ANYTIME_COLUMNS]


def curve_changes(curve: pd.DataFrame) -> pd.DataFrame:
    """The rows of anytime curves where a value changes, and each curve's last row: the whole
    step function in a few rows (what ``scalarize analyze search`` prints)."""
    keys = [k for k in ("search", "strategy") if k in curve]
    kept = []
    for _, group in curve.groupby(keys, sort=False) if keys else [(None, curve)]:
        values = group[["best_val_avg_acc", "hypervolume"]]
        before = values.shift()
        same = values.eq(before) | (values.isna() & before.isna())
        changed = (~same.all(axis=1)).to_numpy(copy=True)
        changed[-1] = True
        kept.append(group[changed])
    return pd.concat(kept) if kept else curve


__all__ = ["MANY_OBJECTIVES", "anytime", "anytime_curve", "by_strategy", "curve_changes",
           "effective_objectives", "exploit_frame", "find_searches", "is_search",
           "members_display", "members_frame", "population_frame", "searches_table",
           "spent_epochs", "weights_text"]
