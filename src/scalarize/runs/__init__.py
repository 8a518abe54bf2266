"""The run store: the layout of every folder scalarize writes, typed records for every file and
line in them, and a DataFrame view over many runs."""

from scalarize.runs.records import (
    ComparedRun,
    ComparePlan,
    ConflictRecord,
    EpochRecord,
    EvalResult,
    MemberResult,
    PlannedRun,
    PopulationEvent,
    RunSummary,
    SearchPlan,
    SearchSummary,
    SweepPlan,
)
from scalarize.runs.store import RunDir, SearchDir, StudyDir, find_runs
from scalarize.runs.table import load_runs

__all__ = ["ComparePlan", "ComparedRun", "ConflictRecord", "EpochRecord", "EvalResult",
           "MemberResult", "PlannedRun", "PopulationEvent", "RunDir", "RunSummary",
           "SearchDir", "SearchPlan", "SearchSummary", "StudyDir", "SweepPlan", "find_runs",
           "load_runs"]
