"""The population-search section: weight schedules, lineage, the population's held-out accuracy
over time, the Pareto front, and a comparison table when a folder holds several searches."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from scalarize.analysis.search import (
    by_strategy,
    exploit_frame,
    find_searches,
    members_frame,
    population_frame,
    searches_table,
)
from scalarize.report.figures import plt, save_figure
from scalarize.report.page import Section
from scalarize.runs.store import SearchDir, read_or_skip

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
    """Final held-out accuracy of the first two objectives, the Pareto front highlighted."""
    final = pop.sort_values("epoch").groupby("member").tail(1).set_index("member")
    a, b = objectives[:2]
    fig, ax = plt.subplots(figsize=(5, 4))
    front = members[members.pareto].member
    ax.scatter(final[f"val_{a}"], final[f"val_{b}"], c="lightgrey", edgecolors="grey",
               label="members")
    on_front = final.loc[front].sort_values(f"val_{a}")
    ax.plot(on_front[f"val_{a}"], on_front[f"val_{b}"], "o-", color="tab:red",
            label="Pareto front")
    for member, row in final.iterrows():
        ax.annotate(f"m{member}", (row[f"val_{a}"], row[f"val_{b}"]), fontsize=7,
                    textcoords="offset points", xytext=(3, 3))
    ax.set_xlabel(f"held-out accuracy: {a}")
    ax.set_ylabel(f"held-out accuracy: {b}")
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def _detail(section: Section, folder: Path, figures: Path, prefix: str, name: str) -> None:
    summary = SearchDir(folder).read_summary()
    objectives = summary.objectives
    pop, exploits = population_frame(folder), exploit_frame(folder)
    members = members_frame(folder)
    best = summary.best_member
    weights = ", ".join(f"{o} {w:.3f}" for o, w in zip(objectives, summary.best_weights,
                                                       strict=True))
    section.text.append(
        f"{prefix}{summary.strategy} on the {summary.engine} engine: "
        f"{summary.population} members × {summary.epochs} epochs = "
        f"{summary.member_epochs} member-epochs in {summary.seconds:.0f} s, "
        f"{len(exploits)} exploits. Selected member m{best} (held-out average accuracy "
        f"{summary.val_avg_acc:.3f}, test {summary.test_avg_acc:.3f}); its final "
        f"weights: {weights}. Pareto front on held-out accuracy: "
        f"{', '.join(f'm{m}' for m in summary.pareto_front)} (hypervolume "
        f"{summary.hypervolume_val:.4f} held-out, {summary.hypervolume_test:.4f} test).")
    section.tables.append((f"{prefix}members (final weights and accuracy)", members))
    if not pop.empty:
        section.figures.append((f"{prefix}weight schedules (selected member bold)",
                                schedule_figure(pop, objectives, best,
                                                figures / f"{name}-schedules.png")))
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
    searches = find_searches(folder)
    if not searches:
        return None
    section = Section("Population search of the weights")
    done = [s for s in searches if SearchDir(s).is_finished]
    if searches != [folder]:  # several searches: a corrupt one is skipped with a warning
        done = [s for s in done
                if read_or_skip(s, SearchDir(s).read_summary, "search") is not None]
    if not done:
        section.text.append("No search has finished yet.")
        return section
    if len(done) > 1:
        tables = [searches_table(s).assign(search=str(s.relative_to(folder))) for s in done]
        table = pd.concat(tables, ignore_index=True)
        section.text.append("Each search selects its member by held-out average accuracy; "
                            "test_avg_acc is that member's test accuracy. member_epochs is "
                            "the compute each search spent.")
        section.tables.append(("Searches", table))
        section.tables.append(("By strategy (mean, std over seeds)",
                               by_strategy(table).reset_index()))
    if len(done) <= MAX_DETAILED:
        for path in done:
            relative = path.relative_to(folder).as_posix()
            prefix = "" if relative == "." else f"{relative}: "
            _detail(section, path, figures, prefix,
                    "search" if relative == "." else relative.replace("/", "-"))
    return section


__all__ = ["search_section"]
