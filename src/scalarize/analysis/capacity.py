"""The capacity study: multi-task gain per capacity, best weights, and rank stability.

Input: a sweep folder (``sweep.json`` + run folders). Every function returns a pandas
DataFrame so that tables, figures and notebooks share the same numbers.

Example:
    >>> runs = load_sweep("sweeps/shapes")  # doctest: +SKIP
    >>> per_capacity(weighting_gains(runs))  # doctest: +SKIP
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from scalarize.analysis.gain import multitask_gain
from scalarize.analysis.stats import mean_ci
from scalarize.errors import ScalarizeError
from scalarize.runs.store import sweep_runs


def load_sweep(folder: Path | str) -> pd.DataFrame:
    """One row per finished run of the sweep: role, capacity, axes, weights, per-objective
    test metric (each objective's primary metric: accuracy, or an error of a dense
    task), average accuracy, parameters. ``attrs['objectives']`` names them and
    ``attrs['lower_is_better']`` says which metrics are errors."""
    plan, done = sweep_runs(folder)
    objectives = plan.objectives
    rows, lower = [], {}
    for run, summary in done:
        result = summary.test
        row = {"name": run.name, "capacity": run.capacity, "weights_label": run.weights_label,
               "single_task": run.single_task, "seed": run.seed}
        row.update({f"axis_{k}": v for k, v in run.axes.items()})
        if run.data is not None:
            row["data"] = run.data
            row.update({f"data_{k}": _cell_value(v) for k, v in (run.data_axes or {}).items()})
        row.update({f"w_{k}": v for k, v in run.weights.as_dict().items()})
        for k in objectives:
            row[f"m_{k}"], lower[k] = result.primary_value(k)
        row["avg_acc"] = result.avg_acc
        row["params"] = summary.model.params
        rows.append(row)
    frame = pd.DataFrame(rows)
    frame.attrs["objectives"] = objectives
    frame.attrs["lower_is_better"] = lower
    frame.attrs["view"] = plan.view
    frame.attrs["planned"] = len(plan.runs)
    return frame


def _cell_value(value: object) -> object:
    """A data option's value as one table cell (per-domain sizes ``[3000, 400]`` as text)."""
    return "x".join(map(str, value)) if isinstance(value, list | tuple) else value


def cell_keys(frame: pd.DataFrame) -> list[str]:
    """The columns that name one cell of the study: the capacity, and the data option values
    (``data``) when the sweep varies them (``sweep.data``)."""
    return ["data", "capacity"] if "data" in frame.columns else ["capacity"]


def _cell_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns
            if c.startswith("axis_") or (c.startswith("data_") and c != "data")]


def weighting_gains(runs: pd.DataFrame) -> pd.DataFrame:
    """Δ of every multi-task run against the single-task runs of the same capacity (and data
    options) and seed."""
    objectives = runs.attrs["objectives"]
    keys = cell_keys(runs)
    singles = runs[runs.single_task.notna()]
    baseline = {(*(r[k] for k in keys), r.seed, r.single_task): r[f"m_{r.single_task}"]
                for _, r in singles.iterrows()}
    rows = []
    for _, r in runs[runs.single_task.isna()].iterrows():
        try:
            cell = tuple(r[k] for k in keys)
            base = {o: baseline[(*cell, r.seed, o)] for o in objectives}
        except KeyError:
            continue  # the baseline of this capacity and seed is not finished yet
        gain = multitask_gain({o: r[f"m_{o}"] for o in objectives}, base,
                              runs.attrs.get("lower_is_better"))
        rows.append({**r.to_dict(), "gain": gain})
    out = pd.DataFrame(rows)
    out.attrs.update(runs.attrs)
    return out


def summarize(gains: pd.DataFrame) -> pd.DataFrame:
    """Per capacity (and data options) and weighting: mean Δ and mean average accuracy over
    seeds, with 95% intervals (NaN with one seed), and the number of seeds."""
    if gains.empty:
        raise ScalarizeError("no multi-task run has its single-task baselines yet")
    weight_cols = [c for c in gains.columns if c.startswith("w_")]
    axis_cols = _cell_columns(gains)
    keys = cell_keys(gains)
    rows = []
    for (*cell, label), group in gains.groupby([*keys, "weights_label"], sort=False):
        gain, g_lo, g_hi = mean_ci(group.gain)
        acc, a_lo, a_hi = mean_ci(group.avg_acc)
        first = group.iloc[0]
        rows.append({**dict(zip(keys, cell, strict=True)), "weights_label": label,
                     **{c: first[c] for c in axis_cols + weight_cols}, "params": first.params,
                     "gain": gain, "gain_lo": g_lo, "gain_hi": g_hi,
                     "avg_acc": acc, "avg_acc_lo": a_lo, "avg_acc_hi": a_hi,
                     "seeds": len(group)})
    out = pd.DataFrame(rows)
    # data settings in the plan's order, then capacities from the smallest
    rank = out[keys[0]].map({v: i for i, v in enumerate(out[keys[0]].drop_duplicates())})
    order = ["_data"] * (len(keys) > 1) + ["params", "weights_label"]
    out = out.assign(_data=rank).sort_values(order, kind="stable").drop(columns="_data")
    out.attrs.update(gains.attrs)
    return out.reset_index(drop=True)


def distance_from_uniform(weights: np.ndarray) -> float:
    """Total-variation distance to the uniform point: 0 at uniform, 1 − 1/T at a corner."""
    weights = np.asarray(weights, dtype=float)
    return float(0.5 * np.abs(weights - 1.0 / len(weights)).sum())


def _best(group: pd.DataFrame) -> pd.Series | None:
    """The weighting with the highest mean Δ; ``None`` when every Δ is undefined (NaN: a
    single-task baseline that scored 0)."""
    defined = group.dropna(subset=["gain"])
    return None if defined.empty else defined.loc[defined.gain.idxmax()]


def per_capacity(summary: pd.DataFrame) -> pd.DataFrame:
    """Per capacity (and data options): the best weighting (by mean Δ), its Δ, uniform's Δ,
    and how far the best weights are from uniform."""
    weight_cols = [c for c in summary.columns if c.startswith("w_")]
    keys = cell_keys(summary)
    rows = []
    for cell, group in summary.groupby(keys, sort=False):
        best = _best(group)
        first = group.iloc[0]
        uniform = group[group.weights_label == "uniform"]
        u = uniform.iloc[0] if len(uniform) else None
        rows.append({
            **dict(zip(keys, cell, strict=True)), "params": int(first.params),
            **{c: first[c] for c in _cell_columns(group)},
            "best_weights": None if best is None else best.weights_label,
            "best_gain": np.nan if best is None else best.gain,
            "best_gain_lo": np.nan if best is None else best.gain_lo,
            "best_gain_hi": np.nan if best is None else best.gain_hi,
            "uniform_gain": np.nan if u is None else u.gain,
            "uniform_gain_lo": np.nan if u is None else u.gain_lo,
            "uniform_gain_hi": np.nan if u is None else u.gain_hi,
            "best_distance_from_uniform": np.nan if best is None else
            distance_from_uniform(best[weight_cols].to_numpy()),
            "weightings": len(group), "seeds": int(group.seeds.min()),
        })
    return pd.DataFrame(rows)


def _per_data(table: Callable[[pd.DataFrame], pd.DataFrame], summary: pd.DataFrame
              ) -> pd.DataFrame:
    """``table`` of each data-options group of ``summary`` (a ``data`` column first), or of
    ``summary`` when the sweep does not vary data options."""
    if "data" not in summary.columns:
        return table(summary)
    parts = [table(group).assign(data=data) for data, group in summary.groupby("data",
                                                                              sort=False)]
    parts = [p for p in parts if not p.empty]
    if not parts:
        return pd.DataFrame()
    out = pd.concat(parts, ignore_index=True)
    return out[["data", *[c for c in out.columns if c != "data"]]]


def rank_stability(summary: pd.DataFrame) -> pd.DataFrame:
    """Kendall τ and Spearman ρ between the orderings of weightings (by mean Δ) at every pair
    of capacities, over the weightings both have (per data options, when the sweep varies
    them)."""
    return _per_data(_rank_stability, summary)


def _rank_stability(summary: pd.DataFrame) -> pd.DataFrame:
    table = summary.pivot(index="weights_label", columns="capacity", values="gain")
    order = summary.drop_duplicates("capacity").capacity.tolist()
    rows = []
    for a, b in itertools.combinations(order, 2):
        pair = table[[a, b]].dropna()
        if len(pair) < 2:
            continue
        with warnings.catch_warnings():  # a constant ordering gives NaN, which is the answer
            warnings.simplefilter("ignore", stats.ConstantInputWarning)
            tau = stats.kendalltau(pair[a], pair[b])
            rho = stats.spearmanr(pair[a], pair[b])
        rows.append({"capacity_a": a, "capacity_b": b, "kendall_tau": float(tau.statistic),
                     "kendall_p": float(tau.pvalue), "spearman_rho": float(rho.statistic),
                     "spearman_p": float(rho.pvalue), "weightings": len(pair)})
    return pd.DataFrame(rows)


def transfer_regret(summary: pd.DataFrame) -> pd.DataFrame:
    """Regret of searching small and training big: for every capacity A and every larger
    capacity B, the best Δ at B minus the Δ at B of A's best weights (0 = transfer is
    perfect; *search small, train big*); per data options, when the sweep varies them."""
    return _per_data(_transfer_regret, summary)


def _transfer_regret(summary: pd.DataFrame) -> pd.DataFrame:
    order = summary.drop_duplicates("capacity").sort_values("params").capacity.tolist()
    rows = []
    for i, source in enumerate(order):
        small = _best(summary[summary.capacity == source])
        if small is None:
            continue
        chosen = small.weights_label
        for capacity in order[i + 1:]:
            group = summary[summary.capacity == capacity]
            transferred = group[group.weights_label == chosen].dropna(subset=["gain"])
            best = _best(group)
            if transferred.empty or best is None:
                continue
            rows.append({"from": source, "to": capacity, "transferred_weights": chosen,
                         "transferred_gain": float(transferred.gain.iloc[0]),
                         "best_weights": best.weights_label, "best_gain": float(best.gain),
                         "regret": float(best.gain - transferred.gain.iloc[0])})
    return pd.DataFrame(rows)


def capacity_trend(gains: pd.DataFrame, cells: pd.DataFrame) -> pd.DataFrame:
    """Does Δ grow with capacity? Spearman's ρ (with its p-value) between log parameters and
    the per-seed Δ (``gains``, from :func:`weighting_gains`) of the best weighting of each
    capacity (``cells``, from :func:`per_capacity`: best by mean Δ there), and the same for
    uniform weights; per data options, when the sweep varies them. ``runs`` is the number of
    (capacity, seed) points."""
    keys = cell_keys(gains)
    best = {tuple(r[k] for k in keys): r.best_weights for _, r in cells.iterrows()}
    groups = gains.groupby("data", sort=False) if "data" in keys else [(None, gains)]
    rows = []
    for data, group in groups:
        chosen = group.apply(lambda r: best.get(tuple(r[k] for k in keys)), axis=1)
        for weighting, runs in (("best", group[group.weights_label == chosen]),
                                ("uniform", group[group.weights_label == "uniform"])):
            runs = runs.dropna(subset=["gain"])
            if runs.params.nunique() < 2:
                continue
            rho = stats.spearmanr(np.log10(runs.params.astype(float)), runs.gain)
            rows.append({**({"data": data} if data is not None else {}),
                         "weighting": weighting, "spearman_rho": float(rho.statistic),
                         "p": float(rho.pvalue), "runs": len(runs)})
    return pd.DataFrame(rows)


def gain_plane(cells: pd.DataFrame, value: str = "best_gain") -> pd.DataFrame:
    """The (data options × capacity) plane of ``value`` (a column of :func:`per_capacity`:
    ``best_gain`` or ``uniform_gain``) as cells ``"Δ [lo, hi]"``: one row per data option
    setting, one column per capacity (smallest first). Empty unless the sweep varies data.

    Example:
        >>> cells = pd.DataFrame({"data": ["n500", "n500"], "capacity": ["s", "l"],
        ...                       "params": [10, 90], "best_gain": [-1.0, 2.0],
        ...                       "best_gain_lo": [-2.0, 1.0], "best_gain_hi": [0.0, 3.0]})
        >>> gain_plane(cells).to_dict("records")
        [{'data': 'n500', 's': '-1.0 [-2.0, 0.0]', 'l': '2.0 [1.0, 3.0]'}]
    """
    if "data" not in cells.columns or cells.empty:
        return pd.DataFrame()

    def text(row: pd.Series) -> str:
        if pd.isna(row[value]):
            return "-"
        lo, hi = row[f"{value}_lo"], row[f"{value}_hi"]
        interval = "" if pd.isna(lo) else f" [{lo:.1f}, {hi:.1f}]"
        return f"{row[value]:.1f}{interval}"

    capacities = cells.sort_values("params", kind="stable").capacity.drop_duplicates().tolist()
    table = cells.assign(cell=cells.apply(text, axis=1)).pivot(
        index="data", columns="capacity", values="cell")
    table = table.reindex(index=cells.data.drop_duplicates().tolist(), columns=capacities)
    table.columns.name = None
    return table.fillna("-").reset_index()
