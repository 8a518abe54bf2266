"""The run store: one folder per run, and a DataFrame view over many."""

from scalarize.runs.store import RunDir, atomic_write_text
from scalarize.runs.table import find_runs, load_runs

__all__ = ["RunDir", "atomic_write_text", "find_runs", "load_runs"]
