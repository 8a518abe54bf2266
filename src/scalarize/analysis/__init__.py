"""Analysis over the run store (gain vs single-task; more to come)."""

from scalarize.analysis.gain import multitask_gain

__all__ = ["multitask_gain"]
