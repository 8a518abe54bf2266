"""Reports: one HTML page and a Markdown twin per experiment folder, built from the run store.

Each section provider is ``(folder, figures_dir) -> Section | None``; ``REPORT_SECTIONS``
lists them in page order, and a provider returns ``None`` when its data is not in the folder.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from scalarize.errors import ScalarizeError
from scalarize.report.accuracy import accuracy_section
from scalarize.report.capacity import capacity_section
from scalarize.report.compare import compare_section
from scalarize.report.conflicts import conflicts_section
from scalarize.report.curves import curves_section
from scalarize.report.notes import reading_section
from scalarize.report.page import Section, write_report
from scalarize.report.replay import replay_section
from scalarize.report.search import search_section
from scalarize.runs.layout import FIGURES, REPORT

SectionProvider = Callable[[Path, Path], Section | None]
# the demo's order: its reading first (a summary), then what it prints, in print order
REPORT_SECTIONS: list[SectionProvider] = [reading_section, accuracy_section, curves_section,
                                           capacity_section, compare_section, conflicts_section,
                                           search_section, replay_section]


def build_report(folder: Path | str, out: Path | str | None = None) -> tuple[Path, Path]:
    """Write ``report.html`` and ``report.md`` (and PNG figures) for ``folder``."""
    folder = Path(folder)
    if not folder.exists():
        raise ScalarizeError(f"{folder} does not exist; pass the --out folder of a sweep, "
                             "comparison, search or probed runs")
    if not folder.is_dir():
        raise ScalarizeError(f"{folder} is a file, not a folder; pass the --out folder of a "
                             "sweep, comparison, search or probed runs")
    out = Path(out) if out is not None else folder / REPORT
    sections = [s for provider in REPORT_SECTIONS if (s := provider(folder, out / FIGURES))]
    if not sections:
        raise ScalarizeError(f"nothing to report in {folder}: it holds no sweep, probed run "
                             "or search")
    return write_report(f"scalarize report: {folder.name}", sections, out)


__all__ = ["REPORT_SECTIONS", "Section", "build_report"]
