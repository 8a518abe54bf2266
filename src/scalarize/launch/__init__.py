"""Launch: a run config resolved once into a checked plan, then trained into its run folder.

This layer stands above training, the probes and the trackers (it puts them together) and
below the studies, the search, the command line and the API (they launch runs through it)."""

from __future__ import annotations

from scalarize.launch.check import check_run, check_study, memory_budget
from scalarize.launch.train import default_run_name, run_name, train_run

__all__ = ["check_run", "check_study", "default_run_name", "memory_budget", "run_name",
           "train_run"]
