"""The capacity study: multi-task gain per capacity, the selected weights, and rank stability.

Input: a sweep folder (``sweep.json`` + run folders). Every function returns a pandas
DataFrame so that tables, figures and notebooks share the same numbers.

Two rules hold throughout (issue 29):

- **Selection on validation.** Every "best" weighting is the one with the highest mean
  *validation* Δ (``val_gain``: Δ of each objective's validation score against the
  single-task runs' validation scores); the Δ reported for it is its *test* Δ. Runs written
  without validation scores fall back to selecting on test, with one warning naming the
  fallback (:class:`~scalarize.errors.SelectionFallbackWarning`); ``selected_on`` says which.
- **Tests at the capacity level.** Seeds change initialisation and batch order, not the unit
  the claim is about, so a trend over capacity is a Spearman ρ over the capacity means with
  an exact permutation p-value, its interval a bootstrap of seeds within each capacity, and
  each table of several tests carries Holm-adjusted p-values (``p_holm``; the correction is
  named in ``attrs["correction"]``).

Example:
    >>> runs = load_sweep("sweeps/shapes")  # doctest: +SKIP
    >>> per_capacity(weighting_gains(runs))  # doctest: +SKIP
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from scalarize.analysis.gain import multitask_gain
from scalarize.analysis.stats import (
    hierarchical_bootstrap_ci,
    holm,
    kendall_permutation_test,
    kendall_tau_bootstrap,
    mean_ci,
    sign_flip_test,
    spearman_permutation_test,
    spearman_rows,
)
from scalarize.errors import ScalarizeError, SelectionFallbackWarning
from scalarize.runs.store import sweep_runs


def load_sweep(folder: Path | str) -> pd.DataFrame:
    """One row per finished run of the sweep: role, capacity, axes, weights, per-objective
    test metric (``m_<objective>``: each objective's primary metric, accuracy or an error of a
    dense task), per-objective validation score of the last epoch (``v_<objective>``: the
    score, higher is better; NaN for a run written without one), average accuracy,
    parameters. ``attrs['objectives']`` names them and ``attrs['lower_is_better']`` says
    which test metrics are errors."""
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
        val = summary.val.acc or {}
        for k in objectives:
            row[f"m_{k}"], lower[k] = result.primary_value(k)
            row[f"v_{k}"] = val.get(k, np.nan)
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
    options) and seed: ``gain`` on the test split, ``val_gain`` on the validation split (on
    each objective's validation score; NaN where a run has none), the one a selection may
    look at."""
    objectives = runs.attrs["objectives"]
    keys = cell_keys(runs)
    singles = runs[runs.single_task.notna()]
    baseline = {(*(r[k] for k in keys), r.seed, r.single_task): r
                for _, r in singles.iterrows()}
    has_val = all(f"v_{o}" in runs.columns for o in objectives)
    rows = []
    for _, r in runs[runs.single_task.isna()].iterrows():
        try:
            cell = tuple(r[k] for k in keys)
            base = {o: baseline[(*cell, r.seed, o)] for o in objectives}
        except KeyError:
            continue  # the baseline of this capacity and seed is not finished yet
        gain = multitask_gain({o: r[f"m_{o}"] for o in objectives},
                              {o: b[f"m_{o}"] for o, b in base.items()},
                              runs.attrs.get("lower_is_better"))
        val = [r[f"v_{o}"] for o in objectives] + [b[f"v_{o}"] for o, b in base.items()]
        val_gain = (multitask_gain({o: r[f"v_{o}"] for o in objectives},
                                   {o: b[f"v_{o}"] for o, b in base.items()})
                    if has_val and not any(pd.isna(v) for v in val) else np.nan)
        rows.append({**r.to_dict(), "gain": gain, "val_gain": val_gain})
    out = pd.DataFrame(rows)
    out.attrs.update(runs.attrs)
    return out


def summarize(gains: pd.DataFrame) -> pd.DataFrame:
    """Per capacity (and data options) and weighting: mean test Δ and mean average accuracy
    over seeds, with 95% intervals (NaN with one seed), the mean validation Δ (``val_gain``,
    what a selection looks at) and the number of seeds."""
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
                     "val_gain": _mean(group.val_gain) if "val_gain" in group else np.nan,
                     "seeds": len(group)})
    out = pd.DataFrame(rows)
    # data settings in the plan's order, then capacities from the smallest
    rank = out[keys[0]].map({v: i for i, v in enumerate(out[keys[0]].drop_duplicates())})
    order = ["_data"] * (len(keys) > 1) + ["params", "weights_label"]
    out = out.assign(_data=rank).sort_values(order, kind="stable").drop(columns="_data")
    out.attrs.update(gains.attrs)
    return out.reset_index(drop=True)


def _mean(values: pd.Series) -> float:
    """The mean of the defined values; NaN when none is."""
    defined = values.dropna()
    return float(defined.mean()) if len(defined) else np.nan


def distance_from_uniform(weights: np.ndarray) -> float:
    """Total-variation distance to the uniform point: 0 at uniform, 1 − 1/T at a corner."""
    weights = np.asarray(weights, dtype=float)
    return float(0.5 * np.abs(weights - 1.0 / len(weights)).sum())


def _selection_key(summary: pd.DataFrame) -> str:
    """``val_gain`` when every weighting with a test Δ has a validation Δ, else ``gain`` (the
    runs were written without validation scores) with one
    :class:`~scalarize.errors.SelectionFallbackWarning`."""
    defined = summary.dropna(subset=["gain"])
    if "val_gain" in summary.columns and defined.val_gain.notna().all():
        return "val_gain"
    warnings.warn("some runs of the sweep have no validation scores (written before "
                  "selection on validation): the best weights are selected on test Δ, which "
                  "overstates their gain; rerun the sweep to select on validation",
                  SelectionFallbackWarning, stacklevel=3)
    return "gain"


def _selected_on(key: str) -> str:
    return "val" if key == "val_gain" else "test"


def _best(group: pd.DataFrame, key: str = "val_gain") -> pd.Series | None:
    """The weighting with the highest mean ``key`` (validation Δ unless told), among those
    whose test Δ is defined; ``None`` when none is (NaN: a single-task baseline that scored
    0)."""
    defined = group.dropna(subset=["gain", key])
    return None if defined.empty else defined.loc[defined[key].idxmax()]


def per_capacity(summary: pd.DataFrame) -> pd.DataFrame:
    """Per capacity (and data options): the weighting selected on validation (highest mean
    validation Δ; ``selected_on`` says ``test`` for runs without validation scores), its
    *test* Δ with the Student-t interval over seeds (``best_gain``), uniform's test Δ, and
    how far the selected weights are from uniform."""
    weight_cols = [c for c in summary.columns if c.startswith("w_")]
    keys = cell_keys(summary)
    key = _selection_key(summary)
    rows = []
    for cell, group in summary.groupby(keys, sort=False):
        best = _best(group, key)
        first = group.iloc[0]
        uniform = group[group.weights_label == "uniform"]
        u = uniform.iloc[0] if len(uniform) else None
        rows.append({
            **dict(zip(keys, cell, strict=True)), "params": int(first.params),
            **{c: first[c] for c in _cell_columns(group)},
            "best_weights": None if best is None else best.weights_label,
            "selected_on": _selected_on(key),
            "best_val_gain": np.nan if best is None or key == "gain" else best.val_gain,
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
    out = pd.DataFrame(rows)
    out.attrs["selected_on"] = _selected_on(key)
    return out


def _per_data(table: Callable[[pd.DataFrame, pd.DataFrame | None], pd.DataFrame],
              summary: pd.DataFrame, gains: pd.DataFrame | None = None) -> pd.DataFrame:
    """``table`` of each data-options group of ``summary`` (and of ``gains``; a ``data``
    column first), or of ``summary`` when the sweep does not vary data options."""
    if "data" not in summary.columns:
        return table(summary, gains)
    parts = [table(group, None if gains is None else gains[gains.data == data]).assign(data=data)
             for data, group in summary.groupby("data", sort=False)]
    parts = [p for p in parts if not p.empty]
    if not parts:
        return pd.DataFrame()
    out = pd.concat(parts, ignore_index=True)
    out.attrs.update(parts[0].attrs)
    return out[["data", *[c for c in out.columns if c != "data"]]]


#: What a capacity trend over fewer capacities says instead of a ρ: over 2 capacity means
#: every ordering is ρ = ±1 and the permutation p is 1.
FEW_CAPACITIES = "needs ≥ 3 capacities"
#: What a rank-stability pair with fewer weightings says instead of a τ.
FEW_WEIGHTINGS = "needs ≥ 3 weightings"
#: What a 2-objective sweep's rank-stability table says about its τ.
LINE_NOTE = ("the weightings of 2 objectives lie on one line of the simplex, ordered by one "
             "number: a high τ between capacities is expected and says little")


def rank_stability(summary: pd.DataFrame, gains: pd.DataFrame | None = None) -> pd.DataFrame:
    """Kendall τ (with its exact p-value) and Spearman ρ between the orderings of weightings
    by mean test Δ at every pair of capacities, over the weightings both have (per data
    options, when the sweep varies them); Holm-adjusted across the pairs (``kendall_p_holm``).

    With the per-run ``gains`` (:func:`weighting_gains`), τ also gets a bootstrap interval
    over seeds (``tau_lo``, ``tau_hi``: seeds resampled within each capacity, seed means and τ
    recomputed). A pair with fewer than 3 weightings gets no τ but a ``note``
    (:data:`FEW_WEIGHTINGS`): 2 orderings of 2 things give τ = ±1 and p = 1. With 2
    objectives, ``attrs["note"]`` says why τ is expected to be high (:data:`LINE_NOTE`)."""
    table = _per_data(_rank_stability, summary, gains)
    if table.empty:
        return table
    table["kendall_p_holm"] = holm(table.kendall_p.tolist())
    tested = int(table.kendall_p.notna().sum())
    if tested:
        table.attrs["correction"] = _correction(tested, "pair", "kendall_p_holm")
    if len([c for c in summary.columns if c.startswith("w_")]) == 2:
        table.attrs["note"] = LINE_NOTE
    front = [c for c in table.columns if c not in ("kendall_p_holm", "note")]
    after = front.index("kendall_p") + 1
    order = [*front[:after], "kendall_p_holm", *front[after:]]
    return table[order + (["note"] if "note" in table.columns else [])]


def _rank_stability(summary: pd.DataFrame, gains: pd.DataFrame | None) -> pd.DataFrame:
    table = summary.pivot(index="weights_label", columns="capacity", values="gain")
    order = summary.drop_duplicates("capacity").capacity.tolist()
    rows = []
    for a, b in itertools.combinations(order, 2):
        pair = table[[a, b]].dropna()
        if len(pair) < 2:
            continue
        row: dict[str, object] = {"capacity_a": a, "capacity_b": b}
        if len(pair) < 3:
            rows.append({**row, "kendall_tau": np.nan, "tau_lo": np.nan, "tau_hi": np.nan,
                         "kendall_p": np.nan, "spearman_rho": np.nan,
                         "weightings": len(pair), "note": FEW_WEIGHTINGS})
            continue
        with warnings.catch_warnings():  # a constant ordering gives NaN, which is the answer
            warnings.simplefilter("ignore", stats.ConstantInputWarning)
            tau = kendall_permutation_test(pair[a], pair[b])
            rho = stats.spearmanr(pair[a], pair[b])
        lo, hi = (np.nan, np.nan) if gains is None else _tau_interval(gains, a, b,
                                                                       list(pair.index))
        rows.append({**row, "kendall_tau": tau.statistic, "tau_lo": lo, "tau_hi": hi,
                     "kendall_p": tau.pvalue, "spearman_rho": float(rho.statistic),
                     "weightings": len(pair)})
    out = pd.DataFrame(rows)
    if "note" in out.columns:
        out["note"] = out.note.fillna("")
    return out


def _tau_interval(gains: pd.DataFrame, a: str, b: str, labels: list[str]
                  ) -> tuple[float, float]:
    """The bootstrap interval over seeds of Kendall τ between capacities ``a`` and ``b``
    (:func:`~scalarize.analysis.stats.kendall_tau_bootstrap`)."""
    def matrix(capacity: str) -> np.ndarray:
        cell = gains[gains.capacity == capacity]
        return (cell.pivot_table(index="weights_label", columns="seed", values="gain",
                                 aggfunc="mean").reindex(labels).to_numpy(dtype=float))

    found = kendall_tau_bootstrap(matrix(a), matrix(b))
    return found.lo, found.hi


def transfer_regret(summary: pd.DataFrame) -> pd.DataFrame:
    """Regret of searching small and training big: for every capacity A and every larger
    capacity B, the test Δ at B of B's own selection minus the test Δ at B of A's selection,
    both selections made on validation (0 = transfer is as good as selecting at B; negative
    when A's choice happens to test better). Per data options, when the sweep varies them.
    ``selected_on`` says ``test`` for runs written without validation scores."""
    key = _selection_key(summary)
    return _per_data(lambda group, _: _transfer_regret(group, key), summary)


def _transfer_regret(summary: pd.DataFrame, key: str) -> pd.DataFrame:
    order = summary.drop_duplicates("capacity").sort_values("params").capacity.tolist()
    rows = []
    for i, source in enumerate(order):
        small = _best(summary[summary.capacity == source], key)
        if small is None:
            continue
        chosen = small.weights_label
        for capacity in order[i + 1:]:
            group = summary[summary.capacity == capacity]
            transferred = group[group.weights_label == chosen].dropna(subset=["gain"])
            best = _best(group, key)
            if transferred.empty or best is None:
                continue
            rows.append({"from": source, "to": capacity, "transferred_weights": chosen,
                         "transferred_gain": float(transferred.gain.iloc[0]),
                         "best_weights": best.weights_label, "best_gain": float(best.gain),
                         "regret": float(best.gain - transferred.gain.iloc[0]),
                         "selected_on": _selected_on(key)})
    return pd.DataFrame(rows)


def _correction(tests: int, what: str, column: str) -> str:
    """How a table's p-values are corrected, for its title (``attrs["correction"]``)."""
    return f"Holm-corrected across {tests} {what}{'s' * (tests != 1)} ({column})"


def _axes(frame: pd.DataFrame) -> list[str]:
    """The numeric capacity axes (``axis_<name>``) that take more than one value."""
    return [c for c in frame.columns if c.startswith("axis_")
            and pd.api.types.is_numeric_dtype(frame[c]) and frame[c].nunique() > 1]


def capacity_trend(gains: pd.DataFrame, cells: pd.DataFrame) -> pd.DataFrame:
    """Does test Δ grow with capacity? Tested at the capacity level, for the weighting
    selected on validation at each capacity (``cells``, from :func:`per_capacity`) and for
    uniform weights; per data options, when the sweep varies them.

    One row per (weighting, x): ``x`` is ``log10 params`` and, when the sweep varies two or
    more numeric capacity axes (depth × width), each axis, then holding the other axes fixed
    (``depth | width``: ρ within each width level, averaged; permutations within those
    levels). ``spearman_rho`` is over the capacity means of the per-seed test Δ (``gains``,
    from :func:`weighting_gains`); ``p`` its permutation p-value over the capacity means
    (``test`` says exact or Monte-Carlo, and how many orderings); ``rho_lo``/``rho_hi`` a
    bootstrap interval resampling seeds within each capacity; ``p_holm`` Holm-adjusted
    across every row of the table (``attrs["correction"]``). ``capacities`` is n of the test,
    ``seeds`` the fewest seeds of a capacity. Over fewer than 3 capacities there is no test:
    the row says :data:`FEW_CAPACITIES`."""
    keys = cell_keys(gains)
    best = {tuple(r[k] for k in keys): r.best_weights for _, r in cells.iterrows()}
    groups = gains.groupby("data", sort=False) if "data" in keys else [(None, gains)]
    rows = []
    for data, group in groups:
        chosen = group.apply(lambda r: best.get(tuple(r[k] for k in keys)), axis=1)
        for weighting, runs in (("selected", group[group.weights_label == chosen]),
                                ("uniform", group[group.weights_label == "uniform"])):
            runs = runs.dropna(subset=["gain"])
            if runs.capacity.nunique() < 2:
                continue
            found = _trend_rows(runs) if runs.capacity.nunique() >= 3 else [(
                "log10 params", {"spearman_rho": np.nan, "rho_lo": np.nan, "rho_hi": np.nan,
                                 "p": np.nan, "capacities": runs.capacity.nunique(),
                                 "seeds": int(runs.groupby("capacity").seed.nunique().min()),
                                 "test": FEW_CAPACITIES})]
            for x, row in found:
                rows.append({**({"data": data} if data is not None else {}),
                             "weighting": weighting, "x": x, **row})
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    out["p_holm"] = holm(out.p.tolist())
    out = out[[c for c in out.columns if c != "test"] + ["test"]]
    if out.p.notna().any():
        out.attrs["correction"] = _correction(int(out.p.notna().sum()), "test", "p_holm")
    out.attrs["selected_on"] = cells.attrs.get("selected_on", "val")
    return out


def _trend_rows(runs: pd.DataFrame) -> list[tuple[str, dict[str, object]]]:
    """The trend of ``runs``' capacity means against log parameters and against each axis
    (holding the others fixed when there are several)."""
    capacities = runs.drop_duplicates("capacity").set_index("capacity")
    axes = _axes(capacities)
    order = capacities.index.tolist()
    found = []
    xs: list[tuple[str, np.ndarray, Sequence[object] | None]] = [
        ("log10 params", np.log10(capacities.params.to_numpy(dtype=float)), None)]
    if len(axes) >= 2:
        for axis in axes:
            others = [a for a in axes if a != axis]
            levels = [tuple(capacities.loc[c, o] for o in others) for c in order]
            label = f"{axis.removeprefix('axis_')} | " + ", ".join(
                o.removeprefix("axis_") for o in others)
            xs.append((label, capacities[axis].to_numpy(dtype=float), levels))
    for label, x, strata in xs:
        boot = hierarchical_bootstrap_ci(runs, "capacity", "seed", "gain",
                                         statistic=partial(_stratified_rho, x, strata))
        means = boot.groups.set_index("capacity").loc[order, "mean"].to_numpy()
        test = spearman_permutation_test(x, means, strata=strata)
        _, lo, hi = boot.statistic or (np.nan, np.nan, np.nan)
        found.append((label, {"spearman_rho": test.statistic, "rho_lo": lo, "rho_hi": hi,
                              "p": test.pvalue, "capacities": len(order),
                              "seeds": int(boot.groups.units.min()), "test": test.method}))
    return found


def _stratified_rho(x: np.ndarray, strata: Sequence[object] | None, means: np.ndarray
                    ) -> np.ndarray:
    """The mean within-stratum Spearman ρ of ``x`` against each row of ``means`` (the plain
    ρ without strata)."""
    if strata is None:
        return spearman_rows(x, means)
    labels = [str(s) for s in strata]
    rhos = [spearman_rows(x[idx], means[:, idx]) for idx in
            (np.flatnonzero(np.array(labels) == s) for s in dict.fromkeys(labels))
            if len(idx) >= 2 and np.ptp(x[idx]) > 0]
    return np.mean(rhos, axis=0)


def selected_vs_uniform(cells: pd.DataFrame) -> pd.DataFrame:
    """Do the weights selected on validation beat uniform on test? One capacity-level
    difference per capacity (selected test Δ − uniform test Δ, means over seeds) and the
    exact sign-flip test over them (per data options when the sweep varies them; Holm across
    those)."""
    groups = cells.groupby("data", sort=False) if "data" in cells.columns else [(None, cells)]
    rows = []
    for data, group in groups:
        diff = (group.best_gain - group.uniform_gain).dropna()
        if diff.empty:
            continue
        test = sign_flip_test(diff.to_numpy())
        rows.append({**({"data": data} if data is not None else {}),
                     "mean_difference": test.statistic, "capacities": len(diff),
                     "better_at": int((diff > 0).sum()), "p": test.pvalue,
                     "selected_on": cells.attrs.get("selected_on", "val"),
                     "test": f"sign flip, {test.method}"})
    out = pd.DataFrame(rows)
    if not out.empty:
        out.insert(out.columns.get_loc("p") + 1, "p_holm", holm(out.p.tolist()))
        out.attrs["correction"] = _correction(len(out), "test", "p_holm")
    return out


def capacity_plane(gains: pd.DataFrame, cells: pd.DataFrame, weighting: str = "selected"
                   ) -> pd.DataFrame:
    """The capacity plane of a sweep with two numeric capacity axes (depth × width): the test
    Δ of ``weighting`` (``selected``: each capacity's weights selected on validation, from
    ``cells``; or ``uniform``) as cells ``"Δ [lo, hi]"``, the mean over seeds with a bootstrap
    interval of seeds within the capacity (:func:`hierarchical_bootstrap_ci`); one row per
    level of the first axis, one column per level of the second (``data`` first when the sweep
    varies data options). Empty unless exactly two axes vary.

    Example:
        >>> gains = pd.DataFrame({"capacity": ["a", "a", "b", "b"], "seed": [0, 1] * 2,
        ...                       "axis_depth": [2, 2, 4, 4], "axis_width": [8, 8, 8, 8],
        ...                       "weights_label": "uniform", "gain": [1.0, 1.0, 2.0, 2.0]})
        >>> capacity_plane(gains, pd.DataFrame(), "uniform")  # only depth varies
        Empty DataFrame
        Columns: []
        Index: []
    """
    axes = _axes(gains.drop_duplicates("capacity")) if not gains.empty else []
    if len(axes) != 2:
        return pd.DataFrame()
    keys = cell_keys(gains)
    if weighting == "selected":
        chosen = {tuple(r[k] for k in keys): r.best_weights for _, r in cells.iterrows()}
        mask = gains.apply(lambda r: chosen.get(tuple(r[k] for k in keys)) == r.weights_label,
                           axis=1)
    else:
        mask = gains.weights_label == weighting
    runs = gains[mask.astype(bool)].dropna(subset=["gain"])
    if runs.empty:
        return pd.DataFrame()
    rows_axis, cols_axis = axes
    tables = []
    groups = runs.groupby("data", sort=False) if "data" in keys else [(None, runs)]
    for data, group in groups:
        boot = hierarchical_bootstrap_ci(group, "capacity", "seed", "gain").groups
        where = group.drop_duplicates("capacity").set_index("capacity")[[rows_axis, cols_axis]]
        boot = boot.join(where, on="capacity")
        boot["cell"] = [f"{r.mean:.1f}" + ("" if pd.isna(r.lo) else f" [{r.lo:.1f}, {r.hi:.1f}]")
                        for r in boot.itertuples()]
        table = boot.pivot(index=rows_axis, columns=cols_axis, values="cell")
        table = table.sort_index().sort_index(axis=1).fillna("-")
        table.columns = [f"{cols_axis.removeprefix('axis_')}={c:g}" for c in table.columns]
        table = table.rename_axis(rows_axis.removeprefix("axis_")).reset_index()
        if data is not None:
            table.insert(0, "data", data)
        tables.append(table)
    return pd.concat(tables, ignore_index=True)


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
