"""The equal-compute search study's table (``scalarize study search``): per strategy, the test
score of its selected weights retrained on the full training split, the regret against a
dense-grid reference, both with 95% intervals over seeds, and paired tests against the best
strategy.

A study folder holds one :class:`StudyCell` per (strategy, seed) (``cells/<label>-s<seed>.json``,
written by :mod:`scalarize.studies.study`) and, with a reference grid, one
:class:`ReferenceCell` per (grid point, seed). This module only reads them.

- **Regret** of a cell: the test score, at the cell's seed, of the reference grid's best point
  (the point whose mean *validation* score over the seeds is highest: selected off the test
  split) minus the cell's test score.
  Paired by seed, so the seed's noise (initialisation, data order) cancels in part.
- **Intervals**: Student-t 95% intervals of the mean over seeds
  (:func:`~scalarize.analysis.stats.mean_ci`).
- **Significance**: for every strategy but the best (the highest mean *validation* score of
  the retrained runs, so the reference is not the maximum of noisy test scores; cells written
  before that score was recorded fall back to the highest mean test score, with one
  :class:`~scalarize.errors.SelectionFallbackWarning`), the per-seed
  differences to the best over the seeds both have: a paired t-test and a Wilcoxon
  signed-rank test (SciPy), Holm-adjusted over the strategies; ``significant`` is the paired
  t-test's Holm-adjusted p below 0.05. The Wilcoxon test is exact for few seeds and cannot
  go below p = 0.0625 (two-sided) with 5 seeds: it is shown, not used for the flag.
- **Against uniform** (:func:`uniform_table`, when the study has ``uniform``): every other
  strategy's per-seed difference to uniform's test score (mean, 95% interval), the paired
  t-test's p-value and the p-value of an equivalence test (TOST: two one-sided paired t-tests
  against ``±margin``, :data:`EQUIVALENCE_MARGIN` unless told), both Holm-adjusted over the
  strategies; the verdict is ``better`` / ``worse`` (difference significant), ``equivalent``
  (not significant, TOST significant: within ``±margin``) or ``inconclusive`` (neither). With
  pure-noise objectives (*recovery*), the mean share of the selected weights on them.

Example:
    >>> holm([0.01, 0.04, 0.03])
    [0.03, 0.06, 0.06]
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import BaseModel
from scipy import stats

from scalarize.analysis.stats import holm, mean_ci
from scalarize.errors import ScalarizeError, SelectionFallbackWarning

CELLS = "cells"            # one JSON file per (strategy, seed)
REFERENCE = "reference"    # one JSON file per (grid point, seed), in cells/
ALPHA = 0.05
#: The equivalence margin of :func:`uniform_table`: one point of average test accuracy,
#: stated before the runs (docs/many-objectives.md).
EQUIVALENCE_MARGIN = 0.01
UNIFORM_COLUMNS = ["strategy", "seeds", "diff_vs_uniform", "diff_low", "diff_high", "p_ttest",
                   "p_tost", "verdict", "noise_share", "noise_low", "noise_high"]
TABLE_COLUMNS = ["strategy", "seeds", "member_epochs", "test_avg_acc", "test_low", "test_high",
                 "regret", "regret_low", "regret_high", "diff_vs_best", "p_ttest", "p_wilcoxon",
                 "significant"]


class StudyCell(BaseModel):
    """One strategy at one seed: what its search spent and selected, and the test score of
    the selected weights (schedule) retrained on the full training split."""

    strategy: str
    seed: int
    member_epochs: int
    search_seconds: float
    weights: list[float]  # the selected member's final weights (a schedule's last point)
    val_avg_acc: float | None
    test_avg_acc: float
    test_acc: dict[str, float]
    #: the validation score of the run whose test score is reported (the retrained selection,
    #: or uniform's run): what picks the study's best strategy (``None``: an older cell)
    retrained_val_avg_acc: float | None = None
    transfer: dict[str, float] = {}  # model spec -> test avg_acc of the same weights there
    noise_share: float | None = None  # share of the weights on pure-noise objectives


class ReferenceCell(BaseModel):
    """One point of the reference grid at one seed, trained on the full training split."""

    point: int
    seed: int
    weights: list[float]
    test_avg_acc: float
    #: the validation average accuracy of the point's run, what picks the grid's best point
    #: (``None`` in cells written before selection on validation)
    val_avg_acc: float | None = None


def cell_name(strategy: str, seed: int) -> str:
    """The file name of a cell (``+`` of ``asha+tpe`` kept: it is a valid file name)."""
    return f"{strategy}-s{seed}.json"


def write_cell(folder: Path, cell: StudyCell | ReferenceCell) -> Path:
    """Write ``cell`` into ``folder/cells`` (temp file + rename)."""
    cells = folder / CELLS
    cells.mkdir(parents=True, exist_ok=True)
    name = (f"{REFERENCE}-p{cell.point}-s{cell.seed}.json" if isinstance(cell, ReferenceCell)
            else cell_name(cell.strategy, cell.seed))
    path = cells / name
    tmp = path.with_suffix(".tmp")
    tmp.write_text(cell.model_dump_json(indent=1))
    tmp.replace(path)
    return path


def read_cells(folder: Path | str) -> tuple[list[StudyCell], list[ReferenceCell]]:
    """Every finished cell of the study in ``folder``: strategies', then the reference's."""
    cells = Path(folder) / CELLS
    if not cells.is_dir():
        raise ScalarizeError(f"{folder} holds no study cells; run 'scalarize study search' "
                             "into it first")
    found: list[StudyCell] = []
    reference: list[ReferenceCell] = []
    for path in sorted(cells.glob("*.json")):
        try:
            tree = json.loads(path.read_text())
            if path.name.startswith(f"{REFERENCE}-p"):
                reference.append(ReferenceCell.model_validate(tree))
            else:
                found.append(StudyCell.model_validate(tree))
        except (ValueError, OSError) as exc:
            raise ScalarizeError(f"{path} is corrupt ({type(exc).__name__}); delete it and run "
                                 "the study again to redo that cell") from None
    return found, reference


def cells_frame(cells: list[StudyCell]) -> pd.DataFrame:
    """One row per cell: strategy, seed, member_epochs, val/test avg_acc, transfer scores."""
    rows = []
    for c in cells:
        row = {"strategy": c.strategy, "seed": c.seed, "member_epochs": c.member_epochs,
               "search_seconds": c.search_seconds, "val_avg_acc": c.val_avg_acc,
               "test_avg_acc": c.test_avg_acc, "retrained_val_avg_acc": c.retrained_val_avg_acc,
               "noise_share": c.noise_share,
               "weights": " ".join(f"{w:.3f}" for w in c.weights)}
        row.update({f"transfer:{spec}": v for spec, v in c.transfer.items()})
        rows.append(row)
    return pd.DataFrame(rows)


def reference_scores(reference: list[ReferenceCell]) -> tuple[pd.Series, list[float]] | None:
    """The test score per seed of the reference grid's best point and its weights; ``None``
    without a reference. The best point is the one with the highest mean *validation* score
    over seeds (only points trained at every seed count), so that the test scores it reports
    are not the maximum of many noisy test scores; cells written without a validation score
    fall back to the highest mean test score, with one
    :class:`~scalarize.errors.SelectionFallbackWarning`."""
    if not reference:
        return None
    frame = pd.DataFrame([c.model_dump() for c in reference])
    seeds = frame.seed.nunique()
    complete = frame.groupby("point").filter(lambda g: g.seed.nunique() == seeds)
    key = "val_avg_acc"
    if complete[key].isna().any():
        warnings.warn("reference cells without a validation score (written before selection "
                      "on validation): the grid's best point is selected on test, which "
                      "understates every strategy's regret; run the study again to redo them",
                      SelectionFallbackWarning, stacklevel=2)
        key = "test_avg_acc"
    means = complete.groupby("point")[key].mean()
    best = int(means.idxmax())
    chosen = complete[complete.point == best]
    return chosen.set_index("seed").test_avg_acc, list(chosen.weights.iloc[0])


def _best_strategy(frame: pd.DataFrame, per: dict[str, pd.Series]) -> str:
    """The strategy the others are tested against: the highest mean validation score of the
    retrained runs (test scores when a cell lacks it, with one warning)."""
    val = frame.get("retrained_val_avg_acc")
    if val is None or val.isna().any():
        warnings.warn("study cells without the retrained run's validation score (written "
                      "before selection on validation): the best strategy is the one with the "
                      "highest mean test score; run the study again to redo them",
                      SelectionFallbackWarning, stacklevel=3)
        return max(per, key=lambda s: (per[s].mean(), s))
    means = frame.groupby("strategy", sort=False).retrained_val_avg_acc.mean()
    return max(means.index, key=lambda s: (means[s], s))


def _paired(a: pd.Series, b: pd.Series) -> tuple[float, float, float]:
    """Mean difference ``a − b`` over the seeds both have, the paired t-test's and the
    Wilcoxon signed-rank test's two-sided p-values (NaN where undefined)."""
    common = a.index.intersection(b.index)
    diff = (a[common] - b[common]).to_numpy(dtype=float)
    if len(diff) < 2:
        return (float(diff.mean()) if len(diff) else math.nan), math.nan, math.nan
    if np.allclose(diff, 0.0):
        return 0.0, 1.0, 1.0
    if np.ptp(diff) == 0:  # the same difference at every seed: no spread, no t statistic
        return float(diff.mean()), math.nan, math.nan
    with warnings.catch_warnings():  # constant differences, ties: SciPy warns, p says it
        warnings.simplefilter("ignore")
        p_t = float(stats.ttest_rel(a[common], b[common]).pvalue)
        p_w = float(stats.wilcoxon(diff).pvalue)
    return float(diff.mean()), p_t, p_w


def study_table(cells: list[StudyCell], reference: list[ReferenceCell] | None = None
                ) -> pd.DataFrame:
    """The study's table (columns :data:`TABLE_COLUMNS`), best mean test score first; see
    the module docstring for regret, intervals and significance."""
    if not cells:
        raise ScalarizeError("the study has no finished cell yet")
    frame = cells_frame(cells)
    ref = reference_scores(reference or [])
    per = {s: g.set_index("seed").test_avg_acc for s, g in frame.groupby("strategy", sort=False)}
    best = _best_strategy(frame, per)
    rows = []
    for strategy, scores in per.items():
        mean, low, high = mean_ci(scores.to_list())
        regret = (math.nan, math.nan, math.nan)
        if ref is not None:
            common = scores.index.intersection(ref[0].index)
            if len(common):
                regret = mean_ci((ref[0][common] - scores[common]).to_list())
        diff, p_t, p_w = ((0.0, math.nan, math.nan) if strategy == best
                          else _paired(scores, per[best]))
        spent = frame[frame.strategy == strategy].member_epochs.mean()
        rows.append({"strategy": strategy, "seeds": len(scores), "member_epochs": spent,
                     "test_avg_acc": mean, "test_low": low, "test_high": high,
                     "regret": regret[0], "regret_low": regret[1], "regret_high": regret[2],
                     "diff_vs_best": diff, "p_ttest": p_t, "p_wilcoxon": p_w})
    table = pd.DataFrame(rows)
    adjusted_t = holm(table.p_ttest.tolist())
    table["p_ttest"] = adjusted_t
    table["p_wilcoxon"] = holm(table.p_wilcoxon.tolist())
    table["significant"] = [not math.isnan(p) and p < ALPHA for p in adjusted_t]
    return table.sort_values(["test_avg_acc", "strategy"], ascending=[False, True],
                             ignore_index=True)[TABLE_COLUMNS]


def tost(diff: np.ndarray, margin: float) -> float:
    """The p-value of the paired equivalence test of ``diff`` (per-seed differences) within
    ``±margin``: the larger of the two one-sided t-tests' (NaN with fewer than 2 seeds).

    Example:
        >>> tost(np.array([0.001, -0.002, 0.0, 0.002, -0.001]), 0.01) < 0.001
        True
        >>> tost(np.array([0.02, 0.03, 0.01, 0.025, 0.02]), 0.01) > 0.05  # outside the margin
        True
    """
    if len(diff) < 2:
        return math.nan
    if np.ptp(diff) == 0:  # no spread: equivalent exactly when inside the margin
        return 0.0 if abs(diff[0]) < margin else 1.0
    lower = stats.ttest_1samp(diff, -margin, alternative="greater").pvalue
    upper = stats.ttest_1samp(diff, margin, alternative="less").pvalue
    return float(max(lower, upper))


def uniform_table(cells: list[StudyCell], margin: float = EQUIVALENCE_MARGIN) -> pd.DataFrame:
    """Every strategy against ``uniform``, paired by seed (columns :data:`UNIFORM_COLUMNS`;
    see the module docstring); empty when the study has no ``uniform`` cell."""
    frame = cells_frame(cells)
    per = {s: g.set_index("seed") for s, g in frame.groupby("strategy", sort=False)}
    if "uniform" not in per:
        return pd.DataFrame(columns=UNIFORM_COLUMNS)
    base = per["uniform"].test_avg_acc
    rows = []
    for strategy, group in per.items():
        common = group.index.intersection(base.index)
        diff = (group.test_avg_acc[common] - base[common]).to_numpy(dtype=float)
        mean, low, high = mean_ci(diff.tolist()) if len(diff) else (math.nan,) * 3
        shares = group.noise_share.dropna().to_list()
        noise = mean_ci(shares) if shares else (math.nan,) * 3
        p_t = math.nan if strategy == "uniform" else _paired(group.test_avg_acc, base)[1]
        rows.append({"strategy": strategy, "seeds": len(diff), "diff_vs_uniform": mean,
                     "diff_low": low, "diff_high": high, "p_ttest": p_t,
                     "p_tost": math.nan if strategy == "uniform" else tost(diff, margin),
                     "noise_share": noise[0], "noise_low": noise[1], "noise_high": noise[2]})
    table = pd.DataFrame(rows)
    table["p_ttest"] = holm(table.p_ttest.tolist())
    table["p_tost"] = holm(table.p_tost.tolist())
    table["verdict"] = [_verdict(r.strategy, r.diff_vs_uniform, r.p_ttest, r.p_tost)
                        for r in table.itertuples()]
    return table.sort_values(["diff_vs_uniform", "strategy"], ascending=[False, True],
                             ignore_index=True)[UNIFORM_COLUMNS]


def _verdict(strategy: str, diff: float, p_t: float, p_tost: float) -> str:
    if strategy == "uniform":
        return "reference"
    if not math.isnan(p_t) and p_t < ALPHA:
        return "better" if diff > 0 else "worse"
    if not math.isnan(p_tost) and p_tost < ALPHA:
        return "equivalent"
    return "inconclusive"


def transfer_table(cells: list[StudyCell]) -> pd.DataFrame:
    """Per strategy and model spec: the mean test score (95% interval over seeds) of its
    selected weights retrained on that larger model (``--transfer-spec``)."""
    rows = []
    for strategy, group in cells_frame(cells).groupby("strategy", sort=False):
        for column in [c for c in group if str(c).startswith("transfer:")]:
            values = group[column].dropna().to_list()
            if values:
                mean, low, high = mean_ci(values)
                rows.append({"strategy": strategy, "spec": column.split(":", 1)[1],
                             "seeds": len(values), "test_avg_acc": mean, "test_low": low,
                             "test_high": high})
    return pd.DataFrame(rows, columns=["strategy", "spec", "seeds", "test_avg_acc", "test_low",
                                       "test_high"])


__all__ = ["CELLS", "EQUIVALENCE_MARGIN", "REFERENCE", "TABLE_COLUMNS", "UNIFORM_COLUMNS",
           "ReferenceCell", "StudyCell", "cell_name", "cells_frame", "holm", "read_cells",
           "reference_scores", "study_table", "tost", "transfer_table", "uniform_table",
           "write_cell"]
