"""The method-comparison section of a report."""

from __future__ import annotations

from pathlib import Path

from scalarize.analysis.tables import compare_tables
from scalarize.report.figures import plt, save_figure
from scalarize.report.page import Section
from scalarize.runs.layout import COMPARISON
from scalarize.runs.store import StudyDir


def compare_section(folder: Path, figures: Path) -> Section | None:
    """The comparison table of a ``scalarize compare`` folder, or ``None``."""
    if not StudyDir(folder, COMPARISON).is_study:
        return None
    tables = compare_tables(folder)
    if not tables.finished:
        return Section("Method comparison", ["No run of the comparison has finished yet."])
    table = tables.methods
    section = Section("Method comparison", [
        "Test metrics at equal epochs and seeds; avg_acc is mean ± std over seeds; Δ is the "
        "mean relative gain over the single-task models of the same seed (%); step_ms is the "
        "mean wall time per training step; peak memory is measured on GPU runs only.",
        *([table.attrs["legend"]] if table.attrs.get("legend") else [])])
    section.tables.append(("Methods", table))
    ranked = table[table.method != "single-task"].sort_values("avg_acc")
    fig, ax = plt.subplots(figsize=(6, 0.35 * len(ranked) + 1.5))
    names = (ranked.model + " · " + ranked.method) if "model" in ranked else ranked.method
    ax.barh(names, ranked.avg_acc, xerr=ranked.avg_acc_std.fillna(0), capsize=3)
    ax.set_xlabel("test average accuracy")
    lo = float((ranked.avg_acc - ranked.avg_acc_std.fillna(0)).min())
    ax.set_xlim(max(0.0, lo - 0.05), None)
    section.figures.append(("Average accuracy per method",
                            save_figure(fig, figures / "methods.png")))
    return section
