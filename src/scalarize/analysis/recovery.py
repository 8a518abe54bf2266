"""*Recovery* of a planted answer: how much weight a search leaves on objectives whose best
weight is known to be zero (the pure-noise attributes of ``shapes``' ``attributes`` view),
over the compute it spends.

The curve follows the member a search would select if it stopped now: at each member-epoch
spent (in the order of ``population.jsonl``, as the anytime curves of
:mod:`scalarize.analysis.search`), the best held-out average accuracy so far and the share of
that member-epoch's weights on the noise objectives. Uniform weights leave ``k / T`` there
(``k`` noise objectives of ``T``); a search that finds the answer drives it towards zero.

Example:
    >>> from scalarize.runs.records import EpochEvent
    >>> def epoch(member, n, w_noise, score):
    ...     return EpochEvent(member=member, epoch=n, weights={"a": 1 - w_noise, "n": w_noise},
    ...                       val_acc={"a": score, "n": 0.5}, val_avg_acc=score, seconds=1)
    >>> curve = recovery_curve([epoch(0, 1, 0.5, 0.6), epoch(1, 1, 0.1, 0.7),
    ...                         epoch(0, 2, 0.5, 0.65)], ["n"])
    >>> curve.noise_share.tolist()
    [0.5, 0.1, 0.1]
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from scalarize.analysis.search import find_searches, spent_epochs
from scalarize.runs.records import EpochEvent, PopulationEvent
from scalarize.runs.store import SearchDir

RECOVERY_COLUMNS = ["member_epochs", "best_val_avg_acc", "noise_share"]


def noise_share(weights: dict[str, float], noise: Sequence[str]) -> float:
    """The share of ``weights`` (objective → weight) on the ``noise`` objectives."""
    total = sum(weights.values())
    return sum(weights.get(o, 0.0) for o in noise) / total if total else float("nan")


def recovery_curve(events: Sequence[PopulationEvent], noise: Sequence[str]) -> pd.DataFrame:
    """The noise share of the best-so-far member-epoch, one row per member-epoch spent (see
    the module docstring; counted as the anytime curves count them: a repeated member-epoch
    once, a diverged one too, without a score)."""
    best, share = float("-inf"), float("nan")
    rows = []
    for spent, event in spent_epochs(events):
        if isinstance(event, EpochEvent) and event.val_avg_acc > best:
            best = event.val_avg_acc
            share = noise_share(event.weights.as_dict(), noise)
        rows.append((spent, best, share))
    return pd.DataFrame(rows, columns=RECOVERY_COLUMNS)


def recovery(folder: Path | str, noise: Sequence[str]) -> pd.DataFrame:
    """The recovery curves of every finished search under ``folder`` (column ``search``: the
    path below ``folder``)."""
    folder = Path(folder)
    frames = []
    for path in find_searches(folder):
        search = SearchDir(path)
        if not search.is_finished:
            continue
        curve = recovery_curve(search.read_events(), noise)
        frames.append(curve.assign(search=path.relative_to(folder).as_posix()))
    return (pd.concat(frames, ignore_index=True) if frames
            else pd.DataFrame(columns=[*RECOVERY_COLUMNS, "search"]))


__all__ = ["RECOVERY_COLUMNS", "noise_share", "recovery", "recovery_curve"]
