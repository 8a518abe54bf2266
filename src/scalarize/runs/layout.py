"""The layout of every folder scalarize writes: the one place that names its files.

A **run** folder holds ``config.yaml``, ``metrics.jsonl`` (one :class:`EpochRecord` a line),
``checkpoint.pt``, ``summary.json`` (a :class:`RunSummary`) and, with the conflict probe,
``conflicts.jsonl``. A **study** folder (a sweep, a comparison or a search) holds its config
(``<kind>.yaml``), its plan (``<kind>.json``) and one run folder per planned run; a search also
holds ``population.jsonl``, its ``summary.json``, the in-process engine's ``state.pt`` and the
Ray engine's ``ray/`` experiment.
"""

from __future__ import annotations

from dataclasses import dataclass

CONFIG = "config.yaml"
METRICS = "metrics.jsonl"
SUMMARY = "summary.json"
CHECKPOINT = "checkpoint.pt"
CONFLICTS = "conflicts.jsonl"

POPULATION = "population.jsonl"
SEARCH_STATE = "state.pt"
RAY_EXPERIMENT = "ray"
REPORT = "report"  # in it: REPORT_HTML, REPORT_MD and the FIGURES folder
REPORT_HTML = "report.html"
REPORT_MD = "report.md"
FIGURES = "figures"


@dataclass(frozen=True)
class StudyLayout:
    """The files of one kind of study folder and the command that makes it."""

    kind: str
    config: str
    plan: str
    command: str


SWEEP = StudyLayout("sweep", "sweep.yaml", "sweep.json", "scalarize sweep")
COMPARISON = StudyLayout("comparison", "compare.yaml", "compare.json", "scalarize compare")
SEARCH = StudyLayout("search", "search.yaml", "search.json", "scalarize search")
