"""The layout of every folder scalarize writes: the one place that names its files.

A **run** folder holds ``config.yaml``, ``metrics.jsonl`` (one :class:`EpochRecord` a line),
``checkpoint.pt``, ``summary.json`` (a :class:`RunSummary`) and, with the conflict probe,
``conflicts.jsonl``. A **study** folder (a sweep, a comparison or a search) holds its config
(``<kind>.yaml``), its plan (``<kind>.json``) and one run folder per planned run; a search also
holds ``population.jsonl``, its ``summary.json``, the in-process engine's ``state.pt`` and the
Ray engine's ``ray/`` experiment; a trial search (tpe, gp, cmaes, nsga2, asha) also its Optuna
study ``optuna.journal`` and its trials' final states ``members/m<id>.pt``.
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
OPTUNA_JOURNAL = "optuna.journal"   # a trial search's Optuna study (journal storage)
MEMBER_CHECKPOINTS = "members"      # in it: m<id>.pt, each trial's state when it finished
REPORT = "report"  # in it: REPORT_HTML, REPORT_MD and the FIGURES folder
REPORT_HTML = "report.html"
REPORT_MD = "report.md"
FIGURES = "figures"
NOTES = "notes.json"  # a study's own numbers for its report: chance levels, its reading


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
