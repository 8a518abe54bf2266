"""The population-search section: weight schedules (heatmaps past
:data:`~scalarize.analysis.search.MANY_OBJECTIVES` objectives), lineage, the population's
held-out accuracy over time, the Pareto front, a comparison table when a folder holds several
searches, and the searches' anytime curves (best held-out score and hypervolume so far against
member-epochs spent) overlaid on one plot, one colour per strategy."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

from scalarize.analysis.search import MANY_OBJECTIVES
from scalarize.analysis.tables import SearchTables, search_tables
from scalarize.report.figures import plt, save_figure
from scalarize.report.page import Section
from scalarize.report.search_weights import weights_heatmap_figure

MAX_DETAILED = 4  # more searches than this in one folder: the comparison table only


def schedule_figure(pop: pd.DataFrame, objectives: list[str], best: int, path: Path) -> Path:
    """Each objective's weight during each epoch, one line per member (the selected one bold)."""
    fig, axes = plt.subplots(1, len(objectives), figsize=(3.2 * len(objectives), 3.0),
                             squeeze=False, sharey=True)
    for ax, objective in zip(axes[0], objectives, strict=True):
        for member, group in pop.groupby("member"):
            group = group.sort_values("epoch")
            epochs = group.epoch.to_numpy()
            ax.stairs(group[f"w_{objective}"].to_numpy(), np.r_[epochs[0] - 1, epochs],
                      baseline=None,
                      lw=2.5 if member == best else 0.9, alpha=1.0 if member == best else 0.6,
                      label=f"m{member}" if member == best else None)
        ax.set_title(f"weight of {objective}", fontsize=9)
        ax.set_xlabel("epoch")
        ax.set_ylim(0, 1)
    axes[0][0].legend(fontsize=7)
    return save_figure(fig, path)


def population_figure(pop: pd.DataFrame, exploits: pd.DataFrame, best: int, path: Path
                      ) -> Path:
    """Held-out average accuracy of every member over the epochs; exploits drawn as arrows
    from the copied member to the one that copied it (the lineage)."""
    fig, ax = plt.subplots(figsize=(7, 4))
    for member, group in pop.groupby("member"):
        group = group.sort_values("epoch")
        ax.plot(group.epoch, group.val_avg_acc, marker="o", ms=3,
                lw=2.5 if member == best else 1.0, label=f"m{member}")
    score = pop.set_index(["member", "epoch"]).val_avg_acc
    for row in exploits.itertuples():
        start = score.get((row.parent, row.epoch))
        end = score.get((row.member, row.epoch + 1))
        if start is not None and end is not None:
            ax.annotate("", xy=(row.epoch + 1, end), xytext=(row.epoch, start),
                        arrowprops={"arrowstyle": "->", "color": "grey", "lw": 0.8})
    ax.set_xlabel("epoch")
    ax.set_ylabel("held-out average accuracy")
    ax.legend(fontsize=7, ncol=2)
    return save_figure(fig, path)


def pareto_figure(members: pd.DataFrame, pop: pd.DataFrame, objectives: list[str],
                  path: Path) -> Path:
    """Final held-out accuracy of the first two objectives, the Pareto front highlighted;
    members at the same point share one label, and each axis has at most five ticks (held-out
    accuracies differ in the third decimal, so more ticks collide)."""
    final = pop.sort_values("epoch").groupby("member").tail(1).set_index("member")
    a, b = objectives[:2]
    fig, ax = plt.subplots(figsize=(5.5, 4))
    front = members[members.pareto].member
    ax.scatter(final[f"val_{a}"], final[f"val_{b}"], c="lightgrey", edgecolors="grey",
               label="members")
    on_front = final.loc[front].sort_values(f"val_{a}")
    ax.plot(on_front[f"val_{a}"], on_front[f"val_{b}"], "o-", color="tab:red",
            label="Pareto front")
    points = final.groupby([f"val_{a}", f"val_{b}"], sort=False).groups
    for (x, y), at in points.items():
        ax.annotate(", ".join(f"m{m}" for m in sorted(at)), (x, y), fontsize=7,
                    textcoords="offset points", xytext=(3, 3))
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_locator(MaxNLocator(nbins=5))
    ax.tick_params(axis="x", labelrotation=30)
    ax.margins(0.12)
    ax.set_xlabel(f"held-out accuracy: {a}")
    ax.set_ylabel(f"held-out accuracy: {b}")
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def strategy_label(search: str, strategy: str) -> str:
    """The label a search's curve takes in the overlay: its folder name without the
    ``-s<seed>`` suffix (as in the by-strategy table: ``uniform-s0`` and ``grid-s0`` stay
    apart), or its strategy for a search reported on its own."""
    name = Path(search).name
    return re.sub(r"-s\d+$", "", name) if search not in ("", ".") and name else strategy


def mean_step(group: pd.DataFrame, column: str) -> tuple[np.ndarray, np.ndarray]:
    """The mean over searches of step curves, on the union of their budgets (a curve holds
    its value until its next budget; a curve that ended keeps its last value)."""
    budgets = np.unique(group.member_epochs.to_numpy())
    steps = [g.set_index("member_epochs")[column].reindex(budgets).ffill()
             for _, g in group.groupby("search", sort=False)]
    return budgets, pd.concat(steps, axis=1).mean(axis=1, skipna=False).to_numpy()


def anytime_figure(curves: pd.DataFrame, path: Path) -> Path:
    """Best held-out average accuracy and hypervolume of the held-out scores found so far,
    against member-epochs spent: every search of ``curves`` (columns ``search``, ``label``,
    ``member_epochs``, ``best_val_avg_acc``, ``hypervolume``), one colour per label; with
    several seeds of a label, each seed thin and their mean bold."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    columns = [("best_val_avg_acc", "best held-out average accuracy so far"),
               ("hypervolume", "hypervolume of held-out scores so far")]
    for ax, (column, title) in zip(axes[0], columns, strict=True):
        for i, (label, group) in enumerate(curves.groupby("label", sort=False)):
            colour = colours[i % len(colours)]
            seeds = group.groupby("search", sort=False)
            for _, one in seeds:
                ax.step(one.member_epochs, one[column], where="post", color=colour,
                        lw=0.8 if seeds.ngroups > 1 else 2.0,
                        alpha=0.45 if seeds.ngroups > 1 else 1.0,
                        label=None if seeds.ngroups > 1 else label)
            if seeds.ngroups > 1:
                budgets, mean = mean_step(group, column)
                ax.step(budgets, mean, where="post", color=colour, lw=2.0,
                        label=f"{label} (mean of {seeds.ngroups})")
        ax.set_xlabel("member-epochs spent")
        ax.set_title(title, fontsize=9)
    axes[0][0].legend(fontsize=7)
    return save_figure(fig, path)


def _labelled(curves: pd.DataFrame) -> pd.DataFrame:
    """The anytime curves of :attr:`~scalarize.analysis.tables.SearchTables.curves`, each
    labelled for the overlay (:func:`strategy_label`)."""
    if curves.empty:
        return curves
    return curves.assign(label=[strategy_label(search, strategy) for search, strategy
                                in zip(curves.search, curves.strategy, strict=True)])


def _weights(section: Section, search: SearchTables, pop: pd.DataFrame, objectives: list[str],
             best: int, prefix: str, path: Path) -> None:
    """The members table and the weights figure: every weight, and one plot per objective,
    up to :data:`MANY_OBJECTIVES` objectives; beyond, each member's largest weights and
    effective number of objectives, and heatmaps (:func:`weights_heatmap_figure`)."""
    members = search.members
    if len(objectives) <= MANY_OBJECTIVES:
        section.tables.append((f"{prefix}members (final weights and accuracy)", members))
        if not pop.empty:
            section.figures.append((f"{prefix}weight schedules (selected member bold)",
                                    schedule_figure(pop, objectives, best, path)))
        return
    section.text.append(
        f"{prefix}{len(objectives)} objectives: the members table shows each member's largest "
        "final weights and its effective number of objectives (the exponential of the entropy "
        f"of its weights: {len(objectives)} for uniform weights, 1 for all weight on one "
        "objective); summary.json holds every weight.")
    section.tables.append((f"{prefix}members (largest final weights, effective number of "
                           "objectives, accuracy)", search.members_display))
    if not pop.empty:
        section.figures.append((f"{prefix}final weights of every member (columns, by held-out "
                                "average accuracy, the selected member boxed) and the "
                                "selected member's weights per epoch",
                                weights_heatmap_figure(members, pop, objectives, best, path)))


def _detail(section: Section, search: SearchTables, figures: Path, prefix: str, name: str
            ) -> None:
    summary = search.summary
    objectives = summary.objectives
    pop, exploits = search.population, search.exploits
    members = search.members
    best = summary.best_member
    many = search.many
    weights = search.weights(joiner=" ")
    stopped = sum(m.stopped_epoch is not None for m in summary.members)
    spent = (f"{summary.population} members × {summary.epochs} epochs = "
             if summary.population * summary.epochs == summary.member_epochs and not stopped
             else f"{summary.population} trials of up to {summary.epochs} epochs "
                  f"({stopped} stopped early): ")
    section.text.append(
        f"{prefix}{summary.strategy} on the {summary.engine} engine: {spent}"
        f"{summary.member_epochs} member-epochs in {summary.seconds:.0f} s, "
        f"{len(exploits)} exploits. Selected member m{best} (held-out average accuracy "
        f"{summary.val_avg_acc:.3f}, test {summary.test_avg_acc:.3f}); its "
        f"{'largest final weights' if many else 'final weights'}: {weights}. Pareto front "
        f"on held-out accuracy: {', '.join(f'm{m}' for m in summary.pareto_front)} "
        f"(hypervolume {summary.hypervolume_val:{'.3g' if many else '.4f'}} held-out, "
        f"{summary.hypervolume_test:{'.3g' if many else '.4f'}} test).")
    _weights(section, search, pop, objectives, best, prefix,
             figures / f"{name}-{'weights' if many else 'schedules'}.png")
    if not pop.empty:
        section.figures.append((f"{prefix}held-out accuracy of the population; arrows: "
                                "exploits (copied member → copying member)",
                                population_figure(pop, exploits, best,
                                                  figures / f"{name}-population.png")))
        if len(objectives) >= 2:
            section.figures.append((f"{prefix}final held-out accuracy of {objectives[0]} and "
                                    f"{objectives[1]}, Pareto front",
                                    pareto_figure(members, pop, objectives,
                                                  figures / f"{name}-pareto.png")))


def search_section(folder: Path, figures: Path) -> Section | None:
    """The search section of a report, or ``None`` when ``folder`` holds no search."""
    tables = search_tables(folder)
    if not tables.found:
        return None
    section = Section("Population search of the weights")
    done = tables.finished  # several searches: a corrupt one is skipped with a warning
    if not done:
        section.text.append("No search has finished yet.")
        return section
    if len(done) > 1:
        section.text.append("Each search selects its member by held-out average accuracy; "
                            "test_avg_acc is that member's test accuracy. member_epochs is "
                            "the compute each search spent.")
        section.tables.append(("Searches", tables.finished_table))
        section.tables.append(("By strategy (mean, std over seeds)", tables.by_strategy))
    curves = _labelled(tables.curves)
    if not curves.empty:
        several = curves.search.nunique() > 1
        section.text.append(
            "Anytime curves: the best held-out average accuracy, and the hypervolume of the "
            "held-out per-objective scores (reference point 0), of every member-epoch trained "
            "so far, against the member-epochs spent (in the order the engine trained them)"
            + (", one colour per strategy, so that strategies compare at equal compute."
               if several else "."))
        section.figures.append(("anytime curves: best held-out score and hypervolume so far "
                                "against member-epochs spent"
                                + (" (strategies overlaid)" if several else ""),
                                anytime_figure(curves, figures / "search-anytime.png")))
    if len(done) <= MAX_DETAILED:
        for search in done:
            relative = tables.relative(search)
            prefix = "" if relative == "." else f"{relative}: "
            _detail(section, search, figures, prefix,
                    "search" if relative == "." else relative.replace("/", "-"))
    return section


__all__ = ["anytime_figure", "mean_step", "search_section", "strategy_label"]
