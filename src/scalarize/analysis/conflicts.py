"""Gradient conflicts against performance, capacity and weights (``scalarize analyze
conflicts DIR``), from the ``conflicts.jsonl`` files the conflict probe writes.

Correlations come with 95% intervals: Pearson's from SciPy (Fisher z), Spearman's by the Fisher
z transform with the Fieller-Hartley-Pearson variance 1.06 / (n − 3). Means over runs of a
bounded measure (a conflict share in [0, 1], a cosine or a correlation in [−1, 1]) come with a
percentile-bootstrap interval (:func:`~scalarize.analysis.stats.bootstrap_mean_ci`), which stays
inside the measure's range where a Student-t interval over a few runs would not.

The floor: runs probed on the probe's own batch (``probes.conflicts.examples``) also record a
same-objective control, and every table that shows a cross-objective share or mean cosine shows
its control next to it (``control_share``, ``control_cos_mean``): a conflict share is read
against the share that two minibatches of one objective give. Trends over capacity are tested at
the capacity level (Spearman ρ of capacity means, exact permutation p-value) and over the weights
at the weighting level, with Holm's correction across the family of trends; conflict against
accuracy is also given with capacity held fixed (partial correlation,
:mod:`scalarize.analysis.partial`).

Example:
    >>> epochs = conflict_epochs("sweeps/capacity-mtl")  # doctest: +SKIP
    >>> across_runs(epochs, "conflict_share")  # doctest: +SKIP
"""

from __future__ import annotations

import math
import re
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.multitest import multipletests

from scalarize.analysis.capacity import distance_from_uniform
from scalarize.analysis.partial import level_trend, partial_correlation
from scalarize.analysis.stats import bootstrap_mean_ci
from scalarize.errors import ScalarizeError
from scalarize.runs import layout
from scalarize.runs.records import PlannedRun, SweepPlan
from scalarize.runs.store import RunDir, StudyDir, find_runs, read_or_skip

MEASURES = ("conflict_share", "cos_mean", "gms_mean")
#: each cross-objective measure's same-objective floor (runs probed with ``examples``)
FLOORS = {"conflict_share": "control_share", "cos_mean": "control_cos_mean"}
#: the correction applied across a family of tests, named in every table that uses it
CORRECTION = "holm"


def _number(value: float | None) -> float:
    return math.nan if value is None else float(value)


def _planned(folder: Path | str) -> dict[str, PlannedRun]:
    """Run name -> its planned run, from the sweep's plan when ``folder`` is a sweep (a sweep
    over a factory's options plans one capacity label per options set, e.g. ``build-width32``,
    where every run has the same ``model.spec``; a sweep over data options labels each run's
    data cell); empty otherwise."""
    study = StudyDir(folder, layout.SWEEP)
    if not study.is_study:
        return {}
    return {run.name: run for run in study.read_plan(SweepPlan).runs}


def _run_identity(run: RunDir, planned: dict[str, PlannedRun] | None = None
                  ) -> dict[str, object] | None:
    summary = run.read_summary()
    if summary is None:
        return None
    seed = run.read_config().get("seed", 0)
    plan = (planned or {}).get(run.path.name)
    identity: dict[str, object] = {
        "run": run.path.name, "capacity": plan.capacity if plan else summary.model.spec,
        "params": summary.model.params, "weights_label": summary.weights_label,
        "distance_from_uniform": distance_from_uniform(np.array(summary.weights.values)),
        "first_weight": summary.weights.values[0],
        "multi_task": not summary.weights.is_single_task, "seed": seed,
        "final_val_avg_acc": summary.val.avg_acc, "final_test_avg_acc": summary.test.avg_acc}
    if plan is not None and plan.data is not None:
        identity["data"] = plan.data
    return identity


def _probed_steps(run: RunDir, planned: dict[str, PlannedRun]) -> list[dict[str, object]]:
    records = run.read_conflicts()
    ident = _run_identity(run, planned) if records else None
    if ident is None:
        return []
    return [{**ident, "step": r.step, "epoch": r.epoch,
             **{m: getattr(r, m) for m in (*MEASURES, "cos_min")},
             **{f: _number(getattr(r, f)) for f in FLOORS.values()}} for r in records]


def _probed_layers(run: RunDir, planned: dict[str, PlannedRun]) -> list[dict[str, object]]:
    records = run.read_conflicts()
    ident = _run_identity(run, planned) if records else None
    if ident is None or not ident["multi_task"]:
        return []
    return [{**ident, "step": r.step, "layer": name,
             "conflict_share": _number(layer.get("conflict_share")),
             "control_share": _number(layer.get("control_share"))}
            for r in records for name, layer in (r.layers or {}).items()]


def _probed_epochs(run: RunDir, planned: dict[str, PlannedRun]) -> list[dict[str, object]]:
    ident = _run_identity(run, planned)
    if ident is None:
        return []
    rows = []
    for record in run.read_metrics():
        measures = {m: getattr(record, m, None) for m in MEASURES}
        if measures["conflict_share"] is None:
            continue
        measures.update({f: _number(getattr(record, f, None)) for f in FLOORS.values()})
        rows.append({**ident, "epoch": record.epoch, "val_avg_acc": record.val_avg_acc,
                     **measures})
    return rows


def conflict_steps(folder: Path | str) -> pd.DataFrame:
    """Every probed step of every finished run under ``folder``, with the run's identity (a
    corrupt run is skipped with one :class:`~scalarize.errors.SkippedRunWarning`)."""
    rows, planned = [], _planned(folder)
    for run in find_runs(folder):
        rows += read_or_skip(run.path, partial(_probed_steps, run, planned)) or []
    if not rows:
        raise ScalarizeError(f"no finished run under {folder} has conflict records; train with "
                             "probes={conflicts: {every: 50}}")
    return pd.DataFrame(rows)


def conflict_epochs(folder: Path | str) -> pd.DataFrame:
    """Per run and epoch: the epoch means of the conflict measures and the validation metric
    (a corrupt run is skipped with one :class:`~scalarize.errors.SkippedRunWarning`)."""
    rows, planned = [], _planned(folder)
    for run in find_runs(folder):
        if run.has_conflicts:
            rows += read_or_skip(run.path, partial(_probed_epochs, run, planned)) or []
    if not rows:
        raise ScalarizeError(f"no finished run under {folder} has conflict records")
    return pd.DataFrame(rows)


def conflict_layers(folder: Path | str) -> pd.DataFrame:
    """Every probed step's per-block conflict share and control share, of every finished
    multi-task run under ``folder`` (empty when none recorded blocks)."""
    rows, planned = [], _planned(folder)
    for run in find_runs(folder):
        if run.has_conflicts:
            rows += read_or_skip(run.path, partial(_probed_layers, run, planned)) or []
    return pd.DataFrame(rows)


def correlation(x, y) -> dict[str, float]:
    """Pearson r and Spearman ρ of ``x`` and ``y`` with 95% intervals, p-values and n."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    n = len(x)
    nan = {"n": n, "pearson_r": math.nan, "pearson_lo": math.nan, "pearson_hi": math.nan,
           "pearson_p": math.nan, "spearman_rho": math.nan, "spearman_lo": math.nan,
           "spearman_hi": math.nan, "spearman_p": math.nan}
    if n < 4 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return nan
    pearson = stats.pearsonr(x, y)
    ci = pearson.confidence_interval(0.95)
    spearman = stats.spearmanr(x, y)
    rho = float(spearman.statistic)
    half = 1.959964 * math.sqrt(1.06 / (n - 3))
    z = math.atanh(max(min(rho, 0.999999), -0.999999))
    return {"n": n, "pearson_r": float(pearson.statistic), "pearson_lo": float(ci.low),
            "pearson_hi": float(ci.high), "pearson_p": float(pearson.pvalue),
            "spearman_rho": rho, "spearman_lo": math.tanh(z - half),
            "spearman_hi": math.tanh(z + half), "spearman_p": float(spearman.pvalue)}


def within_runs(epochs: pd.DataFrame, measure: str = "conflict_share") -> pd.DataFrame:
    """Per multi-task run: correlation across epochs between ``measure`` and val accuracy."""
    rows = []
    for run, group in epochs[epochs.multi_task].groupby("run", sort=False):
        first = group.iloc[0]
        rows.append({"run": run, "capacity": first.capacity, "weights_label": first.weights_label,
                     "seed": first.seed, **correlation(group[measure], group.val_avg_acc)})
    return pd.DataFrame(rows)


def across_runs(epochs: pd.DataFrame, measure: str = "conflict_share") -> dict[str, Any]:
    """Across multi-task runs: the run's mean ``measure`` over training against its final
    validation average accuracy."""
    per_run = epochs[epochs.multi_task].groupby("run").agg(
        conflict=(measure, "mean"), final=("final_val_avg_acc", "first"))
    return {"measure": measure, **correlation(per_run.conflict, per_run.final)}


def by_factor(epochs: pd.DataFrame, factor: str, measure: str = "conflict_share"
              ) -> pd.DataFrame:
    """Mean over runs of each run's mean ``measure``, per capacity or weights, with its 95%
    percentile-bootstrap interval over runs (inside the measure's range; NaN for one run); the
    measure's same-objective floor (:data:`FLOORS`) next to it where the runs recorded one."""
    multi = epochs[epochs.multi_task]
    floor = FLOORS.get(measure, "")
    aggs = {"value": (measure, "mean"), "key": (factor, "first"), "params": ("params", "first")}
    has_floor = bool(floor) and floor in multi.columns and multi[floor].notna().any()
    if has_floor:
        aggs["floor"] = (floor, "mean")
    per_run = multi.groupby("run").agg(**aggs)
    rows = []
    for key, group in per_run.groupby("key", sort=False):
        mean, lo, hi = bootstrap_mean_ci(group.value)
        row = {factor: key, "params": int(group.params.iloc[0]), measure: mean,
               f"{measure}_lo": lo, f"{measure}_hi": hi}
        if has_floor:
            f_mean, f_lo, f_hi = bootstrap_mean_ci(group.floor.dropna())
            row.update({floor: f_mean, f"{floor}_lo": f_lo, f"{floor}_hi": f_hi})
        rows.append({**row, "runs": len(group)})
    out = pd.DataFrame(rows)
    if factor == "capacity":
        return out.sort_values("params").reset_index(drop=True)
    return out.drop(columns="params").sort_values(factor).reset_index(drop=True)


def floor_table(epochs: pd.DataFrame, factor: str = "capacity") -> pd.DataFrame:
    """Per capacity (or weights): the cross-objective conflict share and mean cosine, each next
    to its same-objective floor, as text ``mean [lo, hi]`` (bootstrap 95% over runs), and the
    share's excess over its floor; empty when no run recorded the control."""
    share, cos = by_factor(epochs, factor), by_factor(epochs, factor, "cos_mean")
    if "control_share" not in share.columns:
        return pd.DataFrame()

    def text(frame: pd.DataFrame, column: str) -> list[str]:
        return [f"{m:.3f} [{lo:.3f}, {hi:.3f}]" if math.isfinite(lo) else f"{m:.3f} (n=1)"
                for m, lo, hi in zip(frame[column], frame[f"{column}_lo"],
                                     frame[f"{column}_hi"], strict=True)]

    return pd.DataFrame({
        factor: share[factor], "runs": share.runs,
        "conflict_share": text(share, "conflict_share"),
        "control_share": text(share, "control_share"),
        "share_over_floor": share.conflict_share - share.control_share,
        "cos_mean": text(cos, "cos_mean"), "control_cos_mean": text(cos, "control_cos_mean")})


def per_layer(layers: pd.DataFrame) -> pd.DataFrame:
    """Per capacity and encoder block: the mean over runs of each run's mean conflict share,
    and of its control share where recorded, with bootstrap 95% intervals over runs; blocks in
    the encoder's order, capacities by size."""
    if layers.empty:
        return pd.DataFrame()
    order = {name: i for i, name in enumerate(dict.fromkeys(layers.layer))}
    per_run = layers.groupby(["run", "layer"], sort=False).agg(
        conflict_share=("conflict_share", "mean"), control_share=("control_share", "mean"),
        capacity=("capacity", "first"), params=("params", "first")).reset_index()
    rows = []
    for (capacity, layer), group in per_run.groupby(["capacity", "layer"], sort=False):
        row: dict[str, object] = {"capacity": capacity, "layer": layer,
                                  "_params": group.params.iloc[0], "_order": order[layer]}
        for column in ("conflict_share", "control_share"):
            values = group[column].dropna()
            if values.empty:
                continue
            mean, lo, hi = bootstrap_mean_ci(values)
            row.update({column: mean, f"{column}_lo": lo, f"{column}_hi": hi})
        rows.append({**row, "runs": len(group)})
    out = pd.DataFrame(rows).sort_values(["_params", "_order"])
    return out.drop(columns=["_params", "_order"]).reset_index(drop=True)


def _holm(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with ``p_holm`` (Holm's step-down correction over its finite ``p`` values, one
    family) and ``correction`` naming it and the family's size."""
    finite = table.p.notna()
    table["p_holm"] = math.nan
    if finite.any():
        table.loc[finite, "p_holm"] = multipletests(table.p[finite], method=CORRECTION)[1]
    table["correction"] = f"{CORRECTION} over {int(finite.sum())} tests"
    return table


def _measures(epochs: pd.DataFrame) -> list[str]:
    """The cross-objective measures and, where recorded, their floors."""
    floors = [f for f in FLOORS.values()
              if f in epochs.columns and epochs.loc[epochs.multi_task, f].notna().any()]
    return [*MEASURES, *floors]


def partial_table(epochs: pd.DataFrame) -> pd.DataFrame:
    """Each measure's run mean against the run's final validation average accuracy, with
    capacity held fixed (partial correlation, capacity as a category; multi-task runs), Holm
    across the measures."""
    rows = []
    for measure in _measures(epochs):
        runs = _run_means(epochs, measure).merge(
            epochs.groupby("run").final_val_avg_acc.first().reset_index(), on="run")
        runs = runs.dropna(subset=["value", "final_val_avg_acc"])
        out = partial_correlation(runs.value, runs.final_val_avg_acc, runs.capacity)
        rows.append({"measure": measure, "against": "final val avg acc",
                     "held_fixed": "capacity", "partial_r": out["r"], "p": out["p"],
                     "runs": out["n"], "capacities": out["levels"], "df": out["df"]})
    return _holm(pd.DataFrame(rows))


def summary_table(epochs: pd.DataFrame) -> pd.DataFrame:
    """For each measure: the mean within-run correlation (with its bootstrap interval over runs,
    inside [−1, 1]) and the across-run correlation with its interval."""
    rows = []
    for measure in MEASURES:
        within = within_runs(epochs, measure)
        r_mean, r_lo, r_hi = bootstrap_mean_ci(within.pearson_r.dropna()) if within.pearson_r.notna(
        ).any() else (math.nan,) * 3
        across = across_runs(epochs, measure)
        rows.append({"measure": measure, "within_pearson_mean": r_mean,
                     "within_lo": r_lo, "within_hi": r_hi, "runs": int(within.pearson_r.notna(
                     ).sum()), "across_pearson": across["pearson_r"],
                     "across_lo": across["pearson_lo"], "across_hi": across["pearson_hi"],
                     "across_spearman": across["spearman_rho"],
                     "across_spearman_lo": across["spearman_lo"],
                     "across_spearman_hi": across["spearman_hi"], "across_n": across["n"]})
    return pd.DataFrame(rows)


def _natural(text: str) -> tuple[Any, ...]:
    """Sort key reading the digits in a label as numbers (``600x30`` before ``600x120``)."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text))


def _run_means(epochs: pd.DataFrame, measure: str) -> pd.DataFrame:
    """One row per multi-task run: its mean ``measure`` over the probed epochs and its identity."""
    keys = [c for c in ("data", "capacity", "params", "weights_label", "distance_from_uniform",
                        "first_weight", "seed") if c in epochs.columns]
    return epochs[epochs.multi_task].groupby("run").agg(
        value=(measure, "mean"), **{k: (k, "first") for k in keys}).reset_index()


def trends(epochs: pd.DataFrame) -> pd.DataFrame:
    """Does a conflict measure (or its floor) move with capacity, or with how far the weights
    are from uniform? Tested at the unit each factor varies over, not over runs: Spearman ρ of
    the capacity means (mean over that capacity's runs of each run's mean measure) against log
    parameters, and of the weighting means against the weights' total-variation distance from
    uniform, each with an exact permutation p-value (:func:`~scalarize.analysis.partial.
    level_trend`), and Holm's correction across every row. With a data axis the runs of every
    data cell are pooled (the plane gives them apart)."""
    rows = []
    for measure in _measures(epochs):
        runs = _run_means(epochs, measure).dropna(subset=["value"])
        for factor, key, x in (("log10 params", "capacity", "params"),
                               ("distance from uniform", "weights_label",
                                "distance_from_uniform")):
            units = runs.groupby(key).agg(x=(x, "first"), value=("value", "mean"))
            xs = np.log10(units.x.astype(float)) if x == "params" else units.x.astype(float)
            out = level_trend(xs, units.value)
            rows.append({"measure": measure, "against": factor, "unit": key,
                         "spearman_rho": out["rho"], "p": out["p"], "units": out["units"],
                         "runs": len(runs)})
    return _holm(pd.DataFrame(rows))


def plane(epochs: pd.DataFrame, measure: str = "conflict_share") -> pd.DataFrame:
    """Mean over seeds of each run's mean ``measure`` per (weights × capacity) cell, as text
    ``mean [lo, hi]`` (bootstrap interval over runs, inside the measure's range); rows are
    weights, from the most weight on the first objective down, columns capacities by parameter
    count (multi-task runs; with a data axis, one row block per data cell)."""
    runs = _run_means(epochs, measure)
    if runs.empty:
        return pd.DataFrame()
    rows = [k for k in ("data", "weights_label") if k in runs.columns]
    cells = []
    for key, group in runs.groupby([*rows, "capacity"], sort=False):
        mean, lo, hi = bootstrap_mean_ci(group.value)
        text = f"{mean:.3f} [{lo:.3f}, {hi:.3f}]" if math.isfinite(lo) else f"{mean:.3f} (n=1)"
        cells.append({**dict(zip([*rows, "capacity"], key, strict=True)), "text": text,
                      "params": group.params.iloc[0], "_order": -group.first_weight.iloc[0]})
    frame = pd.DataFrame(cells)
    order = frame.drop_duplicates("capacity").sort_values("params").capacity.tolist()
    table = frame.pivot_table(index=[*rows, "_order"], columns="capacity", values="text",
                              aggfunc="first")
    table = table[order].reset_index()
    table = table.sort_values([*rows[:-1], "_order"], key=lambda c: c.map(_natural)
                              if c.name == "data" else c)
    table.columns.name = None
    return table.drop(columns="_order").reset_index(drop=True)
